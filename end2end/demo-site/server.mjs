// A stand-in for a client's WordPress site with the SSO plugins, for the
// demo and the browser tests. It does what the plugins do (CONTRACT.md):
//
//   /wp-login.php?action=twl_sso&token=JWT   twl-sso: RS256 through the dashboard's JWKS
//   /shop/...?mo_jwt_token=JWT               miniOrange's free plugin, as it really is (below)
//
// twl-sso: it checks the Referer's origin, the signature, iss, aud, exp/nbf,
// refuses a replayed jti, then "logs in" (a cookie) and shows the verified
// claims on its wp-admin page.
//
// Env: DEMO_PORT (3002), DEMO_ISSUER (the dashboard, http://127.0.0.1:3000),
//      DEMO_SHOP_SECRET (the shop's HS256 secret), DEMO_SHOP_USERNAME_CLAIM
//      (the claim mapped as the shop's Username attribute, `username`),
//      DEMO_SHOP_USERS (existing shop accounts, `login:role,login:role`)
import { createServer } from 'node:http';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const port = Number(process.env.DEMO_PORT || 3002);
const issuer = process.env.DEMO_ISSUER || 'http://127.0.0.1:3000';
const shopSecret = process.env.DEMO_SHOP_SECRET || '';
const shopUsernameClaim = process.env.DEMO_SHOP_USERNAME_CLAIM || 'username';
/** The shop's WordPress accounts: login -> role (WordPress' default role is subscriber). */
const shopUsers = new Map((process.env.DEMO_SHOP_USERS || '').split(',').filter(Boolean)
  .map((u) => u.split(':')).map(([login, role]) => [login, { role: role || 'subscriber' }]));
const shopSessions = new Map();
const siteUrl = `http://127.0.0.1:${port}`;
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

// ---------------------------------------------------------------------------
// The shop: miniOrange "WP Login and Register using JWT", free edition 2.3.0,
// as its source reads and as it behaved on a real WordPress 6.1 (CONTRACT.md).
// This is that plugin's behaviour, faults included, not ours: the dashboard
// must send what it accepts. On `init`, for any page of the site:
//
// - nothing happens when someone is logged in in this browser;
// - the token is the `mo_jwt_token` query parameter, else that cookie;
// - not three dot-separated parts: error `invalid_jwt`;
// - header and payload are read with PHP's plain base64_decode (base64url's
//   `-` and `_` are dropped, so such a part no longer parses) and json_decode;
// - `alg` must start with H (HS256 is what its settings save; RS256 is the
//   premium edition): else `Incorrect JWT Format`;
// - the signature: HMAC-SHA-(alg's digits) over the token's own
//   `header.payload` text, keyed with the secret as the raw string, compared
//   with the third part decoded from base64url;
// - `exp` is required and checked without leeway; a token that carries `nbf`
//   at all is refused (`! is_null($nbf) || time() < $nbf`); all three
//   failures read `JWT Signature is invalid`;
// - `iss`, `aud`, `iat`, `jti`, `wp_role`, the names and the Referer are not
//   read; no replay check;
// - the user is looked up by login name only, from the mapped username
//   claim; missing claim: wp_die `Please Configure the Attribute Mapping.`;
//   an unknown login gets a new account with that login, no e-mail, no
//   names and WordPress' default role (subscriber);
// - success: logged in, sent to the home page (`redirect_to` is ignored);
// - an error: a redirect to the same URL without the token and with
//   `mo_jwt_error=...` appended, shown nowhere.
// ---------------------------------------------------------------------------

/** PHP's base64_decode without its strict flag: skips characters outside the standard alphabet. */
function phpBase64Decode(text) {
  let kept = String(text).replace(/[^A-Za-z0-9+/]/g, '');
  if (kept.length % 4 === 1) kept = kept.slice(0, -1);
  return Buffer.from(kept, 'base64');
}

/** PHP's json_decode(..., true): null when the bytes are not UTF-8 JSON. */
function phpJsonDecode(buf) {
  try { return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf)); } catch { return null; }
}

