<?php
/**
 * The connector updates itself from the dashboard it is connected to: the
 * dashboard is its update server. It publishes the latest connector at
 * `GET {issuer}/connector/update.json` (version, requirements, the
 * package's URL on the dashboard and its SHA-256 digest, a changelog) and
 * the package (the plugin's folder, zipped) at that URL.
 *
 * WordPress (6.1) learns of the update in two ways, both answered from the
 * same metadata:
 *  - the plugin's `Update URI` header (a fixed address on the reserved
 *    host agency-sso.invalid: the real one is the configured issuer) keeps
 *    WordPress.org from answering for it and makes wp_update_plugins() ask
 *    the `update_plugins_agency-sso.invalid` filter; but WordPress asks it
 *    only after api.wordpress.org answered, so
 *  - `pre_set_site_transient_update_plugins` puts the same answer in the
 *    update_plugins site transient each time it is stored: a site that
 *    cannot reach WordPress.org still sees the update.
 * A newer version goes in the transient's `response` (offered), an equal
 * or older one in its `no_update` (never a downgrade).
 *
 * The metadata is cached (the `agency_sso_update_info` site transient):
 * an answer for an hour, a failure for ten minutes. It is fetched again
 * sooner when an administrator asks WordPress to check again
 * (update-core.php?force-check=1), and always just before the package is
 * downloaded, whose digest must be the one the dashboard publishes then.
 *
 * WordPress' own download (download_url(), which refuses a dashboard on
 * this machine at a non-standard port) is replaced for this plugin's
 * package by `upgrader_pre_download`: the package is fetched from the
 * dashboard's address only, at most MAX_PACKAGE_BYTES, and installed only
 * when its SHA-256 digest is the published one. Updating plugins is a
 * super admin's on a network, whose update transient and issuer are the
 * network's: nothing here depends on the sub-site.
 *
 * Automatic updates: WordPress starts them (`wp_maybe_auto_update`) only
 * from its core version check, and only when api.wordpress.org answered,
 * so a site that cannot reach WordPress.org would never take the
 * connector's update by itself. The plugin therefore runs its own check
 * twice a day from WP-Cron (the main site's, on a network), and at cron's
 * next run once auto-updates are turned on for it: when the
 * dashboard offers a newer connector and the site's administrators turned
 * auto-updates on for it (Plugins → Enable auto-updates), it is installed
 * through WordPress' own automatic updater, which keeps every rule an
 * administrator set (the `auto_update_plugin` filter, AUTOMATIC_UPDATER_DISABLED,
 * file ownership, version control checkouts, the PHP version required) and
 * its lock, so it never runs beside WordPress' own run.
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

/**
 * The update check, the "View details" dialog and the package's download.
 */
final class Agency_SSO_Updates {

	/** The plugin's `Update URI` header: fixed, on a host that is never WordPress.org's. */
	const UPDATE_URI = 'https://agency-sso.invalid/agency-sso-connector';

	/** The dashboard's metadata, relative to the issuer. */
	const INFO_PATH = '/connector/update.json';

	/** Site transient: `{issuer, checked_at, info|null, code, message}`; its age by the plugin's clock, as the key cache's. */
	const CACHE = 'agency_sso_update_info';

	/** How long an answer is kept, seconds. */
	const CACHE_TTL = HOUR_IN_SECONDS;

	/** How long a failure is kept (a dashboard that is down is not asked on every check), seconds. */
	const FAILURE_TTL = 10 * MINUTE_IN_SECONDS;

	/** The most of the metadata read, bytes. */
	const MAX_INFO_BYTES = 65536;

	/** The largest package downloaded, bytes. */
	const MAX_PACKAGE_BYTES = 10 * 1024 * 1024;

	/** How long the metadata may take, seconds. */
	const INFO_TIMEOUT = 10;

	/** How long the package may take, seconds. */
	const PACKAGE_TIMEOUT = 60;

	/** The WP-Cron event of the plugin's own automatic update. */
	const AUTO_UPDATE_HOOK = 'agency_sso_auto_update';

	/**
	 * Whether this request already had the metadata (a check an
	 * administrator forced asks the dashboard once, not at every use).
	 *
	 * @var bool
	 */
	private static $checked_this_request = false;

