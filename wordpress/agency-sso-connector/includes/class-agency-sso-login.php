<?php
/**
 * The launch: wp-login.php?action=agency_sso&token=... verified, the user
 * found or created and signed in, the token stripped from the URL by a
 * redirect. Also the password rule for users linked to the dashboard.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * The sign-in action and the password-login rule.
 */
final class Agency_SSO_Login {

	const ACTION = 'agency_sso';

	/** Seconds of clock skew allowed between the dashboard and this site. */
	const LEEWAY = 60;

	/**
	 * Hook into WordPress.
	 */
	public static function register(): void {
		add_action( 'login_form_' . self::ACTION, array( self::class, 'handle' ) );
		add_filter( 'authenticate', array( self::class, 'refuse_password' ), 30, 1 );
	}

	/**
	 * The launch request. Never returns.
	 */
	public static function handle(): void {
		nocache_headers();
		// The token is in this URL: never send it on as a Referer.
		header( 'Referrer-Policy: no-referrer' );
		header( 'X-Robots-Tag: noindex, nofollow' );
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- only a known code is shown.
		if ( ! isset( $_GET['token'] ) && isset( $_GET['refused'] ) && is_string( $_GET['refused'] ) ) {
			self::show_refusal( sanitize_key( wp_unslash( $_GET['refused'] ) ) ); // phpcs:ignore WordPress.Security.NonceVerification.Recommended
		}
		try {
			self::sign_in();
		} catch ( Agency_SSO_Error $e ) {
			self::refuse( $e );
		}
		wp_safe_redirect( self::landing() );
		exit;
	}

	/**
	 * Verify the token and sign its person in.
	 *
	 * @throws Agency_SSO_Error On any refusal.
	 */
	private static function sign_in(): WP_User {
		$issuer = Agency_SSO_Config::issuer();
		if ( '' === $issuer ) {
			throw self::refusal( 'not_configured' );
		}
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- the signed, single-use token is the proof.
		$token = isset( $_GET['token'] ) && is_string( $_GET['token'] ) ? wp_unslash( $_GET['token'] ) : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- a JWT, checked byte by byte below.
		// phpcs:enable
		if ( '' === $token ) {
			throw self::refusal( 'malformed_token' );
		}
		self::check_referer( $issuer );
		$claims = Agency_SSO_JWT::verify(
			$token,
			array(
				'issuer'       => $issuer,
				'audience'     => Agency_SSO_Config::audience(),
				'typ'          => 'JWT',
				'leeway'       => self::LEEWAY,
				'max_lifetime' => 300,
				'require'      => array( 'wp_role' ),
			),
			array( Agency_SSO_Keys::class, 'key_for_kid' ),
			Agency_SSO_Config::now()
		);
		if ( ! Agency_SSO_Replay::claim( (string) $claims['jti'], Agency_SSO_Replay::keep_until( (int) $claims['exp'], self::LEEWAY ) ) ) {
			throw self::refusal( 'token_replayed' );
		}
		$user = Agency_SSO_Users::sign_in_user( $claims, $issuer );
		if ( get_current_user_id() !== $user->ID ) {
			wp_clear_auth_cookie();
		}
		wp_set_current_user( $user->ID );
		wp_set_auth_cookie( $user->ID, false, is_ssl() );
		/** This action is documented in wp-includes/user.php */
		do_action( 'wp_login', $user->user_login, $user );
		return $user;
	}

	/**
	 * The launch must come from a dashboard page: its Referer's origin is the
	 * dashboard's (CONTRACT.md). A launch without a Referer is refused too,
	 * unless the site allows it (some privacy extensions strip the header):
	 * otherwise anyone holding a captured token could sign a colleague into
	 * the token's account by a link (login CSRF).
	 *
	 * @param string $issuer The dashboard's issuer.
	 * @throws Agency_SSO_Error When the Referer is missing or another origin's.
	 */
	private static function check_referer( string $issuer ): void {
		$referer = isset( $_SERVER['HTTP_REFERER'] ) ? esc_url_raw( wp_unslash( $_SERVER['HTTP_REFERER'] ) ) : '';
		if ( '' === $referer ) {
			if ( ! Agency_SSO_Config::allow_missing_referer() ) {
				throw self::refusal( 'missing_referer' );
			}
			return;
		}
		if ( Agency_SSO_Config::origin( $referer ) !== Agency_SSO_Config::origin( $issuer ) ) {
			throw self::refusal( 'wrong_referer' );
		}
	}

