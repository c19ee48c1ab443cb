// Hostile input: malformed and oversized requests of every kind. Each must get the right 4xx with
// a JSON error body, the server must stay up, and the state (every namespace's snapshot document
// and flag list) must be identical before and after. More than 100 requests in all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { edgeflagBin } from './server.mjs';
import { startServer, call } from './server.mjs';

const TOKEN = 'hostile-suite-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
let srv;
let counted = 0;

async function state() {
  const ns = await call(srv.url, 'GET', '/api/v1/namespaces', undefined, AUTH);
  const out = {};
  for (const n of ns.json.namespaces) {
    const snap = await call(srv.url, 'GET', `/internal/v1/evaluation/snapshot/namespace/${n.key}`, undefined, { ...AUTH, 'x-flipt-accept-server-version': '1.47.0' });
    const flags = await call(srv.url, 'GET', `/api/v1/namespaces/${n.key}/flags`, undefined, AUTH);
    const segs = await call(srv.url, 'GET', `/api/v1/namespaces/${n.key}/segments`, undefined, AUTH);
    out[n.key] = { snap: snap.text, flags: flags.text, segs: segs.text };
  }
  // and the declarative export of the database file itself (SQLite allows this reader alongside)
  const exp = spawnSync(edgeflagBin, ['export', '--db', path.join(srv.dir, 'edgeflag.db'), '--all-namespaces'], { encoding: 'utf8' });
  assert.equal(exp.status, 0, exp.stderr);
  out.export = exp.stdout;
  return out;
}

let before_state;
before(async () => {
  srv = await startServer(['--auth-token', TOKEN, '--idle-timeout', '2', '--max-body', '65536']);
  const mk = (p, b) => call(srv.url, 'POST', p, b, AUTH);
  assert.equal((await mk('/api/v1/flags', { key: 'f', name: 'F', enabled: true })).status, 200);
  assert.equal((await mk('/api/v1/flags/f/variants', { key: 'on', attachment: '{"a":1}' })).status, 200);
  assert.equal((await mk('/api/v1/flags', { key: 'b', name: 'B', type: 'BOOLEAN_FLAG_TYPE', enabled: true })).status, 200);
  assert.equal((await mk('/api/v1/segments', { key: 's', name: 'S', matchType: 'ALL_MATCH_TYPE' })).status, 200);
  assert.equal((await mk('/api/v1/segments/s/constraints', { type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'eq', value: 'x' })).status, 200);
  before_state = await state();
});
after(async () => {
  const after_state = await state();
  assert.deepEqual(after_state, before_state, 'state changed under hostile input');
  const r = await srv.stop();
  assert.equal(r.code, 0, 'server did not exit cleanly: ' + srv.stderr());
  console.log(`hostile suite: ${counted} hostile requests, state unchanged, clean shutdown`);
  assert.ok(counted >= 100, `only ${counted} hostile requests`);
});

async function expectJsonError(method, path, body, status, headers = AUTH, note = '') {
  const r = await call(srv.url, method, path, body, headers);
  counted++;
  assert.equal(r.status, status, `${method} ${path} ${note}: got ${r.status} ${r.text.slice(0, 200)}`);
  assert.ok(r.json && typeof r.json === 'object', `${method} ${path} ${note}: not a JSON error: ${r.text.slice(0, 100)}`);
  assert.ok(typeof r.json.message === 'string' || typeof r.json.errorCode === 'string', `${method} ${path}: no message`);
  return r;
}

async function alive() {
  const r = await call(srv.url, 'GET', '/health');
  assert.equal(r.status, 200);
}

const BAD_JSON = ['{', '[]', '"x"', 'nul', '{"flagKey":}', '{} x', '\ufeff{}', '{/*c*/}', '{"a":1,}', "{'a':1}", '{"a":"\\x"}', '{"a":"\\ud800"}', '123', 'true'];
const POST_ROUTES = ['/evaluate/v1/variant', '/evaluate/v1/boolean', '/evaluate/v1/batch', '/api/v1/evaluate', '/api/v1/flags', '/api/v1/segments', '/api/v1/namespaces', '/api/v1/flags/f/variants', '/api/v1/segments/s/constraints'];

test('malformed JSON bodies: 400 with a JSON error', async () => {
  for (const route of POST_ROUTES)
    for (const body of BAD_JSON.slice(0, route.startsWith('/evaluate') ? BAD_JSON.length : 6)) await expectJsonError('POST', route, body, 400, AUTH, JSON.stringify(body));
  for (const body of ['{', '"x"', '[1]']) {
    const r = await call(srv.url, 'POST', '/ofrep/v1/evaluate/flags/f', body, AUTH);
    counted++;
    assert.equal(r.status, 400);
    assert.equal(r.json.errorCode, 'PARSE_ERROR');
  }
  await alive();
});

