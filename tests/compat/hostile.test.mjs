// Hostile input: malformed, mistyped, out-of-range, oversized and tricky requests to every route,
// header and stream edgeflag serves, generated from the tables in hostile_cases.mjs. Each input
// must get the right 4xx with Flipt's JSON error body (OFREP's on OFREP routes), the server must
// stay up, and after every group the state must be exactly what it was: every namespace's
// snapshot document, flag and segment lists, the token list, X-Edgeflag-Version and the
// `edgeflag export` of the database file. Every input is distinct (a duplicate fails the suite),
// and the suite prints how many there were. A subset is replayed against a replica, whose
// forwarded writes must reach the primary exactly as sent and change nothing either.
// This suite must never weaken a check to make a case pass: a case that fails is a bug to fix
// (or, where Flipt really accepts the input, a case to move to the tolerated group).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { edgeflagBin, startServer, call as callOnce } from './server.mjs';
import * as T from './hostile_cases.mjs';
import { tempDir } from './tmp.mjs';

const TOKEN = 'hostile-suite-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MAX_BODY = 65536;
const MAX_DEPTH = 64;
let srv;
let fx = {};
const seen = new Set(); // distinct inputs (method, target, headers, body)
const counts = { refused: 0, tolerated: 0, raw: 0, replica: 0 };
let beforeState;

// gRPC code Flipt's gateway pairs with each status
const GRPC = { 400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 409: 6, 413: 3, 431: 3 };

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const SANITIZER = /runtime error:|AddressSanitizer|LeakSanitizer|ThreadSanitizer/;

function bodyBytes(body) {
  if (body === undefined) return undefined;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  return Buffer.from(T.serialize(body));
}

