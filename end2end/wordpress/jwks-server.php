<?php
/**
 * A stand-in dashboard for key-cache-check.php, run by PHP's own server:
 * serves {dir}/openid-configuration and {dir}/jwks.json as the dashboard
 * does, with the status and Cache-Control written in {dir}/status and
 * {dir}/cache-control, and counts every request in {dir}/hits.
 *
 * @package Agency_SSO_Connector
 */

$agency_sso_dir = getenv( 'JWKS_DIR' );
file_put_contents( "$agency_sso_dir/hits", $_SERVER['REQUEST_URI'] . "\n", FILE_APPEND | LOCK_EX );
$agency_sso_files = array(
	'/.well-known/openid-configuration' => 'openid-configuration',
	'/.well-known/jwks.json'            => 'jwks.json',
);
$agency_sso_path  = parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH );
if ( ! isset( $agency_sso_files[ $agency_sso_path ] ) ) {
	http_response_code( 404 );
	exit;
}
http_response_code( (int) ( @file_get_contents( "$agency_sso_dir/status" ) ?: 200 ) );
header( 'Content-Type: application/json' );
header( 'Cache-Control: ' . trim( (string) @file_get_contents( "$agency_sso_dir/cache-control" ) ) );
readfile( "$agency_sso_dir/" . $agency_sso_files[ $agency_sso_path ] );
