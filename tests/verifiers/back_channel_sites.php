<?php
/**
 * Stand-in connector sites for the dashboard's tests, served by PHP's
 * built-in server (`php -S host:port back_channel_sites.php`): every path
 * `/{name}` is a site whose URL (the audience) is `http://{host}/{name}`.
 * Each keeps real state (its users, their sessions, its key cache) and
 * follows the connector plugin's rules, with the plugin's own code where
 * that code runs outside WordPress:
 *
 * - POST `/{name}/?rest_route=/agency-sso/v1/back-channel`: a message
 *   carrying exactly one of `logout_token` and `site_token` (both, or
 *   neither: 400 `malformed_token`).
 *   A `logout_token` is checked by Agency_SSO_Logout_Token over
 *   Agency_SSO_JWT, its jti kept single-use, carried out on the site's
 *   users as Agency_SSO_Back_Channel::handle does (the user bound to the
 *   stable subject, else to the legacy e-mail subject, moved over, else an
 *   unbound account with the address that administers nothing; a lock or
 *   set-role no newer than the last one carried out for that user answered
 *   as superseded, nothing done), and answered in the plugin's shape with
 *   the plugin's status codes.
 *   A `site_token` is checked by Agency_SSO_Site_Message, its jti kept
 *   single-use, and answered as Agency_SSO_Back_Channel::handle_site_message
 *   does: a `connect` against the site's pending attempt (`{name}.pending.json`,
 *   below: its issuer signs, its attempt must be the message's, no older
 *   than 15 minutes; none: 409 `no_pending_connection`, another attempt:
 *   401 `attempt_mismatch`) with `{jti, action, site_url, plugin_version,
 *   wp_version, php_version, multisite}`; a `status` or `refresh-keys`
 *   (the latter fetches the key set first, whatever the once-a-minute
 *   limit says) from AGENCY_SSO_ISSUER with those and `connected`, `keys`
 *   (the kids of the set the site holds: cached, else the last good one),
 *   `keys_fetched_at`, `refusals` and `refusals_since`. These sites answer
 *   as WordPress 6.1.1, plugin 0.3.0, not a network.
 * - GET `/{name}/wp-login.php?action=agency_sso&token=JWT`: a launch,
 *   checked as the plugin checks one (the Referer aside), the user bound,
 *   created or refused as Agency_SSO_Users::sign_in_user does, given the
 *   token's role and a session. The answer is JSON: the user, or the
 *   refusal's code (HTTP 403).
 *
 * Each site keeps the dashboard's key set as Agency_SSO_Keys does: cached
 * for the max-age of the JWKS response's Cache-Control (60 s to a day;
 * 300 s without one), fetched again on an unknown kid at most once a
 * minute (a failed fetch holds off the next for a minute too), the last
 * good set used while fetches fail, none trusted 7 days after it was
 * fetched.
 *
 * Environment: AGENCY_SSO_ISSUER, AGENCY_SSO_JWKS_URI, STAND_IN_DIR.
 * In STAND_IN_DIR, for a site `{name}`:
 * - `{name}.users.json`: its users by login, each with `email`, `subject`
 *   (the binding, "{issuer} {sub}", or ""), `role` ("" for none), `admin`
 *   (administers the site: never bound by e-mail, as is an administrator),
 *   `locked_at`, `sessions`, `app_passwords` and `last_seq`; tests write
 *   users there and read them back;
 * - `{name}.arrived`: a line per message about a person that arrives,
 *   before anything is done with it (`{name}.site-arrived` for site
 *   messages); `{name}.down` makes the site answer 503; `{name}.slow`
 *   (seconds) makes it wait that long first; `{name}.held` makes it
 *   wait while the file is there (at most 9 seconds, under the
 *   dashboard's 10-second send timeout);
 * - `{name}.log`: a JSON line per message about a person taken (verified
 *   and not a replay): action, role, email, sub, seq, jti, user_found,
 *   superseded; `{name}.site-log`: one per site message taken (connect,
 *   status, refresh-keys): action and jti;
 * - `{name}.answer`: when present, the answer to every message taken
 *   (HTTP 200, `{jti}` replaced by the message's), as a compromised or
 *   broken site might answer;
 * - `{name}.pending.json`: the site's pending connection attempt,
 *   `{"issuer", "attempt", "started_at"}`, as a test writes it (the plugin
 *   makes one when its admin starts to connect). A `connect` confirmed for
 *   it is answered and written to `{name}.connection.json` (`{"issuer",
 *   "attempt", "connected_at"}`), as the plugin writes its record once the
 *   dashboard accepts the code; the pending file stays (a test removes
 *   it). `connected` in a status is whether `{name}.connection.json`
 *   names AGENCY_SSO_ISSUER (a test may write it too). The keys of a
 *   pending issuer other than AGENCY_SSO_ISSUER are fetched, uncached,
 *   from its `/.well-known/jwks.json`;
 * - `{name}.refusals.json`: when present, `{"refusals": {code: count},
 *   "refusals_since": int}` as a status reports it (a test writes it;
 *   absent: `{}` and null);
 * - `{name}.keys.json`, `{name}.keys-good.json`, `{name}.keys-throttle`:
 *   the key cache; `{name}.key-fetches`: a line per fetch of the key set.
 * And `clock`: seconds added to this machine's time (the dashboard's test
 * clock moves, and the sites' follow it).
 */

