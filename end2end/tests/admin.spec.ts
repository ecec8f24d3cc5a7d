import { test, expect, type Page } from '@playwright/test';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { demoURL, shopSecret, staffSites, webhookLog, webhookPort } from '../playwright.config';
import { cli, consoleLive, moveClock, otherPerson, signInAgain, signInAs, watchConsole } from './helpers';

const shots = fileURLToPath(new URL('../../target/screenshots/', import.meta.url));
mkdirSync(shots, { recursive: true });

/** A full-page screenshot for the product review, on a laptop and a phone. */
async function screenshot(page: Page, name: string) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true });
  if (size) await page.setViewportSize(size);
}

/** Ada Admin, signed in, on a console page, hydrated (forms answer in place). */
/** Ada, signed in afresh (as sensitive actions need), on `path`. */
async function asAdmin(page: Page, path: string, fresh = true) {
  await signInAs(page, /Sign in as Ada Admin/);
  await expect(page.getByRole('heading', { name: 'Welcome, Ada Admin' })).toBeVisible();
  if (fresh) {
    await signInAgain(page, /Sign in as Ada Admin/, path);
  } else {
    await page.goto(path);
  }
  await consoleLive(page);
}

test.afterEach(() => moveClock(0));

test('an admin finds sites among 5,000, adds one with field errors shown beside the fields, grants access and deletes it with a typed confirmation', async ({ page }) => {
  const errors = watchConsole(page);
  await asAdmin(page, '/admin/sites');
  await expect(page.getByRole('heading', { name: 'Sites', exact: true })).toBeVisible();
  // Every site of the demo data (Sam's 5,000 and one locked away from him).
  await expect(page.getByTestId('list-count')).toHaveText(`Showing 1–50 of ${(staffSites + 1).toLocaleString('en-US')}`);
  await page.getByLabel('Search').fill('demo');
  await page.getByRole('button', { name: 'Find' }).click();
  await expect(page.getByTestId('list-count')).toHaveText('Showing 1–2 of 2');
  await screenshot(page, 'admin-sites');

  await page.getByRole('link', { name: 'Add a site' }).click();
  await expect(page.getByRole('heading', { name: 'Add a site' })).toBeVisible();
  await consoleLive(page);
  await page.getByLabel('Client', { exact: true }).fill('Northwind');
  await page.getByLabel('URL', { exact: true }).fill('ftp://northwind');
  await page.getByRole('button', { name: 'Add the site' }).click();
  await expect(page.getByTestId('site-name-error')).toHaveText('Give the site name.');
  await expect(page.getByTestId('site-url-error')).toContainText('https');
  await expect(page.getByLabel('URL', { exact: true })).toHaveAttribute('aria-invalid', 'true');
  await screenshot(page, 'admin-site-new-errors');
  await page.getByLabel('Name', { exact: true }).fill('Northwind Shop');
  await page.getByLabel('URL', { exact: true }).fill('https://shop.northwind.example/');
  await page.getByRole('button', { name: 'Add the site' }).click();
  await expect(page.getByText('Sites › Northwind Shop')).toBeVisible();
  await consoleLive(page);

  await page.getByLabel('E-mail', { exact: true }).fill('sasha@agency.test');
  await page.getByLabel('Role', { exact: true }).selectOption('editor');
  await page.getByRole('button', { name: 'Grant', exact: true }).click();
  await expect(page.getByText('sasha@agency.test can now enter Northwind Shop as editor.')).toBeVisible();
  await expect(page.locator('[data-testid="access-row"][data-email="sasha@agency.test"]')).toContainText('Direct');
  await screenshot(page, 'admin-site');

  await page.getByLabel("Type the site's URL to confirm").fill('northwind');
  await page.getByRole('button', { name: 'Delete site' }).click();
  await expect(page.getByTestId('delete-confirm-error')).toContainText('https://shop.northwind.example');
  await page.getByLabel("Type the site's URL to confirm").fill('https://shop.northwind.example');
  await page.getByRole('button', { name: 'Delete site' }).click();
  await expect(page).toHaveURL(/\/admin\/sites$/);
  await page.goto('/admin/sites?q=northwind');
  await expect(page.getByTestId('list-count')).toHaveText('Nothing matches');
  expect(cli('audit', 'export', '--format', 'jsonl', '--event', 'site_deleted')).toContain('https://shop.northwind.example');
  // Field errors come back as 422, which Chromium logs; nothing else may be in the console.
  expect(errors.filter((e) => !e.includes('status of 422'))).toEqual([]);
});

