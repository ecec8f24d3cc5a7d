<?php
/**
 * The dashboard's update metadata: accepted only with the connector's
 * slug, a version, a SHA-256 digest and a package on the dashboard's own
 * origin; members it does not name are ignored, a named member of the
 * wrong shape refuses the whole answer; an older or equal version is never
 * newer (no downgrades); the changelog is escaped.
 *
 * @package Agency_SSO_Connector
 */

/**
 * Tests of Agency_SSO_Update_Info.
 */
final class Test_Agency_SSO_Update_Info extends Agency_SSO_Test_Case {

	/**
	 * The package's digest in the tests.
	 */
	const SHA256 = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

	/**
	 * The metadata as the dashboard sends it, with changes.
	 *
	 * @param array $changes Members to add or replace; a null value removes the member.
	 */
	private static function info( array $changes = array() ): array {
		$info = array(
			'name'         => 'agency-sso connector',
			'slug'         => 'agency-sso-connector',
			'version'      => '0.3.0',
			'requires'     => '6.1',
			'tested'       => '6.1',
			'requires_php' => '8.1',
			'package'      => self::ISSUER . '/agency-sso-connector.zip',
			'sha256'       => self::SHA256,
			'changelog'    => "= 0.3.0 =\n* Connect in one step.\n* Updates from the dashboard.",
		);
		foreach ( $changes as $name => $value ) {
			if ( null === $value ) {
				unset( $info[ $name ] );
			} else {
				$info[ $name ] = $value;
			}
		}
		return $info;
	}

	/**
	 * Parse metadata with the test issuer.
	 *
	 * @param array  $changes Changes to the metadata.
	 * @param string $issuer  The configured issuer.
	 */
	private static function parse( array $changes = array(), string $issuer = self::ISSUER ): array {
		return Agency_SSO_Update_Info::parse( json_encode( self::info( $changes ), JSON_UNESCAPED_SLASHES ), $issuer );
	}

	/**
	 * Asserts that a body is refused as bad update information, with a plain sentence.
	 *
	 * @param string $body   The answer's body.
	 * @param string $issuer The configured issuer.
	 */
	private function assert_bad_body( string $body, string $issuer = self::ISSUER ): void {
		try {
			Agency_SSO_Update_Info::parse( $body, $issuer );
		} catch ( Agency_SSO_Error $error ) {
			$this->assertSame( 'bad_update_info', $error->get_error_code(), 'message: ' . $error->getMessage() );
			$this->assertMatchesRegularExpression( '/\A[A-Z][^\r\n]*\.\z/', $error->getMessage() );
			return;
		}
		$this->fail( 'The update information was accepted; expected bad_update_info.' );
	}

	/**
	 * Asserts that metadata with changes is refused.
	 *
	 * @param array  $changes Changes to the metadata.
	 * @param string $issuer  The configured issuer.
	 */
	private function assert_bad( array $changes, string $issuer = self::ISSUER ): void {
		$this->assert_bad_body( json_encode( self::info( $changes ), JSON_UNESCAPED_SLASHES ), $issuer );
	}

	public function test_the_dashboards_answer_is_read(): void {
		$this->assertSame(
			array(
				'name'         => 'agency-sso connector',
				'slug'         => 'agency-sso-connector',
				'version'      => '0.3.0',
				'requires'     => '6.1',
				'tested'       => '6.1',
				'requires_php' => '8.1',
				'package'      => self::ISSUER . '/agency-sso-connector.zip',
				'sha256'       => self::SHA256,
				'changelog'    => "= 0.3.0 =\n* Connect in one step.\n* Updates from the dashboard.",
			),
			self::parse()
		);
		// Members it does not name are ignored; the digest is kept lower-case.
		$info = self::parse(
			array(
				'sha256'    => strtoupper( self::SHA256 ),
				'download'  => 'https://elsewhere.example/x.zip',
				'autoapply' => true,
			)
		);
		$this->assertSame( self::SHA256, $info['sha256'] );
		$this->assertArrayNotHasKey( 'download', $info );
		// Requirements and the changelog may be left out.
		$info = self::parse(
			array(
				'requires'     => null,
				'tested'       => null,
				'requires_php' => null,
				'changelog'    => null,
			)
		);
		$this->assertSame( array( '', '', '', '' ), array( $info['requires'], $info['tested'], $info['requires_php'], $info['changelog'] ) );
		// Versions of two to four numbers.
		$this->assertSame( '1.0', self::parse( array( 'version' => '1.0' ) )['version'] );
		$this->assertSame( '0.3.0.12', self::parse( array( 'version' => '0.3.0.12' ) )['version'] );
	}

	public function test_an_answer_that_is_not_a_json_object_is_refused(): void {
		$this->assert_bad_body( '' );
		$this->assert_bad_body( 'not json' );
		$this->assert_bad_body( '<html><body>Login</body></html>' );
		$this->assert_bad_body( '[]' );
		$this->assert_bad_body( '{}' );
		$this->assert_bad_body( '"0.3.0"' );
		$this->assert_bad_body( '[' . json_encode( self::info(), JSON_UNESCAPED_SLASHES ) . ']' );
		$this->assert_bad_body( str_repeat( '[', 64 ) . str_repeat( ']', 64 ) );
	}

