<?php
/**
 * Verification of the dashboard's RS256 tokens against its JWKS.
 *
 * This file declares a class only and uses no WordPress function (plain PHP
 * and the openssl extension), so it loads in plain PHPUnit without WordPress.
 * It is written for PHP 7.4 and later.
 *
 * @package Agency_SSO_Connector
 */

/**
 * Strict JWS (RFC 7515) / JWT (RFC 7519) verification for RS256 only, and the
 * parsing of an RSA JWK Set (RFC 7517/7518) into PEM public keys.
 *
 * Every refusal is an Agency_SSO_Error with a stable code; messages are fixed
 * plain English sentences and never contain the token or a value read from it.
 * RSA arithmetic is never done here: signatures are checked by openssl_verify.
 */
final class Agency_SSO_JWT {

	/**
	 * Longest token accepted, in bytes.
	 */
	const MAX_TOKEN_BYTES = 8192;

	/**
	 * Depth limit handed to json_decode.
	 */
	const JSON_DEPTH = 16;

	/**
	 * Largest clock skew allowed, in seconds (also the default).
	 */
	const MAX_LEEWAY = 60;

	/**
	 * Longest token lifetime (exp - iat) allowed, in seconds (also the default).
	 */
	const MAX_LIFETIME = 300;

	/**
	 * Shortest jti accepted, in characters.
	 */
	const MIN_JTI_LENGTH = 16;

	/**
	 * Smallest RSA modulus accepted, in bits.
	 */
	const MIN_RSA_BITS = 2048;

	/**
	 * Largest RSA modulus accepted, in bits (OpenSSL's own limit).
	 */
	const MAX_RSA_BITS = 16384;

	/**
	 * Largest RSA public exponent accepted, in bytes.
	 */
	const MAX_EXPONENT_BYTES = 8;

	/**
	 * JOSE header parameters that make a token unacceptable: keys or key
	 * locations carried by the token itself, and critical extensions.
	 */
	const FORBIDDEN_HEADERS = array( 'jku', 'x5u', 'jwk', 'x5c', 'crit' );

	/**
	 * JWK members that only a private key has.
	 */
	const PRIVATE_JWK_MEMBERS = array( 'd', 'p', 'q', 'dp', 'dq', 'qi', 'oth' );

	/**
	 * DER of AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }.
	 */
	const RSA_ALGORITHM_IDENTIFIER = "\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00";

	/**
	 * Encodes bytes as unpadded base64url (RFC 7515 section 2).
	 *
	 * @param string $data Raw bytes.
	 * @return string
	 */
	public static function base64url_encode( string $data ): string {
		return rtrim( strtr( base64_encode( $data ), '+/', '-_' ), '=' );
	}

	/**
	 * Decodes unpadded base64url strictly.
	 *
	 * Only the characters A-Z a-z 0-9 - _ are allowed (no padding, no `+`,
	 * `/`, `=` or whitespace), a length of 1 modulo 4 is impossible, and the
	 * text must be the canonical encoding of what it decodes to (unused
	 * trailing bits are zero), so that one value has exactly one spelling.
	 *
	 * @param string $text Base64url text.
	 * @return string The decoded bytes.
	 * @throws Agency_SSO_Error With code `malformed_token`.
	 */
	public static function base64url_decode( string $text ): string {
		if ( 1 !== preg_match( '/\A[A-Za-z0-9_-]*\z/', $text ) || 1 === strlen( $text ) % 4 ) {
			throw new Agency_SSO_Error( 'malformed_token', 'The sign-in token is damaged: it contains characters that are not allowed.' );
		}
		$decoded = base64_decode( strtr( $text, '-_', '+/' ), true );
		if ( false === $decoded || self::base64url_encode( $decoded ) !== $text ) {
			throw new Agency_SSO_Error( 'malformed_token', 'The sign-in token is damaged: part of it cannot be decoded.' );
		}
		return $decoded;
	}