	/**
	 * Where to go after signing in: `redirect_to` when it is a page of this
	 * site (a path, or a URL on this site's origin, as the dashboard sends
	 * deep links), otherwise wp-admin. Never a URL with the token in it.
	 */
	private static function landing(): string {
		$site  = Agency_SSO_Config::audience();
		$admin = $site . '/wp-admin/';
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- only a page of this site is followed.
		$to = isset( $_GET['redirect_to'] ) && is_string( $_GET['redirect_to'] ) ? wp_unslash( $_GET['redirect_to'] ) : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- checked below.
		if ( 1 === preg_match( '#^https?://#i', $to ) ) {
			$parts = wp_parse_url( $to );
			if ( ! is_array( $parts ) || isset( $parts['user'] ) || isset( $parts['pass'] )
				|| Agency_SSO_Config::origin( $to ) !== Agency_SSO_Config::origin( $site ) ) {
				return $admin;
			}
			$to = ( $parts['path'] ?? '/' ) . ( isset( $parts['query'] ) ? '?' . $parts['query'] : '' );
		}
		if ( '' === $to || '/' !== $to[0] || str_starts_with( $to, '//' ) || str_contains( $to, '\\' ) || preg_match( '/[\x00-\x1f\x7f]/', $to ) ) {
			return $admin;
		}
		$site_path = (string) wp_parse_url( $site, PHP_URL_PATH );
		$home_path = (string) wp_parse_url( home_url(), PHP_URL_PATH );
		$base      = untrailingslashit( $site_path ) . '/';
		$home_base = untrailingslashit( $home_path ) . '/';
		if ( ! str_starts_with( $to, $base ) && ! str_starts_with( $to, $home_base ) ) {
			return $admin;
		}
		if ( preg_match( '/[?&]token=/', $to ) ) {
			return $admin;
		}
		return wp_validate_redirect( Agency_SSO_Config::origin( $site ) . $to, $admin );
	}

	/**
	 * A refusal: recorded and counted (the code only: never the token), then the
	 * browser is sent to a page without the token in its address, so the
	 * token is not left in the address bar or the history.
	 *
	 * @param Agency_SSO_Error $e The refusal.
	 */
	private static function refuse( Agency_SSO_Error $e ): void {
		$code = $e->get_error_code();
		Agency_SSO_Refusals::record( $code );
		do_action( 'agency_sso_login_refused', $code );
		// phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log -- a refusal is worth a line in the site's log; the token is not in it.
		error_log( 'agency-sso-connector: sign-in refused: ' . $code . ( 'user_not_created' === $code ? ' (' . $e->getMessage() . ')' : '' ) );
		wp_safe_redirect( site_url( 'wp-login.php?action=' . self::ACTION . '&refused=' . rawurlencode( $code ), 'login' ), 303 );
		exit;
	}