	/**
	 * Hook into WordPress' update check, its plugin information dialog and its upgrader.
	 */
	public static function register(): void {
		$host = wp_parse_url( self::UPDATE_URI, PHP_URL_HOST );
		add_filter( "update_plugins_{$host}", array( __CLASS__, 'filter_update_uri' ), 10, 3 );
		add_filter( 'pre_set_site_transient_update_plugins', array( __CLASS__, 'filter_transient' ) );
		add_filter( 'plugins_api', array( __CLASS__, 'filter_plugins_api' ), 10, 3 );
		add_filter( 'upgrader_pre_download', array( __CLASS__, 'filter_pre_download' ), 10, 4 );
		add_action( self::AUTO_UPDATE_HOOK, array( __CLASS__, 'auto_update' ) );
		add_action( 'init', array( __CLASS__, 'schedule' ) );
		add_action( 'add_site_option_auto_update_plugins', array( __CLASS__, 'auto_updates_added' ), 10, 2 );
		add_action( 'update_site_option_auto_update_plugins', array( __CLASS__, 'auto_updates_changed' ), 10, 3 );
	}

	/**
	 * Auto-updates turned on for the first plugin of the site.
	 *
	 * @param string $option The option's name.
	 * @param mixed  $value  The plugins with auto-updates on.
	 */
	public static function auto_updates_added( $option, $value ): void {
		self::auto_updates_changed( $option, $value, array() );
	}

	/**
	 * Auto-updates turned on for the connector: the automatic update runs
	 * at WP-Cron's next run, not up to twelve hours later.
	 *
	 * @param string $option    The option's name.
	 * @param mixed  $value     The plugins with auto-updates on.
	 * @param mixed  $old_value Those before.
	 */
	public static function auto_updates_changed( $option, $value, $old_value ): void {
		$file = plugin_basename( AGENCY_SSO_CONNECTOR_FILE );
		if ( ! is_main_site() || ! in_array( $file, (array) $value, true ) || in_array( $file, (array) $old_value, true ) ) {
			return;
		}
		wp_schedule_single_event( time(), self::AUTO_UPDATE_HOOK );
	}

	/**
	 * The automatic update's event, twice a day, on the main site (plugin
	 * updates are the network's): scheduled when missing, first at once.
	 */
	public static function schedule(): void {
		if ( wp_installing() || ! is_main_site() || wp_next_scheduled( self::AUTO_UPDATE_HOOK ) ) {
			return;
		}
		wp_schedule_event( time(), 'twicedaily', self::AUTO_UPDATE_HOOK );
	}

	/**
	 * The event removed (the plugin deactivated).
	 */
	public static function unschedule(): void {
		wp_clear_scheduled_hook( self::AUTO_UPDATE_HOOK );
	}

	/**
	 * The connector updated from the dashboard, unattended, when the
	 * dashboard offers a newer version and auto-updates are on for it:
	 * the same upgrade as WordPress' own automatic updates (its automatic
	 * updater, under its `auto_updater` lock), whether or not WordPress.org
	 * can be reached. Runs from WP-Cron only (there WordPress keeps the
	 * plugin active while it is replaced).
	 *
	 * @return bool|WP_Error|null The upgrader's result; null when nothing was tried.
	 */
	public static function auto_update() {
		if ( ! wp_doing_cron() || ! is_main_site() ) {
			return null;
		}
		$file = self::plugin_file();
		if ( '' === $file || ! in_array( $file, (array) get_site_option( 'auto_update_plugins', array() ), true ) ) {
			return null;
		}
		require_once ABSPATH . 'wp-admin/includes/admin.php';
		require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';
		$updater = new WP_Automatic_Updater();
		if ( $updater->is_disabled() ) {
			return null;
		}
		// WordPress' own check first (it stores the offer, see filter_transient()).
		wp_update_plugins();
		$info = self::info();
		if ( null === $info || ! Agency_SSO_Update_Info::is_newer( $info['version'], self::installed_version( $file ) ) ) {
			return null;
		}
		if ( ! WP_Upgrader::create_lock( 'auto_updater' ) ) {
			return null;
		}
		try {
			$result = $updater->update( 'plugin', self::entry( $info, $file ) );
		} finally {
			WP_Upgrader::release_lock( 'auto_updater' );
			wp_clean_plugins_cache();
		}
		return $result;
	}

