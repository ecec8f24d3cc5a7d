// A TLS-terminating reverse proxy for the end-to-end WordPress, as hosting
// puts in front of a site: https on TLS_PORT, plain http to BACKEND_PORT on
// loopback, with the Host the browser sent and X-Forwarded-Proto/-For
// headers (which WordPress itself does not read). Run by serve.sh.
import { createServer } from 'node:https';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';

const { TLS_PORT, BACKEND_PORT, TLS_KEY, TLS_CERT } = process.env;
createServer({ key: readFileSync(TLS_KEY), cert: readFileSync(TLS_CERT) }, (req, res) => {
  const headers = { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-for': req.socket.remoteAddress };
  const upstream = request({ host: '127.0.0.1', port: Number(BACKEND_PORT), method: req.method, path: req.url, headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  req.pipe(upstream);
}).listen(Number(TLS_PORT), '127.0.0.1');
