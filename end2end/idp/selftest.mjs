// Self-test for idp/server.mjs: drives a full authorization code flow (PKCE S256 +
// nonce) against a running provider, like a browser plus relying party would.
//
//   node idp/server.mjs &  node idp/selftest.mjs      (exits non-zero on failure)
//
// Reads the same env vars (and defaults) as the server.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';

const env = process.env;
const port = Number(env.IDP_PORT || 3001);
const issuer = env.IDP_ISSUER || `http://127.0.0.1:${port}`;
const clientId = env.IDP_CLIENT_ID || 'agency-sso-local';
const clientSecret = env.IDP_CLIENT_SECRET || 'local-dev-secret-change-me';
const redirectUri = (env.IDP_REDIRECT_URIS || 'http://127.0.0.1:3000/auth/callback').split(',')[0].trim();

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;

// Minimal browser: a cookie jar (names are distinct, so paths are ignored) and manual redirects.
function browser() {
  const jar = new Map();
  return async function request(url, init = {}) {
    const headers = { ...init.headers };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(new URL(url, issuer), { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  };
}

async function discovery() {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  assert.equal(res.status, 200, 'discovery status');
  const meta = await res.json();
  assert.equal(meta.issuer, issuer);
  assert.ok(meta.code_challenge_methods_supported.includes('S256'));
  return meta;
}

// Returns { code, verifier, nonce } after signing in as `account` on the chooser page.
async function authorize(meta, account, expectedButton) {
  const request = browser();
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(16));
  const nonce = b64url(randomBytes(16));
  const auth = new URL(meta.authorization_endpoint);
  auth.search = new URLSearchParams({
    client_id: clientId, redirect_uri: redirectUri, response_type: 'code',
    scope: 'openid email profile', state, nonce,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
  });

  let res = await request(auth);
  assert.equal(res.status, 303, `GET /auth status (${await res.clone().text()})`);
  const interaction = res.headers.get('location');
  assert.match(interaction, /^\/interaction\/[\w-]+$/);

  res = await request(interaction);
  assert.equal(res.status, 200, 'interaction page status');
  const html = await res.text();
  assert.ok(html.includes('<title>Local identity provider</title>'), 'page title');
  assert.ok(html.includes(expectedButton), `button "${expectedButton}"`);

  res = await request(`${interaction}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ account }),
  });
  assert.equal(res.status, 303, 'login POST status');

  // Follow the provider's own redirects until we leave it for the redirect_uri.
  let location = res.headers.get('location');
  for (let hops = 0; !location.startsWith(redirectUri); hops += 1) {
    assert.ok(hops < 5, 'too many redirects');
    res = await request(location);
    assert.ok([302, 303].includes(res.status), `redirect status ${res.status} at ${location}`);
    location = res.headers.get('location');
  }
  const cb = new URL(location);
  assert.equal(cb.searchParams.get('error'), null, `callback error: ${cb.searchParams.get('error_description')}`);
  assert.equal(cb.searchParams.get('state'), state, 'state round-trip');
  assert.equal(cb.searchParams.get('iss'), issuer, 'iss in authorization response');
  assert.ok(cb.searchParams.get('code'), 'code present');
  return { code: cb.searchParams.get('code'), verifier, nonce };
}

async function redeem(meta, { code, verifier }, method) {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (method === 'basic') headers.authorization = basic;
  else { body.set('client_id', clientId); body.set('client_secret', clientSecret); }
  const res = await fetch(meta.token_endpoint, { method: 'POST', headers, body });
  return { status: res.status, json: await res.json() };
}

// Verifies the RS256 signature against the published JWKS and returns the payload.
async function verifyIdToken(meta, idToken) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  assert.equal(header.alg, 'RS256');
  const { keys } = await (await fetch(meta.jwks_uri)).json();
  const jwk = keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, 'signing key in JWKS');
  assert.ok(verify('RSA-SHA256', Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url')), 'signature');
  return JSON.parse(Buffer.from(p, 'base64url'));
}

const meta = await discovery();

// 1. ada-admin, client_secret_basic, full claim check, then code replay.
const ada = await authorize(meta, 'ada-admin', 'Sign in as Ada Admin (admin@agency.test)');
const first = await redeem(meta, ada, 'basic');
assert.equal(first.status, 200, `token: ${JSON.stringify(first.json)}`);
const claims = await verifyIdToken(meta, first.json.id_token);
assert.equal(claims.iss, issuer);
assert.equal(claims.aud, clientId);
assert.equal(claims.nonce, ada.nonce);
assert.deepEqual(
  { sub: claims.sub, email: claims.email, email_verified: claims.email_verified, name: claims.name, given_name: claims.given_name, family_name: claims.family_name, hd: claims.hd },
  { sub: 'ada-admin', email: 'admin@agency.test', email_verified: true, name: 'Ada Admin', given_name: 'Ada', family_name: 'Admin', hd: 'agency.test' },
);
console.log('ada-admin id_token claims:', JSON.stringify(claims));

const replay = await redeem(meta, ada, 'basic');
assert.equal(replay.status, 400, 'second redemption must fail');
assert.equal(replay.json.error, 'invalid_grant');
console.log('code replay rejected:', replay.json.error);

// 2. hugo-wronghd via client_secret_post: mismatched hosted domain comes through as-is.
const hugo = await authorize(meta, 'hugo-wronghd', 'Sign in as Hugo Wrong-Domain (hugo@agency.test)');
const second = await redeem(meta, hugo, 'post');
assert.equal(second.status, 200, `token (post): ${JSON.stringify(second.json)}`);
const hugoClaims = await verifyIdToken(meta, second.json.id_token);
assert.equal(hugoClaims.email, 'hugo@agency.test');
assert.equal(hugoClaims.hd, 'elsewhere.test');

// 3. Unknown account is refused with a 400 page.
{
  const request = browser();
  const auth = new URL(meta.authorization_endpoint);
  auth.search = new URLSearchParams({
    client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid',
    code_challenge: b64url(createHash('sha256').update('x'.repeat(43)).digest()), code_challenge_method: 'S256',
  });
  const interaction = (await request(auth)).headers.get('location');
  const res = await request(`${interaction}/login`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'account=%3Cscript%3E',
  });
  assert.equal(res.status, 400, 'unknown account status');
  assert.ok((await res.text()).includes('&lt;script&gt;'), 'unknown account is escaped');
}

console.log('idp selftest OK');