// One request over a kept-alive connection; any method, any (already encoded) target.
function send(url, c) {
  const u = new URL(url);
  const headers = { ...(c.auth === false ? {} : AUTH), ...(c.h ?? {}) };
  const data = bodyBytes(c.body);
  if (data) {
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    headers['content-length'] = data.length;
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: c.m, path: c.p, headers, agent }, (res) => {
      const chunks = [];
      const stream = res.headers['content-type']?.startsWith('text/event-stream');
      res.on('data', (d) => {
        chunks.push(d);
        if (stream) res.destroy(); // a stream answered: enough to judge it
      });
      const done = () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode, text, json, headers: res.headers });
      };
      res.on('end', done);
      res.on('close', done);
    });
    req.setTimeout(10000, () => req.destroy(new Error(`${c.m} ${c.p}: no answer in 10 s`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

function keyOf(c) {
  const b = bodyBytes(c.body);
  return `${c.m} ${c.p} ${JSON.stringify(c.auth === false ? c.h ?? {} : { ...AUTH, ...(c.h ?? {}) })} ${b ? b.toString('base64') : '-'}`;
}

// What is wrong with an answer, or null.
function judge(c, r) {
  const want = [].concat(c.want);
  const what = `${c.m} ${c.p.slice(0, 90)} [${(c.note ?? '').slice(0, 80)}]`;
  if (!want.includes(r.status)) return `${what}: got ${r.status}, want ${want.join('|')}: ${r.text.slice(0, 160)}`;
  if (r.status >= 500) return `${what}: ${r.status}`;
  // a 2xx is right only where the case allows it (idempotent deletes, tolerated input): the state
  // comparison after the group shows it changed nothing
  if (c.kind === 'none' || c.kind === 'any' || r.status < 300) return null;
  const j = r.json;
  if (!j || typeof j !== 'object') return `${what}: not a JSON error: ${r.text.slice(0, 100)}`;
  if (c.kind === 'ofrep' && typeof j.errorCode === 'string') return null;
  // OFREP routes answer authentication and routing errors in Flipt's shape, like the gateway
  if (typeof j.code !== 'number' || typeof j.message !== 'string' || !Array.isArray(j.details))
    return `${what}: not Flipt's error body: ${r.text.slice(0, 100)}`;
  if (GRPC[r.status] !== undefined && j.code !== GRPC[r.status]) return `${what}: status ${r.status} with gRPC code ${j.code}`;
  if (r.status === 401 && j.message !== 'request was not authenticated') return `${what}: 401 with message ${j.message}`;
  return null;
}

async function state() {
  const ns = await call(srv.url, 'GET', '/api/v1/namespaces', undefined, AUTH);
  const out = { version: ns.headers.get('x-edgeflag-version') };
  for (const n of ns.json.namespaces) {
    const snap = await call(srv.url, 'GET', `/internal/v1/evaluation/snapshot/namespace/${n.key}`, undefined, { ...AUTH, 'x-flipt-accept-server-version': '1.47.0' });
    const flags = await call(srv.url, 'GET', `/api/v1/namespaces/${n.key}/flags`, undefined, AUTH);
    const segs = await call(srv.url, 'GET', `/api/v1/namespaces/${n.key}/segments`, undefined, AUTH);
    out[n.key] = { snap: snap.text, etag: snap.headers.get('etag'), flags: flags.text, segs: segs.text };
  }
  out.tokens = (await call(srv.url, 'GET', '/auth/v1/tokens', undefined, AUTH)).text;
  // and the declarative export of the database file itself (SQLite allows this reader alongside)
  const exp = spawnSync(edgeflagBin, ['export', '--db', path.join(srv.dir, 'edgeflag.db'), '--all-namespaces'], { encoding: 'utf8' });
  assert.equal(exp.status, 0, exp.stderr);
  out.export = exp.stdout;
  return out;
}

// The server here runs with --idle-timeout 2, shorter than fetch's own keep-alive pool (4 s): a
// pooled connection the server closed at its idle timeout can be picked just as it closes, and the
// request fails with "other side closed" before the server sees it. Such a read is sent once more,
// on a fresh connection (as Go's and browsers' clients do); any other failure is the test's.
async function call(...args) {
  try {
    return await callOnce(...args);
  } catch (e) {
    if (args[1] !== 'GET' || !['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'].includes(e?.cause?.code)) throw e;
    return callOnce(...args);
  }
}

async function alive(url = srv.url) {
  let r;
  try {
    r = await call(url, 'GET', '/health');
  } catch (e) {
    throw new Error(`the server is gone (${e.message}); its last words:\n${srv.stderr().slice(-6000)}`);
  }
  assert.equal(r.status, 200);
}

// Sends a group of cases, then checks liveness and that nothing changed.
async function runGroup(cases, { url = srv.url, count = true, stateOf = state, expected = beforeState } = {}) {
  const failures = [];
  for (const c of cases) {
    if (count) {
      const k = keyOf(c);
      assert.ok(!seen.has(k), `duplicate hostile input: ${k.slice(0, 200)}`);
      seen.add(k);
    }
    let r;
    try {
      r = await send(url, c);
    } catch (e) {
      failures.push(`${c.m} ${c.p}: ${e.message}`);
      await alive(url);
      continue;
    }
    const bad = judge(c, r);
    if (bad) failures.push(bad);
    if (count) counts[r.status >= 400 ? 'refused' : 'tolerated']++;
  }
  await alive(url);
  assert.deepEqual(failures, [], `${failures.length} of ${cases.length} inputs answered wrongly`);
  assert.deepEqual(await stateOf(), expected, 'state changed under hostile input');
}

before(async () => {
  srv = await startServer(['--auth-token', TOKEN, '--idle-timeout', '2', '--max-body', String(MAX_BODY), '--max-json-depth', String(MAX_DEPTH)]);
  for (const [m, p, b, id] of T.FIXTURE) {
    const fill = (s) => s.replace(/\{(\w+)\}/g, (_, k) => fx[k]);
    const body = JSON.parse(fill(JSON.stringify(b)));
    const r = await call(srv.url, m, fill(p), body, AUTH);
    assert.equal(r.status, 200, `fixture ${m} ${p}: ${r.text}`);
    if (id) fx[id] = r.json.id;
  }
  const tok = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'scoped', namespaceKey: 'other' }, AUTH);
  assert.equal(tok.status, 200, tok.text);
  fx.tokid = tok.json.authentication.id;
  beforeState = await state();
});

after(async () => {
  agent.destroy();
  const afterState = await state();
  assert.deepEqual(afterState, beforeState, 'state changed under hostile input');
  const r = await srv.stop();
  assert.equal(r.code, 0, 'server did not exit cleanly: ' + srv.stderr());
  // under the sanitizer build, a report that did not stop the process still fails the suite
  assert.doesNotMatch(srv.stderr(), SANITIZER, 'sanitizer report: ' + srv.stderr().slice(-4000));
  const total = seen.size + counts.raw;
  console.log(`hostile suite: ${total} distinct hostile inputs (${counts.refused} refused with a 4xx, ${counts.raw} raw-protocol, ${counts.tolerated} tolerated without effect; ${counts.replica} replayed on a replica), state and version unchanged, clean shutdown`);
  assert.ok(total >= 500, `only ${total} distinct hostile inputs`);
});

const BODY_ROUTES = () => T.bodyRoutes(fx).filter((r, i, a) => a.findIndex((x) => x.m === r.m && x.p === r.p) === i);

test('malformed JSON on every body route: 400', async () => {
  const cases = [];
  for (const r of BODY_ROUTES()) {
    const kind = r.kind ?? 'flipt';
    const texts = r.brief ? T.BAD_JSON.slice(0, 6) : ['/api/v1/flags', '/evaluate/v1/variant', '/api/v1/segments/s/constraints', '/auth/v1/method/token'].includes(r.p) ? T.BAD_JSON : T.BAD_JSON.slice(0, 14);
    for (const t of texts) cases.push({ m: r.m, p: r.p, body: t, want: 400, kind, note: JSON.stringify(t) });
  }
  await runGroup(cases);
});

test('a wrong JSON type or an out-of-range number in every field of every body: 400', async () => {
  await runGroup(T.wrongTypeCases(fx));
});

test('well-typed values the store must refuse: 400/404, nothing written', async () => {
  await runGroup(T.invalidValueCases(fx));
});

test('unknown namespaces, flags, segments, ids and routes: 404', async () => {
  await runGroup(T.notFoundCases(fx));
});

test('every route with every method it does not take: 405', async () => {
  await runGroup(T.methodCases(fx));
});

test('list parameters: limits, offsets, page tokens', async () => {
  await runGroup(T.queryCases());
});

test('headers: Authorization forms, X-Edgeflag-Min-Version, X-Flipt-Namespace, Content-Type', async () => {
  await runGroup(T.headerCases(TOKEN));
  // health and metrics stay open; the right token still works
  assert.equal((await call(srv.url, 'GET', '/health', undefined, {})).status, 200);
  assert.equal((await call(srv.url, 'GET', '/metrics', undefined, {})).status, 200);
  assert.equal((await call(srv.url, 'POST', '/evaluate/v1/variant', { flagKey: 'f', entityId: 'e' }, AUTH)).status, 200);
});

test('percent-encoding tricks in path segments', async () => {
  await runGroup(T.pathCases());
});

test('oversized and deeply nested bodies, long strings and arrays', async () => {
  await runGroup(T.sizeCases(MAX_BODY, MAX_DEPTH));
});

test('invalid UTF-8, overlong encodings, NUL and lone surrogates', async () => {
  await runGroup(T.utf8Cases());
});

test('stream parameters: a 4xx at once, never a stream', async () => {
  await runGroup(T.streamCases());
});

test('inputs Flipt tolerates (unknown keys, odd headers) are answered and write nothing', async () => {
  await runGroup(T.toleratedCases());
});

// --- the route table: every route and method edgeflag registers gets hostile input ---------------------

// `edgeflag routes --json`: the table `serve` builds with the same registration code.
function routeTable() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-hostile-routes-'));
  const r = spawnSync(edgeflagBin, ['routes', '--json', '--db', path.join(dir, 'r.db')], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).filter((rt) => !(rt.class === 'open' && (rt.pattern === '/' || rt.pattern.includes('.')))); // UI files
}

