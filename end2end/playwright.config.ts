// Runs the built dashboard (target/debug/agency-sso, or target/release with
// E2E_PROFILE=release) on a fresh SQLite file
// beside the local identity provider, and drives Debian's Chromium.
import { defineConfig } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const port = Number(process.env.E2E_PORT ?? 3100);
const idpPort = Number(process.env.E2E_IDP_PORT ?? 3101);
const demoPort = Number(process.env.E2E_DEMO_PORT ?? 3102);
/** The stand-in client site (end2end/demo-site): twl-sso at its root, miniOrange at /shop. */
export const demoURL = `http://127.0.0.1:${demoPort}`;
export const shopSecret = 'e2e-demo-shop-secret-0123456789abcdef';
/** A real WordPress (end2end/wordpress/serve.sh): the connector as a plugin at the root, as a must-use plugin at /blog. */
const wpPort = Number(process.env.E2E_WP_PORT ?? 3103);
export const wpURL = `http://127.0.0.1:${wpPort}`;
export const wpBlogURL = `${wpURL}/blog`;
/** The same WordPress through a proxy that ends TLS (end2end/wordpress/tls-proxy.mjs): a site whose address is https. */
const wpTlsPort = Number(process.env.E2E_WP_TLS_PORT ?? 3104);
export const wpEdgeURL = `https://127.0.0.1:${wpTlsPort}/edge`;
export const wpAdminPassword = 'e2e-wordpress-admin-password-4f1c';
/** Filler sites on top of the demo site and shop: Sam Staff may enter 5,000 sites. */
export const staffSites = 5000;
export const baseURL = `http://127.0.0.1:${port}`;
const idpURL = `http://127.0.0.1:${idpPort}`;
// An ES module (package.json "type": "module"): no __dirname.
const root = fileURLToPath(new URL('..', import.meta.url));
// Evaluated again in each worker: keep one data folder per run.
process.env.E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), 'agency-sso-e2e-'));

/** The agency's webhook (end2end/webhook/server.mjs): what it received, one JSON line per POST. */
export const webhookPort = Number(process.env.E2E_WEBHOOK_PORT ?? 3105);
export const webhookLog = join(process.env.E2E_DATA_DIR, 'webhook.jsonl');
export const webhookSecret = 'e2e-webhook-secret-0123456789abcdef0123';

/** The WordPress files of this run (removed when its server stops). */
export const wpDir = join(process.env.E2E_DATA_DIR, 'wordpress');

/** The dashboard's settings, also used by tests that run its CLI. */
export const dashboardEnv: Record<string, string> = {
  SSO_PUBLIC_URL: baseURL,
  SSO_BIND: `127.0.0.1:${port}`,
  SSO_DATABASE_URL: `sqlite://${process.env.E2E_DATA_DIR}/agency-sso.db`,
  SSO_DATA_DIR: process.env.E2E_DATA_DIR,
  SSO_OIDC_ISSUER: idpURL,
  SSO_OIDC_CLIENT_ID: 'agency-sso-local',
  SSO_OIDC_CLIENT_SECRET: 'e2e-client-secret',
  SSO_OIDC_PROVIDER_NAME: 'the local identity provider',
  SSO_ALLOWED_DOMAINS: 'agency.test',
  SSO_ADMIN_EMAILS: 'admin@agency.test',
  // Fixed, so that the CLI and the server never race to generate one.
  SSO_MASTER_KEY: 'ZTJlLW1hc3Rlci1rZXktMDEyMzQ1Njc4OWFiY2RlZjA=',
  SSO_DEMO_SHOP_SECRET: shopSecret,
  // Every test signs in from 127.0.0.1: the per-client sign-in limit is
  // raised for the suite (its own test sets it low on its own server).
  SSO_SIGN_IN_RATE: '1000/min',
  // Tests move the dashboard's clock by writing seconds here (loopback only).
  SSO_TEST_CLOCK_FILE: join(process.env.E2E_DATA_DIR, 'clock-offset'),
  // Just-in-time access requests and decisions go to the suite's receiver.
  SSO_NOTIFY_URL: `http://127.0.0.1:${webhookPort}/hook`,
  SSO_NOTIFY_SECRET: webhookSecret,
  LEPTOS_SITE_ROOT: join(root, 'target/site'),
  LEPTOS_OUTPUT_NAME: 'agency-sso',
  LEPTOS_SITE_PKG_DIR: 'pkg',
};
// E2E_PROFILE=release runs the suite against `leptos_build --release`'s output.
// E2E_DASHBOARD_BIN runs another binary (scripts/release-check: the release's
// own, whose site is embedded, so no site folder is named; or the installed
// package's, run as its unit runs it, with the master key it generated).
export const dashboardBin = process.env.E2E_DASHBOARD_BIN
  ?? join(root, 'target', process.env.E2E_PROFILE ?? 'debug', 'agency-sso');
if (process.env.E2E_DASHBOARD_BIN) {
  delete dashboardEnv.LEPTOS_SITE_ROOT;
  delete dashboardEnv.LEPTOS_SITE_PKG_DIR;
  if (process.env.E2E_PACKAGED) delete dashboardEnv.SSO_MASTER_KEY;
}

export default defineConfig({
  testDir: './tests',
  globalTeardown: './global-teardown.ts',
  timeout: 30_000,
  // One worker: tests share the demo people (one disables and re-enables Sasha).
  workers: 1,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  use: {
    baseURL,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    },
  },
  webServer: [
    {
      command: 'node idp/server.mjs',
      url: `${idpURL}/.well-known/openid-configuration`,
      env: {
        IDP_PORT: String(idpPort),
        IDP_CLIENT_SECRET: 'e2e-client-secret',
        IDP_REDIRECT_URIS: `${baseURL}/auth/callback`,
      },
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      command: 'node webhook/server.mjs',
      url: `http://127.0.0.1:${webhookPort}/healthz`,
      env: { WEBHOOK_PORT: String(webhookPort), WEBHOOK_LOG: webhookLog },
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      command: 'node demo-site/server.mjs',
      url: `${demoURL}/healthz`,
      env: { DEMO_PORT: String(demoPort), DEMO_ISSUER: baseURL, DEMO_SHOP_SECRET: shopSecret },
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      command: 'bash wordpress/serve.sh',
      url: `${wpURL}/wp-login.php`,
      timeout: 120_000,
      env: { WP_PORT: String(wpPort), WP_TLS_PORT: String(wpTlsPort), WP_DIR: wpDir, WP_ISSUER: baseURL, WP_TEST_ADMIN_PASSWORD: wpAdminPassword },
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      // The demo sites and grants first (through the CLI), then the dashboard.
      command: `${dashboardBin} demo seed --site-url ${demoURL} --extra-sites ${staffSites - 2} && exec ${dashboardBin} serve`,
      url: `${baseURL}/readyz`,
      timeout: 240_000,
      env: dashboardEnv,
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
  ],
});
