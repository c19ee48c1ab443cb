// What a client can make a node hold: a request with a body is authenticated from its headers
// before any of the body is read; the bodies held at once are bounded (--max-body-total) beyond
// a small allowance per request, so stalled uploads cannot take the node's memory; and a stream
// lasts only as long as the credential it was opened with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, call } from './server.mjs';

const BOOT = 'admission-boot';
const as = (t) => ({ authorization: `Bearer ${t}` });

// A raw connection that sends a request's head (and optionally part of its body), and resolves
// with what the server answered before `ms` passed ('' when it said nothing).
function rawHead(url, head, { body = '', ms = 1500 } = {}) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    let got = '';
    s.on('error', () => {});
    s.on('data', (d) => (got += d));
    s.write(head + body);
    setTimeout(() => resolve({ text: got, socket: s }), ms);
  });
}
const statusOf = (text) => Number((text.match(/^HTTP\/1\.1 (\d{3})/) ?? [])[1] ?? 0);

test('a body without a valid credential is refused from its headers, before any of it is read', async () => {
  const srv = await startServer(['--auth-token', BOOT]);
  try {
    const head = (auth) =>
      `POST /evaluate/v1/boolean HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${auth}Content-Length: 1000000\r\n\r\n`;
    for (const auth of ['', 'Authorization: Bearer wrong\r\n']) {
      const r = await rawHead(srv.url, head(auth));
      assert.equal(statusOf(r.text), 401, r.text || 'no answer before the body');
      assert.match(r.text, /"code":16/);
      r.socket.destroy();
    }
    // with a credential the server waits for the body as usual
    const ok = await rawHead(srv.url, head(`Authorization: Bearer ${BOOT}\r\n`), { ms: 700 });
    assert.equal(ok.text, '', 'nothing is answered before the body arrives');
    ok.socket.destroy();
    // a chunked body is refused as early
    const chunked = await rawHead(srv.url, 'POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', { body: '5\r\n{"ke\r\n' });
    assert.equal(statusOf(chunked.text), 401, chunked.text);
    chunked.socket.destroy();
    // a request without a body is answered as before, on a connection kept alive
    const r1 = await fetch(srv.url + '/api/v1/namespaces');
    assert.equal(r1.status, 401);
    assert.equal((await r1.json()).code, 16);
    assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces', undefined, as(BOOT))).status, 200);
  } finally {
    await srv.stop();
  }
});

