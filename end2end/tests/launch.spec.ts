import { test, expect, type Page } from '@playwright/test';
import { createHmac } from 'node:crypto';
import { baseURL, demoURL, shopSecret, staffSites } from '../playwright.config';
import { cli, pickerLive, signInAs, watchConsole } from './helpers';

/** Signed in as Sam Staff, on the hydrated home page with the site list. */
async function samsDashboard(page: Page) {
  await signInAs(page, /Sign in as Sam Staff/);
  await expect(page.getByRole('heading', { name: 'Welcome, Sam Staff' })).toBeVisible();
  await expect(page.getByTestId('site-count')).toHaveText(`Showing 60 of ${staffSites} sites: type to narrow`);
  await pickerLive(page);
}

/** Every URL the browser asked of the dashboard, to prove no token is in one. */
function dashboardURLs(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (r) => { if (!r.url().startsWith(demoURL)) urls.push(`${r.method()} ${r.url()}`); });
  return urls;
}

test('staff find a site among 5,000 by typing, press Enter, and land in its admin logged in', async ({ page }) => {
  const errors = watchConsole(page);
  const seen = dashboardURLs(page);
  await samsDashboard(page);

  await page.keyboard.press('/');
  const search = page.getByLabel('Find a site');
  await expect(search).toBeFocused();
  await search.pressSequentially('demo site');
  await expect(page.getByTestId('site-count')).toHaveText(`1 of ${staffSites} sites match`);
  const row = page.getByTestId('site-row');
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('Demo Site');
  await expect(row).toContainText('editor');
  await search.press('Enter');

  await expect(page.getByRole('heading', { name: 'Demo Site: logged in as Sam Staff' })).toBeVisible();
  expect(page.url()).toBe(`${demoURL}/wp-admin/`);
  const claim = (k: string) => page.locator(`[data-claim="${k}"]`);
  await expect(claim('aud')).toHaveText(demoURL);
  await expect(claim('iss')).toHaveText(baseURL);
  await expect(claim('wp_role')).toHaveText('editor');
  await expect(claim('email')).toHaveText('sam@agency.test');
  await expect(claim('name')).toHaveText('Sam Staff');
  await expect(page.locator('#alg')).toHaveText('RS256');

  // The token travelled only in the site's URL; the dashboard saw a POST and no token.
  expect(seen.some((u) => u.startsWith('POST ') && u.endsWith('/launch'))).toBe(true);
  expect(seen.filter((u) => /token=|eyJ/.test(u))).toEqual([]);
  expect(errors).toEqual([]);

  // Recorded with its jti and key id.
  const record = cli('launches', 'list', '--email', 'sam@agency.test', '--limit', '1');
  expect(record).toMatch(/launched\s+-\s+sam@agency\.test\s+http:\/\/127\.0\.0\.1:3102\s+editor\s+\S{22}/);
});

test('narrowing and widening the list keeps every row true to its site', async ({ page }) => {
  const errors = watchConsole(page);
  await samsDashboard(page);
  const rows = page.getByTestId('site-row');
  await expect(rows).toHaveCount(60);
  const firstRows = await rows.evaluateAll((els) => els.slice(0, 3).map((e) => e.textContent));

  const search = page.getByLabel('Find a site');
  await search.fill('client-042');
  await expect(page.getByTestId('site-count')).toHaveText(`5 of ${staffSites} sites match`);
  await expect(rows).toHaveCount(5);
  for (let n = 1; n <= 5; n++) {
    const row = rows.nth(n - 1);
    await expect(row).toContainText(`Client 042 site ${n}`);
    await expect(row.getByRole('button', { name: 'Open', exact: false })).toHaveAttribute('aria-label', `Open Client 042 site ${n}`);
    await expect(row.getByRole('button', { name: `Pin Client 042 site ${n}` })).toBeVisible();
  }
  // Rows past the matches are neither shown nor announced, and name no site.
  await expect(page.locator('#site-list > li:visible')).toHaveCount(5);
  await expect(page.locator('#site-list [id^="launch-"]')).toHaveCount(5);

  await search.fill('');
  await expect(page.getByTestId('site-count')).toHaveText(`Showing 60 of ${staffSites} sites: type to narrow`);
  await expect(rows).toHaveCount(60);
  await expect(page.locator('#site-list > li:visible')).toHaveCount(60);
  expect(await rows.evaluateAll((els) => els.slice(0, 3).map((e) => e.textContent))).toEqual(firstRows);
  await search.press('ArrowDown');
  await expect(rows.nth(1)).toHaveClass(/active/);
  await expect(rows.nth(0)).not.toHaveClass(/active/);
  expect(errors).toEqual([]);
});

