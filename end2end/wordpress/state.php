<?php
/**
 * What WordPress holds, for the end-to-end tests' assertions (read through
 * WordPress itself, as a site admin would see it).
 *
 * Usage: php state.php <wordpress folder> user <e-mail> [site URL]
 * (the site URL picks a sub-site of a multisite network)
 * Prints JSON: null when there is no such user, else its login, display
 * name, roles, the dashboard person it is linked to and its session count.
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
[ , $agency_sso_root, $agency_sso_what, $agency_sso_arg ] = $argv;
$agency_sso_site        = parse_url( $argv[4] ?? 'http://127.0.0.1/' );
$_SERVER['HTTP_HOST']   = $agency_sso_site['host'] . ( isset( $agency_sso_site['port'] ) ? ':' . $agency_sso_site['port'] : '' );
$_SERVER['REQUEST_URI'] = rtrim( $agency_sso_site['path'] ?? '', '/' ) . '/';
require $agency_sso_root . '/wp-load.php';

if ( 'user' === $agency_sso_what ) {
	$agency_sso_user = get_user_by( 'email', $agency_sso_arg );
	if ( ! $agency_sso_user ) {
		echo "null\n";
		exit( 0 );
	}
	echo wp_json_encode(
		array(
			'login'        => $agency_sso_user->user_login,
			'display_name' => $agency_sso_user->display_name,
			'first_name'   => $agency_sso_user->first_name,
			'last_name'    => $agency_sso_user->last_name,
			'roles'        => array_values( $agency_sso_user->roles ),
			'subject'      => get_user_meta( $agency_sso_user->ID, 'agency_sso_subject', true ),
			'sessions'     => count( WP_Session_Tokens::get_instance( $agency_sso_user->ID )->get_all() ),
		)
	) . "\n";
	exit( 0 );
}
if ( 'users' === $agency_sso_what ) {
	echo wp_json_encode( count_users()['total_users'] ) . "\n";
	exit( 0 );
}
fwrite( STDERR, "unknown question\n" );
exit( 2 );
