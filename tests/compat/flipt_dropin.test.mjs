// Flipt drop-in, the HTTP side (issue 12, half A): what a Flipt v1.61.1 user's clients, browsers and
// dashboards do on the first day, against a real `edgeflag serve`:
//   - empty namespace segments, exactly as Flipt's Go SDK over HTTP builds its paths
//     (fmt.Sprintf("/api/v1/namespaces/%v/flags", "") -> /api/v1/namespaces//flags): "default";
//     only the namespace may be empty, and a scoped token cannot use the empty segment to reach
//     another namespace through the body's namespaceKey;
//   - DELETE /api/v1/namespaces/{key}?force=true, PUT /auth/v1/self/expire, GET /meta/config and
//     /meta/info's fields, with Flipt's messages;
//   - gzip when accepted (never for streams), CORS off by default and as Flipt's cors.* when on;
//   - Flipt's metric names, fed with edgeflag's, accepted by promtool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { startServer, call } from './server.mjs';

const BOOT = 'dropin-bootstrap-token';
const as = (t) => ({ authorization: `Bearer ${t}` });

// A raw request (no automatic decompression, headers as sent), for gzip and CORS.
function raw(url, method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: res.rawHeaders, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}
// every value of a response header, in order (node joins repeated ones; rawHeaders keeps them)
function all(r, name) {
  const out = [];
  for (let i = 0; i < r.raw.length; i += 2) if (r.raw[i].toLowerCase() === name) out.push(r.raw[i + 1]);
  return out;
}

