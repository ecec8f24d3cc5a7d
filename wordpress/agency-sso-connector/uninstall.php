<?php
/**
 * Removing the plugin removes its settings (the site's, and the network's
 * on a network), its connection to the dashboard, cached keys, refusal
 * counts, used-token table, account links, locks and message order, on
 * every site of a network, and the cached update information. Content and
 * accounts stay.
 *
 * @package Agency_SSO_Connector
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

/**
 * What the plugin keeps on the current site: its options (the connection
 * and the refusal counts among them), transients, used-token table and
 * the per-site user options (locks, message order).
 */
function agency_sso_uninstall_site(): void {
	global $wpdb;
	foreach ( array( 'agency_sso_issuer', 'agency_sso_break_glass', 'agency_sso_block_passwords', 'agency_sso_allow_missing_referer', 'agency_sso_jwks_last_good', 'agency_sso_jwks_last_result', 'agency_sso_db_version', 'agency_sso_connect_pending', 'agency_sso_connection', 'agency_sso_refusals' ) as $agency_sso_option ) {
		delete_option( $agency_sso_option );
	}
	delete_transient( 'agency_sso_jwks' );
	delete_transient( 'agency_sso_jwks_fetched_recently' );
	foreach ( array( 'agency_sso_locked_at', 'agency_sso_last_seq' ) as $agency_sso_meta ) {
		delete_metadata( 'user', 0, $wpdb->get_blog_prefix() . $agency_sso_meta, '', true );
	}
	$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}agency_sso_used_tokens" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared,WordPress.DB.DirectDatabaseQuery,WordPress.DB.DirectDatabaseQuery.SchemaChange -- our own table.
}

if ( is_multisite() ) {
	foreach ( get_sites(
		array(
			'fields' => 'ids',
			'number' => 0,
		)
	) as $agency_sso_site ) {
		switch_to_blog( $agency_sso_site );
		agency_sso_uninstall_site();
		restore_current_blog();
	}
	foreach ( array( 'agency_sso_issuer', 'agency_sso_break_glass', 'agency_sso_block_passwords', 'agency_sso_allow_missing_referer' ) as $agency_sso_option ) {
		delete_site_option( $agency_sso_option );
	}
} else {
	agency_sso_uninstall_site();
}
// The dashboard's update information, cached for the whole network, and the automatic update's event.
delete_site_transient( 'agency_sso_update_info' );
wp_clear_scheduled_hook( 'agency_sso_auto_update' );
// Account links, and the locks of version 0.1 (one for the whole network), are the users'.
delete_metadata( 'user', 0, 'agency_sso_subject', '', true );
delete_metadata( 'user', 0, 'agency_sso_locked_at', '', true );