const matches = (pattern, p) => {
  const a = pattern.split('/'), b = p.split('?')[0].split('/');
  return a.length === b.length && a.every((seg, i) => (seg.startsWith('{') ? b[i].length > 0 : seg === b[i]));
};

// A path for a pattern with every parameter naming a fixture object (or, with bad, the parameter
// at that index naming none, percent-encoded).
function fillPattern(pattern, bad = -1) {
  const segs = pattern.split('/');
  let param = -1;
  return segs.map((seg, i) => {
    if (!seg.startsWith('{')) return seg;
    param++;
    if (param === bad) return '%00nope%2F..';
    const prev = segs[i - 1];
    const name = seg.slice(1, -1);
    const ids = { variants: fx.vid, constraints: fx.cid, rules: fx.rid, distributions: fx.did, rollouts: fx.roid, tokens: fx.tokid, authentications: fx.tokid };
    if (name === 'id' || name === 'ruleId') return ids[prev];
    if (name === 'flagKey') return pattern.includes('/rollouts') ? 'b' : 'f';
    if (name === 'segmentKey') return 's';
    if (name === 'namespaceKey' || name === 'ns') return 'default';
    return { flags: 'f', segments: 's', namespaces: 'other', namespace: 'default' }[prev] ?? 'f';
  }).join('/');
}