	/**
	 * Turns an RSA public JWK into a PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
	 *
	 * The DER is written here; the result is then loaded by OpenSSL once to
	 * make sure it is a key OpenSSL accepts.
	 *
	 * @param array $jwk The JWK, decoded as an associative array.
	 * @return string PEM text, identical to what OpenSSL exports for that key.
	 * @throws Agency_SSO_Error With code `bad_key_set`.
	 */
	public static function jwk_to_pem( array $jwk ): string {
		if ( ! isset( $jwk['kty'] ) || 'RSA' !== $jwk['kty'] ) {
			throw self::bad_key_set( 'The dashboard published a key that is not an RSA key.' );
		}
		foreach ( self::PRIVATE_JWK_MEMBERS as $member ) {
			if ( array_key_exists( $member, $jwk ) ) {
				throw self::bad_key_set( 'The dashboard published private key material; its keys cannot be trusted.' );
			}
		}
		if ( array_key_exists( 'use', $jwk ) && 'sig' !== $jwk['use'] ) {
			throw self::bad_key_set( 'The dashboard published a key that is not meant for signatures.' );
		}
		if ( array_key_exists( 'alg', $jwk ) && 'RS256' !== $jwk['alg'] ) {
			throw self::bad_key_set( 'The dashboard published a key for an algorithm other than RS256.' );
		}
		if ( array_key_exists( 'key_ops', $jwk )
			&& ( ! is_array( $jwk['key_ops'] ) || ! in_array( 'verify', $jwk['key_ops'], true ) ) ) {
			throw self::bad_key_set( 'The dashboard published a key that may not be used to verify signatures.' );
		}
		if ( ! isset( $jwk['n'], $jwk['e'] ) || ! is_string( $jwk['n'] ) || ! is_string( $jwk['e'] ) ) {
			throw self::bad_key_set( 'The dashboard published an RSA key without its modulus or exponent.' );
		}
		try {
			$modulus  = ltrim( self::base64url_decode( $jwk['n'] ), "\0" );
			$exponent = ltrim( self::base64url_decode( $jwk['e'] ), "\0" );
		} catch ( Agency_SSO_Error $error ) {
			throw self::bad_key_set( 'The dashboard published an RSA key that is not correctly encoded.' );
		}

		$bits = '' === $modulus ? 0 : ( strlen( $modulus ) - 1 ) * 8 + strlen( decbin( ord( $modulus[0] ) ) );
		if ( $bits < self::MIN_RSA_BITS ) {
			throw self::bad_key_set( 'The dashboard published an RSA key shorter than 2048 bits.' );
		}
		if ( $bits > self::MAX_RSA_BITS ) {
			throw self::bad_key_set( 'The dashboard published an RSA key longer than 16384 bits.' );
		}
		if ( '' === $exponent || strlen( $exponent ) > self::MAX_EXPONENT_BYTES ) {
			throw self::bad_key_set( 'The dashboard published an RSA key with an unusable exponent.' );
		}
		if ( 0 === ( ord( $exponent[ strlen( $exponent ) - 1 ] ) & 1 ) || "\x01" === $exponent ) {
			throw self::bad_key_set( 'The dashboard published an RSA key with an even or trivial exponent.' );
		}

		$rsa_public_key = self::der( "\x30", self::der_integer( $modulus ) . self::der_integer( $exponent ) );
		$spki           = self::der( "\x30", self::RSA_ALGORITHM_IDENTIFIER . self::der( "\x03", "\x00" . $rsa_public_key ) );
		$pem            = "-----BEGIN PUBLIC KEY-----\n" . chunk_split( base64_encode( $spki ), 64, "\n" ) . "-----END PUBLIC KEY-----\n";

		$key = openssl_pkey_get_public( $pem );
		self::clear_openssl_errors();
		if ( false === $key ) {
			throw self::bad_key_set( 'The dashboard published an RSA key that OpenSSL cannot load.' );
		}
		return $pem;
	}

