<?php
/**
 * Tests of token verification.
 *
 * @package Agency_SSO_Connector
 */

/**
 * Agency_SSO_JWT::verify().
 */
class Test_Agency_SSO_Verify extends Agency_SSO_Test_Case {

	/*
	 * Good tokens.
	 */

	/**
	 * A good launch token passes and returns its claims.
	 */
	public function test_good_token_returns_claims(): void {
		$this->assertSame( self::claims(), self::verify( self::token() ) );
	}

	/**
	 * Replay protection is not the verifier's job: the same token verifies twice.
	 */
	public function test_replay_is_not_the_verifiers_job(): void {
		$token = self::token();
		$this->assertSame( self::claims(), self::verify( $token ) );
		$this->assertSame( self::claims(), self::verify( $token ) );
	}

	/**
	 * A launch token without nbf is fine (nbf is optional).
	 */
	public function test_nbf_is_optional(): void {
		$this->assertSame( self::claims( array( 'nbf' => null ) ), self::verify( self::token( array( 'nbf' => null ) ) ) );
	}

	/**
	 * The key lookup gets the kid and may return an OpenSSL key instead of a PEM.
	 */
	public function test_key_lookup_gets_kid_and_may_return_key_object(): void {
		$asked = array();
		$keys  = static function ( string $kid ) use ( &$asked ) {
			$asked[] = $kid;
			return openssl_pkey_get_public( self::public_pem( self::key( 'main' ) ) );
		};
		$this->assertSame( self::claims(), self::verify( self::token(), array(), self::NOW, $keys ) );
		$this->assertSame( array( self::KID ), $asked );
	}

	/*
	 * Structure: malformed_token.
	 */

	/**
	 * Four parts, two parts, one part, empty: malformed.
	 */
	public function test_wrong_number_of_parts_is_malformed(): void {
		$token = self::token();
		$this->assert_refused( 'malformed_token', $token . '.' . explode( '.', $token )[2] );
		$this->assert_refused( 'malformed_token', $token . '.' );
		$this->assert_refused( 'malformed_token', substr( $token, 0, strrpos( $token, '.' ) ) );
		$this->assert_refused( 'malformed_token', str_replace( '.', '', $token ) );
		$this->assert_refused( 'malformed_token', '' );
		$this->assert_refused( 'malformed_token', '..' );
	}

	/**
	 * Characters outside base64url in any part: malformed.
	 *
	 * @dataProvider non_base64url_tokens
	 * @param int    $part   Part index.
	 * @param string $insert Text put at the start of that part.
	 */
	public function test_non_base64url_characters_are_malformed( int $part, string $insert ): void {
		$parts          = explode( '.', self::token() );
		$parts[ $part ] = $insert . $parts[ $part ];
		$this->assert_refused( 'malformed_token', implode( '.', $parts ) );
	}

	/**
	 * Insertions that leave base64url.
	 *
	 * @return array
	 */
	public function non_base64url_tokens(): array {
		$cases = array();
		foreach ( array( 'header', 'payload', 'signature' ) as $index => $name ) {
			$cases[ "$name plus" ]    = array( $index, '+/+/' );
			$cases[ "$name space" ]   = array( $index, 'ab d' );
			$cases[ "$name padding" ] = array( $index, 'YQ==' );
			$cases[ "$name percent" ] = array( $index, '%41%' );
		}
		return $cases;
	}

	/**
	 * Padding at the end of the signature (as some encoders add): malformed.
	 */
	public function test_padded_signature_is_malformed(): void {
		$this->assert_refused( 'malformed_token', self::token() . '==' );
	}

	/**
	 * A header that is not a JSON object: malformed.
	 *
	 * @dataProvider bad_headers
	 * @param string $header_json Header text.
	 */
	public function test_header_not_json_object_is_malformed( string $header_json ): void {
		$token = self::sign_raw( Agency_SSO_JWT::base64url_encode( $header_json ) . '.' . self::b64_json( self::claims() ) );
		$this->assert_refused( 'malformed_token', $token );
	}

