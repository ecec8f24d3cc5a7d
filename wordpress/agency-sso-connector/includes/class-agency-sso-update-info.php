<?php
/**
 * What the dashboard says about the connector's latest version (its
 * `GET {issuer}/connector/update.json`), checked before WordPress is told
 * of an update.
 *
 * Like Agency_SSO_JWT, this file declares a class only and uses no
 * WordPress function, so the same checks run in plain PHPUnit.
 *
 * @package Agency_SSO_Connector
 */

/**
 * Parsing and checking the dashboard's update metadata, comparing
 * versions, and the changelog as HTML. Every refusal is an
 * Agency_SSO_Error with a stable code and a fixed plain English message.
 */
final class Agency_SSO_Update_Info {

	/** The plugin's slug, as the dashboard names it. */
	const SLUG = 'agency-sso-connector';

	/** Depth limit handed to json_decode. */
	const JSON_DEPTH = 8;

	/** A version the dashboard may offer: two to four dot-separated numbers. */
	const VERSION_PATTERN = '/^\d{1,6}(\.\d{1,6}){1,3}\z/';

	/** A WordPress or PHP version the package asks for: one to four numbers. */
	const REQUIREMENT_PATTERN = '/^\d{1,6}(\.\d{1,6}){0,3}\z/';

	/** The package's SHA-256 digest, hex. */
	const SHA256_PATTERN = '/^[0-9a-fA-F]{64}\z/';

	/** The longest name kept, bytes. */
	const MAX_NAME = 200;

	/** The longest changelog kept, bytes. */
	const MAX_CHANGELOG = 32768;

	/** The longest refusal message kept from the dashboard, characters. */
	const MAX_MESSAGE = 300;

	/**
	 * Parses and checks the dashboard's answer (status 200). Members other
	 * than those named here are ignored; a member named here that has the
	 * wrong shape refuses the whole answer.
	 *
	 * @param string $body   The answer's body.
	 * @param string $issuer The configured issuer (the package must be on its origin).
	 * @return array{name: string, slug: string, version: string, requires: string, tested: string, requires_php: string, package: string, sha256: string, changelog: string}
	 * @throws Agency_SSO_Error When the answer is not the metadata of a package (bad_update_info).
	 */
	public static function parse( string $body, string $issuer ): array {
		try {
			$doc = json_decode( $body, true, self::JSON_DEPTH, JSON_THROW_ON_ERROR );
		} catch ( JsonException $e ) {
			throw self::bad( 'The dashboard\'s update information is not JSON.' );
		}
		if ( ! is_array( $doc ) || array_is_list( $doc ) ) {
			throw self::bad( 'The dashboard\'s update information is not a JSON object.' );
		}
		if ( self::SLUG !== ( $doc['slug'] ?? null ) ) {
			throw self::bad( 'The dashboard\'s update information is about another plugin.' );
		}
		$version = $doc['version'] ?? null;
		if ( ! is_string( $version ) || 1 !== preg_match( self::VERSION_PATTERN, $version ) ) {
			throw self::bad( 'The dashboard\'s update information has no valid version.' );
		}
		$sha256 = $doc['sha256'] ?? null;
		if ( ! is_string( $sha256 ) || 1 !== preg_match( self::SHA256_PATTERN, $sha256 ) ) {
			throw self::bad( 'The dashboard\'s update information has no valid SHA-256 digest.' );
		}
		$package = $doc['package'] ?? null;
		if ( ! is_string( $package ) || ! self::is_package_url( $package, $issuer ) ) {
			throw self::bad( 'The dashboard\'s update information names a package that is not on the dashboard\'s own address.' );
		}
		$name = $doc['name'] ?? self::SLUG;
		if ( ! is_string( $name ) || '' === trim( $name ) || self::MAX_NAME < strlen( $name ) || ! self::is_utf8( $name ) || 1 === preg_match( '/[\x00-\x1f\x7f]/', $name ) ) {
			throw self::bad( 'The dashboard\'s update information has no valid name.' );
		}
		$requirements = array();
		foreach ( array( 'requires', 'tested', 'requires_php' ) as $member ) {
			$value = $doc[ $member ] ?? '';
			if ( ! is_string( $value ) || ( '' !== $value && 1 !== preg_match( self::REQUIREMENT_PATTERN, $value ) ) ) {
				throw self::bad( 'The dashboard\'s update information has an invalid ' . $member . ' version.' );
			}
			$requirements[ $member ] = $value;
		}
		$changelog = $doc['changelog'] ?? '';
		if ( ! is_string( $changelog ) || self::MAX_CHANGELOG < strlen( $changelog ) || ! self::is_utf8( $changelog ) ) {
			throw self::bad( 'The dashboard\'s update information has an invalid changelog.' );
		}
		return array(
			'name'         => trim( $name ),
			'slug'         => self::SLUG,
			'version'      => $version,
			'requires'     => $requirements['requires'],
			'tested'       => $requirements['tested'],
			'requires_php' => $requirements['requires_php'],
			'package'      => $package,
			'sha256'       => strtolower( $sha256 ),
			'changelog'    => $changelog,
		);
	}

