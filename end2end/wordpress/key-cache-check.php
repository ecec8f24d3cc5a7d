<?php
/**
 * The connector's key cache in a real WordPress, against a stand-in
 * dashboard over real HTTP (jwks-server.php under PHP's own server) whose
 * answers this script changes: cached for the dashboard's max-age, an
 * unknown key id fetched again at most once a minute, the last good set
 * kept when a fetch fails but not trusted beyond 7 days, an invalid or
 * oversized set never cached, discovery checked; and the single-use table
 * keeps a token's id for as long as a server with a slower clock could
 * still accept the token.
 * Run by the Playwright suite (connector.spec.ts) with a test site's
 * folder; prints one line per check and exits 1 at the first that fails.
 *
 * Usage: php key-cache-check.php <wordpress folder>
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
$_SERVER['HTTP_HOST'] = '127.0.0.1';
require $argv[1] . '/wp-load.php';
ini_set( 'display_errors', 'stderr' );
error_reporting( E_ALL & ~E_DEPRECATED );

$dir = sys_get_temp_dir() . '/agency-sso-jwks-' . getmypid();
@mkdir( $dir );
$socket = stream_socket_server( 'tcp://127.0.0.1:0' );
$port   = (int) substr( strrchr( stream_socket_get_name( $socket, false ), ':' ), 1 );
fclose( $socket );
$issuer = "http://127.0.0.1:$port";
$server = proc_open(
	array( PHP_BINARY, '-S', "127.0.0.1:$port", __DIR__ . '/jwks-server.php' ),
	array( array( 'file', '/dev/null', 'r' ), array( 'file', '/dev/null', 'w' ), array( 'file', '/dev/null', 'w' ) ),
	$pipes,
	null,
	array( 'JWKS_DIR' => $dir )
);
register_shutdown_function(
	function () use ( $server, $dir ) {
		proc_terminate( $server );
		array_map( 'unlink', glob( "$dir/*" ) );
		@rmdir( $dir );
		delete_transient( Agency_SSO_Keys::CACHE );
		delete_transient( Agency_SSO_Keys::THROTTLE );
		delete_option( Agency_SSO_Keys::LAST_GOOD );
		delete_option( Agency_SSO_Keys::LAST_RESULT );
	}
);

/** A fresh RSA key as a JWK with this kid, and its PEM. */
function agency_sso_key( string $kid ): array {
	$key = openssl_pkey_new( array( 'private_key_bits' => 2048, 'private_key_type' => OPENSSL_KEYTYPE_RSA ) );
	$d   = openssl_pkey_get_details( $key );
	return array(
		array( 'kty' => 'RSA', 'kid' => $kid, 'use' => 'sig', 'alg' => 'RS256', 'n' => Agency_SSO_JWT::base64url_encode( $d['rsa']['n'] ), 'e' => Agency_SSO_JWT::base64url_encode( $d['rsa']['e'] ) ),
		$d['key'],
	);
}

function agency_sso_check( bool $ok, string $what ): void {
	if ( ! $ok ) {
		fwrite( STDERR, "FAILED: $what\n" );
		exit( 1 );
	}
	echo "ok: $what\n";
}

$hits    = function () use ( $dir ) {
	return count( file( "$dir/hits" ) ?: array() );
};
$publish = function ( array|string $keys, string $cache_control = 'public, max-age=120', int $status = 200, ?array $discovery = null ) use ( $dir, $issuer ) {
	file_put_contents( "$dir/openid-configuration", wp_json_encode( $discovery ?? array( 'issuer' => $issuer, 'jwks_uri' => "$issuer/.well-known/jwks.json", 'id_token_signing_alg_values_supported' => array( 'RS256' ) ) ) );
	file_put_contents( "$dir/jwks.json", is_string( $keys ) ? $keys : wp_json_encode( array( 'keys' => $keys ) ) );
	file_put_contents( "$dir/cache-control", $cache_control );
	file_put_contents( "$dir/status", (string) $status );
};

