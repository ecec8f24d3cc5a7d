<?php
/**
 * Tests of base64url, JWK to PEM conversion, key set parsing and max-age.
 *
 * @package Agency_SSO_Connector
 */

/**
 * Key handling of Agency_SSO_JWT.
 */
class Test_Agency_SSO_Keys extends Agency_SSO_Test_Case {

	/*
	 * base64url.
	 */

	/**
	 * Encoding and decoding round-trip for every length and padding case.
	 */
	public function test_base64url_round_trip(): void {
		for ( $length = 0; $length <= 40; $length++ ) {
			$bytes   = 0 === $length ? '' : random_bytes( $length );
			$encoded = Agency_SSO_JWT::base64url_encode( $bytes );
			$this->assertMatchesRegularExpression( '/\A[A-Za-z0-9_-]*\z/', $encoded );
			$this->assertSame( $bytes, Agency_SSO_JWT::base64url_decode( $encoded ) );
		}
		$this->assertSame( "\xfb\xff\xbf", Agency_SSO_JWT::base64url_decode( '-_-_' ) );
	}

	/**
	 * Characters and shapes outside strict unpadded base64url are refused.
	 *
	 * @dataProvider bad_base64url
	 * @param string $text Text.
	 */
	public function test_base64url_decode_is_strict( string $text ): void {
		$this->assert_error(
			'malformed_token',
			static function () use ( $text ) {
				Agency_SSO_JWT::base64url_decode( $text );
			}
		);
	}

	/**
	 * Non-base64url texts.
	 *
	 * @return array
	 */
	public function bad_base64url(): array {
		return array(
			'plus'              => array( '+_-_' ),
			'slash'             => array( '-/-_' ),
			'padding'           => array( 'YQ==' ),
			'one padding char'  => array( 'YWI=' ),
			'space'             => array( 'YW I' ),
			'leading space'     => array( ' YWI' ),
			'trailing newline'  => array( "YWI\n" ),
			'length 1 mod 4'    => array( 'YWJjZ' ),
			'single char'       => array( 'Y' ),
			'dot'               => array( 'YW.I' ),
			'non-ascii'         => array( "YW\xc3\xa9" ),
			'nul'               => array( "YW\0I" ),
			'non-canonical bits' => array( 'YR' ),
		);
	}

	/*
	 * jwk_to_pem.
	 */

	/**
	 * The PEM written by hand equals OpenSSL's own export for keys of several
	 * sizes, and a token signed by the private key verifies against it.
	 *
	 * @dataProvider key_sizes
	 * @param string $label Key label.
	 * @param int    $bits  Size.
	 */
	public function test_jwk_to_pem_matches_openssl( string $label, int $bits ): void {
		$key = self::key( $label, $bits );
		$this->assertSame( $bits, openssl_pkey_get_details( $key )['bits'] );
		$this->assert_pem_matches_and_verifies( $key );
	}

	/**
	 * Key sizes.
	 *
	 * @return array
	 */
	public function key_sizes(): array {
		return array(
			'2048 a' => array( 'main', 2048 ),
			'2048 b' => array( 'other', 2048 ),
			'2048 c' => array( 'third', 2048 ),
			'3072'   => array( 'rsa3072', 3072 ),
			'4096'   => array( 'rsa4096', 4096 ),
		);
	}

	/**
	 * Exponent 3 (one byte) and 2^31 + 1 (high bit set, so its INTEGER needs
	 * a leading zero byte) give the same PEM as OpenSSL's.
	 *
	 * @dataProvider exponents
	 * @param int $exponent Public exponent.
	 */
	public function test_jwk_to_pem_matches_openssl_for_other_exponents( int $exponent ): void {
		$key = $this->key_with_exponent( $exponent );
		$this->assertSame( $exponent, (int) hexdec( bin2hex( openssl_pkey_get_details( $key )['rsa']['e'] ) ) );
		$this->assert_pem_matches_and_verifies( $key );
	}

	/**
	 * Exponents.
	 *
	 * @return array
	 */
	public function exponents(): array {
		return array(
			'3'          => array( 3 ),
			'0x80000001' => array( 0x80000001 ),
		);
	}

	/**
	 * Asserts jwk_to_pem( jwk( key ) ) is OpenSSL's PEM and verifies a token signed by the key.
	 *
	 * @param mixed $key Private key.
	 */
	private function assert_pem_matches_and_verifies( $key ): void {
		$pem = Agency_SSO_JWT::jwk_to_pem( self::jwk( $key ) );
		$this->assertSame( self::public_pem( $key ), $pem );

		$token  = self::sign( self::header(), self::claims(), $key );
		$claims = self::verify(
			$token,
			array(),
			self::NOW,
			static function ( string $kid ) use ( $pem ) {
				return self::KID === $kid ? $pem : null;
			}
		);
		$this->assertSame( self::claims(), $claims );
	}