test('wrong JSON types: 400', async () => {
  const cases = [
    ['/evaluate/v1/variant', { flagKey: 5, entityId: 'e' }], ['/evaluate/v1/variant', { flagKey: 'f', entityId: {} }],
    ['/evaluate/v1/variant', { flagKey: 'f', entityId: 'e', context: [] }], ['/evaluate/v1/boolean', { flagKey: 'b', entityId: 'e', context: { a: 1 } }],
    ['/evaluate/v1/batch', { requests: {} }], ['/evaluate/v1/batch', { requests: [{ flagKey: ['x'] }] }],
    ['/api/v1/flags', { key: 'g', name: 'G', enabled: 'yes' }], ['/api/v1/flags', { key: 7, name: 'G' }],
    ['/api/v1/flags/f/variants', { key: 'v2', attachment: 5 }], ['/api/v1/segments', { key: 't', name: 'T', matchType: true }],
    ['/api/v1/flags/f/rules', { segmentKey: 's', rank: 'x' }], ['/api/v1/namespaces', { key: ['n'], name: 'N' }],
    ['/api/v1/evaluate', { flagKey: 'f', entityId: 'e', context: 'x' }], ['/api/v1/batch-evaluate', { requests: 'x' }],
  ];
  for (const [p, b] of cases) await expectJsonError('POST', p, b, 400, AUTH, JSON.stringify(b));
  await alive();
});

test('invalid values rejected by validation: 400 or 404, nothing written', async () => {
  await expectJsonError('POST', '/api/v1/flags', { key: 'bad key!', name: 'X' }, 400);
  await expectJsonError('POST', '/api/v1/flags', { key: 'ok', name: '' }, 400);
  await expectJsonError('POST', '/api/v1/flags', { key: 'f', name: 'dup' }, 400);
  await expectJsonError('POST', '/api/v1/flags/f/variants', { key: 'x', attachment: '{not json' }, 400);
  await expectJsonError('POST', '/api/v1/flags/f/variants', { key: 'x', attachment: JSON.stringify({ a: 'x'.repeat(10001) }) }, 400);
  await expectJsonError('POST', '/api/v1/segments/s/constraints', { type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'lt', value: 'x' }, 400);
  await expectJsonError('POST', '/api/v1/segments/s/constraints', { type: 'NUMBER_COMPARISON_TYPE', property: 'p', operator: 'eq', value: '' }, 400);
  await expectJsonError('POST', '/api/v1/segments/s/constraints', { type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'isoneof', value: JSON.stringify(Array.from({ length: 101 }, (_, i) => String(i))) }, 400);
  await expectJsonError('POST', '/api/v1/flags/nope/variants', { key: 'x' }, 404);
  await expectJsonError('POST', '/api/v1/flags/f/rules', { segmentKey: 'nope', rank: 1 }, 404);
  await expectJsonError('DELETE', '/api/v1/namespaces/default', undefined, 400);
  await expectJsonError('GET', '/api/v1/flags?limit=abc', undefined, 400);
  await expectJsonError('GET', '/api/v1/flags?offset=5', undefined, 400);
  await expectJsonError('GET', '/api/v1/flags?limit=1&pageToken=%%%', undefined, 400);
  await alive();
});

test('oversized and deeply nested bodies', async () => {
  await expectJsonError('POST', '/evaluate/v1/variant', JSON.stringify({ flagKey: 'f', entityId: 'e', context: { big: 'x'.repeat(70000) } }), 413);
  await expectJsonError('POST', '/api/v1/flags', 'x'.repeat(200000), 413);
  const deep = '['.repeat(5000) + ']'.repeat(5000);
  await expectJsonError('POST', '/evaluate/v1/variant', deep, 400);
  await expectJsonError('POST', '/evaluate/v1/batch', '{"requests":' + '['.repeat(100) + ']'.repeat(100) + '}', 400);
  await expectJsonError('POST', '/api/v1/flags', '{"metadata":' + '{"a":'.repeat(200) + '1' + '}'.repeat(200) + ',"key":"deep","name":"D"}', 400);
  await alive();
});

test('invalid UTF-8', async () => {
  for (const bytes of [[0x7b, 0x22, 0x66, 0x6c, 0x61, 0x67, 0x4b, 0x65, 0x79, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d], [0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d], [0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]]) {
    for (const p of ['/evaluate/v1/variant', '/api/v1/flags']) {
      const r = await fetch(srv.url + p, { method: 'POST', headers: AUTH, body: Buffer.from(bytes) });
      counted++;
      assert.equal(r.status, 400);
      assert.ok((await r.json()).message);
    }
  }
  await alive();
});

