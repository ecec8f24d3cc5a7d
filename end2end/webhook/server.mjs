// The agency's webhook for the browser suite: a receiver on loopback that
// keeps each POST it gets (the signature and idempotency-key headers and
// the body) as one JSON line in WEBHOOK_LOG, and answers 200.
import { createServer } from 'node:http';
import { appendFileSync } from 'node:fs';

const port = Number(process.env.WEBHOOK_PORT ?? 3105);
const log = process.env.WEBHOOK_LOG;
if (!log) throw new Error('WEBHOOK_LOG is not set');

createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.end('ok');
    return;
  }
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    appendFileSync(log, `${JSON.stringify({
      path: req.url,
      signature: req.headers['x-agency-sso-signature'] ?? '',
      key: req.headers['idempotency-key'] ?? '',
      body,
    })}\n`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
}).listen(port, '127.0.0.1');
