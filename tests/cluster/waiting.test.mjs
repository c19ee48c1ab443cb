// Requests that wait, forwarded request targets, and slow clients (issue 19 items 1, 2, 12).
//
// - Waiting requests (X-Edgeflag-Min-Version, forwarded writes) are suspended: they hold no server
//   thread, so evaluation is answered while a thousand of them wait; past --max-waiting a clear
//   503 comes at once; the header means nothing (and is ignored) on routes that do not answer
//   from the node's state.
// - A replica forwards the exact request target it got: the upstream sees the same bytes.
// - Read-your-writes along a chain: a replica behind one whose write-wait ran out waits for the
//   write's own version (X-Edgeflag-Write-Version), not the middle replica's older state.
// - One client address cannot hold more than --max-conns-per-ip connections, and a request's
//   header must arrive within --request-timeout even when the client trickles bytes.
// Nothing here asserts a duration: every check is an order of events or an eventual state.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { node, stopAll, call, sleep, waitFor, version, tmpdir, waitingRequests } from './cluster.mjs';
import { startProxy, streamOnly } from './proxy.mjs';

const nodes = [];
const servers = [];
const track = (...ns) => (nodes.push(...ns), ns);
after(async () => {
  await stopAll(nodes);
  for (const s of servers) s.close();
});

// One request with a raw target (no URL normalisation), optionally from another loopback address.
function raw(url, method, target, { body, headers = {}, localAddress, agent = false } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method, path: target, headers: { 'content-type': 'application/json', ...headers }, localAddress, agent },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let json;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

async function createFlag(n, key, ns = 'default') {
  const r = await call(n.url, 'POST', `/api/v1/namespaces/${ns}/flags`, { key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  assert.equal(r.status, 200, r.text);
  return r;
}

// An upstream that records every request it gets and answers writes like a primary that applied
// nothing new (version 0), after `delayMs`.
async function captureUpstream({ delayMs = 0 } = {}) {
  const seen = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url.startsWith('/edgeflag/v1/cluster/report')) { // the replica's picture reports: not writes
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"code":5,"message":"test upstream","details":[]}');
        return;
      }
      if (req.url.startsWith('/edgeflag/v1/replication/stream')) {
        res.writeHead(503, { 'content-type': 'application/json' }); // no history to follow
        res.end('{"code":14,"message":"test upstream","details":[]}');
        return;
      }
      seen.push({ method: req.method, url: req.url, body, auth: req.headers.authorization });
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-edgeflag-version': '0' });
        res.end('{}');
      }, delayMs);
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  servers.push(srv);
  return { url: `http://127.0.0.1:${srv.address().port}`, seen };
}

test('min-version is ignored where it means nothing and capped where it waits', { timeout: 60000 }, async () => {
  const [p] = track(node('wait-p', { args: ['--min-version-wait', '20000', '--max-waiting', '40'] }));
  await p.start();
  await createFlag(p, 'f');
  const far = String((await version(p)) + 1000000);
  // /health, /metrics, /ready answer at once whatever the header says (the reproduced stall)
  for (const route of ['/health', '/metrics', '/ready', '/meta/info']) {
    const r = await raw(p.url, 'GET', route, { headers: { 'x-edgeflag-min-version': far } });
    assert.notEqual(r.status, 503, `${route}: ${r.text}`);
  }
  assert.equal((await raw(p.url, 'GET', '/health', { headers: { 'x-edgeflag-min-version': 'abc' } })).status, 200);
  assert.equal((await raw(p.url, 'GET', '/api/v1/namespaces/default/flags/f', { headers: { 'x-edgeflag-min-version': 'abc' } })).status, 400);

  // 40 evaluations wait (suspended) for a version that will not come within the test
  const events = [];
  const evalBody = { namespaceKey: 'default', flagKey: 'f', entityId: 'e', context: {} };
  const waiting = [];
  for (let i = 0; i < 40; i++)
    waiting.push(
      raw(p.url, 'POST', '/evaluate/v1/boolean', { body: evalBody, headers: { 'x-edgeflag-min-version': far } }).then((r) => {
        events.push('waiter');
        return r;
      }),
    );
  await waitFor('40 waiting requests', async () => {
    const m = await (await fetch(p.url + '/metrics')).text();
    return /edgeflag_waiting_requests\s+40\b/.test(m);
  }, 10000);
  // the 41st is refused at once, clearly
  const over = await raw(p.url, 'POST', '/evaluate/v1/boolean', { body: evalBody, headers: { 'x-edgeflag-min-version': far } });
  assert.equal(over.status, 503);
  assert.match(over.json.message, /cannot hold another request waiting for a version/);
  // ordinary evaluations (more than the server has threads) are served while the 40 wait
  for (let i = 0; i < 20; i++) {
    const r = await raw(p.url, 'POST', '/evaluate/v1/boolean', { body: evalBody });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.enabled, true);
  }
  events.push('served');
  assert.deepEqual(events, ['served'], 'no waiter finished before the ordinary requests were served');
  // a write releases them all, with the new state
  await createFlag(p, 'g');
  // (the version they want is far away: stop the node instead, which answers every waiter)
  await p.stop();
  const done = await Promise.all(waiting);
  for (const r of done) {
    assert.equal(r.status, 503);
    assert.match(r.json.message, /was not reached/);
  }
});