test('unknown routes and methods', async () => {
  for (const p of ['/api/nope', '/api/v2/flags', '/evaluate/v1', '/evaluate/v1/variant/extra', '/api/v1/namespaces/default/flags/f/rules/x/distributions/y/z', '/internal/v1/evaluation/snapshot', '/ofrep/v2/configuration'])
    await expectJsonError('GET', p, undefined, 404);
  for (const [m, p] of [['DELETE', '/evaluate/v1/variant'], ['PUT', '/evaluate/v1/boolean'], ['GET', '/evaluate/v1/batch'], ['PATCH', '/api/v1/flags/f'], ['POST', '/health'], ['DELETE', '/metrics']])
    await expectJsonError(m, p, undefined, 405);
  await alive();
});

test('bad or missing tokens: 401 with Flipt body; health and metrics stay open', async () => {
  const bad = [{}, { authorization: 'Bearer wrong' }, { authorization: 'Bearer ' }, { authorization: 'Basic ' + Buffer.from('a:b').toString('base64') }, { authorization: `bearer ${TOKEN}x` }, { authorization: TOKEN }, { authorization: `JWT ${TOKEN}` }];
  for (const h of bad) {
    for (const [m, p, b] of [['GET', '/api/v1/flags'], ['POST', '/evaluate/v1/variant', { flagKey: 'f', entityId: 'e' }], ['GET', '/internal/v1/evaluation/snapshot/namespace/default'], ['POST', '/ofrep/v1/evaluate/flags/f', {}]]) {
      const r = await expectJsonError(m, p, b, 401, h);
      assert.equal(r.json.code, 16);
      assert.equal(r.json.message, 'request was not authenticated');
    }
  }
  assert.equal((await call(srv.url, 'GET', '/health', undefined, {})).status, 200);
  assert.equal((await call(srv.url, 'GET', '/metrics', undefined, {})).status, 200);
  assert.equal((await call(srv.url, 'POST', '/evaluate/v1/variant', { flagKey: 'f', entityId: 'e' }, { authorization: `Bearer ${TOKEN}` })).status, 200);
});

function raw(data, { wait = 300 } = {}) {
  return new Promise((resolve) => {
    const u = new URL(srv.url);
    const s = net.connect(Number(u.port), u.hostname);
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('error', () => {});
    s.write(data);
    setTimeout(() => {
      s.destroy();
      resolve(out);
    }, wait);
  });
}

test('oversized headers: 431', async () => {
  // Up to about 1.3x --max-header (default 4 KiB) the request reaches edgeflag and gets its JSON
  // 431. Beyond libmicrohttpd's per-connection buffer it answers 431 itself (its own short body)
  // and closes the connection; the server carries on either way.
  for (const size of [4500, 5500]) {
    const res = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(size)}\r\n\r\n`);
    counted++;
    assert.match(res, /^HTTP\/1\.1 431/);
    assert.match(res, /"code":3/);
  }
  const many = Array.from({ length: 70 }, (_, i) => `X-H${i}: ${'v'.repeat(60)}`).join('\r\n');
  let res = await raw(`GET /health HTTP/1.1\r\nHost: x\r\n${many}\r\n\r\n`);
  counted++;
  assert.match(res, /^HTTP\/1\.1 431/);
  assert.match(res, /"code":3/);
  res = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ${'a'.repeat(100000)}\r\n\r\n`);
  counted++;
  assert.match(res, /^HTTP\/1\.1 431/);
  await alive();
});

test('path tricks', async () => {
  for (const p of ['/../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/api/v1/../../etc/passwd', '//etc/passwd', '/health/../../etc/shadow', '/api/v1/flags/%00', '/api/v1/flags/..%2f..%2fetc']) {
    const res = await raw(`GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    counted++;
    const status = Number(res.slice(9, 12));
    assert.ok(!/root:/.test(res), `${p} leaked a file`);
    if (status === 200) {
      // a path outside the APIs may be a route of the web UI: then it is the UI's own page
      assert.match(res, /Content-Type: text\/html/i, `${p}: ${res.slice(0, 80)}`);
    } else {
      assert.ok(status === 404 || status === 400, `${p}: ${res.slice(0, 60)}`);
      assert.match(res, /\{"code":/);
    }
  }
  await alive();
});

test('a slow-loris client cannot hold the server', async () => {
  const u = new URL(srv.url);
  const sockets = [];
  for (let i = 0; i < 20; i++) {
    const s = net.connect(Number(u.port), u.hostname);
    s.on('error', () => {});
    s.write('GET /health HTTP/1.1\r\nHost: x\r\n');
    sockets.push(s);
  }
  counted += sockets.length;
  // while they dribble, everyone else is served
  for (let i = 0; i < 5; i++) {
    sockets.forEach((s) => s.write('X-a: b\r\n'));
    await alive();
    await new Promise((r) => setTimeout(r, 200));
  }
  // idle-timeout is 2 s: silent slow clients are dropped
  const closed = await Promise.all(sockets.map((s) => new Promise((r) => { s.on('close', () => r(true)); setTimeout(() => r(false), 6000); })));
  assert.ok(closed.every(Boolean), 'slow clients were not disconnected');
  await alive();
});