/** The plugin's JWTUtils: `{ payload }` when the token is good, else `{ error }` with its message. */
function miniOrangeCheck(token, secret, now = Math.floor(Date.now() / 1000)) {
  const parts = token.split('.');
  if (parts.length !== 3) return { error: 'invalid_jwt' };
  const header = phpJsonDecode(phpBase64Decode(parts[0]));
  const payload = phpJsonDecode(phpBase64Decode(parts[1]));
  const alg = header && typeof header === 'object' ? header.alg : null;
  if (typeof alg !== 'string' || alg.split('S')[0] !== 'H') return { error: 'Incorrect JWT Format' };
  const invalid = { error: 'JWT Signature is invalid' };
  if (!secret) return invalid;
  let mac;
  try {
    mac = createHmac(`sha${alg.split('S')[1]}`, secret).update(`${parts[0]}.${parts[1]}`).digest();
  } catch { return invalid; }
  const sig = Buffer.from(parts[2].replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (sig.length !== mac.length || !timingSafeEqual(sig, mac)) return invalid;
  const claim = (k) => (payload && typeof payload === 'object' && k in payload ? payload[k] : null);
  const exp = claim('exp');
  if (exp === null || now > Number(exp)) return invalid;
  if (claim('nbf') !== null) return invalid;
  return { payload };
}

function shopCookie(req, name) {
  return new RegExp(`(?:^|;\\s*)${name}=([^;]+)`).exec(req.headers.cookie ?? '')?.[1];
}

function shop(req, res, url) {
  const sid = shopCookie(req, 'demo_shop');
  const session = sid && shopSessions.get(sid);
  const fromUrl = url.searchParams.get('mo_jwt_token');
  const fromCookie = shopCookie(req, 'mo_jwt_token');
  const token = session ? null : (fromUrl ?? (fromCookie ? decodeURIComponent(fromCookie) : null));
  if (token !== null) {
    const checked = miniOrangeCheck(token, shopSecret);
    if (checked.error) {
      // The same URL, the token taken out, the error appended (MJUtils::send_error_response_on_url).
      let back = `${url.pathname}${url.search}`;
      let cut = `mo_jwt_token=${fromUrl}`;
      const at = back.indexOf(cut);
      if (fromUrl !== null && at > 0) {
        if (back[at - 1] === '&') cut = `&${cut}`;
        back = back.split(cut).join('');
      }
      // wp_safe_redirect writes the message's spaces as %20.
      back += `${back.includes('?') ? '&' : '?'}mo_jwt_error=${checked.error.replace(/ /g, '%20')}`;
      res.writeHead(302, { location: back, 'cache-control': 'no-store' });
      return res.end();
    }
    const login = checked.payload[shopUsernameClaim];
    if (login === undefined) return page(res, 500, 'WordPress › Error', '<p id="reason">Please Configure the Attribute Mapping.</p>');
    const key = String(login);
    let created = false;
    if (!shopUsers.has(key)) { shopUsers.set(key, { role: 'subscriber' }); created = true; }
    const id = randomBytes(16).toString('base64url');
    shopSessions.set(id, { login: key, created, at: new Date().toISOString() });
    res.writeHead(302, { location: '/shop/', 'set-cookie': `demo_shop=${id}; Path=/shop; HttpOnly; SameSite=Lax`, 'cache-control': 'no-store' });
    return res.end();
  }
  if (!session) {
    const error = url.searchParams.get('mo_jwt_error');
    return page(res, 200, 'Demo Shop', '<p>A stand-in WordPress site with miniOrange\'s JWT login. Not logged in.</p>' +
      (error ? `<p>(The URL carries <code id="mo-error">mo_jwt_error=${esc(error)}</code>, which the plugin shows nowhere.)</p>` : ''));
  }
  const user = shopUsers.get(session.login);
  page(res, 200, `Demo Shop: logged in as ${session.login}`,
    `<p>Logged in as <strong id="who">${esc(session.login)}</strong> with the role <strong id="role">${esc(user.role)}</strong>` +
    `${session.created ? ' (an account the plugin created at this login)' : ''}.</p>` +
    `<p>Page: <code id="path">${esc(url.pathname + url.search)}</code></p>` +
    '<p>The miniOrange plugin keeps no claims: no e-mail, names or role come from the token.</p>');
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
    if (url.pathname === '/shop' || url.pathname.startsWith('/shop/')) return shop(req, res, url);
    if (url.pathname.startsWith('/wp-admin')) return admin(req, res, url, 'Demo Site');
    if (url.pathname === '/healthz') { res.writeHead(200); return res.end('ok'); }
    page(res, 200, 'Demo client site', '<p>A stand-in WordPress site. Open it from the dashboard.</p>');
  } catch (e) {
    page(res, 500, 'Demo site error', `<p>${esc(e.message)}</p>`);
  }
}).listen(port, '127.0.0.1', () => console.log(`demo site on ${siteUrl} (dashboard ${issuer})`));