	/**
	 * The refusal for an answer other than 200: the dashboard's own code
	 * and message when it says why (`{"error": code, "message": text}`, as
	 * it does with 404 or 503 when it has no package), else a fixed one.
	 *
	 * @param int    $status The HTTP status.
	 * @param string $body   The answer's body.
	 */
	public static function refusal( int $status, string $body ): Agency_SSO_Error {
		$doc = json_decode( $body, true, self::JSON_DEPTH );
		if ( is_array( $doc ) && is_string( $doc['error'] ?? null ) && 1 === preg_match( '/^[a-z][a-z0-9_]{0,63}$/', $doc['error'] ) ) {
			$message = is_string( $doc['message'] ?? null ) ? trim( preg_replace( '/[\x00-\x1f\x7f]+/', ' ', $doc['message'] ) ) : '';
			if ( '' === $message || ! self::is_utf8( $message ) ) {
				$message = 'The dashboard has no update for the connector.';
			}
			if ( 1 === preg_match( '/^(.{' . ( self::MAX_MESSAGE - 1 ) . '}).{2,}/su', $message, $m ) ) {
				$message = $m[1] . '…';
			}
			return new Agency_SSO_Error( $doc['error'], $message );
		}
		return new Agency_SSO_Error( 'update_info_unavailable', sprintf( 'The dashboard answered the update check with HTTP status %d.', $status ) );
	}

	/**
	 * Whether the dashboard's version is newer than the installed one (an
	 * older or equal one is never offered: no downgrades).
	 *
	 * @param string $offered   The dashboard's version.
	 * @param string $installed The installed plugin's version.
	 */
	public static function is_newer( string $offered, string $installed ): bool {
		return 1 === preg_match( self::VERSION_PATTERN, $offered ) && version_compare( $offered, $installed, '>' );
	}

	/**
	 * Whether a package URL is on the issuer's origin: http or https (as
	 * the issuer), no user name or fragment.
	 *
	 * @param string $url    The package URL.
	 * @param string $issuer The configured issuer.
	 */
	public static function is_package_url( string $url, string $issuer ): bool {
		$parts = parse_url( $url );
		if ( ! is_array( $parts ) || isset( $parts['user'] ) || isset( $parts['pass'] ) || isset( $parts['fragment'] ) ) {
			return false;
		}
		if ( 1 === preg_match( '/[\x00-\x20\x7f\\\\]/', $url ) ) {
			return false;
		}
		$origin = self::origin( $url );
		return '' !== $origin && self::origin( $issuer ) === $origin;
	}

	/**
	 * The scheme, host and port of an http or https URL, lower-cased, the
	 * default port left out ('' when it is not such a URL); as
	 * Agency_SSO_Config::origin() says it, without WordPress.
	 *
	 * @param string $url Any URL.
	 */
	public static function origin( string $url ): string {
		$parts = parse_url( $url );
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] ) ) {
			return '';
		}
		$scheme = strtolower( $parts['scheme'] );
		if ( 'https' !== $scheme && 'http' !== $scheme ) {
			return '';
		}
		$port    = isset( $parts['port'] ) ? (int) $parts['port'] : ( 'https' === $scheme ? 443 : 80 );
		$default = ( 'https' === $scheme && 443 === $port ) || ( 'http' === $scheme && 80 === $port );
		return $scheme . '://' . strtolower( $parts['host'] ) . ( $default ? '' : ':' . $port );
	}

	/**
	 * The changelog (plain text, lines) as HTML for the "View details"
	 * dialog: each line escaped; lines that start with `*` or `-` become a
	 * list's items, a line in `= … =` or `# …` a heading, other lines
	 * paragraphs.
	 *
	 * @param string $text The dashboard's changelog.
	 */
	public static function changelog_html( string $text ): string {
		$html = '';
		$list = false;
		foreach ( preg_split( '/\r\n|\r|\n/', $text ) as $line ) {
			$line = trim( $line );
			if ( '' === $line ) {
				continue;
			}
			$item = 1 === preg_match( '/^[*-]\s*(.*)$/', $line, $m ) ? $m[1] : null;
			if ( null === $item && $list ) {
				$html .= "</ul>\n";
				$list  = false;
			}
			if ( null !== $item ) {
				if ( ! $list ) {
					$html .= "<ul>\n";
					$list  = true;
				}
				$html .= '<li>' . self::escape( $item ) . "</li>\n";
			} elseif ( 1 === preg_match( '/^=+\s*(.*?)\s*=*$/', $line, $m ) || 1 === preg_match( '/^#+\s*(.*)$/', $line, $m ) ) {
				$html .= '<h4>' . self::escape( $m[1] ) . "</h4>\n";
			} else {
				$html .= '<p>' . self::escape( $line ) . "</p>\n";
			}
		}
		return $list ? $html . "</ul>\n" : $html;
	}

	/**
	 * Whether text is valid UTF-8 (without the mbstring extension).
	 *
	 * @param string $text Any bytes.
	 */
	private static function is_utf8( string $text ): bool {
		return 1 === preg_match( '//u', $text );
	}

	/**
	 * Text made safe in HTML (and in an attribute).
	 *
	 * @param string $text Plain text.
	 */
	private static function escape( string $text ): string {
		return htmlspecialchars( $text, ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML5, 'UTF-8' );
	}

	/**
	 * A refusal of the metadata.
	 *
	 * @param string $message Why.
	 */
	private static function bad( string $message ): Agency_SSO_Error {
		return new Agency_SSO_Error( 'bad_update_info', $message );
	}
}