	/**
	 * Headers that are not JSON objects.
	 *
	 * @return array
	 */
	public function bad_headers(): array {
		return array(
			'array'          => array( '["RS256"]' ),
			'empty array'    => array( '[]' ),
			'string'         => array( '"RS256"' ),
			'null'           => array( 'null' ),
			'empty'          => array( '' ),
			'truncated'      => array( '{"alg":"RS256","kid":"kid-main","typ":"JWT"' ),
			'trailing comma' => array( '{"alg":"RS256","kid":"kid-main","typ":"JWT",}' ),
			'invalid utf-8'  => array( "{\"alg\":\"RS256\",\"kid\":\"kid-main\",\"typ\":\"JWT\",\"x\":\"\xff\"}" ),
			'too deep'       => array( '{"alg":"RS256","kid":"kid-main","typ":"JWT","x":' . str_repeat( '[', 16 ) . str_repeat( ']', 16 ) . '}' ),
		);
	}

	/**
	 * A correctly signed payload that is not a JSON object: malformed.
	 */
	public function test_payload_not_json_object_is_malformed(): void {
		foreach ( array( '[]', '"claims"', 'not json', '' ) as $payload ) {
			$token = self::sign_raw( self::b64_json( self::header() ) . '.' . Agency_SSO_JWT::base64url_encode( $payload ) );
			$this->assert_refused( 'malformed_token', $token );
		}
	}

	/**
	 * A token over 8192 bytes is refused; one at the limit is not.
	 */
	public function test_token_over_8192_bytes_is_malformed(): void {
		$filler = '';
		do {
			$filler .= 'x';
			$token   = self::token( array( 'filler' => $filler ) );
		} while ( strlen( $token ) < 8191 );
		$this->assertLessThanOrEqual( 8192, strlen( $token ) );
		$this->assertSame( $filler, self::verify( $token )['filler'] );

		do {
			$filler .= 'x';
			$token   = self::token( array( 'filler' => $filler ) );
		} while ( strlen( $token ) <= 8192 );
		$this->assertLessThanOrEqual( 8195, strlen( $token ) );
		$this->assert_refused( 'malformed_token', $token );
	}

	/*
	 * Header: alg_not_allowed, header_not_allowed, wrong_type, missing_kid.
	 */

	/**
	 * alg none with an empty signature.
	 */
	public function test_alg_none_with_empty_signature_is_refused(): void {
		$token = self::b64_json( self::header( array( 'alg' => 'none' ) ) ) . '.' . self::b64_json( self::claims() ) . '.';
		$this->assert_refused( 'alg_not_allowed', $token );
	}

	/**
	 * HS256 signed with the RSA public key's PEM as the HMAC secret (the
	 * classic key confusion attack) is refused.
	 */
	public function test_hs256_with_public_key_as_secret_is_refused(): void {
		$input = self::b64_json( self::header( array( 'alg' => 'HS256' ) ) ) . '.' . self::b64_json( self::claims() );
		$mac   = hash_hmac( 'sha256', $input, self::public_pem( self::key( 'main' ) ), true );
		$this->assert_refused( 'alg_not_allowed', $input . '.' . Agency_SSO_JWT::base64url_encode( $mac ) );
	}

	/**
	 * RS384, correctly signed with the right key, is refused: only RS256.
	 */
	public function test_rs384_is_refused(): void {
		$token = self::sign( self::header( array( 'alg' => 'RS384' ) ), self::claims(), null, OPENSSL_ALGO_SHA384 );
		$this->assert_refused( 'alg_not_allowed', $token );
	}

	/**
	 * Other alg values, each over a real RS256 signature.
	 *
	 * @dataProvider other_algs
	 * @param mixed $alg The alg header value (null: absent).
	 */
	public function test_other_algs_are_refused( $alg ): void {
		$header = self::header();
		if ( null === $alg ) {
			unset( $header['alg'] );
		} else {
			$header['alg'] = $alg;
		}
		$this->assert_refused( 'alg_not_allowed', self::sign( $header, self::claims() ) );
	}

