// A replica following a hostile or broken upstream (issue 19, item 7). The upstream here is a fake
// node (a node:http server) that speaks the replication feed's wire format and then misbehaves:
//   - an endless data line in a txn event, an endless event of short data lines:
//     the replica drops the stream at its bound, its memory stays bounded, and it backs off;
//   - a change-log entry (and a dump) that cannot be applied: the replica does not reconnect every
//     100 ms but backs off exponentially, and /ready and the metrics say why it is stuck.
// Reconnects are counted on the fake's side over a few seconds: the old behaviour (50-100 ms
// between attempts, forever) made ~40 in 4 s; exponential backoff from 100 ms makes at most ~8.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import { node, stopAll, sleep, waitFor, call, waitForLog } from './cluster.mjs';

const nodes = [];
const servers = [];
after(async () => {
  await stopAll(nodes);
  for (const s of servers) s.close();
});

const heartbeat = (head) => `event: heartbeat\ndata: {"seq":0,"head":${head},"time":${Date.now()}000000,"lagSeconds":0}\n\n`;

// The fake upstream: `behave(res, since)` writes the stream; every connection is recorded.
async function fakeUpstream(behave) {
  const conns = [];
  const srv = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname !== '/edgeflag/v1/replication/stream') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"code":5,"message":"not found","details":[]}');
      return;
    }
    const c = { at: Date.now(), since: Number(u.searchParams.get('since')), history: u.searchParams.get('history'), sent: 0, closed: false };
    conns.push(c);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const timer = setInterval(() => {
      if (!c.closed) res.write(': keep\n');
    }, 500);
    res.on('close', () => {
      c.closed = true;
      clearInterval(timer);
    });
    behave(res, c);
  });
  servers.push(srv);
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${srv.address().port}`, conns };
}

// Writes `chunk` forever (respecting backpressure) until the client goes away.
function pour(res, c, chunk) {
  const more = () => {
    while (!c.closed) {
      c.sent += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', more);
        return;
      }
    }
  };
  more();
}

function rssKiB(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : 0;
}

async function metric(n, name) {
  const r = await call(n.url, 'GET', '/metrics');
  const m = r.text.match(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm'));
  assert.ok(m, `metric ${name} missing`);
  return Number(m[1]);
}

// Watches the replica for `ms`: the peak RSS, and the connections the fake saw.
async function watch(n, up, ms) {
  let peak = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    peak = Math.max(peak, rssKiB(n.child.pid));
    await sleep(50);
  }
  return { peak, conns: up.conns.length };
}

function checkBackoff(conns, label) {
  const gaps = [];
  for (let i = 1; i < conns.length; i++) gaps.push(conns[i].at - conns[i - 1].at);
  // 100 ms doubling with jitter in [d/2, d]: the 4th gap is at least 400 ms, 4x the first's most
  assert.ok(conns.length >= 3, `${label}: the replica retried (${conns.length} connections)`);
  assert.ok(conns.length <= 9, `${label}: ${conns.length} connections in the window, gaps ${gaps.join(',')} ms: no backoff`);
  if (gaps.length >= 4) assert.ok(gaps[3] >= 2 * gaps[0], `${label}: gaps do not grow: ${gaps.join(',')}`);
}

// Stops a replica and checks it neither crashed nor (in a sanitizer build) reported anything.
async function stopClean(n) {
  await n.stop();
  const { code, signal } = await n.exited;
  assert.ok(!/Sanitizer|runtime error/.test(n.stderr), `${n.name}: ${n.stderr.slice(-2000)}`);
  assert.ok(code === 0 || signal === 'SIGTERM', `${n.name} exited with ${code} ${signal}`);
}

async function readyReason(n) {
  const r = await call(n.url, 'GET', '/ready');
  return { status: r.status, reason: r.json && r.json.reason };
}

test('an endless data line in a txn event: the replica drops it at --sync-max-event, stays small, backs off', async () => {
  const up = await fakeUpstream((res, c) => {
    res.write(heartbeat(1));
    res.write('id: 1\nevent: txn\ndata: {"seq":1,"changes":"');
    pour(res, c, 'x'.repeat(64 << 10));
  });
  const r = node('endless-line', { upstream: up.url, args: ['--sync-max-event', String(1 << 20)] });
  nodes.push(r);
  await r.start();
  const base = rssKiB(r.child.pid);
  const w = await watch(r, up, 4000);
  const sent = up.conns.reduce((a, c) => a + c.sent, 0);
  console.log(`# endless line: ${w.conns} connections in 4 s, ${(sent / 1048576).toFixed(1)} MiB sent, RSS ${base} -> peak ${w.peak} KiB`);
  checkBackoff(up.conns, 'endless line');
  assert.ok(w.peak - base < 48 * 1024, `RSS grew by ${w.peak - base} KiB`);
  const rd = await readyReason(r);
  assert.equal(rd.status, 503);
  assert.match(rd.reason, /protocol error from upstream: the data of a txn event longer than 1048576 bytes/);
  assert.ok((await metric(r, 'edgeflag_replication_protocol_errors_total')) >= 2);
  assert.ok((await metric(r, 'edgeflag_replication_apply_backoff_seconds')) > 0);
  await waitForLog(r, /cannot use what the upstream sent/);
  await stopClean(r);
});