	public function test_another_plugins_answer_is_refused(): void {
		$this->assert_bad( array( 'slug' => null ) );
		$this->assert_bad( array( 'slug' => 'akismet' ) );
		$this->assert_bad( array( 'slug' => 'Agency-SSO-Connector' ) );
		$this->assert_bad( array( 'slug' => array( 'agency-sso-connector' ) ) );
	}

	public function test_the_version_must_be_two_to_four_numbers(): void {
		foreach ( array( null, '', '1', '0.3.0-beta', 'v0.3.0', '0.3.0.1.2', ' 0.3.0', "0.3.0\n", '0..3', '0.3.', '1e3.0', '９.0' ) as $version ) {
			$this->assert_bad( array( 'version' => $version ) );
		}
		$this->assert_bad( array( 'version' => 3 ) );
		$this->assert_bad( array( 'version' => 0.3 ) );
		$this->assert_bad( array( 'version' => array( '0.3.0' ) ) );
	}

	public function test_the_digest_must_be_64_hex_digits(): void {
		$this->assert_bad( array( 'sha256' => null ) );
		$this->assert_bad( array( 'sha256' => '' ) );
		$this->assert_bad( array( 'sha256' => substr( self::SHA256, 1 ) ) );
		$this->assert_bad( array( 'sha256' => self::SHA256 . '0' ) );
		$this->assert_bad( array( 'sha256' => 'g' . substr( self::SHA256, 1 ) ) );
		$this->assert_bad( array( 'sha256' => 'sha256:' . self::SHA256 ) );
		$this->assert_bad( array( 'sha256' => base64_encode( hex2bin( self::SHA256 ) ) ) );
		$this->assert_bad( array( 'sha256' => self::SHA256 . "\n" ) );
	}

	public function test_the_package_must_be_on_the_dashboards_own_origin(): void {
		foreach ( array(
			null,
			'',
			'agency-sso-connector.zip',
			'/agency-sso-connector.zip',
			'//sso.agency.example/agency-sso-connector.zip',
			'http://sso.agency.example/agency-sso-connector.zip',
			'https://sso.agency.example:8443/agency-sso-connector.zip',
			'https://evil.example/agency-sso-connector.zip',
			'https://sso.agency.example.evil.example/agency-sso-connector.zip',
			'https://user:pw@sso.agency.example/agency-sso-connector.zip',
			'https://sso.agency.example@evil.example/agency-sso-connector.zip',
			'https://sso.agency.example/agency-sso-connector.zip#x',
			'https://sso.agency.example/agency sso.zip',
			'https://sso.agency.example\\@evil.example/x.zip',
			'ftp://sso.agency.example/agency-sso-connector.zip',
			'file:///etc/passwd',
		) as $package ) {
			$this->assert_bad( array( 'package' => $package ) );
		}
		$this->assert_bad( array( 'package' => array( self::ISSUER . '/agency-sso-connector.zip' ) ) );
		// The same origin, written otherwise, is the same origin.
		$this->assertSame( 'HTTPS://SSO.Agency.Example:443/dl/agency-sso-connector.zip?v=0.3.0', self::parse( array( 'package' => 'HTTPS://SSO.Agency.Example:443/dl/agency-sso-connector.zip?v=0.3.0' ) )['package'] );
		// A dashboard on this machine at its own port (as the tests' is).
		$local = 'http://127.0.0.1:3100';
		$this->assertSame( $local . '/agency-sso-connector.zip', self::parse( array( 'package' => $local . '/agency-sso-connector.zip' ), $local )['package'] );
		$this->assert_bad( array( 'package' => 'http://127.0.0.1:3101/agency-sso-connector.zip' ), $local );
		$this->assert_bad( array( 'package' => 'http://localhost:3100/agency-sso-connector.zip' ), $local );
		$this->assert_bad( array( 'package' => 'https://127.0.0.1:3100/agency-sso-connector.zip' ), $local );
	}

	public function test_the_other_members_named_must_have_their_shape(): void {
		$this->assert_bad( array( 'name' => '' ) );
		$this->assert_bad( array( 'name' => '   ' ) );
		$this->assert_bad( array( 'name' => 42 ) );
		$this->assert_bad( array( 'name' => "agency-sso\nconnector" ) );
		$this->assert_bad( array( 'name' => str_repeat( 'n', 201 ) ) );
		$this->assert_bad( array( 'requires' => 6.1 ) );
		$this->assert_bad( array( 'requires' => '6.1; rm -rf' ) );
		$this->assert_bad( array( 'tested' => 'latest' ) );
		$this->assert_bad( array( 'requires_php' => '>=8.1' ) );
		$this->assert_bad( array( 'changelog' => array( '0.3.0' ) ) );
		$this->assert_bad( array( 'changelog' => str_repeat( 'x', Agency_SSO_Update_Info::MAX_CHANGELOG + 1 ) ) );
		$this->assert_bad_body( str_replace( '"changelog":""', "\"changelog\":\"\xff\"", json_encode( self::info( array( 'changelog' => '' ) ), JSON_UNESCAPED_SLASHES ) ) );
		$this->assertSame( '8', self::parse( array( 'requires_php' => '8' ) )['requires_php'] );
	}