require __DIR__ . '/../../wordpress/agency-sso-connector/includes/class-agency-sso-error.php';
require __DIR__ . '/../../wordpress/agency-sso-connector/includes/class-agency-sso-jwt.php';
require __DIR__ . '/../../wordpress/agency-sso-connector/includes/class-agency-sso-logout-token.php';
require __DIR__ . '/../../wordpress/agency-sso-connector/includes/class-agency-sso-site-message.php';

const MIN_AGE       = 60;
const MAX_AGE       = 86400;
const DEFAULT_AGE   = 300;
const REFETCH_GAP   = 60;
const MAX_STALENESS = 7 * 86400;
const ROLES         = array( 'administrator', 'editor', 'author', 'contributor', 'subscriber' );
const PENDING_TTL   = 900;

$dir    = getenv( 'STAND_IN_DIR' );
$issuer = (string) getenv( 'AGENCY_SSO_ISSUER' );
$parts  = explode( '/', trim( (string) parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH ), '/' ), 2 );
$name   = $parts[0];
$route  = $parts[1] ?? '';
$now    = time() + (int) @file_get_contents( "$dir/clock" );

/**
 * A user of a stand-in site as the plugin would make one: this address,
 * bound to nobody, no role, not locked, no sessions.
 *
 * @param string $email The user's e-mail address.
 */
function new_user( string $email ): array {
	return array(
		'email'         => $email,
		'subject'       => '',
		'role'          => '',
		'admin'         => false,
		'locked_at'     => 0,
		'sessions'      => 0,
		'app_passwords' => 0,
		'last_seq'      => 0,
	);
}

/**
 * Send a JSON answer and stop.
 *
 * @param int   $status HTTP status.
 * @param array $body   The answer.
 */
function answer( int $status, array $body ): void {
	http_response_code( $status );
	header( 'Content-Type: application/json' );
	echo json_encode( $body );
	exit;
}

/**
 * A file of this site's in STAND_IN_DIR.
 *
 * @param string $what The file's suffix.
 */
function site_file( string $what ): string {
	global $dir, $name;
	return "$dir/$name.$what";
}

/**
 * A JSON file's content, or null.
 *
 * @param string $file The file.
 */
function read_json( string $file ): ?array {
	$text = @file_get_contents( $file );
	$v    = false === $text ? null : json_decode( $text, true );
	return is_array( $v ) ? $v : null;
}

/**
 * Write a JSON file aside, then rename it: no worker reads half a file.
 *
 * @param string $file  The file.
 * @param mixed  $value The content.
 */
function write_json( string $file, $value ): void {
	$part = "$file." . getmypid();
	file_put_contents( $part, json_encode( $value, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES ) );
	rename( $part, $file );
}

