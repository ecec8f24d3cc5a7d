<?php
/**
 * Connecting this site to the agency dashboard in one step: with a
 * connection code (pasted on the settings page or given to WP-CLI), or by
 * an approval in the browser that brings a code back. The site redeems the
 * code at the dashboard, which proves the site's URL by a signed `connect`
 * message answering this site's pending attempt (see
 * Agency_SSO_Back_Channel::handle_site_message()); on success the site
 * stores the dashboard's address and a connection record.
 *
 * A site has one dashboard: a code from another one is refused until the
 * site is disconnected. On a multisite network each sub-site connects on
 * its own (the dashboard sees each as a site), its attempt and record are
 * its own options, but the dashboard's address is the network's: a
 * sub-site can connect only to the dashboard the network names, or name it
 * when the network has none. Connecting and disconnecting need the
 * settings capability (the network's on a network).
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * The connection: the pending attempt, the redemption, the record.
 */
final class Agency_SSO_Connect {

	/** Option (per site, not autoloaded): the attempt under way, `{issuer, attempt, state, started_at}`. */
	const OPTION_PENDING = 'agency_sso_connect_pending';

	/** Option (per site, not autoloaded): `{issuer, site_id, site_url, connected_at, via}`. */
	const OPTION_CONNECTION = 'agency_sso_connection';

	/** How long an attempt waits for the dashboard's confirmation, seconds. */
	const PENDING_TTL = 900;

	/** How a connection code starts: the format's version. */
	const CODE_PREFIX = 'asso1';

	/** The most of the dashboard's answer read, bytes. */
	const MAX_ANSWER_BYTES = 65536;

	/** How long the redemption may take: the dashboard calls this site back meanwhile, seconds. */
	const TIMEOUT = 30;

	/**
	 * Connect with a code from the dashboard.
	 *
	 * @param string $code The connection code (`asso1.<issuer>.<secret>`; spaces around it ignored).
	 * @return array|WP_Error What was stored (`issuer`, `site_id`, `site_url`,
	 *                        `connected_at`, `via`) and the dashboard's `created`
	 *                        (a new site in the dashboard, or one it had);
	 *                        or the dashboard's or this site's refusal, with a
	 *                        stable code and a message for a person.
	 */
	public static function with_code( string $code ) {
		return self::redeem( $code, 'code' );
	}

	/**
	 * Begin an approval in the browser: an attempt for this dashboard, and
	 * the dashboard's approval page to send the browser to, which brings a
	 * code back to the `agency_sso_connect_back` handler.
	 *
	 * @param string $dashboard_url The dashboard's address (its issuer).
	 * @return string|WP_Error The URL of the dashboard's approval page.
	 */
	public static function start_approval( string $dashboard_url ) {
		if ( ! self::allowed() ) {
			return self::not_allowed();
		}
		$issuer  = rtrim( trim( $dashboard_url ), '/' );
		$refusal = self::issuer_refusal( $issuer );
		if ( null !== $refusal ) {
			return $refusal;
		}
		// The browser is sent there only when a dashboard answers there: its
		// discovery document and key set (a typo or a dashboard that is down
		// is said here, not by a browser error page elsewhere).
		try {
			Agency_SSO_Keys::fetch( $issuer );
		} catch ( Agency_SSO_Error $e ) {
			return self::error(
				$e->get_error_code(),
				/* translators: 1: the dashboard's address, 2: why */
				sprintf( __( 'No agency dashboard answers at %1$s (%2$s). Nothing was changed.', 'agency-sso-connector' ), $issuer, $e->getMessage() )
			);
		}
		$pending = self::begin( $issuer );
		return $issuer . '/connect?' . http_build_query(
			array(
				'site'   => Agency_SSO_Config::audience(),
				'state'  => $pending['state'],
				'return' => self::return_url(),
			),
			'',
			'&',
			PHP_QUERY_RFC3986
		);
	}

	/**
	 * The approval came back with a code: redeem it, if it answers this
	 * site's pending attempt (its `state`) and comes from its dashboard.
	 *
	 * @param string $code  The code the dashboard made for the approval.
	 * @param string $state The state the browser brought back.
	 * @return array|WP_Error As for {@see self::with_code()}.
	 */
	public static function finish_approval( string $code, string $state ) {
		if ( ! self::allowed() ) {
			return self::not_allowed();
		}
		$pending = self::pending();
		if ( null === $pending ) {
			return self::error( 'no_pending_connection', __( 'This site is not waiting for an approval (or waited more than 15 minutes): start again with Connect.', 'agency-sso-connector' ) );
		}
		if ( '' === $state || ! hash_equals( $pending['state'], $state ) ) {
			return self::error( 'state_mismatch', __( 'This approval does not answer the connection this site started: start again with Connect.', 'agency-sso-connector' ) );
		}
		$issuer = self::parse_code( $code );
		if ( is_wp_error( $issuer ) ) {
			return $issuer;
		}
		if ( $issuer !== $pending['issuer'] ) {
			return self::error( 'wrong_dashboard', __( 'The approval came with a code from another dashboard than the one this site asked.', 'agency-sso-connector' ) );
		}
		return self::redeem( $code, 'approval' );
	}