	/**
	 * A modulus written with a leading zero byte gives the same key.
	 */
	public function test_jwk_to_pem_tolerates_leading_zero_in_modulus(): void {
		$key      = self::key( 'main' );
		$jwk      = self::jwk( $key );
		$jwk['n'] = Agency_SSO_JWT::base64url_encode( "\0" . openssl_pkey_get_details( $key )['rsa']['n'] );
		$this->assertSame( self::public_pem( $key ), Agency_SSO_JWT::jwk_to_pem( $jwk ) );
	}

	/**
	 * A JWK without `use` and `alg`, or with key_ops verify, is accepted.
	 */
	public function test_jwk_to_pem_optional_members(): void {
		$key = self::key( 'main' );
		$jwk = self::jwk( $key );
		unset( $jwk['use'], $jwk['alg'], $jwk['kid'] );
		$this->assertSame( self::public_pem( $key ), Agency_SSO_JWT::jwk_to_pem( $jwk ) );
		$jwk['key_ops'] = array( 'verify' );
		$this->assertSame( self::public_pem( $key ), Agency_SSO_JWT::jwk_to_pem( $jwk ) );
	}

	/**
	 * A 1024-bit key is refused.
	 */
	public function test_jwk_to_pem_refuses_1024_bit_key(): void {
		$jwk = self::jwk( self::key( 'rsa1024', 1024 ) );
		$this->assert_error(
			'bad_key_set',
			static function () use ( $jwk ) {
				Agency_SSO_JWT::jwk_to_pem( $jwk );
			}
		);
	}

	/**
	 * A 2047-bit modulus is refused, also when written with a leading zero
	 * byte: the bit count is exact.
	 */
	public function test_jwk_to_pem_refuses_2047_bit_modulus(): void {
		$modulus    = openssl_pkey_get_details( self::key( 'main' ) )['rsa']['n'];
		$modulus[0] = chr( 0x7f );
		$jwk        = self::jwk( self::key( 'main' ) );
		$jwk['n']   = Agency_SSO_JWT::base64url_encode( $modulus );
		$this->assert_error(
			'bad_key_set',
			static function () use ( $jwk ) {
				Agency_SSO_JWT::jwk_to_pem( $jwk );
			}
		);
		$jwk['n'] = Agency_SSO_JWT::base64url_encode( "\0" . $modulus );
		$this->assert_error(
			'bad_key_set',
			static function () use ( $jwk ) {
				Agency_SSO_JWT::jwk_to_pem( $jwk );
			}
		);
	}

	/**
	 * Private, mis-typed or mis-labelled JWKs are refused.
	 *
	 * @dataProvider bad_jwk_changes
	 * @param array $changes Members to set (null: remove).
	 */
	public function test_jwk_to_pem_refuses_bad_jwk( array $changes ): void {
		$jwk = self::jwk( self::key( 'main' ) );
		foreach ( $changes as $name => $value ) {
			if ( null === $value ) {
				unset( $jwk[ $name ] );
			} else {
				$jwk[ $name ] = $value;
			}
		}
		$this->assert_error(
			'bad_key_set',
			static function () use ( $jwk ) {
				Agency_SSO_JWT::jwk_to_pem( $jwk );
			}
		);
	}

