<?php
/**
 * Shared helpers for the Agency SSO Connector unit tests: real RSA keys made
 * by OpenSSL at test time, JWKs built from them, and signed tokens.
 *
 * @package Agency_SSO_Connector
 */

use PHPUnit\Framework\TestCase;

/**
 * Base class of the unit tests.
 */
abstract class Agency_SSO_Test_Case extends TestCase {

	/**
	 * The dashboard's issuer URL used in the tests.
	 */
	const ISSUER = 'https://sso.agency.example';

	/**
	 * The client site's URL used in the tests.
	 */
	const AUDIENCE = 'https://c.example';

	/**
	 * A fixed "now".
	 */
	const NOW = 1700000000;

	/**
	 * The kid of the main signing key.
	 */
	const KID = 'kid-main';

	/**
	 * Keys made during this run, by label (key generation is slow, so each is made once).
	 *
	 * @var array
	 */
	private static $keys = array();

	/**
	 * Returns a private RSA key made by openssl_pkey_new, cached by label.
	 *
	 * @param string $label Cache label.
	 * @param int    $bits  Modulus size.
	 * @return mixed OpenSSL private key.
	 */
	protected static function key( string $label, int $bits = 2048 ) {
		if ( ! isset( self::$keys[ $label ] ) ) {
			$key = openssl_pkey_new(
				array(
					'private_key_bits' => $bits,
					'private_key_type' => OPENSSL_KEYTYPE_RSA,
				)
			);
			if ( false === $key ) {
				self::fail( 'openssl_pkey_new failed: ' . openssl_error_string() );
			}
			self::$keys[ $label ] = $key;
		}
		return self::$keys[ $label ];
	}

	/**
	 * Returns a private RSA key with a chosen public exponent, made by the
	 * openssl command line tool (openssl_pkey_new cannot choose the exponent);
	 * skips the test when the tool is not there or refuses.
	 *
	 * @param int $exponent Public exponent.
	 * @return mixed OpenSSL private key.
	 */
	protected function key_with_exponent( int $exponent ) {
		$label = 'e' . $exponent;
		if ( ! isset( self::$keys[ $label ] ) ) {
			$command = array( 'openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_keygen_pubexp:' . $exponent );
			$process = @proc_open( $command, array( 1 => array( 'pipe', 'w' ), 2 => array( 'pipe', 'w' ) ), $pipes ); // phpcs:ignore WordPress.PHP.NoSilencedErrors.Discouraged
			if ( ! is_resource( $process ) ) {
				$this->markTestSkipped( 'The openssl command line tool is not available.' );
			}
			$pem = stream_get_contents( $pipes[1] );
			stream_get_contents( $pipes[2] );
			fclose( $pipes[1] );
			fclose( $pipes[2] );
			$status = proc_close( $process );
			$key    = 0 === $status ? openssl_pkey_get_private( $pem ) : false;
			if ( false === $key ) {
				$this->markTestSkipped( "OpenSSL will not make an RSA key with exponent $exponent." );
			}
			self::$keys[ $label ] = $key;
		}
		return self::$keys[ $label ];
	}

	/**
	 * OpenSSL's own PEM export of the public half of a key.
	 *
	 * @param mixed $key OpenSSL key.
	 * @return string
	 */
	protected static function public_pem( $key ): string {
		return openssl_pkey_get_details( $key )['key'];
	}

	/**
	 * The public JWK of a key, as the dashboard publishes it.
	 *
	 * @param mixed  $key OpenSSL key.
	 * @param string $kid Key id.
	 * @return array
	 */
	protected static function jwk( $key, string $kid = self::KID ): array {
		$details = openssl_pkey_get_details( $key );
		return array(
			'kty' => 'RSA',
			'kid' => $kid,
			'use' => 'sig',
			'alg' => 'RS256',
			'n'   => Agency_SSO_JWT::base64url_encode( $details['rsa']['n'] ),
			'e'   => Agency_SSO_JWT::base64url_encode( $details['rsa']['e'] ),
		);
	}

	/**
	 * Base64url of a JSON encoding.
	 *
	 * @param mixed $value Value to encode.
	 * @return string
	 */
	protected static function b64_json( $value ): string {
		return Agency_SSO_JWT::base64url_encode( json_encode( $value, JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION ) );
	}

	/**
	 * A header as the dashboard sends it for a launch.
	 *
	 * @param array $changes Members to add or replace; a null value removes the member.
	 * @return array
	 */
	protected static function header( array $changes = array() ): array {
		return self::change(
			array(
				'alg' => 'RS256',
				'kid' => self::KID,
				'typ' => 'JWT',
			),
			$changes
		);
	}

	/**
	 * Launch claims as the dashboard sends them, issued at NOW for 60 s.
	 *
	 * @param array $changes Claims to add or replace; a null value removes the claim.
	 * @return array
	 */
	protected static function claims( array $changes = array() ): array {
		return self::change(
			array(
				'iss'         => self::ISSUER,
				'aud'         => self::AUDIENCE,
				'sub'         => 'jane.doe@agency.example',
				'email'       => 'jane.doe@agency.example',
				'exp'         => self::NOW + 60,
				'nbf'         => self::NOW,
				'iat'         => self::NOW,
				'jti'         => 'q8Zx3vN0aP7sLk2mWc9tRg',
				'wp_role'     => 'editor',
				'name'        => 'Jane Doe',
				'given_name'  => 'Jane',
				'family_name' => 'Doe',
			),
			$changes
		);
	}