	/**
	 * Parses a JWK Set document into the RSA signing keys it holds.
	 *
	 * Keys of other types (EC, OKP, oct...) are skipped. The whole set is
	 * refused when it is not a JSON object with a `keys` array, when any key
	 * is not an object or lacks a non-empty string `kid` or a string `kty`,
	 * when two keys share a kid, when any RSA key is unusable (see
	 * jwk_to_pem), or when no RSA signing key remains: a dashboard that
	 * publishes garbage is not half-trusted.
	 *
	 * @param string $json The JWKS document.
	 * @return array Map of kid => PEM public key (PHP turns a decimal kid such as "12" into an integer array key; look keys up with the kid string as usual).
	 * @throws Agency_SSO_Error With code `bad_key_set`.
	 */
	public static function parse_key_set( string $json ): array {
		$document = self::decode_json_object( $json );
		if ( null === $document || ! isset( $document['keys'] ) || ! is_array( $document['keys'] ) || ! self::is_list( $document['keys'] ) ) {
			throw self::bad_key_set( 'The dashboard\'s key set is not a valid JSON Web Key Set.' );
		}
		$keys = array();
		$seen = array();
		foreach ( $document['keys'] as $jwk ) {
			if ( ! is_array( $jwk ) || ! isset( $jwk['kid'] ) || ! is_string( $jwk['kid'] ) || '' === $jwk['kid'] ) {
				throw self::bad_key_set( 'The dashboard\'s key set holds a key without a key id.' );
			}
			if ( isset( $seen[ $jwk['kid'] ] ) ) {
				throw self::bad_key_set( 'The dashboard\'s key set holds two keys with the same key id.' );
			}
			$seen[ $jwk['kid'] ] = true;
			if ( ! isset( $jwk['kty'] ) || ! is_string( $jwk['kty'] ) ) {
				throw self::bad_key_set( 'The dashboard\'s key set holds a key without a key type.' );
			}
			if ( 'RSA' !== $jwk['kty'] ) {
				continue;
			}
			$keys[ $jwk['kid'] ] = self::jwk_to_pem( $jwk );
		}
		if ( array() === $keys ) {
			throw self::bad_key_set( 'The dashboard\'s key set holds no RSA signing key.' );
		}
		return $keys;
	}

	/**
	 * Reads the freshness lifetime from a Cache-Control header value.
	 *
	 * `no-store` or `no-cache` anywhere gives 0. A `max-age` that is not a
	 * number (quoted digits are accepted) gives 0, as RFC 9111 treats an
	 * invalid freshness lifetime as stale; values are capped at 2^31.
	 *
	 * @param string $cache_control The header value, e.g. `public, max-age=300`.
	 * @return int|null Seconds, or null when the header says nothing about it.
	 */
	public static function max_age( string $cache_control ): ?int {
		$max_age = null;
		foreach ( explode( ',', $cache_control ) as $directive ) {
			$parts = explode( '=', $directive, 2 );
			$name  = strtolower( trim( $parts[0] ) );
			if ( 'no-store' === $name || 'no-cache' === $name ) {
				return 0;
			}
			if ( 'max-age' !== $name || null !== $max_age ) {
				continue;
			}
			$value = isset( $parts[1] ) ? trim( $parts[1] ) : '';
			if ( strlen( $value ) >= 2 && '"' === $value[0] && '"' === substr( $value, -1 ) ) {
				$value = substr( $value, 1, -1 );
			}
			if ( 1 !== preg_match( '/\A[0-9]+\z/', $value ) ) {
				$max_age = 0;
			} else {
				$value   = ltrim( $value, '0' );
				$max_age = ( strlen( $value ) > 10 || (int) $value > 2147483648 ) ? 2147483648 : (int) $value;
			}
		}
		return $max_age;
	}

