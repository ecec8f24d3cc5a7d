// The fleet (issue 36) in a real WordPress: /old runs the connector one
// version behind (a copy of the plugin with 0.2.9 in its header). It
// learns of the update from the dashboard through WordPress' own
// wp_update_plugins(), whether WordPress.org answers or not; its admin
// installs it on the Plugins screen, through WordPress' own upgrader,
// which refuses a package whose digest is not the one the dashboard
// published; launches work after. The Fleet page shows each connector
// site as it reported itself. /auto takes the update by itself from
// WP-Cron once its admin turns auto-updates on for the connector.
import { test, expect, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseURL, wpAdminPassword, wpDir, wpURL } from '../playwright.config';
import { cli, consoleLive, otherPerson, pickerLive } from './helpers';

test.describe.configure({ mode: 'serial' });

const old = `${wpURL}/old`;
const oldDir = join(wpDir, 'old');

type Check = { installed: string; offered: string | null; package: string | null; in_no_update: boolean };

/** WordPress' own update check on /old (end2end/wordpress/update-check.php). */
function updateCheck(): Check {
  const script = fileURLToPath(new URL('../wordpress/update-check.php', import.meta.url));
  return JSON.parse(execFileSync('php', [script, oldDir, new URL(wpURL).host, '/old']).toString());
}

function shipped(): string {
  return JSON.parse(execFileSync('curl', ['-s', `${baseURL}/connector/update.json`]).toString()).version;
}

async function fleetRow(page: Page, url: string) {
  await page.goto(`/admin/fleet?q=${encodeURIComponent(url)}`);
  await consoleLive(page);
  return page.locator(`tr[data-testid="fleet-row"][data-url="${url}"]`);
}

test('an older connector learns of the update from the dashboard, whether WordPress.org answers or not', () => {
  const version = shipped();
  rmSync(`${oldDir}.wporg-up`, { force: true });
  expect(updateCheck()).toMatchObject({ installed: '0.2.9', offered: version, package: `${baseURL}/agency-sso-connector.zip` });
  writeFileSync(`${oldDir}.wporg-up`, '');
  try {
    expect(updateCheck()).toMatchObject({ installed: '0.2.9', offered: version });
  } finally {
    rmSync(`${oldDir}.wporg-up`, { force: true });
  }
});

