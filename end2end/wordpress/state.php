<?php
/**
 * What WordPress holds, for the end-to-end tests' assertions (read through
 * WordPress itself, as a site admin would see it).
 *
 * Usage: php state.php <wordpress folder> user <e-mail> [site URL]
 * (the site URL picks a sub-site of a multisite network; for the other
 * questions the AGENCY_SSO_SITE variable does)
 * Prints JSON: null when there is no such user, else its login, display
 * name, roles on that site, the dashboard person it is linked to, its
 * session and application password counts and whether the dashboard
 * locked it on that site.
 *
 * Also, as a site's own people would: `post <e-mail> <title>` publishes a
 * post by that user; `posts <e-mail>` counts theirs; `app-password <e-mail>`
 * makes an application password ({"login", "password"}); `set-password
 * <e-mail> <password>`; `check-password <e-mail> <password>` (true/false);
 * `session <e-mail>` starts a session for the user, as a sign-in would;
 * `add-user <e-mail> <login> <role> [capability...]` adds an account made by
 * hand with that role (made with those capabilities when the site lacks it).
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
[ , $agency_sso_root, $agency_sso_what, $agency_sso_arg ] = $argv;
// The site of a network to ask: the user question's last argument, or AGENCY_SSO_SITE for the others.
$agency_sso_site        = parse_url( 'user' === $agency_sso_what && isset( $argv[4] ) ? $argv[4] : ( getenv( 'AGENCY_SSO_SITE' ) ?: 'http://127.0.0.1/' ) );
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
			'login'         => $agency_sso_user->user_login,
			'display_name'  => $agency_sso_user->display_name,
			'first_name'    => $agency_sso_user->first_name,
			'last_name'     => $agency_sso_user->last_name,
			'roles'         => array_values( $agency_sso_user->roles ),
			'subject'       => get_user_meta( $agency_sso_user->ID, 'agency_sso_subject', true ),
			'sessions'      => count( WP_Session_Tokens::get_instance( $agency_sso_user->ID )->get_all() ),
			'app_passwords' => count( WP_Application_Passwords::get_user_application_passwords( $agency_sso_user->ID ) ),
			'locked'        => (bool) get_user_option( 'agency_sso_locked_at', $agency_sso_user->ID ),
		)
	) . "\n";
	exit( 0 );
}
if ( 'add-user' === $agency_sso_what ) {
	[ , , , , $agency_sso_login, $agency_sso_role ] = $argv;
	if ( null === get_role( $agency_sso_role ) ) {
		add_role( $agency_sso_role, ucwords( str_replace( '_', ' ', $agency_sso_role ) ), array_fill_keys( array_merge( array( 'read' ), array_slice( $argv, 6 ) ), true ) );
	}
	echo wp_json_encode(
		wp_insert_user(
			array(
				'user_login' => $agency_sso_login,
				'user_email' => $agency_sso_arg,
				'user_pass'  => wp_generate_password( 24 ),
				'role'       => $agency_sso_role,
			)
		)
	) . "\n";
	exit( 0 );
}
$agency_sso_person = 'users' === $agency_sso_what ? null : get_user_by( 'email', $agency_sso_arg );
if ( 'post' === $agency_sso_what ) {
	echo wp_json_encode(
		wp_insert_post(
			array(
				'post_title'  => $argv[4],
				'post_status' => 'publish',
				'post_author' => $agency_sso_person->ID,
			)
		)
	) . "\n";
	exit( 0 );
}
if ( 'posts' === $agency_sso_what ) {
	echo wp_json_encode( (int) count_user_posts( $agency_sso_person->ID ) ) . "\n";
	exit( 0 );
}
if ( 'app-password' === $agency_sso_what ) {
	[ $agency_sso_password ] = WP_Application_Passwords::create_new_application_password( $agency_sso_person->ID, array( 'name' => 'end-to-end' ) );
	echo wp_json_encode(
		array(
			'login'    => $agency_sso_person->user_login,
			'password' => $agency_sso_password,
		)
	) . "\n";
	exit( 0 );
}
if ( 'session' === $agency_sso_what ) {
	WP_Session_Tokens::get_instance( $agency_sso_person->ID )->create( time() + 3600 );
	echo wp_json_encode( count( WP_Session_Tokens::get_instance( $agency_sso_person->ID )->get_all() ) ) . "\n";
	exit( 0 );
}
if ( 'set-password' === $agency_sso_what ) {
	wp_set_password( $argv[4], $agency_sso_person->ID );
	echo "true\n";
	exit( 0 );
}
if ( 'check-password' === $agency_sso_what ) {
	$agency_sso_person = get_user_by( 'id', $agency_sso_person->ID );
	echo wp_json_encode( wp_check_password( $argv[4], $agency_sso_person->user_pass, $agency_sso_person->ID ) ) . "\n";
	exit( 0 );
}
if ( 'users' === $agency_sso_what ) {
	echo wp_json_encode( count_users()['total_users'] ) . "\n";
	exit( 0 );
}
fwrite( STDERR, "unknown question\n" );
exit( 2 );
