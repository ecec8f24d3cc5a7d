<?php
/**
 * Installs one WordPress site for the end-to-end tests (run by serve.sh).
 *
 * Usage: php install.php <wordpress folder> <site URL> <title> <plugin|mu-plugin|none|network>
 *
 * The admin account is `admin` with the password in WP_TEST_ADMIN_PASSWORD
 * and the e-mail address in WP_ADMIN_EMAIL (default admin@agency.test: an
 * agency admin who set the site up by hand before it was linked to the
 * dashboard, as the tests want).
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
[ , $agency_sso_root, $agency_sso_url, $agency_sso_title, $agency_sso_mode ] = $argv;
$agency_sso_parts     = parse_url( $agency_sso_url );
$_SERVER['HTTP_HOST'] = $agency_sso_parts['host'] . ( isset( $agency_sso_parts['port'] ) ? ':' . $agency_sso_parts['port'] : '' );
$_SERVER['REQUEST_URI'] = ( $agency_sso_parts['path'] ?? '' ) . '/';
define( 'WP_INSTALLING', true );
require $agency_sso_root . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

// No mail on this machine: the new-site e-mail is not sent.
add_filter( 'pre_wp_mail', '__return_false' );
$agency_sso_result = wp_install( $agency_sso_title, 'admin', getenv( 'WP_ADMIN_EMAIL' ) ?: 'admin@agency.test', false, '', getenv( 'WP_TEST_ADMIN_PASSWORD' ) );
if ( is_wp_error( $agency_sso_result ) ) {
	fwrite( STDERR, $agency_sso_result->get_error_message() . "\n" );
	exit( 1 );
}
update_option( 'permalink_structure', '' );
update_option( 'siteurl', $agency_sso_url );
update_option( 'home', $agency_sso_url );
if ( 'network' === $agency_sso_mode ) {
	// A sub-directory network at this address (serve.sh then switches wp-config.php to it).
	// As wp-admin/network.php does: the network's tables by name, then made.
	require_once ABSPATH . 'wp-admin/includes/network.php';
	foreach ( $wpdb->tables( 'ms_global' ) as $agency_sso_table => $agency_sso_prefixed ) {
		$wpdb->$agency_sso_table = $agency_sso_prefixed;
	}
	install_network();
	$agency_sso_network = populate_network( 1, $_SERVER['HTTP_HOST'], get_option( 'admin_email' ), $agency_sso_title, $_SERVER['REQUEST_URI'], false );
	if ( is_wp_error( $agency_sso_network ) ) {
		fwrite( STDERR, 'making the network: ' . $agency_sso_network->get_error_message() . "\n" );
		exit( 1 );
	}
}
if ( 'plugin' === $agency_sso_mode ) {
	$agency_sso_activated = activate_plugin( 'agency-sso-connector/agency-sso-connector.php' );
	if ( is_wp_error( $agency_sso_activated ) ) {
		fwrite( STDERR, 'activating the plugin: ' . $agency_sso_activated->get_error_message() . "\n" );
		exit( 1 );
	}
}
echo 'installed ' . esc_url_raw( get_site_url() ) . "\n";