test('a deep link opens that page of the site; a link to another host is refused', async ({ page }) => {
  await samsDashboard(page);
  await page.getByLabel('Find a site').fill('demo site');
  await page.getByLabel('Open at (optional)').fill('/wp-admin/edit.php?post_type=page');
  await page.getByRole('button', { name: 'Open Demo Site' }).click();
  await expect(page.getByRole('heading', { name: 'Demo Site: logged in as Sam Staff' })).toBeVisible();
  await expect(page.locator('#path')).toHaveText('/wp-admin/edit.php?post_type=page');

  await page.goto('/');
  await pickerLive(page);
  await page.getByLabel('Find a site').fill('demo site');
  await page.getByLabel('Open at (optional)').fill('//evil.example/wp-admin/');
  await page.getByRole('button', { name: 'Open Demo Site' }).click();
  await expect(page.getByRole('heading', { name: 'This site cannot be opened' })).toBeVisible();
  await expect(page.getByText('The page to open must be a path on the site')).toBeVisible();
  expect(page.url()).toMatch(/\/launch$/);
});

/** The header and payload of a token, read as JSON. */
function parts(token: string): [Record<string, unknown>, Record<string, unknown>] {
  const [h, p] = token.split('.').slice(0, 2).map((x) => JSON.parse(Buffer.from(x, 'base64url').toString('utf8')));
  return [h, p];
}