	/**
	 * The answer to WordPress' `update_plugins_{hostname}` filter (run
	 * after WordPress.org answered): this plugin's entry, which WordPress
	 * files as an update when its version is newer, else as no update.
	 *
	 * @param array|false $update      An answer already given, or false.
	 * @param array       $plugin_data The plugin's headers.
	 * @param string      $plugin_file The plugin's file, relative to the plugins folder.
	 * @return array|false
	 */
	public static function filter_update_uri( $update, $plugin_data, $plugin_file ) {
		if ( false !== $update || ! is_array( $plugin_data ) || self::UPDATE_URI !== ( $plugin_data['UpdateURI'] ?? '' ) ) {
			return $update;
		}
		$info = self::info();
		if ( null === $info ) {
			return $update;
		}
		return (array) self::entry( $info, (string) $plugin_file );
	}

	/**
	 * The update_plugins site transient as it is stored: this plugin in
	 * its `response` when the dashboard offers a newer version, else in its
	 * `no_update`; when the dashboard cannot say (none configured, down, no
	 * package, an answer that does not check), no offer.
	 *
	 * @param mixed $transient The value being stored.
	 * @return mixed
	 */
	public static function filter_transient( $transient ) {
		if ( ! is_object( $transient ) ) {
			return $transient;
		}
		$file = self::plugin_file();
		if ( '' === $file ) {
			return $transient;
		}
		$response  = isset( $transient->response ) && is_array( $transient->response ) ? $transient->response : array();
		$no_update = isset( $transient->no_update ) && is_array( $transient->no_update ) ? $transient->no_update : array();
		unset( $response[ $file ] );
		$info = self::info();
		if ( null !== $info ) {
			unset( $no_update[ $file ] );
			$entry = self::entry( $info, $file );
			if ( Agency_SSO_Update_Info::is_newer( $info['version'], self::installed_version( $file ) ) ) {
				$response[ $file ] = $entry;
			} else {
				$no_update[ $file ] = $entry;
			}
		}
		$transient->response  = $response;
		$transient->no_update = $no_update;
		return $transient;
	}

	/**
	 * The "View details" dialog (plugin-install.php?tab=plugin-information)
	 * for this plugin, from the dashboard's metadata: WordPress.org knows
	 * nothing of it.
	 *
	 * @param false|object|array $result An answer already given, or false.
	 * @param string             $action The plugins_api action.
	 * @param object             $args   Its arguments (slug).
	 * @return false|object|array|WP_Error
	 */
	public static function filter_plugins_api( $result, $action, $args ) {
		if ( false !== $result || 'plugin_information' !== $action || ! is_object( $args ) || Agency_SSO_Update_Info::SLUG !== ( $args->slug ?? '' ) ) {
			return $result;
		}
		$info = self::info();
		if ( null === $info ) {
			return new WP_Error( 'plugins_api_failed', self::unavailable_message() );
		}
		$issuer = Agency_SSO_Config::issuer();
		return (object) array(
			'name'          => $info['name'],
			'slug'          => $info['slug'],
			'version'       => $info['version'],
			'author'        => 'agency-sso',
			'homepage'      => $issuer,
			'requires'      => $info['requires'],
			'tested'        => self::tested( $info['tested'] ),
			'requires_php'  => $info['requires_php'],
			'download_link' => $info['package'],
			'sections'      => array(
				'description' => '<p>' . esc_html(
					sprintf(
						/* translators: %s: the dashboard's address */
						__( 'Lets your agency\'s staff open this site already signed in from the agency-sso dashboard. This version is published by the dashboard this site is connected to, %s.', 'agency-sso-connector' ),
						$issuer
					)
				) . '</p>',
				'changelog'   => '' === trim( $info['changelog'] )
					? '<p>' . esc_html__( 'The dashboard published no changelog.', 'agency-sso-connector' ) . '</p>'
					: Agency_SSO_Update_Info::changelog_html( $info['changelog'] ),
			),
			'banners'       => array(),
			'icons'         => array(),
		);
	}

