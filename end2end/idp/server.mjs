// Local OpenID Connect provider standing in for Google during development and
// end-to-end tests. Everything lives in memory and is lost on restart.
//
//   node idp/server.mjs          (from /work/main/end2end)
//
// Env: IDP_PORT (3001), IDP_HOST (127.0.0.1), IDP_ISSUER (http://127.0.0.1:$IDP_PORT),
//      IDP_CLIENT_ID (agency-sso-local), IDP_CLIENT_SECRET (local-dev-secret-change-me),
//      IDP_REDIRECT_URIS (comma-separated, http://127.0.0.1:3000/auth/callback)
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import Provider, { interactionPolicy } from 'oidc-provider';

const env = process.env;
const port = Number(env.IDP_PORT || 3001);
const host = env.IDP_HOST || '127.0.0.1';
const issuer = env.IDP_ISSUER || `http://127.0.0.1:${port}`;
const clientId = env.IDP_CLIENT_ID || 'agency-sso-local';
const clientSecret = env.IDP_CLIENT_SECRET || 'local-dev-secret-change-me';
const redirectUris = (env.IDP_REDIRECT_URIS || 'http://127.0.0.1:3000/auth/callback')
  .split(',').map((s) => s.trim()).filter(Boolean);

// Demo people; the key is the account id, which becomes `sub`.
// `hd` mimics Google's hosted-domain claim (hugo's is deliberately wrong).
const PEOPLE = {
  'ada-admin': { email: 'admin@agency.test', name: 'Ada Admin', given_name: 'Ada', family_name: 'Admin', email_verified: true, hd: 'agency.test' },
  'sam-staff': { email: 'sam@agency.test', name: 'Sam Staff', given_name: 'Sam', family_name: 'Staff', email_verified: true, hd: 'agency.test' },
  'sasha-staff': { email: 'sasha@agency.test', name: 'Sasha Second', given_name: 'Sasha', family_name: 'Second', email_verified: true, hd: 'agency.test' },
  // Names whose characters break base64url for a plugin that decodes plain base64 (miniOrange).
  'zoe-odegard': { email: 'zoe@agency.test', name: 'Zoë Ødegård', given_name: 'Zoë', family_name: 'Ødegård', email_verified: true, hd: 'agency.test' },
  'quinn-quirk': { email: 'quinn@agency.test', name: 'Quinn >?~ Quirk', given_name: 'Quinn', family_name: '>?~ Quirk', email_verified: true, hd: 'agency.test' },
  'nina-newhire': { email: 'nina@agency.test', name: 'Nina Newhire', given_name: 'Nina', family_name: 'Newhire', email_verified: true, hd: 'agency.test' },
  'olly-outsider': { email: 'olly@elsewhere.test', name: 'Olly Outsider', given_name: 'Olly', family_name: 'Outsider', email_verified: true, hd: 'elsewhere.test' },
  'una-unverified': { email: 'una@agency.test', name: 'Una Unverified', given_name: 'Una', family_name: 'Unverified', email_verified: false, hd: 'agency.test' },
  'hugo-wronghd': { email: 'hugo@agency.test', name: 'Hugo Wrong-Domain', given_name: 'Hugo', family_name: 'Wrong-Domain', email_verified: true, hd: 'elsewhere.test' },
};

// A fresh RS256 key per start (instead of oidc-provider's built-in dev keys).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

// Google accepts prompt=select_account; oidc-provider only knows login/consent,
// so register it as a requestable prompt that shows the same chooser page.
const policy = interactionPolicy.base();
policy.add(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }), 0);

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    // oidc-provider also accepts client_secret_post for a client_secret_basic client.
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  responseTypes: ['code'],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => true }, // only S256 is supported by this version
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified', 'hd'],
    profile: ['name', 'given_name', 'family_name'],
  },
  // Put scope-requested claims into the ID token itself, as Google does.
  conformIdTokenClaims: false,
  async findAccount(_ctx, id) {
    if (!Object.hasOwn(PEOPLE, id)) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...PEOPLE[id] }) };
  },
  interactions: { policy, url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false } },
  // Fixed lifetimes (also silences "you SHOULD change" notices for the defaults).
  ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 86400, Grant: 86400 },
});

