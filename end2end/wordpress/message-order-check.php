<?php
/**
 * The connector's order of messages in a real WordPress: a lock or
 * set-role acts only when its seq is the last one applied on this site (the
 * same message again) or newer; an older one does not act, and the newest
 * seq stays. Prints one line per check and exits 1 at the first that fails.
 *
 * Usage: php message-order-check.php <wordpress folder>
 *
 * @package Agency_SSO_Connector
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
$_SERVER['HTTP_HOST'] = '127.0.0.1';
require $argv[1] . '/wp-load.php';

function agency_sso_check( bool $ok, string $what ): void {
	if ( ! $ok ) {
		fwrite( STDERR, "FAILED: $what\n" );
		exit( 1 );
	}
	echo "ok: $what\n";
}

$agency_sso_id = wp_insert_user(
	array(
		'user_login' => 'order-check-' . wp_generate_password( 8, false ),
		'user_email' => 'order-check-' . wp_generate_password( 8, false ) . '@client.test',
		'user_pass'  => wp_generate_password( 24 ),
		'role'       => 'subscriber',
	)
);
$agency_sso_user = new WP_User( $agency_sso_id );
$agency_sso_last = function () use ( $agency_sso_id ) {
	return (int) get_user_option( Agency_SSO_Back_Channel::META_LAST_SEQ, $agency_sso_id );
};
agency_sso_check( Agency_SSO_Back_Channel::take_turn( $agency_sso_user, 7 ), 'a first message (seq 7) acts' );
agency_sso_check( Agency_SSO_Back_Channel::take_turn( $agency_sso_user, 7 ), 'the same message again (its answer was lost) acts again' );
agency_sso_check( ! Agency_SSO_Back_Channel::take_turn( $agency_sso_user, 5 ), 'an older one (seq 5) does not act' );
agency_sso_check( 7 === $agency_sso_last(), 'the last seq is still 7' );
agency_sso_check( Agency_SSO_Back_Channel::take_turn( $agency_sso_user, 12 ), 'a newer one (seq 12) acts' );
agency_sso_check( 12 === $agency_sso_last(), 'the last seq is 12' );
require_once ABSPATH . 'wp-admin/includes/user.php';
wp_delete_user( $agency_sso_id );
echo "message order: all checks passed\n";