[ $jwk1, $pem1 ] = agency_sso_key( 'key-one' );
[ $jwk2, $pem2 ] = agency_sso_key( 'key-two' );
$publish( array( $jwk1 ) );
file_put_contents( "$dir/hits", '' );
for ( $i = 0; $i < 50 && false === @file_get_contents( "$issuer/.well-known/jwks.json" ); $i++ ) {
	usleep( 100000 );
}
file_put_contents( "$dir/hits", '' );
delete_transient( Agency_SSO_Keys::CACHE );
delete_transient( Agency_SSO_Keys::THROTTLE );
delete_option( Agency_SSO_Keys::LAST_GOOD );

agency_sso_check( $pem1 === Agency_SSO_Keys::key_for_kid( 'key-one', $issuer ), 'a first launch fetches discovery and the key set and finds its key' );
agency_sso_check( 2 === $hits(), 'two requests: discovery, then the key set' );
$timeout = (int) get_option( '_transient_timeout_' . Agency_SSO_Keys::CACHE ) - time();
agency_sso_check( $timeout >= 118 && $timeout <= 120, "cached for the dashboard's max-age=120 ($timeout s left)" );
Agency_SSO_Keys::key_for_kid( 'key-one', $issuer );
agency_sso_check( 2 === $hits(), 'the next launch uses the cache: no request' );

$publish( array( $jwk1, $jwk2 ) );
agency_sso_check( $pem2 === Agency_SSO_Keys::key_for_kid( 'key-two', $issuer ), 'an unknown key id (an emergency rotation) is fetched at once' );
agency_sso_check( 4 === $hits(), 'with one more discovery and key set request' );
agency_sso_check( null === Agency_SSO_Keys::key_for_kid( 'made-up', $issuer ), 'a made-up key id is refused' );
agency_sso_check( 4 === $hits(), 'and asks the dashboard nothing within a minute of the last refetch' );

// The cache expires (its time passes) while the dashboard serves a broken key set.
$publish( '{"keys": [{"kty": "RSA", "kid": "key-one", "n": "AQAB", "e": "AQAB"}]}' );
delete_transient( Agency_SSO_Keys::CACHE );
delete_transient( Agency_SSO_Keys::THROTTLE );
agency_sso_check( $pem1 === Agency_SSO_Keys::key_for_kid( 'key-one', $issuer ), 'an invalid key set is refused and the last good set serves' );
agency_sso_check( false === get_transient( Agency_SSO_Keys::CACHE ), 'the invalid set is not cached' );
$result = get_option( Agency_SSO_Keys::LAST_RESULT );
agency_sso_check( is_array( $result ) && ! $result['ok'] && 'bad_key_set' === $result['code'], 'the failure is recorded for the settings page (bad_key_set)' );
$before = $hits();
Agency_SSO_Keys::key_for_kid( 'key-one', $issuer );
agency_sso_check( $before === $hits(), 'after a failed fetch, none is tried for a minute' );

// The dashboard is down.
$publish( array( $jwk1, $jwk2 ), 'public, max-age=120', 503 );
delete_transient( Agency_SSO_Keys::THROTTLE );
agency_sso_check( $pem2 === Agency_SSO_Keys::key_for_kid( 'key-two', $issuer ), 'the dashboard down: the last good set serves' );
$result = get_option( Agency_SSO_Keys::LAST_RESULT );
agency_sso_check( 'dashboard_unreachable' === $result['code'], 'recorded as dashboard_unreachable' );

// Discovery that names another issuer, or keys on another origin.
$publish( array( $jwk1 ), 'public, max-age=120', 200, array( 'issuer' => 'https://sso.elsewhere.example', 'jwks_uri' => "$issuer/.well-known/jwks.json" ) );
try {
	Agency_SSO_Keys::fetch( $issuer );
	agency_sso_check( false, 'discovery naming another issuer is refused' );
} catch ( Agency_SSO_Error $e ) {
	agency_sso_check( 'discovery_failed' === $e->get_error_code(), 'discovery naming another issuer is refused' );
}
$publish( array( $jwk1 ), 'public, max-age=120', 200, array( 'issuer' => $issuer, 'jwks_uri' => 'https://keys.elsewhere.example/jwks.json' ) );
try {
	Agency_SSO_Keys::fetch( $issuer );
	agency_sso_check( false, 'a jwks_uri on another origin is refused' );
} catch ( Agency_SSO_Error $e ) {
	agency_sso_check( 'discovery_failed' === $e->get_error_code(), 'a jwks_uri on another origin is refused' );
}

