// Connecting a WordPress site in one step (issue 36), in a real WordPress
// (end2end/wordpress/serve.sh): /bare has the connector active and names no
// dashboard (no wp-config.php line), /net/labs is a sub-site of a network
// that names this dashboard but that the dashboard does not know yet.
// By the button (the dashboard's approval in the browser), by a code
// pasted in the settings page, and by a code through the function
// `wp agency-sso connect` calls; then staff land in wp-admin. Every
// refusal says why on the site's page and leaves both sides as they were.
import { test, expect, type Browser, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseURL, wpAdminPassword, wpDir, wpURL } from '../playwright.config';
import { cli, consoleLive, moveClock, otherPerson, pickerLive, signInAgain } from './helpers';

test.describe.configure({ mode: 'serial' });

const bare = `${wpURL}/bare`;
const labs = `${wpURL}/net/labs`;

/** A connection code for `url`, as `agency-sso sites connect-code` prints it. */
function codeFor(url: string): string {
  const lines = cli('sites', 'connect-code', url).trim().split('\n');
  expect(lines[0]).toBe('url,code,expires_utc');
  const [forUrl, code] = lines[1].split(',');
  expect(forUrl).toBe(url);
  return code;
}

/** `wp agency-sso connect CODE` on a site, through the same PHP function (end2end/wordpress/connect.php). */
function connectWithCode(dir: string, path: string, code: string): { ok: boolean; code?: string; message?: string; site_url?: string; created?: boolean } {
  const script = fileURLToPath(new URL('../wordpress/connect.php', import.meta.url));
  return JSON.parse(execFileSync('php', [script, dir, new URL(wpURL).host, path, code]).toString());
}

/** The dashboard's sites whose URL is `url`, as `agency-sso sites list` prints them. */
function dashboardSites(url: string): string[] {
  return cli('sites', 'list').split('\n').filter((l) => l.split(/\s+/).includes(url));
}

/** A site admin signed in to a WordPress with its password. */
async function wpAdmin(browser: Browser, site: string, login = 'admin'): Promise<Page> {
  const wp = await (await browser.newContext()).newPage();
  await wp.goto(`${site}/wp-login.php`);
  await wp.getByLabel('Username or Email Address').fill(login);
  await wp.getByLabel('Password', { exact: true }).fill(wpAdminPassword);
  await wp.getByRole('button', { name: 'Log In' }).click();
  await expect(wp.locator('#wp-admin-bar-my-account')).toBeVisible();
  return wp;
}

async function settings(wp: Page, site: string) {
  await wp.goto(`${site}/wp-admin/options-general.php?page=agency-sso-connector`);
}

async function pasteCode(wp: Page, site: string, code: string) {
  await settings(wp, site);
  await wp.locator('#agency-sso-connect-code').fill(code);
  await wp.locator('#agency-sso-connect-with-code').click();
}

test('refused, on the site\'s own page: a code for another site, no code at all, an expired code, a dashboard that cannot be reached; nothing is connected', async ({ browser }) => {
  const wp = await wpAdmin(browser, bare);
  await settings(wp, bare);
  await expect(wp.locator('#agency-sso-connection')).toHaveText('This site is not connected to an agency dashboard.');

  // A code made for another site's URL.
  await pasteCode(wp, bare, codeFor('https://elsewhere.example'));
  await expect(wp.locator('#agency-sso-notice')).toContainText(`This connection code is for https://elsewhere.example, not for ${bare}`);
  await expect(wp.locator('#agency-sso-notice-code')).toHaveText('wrong_site');
  // Not a code.
  await pasteCode(wp, bare, 'hello there');
  await expect(wp.locator('#agency-sso-notice-code')).toHaveText('code_malformed');
  // A code past its 24 hours.
  const late = codeFor(bare);
  moveClock(25 * 3600);
  try {
    await pasteCode(wp, bare, late);
    await expect(wp.locator('#agency-sso-notice')).toContainText('This connection code has expired');
    await expect(wp.locator('#agency-sso-notice-code')).toHaveText('code_expired');
  } finally {
    moveClock(0);
  }
  // The button, with a dashboard address where nothing answers: the site
  // says so and sends the browser nowhere.
  await settings(wp, bare);
  await wp.locator('#agency-sso-connect-dashboard').fill('http://127.0.0.1:9');
  await wp.locator('#agency-sso-connect').click();
  await expect(wp.locator('#agency-sso-notice')).toContainText('No agency dashboard answers at http://127.0.0.1:9');
  await expect(wp.locator('#agency-sso-notice-code')).toHaveText('dashboard_unreachable');
  expect(wp.url()).toContain(`${bare}/wp-admin/`);
  // A code whose dashboard is down while the site connects.
  const down = `asso1.${Buffer.from('http://127.0.0.1:9').toString('base64url')}.${'A'.repeat(43)}`;
  await pasteCode(wp, bare, down);
  await expect(wp.locator('#agency-sso-notice-code')).toHaveText('dashboard_unreachable');

  await settings(wp, bare);
  await expect(wp.locator('#agency-sso-connection')).toHaveText('This site is not connected to an agency dashboard.');
  expect(dashboardSites(bare)).toEqual([]);
});