	/**
	 * Alg values.
	 *
	 * @return array
	 */
	public function other_algs(): array {
		return array(
			'none'       => array( 'none' ),
			'None'       => array( 'None' ),
			'PS256'      => array( 'PS256' ),
			'RS512'      => array( 'RS512' ),
			'ES256'      => array( 'ES256' ),
			'lower case' => array( 'rs256' ),
			'space'      => array( 'RS256 ' ),
			'array'      => array( array( 'RS256' ) ),
			'absent'     => array( null ),
		);
	}

	/**
	 * Headers that carry keys or critical extensions are refused, even correctly signed.
	 *
	 * @dataProvider forbidden_headers
	 * @param string $name  Header name.
	 * @param mixed  $value Header value.
	 */
	public function test_forbidden_headers_are_refused( string $name, $value ): void {
		$this->assert_refused( 'header_not_allowed', self::token( array(), array( $name => $value ) ) );
	}

	/**
	 * Forbidden headers.
	 *
	 * @return array
	 */
	public function forbidden_headers(): array {
		return array(
			'jku'  => array( 'jku', 'https://evil.example/jwks.json' ),
			'x5u'  => array( 'x5u', 'https://evil.example/cert.pem' ),
			'jwk'  => array(
				'jwk',
				array(
					'kty' => 'RSA',
					'n'   => 'AQAB',
					'e'   => 'AQAB',
				),
			),
			'x5c'  => array( 'x5c', array( 'MIIB' ) ),
			'crit' => array( 'crit', array( 'exp' ) ),
			'jku empty string' => array( 'jku', '' ),
		);
	}

	/**
	 * A logout message is not a launch token.
	 */
	public function test_logout_typ_given_to_launch_check_is_refused(): void {
		$this->assert_refused( 'wrong_type', self::token( array(), array( 'typ' => 'logout+jwt' ) ) );
	}

	/**
	 * A launch token is not a logout message; a logout message is.
	 */
	public function test_launch_typ_given_to_logout_check_is_refused(): void {
		$this->assert_refused( 'wrong_type', self::token(), array( 'typ' => 'logout+jwt' ) );
		$this->assert_refused( 'wrong_type', self::token( array(), array( 'typ' => 'application/jwt' ) ), array( 'typ' => 'logout+jwt' ) );
		$logout = self::token( array(), array( 'typ' => 'logout+jwt' ) );
		$this->assertSame( self::claims(), self::verify( $logout, array( 'typ' => 'logout+jwt' ) ) );
		$logout = self::token( array(), array( 'typ' => 'application/Logout+JWT' ) );
		$this->assertSame( self::claims(), self::verify( $logout, array( 'typ' => 'logout+jwt' ) ) );
	}

	/**
	 * typ is compared case-insensitively, with an optional application/ prefix (RFC 7515 4.1.9).
	 */
	public function test_typ_spellings_of_jwt_are_accepted(): void {
		foreach ( array( 'JWT', 'jwt', 'Jwt', 'application/jwt', 'APPLICATION/JWT' ) as $typ ) {
			$this->assertSame( self::claims(), self::verify( self::token( array(), array( 'typ' => $typ ) ) ), $typ );
		}
	}

	/**
	 * Missing or other typ values are refused.
	 *
	 * @dataProvider other_typs
	 * @param mixed $typ The typ value (null: absent).
	 */
	public function test_other_typs_are_refused( $typ ): void {
		$header = self::header();
		if ( null === $typ ) {
			unset( $header['typ'] );
		} else {
			$header['typ'] = $typ;
		}
		$this->assert_refused( 'wrong_type', self::sign( $header, self::claims() ) );
	}