test('an endless event of short data lines (a heartbeat): bounded by the small-event limit', async () => {
  const up = await fakeUpstream((res, c) => {
    res.write(heartbeat(0));
    res.write('event: heartbeat\n');
    pour(res, c, 'data: 0123456789abcdef\n'.repeat(4096));
  });
  const r = node('endless-event', { upstream: up.url });
  nodes.push(r);
  await r.start();
  const base = rssKiB(r.child.pid);
  const w = await watch(r, up, 4000);
  console.log(`# endless event: ${w.conns} connections in 4 s, RSS ${base} -> peak ${w.peak} KiB`);
  checkBackoff(up.conns, 'endless event');
  assert.ok(w.peak - base < 48 * 1024, `RSS grew by ${w.peak - base} KiB`);
  const rd = await readyReason(r);
  assert.equal(rd.status, 503);
  assert.match(rd.reason, /heartbeat event longer than 65536 bytes/);
  await stopClean(r);
});

test('an endless comment line: bounded too', async () => {
  const up = await fakeUpstream((res, c) => {
    res.write(heartbeat(0));
    res.write(':');
    pour(res, c, 'y'.repeat(16 << 10));
  });
  const r = node('endless-comment', { upstream: up.url });
  nodes.push(r);
  await r.start();
  await waitFor('the protocol error', async () => (await readyReason(r)).reason?.includes('a line longer than 4096 bytes'), 5000, 50);
  await stopClean(r);
});

