#!/usr/bin/env node
// receiver.js - the webhook receiver of the tests: an HTTP server on 127.0.0.1 that answers
// each request as a script says and records what it got, so the webhook specs check
// duroxlua's deliveries against an independent implementation (Node's http and crypto).
//
//   node receiver.js --log FILE [--port N] [--script JSON] [--secret S] [--cert PEM --key PEM]
//
// With --cert and --key it serves HTTPS with that certificate (the TLS verification test).
// Prints "listening <port>" on stdout once it accepts connections. The script is a JSON
// list of actions for the 1st, 2nd, ... request; after the list every request gets 200.
// An action: {"status": 500}, {"status": 429, "retry_after": "1"}, {"status": 503,
// "retry_after_date_s": 2} (Retry-After as the HTTP date 2 s after the answer), {"drop": true} (the
// connection is destroyed without an answer), {"delay_ms": 3000, "status": 200} (answers
// late). Each request is appended to the log as one JSON line: {n, at, method, path,
// idempotency_key, attempt, signature, signature_ok (checked here with HMAC-SHA256 over
// "<t>.<body>" when --secret is given, else null), user_agent, content_type, body, action}.
// Runs until SIGTERM/SIGINT or stdin closes.
'use strict';
const http = require('http');
const https = require('https');
const fs = require('fs');
const crypto = require('crypto');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const logPath = arg('log');
if (!logPath) {
  process.stderr.write('usage: node receiver.js --log FILE [--port N] [--script JSON] [--secret S]\n');
  process.exit(2);
}
const port = parseInt(arg('port', '0'), 10);
const script = JSON.parse(arg('script', '[]'));
const secret = arg('secret', null);
let n = 0;

function verify(sigHeader, body) {
  if (secret === null) return null;
  if (!sigHeader) return false;
  const parts = {};
  for (const p of sigHeader.split(',')) {
    const i = p.indexOf('=');
    if (i > 0) parts[p.slice(0, i)] = p.slice(i + 1);
  }
  if (!parts.t || !parts.v1) return false;
  const mac = crypto.createHmac('sha256', secret).update(parts.t + '.' + body).digest('hex');
  return mac.length === parts.v1.length && crypto.timingSafeEqual(Buffer.from(mac), Buffer.from(parts.v1));
}

const cert = arg('cert', null);
const key = arg('key', null);
const handler = (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const action = script[n] || { status: 200 };
    n += 1;
    const rec = {
      n, at: Date.now(), method: req.method, path: req.url,
      idempotency_key: req.headers['idempotency-key'] || null,
      attempt: req.headers['x-duroxlua-attempt'] ? parseInt(req.headers['x-duroxlua-attempt'], 10) : null,
      signature: req.headers['x-duroxlua-signature'] || null,
      signature_ok: verify(req.headers['x-duroxlua-signature'], body),
      user_agent: req.headers['user-agent'] || null,
      content_type: req.headers['content-type'] || null,
      body, action,
    };
    fs.appendFileSync(logPath, JSON.stringify(rec) + '\n');
    if (action.drop) {
      req.socket.destroy();
      return;
    }
    const answer = () => {
      const headers = { 'Content-Type': 'text/plain' };
      if (action.retry_after !== undefined) headers['Retry-After'] = String(action.retry_after);
      // an HTTP date this many seconds after the answer (computed when answering, so a slow
      // client cannot have made it the past already)
      if (action.retry_after_date_s !== undefined) {
        headers['Retry-After'] = new Date(Date.now() + action.retry_after_date_s * 1000).toUTCString();
      }
      res.writeHead(action.status || 200, headers);
      res.end('ok\n');
    };
    if (action.delay_ms) setTimeout(answer, action.delay_ms);
    else answer();
  });
};
const server = cert && key
  ? https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handler)
  : http.createServer(handler);

server.listen(port, '127.0.0.1', () => {
  process.stdout.write('listening ' + server.address().port + '\n');
});
const stop = () => { server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