test('every route in the route table gets hostile input (generated: a route added later cannot skip it)', async () => {
  const table = routeTable();
  const cases = [];
  const add = (c) => {
    if (!seen.has(keyOf(c)) && !cases.some((x) => keyOf(x) === keyOf(c))) cases.push(c);
  };
  for (const rt of table) {
    const nparams = (rt.pattern.match(/\{/g) ?? []).length;
    for (const m of rt.methods) {
      const p = fillPattern(rt.pattern);
      const kind = rt.class === 'ofrep' ? 'ofrep' : 'flipt';
      if (m === 'POST' || m === 'PUT') add({ m, p, body: '{"', want: 400, kind, note: 'table: malformed body' });
      if (m === 'DELETE') for (let i = 0; i < nparams; i++) add({ m, p: fillPattern(rt.pattern, i), want: [200, 400, 404], kind, note: `table: delete of nothing (parameter ${i})` });
      if (m === 'GET' && rt.state && !rt.stream) add({ m, p, h: { 'x-edgeflag-min-version': `v${rt.pattern.length}` }, want: 400, kind, note: 'table: bad min-version' });
      if ((m === 'GET' || m === 'HEAD') && rt.class !== 'open' && !rt.state)
        add({ m, p, auth: false, h: { authorization: `Bearer ${TOKEN}\t` }, want: 401, kind: 'flipt', note: 'table: token with trailing junk' });
      if ((m === 'GET' || m === 'HEAD') && rt.class === 'open') {
        // OIDC sign-in routes name a provider; this server has none: Flipt's 404 (docs/auth.md)
        const oidc = rt.pattern.startsWith('/auth/v1/method/oidc/');
        add({ m, p: `${p}?%zz=%00&a=${'x'.repeat(500)}&a=`, want: oidc ? 404 : 200, kind: oidc ? 'flipt' : 'none', note: 'table: junk query on an open route' });
      }
      if (m === 'GET' && rt.stream) add({ m, p: `${p}?since=${'9'.repeat(30)}`, want: rt.pattern.includes('replication') ? 400 : [200, 400], kind: 'flipt', note: 'table: stream with a huge position' });
    }
  }
  await runGroup(cases);
  // every route and method has had at least one hostile input by now
  const sent = [...seen].map((k) => k.split(' ').slice(0, 2));
  const missing = [];
  for (const rt of table) for (const m of rt.methods) if (!sent.some(([sm, sp]) => sm === m && matches(rt.pattern, sp))) missing.push(`${m} ${rt.pattern}`);
  assert.deepEqual(missing, [], 'routes without hostile input');
});

test('docs/security.md lists every route of the table with its auth class', () => {
  const doc = fs.readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), '../../docs/security.md'), 'utf8');
  const rows = doc.split('\n').filter((l) => l.startsWith('| ') && l.includes('`/'));
  const NSP = '/api/v1/namespaces/{namespaceKey}';
  const wrong = [];
  for (const rt of routeTable()) {
    // the two forms of a management route share a row: /api/v1[/namespaces/{namespaceKey}]/…
    const forms = [rt.pattern];
    if (rt.pattern.startsWith(NSP + '/')) forms.push('/api/v1[/namespaces/{namespaceKey}]' + rt.pattern.slice(NSP.length));
    else if (rt.pattern.startsWith('/api/v1/')) forms.push('/api/v1[/namespaces/{namespaceKey}]' + rt.pattern.slice(7));
    const mine = rows.filter((l) => forms.some((f) => l.includes('`' + f + '`')));
    const row = mine.find((l) => rt.methods.every((m) => l.split('|')[1].includes(m)));
    if (!row) wrong.push(`missing: ${rt.methods.join(',')} ${rt.pattern}`);
    else if (!row.includes(`| ${rt.class} |`)) wrong.push(`differs: ${rt.pattern} (${rt.class}): ${row}`);
  }
  assert.deepEqual(wrong, [], 'docs/security.md is out of date: regenerate its route table from `edgeflag routes --json`');
});

// --- below the HTTP client: raw bytes on a socket ------------------------------------------------------

