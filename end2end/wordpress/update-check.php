<?php
/**
 * WordPress' plugin update check on one of the test WordPress sites
 * (serve.sh), as a fresh one: the update_plugins site transient deleted
 * (as WordPress does after installing or updating a plugin), the
 * connector's cached update information forgotten (as "Check again" on
 * Dashboard → Updates does), then wp_update_plugins(). Whether WordPress.org
 * answers is the site's test switch (<site dir>.wporg-up, on /old).
 *
 * Usage: php update-check.php <site dir> <host:port> <path>
 * (the path picks the site, `/old` or a network's sub-site `/net/team`)
 * Prints JSON and exits 0: {"installed": the connector's installed
 * version, "offered": the version in the transient's response or null,
 * "package": its package URL or null, "in_no_update": whether the
 * transient lists the connector as up to date}. Why the dashboard's
 * update information could not be read, if it could not, goes to stderr.
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
[ , $agency_sso_root, $agency_sso_host, $agency_sso_path ] = $argv;
// WordPress picks the site (a network's sub-site) from the host and the path.
$_SERVER['HTTP_HOST']   = $agency_sso_host;
$_SERVER['REQUEST_URI'] = rtrim( $agency_sso_path, '/' ) . '/';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
require $agency_sso_root . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

if ( ! class_exists( 'Agency_SSO_Updates' ) ) {
	fwrite( STDERR, "the connector plugin is not active on that site\n" );
	exit( 1 );
}
$agency_sso_file = Agency_SSO_Updates::plugin_file();
if ( '' === $agency_sso_file ) {
	fwrite( STDERR, "the connector is not installed as a plugin on that site\n" );
	exit( 1 );
}
delete_site_transient( 'update_plugins' );
Agency_SSO_Updates::forget();
wp_update_plugins();

$agency_sso_updates = get_site_transient( 'update_plugins' );
$agency_sso_offer   = is_object( $agency_sso_updates ) && isset( $agency_sso_updates->response[ $agency_sso_file ] ) ? (object) $agency_sso_updates->response[ $agency_sso_file ] : null;
$agency_sso_check   = Agency_SSO_Updates::cached( Agency_SSO_Config::issuer() );
if ( null !== $agency_sso_check && null === $agency_sso_check['info'] ) {
	fwrite( STDERR, 'update information: ' . $agency_sso_check['code'] . ': ' . $agency_sso_check['message'] . "\n" );
}
echo wp_json_encode(
	array(
		'installed'    => get_plugins()[ $agency_sso_file ]['Version'] ?? null,
		'offered'      => null === $agency_sso_offer ? null : (string) $agency_sso_offer->new_version,
		'package'      => null === $agency_sso_offer ? null : (string) $agency_sso_offer->package,
		'in_no_update' => is_object( $agency_sso_updates ) && isset( $agency_sso_updates->no_update[ $agency_sso_file ] ),
	),
	JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
) . "\n";
exit( 0 );