test('empty namespace segments, as Flipt\'s Go SDK sends them, mean "default"', async () => {
  const srv = await startServer(['--auth-token', BOOT]);
  try {
    const B = as(BOOT);
    const ok = async (m, p, body, want = 200) => {
      const r = await call(srv.url, m, p, body, B);
      assert.equal(r.status, want, `${m} ${p}: ${r.text}`);
      return r.json;
    };
    const flag = await ok('POST', '/api/v1/namespaces//flags', { key: 'f', name: 'F', type: 'VARIANT_FLAG_TYPE', enabled: true });
    assert.equal(flag.namespaceKey, 'default');
    assert.equal((await ok('GET', '/api/v1/namespaces//flags/f')).key, 'f');
    assert.equal((await ok('GET', '/api/v1/namespaces/default/flags/f')).key, 'f');
    const v = await ok('POST', '/api/v1/namespaces//flags/f/variants', { key: 'on' });
    await ok('PUT', `/api/v1/namespaces//flags/f/variants/${v.id}`, { key: 'on', name: 'On' });
    await ok('POST', '/api/v1/namespaces//segments', { key: 's', name: 'S', matchType: 'ALL_MATCH_TYPE' });
    await ok('POST', '/api/v1/namespaces//segments/s/constraints', { type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'eq', value: 'x' });
    const rule = await ok('POST', '/api/v1/namespaces//flags/f/rules', { segmentKey: 's', rank: 1 });
    await ok('POST', `/api/v1/namespaces//flags/f/rules/${rule.id}/distributions`, { variantId: v.id, rollout: 100 });
    assert.equal((await ok('GET', '/api/v1/namespaces//flags/f/rules')).rules.length, 1);
    await ok('POST', '/api/v1/namespaces//flags', { key: 'b', name: 'B', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
    await ok('POST', '/api/v1/namespaces//flags/b/rollouts', { rank: 1, threshold: { percentage: 100, value: false } });
    assert.equal((await ok('GET', '/api/v1/namespaces//flags/b/rollouts')).rules.length, 1);
    assert.equal((await ok('GET', '/api/v1/namespaces//flags')).flags.length, 2);
    assert.equal((await ok('GET', '/api/v1/namespaces//segments')).segments.length, 1);
    // legacy evaluation, as the Go SDK's Evaluate and BatchEvaluate build their paths
    const ev = await ok('POST', '/api/v1/namespaces//evaluate', { flagKey: 'f', entityId: 'e', context: { p: 'x' } });
    assert.equal(ev.match, true);
    assert.equal(ev.value, 'on');
    const batch = await ok('POST', '/api/v1/namespaces//batch-evaluate', { requests: [{ flagKey: 'f', entityId: 'e', context: { p: 'x' } }] });
    assert.equal(batch.responses[0].value, 'on');
    // a path that names the namespace wins over the body's, as in Flipt's gateway, even when empty
    await ok('POST', '/api/v1/namespaces', { key: 'other', name: 'Other' });
    const created = await ok('POST', '/api/v1/namespaces//flags', { key: 'g', name: 'G', type: 'BOOLEAN_FLAG_TYPE', namespaceKey: 'other' });
    assert.equal(created.namespaceKey, 'default');
    assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/other/flags/g', undefined, B)).status, 404);
    // only the namespace may be empty: other parameters never match an empty segment
    assert.equal((await call(srv.url, 'POST', '/api/v1/namespaces/default/flags//variants', { key: 'x' }, B)).status, 404);
    // scope: a token scoped to "other" cannot reach "default" through the empty segment, nor
    // "other" through the body while the path says default
    const scoped = (await ok('POST', '/auth/v1/method/token', { name: 'scoped', namespaceKey: 'other' })).clientToken;
    const before = (await ok('GET', '/api/v1/namespaces/other/flags')).flags.length;
    for (const [m, p, body] of [
      ['POST', '/api/v1/namespaces//flags', { key: 'h', name: 'H', type: 'BOOLEAN_FLAG_TYPE', namespaceKey: 'other' }],
      ['GET', '/api/v1/namespaces//flags/f'],
      ['DELETE', '/api/v1/namespaces//flags/f'],
      ['POST', '/api/v1/namespaces//evaluate', { flagKey: 'f', entityId: 'e', namespaceKey: 'other' }],
    ]) {
      const r = await call(srv.url, m, p, body, as(scoped));
      assert.equal(r.status, 401, `${m} ${p} with a token scoped to other: ${r.text}`);
      assert.deepEqual(r.json, { code: 16, message: 'request was not authenticated', details: [] });
    }
    assert.equal((await ok('GET', '/api/v1/namespaces/other/flags')).flags.length, before);
    // and a token scoped to default, on the empty segment, acts on default only (regression: the
    // body's namespaceKey once won over an empty path segment the scope check had read)
    const dflt = (await ok('POST', '/auth/v1/method/token', { name: 'dflt', namespaceKey: 'default' })).clientToken;
    const r = await call(srv.url, 'POST', '/api/v1/namespaces//flags', { key: 'k', name: 'K', type: 'BOOLEAN_FLAG_TYPE', namespaceKey: 'other' }, as(dflt));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.namespaceKey, 'default');
    assert.equal((await ok('GET', '/api/v1/namespaces/other/flags')).flags.length, before);
    assert.equal((await ok('GET', '/api/v1/namespaces//flags/f')).key, 'f');
  } finally {
    await srv.stop();
  }
});

test('DELETE /api/v1/namespaces/{key}?force=true deletes a namespace with its flags (Flipt\'s messages otherwise)', async () => {
  const srv = await startServer([]);
  try {
    await call(srv.url, 'POST', '/api/v1/namespaces', { key: 'team', name: 'Team' });
    await call(srv.url, 'POST', '/api/v1/namespaces/team/flags', { key: 'f', name: 'F', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
    await call(srv.url, 'POST', '/api/v1/namespaces/team/segments', { key: 's', name: 'S', matchType: 'ANY_MATCH_TYPE' });
    await call(srv.url, 'POST', '/api/v1/namespaces/team/flags/f/rollouts', { rank: 1, segment: { segmentKey: 's', value: true } });
    let r = await call(srv.url, 'DELETE', '/api/v1/namespaces/team');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { code: 3, message: 'namespace "team" cannot be deleted; flags must be deleted first', details: [] });
    r = await call(srv.url, 'DELETE', '/api/v1/namespaces/team?force=false');
    assert.equal(r.status, 400);
    r = await call(srv.url, 'DELETE', '/api/v1/namespaces/team?force=yes');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { code: 3, message: 'parsing field "force": strconv.ParseBool: parsing "yes": invalid syntax', details: [] });
    assert.equal((await call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'team', flagKey: 'f', entityId: 'e' })).status, 200);
    r = await call(srv.url, 'DELETE', '/api/v1/namespaces/team?force=true');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/team')).status, 404);
    // published: evaluation no longer finds the flag, the snapshot is empty
    r = await call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'team', flagKey: 'f', entityId: 'e' });
    assert.equal(r.status, 404, r.text);
    r = await call(srv.url, 'GET', '/internal/v1/evaluation/snapshot/namespace/team');
    assert.deepEqual(r.json.flags, []);
    // the namespace can be made again, empty (segments went with it)
    assert.equal((await call(srv.url, 'POST', '/api/v1/namespaces', { key: 'team', name: 'Team' })).status, 200);
    assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/team/segments')).json.segments.length, 0);
    // the default namespace stays protected, force or not (edgeflag's nodes and SDKs rely on it)
    r = await call(srv.url, 'DELETE', '/api/v1/namespaces/default?force=1');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { code: 3, message: 'namespace "default" is protected', details: [] });
    // a namespace that does not exist: nothing to do, as Flipt answers
    assert.equal((await call(srv.url, 'DELETE', '/api/v1/namespaces/nope?force=true')).status, 200);
  } finally {
    await srv.stop();
  }
});