$is_message = '' === $route && 'POST' === $_SERVER['REQUEST_METHOD']
	&& ( $_GET['rest_route'] ?? '' ) === '/agency-sso/v1/back-channel';
$is_launch  = 'wp-login.php' === $route && 'GET' === $_SERVER['REQUEST_METHOD']
	&& ( $_GET['action'] ?? '' ) === 'agency_sso';
if ( 1 !== preg_match( '/\A[a-z0-9-]+\z/', $name ) || ! ( $is_message || $is_launch ) ) {
	answer( 404, array( 'code' => 'rest_no_route' ) );
}
if ( $is_message ) {
	// Person messages and site messages (connect, status) are counted apart.
	$arrived = isset( $_POST['site_token'] ) ? 'site-arrived' : 'arrived';
	file_put_contents( site_file( $arrived ), time() . "\n", FILE_APPEND | LOCK_EX );
	if ( file_exists( site_file( 'down' ) ) ) {
		answer( 503, array( 'error' => 'site_down' ) );
	}
	if ( file_exists( site_file( 'slow' ) ) ) {
		sleep( (int) file_get_contents( site_file( 'slow' ) ) );
	}
	for ( $i = 0; $i < 90 && file_exists( site_file( 'held' ) ); $i++ ) {
		usleep( 100000 );
	}
}

// The key set, as Agency_SSO_Keys keeps it.

/**
 * Fetch the key set now, or null when it cannot be had.
 */
function fetch_keys(): ?array {
	global $now;
	file_put_contents( site_file( 'key-fetches' ), "$now\n", FILE_APPEND | LOCK_EX );
	$body    = @file_get_contents( getenv( 'AGENCY_SSO_JWKS_URI' ) );
	$headers = $http_response_header ?? array();
	if ( false === $body || ! preg_match( '#\AHTTP/\S+ 200#', $headers[0] ?? '' ) ) {
		return null;
	}
	$cache_control = '';
	foreach ( $headers as $h ) {
		if ( 0 === stripos( $h, 'cache-control:' ) ) {
			$cache_control = trim( substr( $h, strlen( 'cache-control:' ) ) );
		}
	}
	try {
		$keys = Agency_SSO_JWT::parse_key_set( $body );
	} catch ( Agency_SSO_Error $e ) {
		return null;
	}
	$age = Agency_SSO_JWT::max_age( $cache_control );
	return array(
		'keys'       => $keys,
		'fetched_at' => $now,
		'max_age'    => null === $age ? DEFAULT_AGE : max( MIN_AGE, min( MAX_AGE, $age ) ),
	);
}

/**
 * Whether a refetch for an unknown kid, or a failed fetch, was within the last minute.
 */
function throttled(): bool {
	global $now;
	$at = @file_get_contents( site_file( 'keys-throttle' ) );
	return false !== $at && $now - (int) $at < REFETCH_GAP;
}

/**
 * No other refetch for a minute.
 */
function throttle(): void {
	global $now;
	file_put_contents( site_file( 'keys-throttle' ), (string) $now );
}

/**
 * Fetch now: cached and kept as the last good set, or (failing) the last good set.
 */
function refresh_keys(): ?array {
	$set = fetch_keys();
	if ( null === $set ) {
		throttle();
		return read_json( site_file( 'keys-good.json' ) );
	}
	write_json( site_file( 'keys.json' ), $set );
	write_json( site_file( 'keys-good.json' ), $set );
	return $set;
}

/**
 * Refuse a set fetched too long ago.
 *
 * @param array|null $set The set at hand.
 * @throws Agency_SSO_Error When it is too old.
 */
function refuse_stale( ?array $set ): void {
	global $now;
	if ( null !== $set && $now - (int) $set['fetched_at'] > MAX_STALENESS ) {
		throw new Agency_SSO_Error( 'key_set_stale', 'The key set is too old to trust.' );
	}
}

/**
 * The public key for a kid, as Agency_SSO_Keys::key_for_kid finds it.
 *
 * @param string $kid The token's kid.
 */