	/**
	 * Typ values.
	 *
	 * @return array
	 */
	public function other_typs(): array {
		return array(
			'absent'           => array( null ),
			'at+jwt'           => array( 'at+jwt' ),
			'JWS'              => array( 'JWS' ),
			'text/jwt'         => array( 'text/jwt' ),
			'application only' => array( 'application/' ),
			'space'            => array( 'JWT ' ),
			'number'           => array( 1 ),
			'empty'            => array( '' ),
		);
	}

	/**
	 * A token without a string kid is refused.
	 */
	public function test_missing_kid_is_refused(): void {
		$header = self::header();
		unset( $header['kid'] );
		$this->assert_refused( 'missing_kid', self::sign( $header, self::claims() ) );
		$this->assert_refused( 'missing_kid', self::token( array(), array( 'kid' => 7 ) ) );
		$this->assert_refused( 'missing_kid', self::token( array(), array( 'kid' => '' ) ) );
		$this->assert_refused( 'missing_kid', self::token( array(), array( 'kid' => array( self::KID ) ) ) );
	}

	/*
	 * Key lookup and signature: unknown_key, bad_signature.
	 */

	/**
	 * A kid the lookup does not know is refused.
	 */
	public function test_unknown_kid_is_refused(): void {
		$token = self::token( array(), array( 'kid' => 'kid-other' ) );
		$this->assert_refused( 'unknown_key', $token );
		try {
			self::verify( $token );
		} catch ( Agency_SSO_Error $error ) {
			$this->assertSame( 'The sign-in token was signed with a key this site does not know.', $error->getMessage() );
		}
	}

	/**
	 * A lookup that hands back an unusable or too short key is refused.
	 */
	public function test_unusable_key_from_lookup_is_refused(): void {
		$short = self::public_pem( self::key( 'rsa1024', 1024 ) );
		$token = self::sign( self::header(), self::claims(), self::key( 'rsa1024', 1024 ) );
		$this->assert_refused(
			'unknown_key',
			$token,
			array(),
			self::NOW,
			static function () use ( $short ) {
				return $short;
			}
		);
		$this->assert_refused(
			'unknown_key',
			self::token(),
			array(),
			self::NOW,
			static function () {
				return 'not a key';
			}
		);
	}

	/**
	 * A signature by another key that claims the same kid is refused.
	 */
	public function test_signature_by_another_key_with_same_kid_is_refused(): void {
		$this->assert_refused( 'bad_signature', self::sign( self::header(), self::claims(), self::key( 'other' ) ) );
	}

	/**
	 * A payload changed after signing is refused.
	 */
	public function test_tampered_payload_is_refused(): void {
		$parts    = explode( '.', self::token() );
		$parts[1] = self::b64_json( self::claims( array( 'wp_role' => 'administrator' ) ) );
		$this->assert_refused( 'bad_signature', implode( '.', $parts ) );
	}

	/**
	 * A header changed after signing is refused.
	 */
	public function test_tampered_header_is_refused(): void {
		$parts    = explode( '.', self::token() );
		$parts[0] = self::b64_json( self::header( array( 'typ' => 'jwt' ) ) );
		$this->assert_refused( 'bad_signature', implode( '.', $parts ) );
	}

	/**
	 * Damaged signatures are refused: a flipped bit, a cut or lengthened
	 * signature (its length must equal the modulus length), an empty one.
	 */
	public function test_damaged_signatures_are_refused(): void {
		$token                   = self::token();
		$parts                   = explode( '.', $token );
		$signature               = Agency_SSO_JWT::base64url_decode( $parts[2] );
		$flipped                 = $signature;
		$flipped[100]            = chr( ord( $flipped[100] ) ^ 1 );
		$variants                = array(
			'flipped'      => $flipped,
			'cut'          => substr( $signature, 1 ),
			'leading zero' => "\0" . $signature,
			'doubled'      => $signature . $signature,
			'empty'        => '',
		);
		foreach ( $variants as $name => $variant ) {
			$parts[2] = Agency_SSO_JWT::base64url_encode( $variant );
			$this->assert_refused( 'bad_signature', implode( '.', $parts ), array(), self::NOW, null );
		}
	}