test('PUT /auth/v1/self/expire expires the calling token (now, or at expiresAt)', async () => {
  const srv = await startServer(['--auth-token', BOOT]);
  try {
    const mk = async (name) => (await call(srv.url, 'POST', '/auth/v1/method/token', { name }, as(BOOT))).json;
    const a = await mk('a');
    assert.equal((await call(srv.url, 'GET', '/auth/v1/self', undefined, as(a.clientToken))).json.id, a.authentication.id);
    let r = await call(srv.url, 'PUT', '/auth/v1/self/expire', {}, as(a.clientToken));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {});
    r = await call(srv.url, 'GET', '/auth/v1/self', undefined, as(a.clientToken));
    assert.equal(r.status, 401);
    const listed = (await call(srv.url, 'GET', `/auth/v1/tokens/${a.authentication.id}`, undefined, as(BOOT))).json;
    assert.ok(Date.parse(listed.expiresAt) <= Date.now(), `expired at ${listed.expiresAt}`);
    // a later expiry keeps the token working until then
    const b = await mk('b');
    const later = new Date(Date.now() + 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
    assert.equal((await call(srv.url, 'PUT', '/auth/v1/self/expire', { expiresAt: later }, as(b.clientToken))).status, 200);
    r = await call(srv.url, 'GET', '/auth/v1/self', undefined, as(b.clientToken));
    assert.equal(r.status, 200);
    assert.equal(r.json.expiresAt, later);
    r = await call(srv.url, 'PUT', '/auth/v1/self/expire', { expiresAt: 'soon' }, as(b.clientToken));
    assert.equal(r.status, 400);
    // an offset is applied (regression: strptime + timegm ignored "+02:00")
    const c = await mk('c');
    const utc = new Date(Math.floor(Date.now() / 1000) * 1000 + 7200e3);
    const local = new Date(utc.getTime() + 2 * 3600e3).toISOString().replace(/\.\d+Z$/, '+02:00');
    assert.equal((await call(srv.url, 'PUT', '/auth/v1/self/expire', { expiresAt: local }, as(c.clientToken))).status, 200);
    r = await call(srv.url, 'GET', '/auth/v1/self', undefined, as(c.clientToken));
    assert.equal(Date.parse(r.json.expiresAt), utc.getTime(), `${local} -> ${r.json.expiresAt}`);
    // without a token: Flipt's Unauthenticated; the configured bootstrap token has no row to expire
    r = await call(srv.url, 'PUT', '/auth/v1/self/expire', {});
    assert.equal(r.status, 401);
    r = await call(srv.url, 'PUT', '/auth/v1/self/expire', {}, as(BOOT));
    assert.equal(r.status, 400);
    assert.match(r.json.message, /bootstrap token/);
    assert.equal((await call(srv.url, 'GET', '/auth/v1/self', undefined, as(BOOT))).status, 200);
  } finally {
    await srv.stop();
  }
});

