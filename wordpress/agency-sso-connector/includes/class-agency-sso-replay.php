<?php
/**
 * Single-use token ids, in the database so that every PHP worker of the
 * site shares them. An id is kept until its token has expired.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * The table of token ids already used.
 */
final class Agency_SSO_Replay {

	const DB_VERSION        = '1';
	const DB_VERSION_OPTION = 'agency_sso_db_version';

	/**
	 * The table's name on this site.
	 */
	public static function table(): string {
		global $wpdb;
		return $wpdb->prefix . 'agency_sso_used_tokens';
	}

	/**
	 * Create the table (activation, and on first use for a must-use install
	 * or a new site of a network).
	 */
	public static function install(): void {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$table   = self::table();
		$charset = $wpdb->get_charset_collate();
		dbDelta(
			"CREATE TABLE {$table} (
				jti_hash char(64) NOT NULL,
				expires_at bigint(20) unsigned NOT NULL,
				PRIMARY KEY  (jti_hash),
				KEY expires_at (expires_at)
			) {$charset};"
		);
		update_option( self::DB_VERSION_OPTION, self::DB_VERSION );
	}

	/**
	 * Until when a token's id is kept: its `exp` plus twice the leeway.
	 * Every web server of the site deletes old rows by its own clock; one
	 * that runs up to a leeway ahead must not delete an id that one running
	 * a leeway behind would still accept the token for.
	 *
	 * @param int $exp    The token's expiry.
	 * @param int $leeway The clock skew the verifier allows.
	 */
	public static function keep_until( int $exp, int $leeway ): int {
		return $exp + 2 * $leeway;
	}

	/**
	 * Record a token id as used. True the first time; false when it was
	 * used before (a replay).
	 *
	 * @param string $jti        The token's id.
	 * @param int    $expires_at Until when it must be remembered ({@see self::keep_until()}).
	 * @throws Agency_SSO_Error When the table cannot be written: fail closed.
	 */
	public static function claim( string $jti, int $expires_at ): bool {
		global $wpdb;
		if ( self::DB_VERSION !== get_option( self::DB_VERSION_OPTION ) ) {
			self::install();
		}
		$table = self::table();
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared,WordPress.DB.DirectDatabaseQuery -- the table name is ours; a cache would defeat the check.
		$wpdb->query( $wpdb->prepare( "DELETE FROM {$table} WHERE expires_at < %d", Agency_SSO_Config::now() ) );
		$inserted = $wpdb->query(
			$wpdb->prepare(
				"INSERT IGNORE INTO {$table} (jti_hash, expires_at) VALUES (%s, %d)",
				hash( 'sha256', $jti ),
				$expires_at
			)
		);
		// phpcs:enable
		if ( false === $inserted ) {
			throw Agency_SSO_Login::refusal( 'replay_check_unavailable' );
		}
		return 1 === (int) $inserted;
	}
}
