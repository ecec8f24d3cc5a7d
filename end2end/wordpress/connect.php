<?php
/**
 * Connects one of the test WordPress sites (serve.sh) to the dashboard
 * with a connection code, as `wp agency-sso connect <code>` does: the
 * plugin's Agency_SSO_Connect::with_code(), acting as the site's first
 * administrator (on a network, its first super admin).
 *
 * Usage: php connect.php <site dir> <host:port> <path> <code>
 * (the path picks the site, `/bare` or a network's sub-site `/net/labs`;
 * the site dir is the WordPress folder, the network's for a sub-site)
 * Prints JSON and exits 0 either way: {"ok":true, "issuer", "site_id",
 * "site_url", "connected_at", "via", "created"} or {"ok":false, "code",
 * "message"}.
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
[ , $agency_sso_root, $agency_sso_host, $agency_sso_path, $agency_sso_code ] = $argv;
// WordPress picks the site (a network's sub-site) from the host and the path.
$_SERVER['HTTP_HOST']   = $agency_sso_host;
$_SERVER['REQUEST_URI'] = rtrim( $agency_sso_path, '/' ) . '/';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
require $agency_sso_root . '/wp-load.php';

if ( ! class_exists( 'Agency_SSO_Connect' ) ) {
	fwrite( STDERR, "the connector plugin is not active on that site\n" );
	exit( 1 );
}
wp_set_current_user( Agency_SSO_Connect::first_admin_id() );
$agency_sso_result = Agency_SSO_Connect::with_code( $agency_sso_code );
echo wp_json_encode(
	is_wp_error( $agency_sso_result )
		? array(
			'ok'      => false,
			'code'    => $agency_sso_result->get_error_code(),
			'message' => $agency_sso_result->get_error_message(),
		)
		: array_merge( array( 'ok' => true ), $agency_sso_result ),
	JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
) . "\n";
exit( 0 );
