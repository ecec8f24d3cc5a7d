<?php
/**
 * The connector plugin's own verifier (wordpress/agency-sso-connector,
 * Agency_SSO_JWT) over the dashboard's tokens, outside WordPress: the key
 * set fetched from the dashboard over HTTP, each token checked as the
 * plugin checks a launch (or as another kind when `typ` is given).
 *
 * Input (JSON on standard input): jwks_uri, issuer, audience, tokens, and
 * optionally typ (default "JWT") and now (default the current time).
 * Output (JSON): one entry per token, {"ok": true, "claims": {...}} or
 * {"ok": false, "code": "..."}.
 */

require __DIR__ . '/../../wordpress/agency-sso-connector/includes/class-agency-sso-error.php';
require __DIR__ . '/../../wordpress/agency-sso-connector/includes/class-agency-sso-jwt.php';

$input = json_decode( stream_get_contents( STDIN ), true, 16, JSON_THROW_ON_ERROR );
$jwks  = file_get_contents( $input['jwks_uri'] );
if ( false === $jwks ) {
	fwrite( STDERR, "cannot fetch {$input['jwks_uri']}\n" );
	exit( 1 );
}
$keys = Agency_SSO_JWT::parse_key_set( $jwks );
$out  = array();
foreach ( $input['tokens'] as $token ) {
	try {
		$claims = Agency_SSO_JWT::verify(
			$token,
			array(
				'issuer'       => $input['issuer'],
				'audience'     => $input['audience'],
				'typ'          => $input['typ'] ?? 'JWT',
				'leeway'       => 60,
				'max_lifetime' => 300,
				'require'      => array( 'wp_role' ),
			),
			function ( string $kid ) use ( $keys ) {
				return $keys[ $kid ] ?? null;
			},
			(int) ( $input['now'] ?? time() )
		);
		$out[] = array( 'ok' => true, 'claims' => $claims );
	} catch ( Agency_SSO_Error $e ) {
		$out[] = array( 'ok' => false, 'code' => $e->get_error_code() );
	}
}
echo json_encode( $out ), "\n";