// Max-age out of bounds is clamped (a day at most, a minute at least).
$publish( array( $jwk1 ), 'public, max-age=31536000' );
agency_sso_check( 86400 === Agency_SSO_Keys::fetch( $issuer )['max_age'], 'a year of max-age is held a day at most' );
$publish( array( $jwk1 ), 'no-store' );
agency_sso_check( 60 === Agency_SSO_Keys::fetch( $issuer )['max_age'], 'no-store is held a minute' );
// The dashboard out of reach for days (its clock moved by this script).
$agency_sso_offset = 0;
add_filter(
	'agency_sso_now',
	function ( $now ) use ( &$agency_sso_offset ) {
		return $now + $agency_sso_offset;
	},
	20
);
$publish( array( $jwk1 ) );
delete_transient( Agency_SSO_Keys::CACHE );
delete_transient( Agency_SSO_Keys::THROTTLE );
agency_sso_check( $pem1 === Agency_SSO_Keys::key_for_kid( 'key-one', $issuer ), 'a fresh set is fetched' );
$publish( array( $jwk1 ), 'public, max-age=120', 503 );
$agency_sso_offset = 6 * 86400;
delete_transient( Agency_SSO_Keys::THROTTLE );
agency_sso_check( $pem1 === Agency_SSO_Keys::key_for_kid( 'key-one', $issuer ), 'six days without the dashboard: the last good set still serves' );
$agency_sso_offset = 7 * 86400 + 60;
delete_transient( Agency_SSO_Keys::THROTTLE );
try {
	Agency_SSO_Keys::key_for_kid( 'key-one', $issuer );
	agency_sso_check( false, 'over seven days without the dashboard: the last good set is refused' );
} catch ( Agency_SSO_Error $e ) {
	agency_sso_check( 'key_set_stale' === $e->get_error_code(), 'over seven days without the dashboard: the last good set is refused (key_set_stale)' );
}
$publish( array( $jwk1 ) );
delete_transient( Agency_SSO_Keys::THROTTLE );
agency_sso_check( $pem1 === Agency_SSO_Keys::key_for_kid( 'key-one', $issuer ), 'the dashboard back: a fresh fetch serves again' );
$agency_sso_offset = 0;

// A key set of more than 64 KiB is not read whole, and not used.
$padding = array();
for ( $i = 0; $i < 200; $i++ ) {
	$padding[] = array_merge( $jwk2, array( 'kid' => "padding-$i" ) );
}
$publish( array_merge( array( $jwk1 ), $padding ) );
agency_sso_check( strlen( (string) file_get_contents( "$dir/jwks.json" ) ) > 65536, 'the dashboard serves a key set of over 64 KiB' );
try {
	Agency_SSO_Keys::fetch( $issuer );
	agency_sso_check( false, 'a key set of over 64 KiB is refused' );
} catch ( Agency_SSO_Error $e ) {
	agency_sso_check( 'bad_key_set' === $e->get_error_code() && str_contains( $e->getMessage(), '64 KiB' ), 'a key set of over 64 KiB is refused (bad_key_set)' );
}

// Single use across web servers whose clocks differ by the leeway: one a
// minute ahead clears old ids; one a minute behind still accepts the token.
$jti = 'key-cache-check-' . wp_generate_password( 12, false );
$exp = time() + 60;
agency_sso_check( Agency_SSO_Replay::claim( $jti, Agency_SSO_Replay::keep_until( $exp, Agency_SSO_Login::LEEWAY ) ), 'a token id is claimed' );
$agency_sso_offset = 60 + Agency_SSO_Login::LEEWAY + 1;
Agency_SSO_Replay::claim( 'key-cache-check-other-' . wp_generate_password( 12, false ), time() + 3600 );
$agency_sso_offset = 0;
agency_sso_check( ! Agency_SSO_Replay::claim( $jti, Agency_SSO_Replay::keep_until( $exp, Agency_SSO_Login::LEEWAY ) ), 'after a server a minute ahead cleared old ids, the token is still refused as a replay' );
echo "key cache: all checks passed\n";