test('a version reached releases the waiting readers on a replica', { timeout: 30000 }, async () => {
  const [p] = track(node('wait-p2'));
  await p.start();
  const [r] = track(node('wait-r2', { upstream: p.url, args: ['--min-version-wait', '10000'] }));
  await r.start();
  await createFlag(p, 'a');
  await waitFor('replica caught up', async () => (await version(r)) >= (await version(p)));
  const next = String((await version(p)) + 1);
  const readers = [];
  for (let i = 0; i < 30; i++)
    readers.push(raw(r.url, 'GET', '/api/v1/namespaces/default/flags/b', { headers: { 'x-edgeflag-min-version': next } }));
  await sleep(100);
  await createFlag(p, 'b');
  for (const res of await Promise.all(readers)) {
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.key, 'b');
  }
});

// R2 -> R1 -> P, R1's stream from P held (its forwarded writes pass) and R1's write-wait short:
// R1 answers "not applied here" with its own older X-Edgeflag-Version and the write's version in
// X-Edgeflag-Write-Version. A replica behind it used to wait for R1's older version, i.e. not at
// all, and answered 200 with a version before the write and no Write-Applied: its caller then read
// 404 for the flag it had just created (attacker review, chained read-your-writes).
test('chained read-your-writes: a replica behind one whose write-wait ran out waits for the write itself', { timeout: 40000 }, async () => {
  const [p] = track(node('ryw-p'));
  await p.start();
  const proxy = await startProxy(p.port, { only: streamOnly });
  after(() => proxy.close());
  const [r1] = track(node('ryw-r1', { upstream: proxy.url, args: ['--write-wait', '300'] }));
  await r1.start();
  const [r2] = track(node('ryw-r2', { upstream: () => r1.url, args: ['--write-wait', '20000'] }));
  const [r3] = track(node('ryw-r3', { upstream: () => r1.url, args: ['--write-wait', '300', '--min-version-wait', '20000'] }));
  await r2.start();
  await r3.start();
  await createFlag(p, 'a');
  for (const n of [r1, r2, r3]) await waitFor(`${n.name} at version 1`, async () => (await version(n)) >= 1);
  proxy.blackhole(); // R1 hears nothing more from P; writes still reach P at once

  // R3's own wait runs out too: it passes on that the write is not applied here, and its version
  const w3 = await createFlag(r3, 'b');
  assert.equal(w3.headers.get('x-edgeflag-write-applied'), 'false');
  assert.equal(w3.headers.get('x-edgeflag-write-version'), '2');
  assert.equal(w3.headers.get('x-edgeflag-version'), '1', 'R3 says which state it serves');

  // R2 waits for the write (seq 3), which its upstream R1 has not applied either
  let answered = false;
  const pending = createFlag(r2, 'c').then((r) => ((answered = true), r));
  await waitFor('R2 to hold its answer until it has applied the write', async () => (await waitingRequests(r2)) === 1, 10000);
  assert.equal(answered, false);
  proxy.heal();
  const w2 = await pending;
  assert.equal(w2.headers.get('x-edgeflag-write-applied'), null, 'R2 applied the write before answering');
  assert.ok(Number(w2.headers.get('x-edgeflag-version')) >= 3, `version ${w2.headers.get('x-edgeflag-version')}`);
  const g2 = await call(r2.url, 'GET', '/api/v1/namespaces/default/flags/c');
  assert.equal(g2.status, 200, 'R2 serves the flag its caller just created');

  // R3's caller reads its write at the version R3 named
  const g3 = await call(r3.url, 'GET', '/api/v1/namespaces/default/flags/b', undefined, { 'X-Edgeflag-Min-Version': w3.headers.get('x-edgeflag-write-version') });
  assert.equal(g3.status, 200, g3.text);
});

