<?php
/**
 * The plugin's settings: the dashboard's issuer URL (a constant in
 * wp-config.php, or the settings page), break-glass logins, the password
 * rule for users linked to the dashboard and whether a launch without a
 * Referer is accepted. On a multisite network they are the network's
 * (Network Admin → Settings → Agency SSO, super admins only): a sub-site
 * administrator is not a network administrator, and a session the plugin
 * starts is valid on every site of the network.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * Reads and checks the settings. Until an issuer is configured the plugin
 * accepts nothing: there is never a default issuer, secret or key.
 */
final class Agency_SSO_Config {

	const OPTION_ISSUER           = 'agency_sso_issuer';
	const OPTION_BREAK_GLASS      = 'agency_sso_break_glass';
	const OPTION_BLOCK_PASSWORDS  = 'agency_sso_block_passwords';
	const OPTION_ALLOW_NO_REFERER = 'agency_sso_allow_missing_referer';

	/** How long the last good key set may serve when the dashboard cannot be reached, seconds. */
	const MAX_KEY_STALENESS = 7 * 86400;

	/**
	 * A setting: the network's on a multisite network, the site's otherwise.
	 *
	 * @param string $name    The option's name.
	 * @param mixed  $default When it is not set.
	 * @return mixed
	 */
	public static function get( string $name, $default = '' ) {
		return is_multisite() ? get_site_option( $name, $default ) : get_option( $name, $default );
	}

	/**
	 * Store a setting where {@see self::get()} reads it.
	 *
	 * @param string $name  The option's name.
	 * @param mixed  $value The value.
	 */
	public static function set( string $name, $value ): void {
		if ( is_multisite() ) {
			update_site_option( $name, $value );
		} else {
			update_option( $name, $value );
		}
	}

	/**
	 * The capability that changes the settings: the network's on a network
	 * (a sub-site administrator must not point the network's accounts at a
	 * dashboard they run), manage_options on a single site.
	 */
	public static function settings_capability(): string {
		return is_multisite() ? 'manage_network_options' : 'manage_options';
	}

	/**
	 * The capability that links or unlinks accounts: on a network, users
	 * are the network's, so managing them is a network administrator's job.
	 */
	public static function users_capability(): string {
		return is_multisite() ? 'manage_network_users' : 'manage_options';
	}

	/**
	 * The issuer exactly as configured (no trailing slash), or '' when none
	 * is set or the one set is not an acceptable URL.
	 */
	public static function issuer(): string {
		$raw = rtrim( trim( self::issuer_as_written() ), '/' );
		return null === self::issuer_problem( $raw ) ? $raw : '';
	}

	/**
	 * The value as written, even when it is not acceptable (for the settings page).
	 */
	public static function issuer_as_written(): string {
		return self::issuer_is_constant() ? (string) AGENCY_SSO_ISSUER : (string) self::get( self::OPTION_ISSUER, '' );
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
	 * This site's URL as WordPress stores it, without a trailing slash: the
	 * audience every token for this site must carry, and the URL to give the
	 * dashboard. The scheme is the stored one, not the request's: behind a
	 * proxy that ends TLS and forwards plain http (with X-Forwarded-Proto,
	 * which WordPress does not read), get_site_url() alone would say http.
	 */
	public static function audience(): string {
		return untrailingslashit( get_site_url( null, '', self::stored_scheme() ) );
	}

	/**
	 * The scheme of the site URL as stored (siteurl, or WP_SITEURL).
	 */
	public static function stored_scheme(): string {
		$scheme = strtolower( (string) wp_parse_url( (string) get_option( 'siteurl' ), PHP_URL_SCHEME ) );
		return 'https' === $scheme ? 'https' : 'http';
	}

	/**
	 * Whether a launch that carries no Referer is accepted (off by default:
	 * see Agency_SSO_Login::check_referer()).
	 */
	public static function allow_missing_referer(): bool {
		return '1' === (string) self::get( self::OPTION_ALLOW_NO_REFERER, '0' );
	}

	/**
	 * How long the last good key set serves while the dashboard cannot be
	 * reached (the `agency_sso_max_key_staleness` filter, at least a day: the
	 * longest a set is cached, so a cached set is never too old to use).
	 */
	public static function max_key_staleness(): int {
		return max( Agency_SSO_Keys::MAX_AGE, (int) apply_filters( 'agency_sso_max_key_staleness', self::MAX_KEY_STALENESS ) );
	}

	/**
	 * Whether users linked to the dashboard may not sign in with a password
	 * (default on; break-glass logins excepted).
	 */
	public static function block_passwords(): bool {
		return '0' !== (string) self::get( self::OPTION_BLOCK_PASSWORDS, '1' );
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
		$raw = self::break_glass_is_constant() ? (string) AGENCY_SSO_BREAK_GLASS : (string) self::get( self::OPTION_BREAK_GLASS, '' );
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