	/*
	 * Claims.
	 */

	/**
	 * Wrong or missing issuers are refused.
	 */
	public function test_wrong_issuer_is_refused(): void {
		foreach ( array( 'https://sso.agency.example/', 'https://evil.example', 'http://sso.agency.example', 'HTTPS://SSO.AGENCY.EXAMPLE', 'https://sso.agency.example.evil.example', '' ) as $iss ) {
			$this->assert_refused( 'wrong_issuer', self::token( array( 'iss' => $iss ) ) );
		}
		$this->assert_refused( 'wrong_issuer', self::token( array( 'iss' => null ) ) );
		$this->assert_refused( 'wrong_issuer', self::token( array( 'iss' => array( self::ISSUER ) ) ) );
	}

	/**
	 * Audiences that are not exactly the site's URL are refused.
	 *
	 * @dataProvider wrong_audiences
	 * @param mixed  $aud      The aud claim (null: absent).
	 * @param string $expected The site's URL.
	 */
	public function test_wrong_audience_is_refused( $aud, string $expected ): void {
		$this->assert_refused( 'wrong_audience', self::token( array( 'aud' => $aud ) ), array( 'audience' => $expected ) );
	}

	/**
	 * Wrong audiences.
	 *
	 * @return array
	 */
	public function wrong_audiences(): array {
		return array(
			'trailing slash'           => array( 'https://c.example/', 'https://c.example' ),
			'site has no slash'        => array( 'https://c.example', 'https://c.example/' ),
			'sub-directory vs root'    => array( 'https://c.example/blog', 'https://c.example' ),
			'root vs sub-directory'    => array( 'https://c.example', 'https://c.example/blog' ),
			'other site'               => array( 'https://d.example', 'https://c.example' ),
			'http'                     => array( 'http://c.example', 'https://c.example' ),
			'upper case'               => array( 'https://C.example', 'https://c.example' ),
			'port'                     => array( 'https://c.example:443', 'https://c.example' ),
			'absent'                   => array( null, 'https://c.example' ),
			'array without it'         => array( array( 'https://d.example', 'https://c.example/' ), 'https://c.example' ),
			'empty array'              => array( array(), 'https://c.example' ),
			'object containing it'     => array( array( 'x' => 'https://c.example' ), 'https://c.example' ),
			'nested array'             => array( array( array( 'https://c.example' ) ), 'https://c.example' ),
		);
	}

	/**
	 * An aud array containing the site's URL is accepted.
	 */
	public function test_audience_array_containing_site_is_accepted(): void {
		$claims = self::claims( array( 'aud' => array( 'https://d.example', self::AUDIENCE ) ) );
		$this->assertSame( $claims, self::verify( self::sign( self::header(), $claims ) ) );
		$claims = self::claims( array( 'aud' => 'https://c.example/blog' ) );
		$this->assertSame( $claims, self::verify( self::sign( self::header(), $claims ), array( 'audience' => 'https://c.example/blog' ) ) );
	}

	/**
	 * exp: 61 s past is refused, 60 s past is accepted (leeway), and the
	 * leeway is capped at 60 s.
	 */
	public function test_expired_beyond_leeway_is_refused(): void {
		$token = self::token(
			array(
				'iat' => self::NOW - 120,
				'nbf' => self::NOW - 120,
				'exp' => self::NOW - 60,
			)
		);
		$this->assertSame( self::NOW - 60, self::verify( $token )['exp'] );
		$this->assert_refused( 'token_expired', $token, array(), self::NOW + 1 );
		$this->assert_refused( 'token_expired', $token, array( 'leeway' => 3600 ), self::NOW + 1 );
		$this->assert_refused( 'token_expired', $token, array( 'leeway' => 0 ) );
		$this->assertSame( self::NOW - 60, self::verify( $token, array( 'leeway' => 0 ), self::NOW - 60 )['exp'] );
	}

