#!/usr/bin/env bash
# A real WordPress for the end-to-end tests (Debian's package, 6.1): a fresh
# copy and a fresh MariaDB database each run, sites served by PHP's own
# server on 127.0.0.1:$WP_PORT —
#   /      the connector plugin installed as a plugin (a link to the
#          repository's folder) and activated;
#   /blog  a sub-directory install with the plugin as a must-use plugin;
#   /fresh a sub-directory install without the plugin (a test uploads it);
#   /bare  the plugin installed and activated, no dashboard named at all
#          (no AGENCY_SSO_ISSUER): a site to connect in one step, from its
#          settings page or with connect.php (as `wp agency-sso connect`);
#   /net   a sub-directory multisite network, its sub-sites /net/team,
#          /net/shop and /net/labs with the plugin network-activated and the
#          issuer a network setting (router.php plays Apache's rewrites),
#          `teamadmin` administering /net/team only and `quinn-shop`
#          (quinn@agency.test) /net/shop only; /net/labs is added to the
#          dashboard by nobody (a test connects it);
#   /edge  a site whose address is https://127.0.0.1:$WP_TLS_PORT/edge,
#          reached through a proxy that ends TLS and forwards plain http
#          with X-Forwarded-Proto (tls-proxy.mjs), as hosting does;
#   /old   an older connector to update from the dashboard: a copy of the
#          plugin's folder (not a link: updating replaces the folder) that
#          says it is 0.2.9, activated; api.wordpress.org's plugin update
#          check answers "nothing for you" while <site dir>.wporg-up exists
#          and cannot be reached otherwise, and while <site dir>.tamper
#          exists a package downloaded there gets a byte more (its digest
#          then differs from the published one). update-check.php runs
#          WordPress' update check there, update-plugin.php its upgrader;
#   /auto  as /old, where WordPress' automatic updates may run (a test turns
#          them on for the connector and requests wp-cron.php, as a system
#          cron does), WordPress.org out of reach;
# all but /net and /bare with AGENCY_SSO_ISSUER naming the test dashboard
# ($WP_ISSUER). Everything is removed when the server stops.
set -euo pipefail
: "${WP_PORT:?}" "${WP_TLS_PORT:?}" "${WP_DIR:?}" "${WP_ISSUER:?}" "${WP_TEST_ADMIN_PASSWORD:?}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PLUGIN="$(cd "$HERE/../../wordpress/agency-sso-connector" && pwd)"
DB="agency_sso_wp_$(date +%s)_$$"
URL="http://127.0.0.1:$WP_PORT"

sql() { php -r '$m = new mysqli("127.0.0.1", "root", "", "", 3306); $m->query($argv[1]) or exit(1);' "$1"; }

PHP_PID=""
PROXY_PID=""
cleanup() {
  # PHP's server leaves its workers behind when only it is stopped.
  if [ -n "$PHP_PID" ]; then pkill -P "$PHP_PID" 2>/dev/null; kill "$PHP_PID" 2>/dev/null; fi
  if [ -n "$PROXY_PID" ]; then kill "$PROXY_PID" 2>/dev/null; fi
  sql "DROP DATABASE IF EXISTS \`$DB\`" || true
  rm -rf "$WP_DIR" "$WP_DIR".*
}
trap cleanup EXIT
trap 'exit 0' TERM INT

# A site: WordPress' files (without its 30 MB of translations), wp-config.php.
site() {
  local dir=$1 url=$2 prefix=$3
  cp -rL /usr/share/wordpress "$dir"
  rm -rf "$dir/wp-content/languages" "$dir/.htaccess"
  cat > "$dir/wp-config.php" <<PHP
<?php
define( 'DB_NAME', '$DB' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', '127.0.0.1:3306' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
\$table_prefix = '$prefix';
$(for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
    echo "define( '$k', '$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')' );"
  done)
define( 'WP_HOME', '$url' );
define( 'WP_SITEURL', '$url' );
// The one line a site needs.
define( 'AGENCY_SSO_ISSUER', '$WP_ISSUER' );
// Application passwords over plain http, as on a developer's machine.
define( 'WP_ENVIRONMENT_TYPE', 'local' );
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_DISPLAY', false );
define( 'WP_DEBUG_LOG', '$dir/debug.log' );
// No calls to wordpress.org from a closed network (they would only time out).
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'DISABLE_WP_CRON', true );
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
PHP
}