function key_for_kid( string $kid ): ?string {
	global $now;
	$set = read_json( site_file( 'keys.json' ) );
	if ( null !== $set && (int) $set['fetched_at'] + (int) $set['max_age'] <= $now ) {
		$set = null;
	}
	$fetched = false;
	if ( null === $set ) {
		if ( ! throttled() ) {
			$set     = refresh_keys();
			$fetched = true;
		} else {
			$set = read_json( site_file( 'keys-good.json' ) );
		}
	}
	refuse_stale( $set );
	if ( null !== $set && isset( $set['keys'][ $kid ] ) ) {
		return $set['keys'][ $kid ];
	}
	if ( ! $fetched && ! throttled() ) {
		throttle();
		$set = refresh_keys();
		refuse_stale( $set );
		if ( null !== $set && isset( $set['keys'][ $kid ] ) ) {
			return $set['keys'][ $kid ];
		}
	}
	return null;
}

// The site's users, as Agency_SSO_Users finds, binds and changes them.

/**
 * Change the site's users under its lock; nothing is written when `$change` throws.
 *
 * @param callable $change Takes the users (by reference) and returns the result.
 * @return mixed What `$change` returned.
 */
function with_users( callable $change ) {
	$lock = fopen( site_file( 'users.lock' ), 'c' );
	flock( $lock, LOCK_EX );
	try {
		$users = array();
		foreach ( read_json( site_file( 'users.json' ) ) ?? array() as $login => $u ) {
			$users[ $login ] = array_merge(
				new_user( '' ),
				$u
			);
		}
		$out = $change( $users );
		write_json( site_file( 'users.json' ), (object) $users );
		return $out;
	} finally {
		flock( $lock, LOCK_UN );
		fclose( $lock );
	}
}

/**
 * Whether an account administers the site (never bound by e-mail).
 *
 * @param array $u The user.
 */
function privileged( array $u ): bool {
	return $u['admin'] || 'administrator' === $u['role'];
}

/**
 * The login of the one user bound to a subject, or null.
 *
 * @param array  $users   The users.
 * @param string $subject The binding.
 */
function bound_to( array $users, string $subject ): ?string {
	$found = array_keys( array_filter( $users, fn( $u ) => $u['subject'] === $subject ) );
	return 1 === count( $found ) ? (string) $found[0] : null;
}

/**
 * The user bound to the person: to the stable subject, else to the legacy
 * e-mail subject, then moved over to the stable one.
 *
 * @param array  $users The users (a legacy binding is moved).
 * @param string $sub   The token's subject.
 * @param string $email The lower-cased address.
 */
function bound_person( array &$users, string $sub, string $email ): ?string {
	global $issuer;
	$login = bound_to( $users, "$issuer $sub" );
	if ( null !== $login || $sub === $email || '' === $email ) {
		return $login;
	}
	$login = bound_to( $users, "$issuer $email" );
	if ( null !== $login ) {
		$users[ $login ]['subject'] = "$issuer $sub";
	}
	return $login;
}

/**
 * The login of the user with this address, or null.
 *
 * @param array  $users The users.
 * @param string $email The lower-cased address.
 */
function by_email( array $users, string $email ): ?string {
	foreach ( $users as $login => $u ) {
		if ( strtolower( $u['email'] ) === $email ) {
			return (string) $login;
		}
	}
	return null;
}

/**
 * The user a message names (Agency_SSO_Users::for_person).
 *
 * @param array  $users The users.
 * @param string $sub   The message's subject.
 * @param string $email The lower-cased address.
 */
function for_person( array &$users, string $sub, string $email ): ?string {
	$login = bound_person( $users, $sub, $email );
	if ( null !== $login ) {
		return $login;
	}
	$login = by_email( $users, $email );
	if ( null !== $login && '' === $users[ $login ]['subject'] && ! privileged( $users[ $login ] ) ) {
		return $login;
	}
	return null;
}

/**
 * A replay check shared by launches and messages, as the plugin's table is.
 *
 * @param string $jti The token's id.
 * @throws Agency_SSO_Error When it was used before.
 */