// Sends bytes and collects what comes back until the server closes or `wait` ms pass.
function raw(data, { wait = 3000 } = {}) {
  return new Promise((resolve) => {
    const u = new URL(srv.url);
    const s = net.connect(Number(u.port), u.hostname);
    let out = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve({ out, closed: false });
    }, wait);
    s.on('data', (d) => (out += d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve({ out, closed: true });
    });
    s.write(data);
  });
}

const A = `Authorization: Bearer ${TOKEN}\r\n`;
const RAW = [
  // [request bytes, acceptable statuses (0: closed without an answer), note]
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 5\r\nConnection: close\r\n\r\n{"key":"rz","name":"R"}`, [400], 'Content-Length shorter than the body'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 100\r\n\r\n{"key":"rz","name":"R"}`, [0, 400, 408], 'Content-Length longer than the body'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Content-Length: -1\r\n\r\n{}`, [0, 400], 'negative Content-Length'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Content-Length: abc\r\n\r\n{}`, [0, 400], 'non-numeric Content-Length'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x`, [0, 400], 'two different Content-Lengths'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 18446744073709551616\r\n\r\n{}`, [0, 400, 413], 'Content-Length past 2^64'],
  // (a declared length past --max-body is not refused before the body arrives: reported)
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 99999999\r\n\r\n{}`, [413], 'Content-Length past --max-body'],
  [`GET /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}X-Edgeflag-Min-Version: +1\r\nConnection: close\r\n\r\n`, [400], 'min-version with a sign'],
  [`GET /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}X-Edgeflag-Min-Version: 0x1\r\nConnection: close\r\n\r\n`, [400], 'min-version in hex'],
  [`GET /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}X-Edgeflag-Min-Version: 1 2\r\nConnection: close\r\n\r\n`, [400], 'min-version with inner space'],
  [`GET /edgeflag/v1/replication/stream?since=+1 HTTP/1.1\r\nHost: x\r\n${A}Connection: close\r\n\r\n`, [400], 'stream since with a sign'],
  [`GET /edgeflag/v1/replication/stream?since=%201 HTTP/1.1\r\nHost: x\r\n${A}Connection: close\r\n\r\n`, [400], 'stream since with a space'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n`, [413], 'Expect: 100-continue past --max-body'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`, [0, 400], 'bad chunk size'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Transfer-Encoding: chunked\r\n\r\n${(MAX_BODY + 10).toString(16)}\r\n${'x'.repeat(MAX_BODY + 10)}\r\n0\r\n\r\n`, [413], 'chunked body past --max-body'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{"\r\n0\r\n\r\n`, [400], 'chunked body that is not JSON'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Transfer-Encoding: gzip\r\nConnection: close\r\n\r\nxx`, [0, 400, 411, 501], 'unsupported Transfer-Encoding'],
  [`POST /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`, [0, 400], 'Content-Length and chunked (smuggling)'],
  ['GARBAGE\r\n\r\n', [0, 400], 'not a request line'],
  ['GET /health HTTP/9.9\r\nHost: x\r\n\r\n', [0, 400, 505], 'unknown HTTP version'],
  ['GET /health\r\n\r\n', [0, 400], 'HTTP/0.9 request line'],
  ['GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n', [0, 400], 'header without a colon'],
  ['GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n', [0, 200, 400], 'obsolete line folding'],
  ['GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n', [0, 200, 400], 'NUL in a header value'],
  ['GET /health HTTP/1.1\r\nHost: x\r\nX\0A: a\r\n\r\n', [0, 400], 'NUL in a header name'],
  [`GET /api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Authorization: Bearer wrong\r\nConnection: close\r\n\r\n`, [400], 'two Authorization headers'],
  [`GET /api/v1/flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\0\r\nConnection: close\r\n\r\n`, [0, 200, 400, 401], 'NUL after the token'],
  [`GET /api/v1/flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n`, [0, 400, 401], 'non-ASCII token'],
  [`GET /api/v1/flags/f\0 HTTP/1.1\r\nHost: x\r\n${A}Connection: close\r\n\r\n`, [0, 200, 400, 404], 'NUL in the target'],
  [`GET /api/v1/flags?limit=1\0 HTTP/1.1\r\nHost: x\r\n${A}Connection: close\r\n\r\n`, [0, 200, 400], 'NUL in the query'],
  [`GET http://evil.example/api/v1/flags HTTP/1.1\r\nHost: x\r\n${A}Connection: close\r\n\r\n`, [200, 400, 404], 'absolute-form target'],
  [`GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, [0, 400, 404, 405], 'asterisk-form target'],
  [`DELETE /api/v1/flags/f HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, [401], 'unauthenticated delete'],
];

