// After the whole browser suite: the audit chain it wrote verifies, and no
// record holds a token or a secret.
import { execFileSync } from 'node:child_process';
import { dashboardBin, dashboardEnv } from './playwright.config';

export default function teardown() {
  const run = (...args: string[]) =>
    execFileSync(dashboardBin, args, {
      env: { ...process.env, ...dashboardEnv },
      maxBuffer: 1 << 30,
    }).toString();
  const verified = run('audit', 'verify');
  if (!verified.startsWith('audit log verified')) throw new Error(`audit verify: ${verified}`);
  const records = run('audit', 'export', '--format', 'jsonl').trim().split('\n');
  if (records.length < 10) throw new Error(`only ${records.length} audit records`);
  const secrets = [
    dashboardEnv.SSO_OIDC_CLIENT_SECRET,
    dashboardEnv.SSO_MASTER_KEY,
    dashboardEnv.SSO_DEMO_SHOP_SECRET,
    'PRIVATE KEY',
  ];
  const jwt = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\./;
  for (const r of records) {
    const leak = jwt.test(r) ? 'a JWT-shaped string' : secrets.find((s) => r.includes(s));
    if (leak) throw new Error(`an audit record holds ${leak}: ${r.slice(0, 200)}`);
  }
  console.log(`audit: ${records.length} records written by the browser suite verify and hold no token or secret`);
}