test('choosing miniOrange shows what its free plugin will not do, and a secret another site has is refused', async ({ page }) => {
  const errors = watchConsole(page);
  await asAdmin(page, '/admin/sites/new');
  await expect(page.getByRole('heading', { name: 'Add a site' })).toBeVisible();
  await consoleLive(page);
  const limits = page.getByTestId('miniorange-limits');
  await expect(limits).toHaveCount(0);
  await page.getByLabel('Plugin profile').selectOption('miniorange');
  await expect(limits).toContainText('It does not apply roles');
  await expect(limits).toContainText('by login name only');
  await expect(limits).toContainText('every launch lands on the site\'s home page');
  await expect(limits).toContainText('a secret another site already uses is refused');
  await page.getByLabel('Name', { exact: true }).fill('Northwind Outlet');
  await page.getByLabel('Client', { exact: true }).fill('Northwind');
  await page.getByLabel('URL', { exact: true }).fill('https://outlet.northwind.example');
  await page.getByLabel('Signing').selectOption('HS256');
  // The demo shop's secret, already in use.
  await page.getByLabel('Shared secret').fill(shopSecret);
  await page.getByRole('button', { name: 'Add the site' }).click();
  await expect(page.getByTestId('site-secret-error')).toContainText(`${demoURL}/shop already signs with this secret`);
  await page.getByLabel('Shared secret').fill('NorthwindOutletSecretAbcdefghijkl');
  await page.getByRole('button', { name: 'Add the site' }).click();
  await expect(page.getByText('Sites › Northwind Outlet')).toBeVisible();
  await consoleLive(page);
  await expect(page.getByTestId('miniorange-limits')).toBeVisible();
  await page.getByLabel('Plugin profile').selectOption('twl-sso');
  await expect(page.getByTestId('miniorange-limits')).toHaveCount(0);
  expect(errors.filter((e) => !e.includes('status of 422'))).toEqual([]);
});

