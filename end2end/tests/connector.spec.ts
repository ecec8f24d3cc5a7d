// The connector plugin (wordpress/agency-sso-connector) in a real WordPress
// (Debian's 6.1, PHP's own server, MariaDB): launches land in wp-admin as
// the person with their role, and every refusal is a clear page that leaves
// WordPress as it was.
import { test, expect, type Browser, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { createHmac, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseURL, webhookLog, webhookSecret, wpAdminPassword, wpBlogURL, wpDir, wpEdgeURL, wpURL } from '../playwright.config';
import { cli, consoleLive, moveClock, otherPerson, pickerLive, signInAgain, signInAs, watchConsole } from './helpers';

test.describe.configure({ mode: 'serial' });

type WpUser = { login: string; display_name: string; roles: string[]; subject: string; sessions: number; app_passwords: number; locked: boolean } | null;

/** A WordPress user as WordPress itself reports it (end2end/wordpress/state.php). */
function wpUser(email: string, blog = false): WpUser {
  return wpUserIn(blog ? join(wpDir, 'blog') : wpDir, email);
}

function wpUserIn(dir: string, email: string, site?: string): WpUser {
  const script = fileURLToPath(new URL('../wordpress/state.php', import.meta.url));
  return JSON.parse(execFileSync('php', [script, dir, 'user', email, ...(site ? [site] : [])]).toString());
}

/** Ask WordPress itself (end2end/wordpress/state.php): a post, a count, an application password... */
function wpState(...args: string[]): unknown {
  return wpStateIn(wpDir, ...args);
}

function wpStateIn(dir: string, ...args: string[]): unknown {
  const script = fileURLToPath(new URL('../wordpress/state.php', import.meta.url));
  return JSON.parse(execFileSync('php', [script, dir, ...args]).toString());
}

/** Set one of a WordPress site's options (the network's, `site`, on the multisite network), as its admin would. */
function wpOption(dir: string, name: string, value: string, network = false) {
  const host = `$_SERVER['HTTP_HOST']='${new URL(wpURL).host}'; $_SERVER['REQUEST_URI']='/${network ? 'net/' : ''}';`;
  execFileSync('php', ['-r', `${host} require '${dir}/wp-load.php'; ${network ? 'update_site_option' : 'update_option'}('${name}', '${value}');`]);
}

/** The dashboard's stable id of a person (the connector's `sub`): the first column of `agency-sso users list`. */
function personId(email: string): string {
  return cli('users', 'list').split('\n').find((l) => l.includes(email))!.split(/\s+/)[0];
}

/** A WordPress account signed in with its password at a site's wp-login.php, in a browser of its own. */
async function wpPasswordLogin(browser: Browser, site: string, login: string): Promise<Page> {
  const wp = await (await browser.newContext()).newPage();
  await wp.goto(`${site}/wp-login.php`);
  await wp.getByLabel('Username or Email Address').fill(login);
  await wp.getByLabel('Password', { exact: true }).fill(wpAdminPassword);
  await wp.getByRole('button', { name: 'Log In' }).click();
  await expect(wp.locator('#wp-admin-bar-my-account')).toBeVisible();
  return wp;
}

/** Move WordPress' clock, as the connector sees it (end2end/wordpress/serve.sh's test mu-plugin). */
function moveSiteClock(seconds: number) {
  writeFileSync(`${wpDir}.clock`, String(seconds));
}

/** A person signed in to the dashboard in a browser of their own. */
async function personPage(browser: Browser, person: RegExp): Promise<Page> {
  const page = await otherPerson(browser, person);
  await pickerLive(page);
  return page;
}

/** Open a site from the picker. */
async function open(page: Page, name: string) {
  if (!page.url().startsWith(`${baseURL}/`)) {
    await page.goto('/');
    await pickerLive(page);
  }
  await page.getByLabel('Find a site').fill(name);
  await page.getByRole('button', { name: `Open ${name}`, exact: true }).click();
}

/** Open a site from the picker but stop the browser at WordPress' door: the token, unused. */
async function launchToken(page: Page, name: string): Promise<string> {
  let location = '';
  const isLaunch = (url: URL) => url.origin === baseURL && url.pathname === '/launch';
  await page.route(isLaunch, async (route) => {
    // The dashboard's answer, read but not followed.
    const response = await route.fetch({ maxRedirects: 0 });
    location = response.headers()['location'] ?? '';
    await route.fulfill({ status: 200, contentType: 'text/html', body: '<p>Stopped at the door.</p>' });
  });
  await open(page, name);
  await expect.poll(() => location).toContain('token=');
  await page.unroute(isLaunch);
  await page.goto('/');
  await pickerLive(page);
  return new URL(location).searchParams.get('token') ?? '';
}

/** What WordPress shows for a refused token, and that it signed nobody in. */
async function expectRefused(page: Page, code: string, message: RegExp) {
  await expect(page.getByRole('heading', { name: 'Sign-in refused' })).toBeVisible();
  // Shown at an address without the token (a redirect took it out of the address bar and history).
  expect(page.url()).toMatch(new RegExp(`/wp-login\\.php\\?action=agency_sso&refused=${code}$`));
  await expect(page.locator('#agency-sso-code')).toHaveText(code);
  await expect(page.locator('#agency-sso-message')).toHaveText(message);
  await expect(page.getByRole('link', { name: 'Back to the agency dashboard' })).toHaveAttribute('href', `${baseURL}/`);
  const cookies = await page.context().cookies(wpURL);
  expect(cookies.filter((c) => c.name.startsWith('wordpress_logged_in'))).toEqual([]);
  // The token is not on the page.
  expect(await page.content()).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);
}

const b64url = (x: Buffer | string) => Buffer.from(x).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
function claims(extra: Record<string, unknown> = {}) {
  return {
    iss: baseURL, aud: wpURL, sub: 'nina@agency.test', email: 'nina@agency.test', exp: now() + 60, nbf: now(),
    iat: now(), jti: `forged-${Math.random().toString(36).slice(2)}-${Date.now()}`, wp_role: 'administrator', ...extra,
  };
}

test.beforeAll(() => {
  moveClock(0);
  cli('sites', 'add', '--name', 'Client Site', '--client', 'Client', '--url', wpURL, '--profile', 'connector');
  cli('sites', 'add', '--name', 'Client Blog', '--client', 'Client', '--url', wpBlogURL, '--profile', 'connector');
  cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'editor');
  cli('grants', 'add', 'sam@agency.test', wpBlogURL, '--role', 'author');
  cli('sites', 'add', '--name', 'Client Team Site', '--client', 'Client', '--url', `${wpURL}/net/team`, '--profile', 'connector');
  cli('grants', 'add', 'sam@agency.test', `${wpURL}/net/team`, '--role', 'author');
  cli('sites', 'add', '--name', 'Client Shop Site', '--client', 'Client', '--url', `${wpURL}/net/shop`, '--profile', 'connector');
});
// The other specs count Sam's and Nina's sites: leave them as they were.
test.afterAll(() => {
  moveClock(0);
  moveSiteClock(0);
  for (const email of ['zoe@agency.test', 'quinn@agency.test']) {
    try { cli('users', 'enable', email); } catch { /* never signed in: a test stopped early */ }
  }
  wpOption(wpDir, 'agency_sso_block_passwords', '1');
  for (const dir of [wpDir, join(wpDir, 'blog'), join(wpDir, 'net')]) {
    rmSync(`${dir}.offline`, { force: true });
    rmSync(`${dir}.hold`, { force: true });
  }
  for (const [email, site] of [['sam@agency.test', wpURL], ['sam@agency.test', wpBlogURL], ['sam@agency.test', `${wpURL}/fresh`], ['sam@agency.test', `${wpURL}/net/team`],
    ['nina@agency.test', wpURL], ['admin@agency.test', wpURL], ['zoe@agency.test', wpURL], ['sam@agency.test', `${wpURL}/net/shop`],
    ['sam@agency.test', wpEdgeURL], ['quinn@agency.test', wpURL], ['quinn@agency.test', `${wpURL}/net/team`]]) {
    try { cli('grants', 'revoke', email, site); } catch { /* never granted: a test stopped early */ }
  }
});