for (const kind of ['txn', 'reset']) {
  test(`a ${kind} that cannot be applied: exponential backoff, /ready says why, metrics count it`, async () => {
    const up = await fakeUpstream((res) => {
      res.write(heartbeat(1));
      res.write(`event: ${kind}\ndata: {"seq":1,"this":"is not a change-log ${kind === 'txn' ? 'entry' : 'dump'}"}\n\n`);
    });
    const r = node(`bad-${kind}`, { upstream: up.url });
    nodes.push(r);
    await r.start();
    await sleep(4000);
    console.log(`# bad ${kind}: ${up.conns.length} connections in 4 s`);
    checkBackoff(up.conns, `bad ${kind}`);
    assert.ok(up.conns.every((c) => c.since === 0), 'the position never moved');
    const rd = await readyReason(r);
    assert.equal(rd.status, 503);
    assert.match(rd.reason, /replication is stuck: cannot use what the upstream sent at seq 1 \(\d+ failed attempts, next in \d+ ms\)/);
    assert.match(rd.reason, kind === 'txn' ? /apply failed/ : /loading the upstream's dump failed/);
    const failures = await metric(r, 'edgeflag_replication_apply_failures_total');
    assert.ok(failures >= 3, `apply failures ${failures}`);
    assert.ok((await metric(r, 'edgeflag_replication_apply_backoff_seconds')) >= 0.2);
    await stopClean(r);
  });
}

test('the stuck state ends when the upstream shows the replica in sync', async () => {
  // a bad entry on the first two connections, then an upstream whose head is 0: the replica is in
  // sync with it, so it is ready again and the backoff gauge is back to 0
  const up = await fakeUpstream((res) => {
    if (up.conns.length <= 2) {
      res.write(heartbeat(1));
      res.write('event: txn\ndata: {"seq":1,"nonsense":true}\n\n');
    } else {
      res.write(heartbeat(0));
    }
  });
  const r = node('recovers', { upstream: up.url });
  nodes.push(r);
  await r.start();
  await waitFor('stuck', async () => (await readyReason(r)).reason?.includes('replication is stuck'), 5000, 20);
  await waitFor('ready again', async () => (await readyReason(r)).status === 200, 5000, 50);
  assert.equal(await metric(r, 'edgeflag_replication_apply_backoff_seconds'), 0);
  assert.equal(await metric(r, 'edgeflag_replication_apply_failures_total'), 2);
  await stopClean(r);
});

// Review of the sync code, bug 2: heartbeats from a lying upstream. A head of 1e30 was cast from a
// double to 0 and the replica said it was in sync (ready, hasState), -1 wrapped, and a heartbeat
// that was not JSON counted as one in sync. Now each is a protocol error: refused, counted, and
// retried with the backoff; /ready says so. A lag below 0 or past EF_SYNC_LAG_MAX_S (1e9 s) is
// brought into range (it was shown as -5, and as 300 digits for 1e308).
test('heartbeats with a head that is not an exact position, or that are not JSON, are protocol errors', async () => {
  const bad = { 'head-1e30': '{"seq":0,"head":1e30,"lagSeconds":0}', 'head-minus-1': '{"seq":0,"head":-1,"lagSeconds":0}',
    'head-2p64': '{"seq":0,"head":18446744073709551616,"lagSeconds":0}', 'head-fraction': '{"seq":0,"head":0.5}',
    'not-json': '{"seq":0,"head":' };
  for (const [label, data] of Object.entries(bad)) {
    const up = await fakeUpstream((res) => res.write(`event: heartbeat\ndata: ${data}\n\n`));
    const r = node(`hb-${label}`, { upstream: up.url });
    nodes.push(r);
    await r.start();
    await waitFor(`${label}: refused`, async () => (await readyReason(r)).reason?.includes('protocol error from upstream: a heartbeat'), 5000, 20);
    const rd = await call(r.url, 'GET', '/ready');
    assert.equal(rd.status, 503, `${label}: ${rd.text}`);
    assert.equal(rd.json.hasState, false, `${label}: a refused heartbeat does not make the replica in sync`);
    assert.ok((await metric(r, 'edgeflag_replication_protocol_errors_total')) >= 1, label);
    await stopClean(r);
  }
});

test('the lag an upstream claims is clamped to [0, 1e9] s', async () => {
  for (const [claimed, shown] of [[-5, 0], ['1e308', 1e9]]) {
    const up = await fakeUpstream((res) => {
      const beat = () => res.write(`event: heartbeat\ndata: {"seq":0,"head":0,"lagSeconds":${claimed}}\n\n`);
      beat();
      const t = setInterval(beat, 300);
      res.on('close', () => clearInterval(t));
    });
    const r = node(`hb-lag${shown}`, { upstream: up.url });
    nodes.push(r);
    await r.start();
    await waitFor('in sync', async () => (await call(r.url, 'GET', '/ready')).json?.hasState === true, 5000, 20);
    const rd = await call(r.url, 'GET', '/ready');
    assert.equal(rd.json.lagSeconds, shown, rd.text);
    const m = (await call(r.url, 'GET', '/metrics')).text.match(/^edgeflag_replication_lag_seconds (\S+)$/m);
    assert.ok(m && m[1].length < 20 && Number(m[1]) === shown, `metric: ${m && m[1]}`);
    await stopClean(r);
  }
});

// A dump and a change-log entry in the wire format (docs/storage.md), for the fake upstream below.
function fakeDump(seq, history, flags) {
  const now = Date.now() * 1e6;
  return JSON.stringify({ seq, history, versions: { default: seq }, tables: {
    namespaces: [{ key: 'default', name: 'Default', description: 'Default namespace', protected: 1, created_at: now, updated_at: now }],
    flags: flags.map((k) => ({ namespace_key: 'default', key: k, name: k, description: '', enabled: 1, type: 1, default_variant_id: null, metadata: null, created_at: now, updated_at: now })),
    variants: [], segments: [], constraints: [], rules: [], rule_segments: [], distributions: [], rollouts: [], rollout_segments: [], tokens: [] } });
}
function fakeEntry(seq, key) {
  const now = Date.now() * 1e6;
  return JSON.stringify({ seq, time: now, namespaces: [{ key: 'default', version: seq }], changes: [{ table: 'flags', op: 'upsert',
    pk: { namespace_key: 'default', key }, row: { namespace_key: 'default', key, name: key, description: '', enabled: 1, type: 1, default_variant_id: null, metadata: null, created_at: now, updated_at: now } }] });
}

// Review of the sync code, bug 1 (the follower's half): an upstream whose history changes under
// an open stream (one that does not end its streams when it loads a dump, as an older edgeflag)
// went on sending the new history's entries, and the follower, which ignored the history in every
// heartbeat, applied them on top of its state. Now a heartbeat on another history, after one on
// the replica's own, drops the connection; the replica reconnects with its history and position
// and the handshake gives it the new history's dump.
test('a heartbeat on another history under an open stream: the replica reconnects and reloads', async () => {
  const H1 = 'a'.repeat(32), H2 = 'b'.repeat(32);
  const up = await fakeUpstream(async (res, c) => {
    const hb = (head, h) => res.write(`event: heartbeat\ndata: {"seq":${head},"head":${head},"lagSeconds":0,"history":"${h}"}\n\n`);
    if (c.since === 0) {
      res.write(`event: reset\ndata: ${fakeDump(3, H1, ['f1'])}\n\n`);
      hb(3, H1);
      await sleep(400);
      hb(4, H2); // the upstream moved to H2 (it loaded a dump) and keeps the stream open
      await sleep(300);
      if (!c.closed) res.write(`id: 4\nevent: txn\ndata: ${fakeEntry(4, 'stale')}\n\n`);
    } else {
      res.write(`event: reset\ndata: ${fakeDump(5, H2, ['g1', 'g2'])}\n\n`);
      hb(5, H2);
    }
  });
  const r = node('hb-history', { upstream: up.url });
  nodes.push(r);
  await r.start();
  const keys = async () => ((await call(r.url, 'GET', '/api/v1/namespaces/default/flags')).json?.flags ?? []).map((f) => f.key).sort().join(',');
  await waitFor('the replica to take the new history\'s dump', async () => (await keys()) === 'g1,g2', 5000, 20)
    .catch(async (e) => {
      e.message += `\nreplica has ${await keys()}; connections ${JSON.stringify(up.conns.map((c) => [c.since, c.history]))}`;
      throw e;
    });
  assert.deepEqual([up.conns[1].since, up.conns[1].history], [3, H1], 'it reconnected with its own position and history');
  await waitForLog(r, /upstream moved to another history under the stream/);
  await stopClean(r);
});

// Review of the sync code (a near-dead link): an upstream link that trickles an entry a few bytes
// a second (with its heartbeats queued behind the entry) kept the replica "connected, lag 0,
// ready" for as long as the entry took, because any byte counted as life and the lag stayed that
// of the last heartbeat. Now the lag counts from the last heartbeat that showed the replica in
// sync, so /ready turns 503 past --max-staleness, and a link that completes no event at
// EF_SYNC_EVENT_MIN_RATE is dropped as dead and reconnected (docs/replication.md).
test('a link trickling an entry: the replica becomes stale and drops the link as dead', { timeout: 30000 }, async () => {
  const H = 'c'.repeat(32);
  let healed = false;
  const up = await fakeUpstream(async (res, c) => {
    const hb = (head) => res.write(`event: heartbeat\ndata: {"seq":${c.since},"head":${head},"lagSeconds":0,"history":"${H}"}\n\n`);
    const entry = `id: 2\nevent: txn\ndata: ${fakeEntry(2, 'late')}\n\n`;
    if (c.since === 0) {
      res.write(`event: reset\ndata: ${fakeDump(1, H, ['f1'])}\n\n`);
      for (let i = 0; i < 4 && !c.closed; i++) {
        hb(1);
        await sleep(300);
      }
    } else {
      hb(2);
    }
    if (healed) {
      res.write(entry);
      const t = setInterval(() => hb(2), 300);
      res.on('close', () => clearInterval(t));
      return;
    }
    // 30 bytes a second (the fake's own ": keep" comments every 500 ms come on top)
    for (let i = 0; i < entry.length && !c.closed; i += 3) {
      res.write(entry.slice(i, i + 3));
      await sleep(100);
    }
  });
  const r = node('trickle', { upstream: up.url, args: ['--max-staleness', '2'] });
  nodes.push(r);
  await r.start();
  await waitFor('ready on the dump', async () => (await readyReason(r)).status === 200, 5000, 20);
  await waitFor('not ready: its state is older than --max-staleness', async () => {
    const rd = await call(r.url, 'GET', '/ready');
    return rd.status === 503 && rd.json.lagSeconds > 2 && /old, more than the allowed/.test(rd.json.reason) && rd;
  }, 12000, 50);
  await waitForLog(r, /no complete event from upstream/, 12000);
  await waitFor('the replica to reconnect', () => up.conns.length >= 2, 5000, 20);
  const lost = up.conns.length;
  healed = true;
  await waitFor('the entry over a healthy link', async () => (await call(r.url, 'GET', '/api/v1/namespaces/default/flags/late')).status === 200, 8000, 50);
  await waitFor('ready again', async () => (await readyReason(r)).status === 200, 5000, 50);
  assert.ok(up.conns.length > lost);
  await stopClean(r);
});