# The tests move the site's clock (as the plugin sees it) by writing seconds
# to $WP_DIR.clock, as they move the dashboard's; while <site dir>.offline
# exists the site cannot reach the dashboard (its key set fetches fail).
test_clock() {
  mkdir -p "$1/wp-content/mu-plugins"
  cat > "$1/wp-content/mu-plugins/agency-sso-test-clock.php" <<PHP
<?php
// End-to-end tests only: the connector checks tokens against this clock.
add_filter( 'agency_sso_now', function ( \$now ) {
	\$offset = @file_get_contents( '$WP_DIR.clock' );
	return \$now + (int) \$offset;
} );
add_filter( 'pre_http_request', function ( \$pre ) {
	return file_exists( '$1.offline' ) ? new WP_Error( 'http_request_failed', 'the test network is cut' ) : \$pre;
} );
PHP
}

# The tests read the messages a site received from the dashboard (each
# logout token, one per line, in <site dir>.inbox; each site message's
# token in <site dir>.site-inbox) to post them again themselves; while <site dir>.hold exists the site answers
# the dashboard's own requests 503, as a site that is down, without reading
# them.
test_inbox() {
  mkdir -p "$1/wp-content/mu-plugins"
  cat > "$1/wp-content/mu-plugins/agency-sso-test-inbox.php" <<PHP
<?php
// End-to-end tests only: keep what the dashboard sent, or hold it.
add_filter( 'rest_pre_dispatch', function ( \$result, \$server, \$request ) {
	if ( '/agency-sso/v1/back-channel' !== \$request->get_route() ) {
		return \$result;
	}
	\$from_dashboard = 0 === strpos( (string) \$request->get_header( 'user_agent' ), 'agency-sso/' );
	if ( ! \$from_dashboard ) {
		return \$result;
	}
	// Messages about a person in .inbox, site messages (connect, status) in .site-inbox.
	foreach ( array( 'logout_token' => 'inbox', 'site_token' => 'site-inbox' ) as \$field => \$file ) {
		if ( null !== \$request->get_param( \$field ) ) {
			file_put_contents( "$1.\$file", \$request->get_param( \$field ) . "\\n", FILE_APPEND | LOCK_EX );
		}
	}
	if ( file_exists( '$1.hold' ) ) {
		return new WP_REST_Response( array( 'error' => 'site_down' ), 503 );
	}
	return \$result;
}, 10, 3 );
PHP
}

# A site that updates the connector from the dashboard: WordPress.org's
# plugin update check answers "nothing for you" (200, no plugins) while
# <site dir>.wporg-up exists, and cannot be reached otherwise (WordPress
# then never asks the Update URI filter: the connector must offer its
# update all the same); while <site dir>.tamper exists, a package
# downloaded to a file gets one byte more once it arrived.
test_updates() {
  mkdir -p "$1/wp-content/mu-plugins"
  cat > "$1/wp-content/mu-plugins/agency-sso-test-updates.php" <<PHP
<?php
// End-to-end tests only: WordPress.org up or down, a package tampered with.
add_filter( 'pre_http_request', function ( \$pre, \$args, \$url ) {
	if ( false !== \$pre || ! preg_match( '#^https?://api\.wordpress\.org/plugins/update-check/#', \$url ) ) {
		return \$pre;
	}
	if ( ! file_exists( '$1.wporg-up' ) ) {
		return new WP_Error( 'http_request_failed', 'WordPress.org cannot be reached from the test network' );
	}
	return array(
		'headers'  => array( 'content-type' => 'application/json' ),
		'body'     => wp_json_encode( array( 'plugins' => array(), 'translations' => array(), 'no_update' => array() ) ),
		'response' => array( 'code' => 200, 'message' => 'OK' ),
		'cookies'  => array(),
		'filename' => null,
	);
}, 10, 3 );
add_filter( 'http_response', function ( \$response, \$args, \$url ) {
	if ( file_exists( '$1.tamper' ) && ! empty( \$args['stream'] ) && ! empty( \$args['filename'] ) && is_file( \$args['filename'] ) ) {
		file_put_contents( \$args['filename'], "\\0", FILE_APPEND );
	}
	return \$response;
}, 10, 3 );
PHP
}

rm -rf "$WP_DIR" "$WP_DIR".*
mkdir -p "$(dirname "$WP_DIR")"
sql "CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"

