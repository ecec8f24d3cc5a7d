<?php
/**
 * Settings → Agency SSO: the issuer (read-only when wp-config.php sets it),
 * this site's URL for the dashboard, the key set last fetched, a "test the
 * connection" button, the password rule, break-glass logins, and linking an
 * existing account to a dashboard person.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * The settings page and its actions (each behind a nonce and manage_options).
 */
final class Agency_SSO_Admin {

	const PAGE = 'agency-sso-connector';

	/**
	 * Hook into WordPress' admin.
	 */
	public static function register(): void {
		add_action( 'admin_menu', array( self::class, 'menu' ) );
		add_action( 'admin_post_agency_sso_save', array( self::class, 'save' ) );
		add_action( 'admin_post_agency_sso_test', array( self::class, 'test_connection' ) );
		add_action( 'admin_post_agency_sso_link', array( self::class, 'link' ) );
		add_action( 'admin_post_agency_sso_unlink', array( self::class, 'unlink' ) );
		add_action( 'admin_notices', array( self::class, 'not_configured_notice' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( AGENCY_SSO_CONNECTOR_FILE ), array( self::class, 'action_links' ) );
	}

	/**
	 * The menu entry.
	 */
	public static function menu(): void {
		add_options_page( __( 'Agency SSO', 'agency-sso-connector' ), __( 'Agency SSO', 'agency-sso-connector' ), 'manage_options', self::PAGE, array( self::class, 'render' ) );
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
	 * The settings page's URL, with optional query arguments.
	 *
	 * @param array $args Query arguments.
	 */
	private static function url( array $args = array() ): string {
		return add_query_arg( array_merge( array( 'page' => self::PAGE ), $args ), admin_url( 'options-general.php' ) );
	}

	/**
	 * Until an issuer is set, say so to administrators.
	 */
	public static function not_configured_notice(): void {
		if ( ! current_user_can( 'manage_options' ) || '' !== Agency_SSO_Config::issuer() ) {
			return;
		}
		echo '<div class="notice notice-warning"><p>' . esc_html__( 'agency-sso connector does nothing until it knows your dashboard. Add this line to wp-config.php:', 'agency-sso-connector' )
			. ' <code>define( \'AGENCY_SSO_ISSUER\', \'https://sso.agency.example\' );</code> '
			. '<a href="' . esc_url( self::url() ) . '">' . esc_html__( 'Settings', 'agency-sso-connector' ) . '</a></p></div>';
	}

	/**
	 * Stop unless the request comes from an administrator with a valid nonce.
	 *
	 * @param string $action The nonce action.
	 */
	private static function guard( string $action ): void {
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'You are not allowed to change these settings.', 'agency-sso-connector' ), '', array( 'response' => 403 ) );
		}
		check_admin_referer( $action );
	}

	/**
	 * Back to the page with a message.
	 *
	 * @param string $kind    updated or error.
	 * @param string $message The message.
	 */
	private static function back( string $kind, string $message ): void {
		set_transient( 'agency_sso_notice_' . get_current_user_id(), array( $kind, $message ), 60 );
		wp_safe_redirect( self::url() );
		exit;
	}

	/**
	 * Save the issuer (unless wp-config.php sets it), the password rule and break-glass logins.
	 */
	public static function save(): void {
		self::guard( 'agency_sso_save' );
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- checked in guard().
		if ( ! Agency_SSO_Config::issuer_is_constant() ) {
			$issuer  = isset( $_POST['issuer'] ) ? rtrim( trim( sanitize_text_field( wp_unslash( $_POST['issuer'] ) ) ), '/' ) : '';
			$problem = '' === $issuer ? null : Agency_SSO_Config::issuer_problem( $issuer );
			if ( null !== $problem ) {
				self::back( 'error', $problem );
			}
			update_option( Agency_SSO_Config::OPTION_ISSUER, $issuer );
		}
		update_option( Agency_SSO_Config::OPTION_BLOCK_PASSWORDS, empty( $_POST['block_passwords'] ) ? '0' : '1' );
		if ( ! Agency_SSO_Config::break_glass_is_constant() ) {
			$logins = isset( $_POST['break_glass'] ) ? sanitize_textarea_field( wp_unslash( $_POST['break_glass'] ) ) : '';
			update_option( Agency_SSO_Config::OPTION_BREAK_GLASS, $logins );
		}
		// phpcs:enable
		self::back( 'updated', __( 'Settings saved.', 'agency-sso-connector' ) );
	}

	/**
	 * Fetch discovery and the key set now and say what happened.
	 */
	public static function test_connection(): void {
		self::guard( 'agency_sso_test' );
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
		self::guard( 'agency_sso_link' );
		$issuer = Agency_SSO_Config::issuer();
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- checked in guard().
		$user_id = isset( $_POST['user_id'] ) ? absint( $_POST['user_id'] ) : 0;
		$email   = isset( $_POST['email'] ) ? strtolower( sanitize_email( wp_unslash( $_POST['email'] ) ) ) : '';
		// phpcs:enable
		$user = get_user_by( 'id', $user_id );
		if ( '' === $issuer || ! $user instanceof WP_User || ! is_email( $email ) ) {
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
		self::guard( 'agency_sso_unlink' );
		$user_id = isset( $_POST['user_id'] ) ? absint( $_POST['user_id'] ) : 0; // phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked in guard().
		delete_user_meta( $user_id, Agency_SSO_Users::META_SUBJECT );
		self::back( 'updated', __( 'The account is no longer linked to the dashboard.', 'agency-sso-connector' ) );
	}

	/**
	 * The page.
	 */
	public static function render(): void {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$notice = get_transient( 'agency_sso_notice_' . get_current_user_id() );
		delete_transient( 'agency_sso_notice_' . get_current_user_id() );
		$issuer  = Agency_SSO_Config::issuer();
		$written = Agency_SSO_Config::issuer_as_written();
		$set     = '' === $issuer ? null : ( Agency_SSO_Keys::cached( $issuer ) ?? Agency_SSO_Keys::last_good( $issuer ) );
		$result  = get_option( Agency_SSO_Keys::LAST_RESULT );
		?>
		<div class="wrap" id="agency-sso-settings">
			<h1><?php esc_html_e( 'Agency SSO', 'agency-sso-connector' ); ?></h1>
			<?php if ( is_array( $notice ) ) : ?>
				<div class="notice notice-<?php echo 'error' === $notice[0] ? 'error' : 'success'; ?>" id="agency-sso-notice"><p><?php echo esc_html( $notice[1] ); ?></p></div>
			<?php endif; ?>

			<h2><?php esc_html_e( 'The dashboard', 'agency-sso-connector' ); ?></h2>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<input type="hidden" name="action" value="agency_sso_save">
				<?php wp_nonce_field( 'agency_sso_save' ); ?>
				<table class="form-table" role="presentation">
					<tr>
						<th scope="row"><label for="agency-sso-issuer"><?php esc_html_e( 'Dashboard address (issuer)', 'agency-sso-connector' ); ?></label></th>
						<td>
							<?php if ( Agency_SSO_Config::issuer_is_constant() ) : ?>
								<code id="agency-sso-issuer"><?php echo esc_html( $written ); ?></code>
								<p class="description"><?php esc_html_e( 'Set by AGENCY_SSO_ISSUER in wp-config.php.', 'agency-sso-connector' ); ?></p>
							<?php else : ?>
								<input type="url" class="regular-text" id="agency-sso-issuer" name="issuer" value="<?php echo esc_attr( $written ); ?>" placeholder="https://sso.agency.example">
								<p class="description"><?php esc_html_e( 'Or in wp-config.php:', 'agency-sso-connector' ); ?> <code>define( 'AGENCY_SSO_ISSUER', 'https://sso.agency.example' );</code></p>
							<?php endif; ?>
							<?php if ( '' !== $written && '' === $issuer ) : ?>
								<p class="notice notice-error inline"><?php echo esc_html( (string) Agency_SSO_Config::issuer_problem( rtrim( trim( $written ), '/' ) ) ); ?></p>
							<?php endif; ?>
						</td>
					</tr>
					<tr>
						<th scope="row"><?php esc_html_e( 'This site\'s URL', 'agency-sso-connector' ); ?></th>
						<td><code id="agency-sso-audience"><?php echo esc_html( Agency_SSO_Config::audience() ); ?></code>
							<p class="description"><?php esc_html_e( 'Add the site in the dashboard with exactly this URL and the profile "connector".', 'agency-sso-connector' ); ?></p></td>
					</tr>
					<tr>
						<th scope="row"><?php esc_html_e( 'Password sign-in', 'agency-sso-connector' ); ?></th>
						<td><label><input type="checkbox" name="block_passwords" value="1" <?php checked( Agency_SSO_Config::block_passwords() ); ?>>
							<?php esc_html_e( 'Accounts linked to the dashboard sign in only through it', 'agency-sso-connector' ); ?></label></td>
					</tr>
					<tr>
						<th scope="row"><label for="agency-sso-break-glass"><?php esc_html_e( 'Break-glass logins', 'agency-sso-connector' ); ?></label></th>
						<td>
							<?php if ( Agency_SSO_Config::break_glass_is_constant() ) : ?>
								<code><?php echo esc_html( implode( ', ', Agency_SSO_Config::break_glass_logins() ) ); ?></code>
								<p class="description"><?php esc_html_e( 'Set by AGENCY_SSO_BREAK_GLASS in wp-config.php.', 'agency-sso-connector' ); ?></p>
							<?php else : ?>
								<textarea id="agency-sso-break-glass" name="break_glass" rows="2" class="regular-text"><?php echo esc_textarea( implode( ', ', Agency_SSO_Config::break_glass_logins() ) ); ?></textarea>
							<?php endif; ?>
							<p class="description"><?php esc_html_e( 'These logins can always sign in with their password, so the site is not locked out when the dashboard is down.', 'agency-sso-connector' ); ?></p>
						</td>
					</tr>
				</table>
				<?php submit_button( __( 'Save', 'agency-sso-connector' ) ); ?>
			</form>

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
				<input type="hidden" name="action" value="agency_sso_test">
				<?php wp_nonce_field( 'agency_sso_test' ); ?>
				<?php submit_button( __( 'Test the connection', 'agency-sso-connector' ), 'secondary', 'submit', false ); ?>
			</form>

			<h2><?php esc_html_e( 'Accounts linked to the dashboard', 'agency-sso-connector' ); ?></h2>
			<?php self::render_links( $issuer ); ?>
		</div>
		<?php
	}

	/**
	 * The linked accounts, and the form that links an existing one.
	 *
	 * @param string $issuer The configured issuer.
	 */
	private static function render_links( string $issuer ): void {
		$linked = get_users(
			array(
				'meta_key'     => Agency_SSO_Users::META_SUBJECT, // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_key -- an admin page.
				'meta_compare' => 'EXISTS',
				'number'       => 200,
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
						<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
							<input type="hidden" name="action" value="agency_sso_unlink">
							<input type="hidden" name="user_id" value="<?php echo esc_attr( (string) $user->ID ); ?>">
							<?php wp_nonce_field( 'agency_sso_unlink' ); ?>
							<?php submit_button( __( 'Unlink', 'agency-sso-connector' ), 'small', 'submit', false ); ?>
						</form>
					</td>
				</tr>
			<?php endforeach; ?>
			</tbody>
		</table>
		<?php if ( '' !== $issuer ) : ?>
			<h3><?php esc_html_e( 'Link an existing account', 'agency-sso-connector' ); ?></h3>
			<p><?php esc_html_e( 'An account that already exists here (an administrator, say) is never taken over by a sign-in from the dashboard. Link it to the dashboard person it belongs to:', 'agency-sso-connector' ); ?></p>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<input type="hidden" name="action" value="agency_sso_link">
				<?php wp_nonce_field( 'agency_sso_link' ); ?>
				<?php
				wp_dropdown_users(
					array(
						'name' => 'user_id',
						'id'   => 'agency-sso-link-user',
					)
				);
				?>
				<input type="email" name="email" id="agency-sso-link-email" placeholder="<?php esc_attr_e( 'their e-mail in the dashboard', 'agency-sso-connector' ); ?>" required>
				<?php submit_button( __( 'Link', 'agency-sso-connector' ), 'secondary', 'submit', false ); ?>
			</form>
		<?php endif; ?>
		<?php
	}
}
