<?php
/**
 * The back-channel message check: a logout token is accepted only with
 * its own `typ`, the logout event, no nonce, an action the plugin knows
 * and its place in the order of changes; a launch token is never one.
 *
 * @package Agency_SSO_Connector
 */

/**
 * Tests of Agency_SSO_Logout_Token.
 */
final class Test_Agency_SSO_Logout_Token extends Agency_SSO_Test_Case {

	/**
	 * A logout token as the dashboard sends it, with changes.
	 *
	 * @param array $claim_changes  Claim changes (null removes).
	 * @param array $header_changes Header changes (null removes).
	 */
	private static function message( array $claim_changes = array(), array $header_changes = array() ): string {
		$claims = array(
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
		);
		foreach ( $claim_changes as $name => $value ) {
			if ( null === $value ) {
				unset( $claims[ $name ] );
			} else {
				$claims[ $name ] = $value;
			}
		}
		return self::sign( self::header( array_merge( array( 'typ' => 'logout+jwt' ), $header_changes ) ), $claims );
	}

	/**
	 * Verify with the test defaults.
	 *
	 * @param string $token The token.
	 * @param int    $now   The time.
	 */
	private static function check( string $token, int $now = self::NOW ): array {
		return Agency_SSO_Logout_Token::verify( $token, self::ISSUER, self::AUDIENCE, self::keys(), $now );
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
		$this->assertSame( 'lock', self::check( self::message() )['action'] );
		$this->assertSame( 'end-sessions', self::check( self::message( array( 'action' => 'end-sessions' ) ) )['action'] );
		$set = self::check( self::message( array( 'action' => 'set-role', 'wp_role' => 'author' ) ) );
		$this->assertSame( 'author', $set['wp_role'] );
		$none = self::check( self::message( array( 'action' => 'set-role', 'wp_role' => '' ) ) );
		$this->assertSame( '', $none['wp_role'] );
	}

	public function test_a_launch_token_is_not_a_message_nor_a_message_a_launch_token(): void {
		$this->assert_message_refused( 'wrong_type', self::token() );
		$this->assert_message_refused( 'wrong_type', self::message( array(), array( 'typ' => 'JWT' ) ) );
		$this->assert_refused( 'wrong_type', self::message( array( 'wp_role' => 'editor' ) ) );
	}

	public function test_the_logout_event_is_required_and_a_nonce_refused(): void {
		$this->assert_message_refused( 'not_a_logout_token', self::message( array( 'events' => null ) ) );
		$this->assert_message_refused( 'not_a_logout_token', self::message( array( 'events' => array( 'urn:other' => new stdClass() ) ) ) );
		$this->assert_message_refused( 'not_a_logout_token', self::message( array( 'events' => array( Agency_SSO_Logout_Token::EVENT => 'yes' ) ) ) );
		$this->assert_message_refused( 'not_a_logout_token', self::message( array( 'nonce' => 'n' ) ) );
	}

	public function test_unknown_actions_and_a_set_role_without_a_role_are_refused(): void {
		$this->assert_message_refused( 'unknown_action', self::message( array( 'action' => 'delete-user' ) ) );
		$this->assert_message_refused( 'unknown_action', self::message( array( 'action' => array( 'lock' ) ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'action' => null ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'action' => 'set-role' ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'action' => 'set-role', 'wp_role' => 3 ) ) );
	}

	public function test_a_message_says_its_place_in_the_order_of_changes(): void {
		$this->assertSame( 41, self::check( self::message() )['seq'] );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'seq' => null ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'seq' => '41' ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'seq' => 0 ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'seq' => -3 ) ) );
		$this->assert_message_refused( 'missing_claim', self::message( array( 'seq' => 4.5 ) ) );
	}

	public function test_the_launch_checks_still_hold(): void {
		$this->assert_message_refused( 'wrong_audience', self::message( array( 'aud' => 'https://other.example' ) ) );
		$this->assert_message_refused( 'wrong_issuer', self::message( array( 'iss' => 'https://evil.example' ) ) );
		$this->assert_message_refused( 'token_expired', self::message(), self::NOW + 181 );
		$this->assert_message_refused( 'lifetime_too_long', self::message( array( 'exp' => self::NOW + 301 ) ) );
		$this->assert_message_refused( 'unknown_key', self::message( array(), array( 'kid' => 'other' ) ) );
		$this->assert_message_refused( 'bad_signature', self::message() . 'A' );
		$this->assert_message_refused( 'malformed_token', '' );
	}

	public function test_refusals_have_the_plugins_status_codes(): void {
		$this->assertSame( 409, Agency_SSO_Logout_Token::status( 'token_replayed' ) );
		$this->assertSame( 400, Agency_SSO_Logout_Token::status( 'not_a_logout_token' ) );
		$this->assertSame( 422, Agency_SSO_Logout_Token::status( 'role_not_allowed' ) );
		$this->assertSame( 503, Agency_SSO_Logout_Token::status( 'dashboard_unreachable' ) );
		$this->assertSame( 503, Agency_SSO_Logout_Token::status( 'key_set_stale' ) );
		$this->assertSame( 401, Agency_SSO_Logout_Token::status( 'bad_signature' ) );
	}
}
