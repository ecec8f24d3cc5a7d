<?php
/**
 * The dashboard's key set: found through the issuer's discovery document,
 * cached for the max-age the dashboard sends, refetched on an unknown key
 * id at most once a minute, the last good set kept when a refetch fails,
 * but never trusted longer than Agency_SSO_Config::max_key_staleness()
 * after it was fetched (a key the dashboard withdrew must stop working on
 * a site that cannot reach it).
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * Fetches, checks and caches the JWKS. A set that does not parse is never
 * cached, and never replaces the last good one.
 */
final class Agency_SSO_Keys {

	/** Transient: the current set, kept for the dashboard's max-age. */
	const CACHE = 'agency_sso_jwks';
	/** Option (not autoloaded): the last good set, used when a refetch fails. */
	const LAST_GOOD = 'agency_sso_jwks_last_good';
	/** Transient: set by a refetch for an unknown key id or a failed fetch; none other for a minute. */
	const THROTTLE = 'agency_sso_jwks_fetched_recently';
	/** Option: the last fetch's outcome, for the settings page. */
	const LAST_RESULT = 'agency_sso_jwks_last_result';

	const MIN_AGE     = 60;
	const MAX_AGE     = 86400;
	const DEFAULT_AGE = 300;
	const REFETCH_GAP = 60;
	/** The most read of the discovery document or the key set, bytes. */
	const MAX_BYTES = 65536;

	/**
	 * The PEM public key for a key id, or null when the dashboard does not
	 * publish it. An expired cache is fetched again (unless a fetch failed
	 * within the last minute: then the last good set serves); an unknown
	 * key id is asked for again at most once a minute.
	 *
	 * @param string      $kid    The token header's key id.
	 * @param string|null $issuer The issuer (default: the configured one).
	 * @throws Agency_SSO_Error When the only set at hand is too old to trust (key_set_stale).
	 */
	public static function key_for_kid( string $kid, ?string $issuer = null ): ?string {
		$issuer = $issuer ?? Agency_SSO_Config::issuer();
		if ( '' === $issuer ) {
			return null;
		}
		$set     = self::cached( $issuer );
		$fetched = false;
		if ( null === $set ) {
			if ( ! self::throttled() ) {
				$set     = self::refresh( $issuer );
				$fetched = true;
			} else {
				$set = self::last_good( $issuer );
			}
		}
		self::refuse_stale( $set );
		if ( null !== $set && isset( $set['keys'][ $kid ] ) ) {
			return $set['keys'][ $kid ];
		}
		// An unknown key id: the dashboard may have rotated in an emergency.
		// Ask again, at most once a minute (a stream of made-up key ids must
		// not become a stream of requests to the dashboard).
		if ( ! $fetched && ! self::throttled() ) {
			self::throttle();
			$set = self::refresh( $issuer );
			self::refuse_stale( $set );
			if ( null !== $set && isset( $set['keys'][ $kid ] ) ) {
				return $set['keys'][ $kid ];
			}
		}
		return null;
	}

	/**
	 * Whether a set was fetched longer ago than a site may trust it.
	 *
	 * @param array $set A key set as cached.
	 */
	public static function is_stale( array $set ): bool {
		return Agency_SSO_Config::now() - (int) $set['fetched_at'] > Agency_SSO_Config::max_key_staleness();
	}

	/**
	 * Refuse to use a set that is too old (the last good one, kept while
	 * the dashboard cannot be reached).
	 *
	 * @param array|null $set The set at hand.
	 * @throws Agency_SSO_Error When it is too old.
	 */
	private static function refuse_stale( ?array $set ): void {
		if ( null !== $set && self::is_stale( $set ) ) {
			throw Agency_SSO_Login::refusal( 'key_set_stale' );
		}
	}

	/**
	 * The cached set for this issuer while its max-age lasts, or null.
	 *
	 * @param string $issuer The configured issuer.
	 */
	public static function cached( string $issuer ): ?array {
		$set = get_transient( self::CACHE );
		if ( is_array( $set ) && ( $set['issuer'] ?? '' ) === $issuer && is_array( $set['keys'] ?? null )
			&& (int) $set['fetched_at'] + (int) $set['max_age'] > Agency_SSO_Config::now() ) {
			return $set;
		}
		return null;
	}

	/**
	 * Whether a refetch for an unknown key id, or a failed fetch, happened within the last minute.
	 */
	private static function throttled(): bool {
		$at = get_transient( self::THROTTLE );
		return false !== $at && Agency_SSO_Config::now() - (int) $at < self::REFETCH_GAP;
	}

	/**
	 * No other refetch for a minute.
	 */
	private static function throttle(): void {
		set_transient( self::THROTTLE, Agency_SSO_Config::now(), self::REFETCH_GAP );
	}

	/**
	 * The last good set for this issuer (also when its cache time has passed).
	 *
	 * @param string $issuer The configured issuer.
	 */
	public static function last_good( string $issuer ): ?array {
		$set = get_option( self::LAST_GOOD );
		if ( is_array( $set ) && ( $set['issuer'] ?? '' ) === $issuer && is_array( $set['keys'] ?? null ) ) {
			return $set;
		}
		return null;
	}