	public function test_an_older_or_equal_version_is_never_newer(): void {
		$this->assertTrue( Agency_SSO_Update_Info::is_newer( '0.3.0', '0.2.9' ) );
		$this->assertTrue( Agency_SSO_Update_Info::is_newer( '0.10.0', '0.9.9' ) );
		$this->assertTrue( Agency_SSO_Update_Info::is_newer( '1.0', '0.99.99' ) );
		$this->assertTrue( Agency_SSO_Update_Info::is_newer( '0.3.0.1', '0.3.0' ) );
		$this->assertFalse( Agency_SSO_Update_Info::is_newer( '0.3.0', '0.3.0' ) );
		$this->assertFalse( Agency_SSO_Update_Info::is_newer( '0.3', '0.3.0' ) );
		$this->assertFalse( Agency_SSO_Update_Info::is_newer( '0.2.9', '0.3.0' ) );
		$this->assertFalse( Agency_SSO_Update_Info::is_newer( '0.9.9', '0.10.0' ) );
		// Not a version the dashboard may offer.
		$this->assertFalse( Agency_SSO_Update_Info::is_newer( '0.4.0-beta', '0.3.0' ) );
		$this->assertFalse( Agency_SSO_Update_Info::is_newer( '', '0.3.0' ) );
	}

	public function test_the_origin_is_scheme_host_and_port(): void {
		$this->assertSame( 'https://sso.agency.example', Agency_SSO_Update_Info::origin( 'HTTPS://SSO.agency.example:443/x' ) );
		$this->assertSame( 'http://127.0.0.1:3100', Agency_SSO_Update_Info::origin( 'http://127.0.0.1:3100' ) );
		$this->assertSame( 'http://127.0.0.1', Agency_SSO_Update_Info::origin( 'http://127.0.0.1:80/' ) );
		$this->assertSame( 'https://[::1]:8443', Agency_SSO_Update_Info::origin( 'https://[::1]:8443/' ) );
		$this->assertSame( '', Agency_SSO_Update_Info::origin( 'ftp://sso.agency.example/' ) );
		$this->assertSame( '', Agency_SSO_Update_Info::origin( '/agency-sso-connector.zip' ) );
		$this->assertSame( '', Agency_SSO_Update_Info::origin( 'http:///x' ) );
	}

	public function test_a_dashboard_without_a_package_says_why(): void {
		$error = Agency_SSO_Update_Info::refusal( 404, '{"error":"no_package","message":"This dashboard has no connector package."}' );
		$this->assertSame( 'no_package', $error->get_error_code() );
		$this->assertSame( 'This dashboard has no connector package.', $error->getMessage() );
		$error = Agency_SSO_Update_Info::refusal( 503, '{"error":"package_unavailable","message":"Line one\nline two"}' );
		$this->assertSame( 'package_unavailable', $error->get_error_code() );
		$this->assertSame( 'Line one line two', $error->getMessage() );
		$this->assertSame( 300, mb_strlen( Agency_SSO_Update_Info::refusal( 404, json_encode( array( 'error' => 'no_package', 'message' => str_repeat( 'é', 400 ) ) ) )->getMessage(), 'UTF-8' ) );
		$this->assertSame( 'The dashboard has no update for the connector.', Agency_SSO_Update_Info::refusal( 404, '{"error":"no_package"}' )->getMessage() );
		// Anything else is a fixed refusal that names the status.
		foreach ( array( '', '<html>Not Found</html>', '{"error":"Not Found!"}', '{"error":42}', '[]' ) as $body ) {
			$error = Agency_SSO_Update_Info::refusal( 502, $body );
			$this->assertSame( 'update_info_unavailable', $error->get_error_code() );
			$this->assertSame( 'The dashboard answered the update check with HTTP status 502.', $error->getMessage() );
		}
	}

	public function test_the_changelog_is_escaped(): void {
		$this->assertSame(
			"<h4>0.3.0</h4>\n<ul>\n<li>Connect in one step.</li>\n<li>Updates &amp; more.</li>\n</ul>\n<p>Thanks.</p>\n",
			Agency_SSO_Update_Info::changelog_html( "= 0.3.0 =\r\n* Connect in one step.\n- Updates & more.\n\nThanks." )
		);
		$html = Agency_SSO_Update_Info::changelog_html( "<script>alert(1)</script>\n* <img src=x onerror=alert(1)>\n# \"quoted\" 'too'" );
		$this->assertStringNotContainsString( '<script', $html );
		$this->assertStringNotContainsString( '<img', $html );
		$this->assertStringContainsString( '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>', $html );
		$this->assertStringContainsString( '<h4>&quot;quoted&quot; &apos;too&apos;</h4>', $html );
		$this->assertSame( '', Agency_SSO_Update_Info::changelog_html( "\n\n" ) );
	}
}
