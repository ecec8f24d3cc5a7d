<?php
/**
 * The site message check: a site message is accepted only with its own
 * `typ`, no person, event or nonce, an action the plugin knows and, on a
 * `connect`, the attempt it answers; a logout token or a launch token is
 * never one, nor a site message either of those.
 *
 * @package Agency_SSO_Connector
 */

/**
 * Tests of Agency_SSO_Site_Message.
 */
final class Test_Agency_SSO_Site_Message extends Agency_SSO_Test_Case {

	/**
	 * A site message as the dashboard sends it (a `connect`), with changes.
	 *
	 * @param array $claim_changes  Claim changes (null removes).
	 * @param array $header_changes Header changes (null removes).
	 */
	private static function message( array $claim_changes = array(), array $header_changes = array() ): string {
		$claims = array(
			'iss'     => self::ISSUER,
			'aud'     => self::AUDIENCE,
			'iat'     => self::NOW,
			'exp'     => self::NOW + 120,
			'jti'     => 'Sm3v9Lk2mWc9tRgq8Zx3vN',
			'action'  => 'connect',
			'attempt' => 'Qm9xZXMgYW5kIGJveGVzIGFuZCBib3hlcyBhbmQgYm94ZXM',
		);
		foreach ( $claim_changes as $name => $value ) {
			if ( null === $value ) {
				unset( $claims[ $name ] );
			} else {
				$claims[ $name ] = $value;
			}
		}
		return self::sign( self::header( array_merge( array( 'typ' => Agency_SSO_Site_Message::TYP ), $header_changes ) ), $claims );
	}

	/**
	 * A logout token as the dashboard sends it.
	 */
	private static function logout_token(): string {
		return self::sign(
			self::header( array( 'typ' => 'logout+jwt' ) ),
			array(
				'iss'    => self::ISSUER,
				'aud'    => self::AUDIENCE,
				'sub'    => 'p-7f3a9c2e41b84d6f9a0c5e1b2d3f4a5b',
				'email'  => 'sam@agency.example',
				'iat'    => self::NOW,
				'exp'    => self::NOW + 120,
				'jti'    => 'Xo3v9Lk2mWc9tRgq8Zx3vN',
				'events' => array( Agency_SSO_Logout_Token::EVENT => new stdClass() ),
				'action' => 'lock',
				'seq'    => 41,
			)
		);
	}

	/**
	 * Verify with the test defaults.
	 *
	 * @param string $token The token.
	 * @param int    $now   The time.
	 */
	private static function check( string $token, int $now = self::NOW ): array {
		return Agency_SSO_Site_Message::verify( $token, self::ISSUER, self::AUDIENCE, self::keys(), $now );
	}

	/**
	 * Asserts a refusal code.
	 *
	 * @param string $code  The code.
	 * @param string $token The token.
	 * @param int    $now   The time.
	 */
	private function assert_message_refused( string $code, string $token, int $now = self::NOW ): void {
		$this->assert_error(
			$code,
			static function () use ( $token, $now ) {
				self::check( $token, $now );
			}
		);
	}

	public function test_each_action_the_dashboard_sends_is_accepted(): void {
		$connect = self::check( self::message() );
		$this->assertSame( 'connect', $connect['action'] );
		$this->assertSame( 'Qm9xZXMgYW5kIGJveGVzIGFuZCBib3hlcyBhbmQgYm94ZXM', $connect['attempt'] );
		$this->assertSame( 'Sm3v9Lk2mWc9tRgq8Zx3vN', $connect['jti'] );
		$this->assertSame( 'status', self::check( self::message( array( 'action' => 'status', 'attempt' => null ) ) )['action'] );
		$this->assertSame( 'refresh-keys', self::check( self::message( array( 'action' => 'refresh-keys', 'attempt' => null ) ) )['action'] );
		// The media type's long form is the same typ (RFC 7515 section 4.1.9).
		$this->assertSame( 'connect', self::check( self::message( array(), array( 'typ' => 'application/agency-sso-site+jwt' ) ) )['action'] );
	}

	public function test_a_logout_or_launch_token_is_not_a_site_message_nor_a_site_message_either(): void {
		$this->assert_message_refused( 'wrong_type', self::logout_token() );
		$this->assert_message_refused( 'wrong_type', self::token() );
		$this->assert_message_refused( 'wrong_type', self::message( array(), array( 'typ' => 'logout+jwt' ) ) );
		$this->assert_message_refused( 'wrong_type', self::message( array(), array( 'typ' => null ) ) );
		// The logout verifier refuses a site message, even one dressed as a logout token.
		$site = self::message( array( 'action' => 'lock', 'seq' => 3, 'sub' => 'p-1', 'email' => 'sam@agency.example', 'events' => array( Agency_SSO_Logout_Token::EVENT => new stdClass() ) ) );
		$this->assert_error(
			'wrong_type',
			static function () use ( $site ) {
				Agency_SSO_Logout_Token::verify( $site, self::ISSUER, self::AUDIENCE, self::keys(), self::NOW );
			}
		);
		// Nor is one a launch token.
		$this->assert_refused( 'wrong_type', self::message( array( 'sub' => 'p-1', 'email' => 'sam@agency.example', 'wp_role' => 'editor' ) ) );
	}

