<?php
/**
 * PHP's own server runs the test WordPress sites with this router: every
 * request is served as usual, except those for a sub-site of the /net
 * network (a sub-directory multisite), which Apache's rewrite rules for
 * WordPress networks would send to the network's own files:
 * /net/{site}/wp-login.php runs /net/wp-login.php, and so on.
 *
 * @package Agency_SSO_Connector
 */

$agency_sso_root = rtrim( $_SERVER['DOCUMENT_ROOT'], '/' );
$agency_sso_path = (string) parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH );
if ( file_exists( $agency_sso_root . $agency_sso_path )
	|| ! preg_match( '#^/net/[a-z0-9-]+(/wp-(admin|includes|content)(/.*)?|/wp-[a-z-]+\.php)$#', $agency_sso_path, $agency_sso_m ) ) {
	return false;
}
$agency_sso_file = $agency_sso_root . '/net' . $agency_sso_m[1];
if ( is_dir( $agency_sso_file ) ) {
	$agency_sso_file = rtrim( $agency_sso_file, '/' ) . '/index.php';
}
if ( ! is_file( $agency_sso_file ) ) {
	return false;
}
if ( str_ends_with( $agency_sso_file, '.php' ) ) {
	$_SERVER['SCRIPT_FILENAME'] = $agency_sso_file;
	$_SERVER['SCRIPT_NAME']     = substr( $agency_sso_file, strlen( $agency_sso_root ) );
	$_SERVER['PHP_SELF']        = $_SERVER['SCRIPT_NAME'];
	chdir( dirname( $agency_sso_file ) );
	require $agency_sso_file;
	return true;
}
$agency_sso_types = array(
	'css'   => 'text/css',
	'js'    => 'text/javascript',
	'svg'   => 'image/svg+xml',
	'png'   => 'image/png',
	'gif'   => 'image/gif',
	'woff'  => 'font/woff',
	'woff2' => 'font/woff2',
);
header( 'Content-Type: ' . ( $agency_sso_types[ pathinfo( $agency_sso_file, PATHINFO_EXTENSION ) ] ?? 'application/octet-stream' ) );
readfile( $agency_sso_file );
return true;