	/**
	 * Verifies an RS256 JWT and returns its claims.
	 *
	 * Order of checks: structure, header (alg, forbidden headers, typ, kid),
	 * key lookup, signature, then (only once the signature is good) claims:
	 * iss, aud, exp, nbf, iat, lifetime, required claims. Replay (jti reuse)
	 * is the caller's job.
	 *
	 * @param string   $token      The compact JWS.
	 * @param array    $expect     `issuer` (string, exact), `audience` (string, exact), `typ`
	 *                             (e.g. `JWT` or `logout+jwt`), `leeway` (seconds, default and
	 *                             maximum 60), `max_lifetime` (seconds, default and maximum 300),
	 *                             `require` (further claim names that must be present, default []),
	 *                             `person` (whether the token names a person, so that `sub` and
	 *                             `email` are required; default true, false for a site message).
	 * @param callable $key_for_kid Given the kid (string), returns the PEM public key (or an
	 *                             OpenSSL key) to verify with, or null when the kid is unknown.
	 * @param int      $now        The current Unix time.
	 * @return array The claims.
	 * @throws Agency_SSO_Error For any refusal, with a stable code.
	 * @throws InvalidArgumentException When $expect lacks issuer, audience or typ (a programming error).
	 */
	public static function verify( string $token, array $expect, callable $key_for_kid, int $now ): array {
		foreach ( array( 'issuer', 'audience', 'typ' ) as $name ) {
			if ( ! isset( $expect[ $name ] ) || ! is_string( $expect[ $name ] ) || '' === $expect[ $name ] ) {
				throw new InvalidArgumentException( "Agency_SSO_JWT::verify needs a non-empty string \$expect['$name']." );
			}
		}
		$leeway       = min( self::MAX_LEEWAY, max( 0, isset( $expect['leeway'] ) ? (int) $expect['leeway'] : self::MAX_LEEWAY ) );
		$max_lifetime = min( self::MAX_LIFETIME, max( 0, isset( $expect['max_lifetime'] ) ? (int) $expect['max_lifetime'] : self::MAX_LIFETIME ) );
		$required     = isset( $expect['require'] ) && is_array( $expect['require'] ) ? $expect['require'] : array();
		$person       = ! array_key_exists( 'person', $expect ) || false !== $expect['person'];

		// Structure.
		if ( strlen( $token ) > self::MAX_TOKEN_BYTES ) {
			throw new Agency_SSO_Error( 'malformed_token', 'The sign-in token is too long.' );
		}
		$parts = explode( '.', $token );
		if ( 3 !== count( $parts ) ) {
			throw new Agency_SSO_Error( 'malformed_token', 'The sign-in token is damaged: it does not have three parts.' );
		}
		list( $header_b64, $payload_b64, $signature_b64 ) = $parts;
		$header_json = self::base64url_decode( $header_b64 );
		$payload_raw = self::base64url_decode( $payload_b64 );
		$signature   = self::base64url_decode( $signature_b64 );
		$header      = self::decode_json_object( $header_json );
		if ( null === $header ) {
			throw new Agency_SSO_Error( 'malformed_token', 'The sign-in token is damaged: its header is not a JSON object.' );
		}

		// Header.
		if ( ! isset( $header['alg'] ) || 'RS256' !== $header['alg'] ) {
			throw new Agency_SSO_Error( 'alg_not_allowed', 'The sign-in token uses a signature algorithm this site does not accept.' );
		}
		foreach ( self::FORBIDDEN_HEADERS as $name ) {
			if ( array_key_exists( $name, $header ) ) {
				throw new Agency_SSO_Error( 'header_not_allowed', 'The sign-in token carries a header this site does not accept.' );
			}
		}
		if ( ! isset( $header['typ'] ) || ! is_string( $header['typ'] )
			|| self::normalize_typ( $header['typ'] ) !== self::normalize_typ( $expect['typ'] ) ) {
			throw new Agency_SSO_Error( 'wrong_type', 'The token is not the kind of token expected here.' );
		}
		if ( ! isset( $header['kid'] ) || ! is_string( $header['kid'] ) || '' === $header['kid'] ) {
			throw new Agency_SSO_Error( 'missing_kid', 'The sign-in token does not name the key it was signed with.' );
		}

		// Key lookup.
		$key_material = call_user_func( $key_for_kid, $header['kid'] );
		if ( null === $key_material ) {
			throw new Agency_SSO_Error( 'unknown_key', 'The sign-in token was signed with a key this site does not know.' );
		}
		if ( ! is_string( $key_material ) && ! is_object( $key_material ) && ! is_resource( $key_material ) ) {
			throw new Agency_SSO_Error( 'unknown_key', 'The key named by the sign-in token cannot be used.' );
		}
		$key     = openssl_pkey_get_public( $key_material );
		$details = false === $key ? false : openssl_pkey_get_details( $key );
		self::clear_openssl_errors();
		if ( false === $details || OPENSSL_KEYTYPE_RSA !== $details['type'] || $details['bits'] < self::MIN_RSA_BITS ) {
			throw new Agency_SSO_Error( 'unknown_key', 'The key named by the sign-in token cannot be used.' );
		}

		// Signature.
		$modulus_bytes = strlen( ltrim( $details['rsa']['n'], "\0" ) );
		if ( strlen( $signature ) !== $modulus_bytes ) {
			throw new Agency_SSO_Error( 'bad_signature', 'The sign-in token\'s signature is not valid.' );
		}
		$result = openssl_verify( $header_b64 . '.' . $payload_b64, $signature, $key, OPENSSL_ALGO_SHA256 );
		self::clear_openssl_errors();
		if ( 1 !== $result ) {
			throw new Agency_SSO_Error( 'bad_signature', 'The sign-in token\'s signature is not valid.' );
		}

		// Claims: trusted from here on.
		$claims = self::decode_json_object( $payload_raw );
		if ( null === $claims ) {
			throw new Agency_SSO_Error( 'malformed_token', 'The sign-in token is damaged: its claims are not a JSON object.' );
		}
		if ( ! isset( $claims['iss'] ) || $claims['iss'] !== $expect['issuer'] ) {
			throw new Agency_SSO_Error( 'wrong_issuer', 'The sign-in token was not issued by the dashboard this site trusts.' );
		}
		$aud = isset( $claims['aud'] ) ? $claims['aud'] : null;
		if ( ! ( $aud === $expect['audience']
			|| ( is_array( $aud ) && self::is_list( $aud ) && in_array( $expect['audience'], $aud, true ) ) ) ) {
			throw new Agency_SSO_Error( 'wrong_audience', 'The sign-in token was issued for a different site.' );
		}
		if ( ! isset( $claims['exp'] ) || ! is_int( $claims['exp'] ) || $now - $leeway > $claims['exp'] ) {
			throw new Agency_SSO_Error( 'token_expired', 'The sign-in link has expired. Please go back to the dashboard and try again.' );
		}
		if ( array_key_exists( 'nbf', $claims ) && ( ! is_int( $claims['nbf'] ) || $claims['nbf'] - $leeway > $now ) ) {
			throw new Agency_SSO_Error( 'token_not_yet_valid', 'The sign-in token is not valid yet. Please check that this server\'s clock is correct.' );
		}
		if ( ! isset( $claims['iat'] ) || ! is_int( $claims['iat'] ) || $claims['iat'] - $leeway > $now ) {
			throw new Agency_SSO_Error( 'token_not_yet_valid', 'The sign-in token is not valid yet. Please check that this server\'s clock is correct.' );
		}
		if ( $claims['exp'] - $claims['iat'] > $max_lifetime ) {
			throw new Agency_SSO_Error( 'lifetime_too_long', 'The sign-in token is valid for longer than this site allows.' );
		}
		if ( ! isset( $claims['jti'] ) || ! is_string( $claims['jti'] ) || strlen( $claims['jti'] ) < self::MIN_JTI_LENGTH ) {
			throw new Agency_SSO_Error( 'missing_claim', 'The sign-in token lacks a unique token id.' );
		}
		if ( $person && ( ! isset( $claims['email'] ) || ! is_string( $claims['email'] ) || false === filter_var( $claims['email'], FILTER_VALIDATE_EMAIL ) ) ) {
			throw new Agency_SSO_Error( 'missing_claim', 'The sign-in token lacks a valid e-mail address.' );
		}
		if ( $person && ( ! isset( $claims['sub'] ) || ! is_string( $claims['sub'] ) || '' === $claims['sub'] ) ) {
			throw new Agency_SSO_Error( 'missing_claim', 'The sign-in token does not say who is signing in.' );
		}
		foreach ( $required as $name ) {
			if ( ! is_string( $name ) || ! isset( $claims[ $name ] ) || '' === $claims[ $name ] ) {
				throw new Agency_SSO_Error( 'missing_claim', 'The sign-in token lacks information this site requires.' );
			}
		}
		return $claims;
	}