	/**
	 * The page for a refusal: what happened, what to do, and a code the
	 * dashboard's people know. Only known codes are shown.
	 *
	 * @param string $code The refusal's code.
	 */
	private static function show_refusal( string $code ): void {
		$messages = self::messages();
		if ( ! isset( $messages[ $code ] ) ) {
			$code = 'malformed_token';
		}
		$issuer = Agency_SSO_Config::issuer();
		$html   = '<h1>' . esc_html__( 'Sign-in refused', 'agency-sso-connector' ) . '</h1>'
			. '<p id="agency-sso-message">' . esc_html( $messages[ $code ] ) . '</p>'
			. '<p>' . esc_html( self::advice( $code ) ) . '</p>';
		if ( '' !== $issuer ) {
			$html .= '<p><a href="' . esc_url( $issuer . '/' ) . '">' . esc_html__( 'Back to the agency dashboard', 'agency-sso-connector' ) . '</a></p>';
		}
		$html .= '<p>' . esc_html__( 'Code:', 'agency-sso-connector' ) . ' <code id="agency-sso-code">' . esc_html( $code ) . '</code></p>';
		wp_die(
			wp_kses_post( $html ),
			esc_html__( 'Sign-in refused', 'agency-sso-connector' ),
			array(
				'response'  => in_array( $code, array( 'dashboard_unreachable', 'key_set_stale', 'replay_check_unavailable' ), true ) ? 503 : 403,
				'back_link' => false,
			)
		);
	}

	/**
	 * A refusal of this plugin's with the message its page shows, and a
	 * detail for the site's log (user_not_created says WordPress' reason).
	 *
	 * @param string $code   A code of {@see self::messages()}.
	 * @param string $detail What the log should say beside the code.
	 */
	public static function refusal( string $code, string $detail = '' ): Agency_SSO_Error {
		$message = self::messages()[ $code ];
		return new Agency_SSO_Error( $code, '' === $detail ? $message : "$message ($detail)" );
	}

	/**
	 * What each refusal says, by code: the one place its text is written.
	 *
	 * @return array<string, string>
	 */
	private static function messages(): array {
		return array(
			'not_configured'           => __( 'Sign-in from the agency dashboard is not set up on this site yet. A site administrator adds the dashboard\'s address to wp-config.php (see Settings → Agency SSO).', 'agency-sso-connector' ),
			'malformed_token'          => __( 'The sign-in token is damaged or missing.', 'agency-sso-connector' ),
			'alg_not_allowed'          => __( 'The sign-in token uses a signature algorithm this site does not accept.', 'agency-sso-connector' ),
			'header_not_allowed'       => __( 'The sign-in token carries a header this site does not accept.', 'agency-sso-connector' ),
			'wrong_type'               => __( 'The token is not the kind of token expected here.', 'agency-sso-connector' ),
			'missing_kid'              => __( 'The sign-in token does not name the key it was signed with.', 'agency-sso-connector' ),
			'unknown_key'              => __( 'The sign-in token was signed with a key this site does not know.', 'agency-sso-connector' ),
			'bad_signature'            => __( 'The sign-in token\'s signature is not valid.', 'agency-sso-connector' ),
			'wrong_issuer'             => __( 'The sign-in token was not issued by the dashboard this site trusts.', 'agency-sso-connector' ),
			'wrong_audience'           => __( 'The sign-in token was issued for a different site.', 'agency-sso-connector' ),
			'token_expired'            => __( 'The sign-in link has expired. Please go back to the dashboard and try again.', 'agency-sso-connector' ),
			'token_not_yet_valid'      => __( 'The sign-in token is not valid yet. Please check that this server\'s clock is correct.', 'agency-sso-connector' ),
			'lifetime_too_long'        => __( 'The sign-in token is valid for longer than this site allows.', 'agency-sso-connector' ),
			'missing_claim'            => __( 'The sign-in token lacks information this site requires.', 'agency-sso-connector' ),
			'wrong_referer'            => __( 'This sign-in link was not opened from your agency dashboard.', 'agency-sso-connector' ),
			'missing_referer'          => __( 'This sign-in link did not say which page it was opened from, so this site cannot tell that it came from your agency dashboard. A browser extension that hides the page you come from (the Referer) does this: allow it for the dashboard, or ask the site\'s administrator to accept launches without it.', 'agency-sso-connector' ),
			'token_replayed'           => __( 'This sign-in link has already been used. Open the site again from your agency dashboard.', 'agency-sso-connector' ),
			'replay_check_unavailable' => __( 'This site could not record the sign-in link as used, so it was not accepted. Try again in a moment.', 'agency-sso-connector' ),
			'role_not_allowed'         => __( 'The role the dashboard gives you here does not exist on this site or is not allowed here. Ask an agency admin to check your role for this site.', 'agency-sso-connector' ),
			'account_bound_elsewhere'  => __( 'The account with your e-mail address on this site belongs to another dashboard person. Ask the site\'s administrator to check it.', 'agency-sso-connector' ),
			'account_link_required'    => __( 'This site already has an administrator account with your e-mail address that is not linked to the agency dashboard, and it is never taken over silently. A site administrator can link it under Settings → Agency SSO; until then, sign in to it with its password.', 'agency-sso-connector' ),
			'user_not_created'         => __( 'WordPress could not create your account on this site. Ask the site\'s administrator.', 'agency-sso-connector' ),
			'discovery_failed'         => __( 'This site could not read the dashboard\'s discovery document.', 'agency-sso-connector' ),
			'dashboard_unreachable'    => __( 'This site could not reach the dashboard to fetch its keys.', 'agency-sso-connector' ),
			'bad_key_set'              => __( 'The dashboard\'s key set could not be used.', 'agency-sso-connector' ),
			'key_set_stale'            => __( 'This site has not been able to reach the dashboard for too long, so it no longer trusts the keys it last fetched (a key withdrawn in an emergency must stop working everywhere).', 'agency-sso-connector' ),
			'account_locked'           => __( 'Your account on this site was locked when the agency dashboard ended your access. If you should have access again, ask an agency admin, then open the site from the dashboard.', 'agency-sso-connector' ),
		);
	}