	/**
	 * Bad JWK changes.
	 *
	 * @return array
	 */
	public function bad_jwk_changes(): array {
		return array(
			'private d'           => array( array( 'd' => 'AQAB' ) ),
			'private p'           => array( array( 'p' => 'AQAB' ) ),
			'private q'           => array( array( 'q' => 'AQAB' ) ),
			'private dp'          => array( array( 'dp' => 'AQAB' ) ),
			'kty EC'              => array( array( 'kty' => 'EC' ) ),
			'kty rsa lower case'  => array( array( 'kty' => 'rsa' ) ),
			'kty missing'         => array( array( 'kty' => null ) ),
			'use enc'             => array( array( 'use' => 'enc' ) ),
			'alg RS512'           => array( array( 'alg' => 'RS512' ) ),
			'alg HS256'           => array( array( 'alg' => 'HS256' ) ),
			'key_ops sign only'   => array( array( 'key_ops' => array( 'sign' ) ) ),
			'n missing'           => array( array( 'n' => null ) ),
			'e missing'           => array( array( 'e' => null ) ),
			'n not a string'      => array( array( 'n' => 12345 ) ),
			'n an array'          => array( array( 'n' => array( 'AQAB' ) ) ),
			'e an array'          => array( array( 'e' => array( 'AQAB' ) ) ),
			'n padded base64'     => array( array( 'n' => 'AQAB==' ) ),
			'n with plus'         => array( array( 'n' => 'AQ+B' ) ),
			'e with padding'      => array( array( 'e' => 'AQAB=' ) ),
			'e even (65536)'      => array( array( 'e' => 'AQAA' ) ),
			'e one'               => array( array( 'e' => 'AQ' ) ),
			'e zero'              => array( array( 'e' => 'AA' ) ),
			'e empty'             => array( array( 'e' => '' ) ),
			'e 9 bytes'           => array( array( 'e' => Agency_SSO_JWT::base64url_encode( "\x01\0\0\0\0\0\0\0\x01" ) ) ),
			'n empty'             => array( array( 'n' => '' ) ),
		);
	}

	/*
	 * parse_key_set.
	 */

	/**
	 * A good set gives kid => PEM for its RSA keys and skips an EC key.
	 */
	public function test_parse_key_set_good_set_skips_ec_key(): void {
		$main  = self::key( 'main' );
		$other = self::key( 'other' );
		$set   = array(
			'keys' => array(
				self::jwk( $main, 'k1' ),
				self::ec_jwk( 'k-ec' ),
				self::jwk( $other, 'k2' ),
			),
		);
		$keys  = Agency_SSO_JWT::parse_key_set( json_encode( $set ) );
		$this->assertSame(
			array(
				'k1' => self::public_pem( $main ),
				'k2' => self::public_pem( $other ),
			),
			$keys
		);
	}

	/**
	 * A one-key set works, whatever the JSON layout.
	 */
	public function test_parse_key_set_single_key_pretty_printed(): void {
		$main = self::key( 'main' );
		$keys = Agency_SSO_JWT::parse_key_set( "\n " . json_encode( array( 'keys' => array( self::jwk( $main ) ) ), JSON_PRETTY_PRINT ) . "\n" );
		$this->assertSame( array( self::KID => self::public_pem( $main ) ), $keys );
	}

	/**
	 * Broken sets are refused as a whole.
	 *
	 * @dataProvider bad_key_sets
	 * @param callable $make Builds the JSON text.
	 */
	public function test_parse_key_set_refuses( callable $make ): void {
		$json = $make();
		$this->assert_error(
			'bad_key_set',
			static function () use ( $json ) {
				Agency_SSO_JWT::parse_key_set( $json );
			}
		);
	}

