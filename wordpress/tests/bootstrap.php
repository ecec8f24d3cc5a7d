<?php
/**
 * PHPUnit bootstrap: loads the plugin's pure-PHP classes, without WordPress.
 *
 * @package Agency_SSO_Connector
 */

error_reporting( E_ALL );

require_once dirname( __DIR__ ) . '/agency-sso-connector/includes/class-agency-sso-error.php';
require_once dirname( __DIR__ ) . '/agency-sso-connector/includes/class-agency-sso-jwt.php';
require_once dirname( __DIR__ ) . '/agency-sso-connector/includes/class-agency-sso-logout-token.php';
require_once dirname( __DIR__ ) . '/agency-sso-connector/includes/class-agency-sso-site-message.php';
require_once dirname( __DIR__ ) . '/agency-sso-connector/includes/class-agency-sso-update-info.php';
require_once __DIR__ . '/class-agency-sso-test-case.php';