	/**
	 * Drop the pending attempt an approval answered (cancelled in the
	 * dashboard), if the state is its own.
	 *
	 * @param string $state The state the browser brought back.
	 * @return bool Whether an attempt was dropped.
	 */
	public static function forget_attempt( string $state ): bool {
		$pending = self::pending();
		if ( null === $pending || '' === $state || ! hash_equals( $pending['state'], $state ) ) {
			return false;
		}
		delete_option( self::OPTION_PENDING );
		return true;
	}

	/**
	 * Disconnect this site: the record, any pending attempt and the refusal
	 * counts go; on a single site the dashboard's address goes too (unless
	 * wp-config.php sets it), so the site trusts the dashboard no longer.
	 * On a network the address is the network's and stays.
	 *
	 * @return array|WP_Error `issuer` (the dashboard it was connected to, '' if
	 *                        unknown), `issuer_kept` (whether the site still
	 *                        trusts it: wp-config.php or the network names it).
	 */
	public static function disconnect() {
		if ( ! self::allowed() ) {
			return self::not_allowed();
		}
		$record       = self::stored_record();
		$written      = (string) Agency_SSO_Config::get( Agency_SSO_Config::OPTION_ISSUER, '' );
		$clear_issuer = ! is_multisite() && ! Agency_SSO_Config::issuer_is_constant() && '' !== $written;
		if ( null === $record && ! $clear_issuer ) {
			return self::error( 'not_connected', __( 'This site is not connected to a dashboard.', 'agency-sso-connector' ) );
		}
		delete_option( self::OPTION_CONNECTION );
		delete_option( self::OPTION_PENDING );
		Agency_SSO_Refusals::clear();
		if ( $clear_issuer ) {
			Agency_SSO_Config::set( Agency_SSO_Config::OPTION_ISSUER, '' );
			delete_transient( Agency_SSO_Keys::CACHE );
		}
		$result = array(
			'issuer'      => null !== $record ? $record['issuer'] : rtrim( trim( $written ), '/' ),
			'issuer_kept' => '' !== Agency_SSO_Config::issuer(),
		);
		/**
		 * This site was disconnected from its dashboard.
		 *
		 * @param array $result What was done.
		 */
		do_action( 'agency_sso_disconnected', $result );
		return $result;
	}

	/**
	 * The connection record, or null when this site is not connected to
	 * the dashboard it trusts now (no record, or one for another address).
	 *
	 * @return array{issuer: string, site_id: string, site_url: string, connected_at: int, via: string}|null
	 */
	public static function connection(): ?array {
		$record = self::stored_record();
		return null !== $record && $record['issuer'] === Agency_SSO_Config::issuer() ? $record : null;
	}

	/**
	 * The attempt under way, or null when there is none or it is older than
	 * 15 minutes (or dated too far ahead of this site's clock).
	 *
	 * @return array{issuer: string, attempt: string, state: string, started_at: int}|null
	 */
	public static function pending(): ?array {
		$pending = get_option( self::OPTION_PENDING );
		if ( ! is_array( $pending ) || ! is_string( $pending['issuer'] ?? null ) || ! is_string( $pending['attempt'] ?? null )
			|| ! is_string( $pending['state'] ?? null ) || ! is_int( $pending['started_at'] ?? null ) ) {
			return null;
		}
		$age = Agency_SSO_Config::now() - $pending['started_at'];
		return $age > self::PENDING_TTL || $age < -Agency_SSO_Site_Message::LEEWAY ? null : $pending;
	}

	/**
	 * What the site says about itself in every answer to a site message.
	 *
	 * @return array{site_url: string, plugin_version: string, wp_version: string, php_version: string, multisite: bool}
	 */
	public static function site_facts(): array {
		return array(
			'site_url'       => Agency_SSO_Config::audience(),
			'plugin_version' => AGENCY_SSO_CONNECTOR_VERSION,
			'wp_version'     => (string) get_bloginfo( 'version' ),
			'php_version'    => PHP_VERSION,
			'multisite'      => is_multisite(),
		);
	}