	/**
	 * Broken key sets (built lazily: the keys are made at test time).
	 *
	 * @return array
	 */
	public function bad_key_sets(): array {
		$set = static function ( array ...$keys ) {
			return static function () use ( $keys ) {
				return json_encode( array( 'keys' => $keys ) );
			};
		};
		return array(
			'empty set'             => array( $set() ),
			'only an EC key'        => array(
				static function () {
					return json_encode( array( 'keys' => array( self::ec_jwk( 'k-ec' ) ) ) );
				},
			),
			'duplicate kid'         => array(
				static function () {
					return json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ), 'k1' ), self::jwk( self::key( 'other' ), 'k1' ) ) ) );
				},
			),
			'duplicate kid with EC' => array(
				static function () {
					return json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ), 'k1' ), self::ec_jwk( 'k1' ) ) ) );
				},
			),
			'missing kid'           => array(
				static function () {
					$jwk = self::jwk( self::key( 'other' ), 'k2' );
					unset( $jwk['kid'] );
					return json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ), 'k1' ), $jwk ) ) );
				},
			),
			'numeric kid'           => array(
				static function () {
					return json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ), 'k1' ), array_merge( self::jwk( self::key( 'other' ) ), array( 'kid' => 7 ) ) ) ) );
				},
			),
			'EC key without kid'    => array(
				static function () {
					$ec = self::ec_jwk( 'x' );
					unset( $ec['kid'] );
					return json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ), 'k1' ), $ec ) ) );
				},
			),
			'one RSA key too short' => array(
				static function () {
					return json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ), 'k1' ), self::jwk( self::key( 'rsa1024', 1024 ), 'k-short' ) ) ) );
				},
			),
			'one RSA key private'   => array(
				static function () {
					return json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ), 'k1' ), array_merge( self::jwk( self::key( 'other' ), 'k2' ), array( 'd' => 'AQAB' ) ) ) ) );
				},
			),
			'entry not an object'   => array(
				static function () {
					return json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ), 'k1' ), 'k2' ) ) );
				},
			),
			'garbage'               => array(
				static function () {
					return 'this is not JSON';
				},
			),
			'empty text'            => array(
				static function () {
					return '';
				},
			),
			'JSON null'             => array(
				static function () {
					return 'null';
				},
			),
			'JSON array'            => array(
				static function () {
					return json_encode( array( self::jwk( self::key( 'main' ) ) ) );
				},
			),
			'keys not an array'     => array(
				static function () {
					return '{"keys":"none"}';
				},
			),
			'keys an object'        => array(
				static function () {
					return '{"keys":{"a":' . json_encode( self::jwk( self::key( 'main' ) ) ) . '}}';
				},
			),
			'no keys member'        => array(
				static function () {
					return json_encode( self::jwk( self::key( 'main' ) ) );
				},
			),
			'truncated'             => array(
				static function () {
					return substr( json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ) ) ) ) ), 0, -2 );
				},
			),
			'too deep'              => array(
				static function () {
					return '{"keys":[' . json_encode( array_merge( self::jwk( self::key( 'main' ) ), array( 'x' => json_decode( str_repeat( '[', 20 ) . str_repeat( ']', 20 ) ) ) ) ) . ']}';
				},
			),
		);
	}

	/**
	 * A key set lookup feeds verify(): the token of the second key verifies.
	 */
	public function test_parse_key_set_feeds_verify(): void {
		$keys  = Agency_SSO_JWT::parse_key_set( json_encode( array( 'keys' => array( self::jwk( self::key( 'main' ), 'k1' ), self::jwk( self::key( 'other' ), 'k2' ) ) ) ) );
		$token = self::sign( self::header( array( 'kid' => 'k2' ) ), self::claims(), self::key( 'other' ) );
		$found = static function ( string $kid ) use ( $keys ) {
			return isset( $keys[ $kid ] ) ? $keys[ $kid ] : null;
		};
		$this->assertSame( self::claims(), self::verify( $token, array(), self::NOW, $found ) );
		$this->assert_refused( 'bad_signature', self::sign( self::header( array( 'kid' => 'k1' ) ), self::claims(), self::key( 'other' ) ), array(), self::NOW, $found );
	}

	/**
	 * A public EC JWK (P-256) as a dashboard might publish next to its RSA keys.
	 *
	 * @param string $kid Key id.
	 * @return array
	 */
	private static function ec_jwk( string $kid ): array {
		return array(
			'kty' => 'EC',
			'kid' => $kid,
			'use' => 'sig',
			'alg' => 'ES256',
			'crv' => 'P-256',
			'x'   => 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
			'y'   => 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
		);
	}

	/*
	 * max_age.
	 */

	/**
	 * Cache-Control values.
	 *
	 * @dataProvider cache_controls
	 * @param string   $header   Header value.
	 * @param int|null $expected Expected max-age.
	 */
	public function test_max_age( string $header, ?int $expected ): void {
		$this->assertSame( $expected, Agency_SSO_JWT::max_age( $header ) );
	}

	/**
	 * Cache-Control values and their max-age.
	 *
	 * @return array
	 */
	public function cache_controls(): array {
		return array(
			'public max-age'        => array( 'public, max-age=300', 300 ),
			'only max-age'          => array( 'max-age=86400', 86400 ),
			'spaces and case'       => array( ' Public ,  MAX-AGE=60 ', 60 ),
			'quoted'                => array( 'max-age="120"', 120 ),
			'zero'                  => array( 'max-age=0', 0 ),
			'leading zeros'         => array( 'max-age=007', 7 ),
			'absent'                => array( 'public, must-revalidate', null ),
			'empty'                 => array( '', null ),
			's-maxage only'         => array( 'public, s-maxage=600', null ),
			'no-store'              => array( 'no-store', 0 ),
			'no-cache and max-age'  => array( 'no-cache, max-age=300', 0 ),
			'max-age then no-store' => array( 'public, max-age=300, no-store', 0 ),
			'NO-CACHE upper case'   => array( 'NO-CACHE', 0 ),
			'not a number'          => array( 'max-age=soon', 0 ),
			'negative'              => array( 'max-age=-5', 0 ),
			'no value'              => array( 'max-age', 0 ),
			'first of two wins'     => array( 'max-age=10, max-age=20', 10 ),
			'huge is capped'        => array( 'max-age=99999999999999999999999', 2147483648 ),
		);
	}
}