	/**
	 * Download this plugin's package in WordPress' place and check it: the
	 * metadata is fetched again (its digest is the one the dashboard
	 * publishes now), the package must be its package URL, a newer version
	 * than the installed one, and its SHA-256 digest the published one;
	 * else nothing is installed. Any other package is WordPress' to fetch.
	 *
	 * @param false|string|WP_Error $reply      An answer already given, or false.
	 * @param string                $package    The package's URL.
	 * @param WP_Upgrader|null      $upgrader   The upgrader.
	 * @param array                 $hook_extra What is being upgraded (`plugin` for a plugin's update).
	 * @return false|string|WP_Error The downloaded file, an error, or $reply.
	 */
	public static function filter_pre_download( $reply, $package, $upgrader = null, $hook_extra = array() ) {
		if ( false !== $reply || ! is_string( $package ) ) {
			return $reply;
		}
		$issuer = Agency_SSO_Config::issuer();
		$file   = self::plugin_file();
		$cached = self::cached( $issuer );
		// An update of this plugin (whatever its package), or the package the dashboard published.
		$ours = ( '' !== $file && is_array( $hook_extra ) && ( $hook_extra['plugin'] ?? '' ) === $file )
			|| ( null !== $cached && null !== $cached['info'] && $package === $cached['info']['package'] );
		if ( ! $ours ) {
			return $reply;
		}
		if ( '' === $issuer ) {
			return new WP_Error( 'agency_sso_no_dashboard', __( 'This site is not connected to an agency dashboard, which publishes the connector\'s updates: nothing was installed.', 'agency-sso-connector' ) );
		}
		$result = self::refresh( $issuer );
		if ( null === $result['info'] ) {
			/* translators: %s: why the dashboard's update information is not at hand */
			return new WP_Error( 'agency_sso_update_unavailable', sprintf( __( 'The dashboard\'s update information could not be read (%s): nothing was installed.', 'agency-sso-connector' ), esc_html( $result['message'] ) ) );
		}
		$info = $result['info'];
		if ( $package !== $info['package'] ) {
			return new WP_Error( 'agency_sso_package_unknown', __( 'This package is not the one the dashboard publishes now: check for updates again. Nothing was installed.', 'agency-sso-connector' ) );
		}
		if ( '' !== $file && ! Agency_SSO_Update_Info::is_newer( $info['version'], self::installed_version( $file ) ) ) {
			return new WP_Error( 'agency_sso_no_update', __( 'The dashboard no longer offers a newer version of the connector than the installed one: nothing was installed.', 'agency-sso-connector' ) );
		}
		if ( $upgrader instanceof WP_Upgrader && isset( $upgrader->skin ) ) {
			$upgrader->skin->feedback( 'downloading_package', $package );
		}
		return self::download( $package, $info['sha256'] );
	}

	/**
	 * Fetch the package to a temporary file and check its digest.
	 *
	 * @param string $package The package's URL (on the dashboard's origin).
	 * @param string $sha256  The digest the dashboard published, lower-case hex.
	 * @return string|WP_Error The file, or why not (no file is left behind).
	 */
	private static function download( string $package, string $sha256 ) {
		if ( ! function_exists( 'wp_tempnam' ) ) {
			require_once ABSPATH . 'wp-admin/includes/file.php';
		}
		$tmp = wp_tempnam( $package );
		if ( ! $tmp ) {
			return new WP_Error( 'agency_sso_download_failed', __( 'Could not create a temporary file for the package: nothing was installed.', 'agency-sso-connector' ) );
		}
		$response = wp_remote_get(
			$package,
			array(
				'timeout'             => self::PACKAGE_TIMEOUT,
				'redirection'         => 0,
				'stream'              => true,
				'filename'            => $tmp,
				'limit_response_size' => self::MAX_PACKAGE_BYTES + 1,
				'user-agent'          => self::user_agent(),
			)
		);
		$error = null;
		if ( is_wp_error( $response ) ) {
			/* translators: 1: the package's URL, 2: the HTTP client's error */
			$error = new WP_Error( 'agency_sso_download_failed', sprintf( __( 'Could not download %1$s: %2$s. Nothing was installed.', 'agency-sso-connector' ), esc_html( $package ), esc_html( $response->get_error_message() ) ) );
		} elseif ( 200 !== (int) wp_remote_retrieve_response_code( $response ) ) {
			/* translators: 1: the package's URL, 2: an HTTP status code */
			$error = new WP_Error( 'agency_sso_download_failed', sprintf( __( '%1$s answered with HTTP status %2$d: nothing was installed.', 'agency-sso-connector' ), esc_html( $package ), (int) wp_remote_retrieve_response_code( $response ) ) );
		} else {
			clearstatcache( true, $tmp );
			$size = (int) @filesize( $tmp ); // phpcs:ignore WordPress.PHP.NoSilencedErrors.Discouraged -- a missing file is size 0.
			if ( $size > self::MAX_PACKAGE_BYTES ) {
				/* translators: %d: a number of MiB */
				$error = new WP_Error( 'agency_sso_download_failed', sprintf( __( 'The package is larger than %d MiB: nothing was installed.', 'agency-sso-connector' ), self::MAX_PACKAGE_BYTES / 1048576 ) );
			} else {
				$digest = (string) hash_file( 'sha256', $tmp );
				if ( ! hash_equals( $sha256, $digest ) ) {
					$error = new WP_Error( 'agency_sso_package_digest', __( 'The package downloaded from the dashboard does not match the SHA-256 digest the dashboard published for it: nothing was installed.', 'agency-sso-connector' ) );
				}
			}
		}
		if ( null !== $error ) {
			wp_delete_file( $tmp );
			return $error;
		}
		return $tmp;
	}