test('bodies held at once are bounded by --max-body-total; small ones are always served', async () => {
  const MIB = 1 << 20;
  const srv = await startServer(['--max-body', String(MIB), '--max-body-total', String(2 * MIB)]);
  try {
    const big = `POST /evaluate/v1/boolean HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${MIB}\r\n\r\n`;
    // two uploads that stall half way hold most of the 2 MiB
    const stalled = [];
    for (let i = 0; i < 2; i++) {
      const r = await rawHead(srv.url, big, { body: '{"flagKey":"' + 'x'.repeat(MIB / 2), ms: 300 });
      assert.equal(r.text, '', 'an upload within the budget is taken');
      stalled.push(r.socket);
    }
    // a third large one is refused at once, before it sends its body
    const third = await rawHead(srv.url, big, { ms: 800 });
    assert.equal(statusOf(third.text), 503, third.text || 'no answer');
    assert.match(third.text, /Retry-After: 1/i);
    assert.match(third.text, /"code":14/);
    assert.match(third.text, /max-body-total/);
    third.socket.destroy();
    // so is a chunked one once its body grows past what is left
    const chunk = 'x'.repeat(64 * 1024);
    const ch = await rawHead(srv.url, 'POST /evaluate/v1/boolean HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      { body: `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(4) + '0\r\n\r\n', ms: 800 });
    assert.equal(statusOf(ch.text), 503, ch.text || 'no answer');
    ch.socket.destroy();
    // evaluations, a few hundred bytes each, go on
    const small = await call(srv.url, 'POST', '/evaluate/v1/boolean', { flagKey: 'nope', entityId: 'e', context: { a: 'b' } });
    assert.equal(small.status, 404, small.text);
    // the stalled ones leave: their share comes back
    stalled.forEach((s) => s.destroy());
    await new Promise((r) => setTimeout(r, 300));
    const body = JSON.stringify({ flagKey: 'nope', entityId: 'e', context: { pad: 'y'.repeat(MIB - 200) } });
    const after = await call(srv.url, 'POST', '/evaluate/v1/boolean', body);
    assert.equal(after.status, 404, after.text.slice(0, 200));
  } finally {
    await srv.stop();
  }
});

test('--max-body-total below --max-body is refused at start', async () => {
  await assert.rejects(startServer(['--max-body', '2000000', '--max-body-total', '1000000']), /max-body-total must be at least --max-body/);
});

// Reads a text/event-stream until it ends; resolves with whether it ended within ms.
async function streamEnds(res, ms) {
  const reader = res.body.getReader();
  const timer = new Promise((r) => setTimeout(() => r(false), ms));
  const end = (async () => {
    for (;;) {
      try {
        const { done } = await reader.read();
        if (done) return true;
      } catch {
        return true;
      }
    }
  })();
  const ended = await Promise.race([end, timer]);
  if (!ended) reader.cancel().catch(() => {});
  return ended;
}

test('a stream ends when the token it was opened with is revoked or expires', async () => {
  const srv = await startServer(['--auth-token', BOOT]);
  try {
    const make = async (extra = {}) => {
      const r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 't', description: 'd', ...extra }, as(BOOT));
      assert.equal(r.status, 200, r.text);
      return { token: r.json.clientToken, id: r.json.authentication.id };
    };
    const open = async (p, token) => {
      const res = await fetch(srv.url + p, { headers: as(token) });
      assert.equal(res.status, 200, p);
      return res;
    };
    // revoked: the namespace stream and the replication feed both end
    const t = await make();
    const ns = await open('/edgeflag/v1/namespaces/default/stream', t.token);
    const feed = await open('/edgeflag/v1/replication/stream', t.token);
    const boot = await open('/edgeflag/v1/namespaces/default/stream', BOOT); // the bootstrap token's stays
    assert.equal((await call(srv.url, 'DELETE', `/auth/v1/tokens/${t.id}`, undefined, as(BOOT))).status, 200);
    const [nsEnded, feedEnded] = await Promise.all([streamEnds(ns, 5000), streamEnds(feed, 5000)]);
    assert.ok(nsEnded, 'the namespace stream went on after its token was revoked');
    assert.ok(feedEnded, 'the replication feed went on after its token was revoked');
    assert.equal(await streamEnds(boot, 1500), false, 'a stream whose token is still good goes on');
    // expired: the stream ends once the time has passed
    const soon = await make({ expiresAt: new Date(Date.now() + 2000).toISOString() });
    const s2 = await open('/edgeflag/v1/namespaces/default/stream', soon.token);
    const t0 = Date.now();
    assert.ok(await streamEnds(s2, 6000), 'the stream went on after its token expired');
    assert.ok(Date.now() - t0 >= 1000, 'it ended before the token expired');
    // and the same token is refused when it comes back
    assert.equal((await fetch(srv.url + '/edgeflag/v1/namespaces/default/stream', { headers: as(soon.token) })).status, 401);
  } finally {
    await srv.stop();
  }
});

// With authentication off (the default) a browser would otherwise carry a cross-site page's
// "simple" POST (text/plain, no preflight) to the node. Browsers say where a request comes from;
// SDKs, curl and requests with an Authorization header are not affected.
test('a write a browser sends for another site is refused; same-origin, tool and CORS-allowed writes pass', async () => {
  const srv = await startServer([]);
  const cors = await startServer([], { env: { FLIPT_CORS_ENABLED: 'true', FLIPT_CORS_ALLOWED_ORIGINS: 'http://ui.example' } });
  try {
    const host = new URL(srv.url).host;
    let n = 0;
    const write = (s, headers) =>
      call(s.url, 'POST', '/api/v1/namespaces/default/flags', JSON.stringify({ key: `f${n++}`, name: 'x' }), { 'content-type': 'text/plain', ...headers });
    const refused = [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: 'http://sub.example' },
      { origin: `http://${host}`, 'sec-fetch-site': 'cross-site' }, // the browser's word wins
    ];
    for (const h of refused) {
      const r = await write(srv, h);
      assert.equal(r.status, 403, JSON.stringify(h));
      assert.equal(r.json.code, 7);
      assert.match(r.json.message, /another site/);
    }
    const flags = (await call(srv.url, 'GET', '/api/v1/namespaces/default/flags')).json.flags;
    assert.deepEqual(flags, [], 'a refused write changed nothing');
    const allowed = [
      {}, // curl, an SDK
      { origin: `http://${host}` },
      { 'sec-fetch-site': 'same-origin', origin: `http://${host}` },
      { origin: 'https://flags.example', 'x-forwarded-host': 'flags.example' }, // behind a proxy that rewrites Host
      { origin: 'http://evil.example', authorization: 'Bearer anything' }, // the caller's own (authentication is off)
    ];
    for (const h of allowed) assert.equal((await write(srv, h)).status, 200, JSON.stringify(h));
    // reads and evaluations are not writes
    assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/default/flags', undefined, { origin: 'http://evil.example' })).status, 200);
    // an origin the CORS settings allow may write; another still may not
    assert.equal((await write(cors, { origin: 'http://ui.example', 'sec-fetch-site': 'cross-site' })).status, 200);
    assert.equal((await write(cors, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' })).status, 403);
  } finally {
    await srv.stop();
    await cors.stop();
  }
});
