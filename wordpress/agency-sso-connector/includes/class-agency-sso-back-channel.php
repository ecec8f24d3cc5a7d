<?php
/**
 * The dashboard's back-channel: signed messages (OpenID Connect
 * Back-Channel Logout 1.0 logout tokens, `typ` logout+jwt, in the form
 * field `logout_token`) that end a person's sessions, lock their account
 * or set their role on this site, and site messages (`typ`
 * agency-sso-site+jwt, in `site_token`) that confirm a connection, ask for
 * the site's status or have it fetch the key set now, POSTed to the REST
 * route agency-sso/v1/back-channel. Also the lock
 * itself: a locked account signs in neither with its password, nor with an
 * application password, nor with a launch token issued before the lock,
 * and a session it already holds is not honoured. A lock and the order of
 * messages are kept per site: on a network, a launch into one site lifts
 * nothing on another.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * The REST route, the actions and the lock.
 */
final class Agency_SSO_Back_Channel {

	const REST_NAMESPACE = 'agency-sso/v1';
	const REST_ROUTE     = '/back-channel';

	/** User option (per site): the dashboard's time (its token's `iat`) when the account was locked here; 0 when lifted. */
	const META_LOCKED_AT = 'agency_sso_locked_at';

	/** User option (per site): the `seq` of the last lock or set-role carried out here. */
	const META_LAST_SEQ = 'agency_sso_last_seq';

	/** The actions that set a state, and so keep their order. */
	const ORDERED_ACTIONS = array( 'lock', 'set-role' );

	/**
	 * Hook into WordPress.
	 */
	public static function register(): void {
		add_action( 'rest_api_init', array( self::class, 'routes' ) );
		add_filter( 'authenticate', array( self::class, 'refuse_locked' ), 40, 1 );
		add_filter( 'wp_is_application_passwords_available_for_user', array( self::class, 'application_passwords_available' ), 10, 2 );
		// After WordPress has read the cookie (priority 10) and application passwords (20).
		add_filter( 'determine_current_user', array( self::class, 'not_while_locked' ), 99 );
	}

	/**
	 * The route. Anyone may POST: the signed, single-use token is the
	 * authorisation, checked before anything is read or changed.
	 */
	public static function routes(): void {
		register_rest_route(
			self::REST_NAMESPACE,
			self::REST_ROUTE,
			array(
				'methods'             => 'POST',
				'callback'            => array( self::class, 'receive' ),
				'permission_callback' => '__return_true',
				// One of the two, checked in receive() (WordPress cannot say "exactly one").
				'args'                => array(
					'logout_token' => array(
						'type' => 'string',
					),
					'site_token'   => array(
						'type' => 'string',
					),
				),
			)
		);
	}

	/**
	 * A message from the dashboard: what was done, or why nothing was.
	 *
	 * @param WP_REST_Request $request The request.
	 */
	public static function receive( WP_REST_Request $request ): WP_REST_Response {
		nocache_headers();
		$logout_token = $request->get_param( 'logout_token' );
		$site_token   = $request->get_param( 'site_token' );
		$is_site      = null !== $site_token;
		try {
			if ( ( null === $logout_token ) === ( null === $site_token ) ) {
				throw new Agency_SSO_Error( 'malformed_token', __( 'A message carries exactly one token: a logout token or a site token.', 'agency-sso-connector' ) );
			}
			$done = $is_site ? self::handle_site_message( (string) $site_token ) : self::handle( (string) $logout_token );
		} catch ( Agency_SSO_Error $e ) {
			$code = $e->get_error_code();
			Agency_SSO_Refusals::record( $code );
			// phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log -- a refused message is worth a line in the site's log; the token is not in it.
			error_log( 'agency-sso-connector: back-channel ' . ( $is_site ? 'site ' : '' ) . 'message refused: ' . $code );
			return new WP_REST_Response(
				array(
					'error'   => $code,
					'message' => $e->getMessage(),
				),
				$is_site ? Agency_SSO_Site_Message::status( $code ) : Agency_SSO_Logout_Token::status( $code )
			);
		}
		return new WP_REST_Response( $done, 200 );
	}

