// The peer for the launch benchmark: the npm `oidc-provider` minting RS256
// JWT access tokens for the client credentials grant with a resource
// indicator (RFC 8707), one worker per core (node's cluster module), so it
// uses the same two cores agency-sso does.
//
//   PEER_PORT=3210 node end2end/bench/peer.mjs
//
// Token request: POST /token, HTTP Basic bench:bench-secret,
// grant_type=client_credentials&scope=wp&resource=https://site.example
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PEER_PORT || 3210);
export const resource = 'https://site.example';

if (cluster.isPrimary) {
  // One signing key for every worker, as one deployment would have.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  const workers = Number(process.env.PEER_WORKERS || availableParallelism());
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    const w = cluster.fork({ PEER_JWK: JSON.stringify(jwk) });
    w.on('message', (m) => {
      if (m === 'listening' && ++ready === workers) console.log(`peer listening on http://127.0.0.1:${port} (${workers} workers)`);
    });
  }
  const stop = () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const jwk = JSON.parse(process.env.PEER_JWK);
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: 'bench',
      client_secret: 'bench-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [jwk] },
    scopes: ['wp'],
    ttl: { ClientCredentials: 60 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'wp',
          accessTokenTTL: 60,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('peer server_error:', err));
  provider.listen(port, '127.0.0.1', () => process.send('listening'));
}