test('Sam opens a connector site and lands in the real wp-admin as himself, as editor; the next launch is the same account', async ({ browser }) => {
  expect(wpUser('sam@agency.test')).toBeNull();
  const page = await personPage(browser, /Sign in as Sam Staff/);
  const doors: { referrerPolicy: string | null; url: string }[] = [];
  page.on('response', (r) => { if (r.url().startsWith(`${wpURL}/wp-login.php`)) doors.push({ url: r.url(), referrerPolicy: r.headers()['referrer-policy'] ?? null }); });
  await open(page, 'Client Site');

  await expect(page).toHaveURL(`${wpURL}/wp-admin/`);
  await expect(page.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  await expect(page.getByRole('heading', { name: 'Dashboard', level: 1 })).toBeVisible();
  // The token came in at wp-login.php, which answered with no-referrer and a redirect without it.
  expect(doors).toHaveLength(1);
  expect(doors[0].url).toContain('action=agency_sso&token=eyJ');
  expect(doors[0].referrerPolicy).toBe('no-referrer');

  const sam = wpUser('sam@agency.test')!;
  // Bound to Sam's stable id in the dashboard, not to his e-mail address (it may change).
  expect(sam).toMatchObject({ login: 'sam@agency.test', display_name: 'Sam Staff', roles: ['editor'], subject: `${baseURL} ${personId('sam@agency.test')}`, sessions: 1 });
  expect(sam.subject).not.toContain('@');
  // An editor: no Plugins menu.
  await expect(page.locator('#menu-plugins')).toHaveCount(0);

  // The second launch, from a fresh browser, finds the same account.
  const again = await personPage(browser, /Sign in as Sam Staff/);
  await open(again, 'Client Site');
  await expect(again.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  expect(wpUser('sam@agency.test')).toMatchObject({ login: 'sam@agency.test', roles: ['editor'], sessions: 2 });
});

test('a role lowered in the dashboard is lowered in WordPress at the next launch', async ({ browser }) => {
  cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'contributor');
  const page = await personPage(browser, /Sign in as Sam Staff/);
  await open(page, 'Client Site');
  await expect(page.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  expect(wpUser('sam@agency.test')!.roles).toEqual(['contributor']);
  cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'editor');
});

test('offboarding: Zoë disabled in the dashboard is signed out of WordPress within seconds, her password, application passwords and unused launch link stop working, her posts stay', async ({ browser, request }) => {
  cli('grants', 'add', 'zoe@agency.test', wpURL, '--role', 'editor');
  const zoe = await personPage(browser, /Sign in as Zoë Ødegård/);
  await open(zoe, 'Client Site');
  await expect(zoe.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Zoë Ødegård');
  await zoe.goto('/');
  await pickerLive(zoe);
  // What she has there: a post, an application password, a password (this
  // site lets accounts linked to the dashboard keep their passwords).
  wpOption(wpDir, 'agency_sso_block_passwords', '0');
  wpState('post', 'zoe@agency.test', 'Written before she left');
  const app = wpState('app-password', 'zoe@agency.test') as { login: string; password: string };
  const viaAppPassword = async () => (await request.get(`${wpURL}/?rest_route=/wp/v2/users/me`, {
    headers: { Authorization: `Basic ${Buffer.from(`${app.login}:${app.password}`).toString('base64')}` },
  })).status();
  expect(await viaAppPassword()).toBe(200);
  wpState('set-password', 'zoe@agency.test', 'Correct-Horse-Battery-9');
  expect(wpState('check-password', 'zoe@agency.test', 'Correct-Horse-Battery-9')).toBe(true);

  // A grant lowered from editor to author: WordPress has it at once, without a launch.
  cli('grants', 'add', 'zoe@agency.test', wpURL, '--role', 'author');
  await expect.poll(() => wpUser('zoe@agency.test')?.roles, { timeout: 15_000 }).toEqual(['author']);

  // A launch link she got before she left, not yet used; and WordPress
  // open in a tab (a new launch: the new password ended the first sign-in's cookie).
  const unused = await launchToken(zoe, 'Client Site');
  await open(zoe, 'Client Site');
  const wpTab = zoe;
  await expect(wpTab.locator('#wp-admin-bar-my-account')).toBeVisible();

  cli('users', 'disable', 'zoe@agency.test');
  // Within seconds her WordPress sessions are gone: her open tab's next request lands on the login page.
  await expect.poll(() => wpUser('zoe@agency.test')?.locked, { timeout: 15_000 }).toBe(true);
  expect(wpUser('zoe@agency.test')?.sessions).toBe(0);
  await wpTab.reload();
  await expect(wpTab).toHaveURL(/\/wp-login\.php/);
  expect(await viaAppPassword()).toBe(401);
  expect(wpState('check-password', 'zoe@agency.test', 'Correct-Horse-Battery-9')).toBe(false);
  const late = await (await browser.newContext()).newPage();
  await late.goto(`${wpURL}/wp-login.php?action=agency_sso&token=${unused}`, { referer: `${baseURL}/` });
  await expectRefused(late, 'account_locked', /locked when the agency dashboard ended your access/);
  // Her account and her work are still there.
  expect(wpUser('zoe@agency.test')?.roles).toEqual(['author']);
  expect(wpState('posts', 'zoe@agency.test')).toBe(1);

  // The console's checklist names the site and what the plugin reported.
  const admin = await otherPerson(browser, /Sign in as Ada Admin/);
  const id = cli('users', 'list').split('\n').find((l) => l.includes('zoe@agency.test'))!.split(/\s+/)[0];
  await admin.goto(`/admin/people/${id}`);
  const steps = admin.getByTestId('offboarding-step').filter({ hasText: wpURL });
  const lock = steps.filter({ hasText: 'Lock the account' });
  await expect(lock).toHaveAttribute('data-state', 'done');
  await expect(lock).toContainText('account locked');
  await expect(lock).toContainText(/[1-9] session\(s\) ended/);
  await expect(steps.filter({ hasText: 'Set the role to author' })).toContainText('role editor → author');

  // Let back in by an admin, her next launch opens the site again (a token issued after the lock lifts it).
  wpOption(wpDir, 'agency_sso_block_passwords', '1');
  cli('users', 'enable', 'zoe@agency.test');
  const back = await personPage(browser, /Sign in as Zoë Ødegård/);
  await open(back, 'Client Site');
  await expect(back.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Zoë Ødegård');
  expect(wpUser('zoe@agency.test')?.locked).toBe(false);
  cli('grants', 'revoke', 'zoe@agency.test', wpURL);
});

test('a sub-directory install with the plugin as a must-use plugin, and a site that narrows the roles', async ({ browser }) => {
  const page = await personPage(browser, /Sign in as Sam Staff/);
  await open(page, 'Client Blog');
  await expect(page).toHaveURL(`${wpBlogURL}/wp-admin/`);
  await expect(page.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  expect(wpUser('sam@agency.test', true)).toMatchObject({ login: 'sam@agency.test', roles: ['author'] });
  // The root site's account is another site's: there the role follows the
  // grant given back at the end of the last test (editor), without a launch.
  await expect.poll(() => wpUser('sam@agency.test')!.roles).toEqual(['editor']);

  // The blog's agency_sso_allowed_roles filter keeps administrator out:
  // granted it in the dashboard, Sam is refused and keeps his role there.
  cli('grants', 'add', 'sam@agency.test', wpBlogURL, '--role', 'administrator');
  try {
    const again = await personPage(browser, /Sign in as Sam Staff/);
    await open(again, 'Client Blog');
    await expectRefused(again, 'role_not_allowed', /does not exist on this site or is not allowed/);
    expect(wpUser('sam@agency.test', true)).toMatchObject({ roles: ['author'] });
  } finally {
    cli('grants', 'add', 'sam@agency.test', wpBlogURL, '--role', 'author');
  }
});

test('a multisite network: a sub-site, the plugin activated for the whole network', async ({ browser }) => {
  const team = `${wpURL}/net/team`;
  const page = await personPage(browser, /Sign in as Sam Staff/);
  await open(page, 'Client Team Site');
  await expect(page).toHaveURL(`${team}/wp-admin/`);
  await expect(page.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  expect(wpUserIn(join(wpDir, 'net'), 'sam@agency.test', team)).toMatchObject({ login: 'sam@agency.test', roles: ['author'] });
  // A member of that sub-site only, not of the network's main site.
  expect(wpUserIn(join(wpDir, 'net'), 'sam@agency.test', `${wpURL}/net`)).toMatchObject({ roles: [] });
});

const netDir = join(wpDir, 'net');
const teamURL = `${wpURL}/net/team`;
const shopURL = `${wpURL}/net/shop`;

test("a network: a sub-site's administrator can neither link the super admin's account nor point the network at another dashboard", async ({ browser }) => {
  // teamadmin administers /net/team only: WordPress' manage_options there, nothing of the network's.
  const wp = await wpPasswordLogin(browser, teamURL, 'teamadmin');
  await wp.goto(`${teamURL}/wp-admin/options-general.php?page=agency-sso-connector`);
  await expect(wp.locator('#agency-sso-network-note')).toContainText("these settings are the network's");
  await expect(wp.locator('#agency-sso-issuer')).toHaveText(baseURL);
  await expect(wp.locator('input[name="issuer"]')).toHaveCount(0);
  await expect(wp.getByRole('button', { name: 'Save' })).toHaveCount(0);
  await expect(wp.locator('#agency-sso-audience')).toHaveText(teamURL);
  // No form to link an account: the accounts are the network's.
  await expect(wp.locator('#agency-sso-link-user')).toHaveCount(0);
  await expect(wp.locator('#agency-sso-link-note')).toBeVisible();

  // The attack as written: link the super admin (user 1) to an address the
  // sub-site admin controls, and point the network at a dashboard they run,
  // posted with a nonce this page handed out.
  const nonce = await wp.locator('input[name="_wpnonce"]').first().inputValue();
  for (const form of [
    { action: 'agency_sso_link', user_id: '1', email: 'attacker@client.test' },
    { action: 'agency_sso_save', issuer: 'http://127.0.0.1:9/evil', block_passwords: '1' },
  ]) {
    for (const scope of ['site', 'network']) {
      const res = await wp.request.post(`${teamURL}/wp-admin/admin-post.php`, { form: { ...form, scope, _wpnonce: nonce }, maxRedirects: 0 });
      expect(res.status()).toBe(403);
      expect(await res.text()).toContain('You are not allowed to change these settings.');
    }
  }
  expect(wpUserIn(netDir, 'admin@agency.test', `${wpURL}/net`)).toMatchObject({ login: 'admin', subject: '' });
  await wp.reload();
  await expect(wp.locator('#agency-sso-issuer')).toHaveText(baseURL);

  // The network's administrator sees the network's page, and on a sub-site's
  // page may link that site's own members, never a super admin.
  const network = await wpPasswordLogin(browser, `${wpURL}/net`, 'admin');
  await network.goto(`${wpURL}/net/wp-admin/network/settings.php?page=agency-sso-connector`);
  await expect(network.getByRole('heading', { name: 'Agency SSO for the network' })).toBeVisible();
  await expect(network.locator('#agency-sso-issuer')).toHaveValue(baseURL);
  await network.getByRole('button', { name: 'Save' }).click();
  await expect(network.locator('#agency-sso-notice')).toHaveText('Settings saved.');
  await expect(network.locator('#agency-sso-issuer')).toHaveValue(baseURL);
  await network.goto(`${teamURL}/wp-admin/options-general.php?page=agency-sso-connector`);
  // Accounts are listed by display name (the login, for these): the site's own admin, not the super admin, not another site's.
  const choices = (await network.locator('#agency-sso-link-user option').allTextContents()).map((c) => c.trim());
  expect(choices).toContain('teamadmin');
  expect(choices).not.toContain('admin');
  expect(choices).not.toContain('quinn-shop');
});

test("a network: an administrator of another sub-site is never bound by e-mail, and a message about that address leaves the account alone", async ({ browser }) => {
  // quinn-shop administers /net/shop only and has Quinn's address; Quinn is granted /net/team.
  cli('grants', 'add', 'quinn@agency.test', teamURL, '--role', 'author');
  const quinn = await personPage(browser, /Sign in as Quinn/);
  await open(quinn, 'Client Team Site');
  await expectRefused(quinn, 'account_link_required', /administrator account with your e-mail address/);
  expect(wpUserIn(netDir, 'quinn@agency.test', shopURL)).toMatchObject({ login: 'quinn-shop', roles: ['administrator'], subject: '' });
  expect(wpUserIn(netDir, 'quinn@agency.test', teamURL)).toMatchObject({ roles: [] });

  // Quinn disabled in the dashboard: the lock sent to /net/team finds no account of Quinn's there.
  const seen = inbox(netDir).length;
  cli('users', 'disable', 'quinn@agency.test');
  try {
    await expect.poll(() => inbox(netDir).length, { timeout: 15_000 }).toBeGreaterThan(seen);
    const answer = await waitForOutcome(browser, 'quinn@agency.test', teamURL, 'Lock the account');
    await expect(answer).toContainText('No account for them there: nothing to do.');
    // The shop's administrator keeps the password, the role and the account.
    process.env.AGENCY_SSO_SITE = shopURL;
    try {
      expect(JSON.parse(execFileSync('php', [fileURLToPath(new URL('../wordpress/state.php', import.meta.url)), netDir, 'check-password', 'quinn@agency.test', wpAdminPassword]).toString())).toBe(true);
    } finally {
      delete process.env.AGENCY_SSO_SITE;
    }
    expect(wpUserIn(netDir, 'quinn@agency.test', shopURL)).toMatchObject({ login: 'quinn-shop', roles: ['administrator'], locked: false });
  } finally {
    cli('users', 'enable', 'quinn@agency.test');
    cli('grants', 'revoke', 'quinn@agency.test', teamURL);
  }
});

test('a network: a grant revoked on one sub-site takes the role there away, and a launch into another sub-site does not open it again', async ({ browser }) => {
  cli('grants', 'add', 'sam@agency.test', shopURL, '--role', 'author');
  const sam = await personPage(browser, /Sign in as Sam Staff/);
  for (const [name, url] of [['Client Team Site', teamURL], ['Client Shop Site', shopURL]]) {
    await open(sam, name);
    await expect(sam).toHaveURL(`${url}/wp-admin/`);
  }
  expect(wpUserIn(netDir, 'sam@agency.test', teamURL)).toMatchObject({ roles: ['author'] });
  try {
    cli('grants', 'revoke', 'sam@agency.test', teamURL);
    await expect.poll(() => wpUserIn(netDir, 'sam@agency.test', teamURL)?.roles, { timeout: 15_000 }).toEqual([]);
    expect(wpUserIn(netDir, 'sam@agency.test', teamURL)?.locked).toBe(true);

    // Sam opens the shop, where his grant stands: the lock there only is lifted.
    await open(sam, 'Client Shop Site');
    await expect(sam).toHaveURL(`${shopURL}/wp-admin/`);
    expect(wpUserIn(netDir, 'sam@agency.test', shopURL)).toMatchObject({ roles: ['author'], locked: false });
    expect(wpUserIn(netDir, 'sam@agency.test', teamURL)).toMatchObject({ roles: [], locked: true });
    // The network's cookie that launch made does not open the revoked site's wp-admin.
    await sam.goto(`${teamURL}/wp-admin/`);
    await expect(sam.getByText('Sorry, you are not allowed to access this page.')).toBeVisible();
    await expect(sam.locator('#wpadminbar')).toHaveCount(0);
    await expect(sam.getByRole('heading', { name: 'Dashboard', level: 1 })).toHaveCount(0);
  } finally {
    cli('grants', 'add', 'sam@agency.test', teamURL, '--role', 'author');
    cli('grants', 'revoke', 'sam@agency.test', shopURL);
  }
  // Granted again, his next launch opens the team site with the role.
  await open(sam, 'Client Team Site');
  await expect(sam).toHaveURL(`${teamURL}/wp-admin/`);
  expect(wpUserIn(netDir, 'sam@agency.test', teamURL)).toMatchObject({ roles: ['author'], locked: false });
});

test('key rotation: a key published ahead takes over, an emergency switch and a revoke of the active key, all without touching WordPress', async ({ browser, request }) => {
  test.setTimeout(120_000);
  const kids = async () => (await (await request.get(`${baseURL}/.well-known/jwks.json`)).json()).keys.map((k: { kid: string }) => k.kid);
  const landsWith = async () => {
    const page = await personPage(browser, /Sign in as Sam Staff/);
    let kid = '';
    page.on('request', (r) => {
      const token = r.url().startsWith(`${wpURL}/wp-login.php?`) ? new URL(r.url()).searchParams.get('token') : null;
      if (token) kid = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid;
    });
    await open(page, 'Client Site');
    await expect(page).toHaveURL(`${wpURL}/wp-admin/`);
    await expect(page.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
    await page.context().close();
    return kid;
  };
  const before = await landsWith();
  const published = async (known: string[]) => {
    let kid: string | undefined;
    await expect.poll(async () => (kid = (await kids()).find((k: string) => !known.includes(k))), { timeout: 15_000 }).toBeTruthy();
    return kid!;
  };

  // A safe rotation: the new key is published now and signs a week later.
  let known = await kids();
  cli('keys', 'rotate');
  const next = await published(known);
  expect(await landsWith()).toBe(before);

  try {
    // A week and an hour later on both sides: the published key has taken
    // over, and WordPress' cached key set, long expired, was fetched again.
    moveClock(169 * 3600);
    moveSiteClock(169 * 3600);
    await expect.poll(landsWith, { timeout: 30_000 }).toBe(next);

    // An emergency switch: a key nobody has seen signs at once; the plugin
    // fetches the key set again for the unknown key id.
    known = await kids();
    cli('keys', 'rotate', '--now');
    const fresh = await published(known);
    await expect.poll(landsWith, { timeout: 15_000 }).toBe(fresh);

    // The next key published, five minutes pass (WordPress' copy of the key
    // set expires and is fetched again at the next launch), then the active
    // key is revoked: the next key signs and the launch lands.
    known = await kids();
    cli('keys', 'rotate');
    const following = await published(known);
    moveClock(169 * 3600 + 301);
    moveSiteClock(169 * 3600 + 301);
    expect(await landsWith()).toBe(fresh);
    cli('keys', 'revoke', fresh, '--reason', 'connector rotation test');
    await expect.poll(kids, { timeout: 15_000 }).not.toContain(fresh);
    expect(await landsWith()).toBe(following);
  } finally {
    moveClock(0);
    moveSiteClock(0);
  }
});

test('a deep link opens that page of the WordPress site', async ({ browser }) => {
  const page = await personPage(browser, /Sign in as Sam Staff/);
  await page.getByLabel('Find a site').fill('Client Site');
  await page.getByLabel('Open at (optional)').fill('/wp-admin/edit.php?post_type=page');
  await page.getByRole('button', { name: 'Open Client Site', exact: true }).click();
  await expect(page).toHaveURL(`${wpURL}/wp-admin/edit.php?post_type=page`);
  await expect(page.getByRole('heading', { name: 'Pages', level: 1 })).toBeVisible();
});

test("the key cache in WordPress: max-age, refetch on an unknown key at most once a minute, the last good set kept for 7 days at most, 64 KiB at most; token ids kept across clock skew", () => {
  const script = fileURLToPath(new URL('../wordpress/key-cache-check.php', import.meta.url));
  const out = execFileSync('php', [script, join(wpDir, 'blog')]).toString();
  for (const check of [
    "cached for the dashboard's max-age=120",
    'an unknown key id (an emergency rotation) is fetched at once',
    'and asks the dashboard nothing within a minute of the last refetch',
    'an invalid key set is refused and the last good set serves',
    'the invalid set is not cached',
    'the dashboard down: the last good set serves',
    'discovery naming another issuer is refused',
    'six days without the dashboard: the last good set still serves',
    'over seven days without the dashboard: the last good set is refused (key_set_stale)',
    'a key set of over 64 KiB is refused (bad_key_set)',
    'after a server a minute ahead cleared old ids, the token is still refused as a replay',
    'key cache: all checks passed',
  ]) expect(out).toContain(check);
});

test('refused: a token for another site, a replayed one, an expired one', async ({ browser }) => {
  const page = await personPage(browser, /Sign in as Sam Staff/);
  // Client Blog's token taken to Client Site: wrong audience.
  const forBlog = await launchToken(page, 'Client Blog');
  const elsewhere = await (await browser.newContext()).newPage();
  await elsewhere.goto(`${wpURL}/wp-login.php?action=agency_sso&token=${forBlog}`, { referer: `${baseURL}/` });
  await expectRefused(elsewhere, 'wrong_audience', /issued for a different site/);

  // A token used once is refused the second time, even in another browser.
  const first = await launchToken(page, 'Client Site');
  const one = await (await browser.newContext()).newPage();
  await one.goto(`${wpURL}/wp-login.php?action=agency_sso&token=${first}`, { referer: `${baseURL}/` });
  await expect(one.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  const two = await (await browser.newContext()).newPage();
  await two.goto(`${wpURL}/wp-login.php?action=agency_sso&token=${first}`, { referer: `${baseURL}/` });
  await expectRefused(two, 'token_replayed', /already been used/);

  // Nina, new to the site, with a token the dashboard signed ten minutes ago.
  cli('grants', 'add', 'nina@agency.test', wpURL, '--role', 'author');
  // WordPress' clock ten minutes ahead: the dashboard's fresh token is old there.
  const nina = await personPage(browser, /Sign in as Nina Newhire/);
  moveSiteClock(600);
  try {
    await open(nina, 'Client Site');
    await expectRefused(nina, 'token_expired', /has expired/);
  } finally {
    moveSiteClock(0);
  }
  expect(wpUser('nina@agency.test')).toBeNull();
});

test('refused: tokens the dashboard did not sign (unknown key, HS256 with the public key, alg none)', async ({ page, request }) => {
  const go = async (token: string) => page.goto(`${wpURL}/wp-login.php?action=agency_sso&token=${token}`, { referer: `${baseURL}/` });
  // Another issuer's key, with a key id of its own.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'another-issuers-key' }));
  const body = b64url(JSON.stringify(claims({ iss: 'https://sso.elsewhere.example' })));
  await go(`${header}.${body}.${b64url(sign('sha256', Buffer.from(`${header}.${body}`), privateKey))}`);
  await expectRefused(page, 'unknown_key', /signed with a key this site does not know/);

  // The classic confusion: HS256 keyed with the dashboard's published public key.
  const jwks = await (await request.get(`${baseURL}/.well-known/jwks.json`)).json();
  const jwk = jwks.keys[0];
  const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  const h2 = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: jwk.kid }));
  const b2 = b64url(JSON.stringify(claims()));
  await go(`${h2}.${b2}.${b64url(createHmac('sha256', pem).update(`${h2}.${b2}`).digest())}`);
  await expectRefused(page, 'alg_not_allowed', /signature algorithm this site does not accept/);

  const h3 = b64url(JSON.stringify({ alg: 'none', typ: 'JWT', kid: jwk.kid }));
  await go(`${h3}.${b2}.`);
  await expectRefused(page, 'alg_not_allowed', /signature algorithm this site does not accept/);
  expect(wpUser('nina@agency.test')).toBeNull();
});

test('the back-channel route refuses what the dashboard did not send: a launch token, a message signed by another key, an empty one; nothing changes', async ({ browser, request }) => {
  const page = await personPage(browser, /Sign in as Sam Staff/);
  const launch = await launchToken(page, 'Client Site');
  const route = `${wpURL}/?rest_route=/agency-sso/v1/back-channel`;
  const before = wpUser('sam@agency.test');
  expect(before).not.toBeNull();
  const post = async (token: string) => {
    const res = await request.post(route, { form: { logout_token: token } });
    return [res.status(), (await res.json()).error];
  };
  // A launch token is never a message.
  expect(await post(launch)).toEqual([401, 'wrong_type']);
  // A message as the dashboard would send it, signed by someone else's key.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'logout+jwt', kid: 'another-issuers-key' }));
  const payload = b64url(JSON.stringify({
    iss: baseURL, aud: wpURL, sub: 'sam@agency.test', email: 'sam@agency.test', iat: now(), exp: now() + 60,
    jti: `forged-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, action: 'lock',
  }));
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), privateKey);
  expect(await post(`${header}.${payload}.${b64url(signature)}`)).toEqual([401, 'unknown_key']);
  expect(await post('')).toEqual([400, 'malformed_token']);
  // Sam's account is as it was: not locked, same role, same sessions.
  expect(wpUser('sam@agency.test')).toEqual(before);
});

/** What a site received from the dashboard's worker (end2end/wordpress/serve.sh's test mu-plugin): each token, in order. */
function inbox(siteDir: string): string[] {
  try {
    return readFileSync(`${siteDir}.inbox`, 'utf8').split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

/** An admin's view of one site's step in a person's offboarding checklist, once that step is done. */
async function waitForOutcome(browser: Browser, email: string, site: string, asked: string) {
  const admin = await otherPerson(browser, /Sign in as Ada Admin/);
  await admin.goto(`/admin/people/${personId(email)}`);
  const step = admin.locator(`[data-testid="offboarding-step"][data-url="${site}"]`).filter({ hasText: asked }).first();
  await expect(step).toHaveAttribute('data-state', 'done', { timeout: 20_000 });
  return step;
}

/** Make a site answer the dashboard 503 without reading its messages (down), or answer again. */
function holdMessages(siteDir: string, hold: boolean) {
  if (hold) writeFileSync(`${siteDir}.hold`, '');
  else rmSync(`${siteDir}.hold`, { force: true });
}

test("the dashboard's own messages, sent again, sent to the wrong site or too late, are refused by WordPress and change nothing; a site that was down gets its message, each attempt in the checklist", async ({ browser, request }) => {
  const blogDir = join(wpDir, 'blog');
  const sam = await personPage(browser, /Sign in as Sam Staff/);
  for (const name of ['Client Site', 'Client Blog']) {
    await open(sam, name);
    await expect(sam.locator('#wp-admin-bar-my-account')).toBeVisible();
    await sam.goto('/');
    await pickerLive(sam);
  }
  expect(wpUser('sam@agency.test', true)?.sessions).toBeGreaterThan(0);
  const seen = inbox(wpDir).length;
  const seenOnBlog = inbox(blogDir).length;
  holdMessages(blogDir, true);

  // An admin ends Sam's WordPress sessions from his page in the console.
  const admin = await otherPerson(browser, /Sign in as Ada Admin/);
  const errors = watchConsole(admin);
  const id = cli('users', 'list').split('\n').find((l) => l.includes('sam@agency.test'))!.split(/\s+/)[0];
  await admin.goto(`/admin/people/${id}`);
  await consoleLive(admin);
  await admin.getByRole('button', { name: 'End all WordPress sessions' }).click();

  await expect(admin.getByText(/connector site\(s\) asked to end sam@agency\.test's WordPress sessions/)).toBeVisible();
  await expect.poll(() => wpUser('sam@agency.test')?.sessions, { timeout: 15_000 }).toBe(0);
  await expect.poll(() => inbox(blogDir).length, { timeout: 15_000 }).toBeGreaterThan(seenOnBlog);
  // The site's message, carried out; the blog's, held unread: both signed by the dashboard's key.
  const carriedOut = inbox(wpDir)[seen];
  const heldForBlog = inbox(blogDir)[seenOnBlog];
  const blogBefore = wpUser('sam@agency.test', true);
  expect(blogBefore?.sessions).toBeGreaterThan(0);

  const post = async (url: string, token: string) => {
    const res = await request.post(`${url}/?rest_route=/agency-sso/v1/back-channel`, { form: { logout_token: token } });
    return [res.status(), (await res.json()).error];
  };
  // Sent again: refused, the site's jti store has it.
  expect(await post(wpURL, carriedOut)).toEqual([409, 'token_replayed']);
  // The blog's message at the other site: not for it.
  expect(await post(wpURL, heldForBlog)).toEqual([401, 'wrong_audience']);
  // The blog's message once its two minutes are over (the blog's clock ten minutes on).
  moveSiteClock(600);
  expect(await post(wpBlogURL, heldForBlog)).toEqual([401, 'token_expired']);
  moveSiteClock(0);
  // Nothing changed on the blog.
  expect(wpUser('sam@agency.test', true)).toEqual(blogBefore);

  // The blog is back; the dashboard's next attempt (a new token) gets through.
  holdMessages(blogDir, false);
  moveClock(30);
  await expect.poll(() => wpUser('sam@agency.test', true)?.sessions, { timeout: 20_000 }).toBe(0);
  moveClock(0);
  const blogStep = admin.locator(`[data-testid="offboarding-step"][data-url="${wpBlogURL}"]`).filter({ hasText: 'End all sessions' }).first();
  await expect(blogStep).toHaveAttribute('data-state', 'done', { timeout: 15_000 });
  const history = blogStep.getByTestId('attempt-history');
  await history.locator('summary').click();
  // One attempt or more while it was down (a retry may have come meanwhile), then the one that got through.
  const attempts = history.locator('li');
  await expect(attempts.first()).toHaveText(/^Attempt 1, .*did not get through, tried again later: HTTP 503: site_down$/);
  await expect(attempts.last()).toHaveText(/^Attempt \d, .*delivered: the site carried it out$/);
  await expect(history.locator('summary')).toHaveText(`${await attempts.count()} attempt(s)`);
  expect(await attempts.count()).toBeGreaterThanOrEqual(2);
  // The page hydrated and updated itself without an error.
  expect(errors).toEqual([]);
});

test('a late set-role never undoes a newer one: WordPress answers it superseded and keeps the newer role', async ({ request }) => {
  expect(wpUser('sam@agency.test')?.roles).toEqual(['editor']);
  const seen = inbox(wpDir).length;
  // The site is down while Sam is lowered to subscriber: that message waits, its token in hand.
  holdMessages(wpDir, true);
  try {
    cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'subscriber');
    await expect.poll(() => inbox(wpDir).length, { timeout: 15_000 }).toBeGreaterThan(seen);
  } finally {
    holdMessages(wpDir, false);
  }
  const older = inbox(wpDir)[seen];
  expect(JSON.parse(Buffer.from(older.split('.')[1], 'base64url').toString())).toMatchObject({ action: 'set-role', wp_role: 'subscriber' });
  // Then raised to author; that message gets through.
  cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'author');
  await expect.poll(() => wpUser('sam@agency.test')?.roles, { timeout: 20_000 }).toEqual(['author']);
  // The older one arrives late (an attempt still on its way): nothing changes.
  const res = await request.post(`${wpURL}/?rest_route=/agency-sso/v1/back-channel`, { form: { logout_token: older } });
  expect(res.status()).toBe(200);
  expect(await res.json()).toMatchObject({ action: 'set-role', superseded: true, user_found: true, role_before: 'author', role_after: 'author' });
  expect(wpUser('sam@agency.test')?.roles).toEqual(['author']);
  // The rule itself, in this WordPress: the same seq again acts (a retry whose answer was lost), an older one does not.
  const script = fileURLToPath(new URL('../wordpress/message-order-check.php', import.meta.url));
  const out = execFileSync('php', [script, wpDir]).toString();
  for (const check of ['the same message again (its answer was lost) acts again', 'an older one (seq 5) does not act', 'message order: all checks passed']) {
    expect(out).toContain(check);
  }
  cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'editor');
  await expect.poll(() => wpUser('sam@agency.test')?.roles, { timeout: 20_000 }).toEqual(['editor']);
});

test("an account made before the dashboard vouched for the address keeps nothing its maker held: sessions, application passwords and password end when it is bound", async ({ browser, request }) => {
  const blogDir = join(wpDir, 'blog');
  // Someone signed up on the blog with Nina's address (no e-mail check), chose a password, stays signed in.
  wpStateIn(blogDir, 'add-user', 'nina@agency.test', 'nina-signup', 'subscriber');
  wpStateIn(blogDir, 'set-password', 'nina@agency.test', 'Chosen-By-Whoever-7');
  expect(wpStateIn(blogDir, 'session', 'nina@agency.test')).toBe(1);
  const app = wpStateIn(blogDir, 'app-password', 'nina@agency.test') as { login: string; password: string };
  cli('grants', 'add', 'nina@agency.test', wpBlogURL, '--role', 'author');
  try {
    const nina = await personPage(browser, /Sign in as Nina Newhire/);
    await open(nina, 'Client Blog');
    await expect(nina).toHaveURL(`${wpBlogURL}/wp-admin/`);
    await expect(nina.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Nina Newhire');
    // The account is hers now, with only the session this launch made.
    expect(wpUserIn(blogDir, 'nina@agency.test')).toMatchObject({ login: 'nina-signup', roles: ['author'], subject: `${baseURL} ${personId('nina@agency.test')}`, sessions: 1, app_passwords: 0 });
    expect(wpStateIn(blogDir, 'check-password', 'nina@agency.test', 'Chosen-By-Whoever-7')).toBe(false);
    const res = await request.get(`${wpBlogURL}/?rest_route=/wp/v2/users/me`, {
      headers: { Authorization: `Basic ${Buffer.from(`${app.login}:${app.password}`).toString('base64')}` },
    });
    expect(res.status()).toBe(401);
  } finally {
    cli('grants', 'revoke', 'nina@agency.test', wpBlogURL);
  }
});

test("an account whose role carries an administrator's capability under another name is never taken over by e-mail", async ({ browser }) => {
  // A role editor's custom role that may promote users: an administrator in all but name.
  wpState('add-user', 'quinn@agency.test', 'steward', 'site_steward', 'promote_users', 'list_users');
  cli('grants', 'add', 'quinn@agency.test', wpURL, '--role', 'editor');
  try {
    const quinn = await personPage(browser, /Sign in as Quinn/);
    await open(quinn, 'Client Site');
    await expectRefused(quinn, 'account_link_required', /administrator account with your e-mail address/);
    expect(wpUser('quinn@agency.test')).toMatchObject({ login: 'steward', roles: ['site_steward'], subject: '', sessions: 0 });
  } finally {
    cli('grants', 'revoke', 'quinn@agency.test', wpURL);
  }
});

test('refused: a launch without a Referer, unless the site accepts those', async ({ browser }) => {
  const page = await personPage(browser, /Sign in as Sam Staff/);
  const token = await launchToken(page, 'Client Site');
  // Opened from nowhere (a link pasted into the address bar, or sent to a colleague): no Referer.
  const bare = await (await browser.newContext()).newPage();
  await bare.goto(`${wpURL}/wp-login.php?action=agency_sso&token=${token}`);
  await expectRefused(bare, 'missing_referer', /did not say which page it was opened from/);
  wpOption(wpDir, 'agency_sso_allow_missing_referer', '1');
  try {
    const again = await launchToken(page, 'Client Site');
    const allowed = await (await browser.newContext()).newPage();
    await allowed.goto(`${wpURL}/wp-login.php?action=agency_sso&token=${again}`);
    await expect(allowed.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  } finally {
    wpOption(wpDir, 'agency_sso_allow_missing_referer', '0');
  }
});

test('behind a proxy that ends TLS, the site is its https address: Sam lands there, and its settings page says so', async ({ browser }) => {
  cli('sites', 'add', '--name', 'Client Edge Site', '--client', 'Client', '--url', wpEdgeURL, '--profile', 'connector');
  cli('grants', 'add', 'sam@agency.test', wpEdgeURL, '--role', 'administrator');
  const sam = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  await signInAs(sam, /Sign in as Sam Staff/);
  await pickerLive(sam);
  await open(sam, 'Client Edge Site');
  await expect(sam).toHaveURL(`${wpEdgeURL}/wp-admin/`);
  await expect(sam.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  expect(wpUserIn(join(wpDir, 'edge'), 'sam@agency.test', wpEdgeURL)).toMatchObject({ roles: ['administrator'] });
  // The address WordPress gives the dashboard is the https one, though PHP saw plain http.
  await sam.goto(`${wpEdgeURL}/wp-admin/options-general.php?page=agency-sso-connector`);
  await expect(sam.locator('#agency-sso-audience')).toHaveText(wpEdgeURL);
});

test('a site that has not reached the dashboard for over 7 days stops trusting its last key set, and says so', async ({ browser }) => {
  const blogDir = join(wpDir, 'blog');
  const sam = await personPage(browser, /Sign in as Sam Staff/);
  await open(sam, 'Client Blog');
  await expect(sam).toHaveURL(`${wpBlogURL}/wp-admin/`);
  // The blog is cut off from the dashboard, and eight days pass on its clock.
  writeFileSync(`${blogDir}.offline`, '');
  moveSiteClock(8 * 86_400);
  try {
    const again = await personPage(browser, /Sign in as Sam Staff/);
    await open(again, 'Client Blog');
    await expectRefused(again, 'key_set_stale', /no longer trusts the keys it last fetched/);
    const wp = await wpPasswordLogin(browser, wpBlogURL, 'admin');
    await wp.goto(`${wpBlogURL}/wp-admin/options-general.php?page=agency-sso-connector`);
    await expect(wp.locator('#agency-sso-keys-stale')).toContainText('sign-ins from the dashboard are refused until this site can fetch its keys again');
  } finally {
    moveSiteClock(0);
    rmSync(`${blogDir}.offline`, { force: true });
  }
  // Back in touch: the next launch fetches the keys and gets in.
  const back = await personPage(browser, /Sign in as Sam Staff/);
  await open(back, 'Client Blog');
  await expect(back).toHaveURL(`${wpBlogURL}/wp-admin/`);
});

test('refused: a good token opened from another site than the dashboard (Referer)', async ({ browser }) => {
  const page = await personPage(browser, /Sign in as Sam Staff/);
  const token = await launchToken(page, 'Client Site');
  const other = await (await browser.newContext()).newPage();
  await other.goto(`${wpURL}/wp-login.php?action=agency_sso&token=${token}`, { referer: 'https://phish.example/' });
  await expectRefused(other, 'wrong_referer', /not opened from your agency dashboard/);
});

test('refused: a role the site does not have', async ({ browser }) => {
  cli('sites', 'set-roles', wpURL, 'administrator,editor,author,contributor,subscriber,shop_manager');
  cli('grants', 'add', 'nina@agency.test', wpURL, '--role', 'shop_manager');
  const nina = await personPage(browser, /Sign in as Nina Newhire/);
  await open(nina, 'Client Site');
  await expectRefused(nina, 'role_not_allowed', /does not exist on this site or is not allowed/);
  expect(wpUser('nina@agency.test')).toBeNull();
});

test('an administrator account made by hand is never taken over: refused until a site admin links it', async ({ browser }) => {
  // The site's own admin account has Ada's address and is linked to nobody.
  cli('grants', 'add', 'admin@agency.test', wpURL, '--role', 'administrator');
  const ada = await personPage(browser, /Sign in as Ada Admin/);
  await open(ada, 'Client Site');
  await expectRefused(ada, 'account_link_required', /administrator account with your e-mail address/);
  expect(wpUser('admin@agency.test')).toMatchObject({ login: 'admin', subject: '', sessions: 0 });

  // The site admin signs in with the password and links the account in Settings → Agency SSO.
  const wp = await (await browser.newContext()).newPage();
  await wp.goto(`${wpURL}/wp-login.php`);
  await wp.getByLabel('Username or Email Address').fill('admin');
  await wp.getByLabel('Password', { exact: true }).fill(wpAdminPassword);
  await wp.getByRole('button', { name: 'Log In' }).click();
  await wp.goto(`${wpURL}/wp-admin/options-general.php?page=agency-sso-connector`);
  await expect(wp.locator('#agency-sso-issuer')).toHaveText(baseURL);
  await expect(wp.locator('#agency-sso-audience')).toHaveText(wpURL);
  await wp.locator('#agency-sso-link-user').selectOption({ label: 'admin' });
  await wp.locator('#agency-sso-link-email').fill('admin@agency.test');
  await wp.getByRole('button', { name: 'Link', exact: true }).click();
  await expect(wp.locator('#agency-sso-notice')).toHaveText('admin is now linked to admin@agency.test in the dashboard.');
  await expect(wp.locator('#agency-sso-linked')).toContainText(`${baseURL} admin@agency.test`);

  // Now Ada lands in her own account, and the link moves from her e-mail
  // address to her stable id in the dashboard (as an account bound by an
  // earlier version does at its person's next launch).
  await open(ada, 'Client Site');
  await expect(ada).toHaveURL(`${wpURL}/wp-admin/`);
  await expect(ada.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Ada Admin');
  expect(wpUser('admin@agency.test')).toMatchObject({ login: 'admin', roles: ['administrator'], subject: `${baseURL} ${personId('admin@agency.test')}` });

  // Linked to the dashboard, the account no longer signs in with its password.
  const again = await (await browser.newContext()).newPage();
  await again.goto(`${wpURL}/wp-login.php`);
  await again.getByLabel('Username or Email Address').fill('admin');
  await again.getByLabel('Password', { exact: true }).fill(wpAdminPassword);
  await again.getByRole('button', { name: 'Log In' }).click();
  await expect(again.locator('#login_error')).toContainText('This account signs in through your agency dashboard');
});

test('the settings page fetches the key set on demand and shows it', async ({ browser, request }) => {
  const wp = await (await browser.newContext()).newPage();
  // Break-glass: the site admin keeps password access when named.
  execFileSync('php', ['-r', `$_SERVER['HTTP_HOST']='127.0.0.1'; require '${wpDir}/wp-load.php'; update_option('agency_sso_break_glass', 'admin');`]);
  await wp.goto(`${wpURL}/wp-login.php`);
  await wp.getByLabel('Username or Email Address').fill('admin');
  await wp.getByLabel('Password', { exact: true }).fill(wpAdminPassword);
  await wp.getByRole('button', { name: 'Log In' }).click();
  await expect(wp.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Ada Admin');
  await wp.goto(`${wpURL}/wp-admin/options-general.php?page=agency-sso-connector`);
  await wp.getByRole('button', { name: 'Test the connection' }).click();
  const jwks = await (await request.get(`${baseURL}/.well-known/jwks.json`)).json();
  await expect(wp.locator('#agency-sso-notice')).toHaveText(`Connected: the dashboard publishes ${jwks.keys.length} key${jwks.keys.length === 1 ? '' : 's'}.`);
  await expect(wp.locator('.agency-sso-kid')).toHaveText(jwks.keys.map((k: { kid: string }) => k.kid));
});

test('accounts linked to the dashboard get no application passwords either (break-glass logins excepted)', async ({ request }) => {
  const me = async (app: { login: string; password: string }) => request.get(`${wpURL}/?rest_route=/wp/v2/users/me`, {
    headers: { Authorization: `Basic ${Buffer.from(`${app.login}:${app.password}`).toString('base64')}` },
  });
  // Sam is linked (he launched); an application password made for him does not sign in over REST.
  const sam = wpState('app-password', 'sam@agency.test') as { login: string; password: string };
  const refused = await me(sam);
  // WordPress 6.1 answers as for any request it could not sign in (the
  // application password's own refusal comes after its authentication check).
  expect(refused.status()).toBe(401);
  expect((await refused.json()).code).toBe('rest_not_logged_in');
  // The site admin's account is linked too, but named for break-glass: it keeps them.
  wpOption(wpDir, 'agency_sso_break_glass', 'admin');
  try {
    const admin = wpState('app-password', 'admin@agency.test') as { login: string; password: string };
    const ok = await me(admin);
    expect(ok.status()).toBe(200);
    expect((await ok.json()).slug).toBe('admin');
  } finally {
    wpOption(wpDir, 'agency_sso_break_glass', '');
  }
});

test("a connector site's page in the console offers the plugin and the site's wp-config.php line", async ({ browser }) => {
  const ada = await personPage(browser, /Sign in as Ada Admin/);
  await ada.goto('/admin/sites?q=client%20blog');
  await ada.getByRole('link', { name: 'Client Blog', exact: true }).click();
  await expect(ada.getByText('Sites › Client Blog')).toBeVisible();
  const setup = ada.getByTestId('connector-setup');
  await expect(setup).toBeVisible();
  await expect(ada.getByTestId('connector-config-line')).toHaveText(`define( 'AGENCY_SSO_ISSUER', '${baseURL}' );`);
  await expect(setup).toContainText(wpBlogURL);
  await expect(ada.getByLabel('Plugin profile')).toHaveValue('connector');

  // The zip WordPress' uploader takes: the plugin's folder at its top, the same files as the repository's.
  const [download] = await Promise.all([ada.waitForEvent('download'), setup.getByRole('link', { name: 'the agency-sso connector plugin' }).click()]);
  expect(download.suggestedFilename()).toBe('agency-sso-connector.zip');
  const listing = execFileSync('python3', ['-m', 'zipfile', '-l', await download.path()]).toString();
  for (const file of ['agency-sso-connector.php', 'uninstall.php', 'includes/class-agency-sso-jwt.php', 'includes/class-agency-sso-login.php']) {
    expect(listing).toContain(`agency-sso-connector/${file}`);
  }
  const main = execFileSync('python3', ['-c', 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read("agency-sso-connector/agency-sso-connector.php").decode())', await download.path()]).toString();
  expect(main).toBe(readFileSync(fileURLToPath(new URL('../../wordpress/agency-sso-connector/agency-sso-connector.php', import.meta.url)), 'utf8'));

  // Other profiles' pages show no such thing.
  await ada.goto('/admin/sites?q=demo%20site');
  await ada.getByRole('link', { name: 'Demo Site', exact: true }).click();
  await expect(ada.getByText('Sites › Demo Site')).toBeVisible();
  await expect(ada.getByTestId('connector-setup')).toHaveCount(0);
});

test("the README's steps on a fresh WordPress: upload the zip, activate it, add the site in the console, open it", async ({ browser, request }) => {
  const fresh = `${wpURL}/fresh`;
  // The plugin zip as the console offers it.
  const zip = join(mkdtempSync(join(tmpdir(), 'connector-zip-')), 'agency-sso-connector.zip');
  writeFileSync(zip, await (await request.get(`${baseURL}/agency-sso-connector.zip`)).body());

  // The site's admin uploads and activates it (wp-config.php already has the one line).
  const wp = await (await browser.newContext()).newPage();
  await wp.goto(`${fresh}/wp-login.php`);
  await wp.getByLabel('Username or Email Address').fill('admin');
  await wp.getByLabel('Password', { exact: true }).fill(wpAdminPassword);
  await wp.getByRole('button', { name: 'Log In' }).click();
  await wp.goto(`${fresh}/wp-admin/plugin-install.php?tab=upload`);
  await wp.locator('#pluginzip').setInputFiles(zip);
  await wp.getByRole('button', { name: 'Install Now' }).click();
  await expect(wp.getByText('Plugin installed successfully.')).toBeVisible();
  await wp.getByRole('link', { name: 'Activate Plugin' }).click();
  await expect(wp.getByText('Plugin activated.')).toBeVisible();
  await expect(wp.locator('#the-list tr[data-slug="agency-sso-connector"]')).toContainText('agency-sso connector');
  await wp.goto(`${fresh}/wp-admin/options-general.php?page=agency-sso-connector`);
  await expect(wp.locator('#agency-sso-audience')).toHaveText(fresh);
  await wp.getByRole('button', { name: 'Test the connection' }).click();
  await expect(wp.locator('#agency-sso-notice')).toContainText('Connected: the dashboard publishes');

  // An agency admin adds the site with the connector profile.
  const ada = await personPage(browser, /Sign in as Ada Admin/);
  await ada.goto('/admin/sites/new');
  await consoleLive(ada);
  await ada.getByLabel('Name', { exact: true }).fill('Fresh Client Site');
  await ada.getByLabel('Client', { exact: true }).fill('Fresh Client');
  await ada.getByLabel('URL', { exact: true }).fill(fresh);
  await ada.getByLabel('Plugin profile').selectOption('connector');
  await ada.getByRole('button', { name: 'Add the site' }).click();
  await expect(ada.getByText('Sites › Fresh Client Site')).toBeVisible();
  await ada.reload();
  await expect(ada.getByTestId('connector-config-line')).toHaveText(`define( 'AGENCY_SSO_ISSUER', '${baseURL}' );`);
  cli('grants', 'add', 'sam@agency.test', fresh, '--role', 'editor');

  // Sam opens it and is in its wp-admin.
  const sam = await personPage(browser, /Sign in as Sam Staff/);
  await open(sam, 'Fresh Client Site');
  await expect(sam).toHaveURL(`${fresh}/wp-admin/`);
  await expect(sam.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
  expect(wpUserIn(join(wpDir, 'fresh'), 'sam@agency.test')).toMatchObject({ roles: ['editor'] });
});

test('just-in-time: Sam asks for administrator, Ada approves in her browser, WordPress makes him administrator at once and editor again when the time is up, without Sam launching', async ({ browser }) => {
  test.setTimeout(60_000);
  cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'editor', '--eligible', 'administrator', '--max-hours', '2');
  try {
    const sam = await personPage(browser, /Sign in as Sam Staff/);
    await open(sam, 'Client Site');
    await expect(sam.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
    expect(wpUser('sam@agency.test')!.roles).toEqual(['editor']);

    await sam.goto('/');
    await pickerLive(sam);
    // The site's row in the picker offers the higher role; the link leads to
    // the request form, its reason field ready to type in.
    const siteRow = sam.getByTestId('site-row').filter({ has: sam.locator('.name', { hasText: /^Client Site$/ }) });
    const row = sam.getByRole('region', { name: 'Higher access' }).getByTestId('eligible-site').filter({ hasText: 'Client Site' });
    await siteRow.getByRole('link', { name: 'Request administrator' }).click();
    await expect(row.getByLabel('Why (the ticket or incident)')).toBeFocused();
    await expect(row).toContainText('You are editor here; you may ask for administrator for up to 2 hours.');
    // Too short a reason: refused in words, nothing asked.
    await row.getByLabel('Why (the ticket or incident)').fill('urgent!!');
    await row.getByLabel('Why (the ticket or incident)').evaluate((e: HTMLInputElement) => e.removeAttribute('minlength'));
    await row.getByRole('button', { name: 'Request administrator' }).click();
    await expect(sam.getByTestId('access-problem')).toContainText('reason_too_short');
    await row.getByLabel('Why (the ticket or incident)').fill('INC-4711: the checkout is broken');
    await row.getByLabel('For').selectOption({ label: '1 hour' });
    await row.getByRole('button', { name: 'Request administrator' }).click();
    await expect(row.getByTestId('access-state')).toHaveText('You asked for administrator for 1 hour: waiting for an approver.');
    await sam.reload();
    await pickerLive(sam);
    await expect(siteRow.getByTestId('row-ask')).toHaveText('administrator requested');

    // Ada, in her own browser, signs in afresh (approving is sensitive) and decides.
    const ada = await otherPerson(browser, /Sign in as Ada Admin/);
    await signInAgain(ada, /Sign in as Ada Admin/, '/admin/access');
    await consoleLive(ada);
    await expect(ada.getByTestId('waiting-count')).toHaveText('1');
    const request = ada.getByTestId('request').filter({ hasText: 'sam@agency.test asks for administrator on Client Site' });
    await expect(request.getByTestId('request-reason')).toHaveText('INC-4711: the checkout is broken');
    await expect(request.getByTestId('request-activity')).toContainText('last entered');
    await request.getByRole('button', { name: 'Approve' }).click();
    await expect(ada.getByTestId('done').first()).toContainText(`Approved: sam@agency.test is administrator on ${wpURL} until`);
    await expect(ada.getByTestId('elevation').filter({ hasText: 'sam@agency.test is administrator on Client Site' })).toBeVisible();

    // WordPress made Sam administrator, Sam doing nothing.
    await expect.poll(() => wpUser('sam@agency.test')!.roles, { timeout: 20_000 }).toEqual(['administrator']);
    // His next launch lands as administrator: the Plugins menu is there.
    await open(sam, 'Client Site');
    await expect(sam.locator('#menu-plugins')).toBeVisible();

    // An hour and a minute later on both clocks: lowered by the dashboard's
    // worker, without Sam launching.
    moveClock(3660);
    moveSiteClock(3660);
    await expect.poll(() => wpUser('sam@agency.test')!.roles, { timeout: 30_000 }).toEqual(['editor']);
    // Each step is one record of the audit chain.
    for (const k of ['elevation_requested', 'elevation_approved', 'elevation_started', 'elevation_expired']) {
      const rows = cli('audit', 'export', '--format', 'jsonl', '--event', k).trim().split('\n').map((l) => JSON.parse(l));
      expect(rows.filter((r) => r.person === 'sam@agency.test' && r.site_url === wpURL), k).toHaveLength(1);
    }
  } finally {
    moveClock(0);
    moveSiteClock(0);
    cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'editor');
  }
});

/** What the agency's webhook received: each POST's signature header, idempotency key and body. */
function webhookHits(): { signature: string; key: string; body: string }[] {
  let text = '';
  try { text = readFileSync(webhookLog, 'utf8'); } catch { /* nothing yet */ }
  // The notifications only (the audit stream's browser test posts to another path).
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((h) => h.path === '/hook');
}

test('break-glass: where the site allows it, Sam approves his own request; the audit log flags it and the agency webhook is told, signed', async ({ browser }) => {
  cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'editor', '--eligible', 'administrator', '--max-hours', '2');
  cli('access', 'break-glass', wpURL, '--minutes', '30');
  try {
    const sam = await personPage(browser, /Sign in as Sam Staff/);
    await open(sam, 'Client Site');
    await expect(sam.locator('#wp-admin-bar-my-account > a .display-name')).toHaveText('Sam Staff');
    // Approving, even one's own, needs a recent sign-in.
    await signInAgain(sam, /Sign in as Sam Staff/, '/');
    await pickerLive(sam);
    const row = sam.getByRole('region', { name: 'Higher access' }).getByTestId('eligible-site').filter({ hasText: 'Client Site' });
    await row.getByLabel('Why (the ticket or incident)').fill('INC-4712: the site is down at 3 a.m.');
    await row.getByLabel('For').selectOption({ label: '30 minutes' });
    await row.getByRole('button', { name: 'Request administrator' }).click();
    await row.getByRole('button', { name: 'Approve it myself (break-glass)' }).click();
    await expect(sam.getByTestId('access-done')).toContainText('Break-glass: you are administrator on Client Site until');
    await expect(row.getByTestId('access-state')).toContainText('You are administrator here until');
    await expect.poll(() => wpUser('sam@agency.test')!.roles, { timeout: 20_000 }).toEqual(['administrator']);

    // The audit log flags it.
    const ada = await otherPerson(browser, /Sign in as Ada Admin/);
    await ada.goto('/audit?event=elevation_self_approved');
    const record = ada.getByTestId('audit-record').filter({ hasText: 'sam@agency.test' }).first();
    await expect(record.getByTestId('break-glass')).toHaveText('break-glass');

    // The agency's webhook got it, signed with the shared secret.
    let hit: { signature: string; key: string; body: string } | undefined;
    await expect.poll(() => (hit = webhookHits().find((h) => JSON.parse(h.body).agency_sso.facts.event === 'elevation_self_approved')), { timeout: 15_000 }).toBeTruthy();
    const body = JSON.parse(hit!.body);
    expect(body.text).toBe(`BREAK-GLASS: sam@agency.test approved their own request for administrator on Client Site (${wpURL}) for 30 minutes: "INC-4712: the site is down at 3 a.m.".`);
    const [, t, v1] = hit!.signature.match(/^t=(\d+),v1=([0-9a-f]{64})$/)!;
    expect(v1).toBe(createHmac('sha256', webhookSecret).update(`${t}.${hit!.body}`).digest('hex'));
    expect(hit!.key).toBe(body.agency_sso.id);
  } finally {
    cli('access', 'break-glass', wpURL, '--off');
    // Eligible for nothing again: what rested on it ends, and WordPress is told.
    cli('grants', 'add', 'sam@agency.test', wpURL, '--role', 'editor');
  }
  await expect.poll(() => wpUser('sam@agency.test')!.roles, { timeout: 20_000 }).toEqual(['editor']);
});