	/**
	 * Verify a site message and answer it. A `connect` answers this site's
	 * pending connection attempt: it is verified against that attempt's
	 * dashboard (whose keys are fetched for it), and its `attempt` must be
	 * the pending one. A `status` or `refresh-keys` comes from the
	 * configured dashboard, as a logout token does.
	 *
	 * @param string $token The site message.
	 * @return array The answer: `jti`, `action` and the site's facts
	 *               (Agency_SSO_Connect::site_facts()); for `status` and
	 *               `refresh-keys` its status (Agency_SSO_Connect::status_report()).
	 * @throws Agency_SSO_Error On any refusal, before anything is changed.
	 */
	public static function handle_site_message( string $token ): array {
		// Read unchecked only to choose the dashboard that must have signed it.
		$action  = Agency_SSO_Site_Message::unverified_action( $token );
		$pending = null;
		if ( 'connect' === $action ) {
			$pending = Agency_SSO_Connect::pending();
			if ( null === $pending ) {
				throw new Agency_SSO_Error( 'no_pending_connection', __( 'This site is not waiting for a connection to be confirmed (none was started, or it was started more than 15 minutes ago).', 'agency-sso-connector' ) );
			}
			$issuer      = $pending['issuer'];
			$key_for_kid = static function ( string $kid ) use ( $issuer ): ?string {
				return Agency_SSO_Keys::key_for_kid( $kid, $issuer );
			};
		} else {
			$issuer = Agency_SSO_Config::issuer();
			if ( '' === $issuer ) {
				throw Agency_SSO_Login::refusal( 'not_configured' );
			}
			$key_for_kid = array( Agency_SSO_Keys::class, 'key_for_kid' );
		}
		$claims = Agency_SSO_Site_Message::verify( $token, $issuer, Agency_SSO_Config::audience(), $key_for_kid, Agency_SSO_Config::now() );
		if ( $claims['action'] !== $action ) {
			throw new Agency_SSO_Error( 'malformed_token', __( 'The message could not be read.', 'agency-sso-connector' ) );
		}
		if ( null !== $pending && ! hash_equals( $pending['attempt'], (string) $claims['attempt'] ) ) {
			throw new Agency_SSO_Error( 'attempt_mismatch', __( 'The message confirms another connection attempt than the one this site started.', 'agency-sso-connector' ) );
		}
		if ( ! Agency_SSO_Replay::claim( (string) $claims['jti'], Agency_SSO_Replay::keep_until( (int) $claims['exp'], Agency_SSO_Site_Message::LEEWAY ) ) ) {
			throw Agency_SSO_Login::refusal( 'token_replayed' );
		}
		if ( 'refresh-keys' === $action ) {
			// Now, whatever the once-a-minute limit on refetches says: the dashboard asks.
			Agency_SSO_Keys::refresh( $issuer );
		}
		$answer = array_merge(
			array(
				'jti'    => (string) $claims['jti'],
				'action' => $action,
			),
			'connect' === $action ? Agency_SSO_Connect::site_facts() : Agency_SSO_Connect::status_report()
		);
		/**
		 * A site message was answered.
		 *
		 * @param array $answer The answer.
		 */
		do_action( 'agency_sso_site_message_done', $answer );
		return $answer;
	}

