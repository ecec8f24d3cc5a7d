<?php
/**
 * WP-CLI: `wp agency-sso connect <code>`, `wp agency-sso disconnect`,
 * `wp agency-sso status`. Loaded only under WP-CLI. Each command acts as
 * the site's first administrator (a network's first super admin) unless
 * `--user` names another, and does what the settings page does.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * Connects this site to the agency dashboard, disconnects it, or shows its status.
 */
final class Agency_SSO_CLI {

	/**
	 * Connect this site to the agency dashboard with a connection code.
	 *
	 * ## OPTIONS
	 *
	 * <code>
	 * : The connection code the dashboard shows (asso1....).
	 *
	 * @param array $args The code.
	 */
	public function connect( array $args ): void {
		self::as_admin();
		$result = Agency_SSO_Connect::with_code( (string) ( $args[0] ?? '' ) );
		if ( is_wp_error( $result ) ) {
			WP_CLI::error( $result->get_error_message() . ' (' . $result->get_error_code() . ')' );
		}
		WP_CLI::success( sprintf( 'Connected to %s (site %s in the dashboard).', $result['issuer'], $result['site_id'] ) );
	}

	/**
	 * Disconnect this site from the agency dashboard.
	 */
	public function disconnect(): void {
		self::as_admin();
		$result = Agency_SSO_Connect::disconnect();
		if ( is_wp_error( $result ) ) {
			WP_CLI::error( $result->get_error_message() . ' (' . $result->get_error_code() . ')' );
		}
		WP_CLI::success( $result['issuer_kept'] ? 'Disconnected; wp-config.php or the network still names the dashboard.' : 'Disconnected.' );
	}

	/**
	 * Show what the site tells the dashboard about itself, as JSON.
	 */
	public function status(): void {
		WP_CLI::line( (string) wp_json_encode( array_merge( Agency_SSO_Connect::status_report(), array( 'connection' => Agency_SSO_Connect::connection() ) ), JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES ) );
	}

	/**
	 * Act as the first administrator unless a user was named.
	 */
	private static function as_admin(): void {
		if ( 0 === get_current_user_id() ) {
			wp_set_current_user( Agency_SSO_Connect::first_admin_id() );
		}
	}
}
