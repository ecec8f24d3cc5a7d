// The first run answers before its bundle is built (scripts/dev): pages work
// as plain links and forms, and come alive by themselves when the bundle
// lands, with no reload.
import { test, expect } from '@playwright/test';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dashboardBin, dashboardEnv } from '../playwright.config';
import { signInAs } from './helpers';

const port = Number(process.env.E2E_PORT ?? 3100) + 10;
const url = `http://127.0.0.1:${port}`;

test('a page served before the bundle was built hydrates itself once the bundle lands', async ({ page }) => {
  // An embedded site always has its bundle: this is the development server's case.
  test.skip(!dashboardEnv.LEPTOS_SITE_ROOT, 'the binary embeds its bundle');
  const built = join(dashboardEnv.LEPTOS_SITE_ROOT, 'pkg');
  // The site folder as a first scripts/dev has it: styles and public files, no bundle yet.
  const site = mkdtempSync(join(tmpdir(), 'agency-sso-site-'));
  cpSync(dashboardEnv.LEPTOS_SITE_ROOT, site, {
    recursive: true,
    filter: (src) => !/agency-sso\.(js|wasm)(\.br|\.gz)?$/.test(src),
  });
  // A second server on the same database, as the developer's.
  const server = spawn(dashboardBin, ['serve'], {
    env: { ...process.env, ...dashboardEnv, SSO_BIND: `127.0.0.1:${port}`, SSO_PUBLIC_URL: url, LEPTOS_SITE_ROOT: site },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await expect.poll(async () => (await fetch(`${url}/readyz`).catch(() => null))?.status, { timeout: 30_000 }).toBe(200);
    // Signed in on the suite's dashboard; the session cookie (host-wide) is good on this one too.
    await signInAs(page, /Sign in as Sam Staff/);
    await expect(page.getByRole('heading', { name: 'Welcome, Sam Staff' })).toBeVisible();

    const asked = page.waitForResponse((r) => r.url() === `${url}/pkg/agency-sso.wasm` && r.request().method() === 'HEAD');
    await page.goto(`${url}/`);
    // The page reads right without its script: the sites are listed, launches are forms.
    await expect(page.getByRole('heading', { name: 'Welcome, Sam Staff' })).toBeVisible();
    await expect(page.getByRole('button', { name: 'Open Client 001 site 1' })).toBeVisible();
    expect((await asked).status()).toBe(404);
    await page.evaluate(() => { (window as unknown as { notReloaded: boolean }).notReloaded = true; });
    await page.waitForTimeout(2_500);
    await expect(page.locator('.picker[data-live="true"]')).toHaveCount(0);

    // The bundle lands as wasm-bindgen leaves it: the JavaScript first, then the .wasm.
    copyFileSync(join(built, 'agency-sso.js'), join(site, 'pkg', 'agency-sso.js'));
    copyFileSync(join(built, 'agency-sso.wasm'), join(site, 'pkg', 'agency-sso.wasm'));
    await expect(page.locator('.picker[data-live="true"]')).toBeVisible({ timeout: 20_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    // Live: typing filters the list in place.
    await page.getByLabel('Find a site').pressSequentially('demo site');
    await expect(page.getByTestId('site-count')).toContainText('1 of');
  } finally {
    server.kill();
    rmSync(site, { recursive: true, force: true });
  }
});