/** An HS256 token over `payload` written as given, keyed with the shop's secret. */
function shopToken(payload: string, secret = shopSecret): string {
  const text = `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
  return `${text}.${createHmac('sha256', secret).update(text).digest('base64url')}`;
}

test('a miniOrange site: Sam, Zoë Ødegård and Quinn >?~ Quirk each land on the shop logged in', async ({ browser }) => {
  // Three sign-ins, each in a fresh browser that loads and hydrates the
  // picker: about 12 seconds each on a machine that signs 2,400 a second.
  test.setTimeout(90_000);
  cli('grants', 'add', 'zoe@agency.test', `${demoURL}/shop`, '--role', 'shop_manager');
  cli('grants', 'add', 'quinn@agency.test', `${demoURL}/shop`, '--role', 'customer');
  for (const [person, login] of [[/Sign in as Sam Staff/, 'sam@agency.test'], [/Sign in as Zoë Ødegård/, 'zoe@agency.test'],
    [/Sign in as Quinn >\?~ Quirk/, 'quinn@agency.test']] as const) {
    // A browser of their own: the plugin acts only when nobody is logged in to the shop.
    const context = await browser.newContext();
    const page = await context.newPage();
    const tokens: string[] = [];
    page.on('request', (r) => { if (r.url().startsWith(`${demoURL}/shop/?`)) tokens.push(new URL(r.url()).searchParams.get('mo_jwt_token') ?? ''); });
    await signInAs(page, person);
    await pickerLive(page);
    await page.getByLabel('Find a site').fill('demo shop');
    await page.getByRole('button', { name: 'Open Demo Shop' }).click();
    await expect(page.getByRole('heading', { name: `Demo Shop: logged in as ${login}` })).toBeVisible();
    // The plugin finds or creates the account by login name and ignores the
    // role in the token (new accounts get WordPress' default role); every
    // launch lands on the home page.
    await expect(page.locator('#role')).toHaveText('subscriber');
    expect(page.url()).toBe(`${demoURL}/shop/`);
    expect(tokens).toHaveLength(1);
    const [header, payload] = parts(tokens[0]);
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(payload.username).toBe(login);
    expect(payload).not.toHaveProperty('nbf');
    expect(tokens[0].split('.').slice(0, 2).join('.')).toMatch(/^[A-Za-z0-9.]+$/);
    await context.close();
  }
});

test('the miniOrange stand-in refuses what the plugin refuses: nbf, base64url text with - or _, a past exp', async ({ page }) => {
  const now = Math.floor(Date.now() / 1000);
  // One of three alignments of `>?~` puts a - or _ into the payload's base64url text.
  const dashed = [0, 1, 2].map((pad) => shopToken(`{"username":"sam@agency.test","name":"${'x'.repeat(pad)}a>b?c~","exp":${now + 60}}`))
    .find((t) => /[-_]/.test(t.split('.')[1]))!;
  for (const token of [
    shopToken(`{"username":"sam@agency.test","exp":${now + 60},"nbf":${now - 5}}`),
    dashed,
    shopToken(`{"username":"sam@agency.test","exp":${now - 2}}`),
  ]) {
    await page.goto(`${demoURL}/shop/?mo_jwt_token=${token}`);
    await expect(page.getByRole('heading', { name: 'Demo Shop', exact: true })).toBeVisible();
    expect(page.url()).toBe(`${demoURL}/shop/?&mo_jwt_error=JWT%20Signature%20is%20invalid`);
    await expect(page.locator('#mo-error')).toHaveText('mo_jwt_error=JWT Signature is invalid');
  }
  // The same shape, valid, is taken: the refusals above were for what they carried.
  await page.goto(`${demoURL}/shop/?mo_jwt_token=${shopToken(`{"username":"sam@agency.test","exp":${now + 60}}`)}`);
  await expect(page.getByRole('heading', { name: 'Demo Shop: logged in as sam@agency.test' })).toBeVisible();
});

test('a site without a grant is not listed, and a forged launch of it is refused and recorded', async ({ page }) => {
  await samsDashboard(page);
  await page.getByLabel('Find a site').fill('locked');
  await expect(page.getByTestId('site-count')).toHaveText('No site matches “locked”.');
  await expect(page.getByTestId('site-row')).toHaveCount(0);

  const locked = cli('sites', 'list').split('\n').find((l) => l.includes('https://locked.example'))!;
  const id = locked.split(/\s+/)[0];
  // Sam forges the form the page would have had for it.
  await page.evaluate((site) => {
    const f = document.createElement('form');
    f.method = 'post';
    f.action = '/launch';
    const i = document.createElement('input');
    i.type = 'hidden'; i.name = 'site'; i.value = site;
    f.append(i);
    document.body.append(f);
    f.submit();
  }, id);
  await expect(page.getByRole('heading', { name: 'This site cannot be opened' })).toBeVisible();
  await expect(page.getByText('You have no access to this site. Ask an administrator for a grant.')).toBeVisible();
  await expect(page.getByText('no_grant')).toBeVisible();

  const record = cli('launches', 'list', '--email', 'sam@agency.test', '--limit', '1');
  expect(record).toMatch(/refused\s+no_grant\s+sam@agency\.test\s+https:\/\/locked\.example/);
});

test('a pinned site comes first after a reload', async ({ page }) => {
  await samsDashboard(page);
  await page.getByLabel('Find a site').fill('client 042 site 3');
  const star = page.getByRole('button', { name: 'Pin Client 042 site 3' });
  await star.click();
  await expect(star).toHaveAttribute('aria-pressed', 'true');
  await page.reload();
  await expect(page.getByTestId('site-row').first()).toContainText('Client 042 site 3');
  await pickerLive(page);
  await page.getByRole('button', { name: 'Pin Client 042 site 3' }).click();
  await expect(page.getByRole('button', { name: 'Pin Client 042 site 3' })).toHaveAttribute('aria-pressed', 'false');
});