	/**
	 * Verify a message and carry it out.
	 *
	 * @param string $token The logout token.
	 * @return array What was done, always in this shape: `jti` (the message's),
	 *               `action`, `superseded` (an older lock or set-role than the last
	 *               carried out here: nothing done), `user_found`, `sessions_ended`,
	 *               `application_passwords_revoked`, `role_before`, `role_after`
	 *               (null without a user, '' for no role here), `locked`.
	 * @throws Agency_SSO_Error On any refusal, before anything is changed.
	 */
	public static function handle( string $token ): array {
		$issuer = Agency_SSO_Config::issuer();
		if ( '' === $issuer ) {
			throw Agency_SSO_Login::refusal( 'not_configured' );
		}
		$claims = Agency_SSO_Logout_Token::verify(
			$token,
			$issuer,
			Agency_SSO_Config::audience(),
			array( Agency_SSO_Keys::class, 'key_for_kid' ),
			Agency_SSO_Config::now()
		);
		$action = $claims['action'];
		$role   = 'set-role' === $action ? $claims['wp_role'] : '';
		if ( '' !== $role && ! in_array( $role, Agency_SSO_Users::allowed_roles( $claims ), true ) ) {
			throw Agency_SSO_Login::refusal( 'role_not_allowed' );
		}
		if ( ! Agency_SSO_Replay::claim( (string) $claims['jti'], Agency_SSO_Replay::keep_until( (int) $claims['exp'], Agency_SSO_Logout_Token::LEEWAY ) ) ) {
			throw Agency_SSO_Login::refusal( 'token_replayed' );
		}

		$user   = Agency_SSO_Users::for_person( $issuer, (string) $claims['sub'], strtolower( (string) $claims['email'] ) );
		$result = array(
			'jti'                           => (string) $claims['jti'],
			'action'                        => $action,
			'superseded'                    => false,
			'user_found'                    => null !== $user,
			'sessions_ended'                => 0,
			'application_passwords_revoked' => 0,
			'role_before'                   => null,
			'role_after'                    => null,
			'locked'                        => false,
		);
		if ( null === $user ) {
			return $result;
		}
		$result['role_before'] = self::role_here( $user );
		if ( in_array( $action, self::ORDERED_ACTIONS, true ) && ! self::take_turn( $user, (int) $claims['seq'] ) ) {
			// A late message (an attempt still on its way when a newer change
			// was carried out): the newer state stands.
			$result['superseded'] = true;
			$result['role_after'] = $result['role_before'];
			$result['locked']     = self::is_locked( $user );
			return $result;
		}
		if ( 'set-role' === $action && '' !== $role ) {
			Agency_SSO_Users::apply_role( $user, $role );
		} elseif ( 'lock' === $action || 'set-role' === $action ) {
			// Locked here, every role here taken away (content kept), and a
			// password nobody knows, so the account stays shut even without this plugin.
			update_user_option( $user->ID, self::META_LOCKED_AT, (int) $claims['iat'] );
			if ( 'set-role' === $action ) {
				Agency_SSO_Users::apply_role( $user, '' );
			}
			wp_set_password( wp_generate_password( 64, true, true ), $user->ID );
			// Sessions are the network's: a grant revoked on one sub-site leaves
			// the person's work on the others alone (the lock closes this one);
			// a lock (the person let go) and a single site end them all.
			if ( 'lock' === $action || ! is_multisite() ) {
				$result = array_merge( $result, self::end_sessions( $user ) );
			}
		} else {
			$result = array_merge( $result, self::end_sessions( $user ) );
		}
		$user                 = new WP_User( $user->ID );
		$result['role_after'] = self::role_here( $user );
		$result['locked']     = self::is_locked( $user );
		/**
		 * A back-channel message was carried out.
		 *
		 * @param array   $result What was done.
		 * @param WP_User $user   The user it concerned.
		 */
		do_action( 'agency_sso_back_channel_done', $result, $user );
		return $result;
	}

	/**
	 * Whether a lock or set-role with this order may act on this site: its
	 * seq is the last one applied here (the same message again, whose answer
	 * was lost: carried out again, to the same end) or newer, in which case
	 * it becomes the last one in a single compare-and-set, so that of two
	 * attempts running at once the older cannot act after the newer.
	 *
	 * @param WP_User $user The user.
	 * @param int     $seq  The message's order.
	 */
	public static function take_turn( WP_User $user, int $seq ): bool {
		global $wpdb;
		$key = $wpdb->get_blog_prefix() . self::META_LAST_SEQ;
		add_user_meta( $user->ID, $key, '0', true );
		// phpcs:disable WordPress.DB.DirectDatabaseQuery -- a compare-and-set; the meta cache is cleared below.
		$last = (int) $wpdb->get_var( $wpdb->prepare( "SELECT meta_value FROM {$wpdb->usermeta} WHERE user_id = %d AND meta_key = %s", $user->ID, $key ) );
		if ( $seq === $last ) {
			return true;
		}
		$moved = $wpdb->query( $wpdb->prepare( "UPDATE {$wpdb->usermeta} SET meta_value = %s WHERE user_id = %d AND meta_key = %s AND CAST(meta_value AS UNSIGNED) < %d", (string) $seq, $user->ID, $key, $seq ) );
		// phpcs:enable
		wp_cache_delete( $user->ID, 'user_meta' );
		return 1 === (int) $moved;
	}