test('GET /meta/config and /meta/info answer what Flipt\'s UI reads, nothing secret', async () => {
  const srv = await startServer(['--auth-token', BOOT, '--db-token', 'db-secret-value']);
  try {
    let r = await call(srv.url, 'GET', '/meta/config');
    assert.equal(r.status, 401); // /meta is authenticated, as in Flipt
    r = await call(srv.url, 'GET', '/meta/config', undefined, as(BOOT));
    assert.equal(r.status, 200, r.text);
    const c = r.json;
    assert.equal(c.authentication.required, true);
    assert.equal(c.authentication.methods.token.enabled, true);
    assert.deepEqual(c.cors, { enabled: false, allowedOrigins: ['*'], allowedHeaders: ['Accept', 'Authorization', 'Content-Type', 'X-CSRF-Token', 'X-Fern-Language', 'X-Fern-SDK-Name', 'X-Fern-SDK-Version', 'X-Flipt-Namespace', 'X-Flipt-Accept-Server-Version'] });
    assert.equal(c.storage.type, 'database');
    assert.equal(c.server.protocol, 'http');
    assert.equal(c.log.level, 'INFO');
    assert.equal(c.ui.defaultTheme, 'system');
    for (const secret of [BOOT, 'db-secret-value', 'edgeflag.db']) assert.ok(!r.text.includes(secret), `/meta/config shows ${secret}`);
    r = await call(srv.url, 'GET', '/meta/info', undefined, as(BOOT));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.authentication, { required: true });
    assert.deepEqual(r.json.storage, { type: 'database' });
    assert.deepEqual(r.json.ui, { theme: 'system' });
    assert.deepEqual(r.json.analytics, {});
    assert.equal(r.json.os, 'linux');
    assert.ok(!['x86_64', 'aarch64'].includes(r.json.arch), `arch as Go names it, not ${r.json.arch}`);
  } finally {
    await srv.stop();
  }
});