	/**
	 * Applies changes to an array; a null value removes the member.
	 *
	 * @param array $base    Base array.
	 * @param array $changes Changes.
	 * @return array
	 */
	private static function change( array $base, array $changes ): array {
		foreach ( $changes as $name => $value ) {
			if ( null === $value ) {
				unset( $base[ $name ] );
			} else {
				$base[ $name ] = $value;
			}
		}
		return $base;
	}

	/**
	 * Signs a header and claims with a private key.
	 *
	 * @param array $header    JOSE header.
	 * @param array $claims    Claims.
	 * @param mixed $key       Private key (default: the main key).
	 * @param int   $algorithm OpenSSL digest (default SHA-256).
	 * @return string The compact JWS.
	 */
	protected static function sign( array $header, array $claims, $key = null, int $algorithm = OPENSSL_ALGO_SHA256 ): string {
		return self::sign_raw( self::b64_json( $header ) . '.' . self::b64_json( $claims ), $key, $algorithm );
	}

	/**
	 * Signs already encoded `header.payload` text.
	 *
	 * @param string $signing_input The first two parts joined by a dot.
	 * @param mixed  $key           Private key (default: the main key).
	 * @param int    $algorithm     OpenSSL digest.
	 * @return string The compact JWS.
	 */
	protected static function sign_raw( string $signing_input, $key = null, int $algorithm = OPENSSL_ALGO_SHA256 ): string {
		$signature = '';
		if ( ! openssl_sign( $signing_input, $signature, null === $key ? self::key( 'main' ) : $key, $algorithm ) ) {
			self::fail( 'openssl_sign failed' );
		}
		return $signing_input . '.' . Agency_SSO_JWT::base64url_encode( $signature );
	}

	/**
	 * A good launch token, with optional changes.
	 *
	 * @param array $claim_changes  Claim changes.
	 * @param array $header_changes Header changes.
	 * @return string
	 */
	protected static function token( array $claim_changes = array(), array $header_changes = array() ): string {
		return self::sign( self::header( $header_changes ), self::claims( $claim_changes ) );
	}

	/**
	 * What a launch check expects.
	 *
	 * @param array $changes Changes.
	 * @return array
	 */
	protected static function expect( array $changes = array() ): array {
		return self::change(
			array(
				'issuer'   => self::ISSUER,
				'audience' => self::AUDIENCE,
				'typ'      => 'JWT',
			),
			$changes
		);
	}

	/**
	 * The key lookup of the tests: the main key's PEM for KID, null otherwise.
	 *
	 * @return callable
	 */
	protected static function keys(): callable {
		$pem = self::public_pem( self::key( 'main' ) );
		return static function ( string $kid ) use ( $pem ) {
			return self::KID === $kid ? $pem : null;
		};
	}

	/**
	 * Verifies with the test defaults.
	 *
	 * @param string        $token  Token.
	 * @param array         $expect Expectation changes.
	 * @param int           $now    Time.
	 * @param callable|null $keys   Key lookup.
	 * @return array Claims.
	 */
	protected static function verify( string $token, array $expect = array(), int $now = self::NOW, ?callable $keys = null ): array {
		return Agency_SSO_JWT::verify( $token, self::expect( $expect ), null === $keys ? self::keys() : $keys, $now );
	}

	/**
	 * Asserts that verification fails with the given code, and that the
	 * message is plain text that does not repeat the token.
	 *
	 * @param string        $code   Expected error code.
	 * @param string        $token  Token.
	 * @param array         $expect Expectation changes.
	 * @param int           $now    Time.
	 * @param callable|null $keys   Key lookup.
	 * @return void
	 */
	protected function assert_refused( string $code, string $token, array $expect = array(), int $now = self::NOW, ?callable $keys = null ): void {
		try {
			self::verify( $token, $expect, $now, $keys );
		} catch ( Agency_SSO_Error $error ) {
			$this->assertSame( $code, $error->get_error_code(), 'error code; message: ' . $error->getMessage() );
			$this->assertSame( $code, $error->error_code );
			$this->assert_safe_message( $error->getMessage(), $token );
			return;
		}
		$this->fail( "The token was accepted; expected $code." );
	}

	/**
	 * Asserts that an error message is a non-empty English sentence that does
	 * not contain the token or any long piece of it.
	 *
	 * @param string $message Message.
	 * @param string $token   Token.
	 * @return void
	 */
	protected function assert_safe_message( string $message, string $token ): void {
		$this->assertMatchesRegularExpression( '/\A[A-Z][^\r\n]*\.\z/', $message );
		foreach ( explode( '.', $token ) as $part ) {
			if ( strlen( $part ) >= 8 ) {
				$this->assertStringNotContainsString( $part, $message );
			}
		}
	}

	/**
	 * Asserts that a callable throws Agency_SSO_Error with a code.
	 *
	 * @param string   $code     Expected code.
	 * @param callable $callback Code to run.
	 * @return void
	 */
	protected function assert_error( string $code, callable $callback ): void {
		try {
			$callback();
		} catch ( Agency_SSO_Error $error ) {
			$this->assertSame( $code, $error->get_error_code(), 'error code; message: ' . $error->getMessage() );
			$this->assertNotSame( '', $error->getMessage() );
			return;
		}
		$this->fail( "No error; expected $code." );
	}
}
