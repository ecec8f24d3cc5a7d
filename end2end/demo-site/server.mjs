// A stand-in for a client's WordPress site with the SSO plugins, for the
// demo and the browser tests. It does what the plugins do (CONTRACT.md):
//
//   /wp-login.php?action=twl_sso&token=JWT   twl-sso: RS256 through the dashboard's JWKS
//   /shop/?mo_jwt_token=JWT                  miniOrange: HS256 with the shop's secret
//
// It checks the Referer's origin, the signature, iss, aud, exp/nbf, refuses a
// replayed jti, then "logs in" (a cookie) and shows the verified claims on
// its wp-admin page.
//
// Env: DEMO_PORT (3002), DEMO_ISSUER (the dashboard, http://127.0.0.1:3000),
//      DEMO_SHOP_SECRET (the shop's HS256 secret)
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

const port = Number(process.env.DEMO_PORT || 3002);
const issuer = process.env.DEMO_ISSUER || 'http://127.0.0.1:3000';
const shopSecret = process.env.DEMO_SHOP_SECRET || '';
const siteUrl = `http://127.0.0.1:${port}`;
const shopUrl = `${siteUrl}/shop`;
const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
const seen = new Set();
const sessions = new Map();

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, title, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head>` +
    `<body style="font-family: system-ui; max-width: 44rem; margin: 3rem auto"><h1>${esc(title)}</h1>${body}</body></html>`);
}

function refuse(res, why) {
  page(res, 403, 'Login refused', `<p id="reason">${esc(why)}</p>`);
}

async function login(req, res, url, { token, verify, home }) {
  // The plugin accepts a token only from a navigation that starts on the dashboard.
  const referer = req.headers.referer;
  let refOrigin = '';
  try { refOrigin = new URL(referer).origin; } catch { /* none or bad */ }
  if (refOrigin !== new URL(issuer).origin) return refuse(res, `Referer ${referer ?? '(none)'} is not the dashboard`);
  let verified;
  try {
    verified = await verify(token);
  } catch (e) {
    return refuse(res, `Token refused: ${e.code ?? ''} ${e.message}`);
  }
  const { payload, protectedHeader } = verified;
  if (protectedHeader.typ !== 'JWT') return refuse(res, 'Token refused: typ is not JWT');
  if (!payload.jti || seen.has(payload.jti)) return refuse(res, 'Token refused: replayed or without jti');
  seen.add(payload.jti);
  const sid = randomBytes(16).toString('base64url');
  sessions.set(sid, { claims: payload, header: protectedHeader, at: new Date().toISOString() });
  // WordPress sends the user on to redirect_to when it is on the same site.
  let next = `${home}/wp-admin/`;
  const to = url.searchParams.get('redirect_to');
  if (to) {
    try {
      const t = new URL(to);
      const base = new URL(home).pathname.replace(/\/$/, '');
      // Same origin, inside this site, and never `//host` (a protocol-relative redirect).
      if (t.origin === siteUrl && !t.pathname.startsWith('//') && (base === '' || t.pathname === base || t.pathname.startsWith(`${base}/`))) {
        next = t.pathname + t.search;
      }
    } catch { /* keep the default */ }
  }
  res.writeHead(302, { location: next, 'set-cookie': `demo_wp=${sid}; Path=/; HttpOnly; SameSite=Lax`, 'cache-control': 'no-store' });
  res.end();
}

function admin(req, res, url, name) {
  const sid = /(?:^|;\s*)demo_wp=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
  const s = sid && sessions.get(sid);
  if (!s) return page(res, 401, `${name}: not logged in`, '<p>Open this site from the dashboard.</p>');
  const c = s.claims;
  const rows = Object.entries(c).map(([k, v]) =>
    `<tr><th scope="row">${esc(k)}</th><td data-claim="${esc(k)}">${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</td></tr>`).join('');
  page(res, 200, `${name}: logged in as ${c.name ?? c.email}`,
    `<p>Logged in as <strong id="who">${esc(c.email)}</strong> with the role <strong id="role">${esc(c.wp_role)}</strong>.</p>` +
    `<p>Page: <code id="path">${esc(url.pathname + url.search)}</code> · signed with <code id="alg">${esc(s.header.alg)}</code>` +
    `${s.header.kid ? ` key <code id="kid">${esc(s.header.kid)}</code>` : ''}</p>` +
    `<table><caption>Verified claims</caption>${rows}</table>`);
}

createServer(async (req, res) => {
  const url = new URL(req.url, siteUrl);
  try {
    if (url.pathname === '/wp-login.php' && url.searchParams.get('action') === 'twl_sso') {
      return await login(req, res, url, {
        token: url.searchParams.get('token') ?? '',
        home: siteUrl,
        verify: (t) => jwtVerify(t, jwks, { issuer, audience: siteUrl, algorithms: ['RS256'], requiredClaims: ['exp', 'iat', 'jti', 'email', 'wp_role'] }),
      });
    }
    if ((url.pathname === '/shop/' || url.pathname === '/shop') && url.searchParams.has('mo_jwt_token')) {
      if (!shopSecret) return refuse(res, 'The shop has no secret configured');
      return await login(req, res, url, {
        token: url.searchParams.get('mo_jwt_token') ?? '',
        home: shopUrl,
        verify: (t) => {
          if (decodeProtectedHeader(t).alg !== 'HS256') throw new Error('the shop only accepts HS256');
          return jwtVerify(t, new TextEncoder().encode(shopSecret), { issuer, audience: shopUrl, algorithms: ['HS256'], requiredClaims: ['exp', 'iat', 'jti', 'username'] });
        },
      });
    }
    if (url.pathname.startsWith('/shop/wp-admin')) return admin(req, res, url, 'Demo Shop');
    if (url.pathname.startsWith('/wp-admin')) return admin(req, res, url, 'Demo Site');
    if (url.pathname === '/healthz') { res.writeHead(200); return res.end('ok'); }
    page(res, 200, 'Demo client site', '<p>A stand-in WordPress site. Open it from the dashboard.</p>');
  } catch (e) {
    page(res, 500, 'Demo site error', `<p>${esc(e.message)}</p>`);
  }
}).listen(port, '127.0.0.1', () => console.log(`demo site on ${siteUrl} (dashboard ${issuer})`));