	/**
	 * Decodes JSON text that must be a JSON object.
	 *
	 * @param string $json JSON text.
	 * @return array|null The object as an associative array, or null when the
	 *                    text is not valid JSON, is nested deeper than the limit,
	 *                    or is not an object.
	 */
	private static function decode_json_object( string $json ): ?array {
		$trimmed = ltrim( $json, " \t\n\r" );
		if ( '' === $trimmed || '{' !== $trimmed[0] ) {
			return null;
		}
		try {
			$value = json_decode( $json, true, self::JSON_DEPTH, JSON_THROW_ON_ERROR );
		} catch ( JsonException $error ) {
			return null;
		}
		return is_array( $value ) ? $value : null;
	}

	/**
	 * Lower-cases a media type and strips an `application/` prefix (RFC 7515 section 4.1.9).
	 *
	 * @param string $typ A `typ` value.
	 * @return string
	 */
	private static function normalize_typ( string $typ ): string {
		$typ = strtolower( $typ );
		if ( 0 === strpos( $typ, 'application/' ) ) {
			$typ = substr( $typ, strlen( 'application/' ) );
		}
		return $typ;
	}

	/**
	 * Whether an array is a list (keys 0, 1, 2... in order), i.e. a JSON array.
	 *
	 * @param array $value The array.
	 * @return bool
	 */
	private static function is_list( array $value ): bool {
		return array_values( $value ) === $value;
	}

