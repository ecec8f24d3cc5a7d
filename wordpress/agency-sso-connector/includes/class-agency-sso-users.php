<?php
/**
 * WordPress users for the dashboard's people: bound by issuer and subject
 * (the person's stable id) on first sign-in, matched by e-mail only when
 * not yet bound to anyone and administering nothing anywhere on the
 * network, created when missing, their role set from the token at every
 * sign-in.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * Finds, binds, creates and updates the user a token names.
 */
final class Agency_SSO_Users {

	/** User meta: "{issuer} {sub}" of the dashboard person this user is. */
	const META_SUBJECT = 'agency_sso_subject';

	/**
	 * The binding value of a person.
	 *
	 * @param string $issuer The dashboard's issuer.
	 * @param string $sub    The token's subject.
	 */
	public static function subject( string $issuer, string $sub ): string {
		return $issuer . ' ' . $sub;
	}

	/**
	 * The roles a token may give on this site: those that exist here,
	 * narrowed by the `agency_sso_allowed_roles` filter.
	 *
	 * @param array $claims The verified claims.
	 * @return string[]
	 */
	public static function allowed_roles( array $claims ): array {
		$roles   = array_keys( wp_roles()->roles );
		$allowed = apply_filters( 'agency_sso_allowed_roles', $roles, $claims );
		return array_values( array_intersect( $roles, is_array( $allowed ) ? $allowed : array() ) );
	}

	/**
	 * The user bound to a subject, or null.
	 *
	 * @param string $subject The binding value.
	 */
	public static function bound_to( string $subject ): ?WP_User {
		$users = get_users(
			array(
				'blog_id'    => 0,
				'meta_key'   => self::META_SUBJECT, // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_key -- one indexed lookup per sign-in.
				'meta_value' => $subject, // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_value
				'number'     => 2,
			)
		);
		return 1 === count( $users ) ? $users[0] : null;
	}

	/**
	 * Whether a user is bound to a dashboard person.
	 *
	 * @param WP_User $user The user.
	 */
	public static function is_bound( WP_User $user ): bool {
		return '' !== (string) get_user_meta( $user->ID, self::META_SUBJECT, true );
	}

	/**
	 * Capabilities that make an account an administrator's, whatever its
	 * role is called (a shop manager, a role editor's custom role).
	 */
	const ADMIN_CAPABILITIES = array( 'manage_options', 'edit_users', 'promote_users', 'create_users', 'delete_users', 'install_plugins', 'activate_plugins', 'edit_plugins', 'switch_themes' );

	/**
	 * Whether a user administers anything: a super admin, or an account
	 * that holds an administrator's capability on this site or, on a
	 * network, on any of its sites. Such an account is never bound by
	 * e-mail (a site admin links it), and no message acts on it unless it
	 * is bound to that person: on a network, one sign-in cookie opens
	 * every site the account belongs to.
	 *
	 * @param WP_User $user The user.
	 */
	public static function is_privileged( WP_User $user ): bool {
		if ( is_super_admin( $user->ID ) ) {
			return true;
		}
		$capabilities = (array) apply_filters( 'agency_sso_admin_capabilities', self::ADMIN_CAPABILITIES );
		$sites        = is_multisite() ? array_keys( get_blogs_of_user( $user->ID, true ) ) : array( get_current_blog_id() );
		foreach ( $sites as $site_id ) {
			$there = new WP_User( $user->ID, '', (int) $site_id );
			foreach ( $capabilities as $capability ) {
				// The role's own capabilities (allcaps), not only what map_meta_cap
				// lets a sub-site admin do: holding one is enough.
				if ( ! empty( $there->allcaps[ $capability ] ) || user_can( $there, $capability ) ) {
					return true;
				}
			}
		}
		return false;
	}

	/**
	 * The user bound to a person: to their stable subject, else (bound by
	 * an earlier version of the dashboard or the link form, to their e-mail
	 * subject) moved over to the stable one now. Null when none is.
	 *
	 * @param string $issuer The dashboard's issuer.
	 * @param string $sub    The token's subject (the person's stable id).
	 * @param string $email  The lower-cased e-mail address.
	 */
	public static function bound_person( string $issuer, string $sub, string $email ): ?WP_User {
		$subject = self::subject( $issuer, $sub );
		$user    = self::bound_to( $subject );
		if ( null !== $user || $sub === $email || '' === $email ) {
			return $user;
		}
		$user = self::bound_to( self::subject( $issuer, $email ) );
		if ( null !== $user ) {
			update_user_meta( $user->ID, self::META_SUBJECT, $subject );
		}
		return $user;
	}

	/**
	 * The user a back-channel message names: the one bound to the person,
	 * else the one with their e-mail address when it is bound to nobody and
	 * administers nothing (the accounts a launch would bind). Null when
	 * there is none: the person never had an account here.
	 *
	 * @param string $issuer The dashboard's issuer.
	 * @param string $sub    The message's subject.
	 * @param string $email  The lower-cased e-mail address.
	 */
	public static function for_person( string $issuer, string $sub, string $email ): ?WP_User {
		$user = self::bound_person( $issuer, $sub, $email );
		if ( null !== $user ) {
			return $user;
		}
		$by_email = get_user_by( 'email', $email );
		if ( $by_email instanceof WP_User && ! self::is_bound( $by_email ) && ! self::is_privileged( $by_email ) ) {
			return $by_email;
		}
		return null;
	}

	/**
	 * The role the dashboard now gives, set without a launch (the user is
	 * added to this site of a network when needed); '' takes every role on
	 * this site away, content kept.
	 *
	 * @param WP_User $user The user.
	 * @param string  $role An allowed role, or ''.
	 */
	public static function apply_role( WP_User $user, string $role ): void {
		if ( '' === $role ) {
			self::remove_role( $user );
			return;
		}
		self::set_role( $user, $role );
	}