// Every character that means something in a path segment or a query, raw and percent-encoded.
const specials = [':', '@', '!', '$', '&', "'", '(', ')', '*', '+', ',', ';', '=', '-', '.', '_', '~'];
const encoded = ['%3F', '%23', '%25', '%26', '%3D', '%2B', '%20', '%3B', '%2C', '%40', '%3A', '%24', '%21', '%27', '%28', '%29', '%2A', '%5B', '%5D', '%2e', '%7E', '%C3%A9', '%E2%82%AC', '%FF'];

test('a replica forwards the exact request target of every write route', { timeout: 60000 }, async () => {
  const up = await captureUpstream();
  const dir = tmpdir('ef-fwd-');
  const [r] = track(node('fwd-r', { upstream: up.url, dir }));
  await r.start();
  const writes = [
    ['POST', '/api/v1/namespaces/{ns}/flags'],
    ['PUT', '/api/v1/namespaces/{ns}/flags/{k}'],
    ['DELETE', '/api/v1/namespaces/{ns}/flags/{k}'],
    ['POST', '/api/v1/namespaces/{ns}/flags/{k}/variants'],
    ['PUT', '/api/v1/namespaces/{ns}/flags/{k}/variants/{k}'],
    ['DELETE', '/api/v1/namespaces/{ns}/flags/{k}/variants/{k}'],
    ['POST', '/api/v1/namespaces/{ns}/segments'],
    ['PUT', '/api/v1/namespaces/{ns}/segments/{k}'],
    ['DELETE', '/api/v1/namespaces/{ns}/segments/{k}'],
    ['POST', '/api/v1/namespaces/{ns}/segments/{k}/constraints'],
    ['PUT', '/api/v1/namespaces/{ns}/segments/{k}/constraints/{k}'],
    ['DELETE', '/api/v1/namespaces/{ns}/segments/{k}/constraints/{k}'],
    ['POST', '/api/v1/namespaces/{ns}/flags/{k}/rules'],
    ['PUT', '/api/v1/namespaces/{ns}/flags/{k}/rules/{k}'],
    ['DELETE', '/api/v1/namespaces/{ns}/flags/{k}/rules/{k}'],
    ['POST', '/api/v1/namespaces/{ns}/flags/{k}/rules/{k}/distributions'],
    ['POST', '/api/v1/namespaces/{ns}/flags/{k}/rollouts'],
    ['DELETE', '/api/v1/namespaces/{ns}/flags/{k}/rollouts/{k}'],
    ['PUT', '/api/v1/namespaces/{k}'],
    ['DELETE', '/api/v1/namespaces/{k}'],
    ['POST', '/api/v1/namespaces'],
    ['POST', '/auth/v1/method/token'],
    ['DELETE', '/auth/v1/tokens/{k}'],
  ];
  let sent = 0;
  for (const [method, pattern] of writes) {
    for (const c of [...specials, ...encoded]) {
      const seg = `a${c}b`;
      const q = `?force=true&note=x${c}y&${encodeURIComponent('k' + c)}=${c}`;
      const target = pattern.replaceAll('{ns}', seg).replaceAll('{k}', seg) + q;
      const before = up.seen.length;
      const res = await raw(r.url, method, target, { body: method === 'DELETE' ? undefined : { key: 'k', name: 'n' } });
      // whatever the byte, the upstream got exactly the target the replica got
      assert.equal(res.status, 200, `${method} ${target}: ${res.status} ${res.text}`);
      assert.equal(up.seen.length, before + 1, `${method} ${target} was forwarded once`);
      assert.equal(up.seen[before].url, target, `${method} ${target}`);
      assert.equal(up.seen[before].method, method);
      sent++;
    }
  }
  // an encoded slash changes the route, so the replica does not forward it as if it were a key
  const before = up.seen.length;
  const slash = await raw(r.url, 'DELETE', '/api/v1/namespaces/default/flags/a%2Fb/extra/x');
  assert.equal(up.seen.length, before);
  assert.ok(slash.status >= 400 && slash.status < 500);
  console.log(`# forwarded targets compared: ${sent}`);
});