	/**
	 * The dashboard's metadata: the cached answer while it lasts, else
	 * fetched (and cached); null when there is none (no dashboard, a
	 * failure).
	 *
	 * @return array|null As Agency_SSO_Update_Info::parse() returns it.
	 */
	public static function info(): ?array {
		$issuer = Agency_SSO_Config::issuer();
		if ( '' === $issuer ) {
			return null;
		}
		$cached = null;
		if ( self::$checked_this_request || ! self::forced_check() ) {
			$cached = self::cached( $issuer );
		}
		self::$checked_this_request = true;
		return ( $cached ?? self::refresh( $issuer ) )['info'];
	}

	/**
	 * The cached outcome for this issuer while it lasts, or null.
	 *
	 * @param string $issuer The configured issuer.
	 * @return array|null `{issuer, checked_at, info|null, code, message}`.
	 */
	public static function cached( string $issuer ): ?array {
		if ( '' === $issuer ) {
			return null;
		}
		$cached = get_site_transient( self::CACHE );
		if ( ! is_array( $cached ) || ( $cached['issuer'] ?? '' ) !== $issuer || ! array_key_exists( 'info', $cached ) ) {
			return null;
		}
		$ttl = null === $cached['info'] ? self::FAILURE_TTL : self::CACHE_TTL;
		$age = Agency_SSO_Config::now() - (int) ( $cached['checked_at'] ?? 0 );
		return $age >= 0 && $age < $ttl ? $cached : null;
	}

	/**
	 * Ask the dashboard now and cache the outcome.
	 *
	 * @param string $issuer The configured issuer.
	 * @return array `{issuer, checked_at, info|null, code, message}`.
	 */
	public static function refresh( string $issuer ): array {
		$outcome = array(
			'issuer'     => $issuer,
			'checked_at' => Agency_SSO_Config::now(),
			'info'       => null,
			'code'       => '',
			'message'    => '',
		);
		try {
			$outcome['info'] = self::fetch( $issuer );
		} catch ( Agency_SSO_Error $e ) {
			$outcome['code']    = $e->get_error_code();
			$outcome['message'] = $e->getMessage();
		}
		set_site_transient( self::CACHE, $outcome, null === $outcome['info'] ? self::FAILURE_TTL : self::CACHE_TTL );
		return $outcome;
	}

	/**
	 * Forget the cached metadata (the next check asks the dashboard).
	 */
	public static function forget(): void {
		delete_site_transient( self::CACHE );
	}