site "$WP_DIR" "$URL" wpa_
ln -s "$PLUGIN" "$WP_DIR/wp-content/plugins/agency-sso-connector"
php "$HERE/install.php" "$WP_DIR" "$URL" "Client Site" plugin
test_clock "$WP_DIR"
test_inbox "$WP_DIR"

site "$WP_DIR/blog" "$URL/blog" wpb_
mkdir -p "$WP_DIR/blog/wp-content/mu-plugins"
ln -s "$PLUGIN" "$WP_DIR/blog/wp-content/mu-plugins/agency-sso-connector"
cat > "$WP_DIR/blog/wp-content/mu-plugins/load-agency-sso-connector.php" <<'PHP'
<?php
// Must-use plugins are single files: this one loads the connector's folder.
require __DIR__ . '/agency-sso-connector/agency-sso-connector.php';
PHP
php "$HERE/install.php" "$WP_DIR/blog" "$URL/blog" "Client Blog" mu-plugin
test_clock "$WP_DIR/blog"
test_inbox "$WP_DIR/blog"
# The blog narrows the roles a token may give, as a site can with the filter.
cat > "$WP_DIR/blog/wp-content/mu-plugins/client-blog-roles.php" <<'PHP'
<?php
// Nobody becomes an administrator of the blog from the dashboard.
add_filter( 'agency_sso_allowed_roles', function ( $roles ) {
	return array_diff( $roles, array( 'administrator' ) );
} );
PHP

# /fresh: a WordPress with the one line in wp-config.php and no plugin yet,
# for the README's steps (upload the zip, activate, add the site, open it).
site "$WP_DIR/fresh" "$URL/fresh" wpc_
php "$HERE/install.php" "$WP_DIR/fresh" "$URL/fresh" "Fresh Client Site" none
test_clock "$WP_DIR/fresh"

# /bare: the plugin active and no dashboard named (no AGENCY_SSO_ISSUER line):
# connecting in one step names it.
site "$WP_DIR/bare" "$URL/bare" wpr_
sed -i -e "/^\/\/ The one line a site needs\./d" -e "/^define( 'AGENCY_SSO_ISSUER'/d" "$WP_DIR/bare/wp-config.php"
ln -s "$PLUGIN" "$WP_DIR/bare/wp-content/plugins/agency-sso-connector"
php "$HERE/install.php" "$WP_DIR/bare" "$URL/bare" "Client Bare Site" plugin
test_clock "$WP_DIR/bare"
test_inbox "$WP_DIR/bare"

# /net: a sub-directory multisite network; its sub-sites /net/team and
# /net/shop get the connector activated for the whole network. Installed as
# one site, made a network, then wp-config.php says so (in place of WP_HOME
# and WP_SITEURL, which would pin every sub-site to the network's address).
# Its issuer is the network's setting (as a network admin sets it in
# Network Admin → Settings → Agency SSO), not the constant.
site "$WP_DIR/net" "$URL/net" wpn_
ln -s "$PLUGIN" "$WP_DIR/net/wp-content/plugins/agency-sso-connector"
php "$HERE/install.php" "$WP_DIR/net" "$URL/net" "Client Network" network
sed -i -e "/^define( 'WP_HOME'/d" -e "/^define( 'AGENCY_SSO_ISSUER'/d" -e "s|^define( 'WP_SITEURL'.*|define( 'MULTISITE', true );\n\
define( 'SUBDOMAIN_INSTALL', false );\n\
define( 'DOMAIN_CURRENT_SITE', '127.0.0.1:$WP_PORT' );\n\
define( 'PATH_CURRENT_SITE', '/net/' );\n\
define( 'SITE_ID_CURRENT_SITE', 1 );\n\
define( 'BLOG_ID_CURRENT_SITE', 1 );|" "$WP_DIR/net/wp-config.php"
php "$HERE/network-site.php" "$WP_DIR/net" "127.0.0.1:$WP_PORT" team "Client Team Site" "$WP_ISSUER"
php "$HERE/network-site.php" "$WP_DIR/net" "127.0.0.1:$WP_PORT" shop "Client Shop Site" "$WP_ISSUER"
php "$HERE/network-site.php" "$WP_DIR/net" "127.0.0.1:$WP_PORT" labs "Client Labs Site" "$WP_ISSUER"
# A client's own administrators, each of one sub-site only.
php "$HERE/network-user.php" "$WP_DIR/net" "127.0.0.1:$WP_PORT" team teamadmin team-admin@client.test "$WP_TEST_ADMIN_PASSWORD"
php "$HERE/network-user.php" "$WP_DIR/net" "127.0.0.1:$WP_PORT" shop quinn-shop quinn@agency.test "$WP_TEST_ADMIN_PASSWORD"
test_clock "$WP_DIR/net"
test_inbox "$WP_DIR/net"