	/**
	 * DER TLV with the given tag byte and content.
	 *
	 * @param string $tag     One tag byte.
	 * @param string $content Content bytes.
	 * @return string
	 */
	private static function der( string $tag, string $content ): string {
		$length = strlen( $content );
		if ( $length < 0x80 ) {
			return $tag . chr( $length ) . $content;
		}
		$length_bytes = ltrim( pack( 'N', $length ), "\0" );
		return $tag . chr( 0x80 | strlen( $length_bytes ) ) . $length_bytes . $content;
	}

	/**
	 * DER INTEGER of an unsigned big-endian number.
	 *
	 * @param string $unsigned Big-endian magnitude (leading zero bytes allowed).
	 * @return string
	 */
	private static function der_integer( string $unsigned ): string {
		$unsigned = ltrim( $unsigned, "\0" );
		if ( '' === $unsigned || ord( $unsigned[0] ) >= 0x80 ) {
			$unsigned = "\0" . $unsigned;
		}
		return self::der( "\x02", $unsigned );
	}

	/**
	 * Builds the `bad_key_set` error.
	 *
	 * @param string $message Plain English reason.
	 * @return Agency_SSO_Error
	 */
	private static function bad_key_set( string $message ): Agency_SSO_Error {
		return new Agency_SSO_Error( 'bad_key_set', $message );
	}

	/**
	 * Empties OpenSSL's error queue so that one failure does not leak into later calls.
	 *
	 * @return void
	 */
	private static function clear_openssl_errors(): void {
		while ( false !== openssl_error_string() ) {
			// Drain.
		}
	}
}
