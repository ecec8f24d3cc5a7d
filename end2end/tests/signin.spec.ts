import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { dashboardBin, dashboardEnv } from '../playwright.config';
import { signInAs, watchConsole } from './helpers';

test('an admin signs in, sees their name, and signs out', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAs(page, /Sign in as Ada Admin/);
  await expect(page).toHaveURL('/');
  await expect(page.getByRole('heading', { name: 'Welcome, Ada Admin' })).toBeVisible();
  await expect(page.getByTestId('person-name')).toHaveText('Ada Admin');
  await expect(page.getByTestId('person-role')).toHaveText('Admin');
  await expect(page.getByText('admin@agency.test')).toBeVisible();

  // The page hydrated: the WebAssembly bundle loaded under the page's CSP.
  await page.waitForLoadState('networkidle');
  await expect.poll(() => page.evaluate(() => performance.getEntriesByType('resource')
    .some((r) => r.name.endsWith('.wasm')))).toBe(true);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('link', { name: 'Sign in with the local identity provider' })).toBeVisible();
  await page.reload();
  await expect(page.getByRole('link', { name: 'Sign in with the local identity provider' })).toBeVisible();
  await expect(page.getByText('Ada Admin')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('staff are staff', async ({ page }) => {
  await signInAs(page, /Sign in as Sam Staff/);
  await expect(page.getByRole('heading', { name: 'Welcome, Sam Staff' })).toBeVisible();
  await expect(page.getByTestId('person-role')).toHaveText('Staff');
});

test('a person outside the allowed domain is refused with a clear page', async ({ page }) => {
  await signInAs(page, /Sign in as Olly Outsider/);
  await expect(page.getByRole('heading', { name: 'Not allowed to sign in' })).toBeVisible();
  await expect(page.getByText('olly@elsewhere.test is not in a domain allowed to sign in here.')).toBeVisible();
  await expect(page.getByRole('link', { name: 'Try signing in again' })).toBeVisible();
  await page.goto('/');
  await expect(page.getByRole('link', { name: /Sign in with/ })).toBeVisible();
});

test('an unverified e-mail and a mismatched workspace domain are refused', async ({ browser }) => {
  for (const [who, says] of [
    [/Sign in as Una Unverified/, 'una@agency.test has not been verified'],
    [/Sign in as Hugo Wrong-Domain/, 'workspace domain (elsewhere.test) does not match'],
  ] as const) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signInAs(page, who);
    await expect(page.getByRole('heading', { name: 'Not allowed to sign in' })).toBeVisible();
    await expect(page.getByText(says)).toBeVisible();
    await context.close();
  }
});

test('a forged callback with the wrong state is refused', async ({ page }) => {
  await page.goto('/');
  await page.getByRole('link', { name: /Sign in with/ }).click();
  await expect(page.getByRole('heading', { name: 'Local identity provider' })).toBeVisible();
  // Instead of signing in, the browser is sent to a callback an attacker made.
  await page.goto('/auth/callback?code=attacker-code&state=attacker-state');
  await expect(page.getByRole('heading', { name: 'Sign-in failed' })).toBeVisible();
  await expect(page.getByText('The sign-in response does not belong to this attempt.')).toBeVisible();
  await page.goto('/');
  await expect(page.getByRole('link', { name: /Sign in with/ })).toBeVisible();
});

test('a replayed authorization code is refused', async ({ page, browser }) => {
  let callback = '';
  page.on('request', (r) => { if (r.url().includes('/auth/callback?')) callback = r.url(); });
  await signInAs(page, /Sign in as Sasha Second/);
  await expect(page.getByRole('heading', { name: 'Welcome, Sasha Second' })).toBeVisible();
  expect(callback).toContain('code=');

  // Replayed in another browser that never started a sign-in.
  const thief = await (await browser.newContext()).newPage();
  await thief.goto(callback);
  await expect(thief.getByText('This sign-in attempt was not started from this browser, or was already used.')).toBeVisible();

  // Replayed into the thief's own fresh attempt: the provider refuses the used code.
  let authorize = '';
  thief.on('request', (r) => { if (r.url().includes('/auth?')) authorize = r.url(); });
  await thief.goto('/');
  await thief.getByRole('link', { name: /Sign in with/ }).click();
  await expect(thief.getByRole('heading', { name: 'Local identity provider' })).toBeVisible();
  const state = new URL(authorize).searchParams.get('state')!;
  const code = new URL(callback).searchParams.get('code')!;
  await thief.goto(`/auth/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`);
  await expect(thief.getByText('did not accept this sign-in')).toBeVisible();
  await thief.goto('/');
  await expect(thief.getByRole('link', { name: /Sign in with/ })).toBeVisible();
});

test('a person disabled mid-session is signed out at once and cannot sign in', async ({ page, browser }) => {
  await signInAs(page, /Sign in as Sasha Second/);
  await expect(page.getByRole('heading', { name: 'Welcome, Sasha Second' })).toBeVisible();

  const out = execFileSync(dashboardBin, ['users', 'disable', 'sasha@agency.test'], {
    env: { ...process.env, ...dashboardEnv },
  }).toString();
  try {
    expect(out).toMatch(/sasha@agency.test disabled; [1-9]\d* session\(s\) ended/);
    await page.reload();
    await expect(page.getByRole('link', { name: /Sign in with/ })).toBeVisible();

    const again = await (await browser.newContext()).newPage();
    await signInAs(again, /Sign in as Sasha Second/);
    await expect(again.getByRole('heading', { name: 'Account disabled' })).toBeVisible();
  } finally {
    execFileSync(dashboardBin, ['users', 'enable', 'sasha@agency.test'], {
      env: { ...process.env, ...dashboardEnv },
    });
  }
});