	public function test_a_message_about_a_person_an_event_or_a_nonce_is_refused(): void {
		$this->assert_message_refused( 'not_a_site_message', self::message( array( 'events' => array( Agency_SSO_Logout_Token::EVENT => new stdClass() ) ) ) );
		$this->assert_message_refused( 'not_a_site_message', self::message( array( 'events' => array() ) ) );
		$this->assert_message_refused( 'not_a_site_message', self::message( array( 'sub' => 'p-7f3a9c2e41b84d6f9a0c5e1b2d3f4a5b' ) ) );
		$this->assert_message_refused( 'not_a_site_message', self::message( array( 'sub' => '' ) ) );
		$this->assert_message_refused( 'not_a_site_message', self::message( array( 'nonce' => 'n' ) ) );
		$this->assertSame( 400, Agency_SSO_Site_Message::status( 'not_a_site_message' ) );
	}

	public function test_a_connect_says_which_attempt_it_answers(): void {
		$this->assert_message_refused( 'missing_claim', self::message( array( 'attempt' => null ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'attempt' => '' ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'attempt' => 42 ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'attempt' => array( 'a' ) ) ) );
	}

	public function test_unknown_actions_are_refused(): void {
		$this->assert_message_refused( 'unknown_action', self::message( array( 'action' => 'lock' ) ) );
		$this->assert_message_refused( 'unknown_action', self::message( array( 'action' => 'delete-site' ) ) );
		$this->assert_message_refused( 'unknown_action', self::message( array( 'action' => array( 'status' ) ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'action' => null ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'action' => '' ) ) );
	}

	public function test_the_token_checks_still_hold(): void {
		$this->assert_message_refused( 'token_expired', self::message(), self::NOW + 181 );
		$this->assertSame( 'connect', self::check( self::message(), self::NOW + 180 )['action'] );
		$this->assert_message_refused( 'token_not_yet_valid', self::message(), self::NOW - 61 );
		$this->assert_message_refused( 'lifetime_too_long', self::message( array( 'exp' => self::NOW + 301 ) ) );
		$this->assert_message_refused( 'wrong_audience', self::message( array( 'aud' => 'https://other.example' ) ) );
		$this->assert_message_refused( 'wrong_audience', self::message( array( 'aud' => null ) ) );
		$this->assert_message_refused( 'wrong_issuer', self::message( array( 'iss' => 'https://evil.example' ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'jti' => 'short' ) ) );
		$this->assert_message_refused( 'unknown_key', self::message( array(), array( 'kid' => 'other' ) ) );
		$this->assert_message_refused( 'bad_signature', self::message() . 'A' );
		$this->assert_message_refused( 'bad_signature', self::sign( self::header( array( 'typ' => Agency_SSO_Site_Message::TYP ) ), array( 'action' => 'status' ), self::key( 'other' ) ) );
		$this->assert_message_refused( 'malformed_token', '' );
	}

	public function test_the_action_read_unchecked_only_chooses_the_dashboard(): void {
		$this->assertSame( 'connect', Agency_SSO_Site_Message::unverified_action( self::message() ) );
		$this->assertSame( 'status', Agency_SSO_Site_Message::unverified_action( self::message( array( 'action' => 'status' ) ) ) );
		$this->assertSame( '', Agency_SSO_Site_Message::unverified_action( self::message( array( 'action' => 3 ) ) ) );
		$this->assertSame( '', Agency_SSO_Site_Message::unverified_action( 'a.b' ) );
		$this->assertSame( '', Agency_SSO_Site_Message::unverified_action( 'a.!!.c' ) );
		$this->assertSame( '', Agency_SSO_Site_Message::unverified_action( '' ) );
	}

	public function test_refusals_have_the_plugins_status_codes(): void {
		$this->assertSame( 409, Agency_SSO_Site_Message::status( 'no_pending_connection' ) );
		$this->assertSame( 409, Agency_SSO_Site_Message::status( 'token_replayed' ) );
		$this->assertSame( 401, Agency_SSO_Site_Message::status( 'attempt_mismatch' ) );
		$this->assertSame( 400, Agency_SSO_Site_Message::status( 'malformed_token' ) );
		$this->assertSame( 400, Agency_SSO_Site_Message::status( 'unknown_action' ) );
		$this->assertSame( 503, Agency_SSO_Site_Message::status( 'not_configured' ) );
		$this->assertSame( 503, Agency_SSO_Site_Message::status( 'key_set_stale' ) );
		$this->assertSame( 401, Agency_SSO_Site_Message::status( 'bad_signature' ) );
	}
}