	/**
	 * A missing or non-integer exp counts as expired.
	 */
	public function test_missing_or_non_integer_exp_is_refused(): void {
		$this->assert_refused( 'token_expired', self::token( array( 'exp' => null ) ) );
		$this->assert_refused( 'token_expired', self::token( array( 'exp' => (float) ( self::NOW + 60 ) ) ) );
		$this->assert_refused( 'token_expired', self::token( array( 'exp' => (string) ( self::NOW + 60 ) ) ) );
		$this->assert_refused( 'token_expired', self::token( array( 'exp' => true ) ) );
		$this->assert_refused( 'token_expired', self::token( array( 'exp' => 1e30 ) ) );
	}

	/**
	 * nbf in the future beyond the leeway is refused; within it accepted.
	 */
	public function test_nbf_in_the_future_is_refused(): void {
		$this->assert_refused( 'token_not_yet_valid', self::token( array( 'nbf' => self::NOW + 61 ) ) );
		$this->assert_refused( 'token_not_yet_valid', self::token( array( 'nbf' => self::NOW + 30 ) ), array( 'leeway' => 0 ) );
		$this->assert_refused( 'token_not_yet_valid', self::token( array( 'nbf' => self::NOW + 61 ) ), array( 'leeway' => 3600 ) );
		$this->assertSame( self::NOW + 60, self::verify( self::token( array( 'nbf' => self::NOW + 60 ) ) )['nbf'] );
		$this->assert_refused( 'token_not_yet_valid', self::token( array( 'nbf' => (float) self::NOW ) ) );
		$this->assert_refused( 'token_not_yet_valid', self::token( array( 'nbf' => (string) self::NOW ) ) );
	}

	/**
	 * iat in the future beyond the leeway, missing or non-integer is refused.
	 */
	public function test_iat_in_the_future_is_refused(): void {
		$this->assert_refused(
			'token_not_yet_valid',
			self::token(
				array(
					'iat' => self::NOW + 61,
					'nbf' => null,
					'exp' => self::NOW + 120,
				)
			)
		);
		$accepted = self::token(
			array(
				'iat' => self::NOW + 60,
				'nbf' => null,
				'exp' => self::NOW + 120,
			)
		);
		$this->assertSame( self::NOW + 60, self::verify( $accepted )['iat'] );
		$this->assert_refused( 'token_not_yet_valid', self::token( array( 'iat' => null ) ) );
		$this->assert_refused( 'token_not_yet_valid', self::token( array( 'iat' => (float) self::NOW ) ) );
		$this->assert_refused( 'token_not_yet_valid', self::token( array( 'iat' => (string) self::NOW ) ) );
	}

	/**
	 * A lifetime of 301 s is refused, 300 s accepted; the cap cannot be raised.
	 */
	public function test_lifetime_over_300_seconds_is_refused(): void {
		$this->assert_refused( 'lifetime_too_long', self::token( array( 'exp' => self::NOW + 301 ) ) );
		$this->assert_refused( 'lifetime_too_long', self::token( array( 'exp' => self::NOW + 301 ) ), array( 'max_lifetime' => 3600 ) );
		$this->assert_refused( 'lifetime_too_long', self::token( array( 'exp' => self::NOW + 61 ) ), array( 'max_lifetime' => 60 ) );
		$this->assert_refused( 'lifetime_too_long', self::token( array( 'exp' => PHP_INT_MAX ) ) );
		$this->assertSame( self::NOW + 300, self::verify( self::token( array( 'exp' => self::NOW + 300 ) ) )['exp'] );
		$this->assertSame( self::NOW + 60, self::verify( self::token(), array( 'max_lifetime' => 60 ) )['exp'] );
	}