	/**
	 * What the person should do next.
	 *
	 * @param string $code The refusal's code.
	 */
	private static function advice( string $code ): string {
		switch ( $code ) {
			case 'token_expired':
			case 'token_replayed':
			case 'token_not_yet_valid':
				return __( 'This link has expired or was already used: open the site again from the dashboard. If it keeps happening, this site\'s clock may be wrong.', 'agency-sso-connector' );
			case 'missing_referer':
				return __( 'Open the site again from the dashboard, in a browser that sends the dashboard\'s address as the Referer.', 'agency-sso-connector' );
			case 'role_not_allowed':
			case 'account_locked':
			case 'account_link_required':
			case 'account_bound_elsewhere':
				return __( 'Nothing was changed on this site. Ask the site\'s administrator or an agency admin.', 'agency-sso-connector' );
			case 'not_configured':
			case 'discovery_failed':
			case 'dashboard_unreachable':
			case 'bad_key_set':
			case 'key_set_stale':
			case 'unknown_key':
				return __( 'This site cannot check the dashboard\'s keys right now. Try again in a minute; if it keeps happening, tell an agency admin.', 'agency-sso-connector' );
			default:
				return __( 'This link is not valid for this site. Open the site again from the dashboard.', 'agency-sso-connector' );
		}
	}

	/**
	 * Users linked to the dashboard sign in through it, not with a
	 * password, unless the site names them for break-glass access or the
	 * rule is switched off in the settings.
	 *
	 * @param WP_User|WP_Error|null $user The result so far.
	 * @return WP_User|WP_Error|null
	 */
	public static function refuse_password( $user ) {
		if ( ! $user instanceof WP_User || ! self::password_blocked( $user ) ) {
			return $user;
		}
		return new WP_Error(
			'agency_sso_password_disabled',
			esc_html__( 'This account signs in through your agency dashboard: open the site from there. (Password sign-in is switched off for accounts linked to the dashboard.)', 'agency-sso-connector' )
		);
	}

	/**
	 * Whether this user may not use a password (nor an application
	 * password): linked to the dashboard, the rule on, not break-glass.
	 *
	 * @param WP_User $user The user.
	 */
	public static function password_blocked( WP_User $user ): bool {
		return '' !== Agency_SSO_Config::issuer() && Agency_SSO_Config::block_passwords()
			&& Agency_SSO_Users::is_bound( $user )
			&& ! in_array( $user->user_login, Agency_SSO_Config::break_glass_logins(), true );
	}
}