test('by the button: a bare WordPress is connected by its admin and the dashboard admin\'s approval, and Sam lands in its wp-admin', async ({ browser }) => {
  const wp = await wpAdmin(browser, bare);
  // Errors on the dashboard's pages (a CSP violation, say); WordPress' own
  // pages ask for outside resources this closed network cannot reach.
  const errors: string[] = [];
  wp.on('console', (m) => { if (m.type() === 'error' && wp.url().startsWith(baseURL)) errors.push(m.text()); });
  await settings(wp, bare);
  await wp.locator('#agency-sso-connect-dashboard').fill(baseURL);
  await wp.locator('#agency-sso-connect').click();

  // At the dashboard: a fresh sign-in, then the site as WordPress reports it.
  await expect(wp.getByRole('heading', { name: 'Local identity provider' })).toBeVisible();
  await wp.getByRole('button', { name: /Sign in as Ada Admin/ }).click();
  await expect(wp.getByRole('heading', { name: 'Connect a site to this dashboard?' })).toBeVisible();
  await expect(wp.getByTestId('connect-site')).toHaveText(bare);
  await expect(wp.getByText('It will be added as a new site')).toBeVisible();
  await wp.getByRole('button', { name: 'Approve and connect' }).click();

  // Back at the site: connected, no wp-config.php edit, no console form.
  await expect(wp).toHaveURL(new RegExp(`^${bare}/wp-admin/options-general\\.php\\?page=agency-sso-connector`));
  await expect(wp.locator('#agency-sso-notice')).toContainText(`Connected to ${baseURL}: the dashboard added this site.`);
  await expect(wp.locator('#agency-sso-connection')).toContainText(`Connected to ${baseURL} since`);
  // The code it came back with never stays in the address bar or the page.
  expect(wp.url()).not.toContain('asso1.');
  expect(errors).toEqual([]);

  // The dashboard has it, as a connector site, recorded.
  const [row] = dashboardSites(bare);
  expect(row).toMatch(/\benabled\s+connector\b/);
  expect(row).toContain('Client Bare Site');
  const audit = cli('audit', 'export', '--format', 'csv', '--event', 'site_connected');
  expect(audit).toContain(bare);

  // Sam, granted a role there, opens it from the picker.
  cli('grants', 'add', 'sam@agency.test', bare, '--role', 'editor');
  const sam = await otherPerson(browser, /Sign in as Sam Staff/);
  await pickerLive(sam);
  await sam.getByLabel('Find a site').fill('Client Bare Site');
  await sam.getByRole('button', { name: 'Open Client Bare Site', exact: true }).click();
  await expect(sam).toHaveURL(`${bare}/wp-admin/`);
  await expect(sam.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  // Sam's list stays as the other specs expect it.
  cli('grants', 'revoke', 'sam@agency.test', bare);
});

test('one dashboard per site: a connected site refuses a code of another dashboard until its admin disconnects it, and connects again', async ({ browser }) => {
  const wp = await wpAdmin(browser, bare);
  // A code naming another dashboard (the site refuses it before asking anyone).
  const other = `asso1.${Buffer.from('https://other-agency.example').toString('base64url')}.${'A'.repeat(43)}`;
  await settings(wp, bare);
  await expect(wp.locator('#agency-sso-connect-code')).toHaveCount(0);
  const refused = connectWithCode(join(wpDir, 'bare'), '/bare', other);
  expect(refused).toMatchObject({ ok: false, code: 'already_connected' });
  expect(refused.message).toContain(baseURL);
  await settings(wp, bare);
  await expect(wp.locator('#agency-sso-connection')).toContainText(`Connected to ${baseURL} since`);

  // Its admin disconnects it: the other dashboard's code is then tried (its
  // dashboard cannot be reached from this closed network), no longer refused.
  await wp.locator('#agency-sso-disconnect').click();
  await expect(wp.locator('#agency-sso-notice')).toContainText(`Disconnected from ${baseURL}.`);
  await expect(wp.locator('#agency-sso-connection')).toHaveText('This site is not connected to an agency dashboard.');
  expect(connectWithCode(join(wpDir, 'bare'), '/bare', other)).toMatchObject({ ok: false, code: 'dashboard_unreachable' });
  // And connected again with a new code.
  expect(connectWithCode(join(wpDir, 'bare'), '/bare', codeFor(bare))).toMatchObject({ ok: true, created: false });
});

test('by a code made in the console, through the function WP-CLI calls: a sub-site of a network is its own site in the dashboard; the code works once', async ({ browser }) => {
  // An admin makes the code on the Fleet page (a fresh sign-in, as for every action that lets a site in).
  const ada = await (await browser.newContext()).newPage();
  await signInAgain(ada, /Sign in as Ada Admin/, '/admin/fleet');
  await consoleLive(ada);
  await ada.getByLabel('Site URLs (one per line)').fill(`${labs}/\n`);
  await ada.getByRole('button', { name: 'Make codes' }).click();
  await expect(ada.getByText('1 code(s) made: copy them now, they are not shown again.')).toBeVisible();
  const code = (await ada.locator(`[data-testid="connect-codes"] tr[data-url="${labs}"] code`).textContent())!.trim();
  expect(code).toMatch(/^asso1\./);
  // Shown once: not on the page again.
  await ada.reload();
  await consoleLive(ada);
  await expect(ada.getByTestId('connect-codes')).toHaveCount(0);
  const done = connectWithCode(join(wpDir, 'net'), '/net/labs', code);
  expect(done).toMatchObject({ ok: true, site_url: labs, created: true });
  const [row] = dashboardSites(labs);
  expect(row).toMatch(/\benabled\s+connector\b/);
  expect(row).toContain('Client Labs Site');

  // The same code again, even from the same site.
  const again = connectWithCode(join(wpDir, 'net'), '/net/labs', code);
  expect(again).toMatchObject({ ok: false, code: 'code_used' });
  expect(dashboardSites(labs)).toHaveLength(1);

  // Its network admin sees it connected; Sam, granted a role, lands there.
  const wp = await wpAdmin(browser, `${wpURL}/net`);
  await settings(wp, labs);
  await expect(wp.locator('#agency-sso-connection')).toContainText(`Connected to ${baseURL} since`);
  cli('grants', 'add', 'sam@agency.test', labs, '--role', 'author');
  const sam = await otherPerson(browser, /Sign in as Sam Staff/);
  await pickerLive(sam);
  await sam.getByLabel('Find a site').fill('Client Labs Site');
  await sam.getByRole('button', { name: 'Open Client Labs Site', exact: true }).click();
  await expect(sam).toHaveURL(`${labs}/wp-admin/`);
  await expect(sam.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  cli('grants', 'revoke', 'sam@agency.test', labs);
});

test("on a network, a sub-site's own administrator cannot connect it: that is the network admin's", async ({ browser }) => {
  // teamadmin administers /net/team only.
  const team = `${wpURL}/net/team`;
  const wp = await wpAdmin(browser, team, 'teamadmin');
  await settings(wp, team);
  await expect(wp.locator('#agency-sso-connect-note')).toContainText('a network administrator connects each site');
  await expect(wp.locator('#agency-sso-connect')).toHaveCount(0);
  await expect(wp.locator('#agency-sso-connect-code')).toHaveCount(0);
});
