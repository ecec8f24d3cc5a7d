<?php
/**
 * Stand-in connector sites for the dashboard's tests, served by PHP's
 * built-in server (`php -S host:port back_channel_sites.php`): every path
 * `/{name}` is a site whose URL (the audience) is `http://{host}/{name}`.
 * A message POSTed to `/{name}/?rest_route=/agency-sso/v1/back-channel` is
 * checked by the connector plugin's own code (Agency_SSO_Logout_Token over
 * Agency_SSO_JWT, keys from the dashboard's JWKS, cached and fetched again
 * on an unknown kid), its jti kept single-use,
 * and answered as the plugin answers, with the same status codes.
 *
 * Environment: AGENCY_SSO_ISSUER, AGENCY_SSO_JWKS_URI, STAND_IN_DIR.
 * In STAND_IN_DIR: each message that arrives adds a line to `{name}.arrived`
 * (before anything else is done with it); `{name}.down` makes the site answer 503; `{name}.slow`
 * (holding seconds) makes it wait that long first; each message carried
 * out is appended to `{name}.log` as a JSON line (action, role, email, sub,
 * seq, jti); `{name}.answer`, when present, is the site's answer to every
 * message it takes (HTTP 200, `{jti}` replaced by the message's);
 * `clock` holds seconds added to this machine's time (the dashboard's test
 * clock moves, and the sites' must follow it).
 */

require __DIR__ . '/../../wordpress/agency-sso-connector/includes/class-agency-sso-error.php';
require __DIR__ . '/../../wordpress/agency-sso-connector/includes/class-agency-sso-jwt.php';
require __DIR__ . '/../../wordpress/agency-sso-connector/includes/class-agency-sso-logout-token.php';

$dir  = getenv( 'STAND_IN_DIR' );
$path = parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH );
$name = trim( (string) $path, '/' );

/**
 * Send a JSON answer and stop.
 *
 * @param int   $status HTTP status.
 * @param array $body   The answer.
 */
function answer( int $status, array $body ): void {
	http_response_code( $status );
	header( 'Content-Type: application/json' );
	echo json_encode( $body );
	exit;
}

if ( 1 !== preg_match( '/\A[a-z0-9-]+\z/', $name ) || 'POST' !== $_SERVER['REQUEST_METHOD']
	|| ( $_GET['rest_route'] ?? '' ) !== '/agency-sso/v1/back-channel' ) {
	answer( 404, array( 'code' => 'rest_no_route' ) );
}
file_put_contents( "$dir/$name.arrived", time() . "\n", FILE_APPEND | LOCK_EX );
if ( file_exists( "$dir/$name.down" ) ) {
	answer( 503, array( 'error' => 'site_down' ) );
}
if ( file_exists( "$dir/$name.slow" ) ) {
	sleep( (int) file_get_contents( "$dir/$name.slow" ) );
}

/**
 * The dashboard's keys as the plugin keeps them: cached (shared by every
 * site here), fetched again when a token names a key not in the cache.
 *
 * @param string $dir     Where the cache lives.
 * @param bool   $refresh Fetch even when cached.
 */
function key_set( string $dir, bool $refresh ): array {
	$cached = @file_get_contents( "$dir/jwks.json" );
	if ( $refresh || false === $cached ) {
		$cached = @file_get_contents( getenv( 'AGENCY_SSO_JWKS_URI' ) );
		if ( false === $cached ) {
			throw new Agency_SSO_Error( 'dashboard_unreachable', 'The dashboard cannot be reached.' );
		}
		// Written aside, then renamed: another worker never reads half a file.
		$part = "$dir/jwks.json." . getmypid();
		file_put_contents( $part, $cached );
		rename( $part, "$dir/jwks.json" );
	}
	return Agency_SSO_JWT::parse_key_set( $cached );
}

try {
	$claims = Agency_SSO_Logout_Token::verify(
		(string) ( $_POST['logout_token'] ?? '' ),
		getenv( 'AGENCY_SSO_ISSUER' ),
		'http://' . $_SERVER['HTTP_HOST'] . '/' . $name,
		function ( string $kid ) use ( $dir ) {
			$keys = key_set( $dir, false );
			if ( ! isset( $keys[ $kid ] ) ) {
				$keys = key_set( $dir, true );
			}
			return $keys[ $kid ] ?? null;
		},
		time() + (int) @file_get_contents( "$dir/clock" )
	);
	// The plugin refuses a role the site does not have; these sites have
	// WordPress' five core roles.
	$roles = array( 'administrator', 'editor', 'author', 'contributor', 'subscriber' );
	if ( 'set-role' === $claims['action'] && '' !== $claims['wp_role'] && ! in_array( $claims['wp_role'], $roles, true ) ) {
		throw new Agency_SSO_Error( 'role_not_allowed', 'The role does not exist on this site.' );
	}
	@mkdir( "$dir/jti" );
	$used = @fopen( "$dir/jti/" . hash( 'sha256', $claims['jti'] ), 'x' );
	if ( false === $used ) {
		throw new Agency_SSO_Error( 'token_replayed', 'This message was already received.' );
	}
	fclose( $used );
} catch ( Agency_SSO_Error $e ) {
	answer(
		Agency_SSO_Logout_Token::status( $e->get_error_code() ),
		array(
			'error'   => $e->get_error_code(),
			'message' => $e->getMessage(),
		)
	);
}

$role = 'set-role' === $claims['action'] ? $claims['wp_role'] : '';
file_put_contents(
	"$dir/$name.log",
	json_encode(
		array(
			'action' => $claims['action'],
			'role'   => $role,
			'email'  => $claims['email'],
			'sub'    => $claims['sub'],
			'seq'    => $claims['seq'] ?? null,
			'jti'    => $claims['jti'],
		)
	) . "\n",
	FILE_APPEND | LOCK_EX
);
// A site that answers what it likes (a compromised or broken one), the
// message's jti put in for `{jti}`.
if ( file_exists( "$dir/$name.answer" ) ) {
	http_response_code( 200 );
	header( 'Content-Type: application/json' );
	echo str_replace( '{jti}', $claims['jti'], file_get_contents( "$dir/$name.answer" ) );
	exit;
}
$locks = 'lock' === $claims['action'] || ( 'set-role' === $claims['action'] && '' === $role );
answer(
	200,
	array(
		'jti'                           => $claims['jti'],
		'action'                        => $claims['action'],
		'superseded'                    => false,
		'user_found'                    => true,
		'sessions_ended'                => 'set-role' === $claims['action'] && ! $locks ? 0 : 1,
		'application_passwords_revoked' => 0,
		'role_before'                   => 'editor',
		'role_after'                    => 'set-role' === $claims['action'] ? $role : 'editor',
		'locked'                        => $locks,
	)
);
