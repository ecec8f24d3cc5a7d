<?php
/**
 * Adds an account to the test network (serve.sh's /net) that administers
 * one sub-site only, as a client's own site admin: a member of that site
 * with the administrator role there, of no other site, not a super admin.
 *
 * Usage: php network-user.php <network's folder> <host:port> <slug> <login> <e-mail> <password>
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
[ , $agency_sso_root, $agency_sso_host, $agency_sso_slug, $agency_sso_login, $agency_sso_email, $agency_sso_password ] = $argv;
$_SERVER['HTTP_HOST']   = $agency_sso_host;
$_SERVER['REQUEST_URI'] = '/net/';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
require $agency_sso_root . '/wp-load.php';

// wpmu_create_user leaves the new account a member of no site.
$agency_sso_user = wpmu_create_user( $agency_sso_login, $agency_sso_password, $agency_sso_email );
$agency_sso_blog = get_blog_id_from_url( $agency_sso_host, "/net/$agency_sso_slug/" );
if ( ! $agency_sso_user || ! $agency_sso_blog ) {
	fwrite( STDERR, "adding $agency_sso_login to /net/$agency_sso_slug failed\n" );
	exit( 1 );
}
$agency_sso_added = add_user_to_blog( $agency_sso_blog, $agency_sso_user, 'administrator' );
if ( is_wp_error( $agency_sso_added ) ) {
	fwrite( STDERR, 'adding the member: ' . $agency_sso_added->get_error_message() . "\n" );
	exit( 1 );
}
echo "added $agency_sso_login, administrator of /net/$agency_sso_slug\n";