	/**
	 * Fetch the set now. On success the set is cached (for the dashboard's
	 * max-age) and returned; on failure the failure is recorded for the
	 * settings page, no fetch is tried again for a minute, and the last
	 * good set is returned (null when there is none). An invalid set is
	 * never cached.
	 *
	 * @param string $issuer The issuer.
	 */
	public static function refresh( string $issuer ): ?array {
		try {
			$set = self::fetch( $issuer );
		} catch ( Agency_SSO_Error $e ) {
			self::throttle();
			update_option(
				self::LAST_RESULT,
				array(
					'ok'      => false,
					'at'      => Agency_SSO_Config::now(),
					'code'    => $e->get_error_code(),
					'message' => $e->getMessage(),
				),
				false
			);
			return self::last_good( $issuer );
		}
		set_transient( self::CACHE, $set, $set['max_age'] );
		update_option( self::LAST_GOOD, $set, false );
		update_option(
			self::LAST_RESULT,
			array(
				'ok'      => true,
				'at'      => $set['fetched_at'],
				'code'    => '',
				'message' => '',
			),
			false
		);
		return $set;
	}

	/**
	 * Discovery, then the key set, both checked.
	 *
	 * @param string $issuer The configured issuer.
	 * @return array{issuer: string, jwks_uri: string, keys: array<string, string>, fetched_at: int, max_age: int}
	 * @throws Agency_SSO_Error When either document is missing or wrong.
	 */
	public static function fetch( string $issuer ): array {
		$discovery = self::get( $issuer . '/.well-known/openid-configuration' );
		try {
			$doc = json_decode( $discovery['body'], true, 16, JSON_THROW_ON_ERROR );
		} catch ( JsonException $e ) {
			throw new Agency_SSO_Error( 'discovery_failed', __( 'The dashboard\'s discovery document is not JSON.', 'agency-sso-connector' ) );
		}
		if ( ! is_array( $doc ) || ( $doc['issuer'] ?? null ) !== $issuer ) {
			throw new Agency_SSO_Error( 'discovery_failed', __( 'The discovery document names another issuer: check AGENCY_SSO_ISSUER (it must be the dashboard\'s address exactly).', 'agency-sso-connector' ) );
		}
		$jwks_uri = $doc['jwks_uri'] ?? null;
		if ( ! is_string( $jwks_uri ) || Agency_SSO_Config::origin( $jwks_uri ) !== Agency_SSO_Config::origin( $issuer ) ) {
			throw new Agency_SSO_Error( 'discovery_failed', __( 'The discovery document\'s jwks_uri is missing or not on the dashboard\'s own address.', 'agency-sso-connector' ) );
		}
		$response = self::get( $jwks_uri );
		$keys     = Agency_SSO_JWT::parse_key_set( $response['body'] );
		$age      = Agency_SSO_JWT::max_age( $response['cache_control'] );
		$age      = null === $age ? self::DEFAULT_AGE : max( self::MIN_AGE, min( self::MAX_AGE, $age ) );
		return array(
			'issuer'     => $issuer,
			'jwks_uri'   => $jwks_uri,
			'keys'       => $keys,
			'fetched_at' => Agency_SSO_Config::now(),
			'max_age'    => $age,
		);
	}

	/**
	 * A GET without redirects, with a short timeout.
	 *
	 * @param string $url The URL.
	 * @return array{body: string, cache_control: string}
	 * @throws Agency_SSO_Error When the dashboard cannot be reached or answers with an error.
	 */
	private static function get( string $url ): array {
		$response = wp_remote_get(
			$url,
			array(
				'timeout'             => 5,
				'redirection'         => 0,
				'limit_response_size' => self::MAX_BYTES,
				'headers'             => array( 'Accept' => 'application/json' ),
				'user-agent'          => 'agency-sso-connector/' . AGENCY_SSO_CONNECTOR_VERSION . '; ' . Agency_SSO_Config::audience(),
			)
		);
		if ( is_wp_error( $response ) ) {
			/* translators: 1: a URL, 2: the HTTP client's error */
			throw new Agency_SSO_Error( 'dashboard_unreachable', sprintf( __( 'Could not reach %1$s: %2$s', 'agency-sso-connector' ), $url, $response->get_error_message() ) );
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		if ( 200 !== $status ) {
			/* translators: 1: a URL, 2: an HTTP status code */
			throw new Agency_SSO_Error( 'dashboard_unreachable', sprintf( __( '%1$s answered with HTTP status %2$d.', 'agency-sso-connector' ), $url, $status ) );
		}
		$body = (string) wp_remote_retrieve_body( $response );
		if ( strlen( $body ) >= self::MAX_BYTES ) {
			/* translators: 1: a URL, 2: a number of KiB */
			throw new Agency_SSO_Error( 'bad_key_set', sprintf( __( '%1$s answered with more than %2$d KiB: not a key set.', 'agency-sso-connector' ), $url, self::MAX_BYTES / 1024 ) );
		}
		return array(
			'body'          => $body,
			'cache_control' => (string) wp_remote_retrieve_header( $response, 'cache-control' ),
		);
	}
}