function claim_jti( string $jti ): void {
	global $dir;
	@mkdir( "$dir/jti" );
	$used = @fopen( "$dir/jti/" . hash( 'sha256', $jti ), 'x' );
	if ( false === $used ) {
		throw new Agency_SSO_Error( 'token_replayed', 'This token was already used.' );
	}
	fclose( $used );
}

if ( $is_launch ) {
	try {
		$claims = Agency_SSO_JWT::verify(
			(string) ( $_GET['token'] ?? '' ),
			array(
				'issuer'       => $issuer,
				'audience'     => 'http://' . $_SERVER['HTTP_HOST'] . '/' . $name,
				'typ'          => 'JWT',
				'leeway'       => 60,
				'max_lifetime' => 300,
				'require'      => array( 'wp_role' ),
			),
			'key_for_kid',
			$now
		);
		$role = is_string( $claims['wp_role'] ) ? $claims['wp_role'] : '';
		if ( ! in_array( $role, ROLES, true ) ) {
			throw new Agency_SSO_Error( 'role_not_allowed', 'The role does not exist on this site.' );
		}
		claim_jti( (string) $claims['jti'] );
		$user = with_users(
			function ( array &$users ) use ( $claims, $role, $issuer ) {
				$email = strtolower( (string) $claims['email'] );
				$login = bound_person( $users, (string) $claims['sub'], $email );
				if ( null === $login ) {
					$login = by_email( $users, $email );
					if ( null !== $login && '' !== $users[ $login ]['subject'] ) {
						throw new Agency_SSO_Error( 'account_bound_elsewhere', 'The account is bound to someone else.' );
					}
					if ( null !== $login && privileged( $users[ $login ] ) ) {
						throw new Agency_SSO_Error( 'account_link_required', 'An administrator must link this account.' );
					}
				}
				if ( null === $login ) {
					$base  = preg_replace( '/[^a-z0-9@._-]/', '', $email );
					$login = $base;
					for ( $i = 2; isset( $users[ $login ] ); $i++ ) {
						$login = "$base-$i";
					}
					$users[ $login ] = new_user( $email );
				} elseif ( $users[ $login ]['locked_at'] > 0 ) {
					// A token issued before the lock is refused; one issued after lifts it.
					if ( (int) $claims['iat'] <= $users[ $login ]['locked_at'] ) {
						throw new Agency_SSO_Error( 'account_locked', 'The account was locked by the dashboard.' );
					}
					$users[ $login ]['locked_at'] = 0;
				}
				$users[ $login ]['subject']   = $issuer . ' ' . $claims['sub'];
				$users[ $login ]['role']      = $role;
				$users[ $login ]['sessions'] += 1;
				return array( 'login' => $login ) + $users[ $login ];
			}
		);
	} catch ( Agency_SSO_Error $e ) {
		answer( 403, array( 'error' => $e->get_error_code() ) );
	}
	answer( 200, array( 'user' => $user ) );
}

// A site message, answered as Agency_SSO_Back_Channel::handle_site_message does.

/**
 * The public key for a kid of a dashboard other than AGENCY_SSO_ISSUER
 * (a pending attempt's): its key set, fetched now, not cached.
 *
 * @param string $from The dashboard's issuer.
 * @param string $kid  The token's kid.
 */
function other_issuer_key( string $from, string $kid ): ?string {
	$body = @file_get_contents( "$from/.well-known/jwks.json" );
	if ( false === $body ) {
		return null;
	}
	try {
		$keys = Agency_SSO_JWT::parse_key_set( $body );
	} catch ( Agency_SSO_Error $e ) {
		return null;
	}
	return $keys[ $kid ] ?? null;
}

/**
 * The set the site holds now: cached while its max-age lasts, else the last good one.
 */
function held_keys(): ?array {
	global $now;
	$set = read_json( site_file( 'keys.json' ) );
	if ( null === $set || (int) $set['fetched_at'] + (int) $set['max_age'] <= $now ) {
		$set = read_json( site_file( 'keys-good.json' ) );
	}
	return $set;
}

