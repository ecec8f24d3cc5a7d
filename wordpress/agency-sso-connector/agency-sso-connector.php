<?php
/**
 * Plugin Name:       agency-sso connector
 * Description:       Lets your agency's staff open this site already signed in from the agency-sso dashboard. Connect the site under Settings → Agency SSO (with the dashboard's approval, or a connection code), or name the dashboard in wp-config.php: define( 'AGENCY_SSO_ISSUER', 'https://sso.agency.example' );
 * Version:           0.3.0
 * Requires at least: 6.1
 * Requires PHP:      8.1
 * Update URI:        https://agency-sso.invalid/agency-sso-connector
 * Author:            agency-sso
 * License:           MIT
 * Text Domain:       agency-sso-connector
 *
 * @package Agency_SSO_Connector
 */

defined( 'ABSPATH' ) || exit;

// Installed twice (a must-use copy and a plugin, say): the first one loaded serves.
if ( defined( 'AGENCY_SSO_CONNECTOR_VERSION' ) ) {
	return;
}
define( 'AGENCY_SSO_CONNECTOR_VERSION', '0.3.0' );
define( 'AGENCY_SSO_CONNECTOR_FILE', __FILE__ );

require_once __DIR__ . '/includes/class-agency-sso-error.php';
require_once __DIR__ . '/includes/class-agency-sso-jwt.php';
require_once __DIR__ . '/includes/class-agency-sso-logout-token.php';
require_once __DIR__ . '/includes/class-agency-sso-site-message.php';
require_once __DIR__ . '/includes/class-agency-sso-config.php';
require_once __DIR__ . '/includes/class-agency-sso-keys.php';
require_once __DIR__ . '/includes/class-agency-sso-replay.php';
require_once __DIR__ . '/includes/class-agency-sso-refusals.php';
require_once __DIR__ . '/includes/class-agency-sso-users.php';
require_once __DIR__ . '/includes/class-agency-sso-login.php';
require_once __DIR__ . '/includes/class-agency-sso-back-channel.php';
require_once __DIR__ . '/includes/class-agency-sso-connect.php';
require_once __DIR__ . '/includes/class-agency-sso-admin.php';
require_once __DIR__ . '/includes/class-agency-sso-update-info.php';
require_once __DIR__ . '/includes/class-agency-sso-updates.php';

register_activation_hook( __FILE__, array( 'Agency_SSO_Replay', 'install' ) );
register_deactivation_hook( __FILE__, array( 'Agency_SSO_Updates', 'unschedule' ) );

Agency_SSO_Login::register();
Agency_SSO_Back_Channel::register();
Agency_SSO_Admin::register();
// Updates come from the dashboard this site is connected to (see the class).
Agency_SSO_Updates::register();

if ( defined( 'WP_CLI' ) && WP_CLI ) {
	require_once __DIR__ . '/includes/class-agency-sso-cli.php';
	WP_CLI::add_command( 'agency-sso', 'Agency_SSO_CLI' );
}