	/**
	 * End every session of a user and revoke their application passwords.
	 *
	 * @param WP_User $user The user.
	 * @return array `sessions_ended` and `application_passwords_revoked`.
	 */
	public static function end_sessions( WP_User $user ): array {
		$sessions = WP_Session_Tokens::get_instance( $user->ID );
		$ended    = count( $sessions->get_all() );
		$sessions->destroy_all();
		$revoked = 0;
		if ( class_exists( 'WP_Application_Passwords' ) ) {
			$deleted = WP_Application_Passwords::delete_all_application_passwords( $user->ID );
			$revoked = is_int( $deleted ) ? $deleted : 0;
		}
		return array(
			'sessions_ended'                => $ended,
			'application_passwords_revoked' => $revoked,
		);
	}

	/**
	 * The user's role on this site ('' when none).
	 *
	 * @param WP_User $user The user.
	 */
	private static function role_here( WP_User $user ): string {
		if ( is_multisite() && ! is_user_member_of_blog( $user->ID, get_current_blog_id() ) ) {
			return '';
		}
		$roles = array_values( (array) $user->roles );
		return $roles ? (string) $roles[0] : '';
	}

	/**
	 * Whether the dashboard locked this account.
	 *
	 * @param WP_User $user The user.
	 */
	public static function is_locked( WP_User $user ): bool {
		return self::locked_at( $user ) > 0;
	}

	/**
	 * When (the dashboard's time) the account was locked on this site; 0
	 * when it is not. (A lock kept by version 0.1, one for the whole
	 * network, still counts until a launch lifts it site by site.)
	 *
	 * @param WP_User $user The user.
	 */
	public static function locked_at( WP_User $user ): int {
		return (int) get_user_option( self::META_LOCKED_AT, $user->ID );
	}

	/**
	 * A launch token for a locked account: refused when it was issued before
	 * the lock (it may have been on its way while the person was offboarded);
	 * one issued after it comes from a dashboard that has let the person in
	 * again, and lifts the lock.
	 *
	 * @param WP_User $user   The user.
	 * @param array   $claims The launch token's verified claims.
	 * @throws Agency_SSO_Error When the token predates the lock.
	 */
	public static function check_launch( WP_User $user, array $claims ): void {
		$locked_at = self::locked_at( $user );
		if ( 0 === $locked_at ) {
			return;
		}
		if ( (int) $claims['iat'] <= $locked_at ) {
			throw Agency_SSO_Login::refusal( 'account_locked' );
		}
		// 0 on this site, not a deletion: it also outranks a lock of version 0.1.
		update_user_option( $user->ID, self::META_LOCKED_AT, 0 );
	}

	/**
	 * Password sign-in (and anything else through `authenticate`) refused
	 * to a locked account.
	 *
	 * @param WP_User|WP_Error|null $user The result so far.
	 * @return WP_User|WP_Error|null
	 */
	public static function refuse_locked( $user ) {
		if ( $user instanceof WP_User && self::is_locked( $user ) ) {
			return new WP_Error(
				'agency_sso_locked',
				esc_html__( 'This account was locked by the agency dashboard.', 'agency-sso-connector' )
			);
		}
		return $user;
	}

	/**
	 * No application passwords for a locked account, nor for an account
	 * linked to the dashboard while linked accounts may not use passwords
	 * (WordPress checks application passwords without `authenticate`);
	 * break-glass logins excepted.
	 *
	 * @param bool    $available Whether WordPress would allow them.
	 * @param WP_User $user      The user.
	 */
	public static function application_passwords_available( $available, $user ): bool {
		if ( ! $available || ! $user instanceof WP_User ) {
			return (bool) $available;
		}
		return ! self::is_locked( $user ) && ! Agency_SSO_Login::password_blocked( $user );
	}

	/**
	 * A session (or application password) of an account locked on this
	 * site is not honoured here: on a network the account's cookie was
	 * made on another site, whose launch lifted nothing here.
	 *
	 * @param int|false $user_id The user WordPress found so far.
	 * @return int|false
	 */
	public static function not_while_locked( $user_id ) {
		if ( ! $user_id ) {
			return $user_id;
		}
		$user = get_userdata( (int) $user_id );
		return $user instanceof WP_User && self::is_locked( $user ) ? false : $user_id;
	}
}
