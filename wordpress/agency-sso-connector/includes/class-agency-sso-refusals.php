<?php
/**
 * What this site refused, counted by code for the dashboard's status
 * message: launches and back-channel messages. Codes only: never a token,
 * a person or an address.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * The refusal counters: one option per site (a blog option on a network),
 * not autoloaded, read and written once per refusal.
 */
final class Agency_SSO_Refusals {

	/** Option: `since` (when counting started) and `counts` (code => count). */
	const OPTION = 'agency_sso_refusals';

	/** The most distinct codes kept; past that, new codes count as `other`. */
	const MAX_CODES = 50;

	/**
	 * Count one refusal. Concurrent refusals may lose a count to each other:
	 * these are figures for a person to read, not a ledger.
	 *
	 * @param string $code The refusal's stable code.
	 */
	public static function record( string $code ): void {
		if ( 1 !== preg_match( '/\A[a-z0-9_]{1,64}\z/', $code ) ) {
			$code = 'other';
		}
		$kept = self::read();
		if ( null === $kept ) {
			$kept = array(
				'since'  => Agency_SSO_Config::now(),
				'counts' => array(),
			);
		}
		if ( ! isset( $kept['counts'][ $code ] ) && count( $kept['counts'] ) >= self::MAX_CODES - 1 ) {
			$code = 'other';
		}
		$kept['counts'][ $code ] = (int) ( $kept['counts'][ $code ] ?? 0 ) + 1;
		update_option( self::OPTION, $kept, false );
	}

	/**
	 * The counts as the status message reports them.
	 *
	 * @return array{refusals: object, refusals_since: int|null} `refusals`
	 *         an object (code => count; `{}` in JSON when nothing was refused).
	 */
	public static function report(): array {
		$kept = self::read();
		return array(
			'refusals'       => (object) ( null === $kept ? array() : array_map( 'intval', $kept['counts'] ) ),
			'refusals_since' => null === $kept ? null : (int) $kept['since'],
		);
	}

	/**
	 * Start counting afresh (the site was disconnected).
	 */
	public static function clear(): void {
		delete_option( self::OPTION );
	}

	/**
	 * The option when it has the expected shape, else null.
	 */
	private static function read(): ?array {
		$kept = get_option( self::OPTION );
		if ( ! is_array( $kept ) || ! is_array( $kept['counts'] ?? null ) || ! is_int( $kept['since'] ?? null ) ) {
			return null;
		}
		return $kept;
	}
}
