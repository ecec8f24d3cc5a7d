<?php
/**
 * Settings → Agency SSO: the connection to the dashboard (connect by the
 * dashboard's approval or with a code, or disconnect), the issuer
 * (read-only when wp-config.php sets it), this site's URL for the
 * dashboard, the key set last fetched, a "test the connection" button, the
 * password rule, break-glass logins, launches without a Referer, and
 * linking an existing account to a dashboard person.
 *
 * On a multisite network the settings are the network's and are changed
 * in Network Admin → Settings → Agency SSO by those who may manage the
 * network's options; a sub-site's page shows them read-only. Accounts are
 * the network's too: linking needs manage_network_users, a sub-site's page
 * links only members of that site who are not super admins, and only the
 * network's page can link a super admin. Each site of a network connects
 * on its own page, by a network administrator; the network's page lists them.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * The settings page and its actions (each behind a nonce and the capability it needs).
 */
final class Agency_SSO_Admin {

	const PAGE = 'agency-sso-connector';

	/**
	 * Hook into WordPress' admin.
	 */
	public static function register(): void {
		add_action( 'admin_menu', array( self::class, 'menu' ) );
		add_action( 'network_admin_menu', array( self::class, 'network_menu' ) );
		add_action( 'admin_post_agency_sso_save', array( self::class, 'save' ) );
		add_action( 'admin_post_agency_sso_test', array( self::class, 'test_connection' ) );
		add_action( 'admin_post_agency_sso_link', array( self::class, 'link' ) );
		add_action( 'admin_post_agency_sso_unlink', array( self::class, 'unlink' ) );
		add_action( 'admin_post_agency_sso_connect_start', array( self::class, 'connect_start' ) );
		add_action( 'admin_post_agency_sso_connect_back', array( self::class, 'connect_back' ) );
		add_action( 'admin_post_agency_sso_connect_code', array( self::class, 'connect_code' ) );
		add_action( 'admin_post_agency_sso_disconnect', array( self::class, 'disconnect' ) );
		add_action( 'admin_notices', array( self::class, 'not_configured_notice' ) );
		add_action( 'network_admin_notices', array( self::class, 'not_configured_notice' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( AGENCY_SSO_CONNECTOR_FILE ), array( self::class, 'action_links' ) );
	}

	/**
	 * The menu entry.
	 */
	public static function menu(): void {
		add_options_page( __( 'Agency SSO', 'agency-sso-connector' ), __( 'Agency SSO', 'agency-sso-connector' ), 'manage_options', self::PAGE, array( self::class, 'render' ) );
	}

	/**
	 * The network's entry (Network Admin → Settings), where a network's settings are changed.
	 */
	public static function network_menu(): void {
		add_submenu_page( 'settings.php', __( 'Agency SSO', 'agency-sso-connector' ), __( 'Agency SSO', 'agency-sso-connector' ), 'manage_network_options', self::PAGE, array( self::class, 'render' ) );
	}

	/**
	 * "Settings" beside the plugin in the plugin list.
	 *
	 * @param string[] $links The plugin's links.
	 * @return string[]
	 */
	public static function action_links( array $links ): array {
		array_unshift( $links, '<a href="' . esc_url( self::url() ) . '">' . esc_html__( 'Settings', 'agency-sso-connector' ) . '</a>' );
		return $links;
	}

	/**
	 * The settings page's URL (the network's page when $network), with optional query arguments.
	 *
	 * @param array $args    Query arguments.
	 * @param bool  $network The network's page.
	 */
	private static function url( array $args = array(), bool $network = false ): string {
		$base = $network ? network_admin_url( 'settings.php' ) : admin_url( 'options-general.php' );
		return add_query_arg( array_merge( array( 'page' => self::PAGE ), $args ), $base );
	}

	/**
	 * Whether the request's form came from the network's page (its scope
	 * field, which is part of the nonce's action, so it cannot be changed
	 * without a new nonce).
	 */
	private static function from_network_page(): bool {
		// phpcs:ignore WordPress.Security.NonceVerification.Missing -- the nonce is checked against this very value in guard().
		return is_multisite() && isset( $_POST['scope'] ) && 'network' === $_POST['scope'];
	}

	/**
	 * The scope a form on the current page is for: the network, or this site.
	 */
	private static function scope(): string {
		return is_network_admin() ? 'network' : 'site-' . get_current_blog_id();
	}

	/**
	 * Until an issuer is set, say so to administrators.
	 */
	public static function not_configured_notice(): void {
		$network = is_network_admin();
		if ( ! current_user_can( $network ? 'manage_network_options' : 'manage_options' ) || '' !== Agency_SSO_Config::issuer() ) {
			return;
		}
		echo '<div class="notice notice-warning"><p>' . esc_html__( 'agency-sso connector does nothing until it knows your dashboard. Connect this site on its settings page, or add this line to wp-config.php:', 'agency-sso-connector' )
			. ' <code>define( \'AGENCY_SSO_ISSUER\', \'https://sso.agency.example\' );</code> '
			. '<a href="' . esc_url( self::url( array(), is_multisite() ) ) . '">' . esc_html__( 'Settings', 'agency-sso-connector' ) . '</a></p></div>';
	}

	/**
	 * Stop unless the request comes from someone who holds the capability,
	 * with a valid nonce for this action and scope.
	 *
	 * @param string $action     The nonce action.
	 * @param string $capability What the action needs.
	 */
	private static function guard( string $action, string $capability ): void {
		if ( ! current_user_can( $capability ) ) {
			wp_die( esc_html__( 'You are not allowed to change these settings.', 'agency-sso-connector' ), '', array( 'response' => 403 ) );
		}
		check_admin_referer( $action . '_' . ( self::from_network_page() ? 'network' : 'site-' . get_current_blog_id() ) );
	}

	/**
	 * A form's hidden fields: the action, its scope and the nonce for both.
	 *
	 * @param string $action The admin-post action (also the nonce's).
	 */
	private static function form_fields( string $action ): void {
		echo '<input type="hidden" name="action" value="' . esc_attr( $action ) . '">';
		echo '<input type="hidden" name="scope" value="' . esc_attr( 'network' === self::scope() ? 'network' : 'site' ) . '">';
		wp_nonce_field( $action . '_' . self::scope() );
	}

	/**
	 * Back to the page with a message.
	 *
	 * @param string $kind    updated or error.
	 * @param string $message The message.
	 * @param string $code    A stable code shown beside it ('' for none).
	 */
	private static function back( string $kind, string $message, string $code = '' ): void {
		set_transient( 'agency_sso_notice_' . get_current_user_id(), array( $kind, $message, $code ), 60 );
		wp_safe_redirect( self::url( array(), self::from_network_page() ) );
		exit;
	}

	/**
	 * Back to the page with a refusal's message and code.
	 *
	 * @param WP_Error $error The refusal.
	 */
	private static function back_with_error( WP_Error $error ): void {
		self::back( 'error', $error->get_error_message(), (string) $error->get_error_code() );
	}

	/**
	 * Connecting and disconnecting are a site's, done on its own page (on a
	 * network, each sub-site's page), never on the network's.
	 */
	private static function site_page_only(): void {
		if ( self::from_network_page() ) {
			self::forbid( __( 'Each site of a network connects to the dashboard on its own settings page.', 'agency-sso-connector' ) );
		}
	}

	/**
	 * Connect: begin an approval in the browser and send it to the dashboard.
	 */
	public static function connect_start(): void {
		self::guard( 'agency_sso_connect_start', Agency_SSO_Config::settings_capability() );
		self::site_page_only();
		$dashboard = isset( $_POST['dashboard'] ) ? sanitize_text_field( wp_unslash( $_POST['dashboard'] ) ) : ''; // phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked in guard().
		$to        = Agency_SSO_Connect::start_approval( $dashboard );
		if ( is_wp_error( $to ) ) {
			self::back_with_error( $to );
		}
		// phpcs:ignore WordPress.Security.SafeRedirect.wp_redirect_wp_redirect -- the dashboard's approval page, at the address just checked.
		wp_redirect( $to, 303 );
		exit;
	}

	/**
	 * The dashboard sent the browser back: approved (a code and the state)
	 * or cancelled (`error=cancelled`). Behind the capability and the nonce
	 * the way there carried; the state must be the pending attempt's.
	 */
	public static function connect_back(): void {
		if ( ! current_user_can( Agency_SSO_Config::settings_capability() ) ) {
			self::forbid( __( 'You are not allowed to change these settings.', 'agency-sso-connector' ) );
		}
		check_admin_referer( Agency_SSO_Connect::return_nonce_action() );
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- checked just above.
		$state = isset( $_GET['state'] ) ? sanitize_text_field( wp_unslash( $_GET['state'] ) ) : '';
		if ( isset( $_GET['error'] ) ) {
			$error = sanitize_key( wp_unslash( $_GET['error'] ) );
			Agency_SSO_Connect::forget_attempt( $state );
			if ( 'cancelled' === $error ) {
				self::back( 'error', __( 'The connection was cancelled in the dashboard: nothing was changed.', 'agency-sso-connector' ), 'cancelled' );
			}
			self::back( 'error', __( 'The dashboard did not approve the connection: nothing was changed.', 'agency-sso-connector' ), '' === $error ? 'not_approved' : $error );
		}
		$code = isset( $_GET['code'] ) ? sanitize_text_field( wp_unslash( $_GET['code'] ) ) : '';
		// phpcs:enable
		self::connected( Agency_SSO_Connect::finish_approval( $code, $state ) );
	}

	/**
	 * Connect with a code pasted on the page.
	 */
	public static function connect_code(): void {
		self::guard( 'agency_sso_connect_code', Agency_SSO_Config::settings_capability() );
		self::site_page_only();
		$code = isset( $_POST['code'] ) ? sanitize_text_field( wp_unslash( $_POST['code'] ) ) : ''; // phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked in guard().
		self::connected( Agency_SSO_Connect::with_code( $code ) );
	}

	/**
	 * Back to the page with the outcome of a connection.
	 *
	 * @param array|WP_Error $result What Agency_SSO_Connect answered.
	 */
	private static function connected( $result ): void {
		if ( is_wp_error( $result ) ) {
			self::back_with_error( $result );
		}
		self::back(
			'updated',
			$result['created']
				/* translators: %s: the dashboard's address */
				? sprintf( __( 'Connected to %s: the dashboard added this site.', 'agency-sso-connector' ), $result['issuer'] )
				/* translators: %s: the dashboard's address */
				: sprintf( __( 'Connected to %s: the dashboard already knew this site.', 'agency-sso-connector' ), $result['issuer'] ),
			'connected'
		);
	}

	/**
	 * Disconnect this site from its dashboard.
	 */
	public static function disconnect(): void {
		self::guard( 'agency_sso_disconnect', Agency_SSO_Config::settings_capability() );
		self::site_page_only();
		$result = Agency_SSO_Connect::disconnect();
		if ( is_wp_error( $result ) ) {
			self::back_with_error( $result );
		}
		/* translators: %s: the dashboard's address */
		$message = sprintf( __( 'Disconnected from %s.', 'agency-sso-connector' ), $result['issuer'] );
		if ( $result['issuer_kept'] ) {
			$message .= ' ' . ( Agency_SSO_Config::issuer_is_constant()
				? __( 'Launches from it are still accepted: AGENCY_SSO_ISSUER in wp-config.php names it.', 'agency-sso-connector' )
				: __( 'Launches from it are still accepted: the network names it (Network Admin → Settings → Agency SSO).', 'agency-sso-connector' ) );
		}
		self::back( 'updated', $message, 'disconnected' );
	}

	/**
	 * Stop with a 403 page.
	 *
	 * @param string $message Why.
	 */
	private static function forbid( string $message ): void {
		wp_die( esc_html( $message ), '', array( 'response' => 403 ) );
	}

	/**
	 * Save the issuer (unless wp-config.php sets it), the password rule,
	 * break-glass logins and launches without a Referer: the network's on
	 * a network, from its own page only.
	 */
	public static function save(): void {
		self::guard( 'agency_sso_save', Agency_SSO_Config::settings_capability() );
		if ( is_multisite() && ! self::from_network_page() ) {
			self::forbid( __( 'On a network these settings are the network\'s: change them in Network Admin → Settings → Agency SSO.', 'agency-sso-connector' ) );
		}
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- checked in guard().
		if ( ! Agency_SSO_Config::issuer_is_constant() ) {
			$issuer  = isset( $_POST['issuer'] ) ? rtrim( trim( sanitize_text_field( wp_unslash( $_POST['issuer'] ) ) ), '/' ) : '';
			$problem = '' === $issuer ? null : Agency_SSO_Config::issuer_problem( $issuer );
			if ( null !== $problem ) {
				self::back( 'error', $problem );
			}
			Agency_SSO_Config::set( Agency_SSO_Config::OPTION_ISSUER, $issuer );
		}
		Agency_SSO_Config::set( Agency_SSO_Config::OPTION_BLOCK_PASSWORDS, empty( $_POST['block_passwords'] ) ? '0' : '1' );
		Agency_SSO_Config::set( Agency_SSO_Config::OPTION_ALLOW_NO_REFERER, empty( $_POST['allow_missing_referer'] ) ? '0' : '1' );
		if ( ! Agency_SSO_Config::break_glass_is_constant() ) {
			$logins = isset( $_POST['break_glass'] ) ? sanitize_textarea_field( wp_unslash( $_POST['break_glass'] ) ) : '';
			Agency_SSO_Config::set( Agency_SSO_Config::OPTION_BREAK_GLASS, $logins );
		}
		// phpcs:enable
		self::back( 'updated', __( 'Settings saved.', 'agency-sso-connector' ) );
	}

	/**
	 * Fetch discovery and the key set now and say what happened.
	 */
	public static function test_connection(): void {
		self::guard( 'agency_sso_test', 'manage_options' );
		$issuer = Agency_SSO_Config::issuer();
		if ( '' === $issuer ) {
			self::back( 'error', __( 'Set the dashboard\'s address first.', 'agency-sso-connector' ) );
		}
		Agency_SSO_Keys::refresh( $issuer );
		$result = get_option( Agency_SSO_Keys::LAST_RESULT );
		if ( is_array( $result ) && ! empty( $result['ok'] ) ) {
			$set = Agency_SSO_Keys::cached( $issuer );
			/* translators: %d: number of keys */
			self::back( 'updated', sprintf( _n( 'Connected: the dashboard publishes %d key.', 'Connected: the dashboard publishes %d keys.', count( $set['keys'] ?? array() ), 'agency-sso-connector' ), count( $set['keys'] ?? array() ) ) );
		}
		self::back( 'error', __( 'The connection failed: ', 'agency-sso-connector' ) . ( is_array( $result ) ? $result['message'] . ' (' . $result['code'] . ')' : '' ) );
	}

	/**
	 * Link an existing account (an administrator, say) to a dashboard person by e-mail.
	 */
	public static function link(): void {
		self::guard( 'agency_sso_link', Agency_SSO_Config::users_capability() );
		$issuer = Agency_SSO_Config::issuer();
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- checked in guard().
		$user_id = isset( $_POST['user_id'] ) ? absint( $_POST['user_id'] ) : 0;
		$email   = isset( $_POST['email'] ) ? strtolower( sanitize_email( wp_unslash( $_POST['email'] ) ) ) : '';
		// phpcs:enable
		$user = self::linkable( $user_id );
		if ( '' === $issuer || null === $user || ! is_email( $email ) ) {
			self::back( 'error', __( 'Choose an account and give the person\'s e-mail address in the dashboard (and set the dashboard\'s address first).', 'agency-sso-connector' ) );
		}
		$subject = Agency_SSO_Users::subject( $issuer, $email );
		$other   = Agency_SSO_Users::bound_to( $subject );
		if ( null !== $other && $other->ID !== $user->ID ) {
			/* translators: %s: a user login */
			self::back( 'error', sprintf( __( 'That dashboard person is already linked to %s.', 'agency-sso-connector' ), $other->user_login ) );
		}
		update_user_meta( $user->ID, Agency_SSO_Users::META_SUBJECT, $subject );
		/* translators: 1: a user login, 2: an e-mail address */
		self::back( 'updated', sprintf( __( '%1$s is now linked to %2$s in the dashboard.', 'agency-sso-connector' ), $user->user_login, $email ) );
	}

	/**
	 * Undo a link.
	 */
	public static function unlink(): void {
		self::guard( 'agency_sso_unlink', Agency_SSO_Config::users_capability() );
		$user_id = isset( $_POST['user_id'] ) ? absint( $_POST['user_id'] ) : 0; // phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked in guard().
		$user    = self::linkable( $user_id );
		if ( null === $user ) {
			self::back( 'error', __( 'That account cannot be changed from this page.', 'agency-sso-connector' ) );
		}
		delete_user_meta( $user->ID, Agency_SSO_Users::META_SUBJECT );
		self::back( 'updated', __( 'The account is no longer linked to the dashboard.', 'agency-sso-connector' ) );
	}

	/**
	 * The account a link form may change, or null: on a network's own page
	 * any account of the network; on a sub-site's page only a member of
	 * that site who is not a super admin (whose account opens every site).
	 *
	 * @param int $user_id The account's id.
	 */
	private static function linkable( int $user_id ): ?WP_User {
		$user = get_user_by( 'id', $user_id );
		if ( ! $user instanceof WP_User ) {
			return null;
		}
		if ( ! is_multisite() || self::from_network_page() ) {
			return $user;
		}
		if ( is_super_admin( $user->ID ) || ! is_user_member_of_blog( $user->ID, get_current_blog_id() ) ) {
			return null;
		}
		return $user;
	}

	/**
	 * The page: a site's (Settings → Agency SSO) or, on a network, the
	 * network's (Network Admin → Settings → Agency SSO).
	 */
	public static function render(): void {
		$network = is_network_admin();
		if ( ! current_user_can( $network ? 'manage_network_options' : 'manage_options' ) ) {
			return;
		}
		$notice = get_transient( 'agency_sso_notice_' . get_current_user_id() );
		delete_transient( 'agency_sso_notice_' . get_current_user_id() );
		$issuer   = Agency_SSO_Config::issuer();
		$written  = Agency_SSO_Config::issuer_as_written();
		$set      = '' === $issuer ? null : ( Agency_SSO_Keys::cached( $issuer ) ?? Agency_SSO_Keys::last_good( $issuer ) );
		$result   = get_option( Agency_SSO_Keys::LAST_RESULT );
		$editable = ! is_multisite() || $network;
		?>
		<div class="wrap" id="agency-sso-settings">
			<h1><?php $network ? esc_html_e( 'Agency SSO for the network', 'agency-sso-connector' ) : esc_html_e( 'Agency SSO', 'agency-sso-connector' ); ?></h1>
			<?php if ( is_array( $notice ) ) : ?>
				<div class="notice notice-<?php echo 'error' === $notice[0] ? 'error' : 'success'; ?>" id="agency-sso-notice"><p><?php echo esc_html( $notice[1] ); ?></p>
				<?php if ( ! empty( $notice[2] ) ) : ?>
					<p><?php esc_html_e( 'Code:', 'agency-sso-connector' ); ?> <code id="agency-sso-notice-code"><?php echo esc_html( $notice[2] ); ?></code></p>
				<?php endif; ?>
				</div>
			<?php endif; ?>

			<?php
			if ( $network ) {
				self::render_network_sites();
			} else {
				self::render_connection();
			}
			?>

			<h2><?php esc_html_e( 'The dashboard', 'agency-sso-connector' ); ?></h2>
			<?php if ( ! $editable ) : ?>
				<p id="agency-sso-network-note"><?php esc_html_e( 'This site is part of a network: these settings are the network\'s, and only its administrators change them (Network Admin → Settings → Agency SSO).', 'agency-sso-connector' ); ?></p>
			<?php endif; ?>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<?php self::form_fields( 'agency_sso_save' ); ?>
				<table class="form-table" role="presentation">
					<tr>
						<th scope="row"><label for="agency-sso-issuer"><?php esc_html_e( 'Dashboard address (issuer)', 'agency-sso-connector' ); ?></label></th>
						<td>
							<?php if ( Agency_SSO_Config::issuer_is_constant() || ! $editable ) : ?>
								<code id="agency-sso-issuer"><?php echo esc_html( $written ); ?></code>
								<?php if ( Agency_SSO_Config::issuer_is_constant() ) : ?>
									<p class="description"><?php esc_html_e( 'Set by AGENCY_SSO_ISSUER in wp-config.php.', 'agency-sso-connector' ); ?></p>
								<?php endif; ?>
							<?php else : ?>
								<input type="url" class="regular-text" id="agency-sso-issuer" name="issuer" value="<?php echo esc_attr( $written ); ?>" placeholder="https://sso.agency.example">
								<p class="description"><?php esc_html_e( 'Or in wp-config.php:', 'agency-sso-connector' ); ?> <code>define( 'AGENCY_SSO_ISSUER', 'https://sso.agency.example' );</code></p>
							<?php endif; ?>
							<?php if ( '' !== $written && '' === $issuer ) : ?>
								<p class="notice notice-error inline"><?php echo esc_html( (string) Agency_SSO_Config::issuer_problem( rtrim( trim( $written ), '/' ) ) ); ?></p>
							<?php endif; ?>
						</td>
					</tr>
					<?php if ( ! $network ) : ?>
					<tr>
						<th scope="row"><?php esc_html_e( 'This site\'s URL', 'agency-sso-connector' ); ?></th>
						<td><code id="agency-sso-audience"><?php echo esc_html( Agency_SSO_Config::audience() ); ?></code>
							<p class="description"><?php esc_html_e( 'Add the site in the dashboard with exactly this URL and the profile "connector".', 'agency-sso-connector' ); ?></p></td>
					</tr>
					<?php endif; ?>
					<tr>
						<th scope="row"><?php esc_html_e( 'Password sign-in', 'agency-sso-connector' ); ?></th>
						<td><label><input type="checkbox" name="block_passwords" value="1" <?php checked( Agency_SSO_Config::block_passwords() ); ?> <?php disabled( ! $editable ); ?>>
							<?php esc_html_e( 'Accounts linked to the dashboard sign in only through it (no password, no application password)', 'agency-sso-connector' ); ?></label></td>
					</tr>
					<tr>
						<th scope="row"><?php esc_html_e( 'Launches without a Referer', 'agency-sso-connector' ); ?></th>
						<td><label><input type="checkbox" id="agency-sso-allow-missing-referer" name="allow_missing_referer" value="1" <?php checked( Agency_SSO_Config::allow_missing_referer() ); ?> <?php disabled( ! $editable ); ?>>
							<?php esc_html_e( 'Accept a launch whose browser does not say it comes from the dashboard', 'agency-sso-connector' ); ?></label>
							<p class="description"><?php esc_html_e( 'Off by default: a launch link opened from anywhere else could sign a colleague into someone else\'s account. Turn it on only if your staff use a browser extension that removes the Referer header.', 'agency-sso-connector' ); ?></p></td>
					</tr>
					<tr>
						<th scope="row"><label for="agency-sso-break-glass"><?php esc_html_e( 'Break-glass logins', 'agency-sso-connector' ); ?></label></th>
						<td>
							<?php if ( Agency_SSO_Config::break_glass_is_constant() || ! $editable ) : ?>
								<code id="agency-sso-break-glass"><?php echo esc_html( implode( ', ', Agency_SSO_Config::break_glass_logins() ) ); ?></code>
								<?php if ( Agency_SSO_Config::break_glass_is_constant() ) : ?>
									<p class="description"><?php esc_html_e( 'Set by AGENCY_SSO_BREAK_GLASS in wp-config.php.', 'agency-sso-connector' ); ?></p>
								<?php endif; ?>
							<?php else : ?>
								<textarea id="agency-sso-break-glass" name="break_glass" rows="2" class="regular-text"><?php echo esc_textarea( implode( ', ', Agency_SSO_Config::break_glass_logins() ) ); ?></textarea>
							<?php endif; ?>
							<p class="description"><?php esc_html_e( 'These logins can always sign in with their password, so the site is not locked out when the dashboard is down.', 'agency-sso-connector' ); ?></p>
						</td>
					</tr>
				</table>
				<?php
				if ( $editable ) {
					submit_button( __( 'Save', 'agency-sso-connector' ) );
				}
				?>
			</form>

			<?php if ( ! $network ) : ?>
			<h2><?php esc_html_e( 'Key set', 'agency-sso-connector' ); ?></h2>
				<?php if ( null === $set ) : ?>
				<p id="agency-sso-keys"><?php esc_html_e( 'Not fetched yet.', 'agency-sso-connector' ); ?></p>
			<?php else : ?>
				<p id="agency-sso-keys">
					<?php
					/* translators: 1: URL, 2: date and time */
					echo esc_html( sprintf( __( 'From %1$s, fetched %2$s:', 'agency-sso-connector' ), $set['jwks_uri'], wp_date( 'Y-m-d H:i:s', (int) $set['fetched_at'] ) ) );
					?>
				</p>
				<ul>
					<?php foreach ( array_keys( $set['keys'] ) as $kid ) : ?>
						<li><code class="agency-sso-kid"><?php echo esc_html( (string) $kid ); ?></code></li>
					<?php endforeach; ?>
				</ul>
					<?php if ( Agency_SSO_Keys::is_stale( $set ) ) : ?>
					<p class="notice notice-error inline" id="agency-sso-keys-stale">
						<?php
						/* translators: %d: a number of days */
						echo esc_html( sprintf( _n( 'This key set was fetched more than %d day ago and the dashboard has not been reachable since: sign-ins from the dashboard are refused until this site can fetch its keys again.', 'This key set was fetched more than %d days ago and the dashboard has not been reachable since: sign-ins from the dashboard are refused until this site can fetch its keys again.', (int) ( Agency_SSO_Config::max_key_staleness() / 86400 ), 'agency-sso-connector' ), (int) ( Agency_SSO_Config::max_key_staleness() / 86400 ) ) );
						?>
					</p>
				<?php endif; ?>
			<?php endif; ?>
				<?php if ( is_array( $result ) && empty( $result['ok'] ) ) : ?>
				<p class="notice notice-error inline">
					<?php
					/* translators: 1: date and time, 2: message, 3: code */
					echo esc_html( sprintf( __( 'Last attempt %1$s failed: %2$s (%3$s)', 'agency-sso-connector' ), wp_date( 'Y-m-d H:i:s', (int) $result['at'] ), $result['message'], $result['code'] ) );
					?>
				</p>
			<?php endif; ?>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<?php self::form_fields( 'agency_sso_test' ); ?>
				<?php submit_button( __( 'Test the connection', 'agency-sso-connector' ), 'secondary', 'submit', false ); ?>
			</form>
			<?php endif; ?>

			<h2><?php esc_html_e( 'Accounts linked to the dashboard', 'agency-sso-connector' ); ?></h2>
			<?php self::render_links( $issuer, $network ); ?>
		</div>
		<?php
	}

	/**
	 * This site's connection: to whom and since when, with Disconnect; or,
	 * not connected, the two ways to connect (for those who may).
	 */
	private static function render_connection(): void {
		$may    = current_user_can( Agency_SSO_Config::settings_capability() );
		$record = Agency_SSO_Connect::connection();
		// The address a sub-site of a network, or a site whose wp-config.php names one, can connect to.
		$fixed = Agency_SSO_Config::issuer_is_constant() || ( is_multisite() && '' !== Agency_SSO_Config::issuer_as_written() );
		?>
		<h2><?php esc_html_e( 'Connection to the agency dashboard', 'agency-sso-connector' ); ?></h2>
		<?php if ( null !== $record ) : ?>
			<p id="agency-sso-connection">
				<?php
				/* translators: 1: the dashboard's address, 2: date and time */
				echo esc_html( sprintf( __( 'Connected to %1$s since %2$s.', 'agency-sso-connector' ), $record['issuer'], wp_date( 'Y-m-d H:i:s', $record['connected_at'] ) ) );
				?>
			</p>
			<?php if ( $may ) : ?>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<?php self::form_fields( 'agency_sso_disconnect' ); ?>
				<?php submit_button( __( 'Disconnect', 'agency-sso-connector' ), 'secondary', 'submit', false, array( 'id' => 'agency-sso-disconnect' ) ); ?>
			</form>
			<?php endif; ?>
		<?php else : ?>
			<p id="agency-sso-connection"><?php esc_html_e( 'This site is not connected to an agency dashboard.', 'agency-sso-connector' ); ?></p>
			<?php if ( ! $may ) : ?>
				<p id="agency-sso-connect-note"><?php esc_html_e( 'On a network, a network administrator connects each site, on the site\'s own settings page.', 'agency-sso-connector' ); ?></p>
			<?php else : ?>
			<h3><?php esc_html_e( 'Connect to the agency dashboard', 'agency-sso-connector' ); ?></h3>
			<p><?php esc_html_e( 'The dashboard asks one of its administrators to approve this site, then sends you back here.', 'agency-sso-connector' ); ?></p>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<?php self::form_fields( 'agency_sso_connect_start' ); ?>
				<label for="agency-sso-connect-dashboard"><?php esc_html_e( 'Dashboard address', 'agency-sso-connector' ); ?></label>
				<input type="url" class="regular-text" id="agency-sso-connect-dashboard" name="dashboard" value="<?php echo esc_attr( Agency_SSO_Config::issuer_as_written() ); ?>" placeholder="https://sso.agency.example" required <?php echo $fixed ? 'readonly' : ''; ?>>
				<?php submit_button( __( 'Connect', 'agency-sso-connector' ), 'primary', 'submit', false, array( 'id' => 'agency-sso-connect' ) ); ?>
			</form>
			<h3><?php esc_html_e( 'Connect with a code', 'agency-sso-connector' ); ?></h3>
			<p><?php esc_html_e( 'Or paste a connection code the dashboard made for this site\'s URL.', 'agency-sso-connector' ); ?></p>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<?php self::form_fields( 'agency_sso_connect_code' ); ?>
				<label for="agency-sso-connect-code"><?php esc_html_e( 'Connection code', 'agency-sso-connector' ); ?></label>
				<input type="text" class="regular-text code" id="agency-sso-connect-code" name="code" autocomplete="off" spellcheck="false" placeholder="asso1..." required>
				<?php submit_button( __( 'Connect with the code', 'agency-sso-connector' ), 'secondary', 'submit', false, array( 'id' => 'agency-sso-connect-with-code' ) ); ?>
			</form>
			<?php endif; ?>
		<?php endif; ?>
		<?php
	}

	/**
	 * The network's page: each site's connection (each connects on its own page).
	 */
	private static function render_network_sites(): void {
		$sites = get_sites( array( 'number' => 100 ) );
		?>
		<h2><?php esc_html_e( 'Sites and their connection', 'agency-sso-connector' ); ?></h2>
		<p><?php esc_html_e( 'Each site of the network connects to the dashboard on its own settings page, to the dashboard named below.', 'agency-sso-connector' ); ?></p>
		<table class="widefat striped" id="agency-sso-network-sites">
			<thead><tr><th><?php esc_html_e( 'Site', 'agency-sso-connector' ); ?></th><th><?php esc_html_e( 'Connection', 'agency-sso-connector' ); ?></th></tr></thead>
			<tbody>
			<?php foreach ( $sites as $site ) : ?>
				<?php
				switch_to_blog( (int) $site->blog_id );
				$record = Agency_SSO_Connect::connection();
				$url    = Agency_SSO_Config::audience();
				$page   = self::url();
				restore_current_blog();
				?>
				<tr>
					<td><a href="<?php echo esc_url( $page ); ?>"><?php echo esc_html( $url ); ?></a></td>
					<td>
						<?php
						echo esc_html(
							null === $record
								? __( 'Not connected', 'agency-sso-connector' )
								/* translators: 1: the dashboard's address, 2: date and time */
								: sprintf( __( 'Connected to %1$s since %2$s', 'agency-sso-connector' ), $record['issuer'], wp_date( 'Y-m-d H:i:s', $record['connected_at'] ) )
						);
						?>
					</td>
				</tr>
			<?php endforeach; ?>
			</tbody>
		</table>
		<?php
	}

	/**
	 * The linked accounts (of this site, or of the whole network on its
	 * page), and the form that links an existing one for those who may.
	 *
	 * @param string $issuer  The configured issuer.
	 * @param bool   $network The network's page.
	 */
	private static function render_links( string $issuer, bool $network ): void {
		$may_link = current_user_can( Agency_SSO_Config::users_capability() );
		$scope    = $network ? array( 'blog_id' => 0 ) : array();
		$linked   = get_users(
			array_merge(
				$scope,
				array(
					'meta_key'     => Agency_SSO_Users::META_SUBJECT, // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_key -- an admin page.
					'meta_compare' => 'EXISTS',
					'number'       => 200,
				)
			)
		);
		?>
		<table class="widefat striped" id="agency-sso-linked">
			<thead><tr><th><?php esc_html_e( 'Account', 'agency-sso-connector' ); ?></th><th><?php esc_html_e( 'Dashboard person', 'agency-sso-connector' ); ?></th><th></th></tr></thead>
			<tbody>
			<?php foreach ( $linked as $user ) : ?>
				<tr>
					<td><?php echo esc_html( $user->user_login ); ?></td>
					<td><code><?php echo esc_html( (string) get_user_meta( $user->ID, Agency_SSO_Users::META_SUBJECT, true ) ); ?></code></td>
					<td>
						<?php if ( $may_link && ( $network || ! is_super_admin( $user->ID ) ) ) : ?>
						<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
							<?php self::form_fields( 'agency_sso_unlink' ); ?>
							<input type="hidden" name="user_id" value="<?php echo esc_attr( (string) $user->ID ); ?>">
							<?php submit_button( __( 'Unlink', 'agency-sso-connector' ), 'small', 'submit', false ); ?>
						</form>
						<?php endif; ?>
					</td>
				</tr>
			<?php endforeach; ?>
			</tbody>
		</table>
		<?php if ( '' !== $issuer && ! $may_link ) : ?>
			<p id="agency-sso-link-note"><?php esc_html_e( 'On a network, accounts are the network\'s: a network administrator links an existing account to a dashboard person.', 'agency-sso-connector' ); ?></p>
		<?php elseif ( '' !== $issuer ) : ?>
			<h3><?php esc_html_e( 'Link an existing account', 'agency-sso-connector' ); ?></h3>
			<p><?php esc_html_e( 'An account that already exists here (an administrator, say) is never taken over by a sign-in from the dashboard. Link it to the dashboard person it belongs to:', 'agency-sso-connector' ); ?></p>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<?php self::form_fields( 'agency_sso_link' ); ?>
				<?php
				wp_dropdown_users(
					array_merge(
						$scope,
						array(
							'name'    => 'user_id',
							'id'      => 'agency-sso-link-user',
							// A super admin's account opens every site: linked only from the network's page.
							'exclude' => $network || ! is_multisite() ? array() : self::super_admin_ids(),
						)
					)
				);
				?>
				<input type="email" name="email" id="agency-sso-link-email" placeholder="<?php esc_attr_e( 'their e-mail in the dashboard', 'agency-sso-connector' ); ?>" required>
				<?php submit_button( __( 'Link', 'agency-sso-connector' ), 'secondary', 'submit', false ); ?>
			</form>
		<?php endif; ?>
		<?php
	}

	/**
	 * The ids of the network's super admins.
	 *
	 * @return int[]
	 */
	private static function super_admin_ids(): array {
		$ids = array();
		foreach ( get_super_admins() as $login ) {
			$user = get_user_by( 'login', $login );
			if ( $user instanceof WP_User ) {
				$ids[] = $user->ID;
			}
		}
		return $ids;
	}
}