	/**
	 * No role on this site: on a network the user leaves this site (their
	 * posts keep them as author); on a single site they keep the account
	 * with no role.
	 *
	 * @param WP_User $user The user.
	 */
	private static function remove_role( WP_User $user ): void {
		if ( is_multisite() ) {
			if ( is_user_member_of_blog( $user->ID, get_current_blog_id() ) ) {
				remove_user_from_blog( $user->ID, get_current_blog_id() );
			}
			return;
		}
		// Every role and every capability given to the user directly.
		( new WP_User( $user->ID ) )->remove_all_caps();
	}

	/**
	 * The user for verified launch claims, bound, created and given the
	 * token's role. Checks everything before it writes anything.
	 *
	 * @param array  $claims The verified claims.
	 * @param string $issuer The dashboard's issuer.
	 * @throws Agency_SSO_Error When the role is not allowed or the account may not be taken over.
	 */
	public static function sign_in_user( array $claims, string $issuer ): WP_User {
		$role = is_string( $claims['wp_role'] ?? null ) ? $claims['wp_role'] : '';
		if ( '' === $role || ! in_array( $role, self::allowed_roles( $claims ), true ) ) {
			throw Agency_SSO_Login::refusal( 'role_not_allowed' );
		}
		$email   = strtolower( (string) $claims['email'] );
		$subject = self::subject( $issuer, (string) $claims['sub'] );
		$user    = self::bound_person( $issuer, (string) $claims['sub'], $email );
		$claimed = false;
		if ( null === $user ) {
			$by_email = get_user_by( 'email', $email );
			if ( $by_email instanceof WP_User ) {
				if ( self::is_bound( $by_email ) ) {
					throw Agency_SSO_Login::refusal( 'account_bound_elsewhere' );
				}
				if ( self::is_privileged( $by_email ) ) {
					throw Agency_SSO_Login::refusal( 'account_link_required' );
				}
				$user    = $by_email;
				$claimed = true;
			}
		}
		if ( null === $user ) {
			$user = self::create( $claims, $email, $role );
		} else {
			Agency_SSO_Back_Channel::check_launch( $user, $claims );
		}
		if ( $claimed ) {
			// An account made before the dashboard vouched for the address (by
			// a sign-up form that checks no e-mail, say) keeps nothing its maker
			// may hold: its sessions, application passwords and password end.
			Agency_SSO_Back_Channel::end_sessions( $user );
			wp_set_password( wp_generate_password( 64, true, true ), $user->ID );
		}
		update_user_meta( $user->ID, self::META_SUBJECT, $subject );
		self::update_profile( $user, $claims );
		self::set_role( $user, $role );
		return new WP_User( $user->ID );
	}

	/**
	 * A new user: a random password nobody knows, names from the claims.
	 *
	 * @param array  $claims The verified claims.
	 * @param string $email  The lower-cased e-mail address.
	 * @param string $role   The role to give.
	 * @throws Agency_SSO_Error When WordPress refuses the user.
	 */
	private static function create( array $claims, string $email, string $role ): WP_User {
		$base  = sanitize_user( $email, true );
		$login = $base;
		for ( $i = 2; username_exists( $login ); $i++ ) {
			$login = $base . '-' . $i;
		}
		$id = wp_insert_user(
			array(
				'user_login'   => $login,
				'user_pass'    => wp_generate_password( 64, true, true ),
				'user_email'   => $email,
				'display_name' => self::claim_text( $claims, 'name', $email ),
				'first_name'   => self::claim_text( $claims, 'given_name', '' ),
				'last_name'    => self::claim_text( $claims, 'family_name', '' ),
				'role'         => $role,
			)
		);
		if ( is_wp_error( $id ) ) {
			throw Agency_SSO_Login::refusal( 'user_not_created', $id->get_error_message() );
		}
		return new WP_User( $id );
	}

	/**
	 * Names follow the dashboard's profile.
	 *
	 * @param WP_User $user   The user.
	 * @param array   $claims The verified claims.
	 */
	private static function update_profile( WP_User $user, array $claims ): void {
		$changes = array();
		foreach ( array(
			'display_name' => 'name',
			'first_name'   => 'given_name',
			'last_name'    => 'family_name',
		) as $field => $claim ) {
			$value = self::claim_text( $claims, $claim, '' );
			if ( '' !== $value && $value !== $user->$field ) {
				$changes[ $field ] = $value;
			}
		}
		if ( $changes ) {
			$changes['ID'] = $user->ID;
			wp_update_user( $changes );
		}
	}

	/**
	 * The role on this site is exactly the token's, at every sign-in, so a
	 * role lowered in the dashboard is lowered here at the next one.
	 *
	 * @param WP_User $user The user.
	 * @param string  $role The role.
	 */
	private static function set_role( WP_User $user, string $role ): void {
		if ( is_multisite() && ! is_user_member_of_blog( $user->ID, get_current_blog_id() ) ) {
			add_user_to_blog( get_current_blog_id(), $user->ID, $role );
			return;
		}
		$user = new WP_User( $user->ID );
		if ( array( $role ) !== array_values( (array) $user->roles ) ) {
			$user->set_role( $role );
		}
	}

	/**
	 * A text claim, or the fallback.
	 *
	 * @param array  $claims   The claims.
	 * @param string $name     The claim.
	 * @param string $fallback When the claim is missing or empty.
	 */
	private static function claim_text( array $claims, string $name, string $fallback ): string {
		$value = $claims[ $name ] ?? '';
		return is_string( $value ) && '' !== trim( $value ) ? sanitize_text_field( $value ) : $fallback;
	}
}
