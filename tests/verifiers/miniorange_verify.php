<?php
/**
 * Verify launch tokens the way miniOrange's "WP Login and Register using
 * JWT" free edition 2.3.0 does (JWTUtils::verify and get_jwt_claim, as its
 * source reads), with PHP's own functions: plain base64_decode, json_decode,
 * hash_hmac over the token's own text, hash_equals, the exp check without
 * leeway and its nbf condition, which refuses any token that carries nbf.
 * The plugin's faults are kept: this is what a real site will do.
 *
 * Reads {"secret", "username_claim", "tokens": [...]} as JSON on stdin;
 * prints one JSON result per token: {"ok": true, "login": ..., "payload": {...}}
 * or {"ok": false, "error": "<the plugin's message>"}.
 */

function mo_claim( $part, $name ) {
	$decoded = json_decode( base64_decode( $part ), true );
	if ( false === $name ) {
		return $decoded;
	}
	return is_array( $decoded ) && array_key_exists( $name, $decoded ) ? $decoded[ $name ] : null;
}

function mo_verify( $token, $secret ) {
	$parts = explode( '.', $token );
	if ( 3 !== count( $parts ) ) {
		return 'invalid_jwt';
	}
	$alg  = mo_claim( $parts[0], 'alg' );
	$algo = explode( 'S', (string) $alg );
	if ( 'H' !== $algo[0] ) {
		return 'Incorrect JWT Format';
	}
	if ( empty( $secret ) ) {
		return 'JWT Signature is invalid';
	}
	$signed = hash_hmac( 'sha' . ( $algo[1] ?? '' ), $parts[0] . '.' . $parts[1], $secret, true );
	$sign   = base64_decode( strtr( $parts[2], '-_', '+/' ) );
	if ( ! hash_equals( $signed, $sign ) ) {
		return 'JWT Signature is invalid';
	}
	$expiry = mo_claim( $parts[1], 'exp' );
	if ( is_null( $expiry ) || time() > $expiry ) {
		return 'JWT Signature is invalid';
	}
	$nbf = mo_claim( $parts[1], 'nbf' );
	if ( ! is_null( $nbf ) || time() < $nbf ) {
		return 'JWT Signature is invalid';
	}
	return null;
}

$req = json_decode( stream_get_contents( STDIN ), true );
$out = array();
foreach ( $req['tokens'] as $token ) {
	$error = mo_verify( $token, $req['secret'] );
	if ( null !== $error ) {
		$out[] = array( 'ok' => false, 'error' => $error );
		continue;
	}
	$payload = mo_claim( explode( '.', $token )[1], false );
	$claim   = $req['username_claim'];
	if ( ! array_key_exists( $claim, $payload ) ) {
		$out[] = array( 'ok' => false, 'error' => 'Please Configure the Attribute Mapping.' );
		continue;
	}
	$out[] = array( 'ok' => true, 'login' => $payload[ $claim ], 'payload' => $payload );
}
echo json_encode( $out, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES );
