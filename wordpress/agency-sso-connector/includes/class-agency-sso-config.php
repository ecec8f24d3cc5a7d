<?php
/**
 * The plugin's settings: the dashboard's issuer URL (a constant in
 * wp-config.php, or the settings page), break-glass logins and the
 * password rule for users linked to the dashboard.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * Reads and checks the settings. Until an issuer is configured the plugin
 * accepts nothing: there is never a default issuer, secret or key.
 */
final class Agency_SSO_Config {

	const OPTION_ISSUER          = 'agency_sso_issuer';
	const OPTION_BREAK_GLASS     = 'agency_sso_break_glass';
	const OPTION_BLOCK_PASSWORDS = 'agency_sso_block_passwords';

	/**
	 * The issuer exactly as configured (no trailing slash), or '' when none
	 * is set or the one set is not an acceptable URL.
	 */
	public static function issuer(): string {
		$raw = self::issuer_is_constant() ? (string) AGENCY_SSO_ISSUER : (string) get_option( self::OPTION_ISSUER, '' );
		$raw = rtrim( trim( $raw ), '/' );
		return null === self::issuer_problem( $raw ) ? $raw : '';
	}

	/**
	 * The value as written, even when it is not acceptable (for the settings page).
	 */
	public static function issuer_as_written(): string {
		return self::issuer_is_constant() ? (string) AGENCY_SSO_ISSUER : (string) get_option( self::OPTION_ISSUER, '' );
	}

	/**
	 * Whether wp-config.php sets the issuer (the settings page then shows it read-only).
	 */
	public static function issuer_is_constant(): bool {
		return defined( 'AGENCY_SSO_ISSUER' );
	}

	/**
	 * Why an issuer URL is not acceptable, or null when it is: https, or
	 * plain http only for the same machine; no user, query or fragment.
	 *
	 * @param string $url The issuer URL without a trailing slash.
	 */
	public static function issuer_problem( string $url ): ?string {
		if ( '' === $url ) {
			return __( 'No issuer is configured.', 'agency-sso-connector' );
		}
		$parts = wp_parse_url( $url );
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] ) ) {
			return __( 'The issuer is not a URL.', 'agency-sso-connector' );
		}
		if ( isset( $parts['user'] ) || isset( $parts['pass'] ) || isset( $parts['query'] ) || isset( $parts['fragment'] ) ) {
			return __( 'The issuer must be a plain URL, without a user name, query or fragment.', 'agency-sso-connector' );
		}
		$scheme = strtolower( $parts['scheme'] );
		if ( 'https' !== $scheme && ! ( 'http' === $scheme && self::is_loopback_host( $parts['host'] ) ) ) {
			return __( 'The issuer must use https (plain http only for a dashboard on this machine).', 'agency-sso-connector' );
		}
		return null;
	}

	/**
	 * Whether the host names this machine.
	 *
	 * @param string $host A URL's host.
	 */
	public static function is_loopback_host( string $host ): bool {
		$host = strtolower( trim( $host, '[]' ) );
		return 'localhost' === $host || '::1' === $host || 1 === preg_match( '/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/', $host );
	}

	/**
	 * The scheme, host and port of a URL, lower-cased ('' when it has none).
	 *
	 * @param string $url Any URL.
	 */
	public static function origin( string $url ): string {
		$parts = wp_parse_url( $url );
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] ) ) {
			return '';
		}
		$scheme = strtolower( $parts['scheme'] );
		$port   = isset( $parts['port'] ) ? (int) $parts['port'] : ( 'https' === $scheme ? 443 : 80 );
		$default = ( 'https' === $scheme && 443 === $port ) || ( 'http' === $scheme && 80 === $port );
		return $scheme . '://' . strtolower( $parts['host'] ) . ( $default ? '' : ':' . $port );
	}

	/**
	 * The time tokens and the key cache are checked against: the server's
	 * clock, through the `agency_sso_now` filter (the end-to-end tests move
	 * it, as they move the dashboard's; nothing else should).
	 */
	public static function now(): int {
		return (int) apply_filters( 'agency_sso_now', time() );
	}

	/**
	 * This site's URL as WordPress reports it, without a trailing slash: the
	 * audience every token for this site must carry, and the URL to give the
	 * dashboard.
	 */
	public static function audience(): string {
		return untrailingslashit( get_site_url() );
	}

	/**
	 * Whether users linked to the dashboard may not sign in with a password
	 * (default on; break-glass logins excepted).
	 */
	public static function block_passwords(): bool {
		return '0' !== (string) get_option( self::OPTION_BLOCK_PASSWORDS, '1' );
	}

	/**
	 * Whether the break-glass list is set in wp-config.php.
	 */
	public static function break_glass_is_constant(): bool {
		return defined( 'AGENCY_SSO_BREAK_GLASS' );
	}

	/**
	 * The logins that may always sign in with their password, so that the
	 * site is not locked out when the dashboard or its identity provider is
	 * down: AGENCY_SSO_BREAK_GLASS (comma-separated) or the setting.
	 *
	 * @return string[]
	 */
	public static function break_glass_logins(): array {
		$raw = self::break_glass_is_constant() ? (string) AGENCY_SSO_BREAK_GLASS : (string) get_option( self::OPTION_BREAK_GLASS, '' );
		$out = array();
		foreach ( preg_split( '/[\s,]+/', $raw ) as $login ) {
			$login = sanitize_user( $login, true );
			if ( '' !== $login ) {
				$out[] = $login;
			}
		}
		return array_values( array_unique( $out ) );
	}
}