	/**
	 * Missing, short or non-string jti is refused.
	 */
	public function test_missing_jti_is_refused(): void {
		$this->assert_refused( 'missing_claim', self::token( array( 'jti' => null ) ) );
		$this->assert_refused( 'missing_claim', self::token( array( 'jti' => str_repeat( 'a', 15 ) ) ) );
		$this->assert_refused( 'missing_claim', self::token( array( 'jti' => 1234567890123456789 ) ) );
		$this->assert_refused( 'missing_claim', self::token( array( 'jti' => array( str_repeat( 'a', 16 ) ) ) ) );
		$this->assertSame( str_repeat( 'a', 16 ), self::verify( self::token( array( 'jti' => str_repeat( 'a', 16 ) ) ) )['jti'] );
	}

	/**
	 * Missing or invalid email is refused.
	 */
	public function test_missing_email_is_refused(): void {
		foreach ( array( null, '', 'jane', 'jane@', '@agency.example', 'jane doe@agency.example', array( 'jane@agency.example' ), 42 ) as $email ) {
			$this->assert_refused( 'missing_claim', self::token( array( 'email' => $email ) ) );
		}
	}

	/**
	 * Missing or non-string sub is refused.
	 */
	public function test_missing_sub_is_refused(): void {
		foreach ( array( null, '', 42, array( 'jane@agency.example' ) ) as $sub ) {
			$this->assert_refused( 'missing_claim', self::token( array( 'sub' => $sub ) ) );
		}
	}

	/**
	 * Claims named in `require` must be present.
	 */
	public function test_required_claims_must_be_present(): void {
		$this->assertSame( self::claims(), self::verify( self::token(), array( 'require' => array( 'wp_role', 'name' ) ) ) );
		$this->assert_refused( 'missing_claim', self::token( array( 'wp_role' => null ) ), array( 'require' => array( 'wp_role' ) ) );
		$this->assert_refused( 'missing_claim', self::token( array( 'wp_role' => '' ) ), array( 'require' => array( 'wp_role' ) ) );
		$this->assert_refused( 'missing_claim', self::token(), array( 'require' => array( 'events' ) ) );
	}

	/**
	 * Claims are not looked at before the signature is good: a forged token
	 * with expired, wrong-audience claims reports the signature.
	 */
	public function test_signature_is_checked_before_claims(): void {
		$token = self::sign(
			self::header(),
			self::claims(
				array(
					'aud' => 'https://d.example',
					'exp' => 1,
				)
			),
			self::key( 'other' )
		);
		$this->assert_refused( 'bad_signature', $token );
	}

	/**
	 * The header is checked before the key lookup, and the lookup before the signature.
	 */
	public function test_order_of_header_checks(): void {
		$never = function () {
			$this->fail( 'The key lookup must not run for a refused header.' );
		};
		$this->assert_refused( 'alg_not_allowed', self::token( array(), array( 'alg' => 'HS256', 'jku' => 'https://e.example', 'typ' => 'x', 'kid' => null ) ), array(), self::NOW, $never );
		$this->assert_refused( 'header_not_allowed', self::token( array(), array( 'jku' => 'https://e.example', 'typ' => 'x', 'kid' => null ) ), array(), self::NOW, $never );
		$this->assert_refused( 'wrong_type', self::token( array(), array( 'typ' => 'x', 'kid' => null ) ), array(), self::NOW, $never );
		$this->assert_refused( 'missing_kid', self::token( array(), array( 'kid' => null ) ), array(), self::NOW, $never );
		$this->assert_refused( 'unknown_key', self::sign( self::header( array( 'kid' => 'nope' ) ), self::claims(), self::key( 'other' ) ) );
	}

	/**
	 * A caller that forgets issuer, audience or typ gets a programming error, not a pass.
	 */
	public function test_incomplete_expectation_is_a_programming_error(): void {
		foreach ( array( 'issuer', 'audience', 'typ' ) as $name ) {
			$expect = self::expect();
			unset( $expect[ $name ] );
			try {
				Agency_SSO_JWT::verify( self::token(), $expect, self::keys(), self::NOW );
				$this->fail( "Accepted without $name." );
			} catch ( InvalidArgumentException $error ) {
				$this->assertStringContainsString( $name, $error->getMessage() );
			}
		}
	}
}
