<?php
/**
 * Adds a sub-site to the test network (serve.sh's /net), activates the
 * connector for the whole network and sets the network's issuer, as a
 * network admin would.
 *
 * Usage: php network-site.php <network's folder> <host:port> <slug> <title> <issuer>
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
[ , $agency_sso_root, $agency_sso_host, $agency_sso_slug, $agency_sso_title, $agency_sso_issuer ] = $argv;
$_SERVER['HTTP_HOST']   = $agency_sso_host;
$_SERVER['REQUEST_URI'] = '/net/';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
require $agency_sso_root . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

$agency_sso_blog = wpmu_create_blog( $agency_sso_host, "/net/$agency_sso_slug/", $agency_sso_title, 1 );
if ( is_wp_error( $agency_sso_blog ) ) {
	fwrite( STDERR, 'adding the sub-site: ' . $agency_sso_blog->get_error_message() . "\n" );
	exit( 1 );
}
// WordPress drops the port from a new site's domain (networks are meant for
// ports 80 and 443); on this test server the site lives at host:port.
$wpdb->update( $wpdb->blogs, array( 'domain' => $agency_sso_host ), array( 'blog_id' => $agency_sso_blog ) );
clean_blog_cache( $agency_sso_blog );
foreach ( array( 'siteurl', 'home' ) as $agency_sso_option ) {
	update_blog_option( $agency_sso_blog, $agency_sso_option, "http://$agency_sso_host/net/$agency_sso_slug" );
}
$agency_sso_activated = activate_plugin( 'agency-sso-connector/agency-sso-connector.php', '', true );
if ( is_wp_error( $agency_sso_activated ) ) {
	fwrite( STDERR, 'activating the plugin for the network: ' . $agency_sso_activated->get_error_message() . "\n" );
	exit( 1 );
}
update_site_option( 'agency_sso_issuer', $agency_sso_issuer );
echo 'added ' . esc_url_raw( get_site_url( $agency_sso_blog ) ) . "\n";
