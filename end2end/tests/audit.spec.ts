import { test, expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { demoURL } from '../playwright.config';
import { pickerLive, signInAs, watchConsole } from './helpers';

/** Sam opens the demo site and the shop from the picker. */
async function samLaunches(page: Page) {
  await signInAs(page, /Sign in as Sam Staff/);
  await pickerLive(page);
  const search = page.getByLabel('Find a site');
  await search.fill('demo');
  await page.getByRole('button', { name: 'Open Demo Site' }).click();
  await expect(page.getByRole('heading', { name: 'Demo Site: logged in as Sam Staff' })).toBeVisible();
  await page.goto('/');
  await pickerLive(page);
  await page.getByLabel('Find a site').fill('demo shop');
  await page.getByRole('button', { name: 'Open Demo Shop' }).click();
  await expect(page.getByRole('heading', { name: 'Demo Shop: logged in as sam@agency.test' })).toBeVisible();
}

test('an admin filters the log to one person and one site, and the CSV export holds exactly those records', async ({ browser }) => {
  const staff = await browser.newPage();
  await samLaunches(staff);
  await staff.close();

  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const errors = watchConsole(page);
  await signInAs(page, /Sign in as Ada Admin/);
  await page.getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();

  await page.getByLabel('Person').fill('sam@agency.test');
  await page.getByLabel('Site').fill(demoURL);
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/person=sam%40agency.test/);

  const records = page.getByTestId('audit-record');
  const n = await records.count();
  expect(n).toBeGreaterThanOrEqual(2); // the grant and at least one launch
  for (let i = 0; i < n; i++) {
    await expect(records.nth(i)).toHaveAttribute('data-person', 'sam@agency.test');
    await expect(records.nth(i)).toContainText(demoURL);
  }
  const seqs = await records.evaluateAll((els) => els.map((e) => e.getAttribute('data-seq')));
  // A record opens to its full detail.
  const launch = page.locator('[data-testid="audit-record"][data-event="launch"]').first();
  await launch.locator('summary').click();
  await expect(launch.getByText('Token id (jti)')).toBeVisible();
  // Where Sam has been: the accounts to review when Sam leaves.
  await expect(page.getByTestId('entered')).toContainText(demoURL);
  await expect(page.getByTestId('entered')).toContainText('editor');

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('export-csv').click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^audit-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = readFileSync(await download.path(), 'utf8');
  const lines = csv.trim().split('\r\n');
  expect(lines[0]).toMatch(/^seq,time_utc,event,outcome,actor,person,site_url/);
  const rows = lines.slice(1);
  expect(rows.map((l) => l.split(',')[0].replaceAll('"', ''))).toEqual(seqs);
  for (const l of rows) {
    expect(l).toContain('"sam@agency.test"');
    expect(l).toContain(`"${demoURL}"`);
  }
  expect(errors).toEqual([]);
  await context.close();
});

test('staff see their own activity and not the whole log', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAs(page, /Sign in as Sam Staff/);
  await expect(page.getByRole('heading', { name: 'Welcome, Sam Staff' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Audit log' })).toHaveCount(0);
  await page.getByRole('link', { name: 'My activity' }).click();
  await expect(page.getByRole('heading', { name: 'Your activity' })).toBeVisible();
  const records = page.getByTestId('audit-record');
  await expect(records.first()).toBeVisible();
  const people = await records.evaluateAll((els) => els.map((e) => e.getAttribute('data-person')));
  expect(new Set(people)).toEqual(new Set(['sam@agency.test']));
  await expect(page.getByLabel('Person')).toHaveCount(0);

  await page.goto('/audit');
  await expect(page.getByRole('alert')).toHaveText('Only admins can see the whole audit log.');
  await expect(page.getByTestId('audit-record')).toHaveCount(0);
  expect(errors.filter((e) => !e.includes('403'))).toEqual([]);
});
