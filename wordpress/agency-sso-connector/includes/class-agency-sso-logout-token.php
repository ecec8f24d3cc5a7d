<?php
/**
 * The dashboard's back-channel messages: logout tokens (OpenID Connect
 * Back-Channel Logout 1.0) carrying the action the dashboard asks for.
 *
 * Like Agency_SSO_JWT, this file declares a class only and uses no
 * WordPress function, so the same checks run in plain PHPUnit and in the
 * dashboard's test sites.
 *
 * @package Agency_SSO_Connector
 */

/**
 * Verification of a logout token, on top of Agency_SSO_JWT::verify.
 */
final class Agency_SSO_Logout_Token {

	/** The JOSE `typ` of a logout token: a launch token (`JWT`) is never one. */
	const TYP = 'logout+jwt';

	/** The event a logout token must carry (section 2.4). */
	const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

	/** Seconds of clock skew allowed between the dashboard and this site. */
	const LEEWAY = 60;

	/** What the dashboard may ask. */
	const ACTIONS = array( 'end-sessions', 'lock', 'set-role' );

	/**
	 * HTTP status of each refusal of a message; any other code is 401 (the
	 * message is not the dashboard's, or not for this site).
	 */
	const STATUS = array(
		'malformed_token'          => 400,
		'missing_claim'            => 400,
		'not_a_logout_token'       => 400,
		'unknown_action'           => 400,
		'token_replayed'           => 409,
		'role_not_allowed'         => 422,
		'not_configured'           => 503,
		'replay_check_unavailable' => 503,
		'dashboard_unreachable'    => 503,
		'discovery_failed'         => 503,
		'bad_key_set'              => 503,
		'key_set_stale'            => 503,
	);

	/**
	 * The HTTP status that answers a refusal.
	 *
	 * @param string $code The refusal's code.
	 */
	public static function status( string $code ): int {
		return self::STATUS[ $code ] ?? 401;
	}

	/**
	 * Verifies a logout token and returns its claims: signature, issuer,
	 * audience, times and `typ` as Agency_SSO_JWT checks them, then the
	 * logout event, no `nonce`, a known `action`, its order `seq` (a
	 * positive integer, larger for a newer change about the same person and
	 * site), and `wp_role` (a string, empty for "none") on a set-role.
	 * Replay and order are the caller's job.
	 *
	 * @param string   $token       The compact JWS.
	 * @param string   $issuer      The dashboard's issuer.
	 * @param string   $audience    This site's URL.
	 * @param callable $key_for_kid As for Agency_SSO_JWT::verify.
	 * @param int      $now         The current Unix time.
	 * @return array The claims.
	 * @throws Agency_SSO_Error For any refusal, with a stable code.
	 */
	public static function verify( string $token, string $issuer, string $audience, callable $key_for_kid, int $now ): array {
		if ( '' === $token ) {
			throw new Agency_SSO_Error( 'malformed_token', 'The message carries no logout token.' );
		}
		$claims = Agency_SSO_JWT::verify(
			$token,
			array(
				'issuer'       => $issuer,
				'audience'     => $audience,
				'typ'          => self::TYP,
				'leeway'       => self::LEEWAY,
				'max_lifetime' => 300,
				'require'      => array( 'action', 'seq' ),
			),
			$key_for_kid,
			$now
		);
		$events = $claims['events'] ?? null;
		if ( array_key_exists( 'nonce', $claims ) || ! is_array( $events )
			|| ! array_key_exists( self::EVENT, $events ) || ! is_array( $events[ self::EVENT ] ) ) {
			throw new Agency_SSO_Error( 'not_a_logout_token', 'The message is not a logout token: it lacks the back-channel logout event or carries a nonce.' );
		}
		if ( ! is_string( $claims['action'] ) || ! in_array( $claims['action'], self::ACTIONS, true ) ) {
			throw new Agency_SSO_Error( 'unknown_action', 'The message asks for an action this site does not know.' );
		}
		if ( ! is_int( $claims['seq'] ) || $claims['seq'] < 1 ) {
			throw new Agency_SSO_Error( 'missing_claim', 'The message does not say its place in the order of changes (seq).' );
		}
		if ( 'set-role' === $claims['action'] && ! is_string( $claims['wp_role'] ?? null ) ) {
			throw new Agency_SSO_Error( 'missing_claim', 'The message sets a role but does not name it.' );
		}
		return $claims;
	}
}