test('a CSV import shows every invalid row with its reason before anything changes, then applies the valid rows at once', async ({ page }) => {
  await asAdmin(page, '/admin/sites/import');
  const csv = [
    'name,client,url,roles,enabled',
    'Contoso Shop,Contoso,https://shop.contoso.example,,',
    'Contoso Blog,Contoso,https://blog.contoso.example,editor author,no',
    ',Contoso,not-a-url,,',
    'Contoso Wiki,Contoso,https://wiki.contoso.example,Editor!,',
    'Contoso Docs,Contoso,https://docs.contoso.example,,',
  ].join('\n');
  await page.getByLabel('CSV file').setInputFiles({ name: 'sites.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await expect(page.getByLabel('Or paste the CSV')).toHaveValue(csv);
  await page.getByRole('button', { name: 'Preview changes' }).click();
  await expect(page.getByText('Dry run: nothing was changed yet. 3 to add, 0 to update, 0 unchanged, 2 invalid.')).toBeVisible();
  const invalid = page.locator('[data-testid="preview-row"][data-action="invalid"]');
  await expect(invalid).toHaveCount(2);
  await expect(invalid.nth(0)).toContainText('name: give the site name');
  await expect(invalid.nth(1)).toContainText('roles:');
  await screenshot(page, 'admin-import-preview');
  expect(cli('sites', 'list')).not.toContain('contoso');

  await page.getByTestId('apply-import').click();
  await expect(page.getByText('Imported: 3 site(s) added, 0 updated, 0 unchanged, 2 invalid row(s) skipped.')).toBeVisible();
  await page.goto('/admin/sites?client=Contoso');
  await expect(page.getByTestId('list-count')).toHaveText('Showing 1–3 of 3');
  await expect(page.locator('[data-testid="site-row"][data-url="https://blog.contoso.example"]')).toContainText('Disabled');

  // Bulk: tick every site on the page, grant one person a role on all of them.
  await consoleLive(page);
  await page.getByLabel('Select every site on this page').check();
  await expect(page.getByTestId('selected-count')).toContainText('3 sites selected.');
  await page.getByLabel('People (e-mail addresses)').fill('sasha@agency.test');
  await page.getByLabel('Role', { exact: true }).selectOption('author');
  await page.getByRole('button', { name: 'Grant on selected sites' }).click();
  await expect(page.getByText('Granted author on 3 site(s) to sasha@agency.test: 3 grant(s) set.')).toBeVisible();
  await screenshot(page, 'admin-sites-bulk');
  expect(cli('grants', 'list', '--email', 'sasha@agency.test')).toContain('https://docs.contoso.example');
});

test('a team granted a client gives a new hire access to all its sites at their first sign-in', async ({ page, browser }) => {
  cli('sites', 'add', '--name', 'Fabrikam Shop', '--client', 'Fabrikam', '--url', 'https://shop.fabrikam.example');
  cli('sites', 'add', '--name', 'Fabrikam Blog', '--client', 'Fabrikam', '--url', 'https://blog.fabrikam.example');
  await asAdmin(page, '/admin/teams');
  await page.getByLabel('Name', { exact: true }).fill('Fabrikam crew');
  await page.getByLabel('Description').fill('Everyone who looks after Fabrikam');
  await page.getByRole('button', { name: 'Create team' }).click();
  await expect(page.getByTestId('team-name')).toHaveText('Fabrikam crew');
  await consoleLive(page);
  await page.getByLabel('Add people (e-mail addresses)').fill('nina@agency.test');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await expect(page.getByText('Added nina@agency.test.')).toBeVisible();
  await page.getByLabel('On', { exact: true }).selectOption('client:Fabrikam');
  await page.getByLabel('Role', { exact: true }).selectOption('editor');
  await page.getByRole('button', { name: 'Grant', exact: true }).click();
  await expect(page.getByText('The team is now editor on every site of Fabrikam.')).toBeVisible();
  await expect(page.getByTestId('team-grant')).toContainText('Every site of Fabrikam as editor');
  await screenshot(page, 'admin-team');
  await page.goto('/admin/teams');
  await expect(page.getByTestId('team-row')).toContainText('Fabrikam crew');
  await screenshot(page, 'admin-teams');

  const nina = await otherPerson(browser, /Sign in as Nina Newhire/);
  await expect(nina.getByRole('heading', { name: 'Welcome, Nina Newhire' })).toBeVisible();
  const rows = nina.getByTestId('site-row');
  await expect(rows).toHaveCount(2);
  await expect(rows.filter({ hasText: 'Fabrikam Shop' })).toContainText('editor');
  await expect(rows.filter({ hasText: 'Fabrikam Blog' })).toContainText('editor');
});

test('a time-limited grant works until it expires, then stops by itself (the test moves the clock)', async ({ page, browser }) => {
  await asAdmin(page, '/admin/sites?q=demo%20site');
  await page.getByRole('link', { name: 'Demo Site', exact: true }).click();
  await expect(page.getByText('Sites › Demo Site')).toBeVisible();
  await consoleLive(page);
  await page.getByLabel('E-mail', { exact: true }).fill('nina@agency.test');
  await page.getByLabel('Role', { exact: true }).selectOption('administrator');
  await page.getByLabel('For', { exact: true }).selectOption('60');
  await page.getByRole('button', { name: 'Grant', exact: true }).click();
  await expect(page.getByTestId('grant-reason-error')).toContainText('Say why');
  await page.getByLabel('Reason').fill('INC-1234: checkout broken');
  await page.getByRole('button', { name: 'Grant', exact: true }).click();
  await expect(page.getByText(/nina@agency\.test can enter Demo Site as administrator until/)).toBeVisible();

  const nina = await otherPerson(browser, /Sign in as Nina Newhire/);
  const demo = nina.getByTestId('site-row').filter({ hasText: 'Demo Site' });
  await expect(demo).toContainText('administrator');
  await demo.getByRole('button', { name: /Open/ }).click();
  await expect(nina.locator('[data-claim="wp_role"]')).toHaveText('administrator');

  // An hour and a minute later, without anyone revoking it.
  moveClock(3660);
  await nina.goto('/');
  await expect(nina.getByRole('heading', { name: 'Welcome, Nina Newhire' })).toBeVisible();
  await expect(nina.getByTestId('site-row').filter({ hasText: 'Demo Site' })).toHaveCount(0);
  await page.reload();
  await expect(page.locator('[data-testid="access-row"][data-email="nina@agency.test"]')).toContainText('expired');
  await screenshot(page, 'admin-site-expired-grant');
});

test('disabling a person mid-session signs them out at once, from the People page', async ({ page, browser }) => {
  const sam = await otherPerson(browser, /Sign in as Sam Staff/);
  await expect(sam.getByRole('heading', { name: 'Welcome, Sam Staff' })).toBeVisible();
  await asAdmin(page, '/admin/people?q=sam');
  await screenshot(page, 'admin-people');
  await page.getByRole('link', { name: 'Sam Staff' }).click();
  await expect(page.getByText('People › Sam Staff')).toBeVisible();
  await consoleLive(page);
  await page.getByRole('button', { name: 'Disable' }).click();
  try {
    await expect(page.getByText('sam@agency.test is disabled: their sessions have ended and launches are refused.')).toBeVisible();
    await screenshot(page, 'admin-person');
    await sam.reload();
    await expect(sam.getByRole('link', { name: /Sign in with/ })).toBeVisible();
  } finally {
    await page.getByRole('button', { name: 'Enable' }).click();
    await expect(page.getByText('sam@agency.test can sign in again.')).toBeVisible();
  }
});

test('an admin invites someone, cannot take away their own admin role, and the last admin cannot be disabled from the command line either', async ({ page }) => {
  await asAdmin(page, '/admin/people');
  await page.getByLabel('E-mail', { exact: true }).fill('olly@elsewhere.test');
  await page.getByRole('button', { name: 'Invite' }).click();
  await expect(page.getByTestId('invite-email-error')).toContainText('not in a domain allowed');
  await page.getByLabel('E-mail', { exact: true }).fill('new.starter@agency.test');
  await page.getByRole('button', { name: 'Invite' }).click();
  await expect(page.getByText('new.starter@agency.test is invited. They get access when they first sign in.')).toBeVisible();
  await expect(page.locator('[data-testid="invitation"][data-email="new.starter@agency.test"]')).toBeVisible();
  await page.goto('/admin/people?standing=admin');
  await page.getByRole('link', { name: 'Ada Admin' }).click();
  await consoleLive(page);
  await page.getByRole('button', { name: 'Make staff' }).click();
  await expect(page.getByTestId('problem')).toContainText('You cannot disable yourself or take away your own admin role.');
  // Ada is the only admin: the command line (acting as nobody in particular) may not disable her.
  let refusal = '';
  try {
    cli('users', 'disable', 'admin@agency.test');
  } catch (e) {
    refusal = String((e as { stderr?: Buffer }).stderr ?? e);
  }
  expect(refusal).toContain('admin@agency.test is the last admin who can act');
  await page.reload();
  await consoleLive(page);
  await expect(page.getByRole('button', { name: 'Make staff' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Disable', exact: true })).toBeVisible();
});

test('keys: every key action asks for a fresh sign-in at the provider; rotate safely, and revoke only with a reason and the key id typed', async ({ page }) => {
  // Signed in a moment ago, but not afresh: the provider is asked to
  // authenticate Ada again, and she comes back to the keys page.
  await asAdmin(page, '/admin/keys', false);
  await expect(page.locator('[data-testid="key-row"][data-state="active"]')).toHaveCount(1);
  await page.getByRole('button', { name: 'Rotate safely' }).click();
  await expect(page.getByRole('heading', { name: 'Local identity provider' })).toBeVisible();
  await page.getByRole('button', { name: /Sign in as Ada Admin/ }).click();
  await expect(page).toHaveURL(/\/admin\/keys$/);
  await consoleLive(page);
  await page.getByRole('button', { name: 'Rotate safely' }).click();
  // RSA key generation takes a random while: allow for it.
  await expect(page.getByText(/A new key is published now and starts signing at/)).toBeVisible({ timeout: 20_000 });
  const next = page.locator('[data-testid="key-row"][data-state="next"]');
  await expect(next).toHaveCount(1);
  const kid = (await next.locator('td').first().innerText()).split('\n')[0].trim();
  await screenshot(page, 'admin-keys');
  await page.getByLabel('Key', { exact: true }).selectOption(kid);
  await page.getByLabel('Reason').fill('test of the revoke flow');
  await page.getByLabel('Type the key id to confirm').fill('wrong');
  await page.getByRole('button', { name: 'Revoke key' }).click();
  await expect(page.getByTestId('revoke-confirm-error')).toHaveText('Type the key id to confirm.');
  await page.getByLabel('Type the key id to confirm').fill(kid);
  await page.getByRole('button', { name: 'Revoke key' }).click();
  await expect(page.getByText(`Key ${kid} is revoked`)).toBeVisible({ timeout: 20_000 });
  await expect(page.locator('[data-testid="key-row"][data-state="revoked"]')).toContainText(kid);
  const jwks = await (await fetch(new URL('/.well-known/jwks.json', page.url()))).text();
  expect(jwks).not.toContain(kid);
});

test('sessions: an admin ends one person\'s session and that browser is signed out', async ({ page, browser }) => {
  const sasha = await otherPerson(browser, /Sign in as Sasha Second/);
  await expect(sasha.getByRole('heading', { name: 'Welcome, Sasha Second' })).toBeVisible();
  await asAdmin(page, '/admin/sessions?q=sasha');
  const row = page.locator('[data-testid="session-row"][data-email="sasha@agency.test"]');
  await expect(row).toHaveCount(1);
  await screenshot(page, 'admin-sessions');
  await row.getByRole('button', { name: 'End this session of sasha@agency.test' }).click();
  await expect(page.getByText('1 session ended: that browser is signed out.')).toBeVisible();
  await sasha.reload();
  await expect(sasha.getByRole('link', { name: /Sign in with/ })).toBeVisible();
});

test('a sensitive action after a plain sign-in sends the admin through the provider again, then goes through', async ({ page }) => {
  cli('sites', 'add', '--name', 'Old Site', '--client', 'Tailspin', '--url', 'https://old.tailspin.example');
  // Signed in, but not afresh (the provider could have answered from its own
  // session): deleting asks the provider to authenticate Ada again. (The
  // sixteen-minutes-later case is in the integration tests, whose provider
  // follows the dashboard's clock; this one stamps auth_time with the real one.)
  await asAdmin(page, '/admin/sites?q=old.tailspin', false);
  await page.getByRole('link', { name: 'Old Site' }).click();
  await consoleLive(page);
  await page.getByLabel("Type the site's URL to confirm").fill('https://old.tailspin.example');
  await page.getByRole('button', { name: 'Delete site' }).click();
  await expect(page.getByRole('heading', { name: 'Local identity provider' })).toBeVisible();
  await page.getByRole('button', { name: /Sign in as Ada Admin/ }).click();
  await expect(page.getByText('Sites › Old Site')).toBeVisible();
  await consoleLive(page);
  await page.getByLabel("Type the site's URL to confirm").fill('https://old.tailspin.example');
  await page.getByRole('button', { name: 'Delete site' }).click();
  await expect(page).toHaveURL(/\/admin\/sites$/);
  expect(cli('sites', 'list')).not.toContain('old.tailspin');
  await expect(page.getByText('Sites', { exact: true }).first()).toBeVisible();
  void demoURL;
});

test('the console works from the keyboard alone: Tab reaches each field in page order, Enter submits', async ({ page }) => {
  await asAdmin(page, '/admin/people');
  /** Press Tab until the element with this id has focus; the ids of the fields focused on the way. */
  async function tabTo(id: string): Promise<string[]> {
    const passed: string[] = [];
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => document.activeElement?.id ?? '');
      if (focused === id) return passed;
      if (focused) passed.push(focused);
    }
    throw new Error(`Tab never reached #${id}`);
  }
  // The order Tab follows is the order of the fields on the page.
  const inPageOrder = await page.evaluate(() => Array.from(document.querySelectorAll('main input[id], main select[id], main button[id], main textarea[id]')).map((e) => e.id));
  expect(inPageOrder.indexOf('invite-email')).toBeGreaterThanOrEqual(0);
  expect(inPageOrder.indexOf('p-q')).toBeGreaterThan(inPageOrder.indexOf('invite-email'));
  const before = await tabTo('invite-email');
  for (const id of before) expect(inPageOrder.indexOf(id)).toBeLessThan(inPageOrder.indexOf('invite-email'));
  await page.keyboard.type('keys.only@agency.test');
  await page.keyboard.press('Enter');
  await expect(page.getByText('keys.only@agency.test is invited. They get access when they first sign in.')).toBeVisible();
  const between = await tabTo('p-q');
  for (const id of between) {
    expect(inPageOrder.indexOf(id)).toBeGreaterThan(inPageOrder.indexOf('invite-email'));
    expect(inPageOrder.indexOf(id)).toBeLessThan(inPageOrder.indexOf('p-q'));
  }
  await page.keyboard.type('ada');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/admin\/people\?q=ada/);
  await expect(page.getByTestId('list-count')).toHaveText('Showing 1–1 of 1');
});

test('API tokens: an admin makes one with two scopes, sees it once, a script uses it, and revoking it stops it at once', async ({ page, request }) => {
  const errors = watchConsole(page);
  await asAdmin(page, '/admin/tokens');
  await expect(page.getByRole('heading', { name: 'API tokens' })).toBeVisible();
  await page.getByLabel('Name').fill('hosting panel');
  await page.getByLabel(/sites:read/).check();
  await page.getByLabel(/access:write/).check();
  await page.getByLabel('Lasts (days, at most 365)').fill('30');
  await page.getByRole('button', { name: 'Make token' }).click();
  await expect(page.getByTestId('new-token')).toContainText('Token hosting panel is made. Copy it now: it is shown this once only.');
  const secret = (await page.getByTestId('token-secret').textContent())!.trim();
  expect(secret).toMatch(/^asso_[A-Za-z0-9_-]{43}$/);
  const row = page.getByTestId('token').filter({ hasText: 'hosting panel' });
  await expect(row).toContainText('sites:read access:write');
  await expect(row).toHaveAttribute('data-state', 'live');
  await screenshot(page, 'admin-tokens');

  // The script: its scope lets it read the sites; not the audit log.
  const sites = await request.get('/api/v1/sites?limit=1', { headers: { authorization: `Bearer ${secret}` } });
  expect(sites.status()).toBe(200);
  expect((await sites.json()).total).toBeGreaterThan(1000);
  const audit = await request.get('/api/v1/audit', { headers: { authorization: `Bearer ${secret}` } });
  expect(audit.status()).toBe(403);
  expect((await audit.json()).code).toBe('scope_missing');

  // Shown once: after a reload the page holds no secret; the last use is listed.
  await page.reload();
  await consoleLive(page);
  await expect(page.getByTestId('token-secret')).toHaveCount(0);
  expect(await page.content()).not.toContain(secret.slice(5));
  await expect(row.locator('td').nth(4)).not.toHaveText('never');
  await row.getByRole('button', { name: 'Revoke the token hosting panel' }).click();
  await expect(row).toHaveAttribute('data-state', 'revoked');
  const after = await request.get('/api/v1/sites', { headers: { authorization: `Bearer ${secret}` } });
  expect(after.status()).toBe(401);
  expect((await after.json()).code).toBe('token_revoked');
  expect(errors).toEqual([]);
});

test('audit stream: an admin sends the log to a webhook, sees it catch up, and removes it', async ({ page }) => {
  const errors = watchConsole(page);
  await asAdmin(page, '/admin/stream');
  await expect(page.getByRole('heading', { name: 'Audit stream' })).toBeVisible();
  await page.getByLabel('Name').fill('SIEM');
  await page.getByLabel('Address').fill('ftp://siem.example');
  await page.getByRole('button', { name: 'Add' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'https://' }).first()).toBeVisible();
  await page.getByLabel('Address').fill(`http://127.0.0.1:${webhookPort}/audit-stream`);
  await page.getByLabel('Send').selectOption('now');
  await page.getByRole('button', { name: 'Add' }).click();
  await expect(page.getByText(/The audit log streams to SIEM from record #\d+\. Its signing secret, shown this once: [0-9a-f]{64}/)).toBeVisible();
  const row = page.getByTestId('destination').filter({ hasText: 'SIEM' });
  await expect(row).toBeVisible();
  // The running dashboard's stream worker delivers: the lag falls to 0.
  await expect(async () => {
    await page.reload();
    await expect(row.getByTestId('lag')).toHaveText('0', { timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  await screenshot(page, 'admin-stream');
  const posts = readFileSync(webhookLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((p) => p.path === '/audit-stream');
  expect(posts.length).toBeGreaterThan(0);
  const kinds = posts.flatMap((p) => JSON.parse(p.body).records.map((r: { kind: string }) => r.kind));
  expect(kinds).toContain('stream_destination_added');
  expect(posts[0].signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  await row.getByRole('button', { name: 'Stop streaming to SIEM' }).click();
  await expect(page.getByText('The audit log no longer streams to SIEM.')).toBeVisible();
  // The one error: the browser's note of the refused address (422).
  expect(errors.filter((e) => !e.includes('status of 422'))).toEqual([]);
});