test('raw protocol: Content-Length lies, chunked bodies, bad request lines and headers', async () => {
  const results = await Promise.all(RAW.map(([data]) => raw(data)));
  const failures = [];
  RAW.forEach(([, want, note], i) => {
    counts.raw++;
    const { out } = results[i];
    const status = out.startsWith('HTTP/1.') ? Number(out.slice(9, 12)) : 0;
    // a 100 Continue may come first: judge the final answer (none: 0)
    const next = out.indexOf('HTTP/1.', 5);
    const final = status !== 100 ? status : next < 0 ? 0 : Number(out.slice(next + 9, next + 12));
    if (!want.includes(final)) failures.push(`${note}: got ${final}: ${JSON.stringify(out.slice(0, 120))}`);
    if (final >= 500 && final !== 505) failures.push(`${note}: ${final}`);
    if (/Expect/.test(note) && status === 100) failures.push(`${note}: "100 Continue" before a refusal`);
    if (final === 0 && !results[i].closed) failures.push(`${note}: neither answered nor closed`);
  });
  assert.deepEqual(failures, []);
  await alive();
  assert.deepEqual(await state(), beforeState, 'state changed under raw hostile input');
});

// Pipelined requests: the server answers a request's body from its own per-connection buffer
// without copying it, which holds only if the next request on the connection is not started
// before the answer is sent. Large answers (a batch of 300 evaluations, ~60 KB, more than a
// socket takes at once) alternate with small ones, all written at once; each answer must be
// its own request's, in order.
test('pipelined requests on one connection: each answered in order with its own body', async () => {
  const reqs = [];
  const N = 12;
  for (let i = 0; i < N; i++) {
    const big = i % 2 === 0;
    const body = big
      ? JSON.stringify({ requestId: `batch-${i}`, requests: Array.from({ length: 300 }, (_, k) => ({ flagKey: 'f', entityId: `e${i}-${k}`, requestId: `r${i}-${k}`, context: { p: k % 3 ? 'x' : 'y' } })) })
      : JSON.stringify({ flagKey: 'f', entityId: `single-${i}`, requestId: `single-${i}`, context: {} });
    const path = big ? '/evaluate/v1/batch' : '/evaluate/v1/variant';
    const close = i === N - 1 ? 'Connection: close\r\n' : ''; // the last one ends the exchange: no idle wait
    reqs.push({ big, i, data: `POST ${path} HTTP/1.1\r\nHost: x\r\n${A}${close}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` });
  }
  const { out } = await raw(reqs.map((r) => r.data).join(''), { wait: 5000 });
  // split the answers by their Content-Length
  const answers = [];
  let at = 0;
  while (at < out.length) {
    const head = out.indexOf('\r\n\r\n', at);
    if (head < 0) break;
    const len = Number(/content-length: (\d+)/i.exec(out.slice(at, head))?.[1]);
    answers.push({ status: Number(out.slice(at + 9, at + 12)), body: out.slice(head + 4, head + 4 + len) });
    at = head + 4 + len;
  }
  assert.equal(answers.length, reqs.length, `answers: ${answers.length}`);
  reqs.forEach((r, n) => {
    const a = answers[n];
    assert.equal(a.status, 200, a.body.slice(0, 200));
    const j = JSON.parse(a.body);
    if (r.big) {
      assert.equal(j.requestId, `batch-${r.i}`);
      assert.equal(j.responses.length, 300);
      j.responses.forEach((x, k) => assert.equal(x.variantResponse.requestId, `r${r.i}-${k}`));
    } else {
      assert.equal(j.requestId, `single-${r.i}`);
      assert.equal(j.flagKey, 'f');
    }
  });
  await alive();
});