/**
 * What the site says about itself in every answer to a site message.
 *
 * @param string $audience The site's URL.
 */
function site_facts( string $audience ): array {
	return array(
		'site_url'       => $audience,
		'plugin_version' => '0.3.0',
		'wp_version'     => '6.1.1',
		'php_version'    => PHP_VERSION,
		'multisite'      => false,
	);
}

/**
 * The site's status (Agency_SSO_Connect::status_report()).
 *
 * @param string $audience The site's URL.
 */
function status_report( string $audience ): array {
	global $issuer;
	$set        = held_keys();
	$connection = read_json( site_file( 'connection.json' ) );
	$refusals   = read_json( site_file( 'refusals.json' ) );
	return site_facts( $audience ) + array(
		'connected'       => null !== $connection && ( $connection['issuer'] ?? null ) === $issuer,
		'keys'            => null === $set ? array() : array_map( 'strval', array_keys( $set['keys'] ) ),
		'keys_fetched_at' => null === $set ? null : (int) $set['fetched_at'],
		'refusals'        => (object) ( $refusals['refusals'] ?? array() ),
		'refusals_since'  => isset( $refusals['refusals_since'] ) ? (int) $refusals['refusals_since'] : null,
	);
}

/**
 * Verify a site message and answer it; never returns.
 *
 * @param string $token    The site token.
 * @param string $audience The site's URL.
 */
function answer_site_message( string $token, string $audience ): void {
	global $issuer, $now;
	$action  = Agency_SSO_Site_Message::unverified_action( $token );
	$pending = null;
	try {
		$from = $issuer;
		$keys = 'key_for_kid';
		if ( 'connect' === $action ) {
			$pending = read_json( site_file( 'pending.json' ) );
			if ( null === $pending || ! is_string( $pending['issuer'] ?? null ) || ! is_string( $pending['attempt'] ?? null )
				|| $now - (int) ( $pending['started_at'] ?? 0 ) > PENDING_TTL ) {
				throw new Agency_SSO_Error( 'no_pending_connection', 'This site is not waiting for a connection to be confirmed.' );
			}
			$from = $pending['issuer'];
			if ( $from !== $issuer ) {
				$keys = fn( string $kid ) => other_issuer_key( $from, $kid );
			}
		}
		$claims = Agency_SSO_Site_Message::verify( $token, $from, $audience, $keys, $now );
		if ( $claims['action'] !== $action ) {
			throw new Agency_SSO_Error( 'malformed_token', 'The message could not be read.' );
		}
		if ( null !== $pending && ! hash_equals( $pending['attempt'], (string) $claims['attempt'] ) ) {
			throw new Agency_SSO_Error( 'attempt_mismatch', 'The message confirms another connection attempt than the one this site started.' );
		}
		claim_jti( (string) $claims['jti'] );
	} catch ( Agency_SSO_Error $e ) {
		answer(
			Agency_SSO_Site_Message::status( $e->get_error_code() ),
			array(
				'error'   => $e->get_error_code(),
				'message' => $e->getMessage(),
			)
		);
	}
	if ( 'connect' === $action ) {
		write_json(
			site_file( 'connection.json' ),
			array(
				'issuer'       => $pending['issuer'],
				'attempt'      => $pending['attempt'],
				'connected_at' => $now,
			)
		);
	} elseif ( 'refresh-keys' === $action ) {
		refresh_keys();
	}
	file_put_contents(
		site_file( 'site-log' ),
		json_encode(
			array(
				'action' => $action,
				'jti'    => $claims['jti'],
			)
		) . "\n",
		FILE_APPEND | LOCK_EX
	);
	if ( file_exists( site_file( 'answer' ) ) ) {
		http_response_code( 200 );
		header( 'Content-Type: application/json' );
		echo str_replace( '{jti}', $claims['jti'], file_get_contents( site_file( 'answer' ) ) );
		exit;
	}
	answer(
		200,
		array(
			'jti'    => (string) $claims['jti'],
			'action' => $action,
		) + ( 'connect' === $action ? site_facts( $audience ) : status_report( $audience ) )
	);
}