	/**
	 * The site's status, as the `status` message is answered (and WP-CLI
	 * shows it): the facts, whether it is connected, the key ids it holds
	 * now (cached, or the last good set) and when they were fetched, and
	 * its refusals by code.
	 */
	public static function status_report(): array {
		$issuer = Agency_SSO_Config::issuer();
		$set    = '' === $issuer ? null : ( Agency_SSO_Keys::cached( $issuer ) ?? Agency_SSO_Keys::last_good( $issuer ) );
		return array_merge(
			self::site_facts(),
			array(
				'connected'       => null !== self::connection(),
				// A decimal kid is an integer array key in PHP: said as the string it is.
				'keys'            => null === $set ? array() : array_map( 'strval', array_keys( $set['keys'] ) ),
				'keys_fetched_at' => null === $set ? null : (int) $set['fetched_at'],
			),
			Agency_SSO_Refusals::report()
		);
	}

	/**
	 * For command-line callers (WP-CLI, scripts), which act as the site's
	 * first administrator (a network's first super admin): that user's id,
	 * 0 when there is none.
	 */
	public static function first_admin_id(): int {
		if ( is_multisite() ) {
			foreach ( get_super_admins() as $login ) {
				$user = get_user_by( 'login', $login );
				if ( $user instanceof WP_User ) {
					return $user->ID;
				}
			}
			return 0;
		}
		$ids = get_users(
			array(
				'role'    => 'administrator',
				'number'  => 1,
				'orderby' => 'ID',
				'order'   => 'ASC',
				'fields'  => 'ID',
			)
		);
		return (int) ( $ids[0] ?? 0 );
	}

	/**
	 * Redeem a code at its dashboard and, when it confirms, store the connection.
	 *
	 * @param string $code The connection code.
	 * @param string $via  `code` or `approval`.
	 * @return array|WP_Error As for {@see self::with_code()}.
	 */
	private static function redeem( string $code, string $via ) {
		if ( ! self::allowed() ) {
			return self::not_allowed();
		}
		$issuer = self::parse_code( $code );
		if ( is_wp_error( $issuer ) ) {
			return $issuer;
		}
		$refusal = self::issuer_refusal( $issuer );
		if ( null !== $refusal ) {
			return $refusal;
		}
		$pending  = self::begin( $issuer );
		$response = wp_remote_post(
			$issuer . '/connector/connect',
			array(
				'timeout'             => self::TIMEOUT,
				'redirection'         => 0,
				'limit_response_size' => self::MAX_ANSWER_BYTES,
				'headers'             => array(
					'Content-Type' => 'application/json',
					'Accept'       => 'application/json',
				),
				'user-agent'          => 'agency-sso-connector/' . AGENCY_SSO_CONNECTOR_VERSION . '; ' . Agency_SSO_Config::audience(),
				'body'                => wp_json_encode(
					array(
						'code'           => trim( $code ),
						'site_url'       => Agency_SSO_Config::audience(),
						'attempt'        => $pending['attempt'],
						'site_name'      => wp_specialchars_decode( (string) get_option( 'blogname' ), ENT_QUOTES ),
						'plugin_version' => AGENCY_SSO_CONNECTOR_VERSION,
						'wp_version'     => (string) get_bloginfo( 'version' ),
						'php_version'    => PHP_VERSION,
						'multisite'      => is_multisite(),
					)
				),
			)
		);
		$answer = self::read_answer( $response, $issuer );
		if ( is_wp_error( $answer ) ) {
			return $answer;
		}

		if ( ! Agency_SSO_Config::issuer_is_constant() ) {
			Agency_SSO_Config::set( Agency_SSO_Config::OPTION_ISSUER, $issuer );
		}
		$record = array(
			'issuer'       => $issuer,
			'site_id'      => $answer['site_id'],
			'site_url'     => $answer['site_url'],
			'connected_at' => Agency_SSO_Config::now(),
			'via'          => $via,
		);
		update_option( self::OPTION_CONNECTION, $record, false );
		delete_option( self::OPTION_PENDING );
		// The next launch fetches the dashboard's keys afresh.
		delete_transient( Agency_SSO_Keys::CACHE );
		/**
		 * This site was connected to its dashboard.
		 *
		 * @param array $record The connection record.
		 */
		do_action( 'agency_sso_connected', $record );
		return array_merge( $record, array( 'created' => $answer['created'] ) );
	}