test('DELETE of flag "x?y" through a replica deletes "x?y", not "x"', { timeout: 30000 }, async () => {
  const [p] = track(node('fwd-p'));
  await p.start();
  const [r] = track(node('fwd-r2', { upstream: p.url }));
  await r.start();
  await createFlag(p, 'x');
  const q = await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'x?y', name: 'q' });
  // Flipt's keys are [-_a-zA-Z0-9]: whichever way the primary answers, the replica must relay the
  // same request, and flag x must survive
  const del = await raw(r.url, 'DELETE', '/api/v1/namespaces/default/flags/x%3Fy');
  const direct = await raw(p.url, 'DELETE', '/api/v1/namespaces/default/flags/x%3Fy');
  assert.equal(del.status, q.status === 200 ? 200 : direct.status);
  assert.equal((await call(p.url, 'GET', '/api/v1/namespaces/default/flags/x')).status, 200, 'flag x still exists');
});

test('one address holds at most --max-conns-per-ip; a request header has a deadline', { timeout: 60000 }, async () => {
  const [p] = track(node('slow-p', { args: ['--max-conns-per-ip', '50', '--request-timeout', '2', '--idle-timeout', '60'] }));
  await p.start();
  await createFlag(p, 'f');
  const port = p.port;
  // 120 half request lines from 127.0.0.2
  const socks = [];
  let closed = 0;
  for (let i = 0; i < 120; i++) {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    s.on('error', () => {});
    s.on('close', () => closed++);
    s.on('connect', () => s.write('GET /health HTT'));
    socks.push(s);
  }
  // the ones past the limit are closed at once
  await waitFor('connections past the per-address limit closed', () => closed >= 70, 10000);
  assert.ok(closed <= 70 + 5, `at most the excess is closed early (closed ${closed})`);
  // a legitimate client on another address is served meanwhile
  const r = await raw(p.url, 'POST', '/evaluate/v1/boolean', { body: { namespaceKey: 'default', flagKey: 'f', entityId: 'e' } });
  assert.equal(r.status, 200);
  assert.equal(r.json.enabled, true);
  // a client trickling one byte at a time is cut at the deadline, not kept alive by activity
  const trickle = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' });
  let trickleClosed = false;
  trickle.on('error', () => {});
  trickle.on('close', () => (trickleClosed = true));
  const line = 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
  let i = 0;
  const timer = setInterval(() => {
    if (!trickleClosed && i < line.length) trickle.write(line[i++]);
  }, 100);
  // the 50 held connections end at the header deadline (not the 60 s idle timeout)
  await waitFor('held connections closed at the request deadline', () => closed === 120, 15000);
  await waitFor('trickling client closed at the request deadline', () => trickleClosed, 15000);
  clearInterval(timer);
  assert.ok(i < line.length, 'the trickling client was cut before it finished its header');
  for (const s of socks) s.destroy();
});

// A replica answers a forwarded write once it applied it; for tokens that answer must also mean
// the replica's own authentication knows: it polled its token table once a second, so a token
// revoked through it went on working there for up to a second (8 of 8 right after the DELETE).
test('a token created or revoked through a replica acts on that replica from its answer on', { timeout: 60000 }, async () => {
  const A = { authorization: 'Bearer boot' };
  const [p] = track(node('tok-p', { args: ['--auth-token', 'boot'] }));
  await p.start();
  const [r] = track(node('tok-r', { upstream: p.url, args: ['--auth-token', 'boot', '--upstream-token', 'boot'] }));
  await r.start();
  await waitFor('replica ready', async () => (await call(r.url, 'GET', '/ready')).status === 200);
  const read = (t) => call(r.url, 'GET', '/api/v1/namespaces/default/flags', undefined, { authorization: `Bearer ${t}` });
  for (let i = 0; i < 5; i++) {
    const c = await call(r.url, 'POST', '/auth/v1/method/token', { name: `t${i}`, description: 'd' }, A);
    assert.equal(c.status, 200, c.text);
    assert.equal((await read(c.json.clientToken)).status, 200, 'a token created through the replica works there at once');
    const d = await call(r.url, 'DELETE', `/auth/v1/tokens/${c.json.authentication.id}`, undefined, A);
    assert.equal(d.status, 200, d.text);
    assert.equal((await read(c.json.clientToken)).status, 401, 'a token revoked through the replica is refused there at once');
  }
});
