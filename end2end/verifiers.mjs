// Verify dashboard tokens the way a site operator would, with `jose`.
// Reads {"jwks_uri", "issuer", "audience", "tokens": [...]} as JSON on
// stdin; prints one JSON result per token. A fresh remote key set per token,
// fetched over HTTP.
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const req = JSON.parse(input);
const out = [];
for (const token of req.tokens) {
  try {
    const jwks = createRemoteJWKSet(new URL(req.jwks_uri), { cacheMaxAge: 0, cooldownDuration: 0 });
    const { payload } = await jwtVerify(token, jwks, {
      issuer: req.issuer,
      audience: req.audience,
      algorithms: ['RS256'],
      requiredClaims: ['exp', 'iat', 'sub'],
    });
    out.push({ ok: true, kid: decodeProtectedHeader(token).kid, claims: payload });
  } catch (e) {
    out.push({ ok: false, error: `${e.code ?? e.name}: ${e.message}` });
  }
}
console.log(JSON.stringify(out));