const escapeHtml = (v) => String(v).replace(/[&<>"']/g, (c) => (
  { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

function page(title, body) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1b1f24; }
  main { max-width: 30rem; margin: 3rem auto; padding: 1.5rem 2rem; background: #fff; border-radius: 8px; box-shadow: 0 1px 3px #0003; }
  h1 { font-size: 1.4rem; margin-top: 0; }
  .note { color: #4a5360; font-size: .9rem; }
  ul { list-style: none; padding: 0; }
  li + li { margin-top: .5rem; }
  button { width: 100%; padding: .6rem .8rem; font: inherit; text-align: left; background: #fff; color: inherit; border: 1px solid #8a93a0; border-radius: 6px; cursor: pointer; }
  button:hover { background: #eef2f8; }
  button:focus-visible { outline: 3px solid #1a5fd0; outline-offset: 2px; }
</style>
</head>
<body><main>${body}</main></body>
</html>`;
}

function chooserPage(uid, clientName) {
  const buttons = Object.entries(PEOPLE).map(([id, p]) => `
    <li><form method="post" action="/interaction/${escapeHtml(uid)}/login">
      <input type="hidden" name="account" value="${escapeHtml(id)}">
      <button type="submit">Sign in as ${escapeHtml(p.name)} (${escapeHtml(p.email)})</button>
    </form></li>`).join('');
  return page('Local identity provider', `
  <h1>Local identity provider</h1>
  <p class="note">This is a local stand-in for Google sign-in, for development and tests only.
  Choose a demo person to continue to <strong>${escapeHtml(clientName)}</strong>.</p>
  <ul>${buttons}</ul>`);
}

function send(ctx, status, html) {
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('Cache-Control', 'no-store');
  // No form-action: the login POST redirects on to the relying party's origin.
  ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
  ctx.body = html;
}

async function readForm(req, limit = 16 * 1024) {
  let raw = '';
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > limit) throw new Error('request body too large');
  }
  return new URLSearchParams(raw);
}

// Consent is given automatically: grant exactly what the client asked for.
async function grantFor(accountId, details) {
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  // (The `claims` request parameter is disabled, so scopes are all there is.)
  if (details.params.scope) grant.addOIDCScope(details.params.scope);
  return grant.save();
}

async function finish(ctx, result) {
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(returnTo);
}

// Our interaction routes, in front of the provider's own router.
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!m) return next();
  const [, uid, login] = m;
  try {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) return send(ctx, 400, page('Error', '<h1>Sign-in session mismatch</h1>'));

    if (!login && ctx.method === 'GET') {
      if (details.prompt.name === 'consent') {
        // Already signed in here, only consent is missing: grant it silently.
        return finish(ctx, { consent: { grantId: await grantFor(details.session.accountId, details) } });
      }
      const client = await provider.Client.find(details.params.client_id);
      return send(ctx, 200, chooserPage(uid, client?.clientName || details.params.client_id));
    }

    if (login && ctx.method === 'POST') {
      const account = (await readForm(ctx.req)).get('account');
      if (!account || !Object.hasOwn(PEOPLE, account)) {
        return send(ctx, 400, page('Unknown account', `<h1>Unknown account</h1>
          <p>No demo person called <code>${escapeHtml(account ?? '')}</code>.</p>`));
      }
      return finish(ctx, {
        select_account: {},
        login: { accountId: account },
        consent: { grantId: await grantFor(account, details) },
      });
    }

    ctx.status = 405;
  } catch (err) {
    // Typically an expired/missing interaction cookie (SessionNotFound).
    return send(ctx, 400, page('Sign-in failed', `<h1>Sign-in failed</h1><p>${escapeHtml(err.message)}</p>
      <p>Start again from the application.</p>`));
  }
});

provider.on('server_error', (_ctx, err) => console.error('idp server_error:', err));

const server = provider.listen(port, host, () => console.log(`idp listening on ${issuer}`));

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