test('oversized headers: 431', async () => {
  // Up to about 1.3x --max-header (default 4 KiB) the request reaches edgeflag and gets its JSON
  // 431. Beyond libmicrohttpd's per-connection buffer it answers 431 itself (its own short body)
  // and closes the connection; the server carries on either way.
  const many = Array.from({ length: 70 }, (_, i) => `X-H${i}: ${'v'.repeat(60)}`).join('\r\n');
  const cases = [
    [`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4500)}\r\n\r\n`, true],
    [`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(5500)}\r\n\r\n`, true],
    [`GET /health HTTP/1.1\r\nHost: x\r\n${many}\r\n\r\n`, true],
    [`GET /api/v1/flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'t'.repeat(5000)}\r\n\r\n`, true],
    [`GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ${'a'.repeat(100000)}\r\n\r\n`, false],
    [`GET /${'a'.repeat(100000)} HTTP/1.1\r\nHost: x\r\n\r\n`, false],
  ];
  for (const [data, json] of cases) {
    const { out } = await raw(data, { wait: 1000 });
    counts.raw++;
    assert.match(out, /^HTTP\/1\.1 (431|414)/, out.slice(0, 80));
    if (json) assert.match(out, /"code":3/);
  }
  await alive();
});

test('path tricks', async () => {
  for (const p of ['/../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/api/v1/../../etc/passwd', '//etc/passwd', '/health/../../etc/shadow', '/api/v1/flags/%00', '/api/v1/flags/..%2f..%2fetc']) {
    const { out: res } = await raw(`GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    counts.raw++;
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
  // an encoded '/' is not a path separator: it must not reach another route than its raw path
  // names (a proxy allowing or refusing by path prefix would be bypassed), nor another namespace
  const f = 'f'; // a flag of the fixture (hostile_cases.mjs)
  for (const p of [`/api/v1/namespaces/default%2Fflags%2F${f}`, `/api/v1/namespaces/default%2fflags`, `/api/v1/flags%2F${f}`]) {
    const { out: res } = await raw(`GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    counts.raw++;
    assert.equal(Number(res.slice(9, 12)), 404, `${p}: ${res.slice(0, 80)}`);
    assert.match(res, /"code":5/);
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

// --- the same inputs through a replica: forwarded exactly, refused by the primary, nothing changes ---------

test('through a replica: forwarded writes are refused as on the primary, both states unchanged', async () => {
  const rdir = tempDir('ef-hostile-replica-');
  const rep = await startServer(['--upstream', srv.url, '--upstream-token', TOKEN, '--auth-token', TOKEN, '--db', path.join(rdir, 'edgeflag.db'), '--max-body', String(MAX_BODY)], { dir: rdir });
  try {
    // wait until the replica holds the primary's state
    const want = beforeState.version;
    for (let i = 0; i < 200; i++) {
      const r = await call(rep.url, 'GET', '/api/v1/namespaces', undefined, AUTH);
      if (r.headers.get('x-edgeflag-version') === want) break;
      await new Promise((res) => setTimeout(res, 25));
    }
    const repState = async () => {
      const out = {};
      for (const ns of ['default', 'other']) {
        const snap = await call(rep.url, 'GET', `/internal/v1/evaluation/snapshot/namespace/${ns}`, undefined, { ...AUTH, 'x-flipt-accept-server-version': '1.47.0' });
        out[ns] = { snap: snap.text, version: snap.headers.get('x-edgeflag-version') };
      }
      return out;
    };
    const repBefore = await repState();
    const writes = (c) => c.m !== 'GET' && !c.p.startsWith('/evaluate') && !c.p.startsWith('/ofrep') && !/evaluate/.test(c.p);
    const pick = (list, every) => list.filter(writes).filter((_, i) => i % every === 0);
    const cases = [...pick(T.wrongTypeCases(fx), 6), ...pick(T.invalidValueCases(fx), 3), ...pick(T.notFoundCases(fx), 1), ...pick(T.pathCases(), 1),
      ...pick(T.utf8Cases(), 2), ...T.sizeCases(MAX_BODY, MAX_DEPTH).filter(writes).slice(0, 6),
      // and what a replica answers itself: stream parameters, min-version, methods
      ...T.streamCases(), ...T.headerCases(TOKEN).filter((c) => /min-version|auth Bearer wrong/.test(c.note)), ...T.methodCases(fx).filter((_, i) => i % 5 === 0)];
    // a replica answers writes with the primary's error only while nothing waits: no 5xx, same 4xx
    await runGroup(cases, { url: rep.url, count: false });
    counts.replica += cases.length;
    assert.deepEqual(await repState(), repBefore, 'replica state changed');
  } finally {
    await rep.stop();
  }
  assert.doesNotMatch(rep.stderr(), SANITIZER, 'sanitizer report on the replica: ' + rep.stderr().slice(-4000));
});