# The connector one version behind, as a copy the upgrader may replace
# (AGENCY_SSO_CONNECTOR_VERSION and the Version header both say 0.2.9).
old_connector() {
  local main="$1/wp-content/plugins/agency-sso-connector/agency-sso-connector.php"
  cp -r "$PLUGIN" "$1/wp-content/plugins/agency-sso-connector"
  sed -i -e "s/^\( \* Version: *\).*/\10.2.9/" \
    -e "s/^define( 'AGENCY_SSO_CONNECTOR_VERSION', '[^']*' );/define( 'AGENCY_SSO_CONNECTOR_VERSION', '0.2.9' );/" "$main"
  [ "$(grep -c -e '^ \* Version: *0\.2\.9$' -e "^define( 'AGENCY_SSO_CONNECTOR_VERSION', '0.2.9' );" "$main")" = 2 ] \
    || { echo "serve.sh: could not make the connector 0.2.9 in $1" >&2; exit 1; }
}

# /old: the connector one version behind.
site "$WP_DIR/old" "$URL/old" wpo_
old_connector "$WP_DIR/old"
php "$HERE/install.php" "$WP_DIR/old" "$URL/old" "Client Old Site" plugin
test_clock "$WP_DIR/old"
test_updates "$WP_DIR/old"

# /auto: the connector one version behind on a site where WordPress'
# automatic updates may run (no AUTOMATIC_UPDATER_DISABLED) and WordPress.org
# cannot be reached; WP-Cron runs when a test requests wp-cron.php, as a
# system cron does on hosting that sets DISABLE_WP_CRON.
site "$WP_DIR/auto" "$URL/auto" wpu_
sed -i -e "/^define( 'AUTOMATIC_UPDATER_DISABLED'/d" "$WP_DIR/auto/wp-config.php"
old_connector "$WP_DIR/auto"
php "$HERE/install.php" "$WP_DIR/auto" "$URL/auto" "Client Auto Site" plugin
test_clock "$WP_DIR/auto"
test_updates "$WP_DIR/auto"

# /edge: its address is https (WP_HOME and WP_SITEURL say so), but PHP sees
# plain http from the proxy in front, which says X-Forwarded-Proto: https
# (WordPress does not read it, so is_ssl() is false there). The proxy, not
# WordPress, keeps visitors on https: FORCE_SSL_ADMIN off, or wp-login.php
# would redirect to itself for ever.
site "$WP_DIR/edge" "https://127.0.0.1:$WP_TLS_PORT/edge" wpe_
sed -i "s|^define( 'WP_SITEURL'.*|&\ndefine( 'FORCE_SSL_ADMIN', false );|" "$WP_DIR/edge/wp-config.php"
ln -s "$PLUGIN" "$WP_DIR/edge/wp-content/plugins/agency-sso-connector"
php "$HERE/install.php" "$WP_DIR/edge" "https://127.0.0.1:$WP_TLS_PORT/edge" "Client Edge Site" plugin
test_clock "$WP_DIR/edge"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$WP_DIR.tls-key.pem" -out "$WP_DIR.tls-cert.pem" 2>/dev/null
TLS_PORT=$WP_TLS_PORT BACKEND_PORT=$WP_PORT TLS_KEY="$WP_DIR.tls-key.pem" TLS_CERT="$WP_DIR.tls-cert.pem" \
  node "$HERE/tls-proxy.mjs" >"$WP_DIR.proxy.log" 2>&1 &
PROXY_PID=$!

# Several workers, as a real site has: the single-use token check must hold across them.
PHP_CLI_SERVER_WORKERS=4 php -S "127.0.0.1:$WP_PORT" -t "$WP_DIR" "$HERE/router.php" >"$WP_DIR.log" 2>&1 &
PHP_PID=$!
wait "$PHP_PID"