$audience = 'http://' . $_SERVER['HTTP_HOST'] . '/' . $name;
if ( isset( $_POST['logout_token'] ) === isset( $_POST['site_token'] ) ) {
	answer(
		400,
		array(
			'error'   => 'malformed_token',
			'message' => 'A message carries exactly one token: a logout token or a site token.',
		)
	);
}
if ( isset( $_POST['site_token'] ) ) {
	answer_site_message( (string) $_POST['site_token'], $audience );
}

try {
	$claims = Agency_SSO_Logout_Token::verify(
		(string) ( $_POST['logout_token'] ?? '' ),
		$issuer,
		$audience,
		'key_for_kid',
		$now
	);
	// These sites have WordPress' five core roles.
	if ( 'set-role' === $claims['action'] && '' !== $claims['wp_role'] && ! in_array( $claims['wp_role'], ROLES, true ) ) {
		throw new Agency_SSO_Error( 'role_not_allowed', 'The role does not exist on this site.' );
	}
	claim_jti( (string) $claims['jti'] );
} catch ( Agency_SSO_Error $e ) {
	answer(
		Agency_SSO_Logout_Token::status( $e->get_error_code() ),
		array(
			'error'   => $e->get_error_code(),
			'message' => $e->getMessage(),
		)
	);
}

$action = $claims['action'];
$role   = 'set-role' === $action ? $claims['wp_role'] : '';
$result = with_users(
	function ( array &$users ) use ( $claims, $action, $role ) {
		$login  = for_person( $users, (string) $claims['sub'], strtolower( (string) $claims['email'] ) );
		$result = array(
			'jti'                           => (string) $claims['jti'],
			'action'                        => $action,
			'superseded'                    => false,
			'user_found'                    => null !== $login,
			'sessions_ended'                => 0,
			'application_passwords_revoked' => 0,
			'role_before'                   => null,
			'role_after'                    => null,
			'locked'                        => false,
		);
		if ( null === $login ) {
			return $result;
		}
		$u                     = &$users[ $login ];
		$result['role_before'] = $u['role'];
		$ordered               = 'lock' === $action || 'set-role' === $action;
		if ( $ordered && (int) $claims['seq'] <= $u['last_seq'] ) {
			// A late message: the newer state stands.
			$result['superseded'] = true;
			$result['role_after'] = $u['role'];
			$result['locked']     = $u['locked_at'] > 0;
			return $result;
		}
		if ( $ordered ) {
			$u['last_seq'] = (int) $claims['seq'];
		}
		if ( 'set-role' === $action && '' !== $role ) {
			$u['role'] = $role;
		} else {
			if ( 'end-sessions' !== $action ) {
				$u['locked_at'] = (int) $claims['iat'];
				if ( 'set-role' === $action ) {
					$u['role'] = '';
				}
			}
			$result['sessions_ended']                = $u['sessions'];
			$result['application_passwords_revoked'] = $u['app_passwords'];
			$u['sessions']                           = 0;
			$u['app_passwords']                      = 0;
		}
		$result['role_after'] = $u['role'];
		$result['locked']     = $u['locked_at'] > 0;
		return $result;
	}
);

file_put_contents(
	site_file( 'log' ),
	json_encode(
		array(
			'action'     => $action,
			'role'       => $role,
			'email'      => $claims['email'],
			'sub'        => $claims['sub'],
			'seq'        => $claims['seq'],
			'jti'        => $claims['jti'],
			'user_found' => $result['user_found'],
			'superseded' => $result['superseded'],
		)
	) . "\n",
	FILE_APPEND | LOCK_EX
);
if ( file_exists( site_file( 'answer' ) ) ) {
	http_response_code( 200 );
	header( 'Content-Type: application/json' );
	echo str_replace( '{jti}', $claims['jti'], file_get_contents( site_file( 'answer' ) ) );
	exit;
}
answer( 200, $result );
