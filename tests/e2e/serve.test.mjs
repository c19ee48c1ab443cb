// serve.test.mjs - how the server serves the embedded UI (src/api/ui_http.c), without a browser:
// content types, ETag and 304, Cache-Control, the SPA fallback for UI paths, Flipt's JSON 404 for
// unknown API-looking paths, no path traversal, and no authentication on the static files even
// when the API requires a token.
//
// Run: EDGEFLAG_BIN=build/edgeflag node --test tests/e2e/serve.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, stopServer } from './harness.mjs';

let server;
before(async () => { server = await startServer(() => ['--auth-token', 'tok']); });
after(() => stopServer(server));

const get = (p, headers = {}) => fetch(server.base + p, { headers });

// A request line sent as is (fetch would normalise "..").
function raw(path) {
  const { hostname, port } = new URL(server.base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let out = '';
    sock.on('data', (d) => { out += d; });
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
}

test('index and assets: content types, ETag, Cache-Control, CSP', async () => {
  for (const [p, type] of [['/', 'text/html'], ['/index.html', 'text/html'], ['/app.js', 'text/javascript'],
    ['/style.css', 'text/css'], ['/favicon.svg', 'image/svg+xml']]) {
    const r = await get(p);
    assert.equal(r.status, 200, p);
    assert.ok(r.headers.get('content-type').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
    assert.match(r.headers.get('etag'), /^"[0-9a-f]{20}"$/);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.match(r.headers.get('content-security-policy'), /default-src 'self'/);
    assert.ok((await r.text()).length > 0);
  }
  const html = await (await get('/')).text();
  assert.match(html, /<script type="module" src="\/app.js">/);
  assert.doesNotMatch(html, /https?:\/\//, 'the shell must not reference another origin');
});

test('If-None-Match answers 304 with no body; a changed tag answers 200', async () => {
  const first = await get('/app.js');
  const tag = first.headers.get('etag');
  const again = await get('/app.js', { 'If-None-Match': tag });
  assert.equal(again.status, 304);
  assert.equal(await again.text(), '');
  assert.equal((await get('/app.js', { 'If-None-Match': `W/${tag}, "other"` })).status, 304);
  assert.equal((await get('/app.js', { 'If-None-Match': '"0000"' })).status, 200);
});

test('UI paths fall back to index.html; file-like and API-looking unknown paths are 404', async () => {
  const index = await (await get('/')).text();
  for (const p of ['/namespaces/default/flags', '/namespaces/x/flags/y', '/cluster', '/some/deep/ui/path']) {
    const r = await get(p);
    assert.equal(r.status, 200, p);
    assert.equal(await r.text(), index, p);
  }
  assert.equal((await get('/missing.js')).status, 404);
  for (const p of ['/api/v1/nothing-here', '/evaluate/v1/nope', '/edgeflag/v1/nope', '/api']) {
    const r = await get(p);
    assert.equal(r.status, 404, p);
    assert.deepEqual(await r.json(), { code: 5, message: 'Not Found', details: [] });
  }
});

test('no path traversal: dot segments and backslashes are refused', async () => {
  for (const p of ['/../etc/passwd', '/a/../../etc/passwd', '/./index.html', '/a/%2e%2e/index.html', '/..%5cindex.html']) {
    const res = await raw(p);
    const status = Number(res.split(' ')[1]);
    assert.ok(status === 400 || status === 404, `${p} -> ${status}`);
    assert.doesNotMatch(res, /root:x:0:0/);
  }
});

test('static files need no token while the API does', async () => {
  assert.equal((await get('/')).status, 200);
  assert.equal((await get('/namespaces/default/flags')).status, 200);
  assert.equal((await get('/api/v1/namespaces')).status, 401);
  assert.equal((await get('/api/v1/namespaces', { Authorization: 'Bearer tok' })).status, 200);
});