test('gzip when the client accepts it, for large enough bodies; never for streams', async () => {
  const srv = await startServer([]);
  try {
    for (let i = 0; i < 40; i++)
      await call(srv.url, 'POST', '/api/v1/flags', { key: `flag-${i}`, name: `Flag ${i}`, type: 'BOOLEAN_FLAG_TYPE', description: 'a description long enough to matter' });
    const snap = '/internal/v1/evaluation/snapshot/namespace/default';
    const plain = await raw(srv.url, 'GET', snap);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.ok(all(plain, 'vary').includes('Accept-Encoding'));
    const gz = await raw(srv.url, 'GET', snap, { headers: { 'accept-encoding': 'br;q=1.0, gzip;q=0.8' } });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(all(gz, 'vary').includes('Accept-Encoding'));
    assert.equal(gz.headers.etag, plain.headers.etag);
    assert.ok(gz.body.length * 3 < plain.body.length, `${gz.body.length} of ${plain.body.length} bytes`);
    assert.equal(zlib.gunzipSync(gz.body).toString(), plain.body.toString());
    // compressed once per representation (path + ETag), and never stale: a write changes the ETag
    const again = await raw(srv.url, 'GET', snap, { headers: { 'accept-encoding': 'gzip' } });
    assert.deepEqual(again.body, gz.body);
    await call(srv.url, 'POST', '/api/v1/flags', { key: 'late', name: 'Late', type: 'BOOLEAN_FLAG_TYPE' });
    const after = await raw(srv.url, 'GET', snap, { headers: { 'accept-encoding': 'gzip' } });
    assert.notEqual(after.headers.etag, gz.headers.etag);
    const doc = JSON.parse(zlib.gunzipSync(after.body).toString());
    assert.equal(doc.flags.length, 41);
    assert.deepEqual(doc, JSON.parse((await raw(srv.url, 'GET', snap)).body.toString()));
    // refused encodings and small bodies are sent as they are
    for (const ae of ['gzip;q=0', 'identity', 'br', 'x-gzipped'])
      assert.equal((await raw(srv.url, 'GET', snap, { headers: { 'accept-encoding': ae } })).headers['content-encoding'], undefined, ae);
    assert.equal((await raw(srv.url, 'GET', snap, { headers: { 'accept-encoding': '*' } })).headers['content-encoding'], 'gzip');
    const small = await raw(srv.url, 'POST', '/evaluate/v1/boolean', { headers: { 'accept-encoding': 'gzip' }, body: { flagKey: 'flag-1', entityId: 'e' } });
    assert.equal(small.status, 200);
    assert.equal(small.headers['content-encoding'], undefined);
    // 304 carries no body to compress
    const nm = await raw(srv.url, 'GET', snap, { headers: { 'accept-encoding': 'gzip', 'if-none-match': after.headers.etag } });
    assert.equal(nm.status, 304);
    assert.equal(nm.headers['content-encoding'], undefined);
    // a stream is never compressed (each event must reach the client when it is written)
    const u = new URL(srv.url);
    const first = await new Promise((resolve, reject) => {
      const req = http.get({ host: u.hostname, port: u.port, path: '/edgeflag/v1/namespaces/default/stream', headers: { 'accept-encoding': 'gzip' } }, (res) => {
        res.once('data', (d) => {
          resolve({ headers: res.headers, data: d.toString() });
          req.destroy();
        });
      });
      req.on('error', reject);
    });
    assert.equal(first.headers['content-encoding'], undefined);
    assert.match(first.headers['content-type'], /text\/event-stream/);
    // the client library and fetch decompress transparently
    const viaFetch = await fetch(srv.url + snap, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal((await viaFetch.json()).flags.length, 41);
  } finally {
    await srv.stop();
  }
});

const FLIPT_HEADERS = 'Accept, Authorization, Content-Type, X-CSRF-Token, X-Fern-Language, X-Fern-SDK-Name, X-Fern-SDK-Version, X-Flipt-Namespace, X-Flipt-Accept-Server-Version';

test('CORS is off by default: no preflight answer, no CORS headers', async () => {
  const srv = await startServer(['--auth-token', BOOT]);
  try {
    const pre = await raw(srv.url, 'OPTIONS', '/evaluate/v1/boolean', { headers: { origin: 'http://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 405);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    const r = await raw(srv.url, 'POST', '/evaluate/v1/boolean', { headers: { origin: 'http://app.example', ...as(BOOT) }, body: { flagKey: 'x', entityId: 'e' } });
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.ok(!all(r, 'vary').includes('Origin'));
  } finally {
    await srv.stop();
  }
});

test('CORS as Flipt\'s cors.* settings: preflight before authentication, headers on every response', async () => {
  const srv = await startServer(['--auth-token', BOOT], { env: { FLIPT_CORS_ENABLED: 'true', FLIPT_CORS_ALLOWED_ORIGINS: 'http://app.example http://*.edge.example' } });
  try {
    const pre = (origin, method = 'POST', hdrs) =>
      raw(srv.url, 'OPTIONS', '/evaluate/v1/boolean', { headers: { origin, 'access-control-request-method': method, ...(hdrs ? { 'access-control-request-headers': hdrs } : {}) } });
    // allowed: no token needed for the preflight; the requested headers echoed in Go's spelling
    let r = await pre('http://app.example', 'post', 'content-type,authorization, x-flipt-namespace');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['access-control-allow-origin'], 'http://app.example');
    assert.equal(r.headers['access-control-allow-methods'], 'POST');
    assert.equal(r.headers['access-control-allow-headers'], 'Content-Type, Authorization, X-Flipt-Namespace');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['access-control-max-age'], '300');
    assert.deepEqual(all(r, 'vary'), ['Origin', 'Access-Control-Request-Method', 'Access-Control-Request-Headers']);
    // one wildcard per origin, as go-chi/cors matches it; case does not matter
    assert.equal((await pre('HTTP://Eu.Edge.Example')).headers['access-control-allow-origin'], 'HTTP://Eu.Edge.Example');
    // refused: 200 without the allow headers (the browser then refuses), whatever the path
    for (const [origin, method, hdrs] of [
      ['http://evil.example', 'POST'],
      ['http://edge.example', 'POST'],
      ['http://app.example', 'PATCH'],
      ['http://app.example', 'POST', 'x-unknown'],
    ]) {
      r = await pre(origin, method, hdrs);
      assert.equal(r.status, 200, `${origin} ${method} ${hdrs}`);
      assert.equal(r.headers['access-control-allow-origin'], undefined, `${origin} ${method} ${hdrs}`);
    }
    r = await raw(srv.url, 'OPTIONS', '/no/such/route', { headers: { origin: 'http://app.example', 'access-control-request-method': 'GET' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'http://app.example');
    // actual responses, 2xx and 4xx alike
    for (const headers of [{ ...as(BOOT) }, {}]) {
      r = await raw(srv.url, 'GET', '/api/v1/namespaces', { headers: { origin: 'http://app.example', ...headers } });
      assert.equal(r.headers['access-control-allow-origin'], 'http://app.example', `status ${r.status}`);
      assert.equal(r.headers['access-control-expose-headers'], 'Link');
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.ok(all(r, 'vary').includes('Origin'));
    }
    r = await raw(srv.url, 'GET', '/api/v1/namespaces', { headers: { origin: 'http://evil.example', ...as(BOOT) } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.ok(all(r, 'vary').includes('Origin'));
    // /meta/config reports it
    const c = (await call(srv.url, 'GET', '/meta/config', undefined, as(BOOT))).json.cors;
    assert.deepEqual(c, { enabled: true, allowedOrigins: ['http://app.example', 'http://*.edge.example'], allowedHeaders: FLIPT_HEADERS.split(', ') });
  } finally {
    await srv.stop();
  }
  // every origin (Flipt's default): "*"
  const any = await startServer([], { env: { FLIPT_CORS_ENABLED: 'true' } });
  try {
    const r = await raw(any.url, 'OPTIONS', '/internal/v1/evaluation/snapshot/namespace/default', { headers: { origin: 'http://x.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-flipt-accept-server-version' } });
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.equal(r.headers['access-control-allow-headers'], 'X-Flipt-Accept-Server-Version');
  } finally {
    await any.stop();
  }
});

test('Flipt\'s metric names next to edgeflag\'s, fed by the same evaluations, accepted by promtool', async () => {
  const srv = await startServer([]);
  try {
    await call(srv.url, 'POST', '/api/v1/flags', { key: 'b', name: 'B', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
    await call(srv.url, 'POST', '/api/v1/flags', { key: 'v', name: 'V', type: 'VARIANT_FLAG_TYPE', enabled: true });
    const on = (await call(srv.url, 'POST', '/api/v1/flags/v/variants', { key: 'on' })).json;
    await call(srv.url, 'POST', '/api/v1/segments', { key: 'all', name: 'All', matchType: 'ALL_MATCH_TYPE' });
    const rule = (await call(srv.url, 'POST', '/api/v1/flags/v/rules', { segmentKey: 'all', rank: 1 })).json;
    await call(srv.url, 'POST', `/api/v1/flags/v/rules/${rule.id}/distributions`, { variantId: on.id, rollout: 100 });
    for (let i = 0; i < 5; i++) await call(srv.url, 'POST', '/evaluate/v1/boolean', { flagKey: 'b', entityId: `e${i}` });
    for (let i = 0; i < 3; i++) await call(srv.url, 'POST', '/evaluate/v1/variant', { flagKey: 'v', entityId: `e${i}` });
    await call(srv.url, 'POST', '/evaluate/v1/boolean', { flagKey: 'missing', entityId: 'e' });
    const text = await (await fetch(srv.url + '/metrics')).text();
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    // promtool's one remark is about Flipt's own name (kept as Flipt exports it, for dashboards)
    const remarks = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.trim() && !l.startsWith('flipt_evaluations_latency_milliseconds use base unit'));
    assert.ok(lint.status === 0 || (lint.status === 3 && remarks.length === 0), `promtool (${lint.status}): ${lint.stdout}${lint.stderr}`);
    const value = (re) => Number((text.match(re) ?? [])[1]);
    assert.match(text, /^# TYPE flipt_evaluations_requests_total counter$/m);
    assert.match(text, /^# TYPE flipt_evaluations_latency_milliseconds histogram$/m);
    assert.equal(value(/^flipt_evaluations_requests_total\{namespace="default",flag="b"\} (\d+)$/m), 5);
    assert.equal(value(/^flipt_evaluations_requests_total\{namespace="default",flag="v"\} (\d+)$/m), 3);
    assert.equal(value(/^flipt_evaluations_requests_total\{namespace="default",flag="missing"\} (\d+)$/m), 1);
    assert.equal(value(/^flipt_evaluations_errors_total\{namespace="default",flag="missing"\} (\d+)$/m), 1);
    assert.equal(value(/^flipt_evaluations_results_total\{namespace="default",flag="b",type="boolean",reason="DEFAULT_EVALUATION_REASON",value="true",match="",segment=""\} (\d+)$/m), 5);
    assert.equal(value(/^flipt_evaluations_results_total\{namespace="default",flag="v",type="variant",reason="MATCH_EVALUATION_REASON",value="on",match="true",segment="all"\} (\d+)$/m), 3);
    assert.equal(value(/^flipt_evaluations_latency_milliseconds_count\{namespace="default",flag="b"\} (\d+)$/m), 5);
    assert.equal(value(/^flipt_evaluations_latency_milliseconds_bucket\{namespace="default",flag="b",le="\+Inf"\} (\d+)$/m), 5);
    assert.ok(value(/^flipt_server_errors_total (\d+)$/m) >= 1);
    // the same evaluations in edgeflag's own series
    assert.equal(value(/^edgeflag_evaluations_total\{namespace="default",flag="b",reason="DEFAULT_EVALUATION_REASON",result="true"\} (\d+)$/m), 5);
  } finally {
    await srv.stop();
  }
});