test('the Fleet page shows the older site as outdated, and after the update from the Plugins screen as up to date; a package that is not the published one is refused', async ({ browser }) => {
  test.setTimeout(90_000);
  const version = shipped();
  cli('sites', 'add', '--name', 'Client Old Site', '--client', 'Old Client', '--url', old, '--profile', 'connector');
  cli('grants', 'add', 'sam@agency.test', old, '--role', 'editor');

  // The dashboard asks it how it stands.
  const ada = await otherPerson(browser, /Sign in as Ada Admin/);
  await ada.goto('/admin/fleet');
  await consoleLive(ada);
  await ada.getByRole('button', { name: 'Check now' }).click();
  await expect(ada.getByText(/site\(s\) will be asked within seconds/)).toBeVisible();
  await expect(async () => {
    const row = await fleetRow(ada, old);
    await expect(row).toHaveAttribute('data-standing', 'outdated', { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  const row = await fleetRow(ada, old);
  await expect(row.getByTestId('fleet-attention')).toHaveText(`Connector 0.2.9 is older than ${version}: update it (Plugins, on the site).`);
  await expect(row).toContainText('0.2.9 (outdated)');
  await expect(row).toContainText(/6\.1\.\d+ \/ \d+\.\d+/);

  // Its admin sees the update on the Plugins screen.
  const wp = await (await browser.newContext()).newPage();
  await wp.goto(`${old}/wp-login.php`);
  await wp.getByLabel('Username or Email Address').fill('admin');
  await wp.getByLabel('Password', { exact: true }).fill(wpAdminPassword);
  await wp.getByRole('button', { name: 'Log In' }).click();
  await wp.goto(`${old}/wp-admin/update-core.php?force-check=1`);
  await wp.goto(`${old}/wp-admin/plugins.php`);
  const update = wp.locator('#agency-sso-connector-update');
  await expect(update).toContainText(`There is a new version of agency-sso connector available.`);

  // A package that is not the one the dashboard published: refused, nothing installed.
  writeFileSync(`${oldDir}.tamper`, '');
  try {
    await update.locator('a.update-link').click();
    await expect(update).toContainText('does not match the SHA-256 digest the dashboard published', { timeout: 30_000 });
  } finally {
    rmSync(`${oldDir}.tamper`, { force: true });
  }
  expect(updateCheck().installed).toBe('0.2.9');

  // The real package: installed, still active.
  await wp.goto(`${old}/wp-admin/plugins.php`);
  await wp.locator('#agency-sso-connector-update').locator('a.update-link').click();
  await expect(wp.locator('#agency-sso-connector-update')).toContainText('Updated!', { timeout: 60_000 });
  await wp.goto(`${old}/wp-admin/plugins.php`);
  const plugin = wp.locator('tr[data-slug="agency-sso-connector"]');
  await expect(plugin).toContainText(`Version ${version}`);
  await expect(plugin.getByRole('link', { name: /Deactivate/ })).toBeVisible();
  expect(existsSync(join(oldDir, 'wp-content/plugins/agency-sso-connector/agency-sso-connector.php'))).toBe(true);

  // Sam still lands there.
  const sam = await otherPerson(browser, /Sign in as Sam Staff/);
  await pickerLive(sam);
  await sam.getByLabel('Find a site').fill('Client Old Site');
  await sam.getByRole('button', { name: 'Open Client Old Site', exact: true }).click();
  await expect(sam).toHaveURL(`${old}/wp-admin/`);
  // Sam's list stays as the other specs expect it.
  cli('grants', 'revoke', 'sam@agency.test', old);

  // Asked again, the fleet shows it up to date, holding the signing key.
  await ada.goto('/admin/fleet');
  await consoleLive(ada);
  await ada.getByRole('button', { name: 'Check now' }).click();
  await expect(async () => {
    const r = await fleetRow(ada, old);
    await expect(r).toHaveAttribute('data-standing', /ok|refusing/, { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  const after = await fleetRow(ada, old);
  await expect(after).toContainText(version);
  await expect(after).not.toContainText('(outdated)');
  const kid = JSON.parse(execFileSync('curl', ['-s', `${baseURL}/.well-known/jwks.json`]).toString()).keys[0].kid;
  await expect(after.locator('code')).toContainText(kid);

  // The CSV export has the same row.
  const csv = await (await ada.request.get(`/admin/fleet.csv?q=${encodeURIComponent(old)}`)).text();
  expect(csv.split('\n')[1]).toContain(`"${old}","Client Old Site","Old Client"`);
});

test('with auto-updates on, an older connector takes the update by itself when WP-Cron runs, WordPress.org out of reach', async ({ browser }) => {
  test.setTimeout(90_000);
  const version = shipped();
  const auto = `${wpURL}/auto`;
  const plugin = join(wpDir, 'auto', 'wp-content/plugins/agency-sso-connector/agency-sso-connector.php');
  const onDisk = () => /^ \* Version: *(\S+)$/m.exec(readFileSync(plugin, 'utf8'))?.[1];
  // WP-Cron, as a system cron runs it on hosting that sets DISABLE_WP_CRON.
  const cron = async () => {
    const r = await fetch(`${auto}/wp-cron.php`);
    expect(r.status).toBe(200);
  };

  const wp = await (await browser.newContext()).newPage();
  await wp.goto(`${auto}/wp-login.php`);
  await wp.getByLabel('Username or Email Address').fill('admin');
  await wp.getByLabel('Password', { exact: true }).fill(wpAdminPassword);
  await wp.getByRole('button', { name: 'Log In' }).click();
  await wp.goto(`${auto}/wp-admin/plugins.php`);
  const row = wp.locator('tr[data-slug="agency-sso-connector"]:not(.plugin-update-tr)');
  await expect(row).toContainText('Version 0.2.9');
  await expect(wp.locator('#agency-sso-connector-update')).toContainText('There is a new version of agency-sso connector available.');

  // Auto-updates off (WordPress' default): cron leaves the plugin as it is.
  await cron();
  expect(onDisk()).toBe('0.2.9');

  // Its admin turns them on for the connector; the next cron run updates it.
  // (WordPress' script turns the link into a button and toggles it over Ajax.)
  const toggle = row.locator('a.toggle-auto-update');
  await expect(toggle).toHaveText('Enable auto-updates');
  await toggle.click();
  await expect(toggle).toHaveText('Disable auto-updates');
  await cron();
  expect(onDisk()).toBe(version);
  await wp.goto(`${auto}/wp-admin/plugins.php`);
  await expect(row).toContainText(`Version ${version}`);
  await expect(row.getByRole('link', { name: /Deactivate/ })).toBeVisible();
  await expect(wp.locator('#agency-sso-connector-update')).toHaveCount(0);
});