	/**
	 * The dashboard's answer to a redemption: its confirmation, or its
	 * refusal (its own code and message), or why it could not be read.
	 *
	 * @param array|WP_Error $response What wp_remote_post returned.
	 * @param string         $issuer   The dashboard the code names.
	 * @return array|WP_Error The confirmation (`connected`, `issuer`, `site_id`, `site_url`, `created`).
	 */
	private static function read_answer( $response, string $issuer ) {
		if ( is_wp_error( $response ) ) {
			/* translators: 1: the dashboard's address, 2: the HTTP client's error */
			return self::error( 'dashboard_unreachable', sprintf( __( 'Could not reach the dashboard at %1$s: %2$s', 'agency-sso-connector' ), $issuer, $response->get_error_message() ) );
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		$body   = (string) wp_remote_retrieve_body( $response );
		$data   = strlen( $body ) < self::MAX_ANSWER_BYTES ? json_decode( $body, true, 16 ) : null;
		if ( ! is_array( $data ) ) {
			/* translators: 1: the dashboard's address, 2: an HTTP status code */
			return self::error( 'dashboard_bad_answer', sprintf( __( 'The dashboard at %1$s answered with HTTP status %2$d, and not as an agency dashboard does: check its address.', 'agency-sso-connector' ), $issuer, $status ), array( 'status' => $status ) );
		}
		if ( 200 !== $status ) {
			$code = $data['error'] ?? null;
			if ( ! is_string( $code ) || 1 !== preg_match( '/\A[a-z0-9_]{1,64}\z/', $code ) ) {
				/* translators: 1: the dashboard's address, 2: an HTTP status code */
				return self::error( 'dashboard_bad_answer', sprintf( __( 'The dashboard at %1$s refused the code with HTTP status %2$d but did not say why.', 'agency-sso-connector' ), $issuer, $status ), array( 'status' => $status ) );
			}
			$message = is_string( $data['message'] ?? null ) ? trim( sanitize_text_field( $data['message'] ) ) : '';
			if ( '' === $message ) {
				/* translators: %s: the dashboard's address */
				$message = sprintf( __( 'The dashboard at %s refused the code.', 'agency-sso-connector' ), $issuer );
			}
			return self::error( $code, mb_substr( $message, 0, 500 ), array( 'status' => $status ) );
		}
		if ( true !== ( $data['connected'] ?? null ) || ( $data['issuer'] ?? null ) !== $issuer
			|| ! is_string( $data['site_id'] ?? null ) || '' === $data['site_id']
			|| ! is_string( $data['site_url'] ?? null ) || ! is_bool( $data['created'] ?? null ) ) {
			/* translators: %s: the dashboard's address */
			return self::error( 'dashboard_bad_answer', sprintf( __( 'The dashboard at %s answered, but not with a confirmation of this connection: nothing was changed.', 'agency-sso-connector' ), $issuer ), array( 'status' => $status ) );
		}
		return $data;
	}

	/**
	 * The dashboard a code names, or why it is not a code.
	 *
	 * @param string $code The code (spaces around it ignored).
	 * @return string|WP_Error The issuer.
	 */
	public static function parse_code( string $code ) {
		$malformed = self::error( 'code_malformed', __( 'This is not a connection code: copy the whole code the dashboard shows (it starts with asso1.).', 'agency-sso-connector' ) );
		if ( 1 !== preg_match( '/\A' . self::CODE_PREFIX . '\.([A-Za-z0-9_-]{1,2048})\.([A-Za-z0-9_-]{43})\z/', trim( $code ), $parts ) ) {
			return $malformed;
		}
		try {
			$issuer = Agency_SSO_JWT::base64url_decode( $parts[1] );
			$secret = Agency_SSO_JWT::base64url_decode( $parts[2] );
		} catch ( Agency_SSO_Error $e ) {
			return $malformed;
		}
		// An address: UTF-8 without spaces or control characters (issuer_problem() says the rest).
		if ( 32 !== strlen( $secret ) || 1 !== preg_match( '/\A[^\x00-\x20\x7f]+\z/u', $issuer ) ) {
			return $malformed;
		}
		return $issuer;
	}

	/**
	 * Why this site may not connect to this dashboard, or null: its address
	 * must be acceptable, and the site (or its network, or wp-config.php)
	 * must not already name another.
	 *
	 * @param string $issuer The dashboard's address.
	 */
	private static function issuer_refusal( string $issuer ): ?WP_Error {
		$problem = Agency_SSO_Config::issuer_problem( $issuer );
		if ( null === $problem && str_ends_with( $issuer, '/' ) ) {
			$problem = __( 'The address must not end with a slash.', 'agency-sso-connector' );
		}
		if ( null !== $problem ) {
			/* translators: %s: why the address cannot be used */
			return self::error( 'bad_issuer', sprintf( __( 'This dashboard address cannot be used: %s', 'agency-sso-connector' ), $problem ) );
		}
		$current = Agency_SSO_Config::issuer_is_constant() ? rtrim( trim( (string) AGENCY_SSO_ISSUER ), '/' ) : Agency_SSO_Config::issuer();
		if ( '' === $current || $current === $issuer ) {
			return null;
		}
		if ( Agency_SSO_Config::issuer_is_constant() ) {
			/* translators: %s: the dashboard's address */
			$message = __( 'This site already trusts another dashboard (%s), named by AGENCY_SSO_ISSUER in wp-config.php: change or remove that line first.', 'agency-sso-connector' );
		} elseif ( is_multisite() ) {
			/* translators: %s: the dashboard's address */
			$message = __( 'This network already trusts another dashboard (%s): a network administrator must disconnect the network from it first, by clearing its address in Network Admin → Settings → Agency SSO.', 'agency-sso-connector' );
		} else {
			/* translators: %s: the dashboard's address */
			$message = __( 'This site is already connected to another dashboard (%s): disconnect it first (Settings → Agency SSO).', 'agency-sso-connector' );
		}
		return self::error( 'already_connected', sprintf( $message, $current ) );
	}

	/**
	 * The pending attempt for this dashboard: the one under way if it is
	 * for the same dashboard and younger than 15 minutes, else a new one.
	 *
	 * @param string $issuer The dashboard's address.
	 * @return array{issuer: string, attempt: string, state: string, started_at: int}
	 */
	private static function begin( string $issuer ): array {
		$pending = self::pending();
		if ( null !== $pending && $pending['issuer'] === $issuer ) {
			return $pending;
		}
		$pending = array(
			'issuer'     => $issuer,
			'attempt'    => Agency_SSO_JWT::base64url_encode( random_bytes( 32 ) ),
			'state'      => Agency_SSO_JWT::base64url_encode( random_bytes( 32 ) ),
			'started_at' => Agency_SSO_Config::now(),
		);
		update_option( self::OPTION_PENDING, $pending, false );
		return $pending;
	}

	/**
	 * Where the dashboard sends the browser back after an approval: this
	 * site's admin-post handler, with a nonce for this person and site, on
	 * the site's own address (the stored scheme, as behind a TLS-ending
	 * proxy), which the dashboard checks.
	 */
	private static function return_url(): string {
		return Agency_SSO_Config::audience() . '/wp-admin/admin-post.php?' . http_build_query(
			array(
				'action'   => 'agency_sso_connect_back',
				'_wpnonce' => wp_create_nonce( self::return_nonce_action() ),
			),
			'',
			'&',
			PHP_QUERY_RFC3986
		);
	}

	/**
	 * The nonce action of the approval's way back (bound to this site).
	 */
	public static function return_nonce_action(): string {
		return 'agency_sso_connect_back_site-' . get_current_blog_id();
	}

	/**
	 * The connection record as stored (whatever dashboard it names), or null.
	 */
	private static function stored_record(): ?array {
		$record = get_option( self::OPTION_CONNECTION );
		if ( ! is_array( $record ) || ! is_string( $record['issuer'] ?? null ) || ! is_string( $record['site_id'] ?? null )
			|| ! is_string( $record['site_url'] ?? null ) || ! is_int( $record['connected_at'] ?? null ) ) {
			return null;
		}
		$record['via'] = 'approval' === ( $record['via'] ?? '' ) ? 'approval' : 'code';
		return $record;
	}

	/**
	 * Whether the current user may connect or disconnect this site: the
	 * settings capability (the network's on a network).
	 */
	private static function allowed(): bool {
		return current_user_can( Agency_SSO_Config::settings_capability() );
	}

	/**
	 * The refusal for someone without that capability.
	 */
	private static function not_allowed(): WP_Error {
		return self::error(
			'not_allowed',
			is_multisite()
				? __( 'On a network, only a network administrator connects or disconnects a site.', 'agency-sso-connector' )
				: __( 'Only an administrator of this site connects or disconnects it.', 'agency-sso-connector' )
		);
	}

	/**
	 * A refusal with a stable code and a message for a person.
	 *
	 * @param string $code    The code.
	 * @param string $message The message.
	 * @param array  $data    More (the dashboard's HTTP `status`).
	 */
	private static function error( string $code, string $message, array $data = array() ): WP_Error {
		return new WP_Error( $code, $message, $data );
	}
}
