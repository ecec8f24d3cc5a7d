<?php
/**
 * The dashboard's site messages: signed requests about the site itself
 * (confirm a connection, report its status, fetch the key set now), never
 * about a person.
 *
 * Like Agency_SSO_JWT, this file declares a class only and uses no
 * WordPress function, so the same checks run in plain PHPUnit and in the
 * dashboard's test sites.
 *
 * @package Agency_SSO_Connector
 */

/**
 * Verification of a site message, on top of Agency_SSO_JWT::verify.
 */
final class Agency_SSO_Site_Message {

	/** The JOSE `typ` of a site message: never a launch token (`JWT`) nor a logout token (`logout+jwt`). */
	const TYP = 'agency-sso-site+jwt';

	/** Seconds of clock skew allowed between the dashboard and this site. */
	const LEEWAY = 60;

	/** The longest lifetime (exp - iat) a site message may have, seconds. */
	const MAX_LIFETIME = 300;

	/** What the dashboard may ask. */
	const ACTIONS = array( 'connect', 'status', 'refresh-keys' );

	/**
	 * HTTP status of the refusals only a site message has; the others are
	 * answered as for a logout token (Agency_SSO_Logout_Token::STATUS).
	 */
	const STATUS = array(
		'not_a_site_message'    => 400,
		'no_pending_connection' => 409,
	);

	/**
	 * The HTTP status that answers a refusal.
	 *
	 * @param string $code The refusal's code.
	 */
	public static function status( string $code ): int {
		return self::STATUS[ $code ] ?? Agency_SSO_Logout_Token::status( $code );
	}

	/**
	 * Verifies a site message and returns its claims: signature, issuer,
	 * audience, times and `typ` as Agency_SSO_JWT checks them (without a
	 * person: no `sub` or `email` needed), then no `events`, `sub` or
	 * `nonce` (the marks of a message about a person), a known `action`,
	 * and on a `connect` the `attempt` it answers (a string). Replay, and
	 * whether the attempt is the pending one, are the caller's job.
	 *
	 * @param string   $token       The compact JWS.
	 * @param string   $issuer      The dashboard's issuer (for a `connect`, the pending attempt's).
	 * @param string   $audience    This site's URL.
	 * @param callable $key_for_kid As for Agency_SSO_JWT::verify.
	 * @param int      $now         The current Unix time.
	 * @return array The claims.
	 * @throws Agency_SSO_Error For any refusal, with a stable code.
	 */
	public static function verify( string $token, string $issuer, string $audience, callable $key_for_kid, int $now ): array {
		if ( '' === $token ) {
			throw new Agency_SSO_Error( 'malformed_token', 'The message carries no site token.' );
		}
		$claims = Agency_SSO_JWT::verify(
			$token,
			array(
				'issuer'       => $issuer,
				'audience'     => $audience,
				'typ'          => self::TYP,
				'leeway'       => self::LEEWAY,
				'max_lifetime' => self::MAX_LIFETIME,
				'require'      => array( 'action' ),
				'person'       => false,
			),
			$key_for_kid,
			$now
		);
		foreach ( array( 'events', 'sub', 'nonce' ) as $name ) {
			if ( array_key_exists( $name, $claims ) ) {
				throw new Agency_SSO_Error( 'not_a_site_message', 'The message is not a site message: it names a person or carries an event or a nonce.' );
			}
		}
		if ( ! is_string( $claims['action'] ) || ! in_array( $claims['action'], self::ACTIONS, true ) ) {
			throw new Agency_SSO_Error( 'unknown_action', 'The message asks for an action this site does not know.' );
		}
		if ( 'connect' === $claims['action'] && ( ! is_string( $claims['attempt'] ?? null ) || '' === $claims['attempt'] ) ) {
			throw new Agency_SSO_Error( 'missing_claim', 'The message confirms a connection but does not say which attempt it answers.' );
		}
		return $claims;
	}

	/**
	 * The action a message says it asks for, read WITHOUT checking anything
	 * ('' when it cannot be read): only to choose the dashboard whose keys
	 * must verify it (a `connect` answers the pending attempt's dashboard,
	 * the others the configured one). Nothing else may be read from an
	 * unverified token; the verified claims say the same action or the
	 * message is refused.
	 *
	 * @param string $token The compact JWS.
	 */
	public static function unverified_action( string $token ): string {
		$parts = explode( '.', $token );
		if ( 3 !== count( $parts ) || strlen( $token ) > Agency_SSO_JWT::MAX_TOKEN_BYTES ) {
			return '';
		}
		try {
			$claims = json_decode( Agency_SSO_JWT::base64url_decode( $parts[1] ), true, Agency_SSO_JWT::JSON_DEPTH );
		} catch ( Agency_SSO_Error $e ) {
			return '';
		}
		return is_array( $claims ) && is_string( $claims['action'] ?? null ) ? $claims['action'] : '';
	}
}
