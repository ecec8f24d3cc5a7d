<?php
/**
 * Updates the connector on one of the test WordPress sites (serve.sh)
 * with WordPress' own upgrader, as the Plugins screen's "Update now" does
 * (wp_ajax_update_plugin(): Plugin_Upgrader::bulk_upgrade() with the Ajax
 * skin, the plugin left active), acting as the site's first administrator
 * (on a network, its first super admin). The offer is the one in the
 * update_plugins site transient: run update-check.php first. Only for a
 * site whose connector is a copy (/old): elsewhere the plugin's folder is a
 * link to the repository's, which the upgrader would delete.
 *
 * Usage: php update-plugin.php <site dir> <host:port> <path>
 * Prints JSON and exits 0 either way: {"ok": bool, "code": the error's
 * code or "", "message": the error's message as plain text or "",
 * "version": the installed version afterwards, "active": whether the
 * plugin is active afterwards, "folder": whether its folder is there}.
 * Exits 1 without trying when the site has no connector installed as a
 * plugin or its folder is a link.
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
[ , $agency_sso_root, $agency_sso_host, $agency_sso_path ] = $argv;
$_SERVER['HTTP_HOST']   = $agency_sso_host;
$_SERVER['REQUEST_URI'] = rtrim( $agency_sso_path, '/' ) . '/';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
require $agency_sso_root . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/admin.php';
require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';

if ( ! class_exists( 'Agency_SSO_Updates' ) ) {
	fwrite( STDERR, "the connector plugin is not active on that site\n" );
	exit( 1 );
}
$agency_sso_file = Agency_SSO_Updates::plugin_file();
if ( '' === $agency_sso_file ) {
	fwrite( STDERR, "the connector is not installed as a plugin on that site\n" );
	exit( 1 );
}
// The upgrader deletes the old folder: never a link to the repository's.
if ( is_link( WP_PLUGIN_DIR . '/' . dirname( $agency_sso_file ) ) ) {
	fwrite( STDERR, "the connector's folder on that site is a link to the repository's: updating it would delete that\n" );
	exit( 1 );
}
wp_set_current_user( Agency_SSO_Connect::first_admin_id() );
if ( ! current_user_can( 'update_plugins' ) ) {
	fwrite( STDERR, "the site's first administrator may not update plugins\n" );
	exit( 1 );
}

$agency_sso_skin     = new WP_Ajax_Upgrader_Skin();
$agency_sso_upgrader = new Plugin_Upgrader( $agency_sso_skin );
$agency_sso_result   = $agency_sso_upgrader->bulk_upgrade( array( $agency_sso_file ) );

// As wp_ajax_update_plugin() reads the outcome.
$agency_sso_error = null;
if ( is_wp_error( $agency_sso_skin->result ) ) {
	$agency_sso_error = $agency_sso_skin->result;
} elseif ( $agency_sso_skin->get_errors()->has_errors() ) {
	$agency_sso_error = $agency_sso_skin->get_errors();
} elseif ( ! is_array( $agency_sso_result ) ) {
	$agency_sso_error = new WP_Error( 'unable_to_connect_to_filesystem', 'Unable to connect to the filesystem.' );
} elseif ( true === ( $agency_sso_result[ $agency_sso_file ] ?? null ) ) {
	$agency_sso_error = new WP_Error( 'up_to_date', $agency_sso_upgrader->strings['up_to_date'] );
} elseif ( empty( $agency_sso_result[ $agency_sso_file ] ) ) {
	$agency_sso_error = new WP_Error( 'plugin_update_failed', 'Plugin update failed.' );
}

// What is on disk and in the database now (the plugin's code in memory is the old one).
wp_clean_plugins_cache( false );
wp_cache_delete( 'alloptions', 'options' );
wp_cache_delete( 'active_plugins', 'options' );
$agency_sso_path_on_disk = WP_PLUGIN_DIR . '/' . $agency_sso_file;
echo wp_json_encode(
	array(
		'ok'      => null === $agency_sso_error,
		'code'    => null === $agency_sso_error ? '' : (string) $agency_sso_error->get_error_code(),
		'message' => null === $agency_sso_error ? '' : html_entity_decode( wp_strip_all_tags( $agency_sso_error->get_error_message() ), ENT_QUOTES | ENT_HTML5, 'UTF-8' ),
		'version' => is_file( $agency_sso_path_on_disk ) ? get_plugin_data( $agency_sso_path_on_disk, false, false )['Version'] : null,
		'active'  => is_multisite() && is_plugin_active_for_network( $agency_sso_file ) ? true : in_array( $agency_sso_file, (array) get_option( 'active_plugins', array() ), true ),
		'folder'  => is_dir( dirname( $agency_sso_path_on_disk ) ),
	),
	JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
) . "\n";
exit( 0 );