	/**
	 * GET the metadata, without redirects, and check it.
	 *
	 * @param string $issuer The configured issuer.
	 * @throws Agency_SSO_Error When the dashboard cannot be reached, has no package, or its answer does not check.
	 */
	private static function fetch( string $issuer ): array {
		$url      = $issuer . self::INFO_PATH;
		$response = wp_remote_get(
			$url,
			array(
				'timeout'             => self::INFO_TIMEOUT,
				'redirection'         => 0,
				'limit_response_size' => self::MAX_INFO_BYTES,
				'headers'             => array( 'Accept' => 'application/json' ),
				'user-agent'          => self::user_agent(),
			)
		);
		if ( is_wp_error( $response ) ) {
			/* translators: 1: a URL, 2: the HTTP client's error */
			throw new Agency_SSO_Error( 'dashboard_unreachable', sprintf( __( 'Could not reach %1$s: %2$s', 'agency-sso-connector' ), $url, $response->get_error_message() ) );
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		$body   = (string) wp_remote_retrieve_body( $response );
		if ( 200 !== $status ) {
			throw Agency_SSO_Update_Info::refusal( $status, $body );
		}
		if ( strlen( $body ) >= self::MAX_INFO_BYTES ) {
			/* translators: 1: a URL, 2: a number of KiB */
			throw new Agency_SSO_Error( 'bad_update_info', sprintf( __( '%1$s answered with more than %2$d KiB: not update information.', 'agency-sso-connector' ), $url, self::MAX_INFO_BYTES / 1024 ) );
		}
		return Agency_SSO_Update_Info::parse( $body, $issuer );
	}

	/**
	 * Whether an administrator asked WordPress to check for updates again
	 * (Dashboard → Updates → Check again).
	 */
	private static function forced_check(): bool {
		global $pagenow;
		return is_admin() && 'update-core.php' === $pagenow && ! empty( $_GET['force-check'] ) // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- WordPress' own link, no change made.
			&& current_user_can( 'update_plugins' );
	}

	/**
	 * The entry of the update_plugins transient for this plugin.
	 *
	 * @param array  $info The dashboard's metadata.
	 * @param string $file The plugin's file, relative to the plugins folder.
	 */
	private static function entry( array $info, string $file ): object {
		return (object) array(
			'id'            => self::UPDATE_URI,
			'slug'          => $info['slug'],
			'plugin'        => $file,
			'version'       => $info['version'],
			'new_version'   => $info['version'],
			'url'           => Agency_SSO_Config::issuer(),
			'package'       => $info['package'],
			'requires'      => $info['requires'],
			'tested'        => self::tested( $info['tested'] ),
			'requires_php'  => $info['requires_php'],
			'icons'         => array(),
			'banners'       => array(),
			'banners_rtl'   => array(),
			'compatibility' => new stdClass(),
		);
	}

	/**
	 * The WordPress version the package was tested with, as WordPress.org
	 * reports a readme's "Tested up to": a branch (6.1) stands for all its
	 * releases, so on WordPress 6.1.9 it says 6.1.9 (else WordPress would
	 * warn that the update was not tested with this version).
	 *
	 * @param string $tested The dashboard's `tested`.
	 */
	private static function tested( string $tested ): string {
		$running = (string) preg_replace( '/[^0-9.].*$/', '', (string) get_bloginfo( 'version' ) );
		if ( 1 === preg_match( '/^\d+\.\d+$/', $tested ) && 0 === strpos( $running . '.', $tested . '.' ) ) {
			return $running;
		}
		return $tested;
	}

	/**
	 * This plugin's file among the installed plugins (relative to the
	 * plugins folder), found by its Update URI; '' when it is not installed
	 * as a plugin (a must-use copy is never updated by WordPress).
	 */
	public static function plugin_file(): string {
		if ( ! function_exists( 'get_plugins' ) ) {
			require_once ABSPATH . 'wp-admin/includes/plugin.php';
		}
		$basename = plugin_basename( AGENCY_SSO_CONNECTOR_FILE );
		$plugins  = get_plugins();
		if ( self::UPDATE_URI === ( $plugins[ $basename ]['UpdateURI'] ?? '' ) ) {
			return $basename;
		}
		foreach ( $plugins as $file => $data ) {
			if ( self::UPDATE_URI === ( $data['UpdateURI'] ?? '' ) ) {
				return (string) $file;
			}
		}
		return '';
	}

	/**
	 * The installed plugin's version, from its header.
	 *
	 * @param string $file The plugin's file, relative to the plugins folder.
	 */
	private static function installed_version( string $file ): string {
		$plugins = get_plugins();
		return (string) ( $plugins[ $file ]['Version'] ?? AGENCY_SSO_CONNECTOR_VERSION );
	}

	/**
	 * Why there is no update information, for a person.
	 */
	private static function unavailable_message(): string {
		$cached = self::cached( Agency_SSO_Config::issuer() );
		if ( null !== $cached && '' !== $cached['message'] ) {
			/* translators: %s: why */
			return sprintf( __( 'The dashboard\'s update information could not be read: %s', 'agency-sso-connector' ), $cached['message'] );
		}
		return __( 'This site is not connected to an agency dashboard, which publishes the connector\'s updates.', 'agency-sso-connector' );
	}

	/**
	 * The User-Agent of the requests to the dashboard.
	 */
	private static function user_agent(): string {
		return 'agency-sso-connector/' . AGENCY_SSO_CONNECTOR_VERSION . '; ' . Agency_SSO_Config::audience();
	}
}
