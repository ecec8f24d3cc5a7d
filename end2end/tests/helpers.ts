import { expect, type Page } from '@playwright/test';
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

/** Run the dashboard's CLI against the test database; its standard output. */
export function cli(...args: string[]): string {
  return execFileSync(dashboardBin, args, { env: { ...process.env, ...dashboardEnv } }).toString();
}
