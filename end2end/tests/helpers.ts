import { expect, type Browser, type Page } from '@playwright/test';
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dashboardBin, dashboardEnv } from '../playwright.config';

/** Fail the test on any console error: a CSP violation or a hydration failure shows up there. */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

/** From the dashboard's home page, through the local provider, as `person`. */
export async function signInAs(page: Page, person: RegExp) {
  await page.goto('/');
  await page.getByRole('link', { name: 'Sign in with the local identity provider' }).click();
  await expect(page.getByRole('heading', { name: 'Local identity provider' })).toBeVisible();
  await page.getByRole('button', { name: person }).click();
}

/**
 * Sign in afresh at the provider, as a sensitive action asks (the
 * dashboard sends prompt=login and max_age=0, and counts it only when the
 * ID token's auth_time is recent), and come back to `path`.
 */
export async function signInAgain(page: Page, person: RegExp, path: string) {
  await page.goto(`/auth/login?reauth=1&return_to=${encodeURIComponent(path)}`);
  await expect(page.getByRole('heading', { name: 'Local identity provider' })).toBeVisible();
  await page.getByRole('button', { name: person }).click();
  await expect(page).toHaveURL((url) => url.pathname + url.search === path);
}

/** Run the dashboard's CLI against the test database; its standard output. */
export function cli(...args: string[]): string {
  return execFileSync(dashboardBin, args, { env: { ...process.env, ...dashboardEnv } }).toString();
}

/** Someone else signed in, in a browser of their own. */
export async function otherPerson(browser: Browser, who: RegExp): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await signInAs(page, who);
  return page;
}

/** The site picker is live: the wasm bundle hydrated it, so typing filters. */
export async function pickerLive(page: Page) {
  await expect(page.locator('.picker[data-live="true"]')).toBeVisible();
}

/** The console's forms are live once the bundle has hydrated the page. */
export async function consoleLive(page: Page) {
  // The dev bundle is large: allow for compiling it on a busy machine.
  await expect(page.locator('.console[data-live="true"]')).toBeVisible({ timeout: 20_000 });
}

/** Set the dashboard's clock this many seconds from the real time, as the test clock file says. */
export function moveClock(seconds: number) {
  writeFileSync(dashboardEnv.SSO_TEST_CLOCK_FILE, String(seconds));
}
