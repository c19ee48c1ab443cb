// What a primary holds for downstream streams that never read (src/sync/feed.c, "Memory"). An
// attacker review opened 100 raw connections to /edgeflag/v1/replication/stream?since=1 (no token
// needed without authentication) on a primary whose log held a 5.7 MB entry, and never read: each
// got its own copy of the entry, and the primary went from 26 to 660 MiB (1650 MiB at 250).
//   - a large entry is one shared block for every stream sending it: N streams that never read
//     cost the primary about one copy, not N (measured in its /proc/PID/status);
//   - the bytes queued for all streams together are bounded (--sync-feed-budget): past it the
//     stream holding the most is ended, and a healthy replica following meanwhile keeps streaming.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { node, stopAll, call, waitFor, version, statusMiB, tmpdir } from './cluster.mjs';
import { edgeflagBin } from '../compat/server.mjs';

const nodes = [];
const sockets = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await stopAll(nodes);
});

// Imports `flags` flags (keys `prefix`N) with descriptions of `size` bytes into the database of node n (not
// started yet): one change-log entry of about flags * size bytes.
function importInto(n, prefix, flags, size) {
  const file = path.join(tmpdir('ef-feedmem-'), 'big.yml');
  const d = 'd'.repeat(size);
  const lines = ['version: "1.2"', 'namespace: default', 'flags:'];
  for (let i = 0; i < flags; i++)
    lines.push(`  - key: ${prefix}${i}`, `    name: ${prefix} ${i}`, '    type: BOOLEAN_FLAG_TYPE', '    enabled: true', `    description: "${d}"`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const r = spawnSync(edgeflagBin, ['import', '--db', path.join(n.dir, 'edgeflag.db'), file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

// A downstream connection that asks for the stream and never reads a byte of it.
function deaf(n, since) {
  const s = net.connect(n.port, '127.0.0.1');
  s.on('error', () => {});
  s.write(`GET /edgeflag/v1/replication/stream?since=${since} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
  s.pause();
  sockets.push(s);
  return s;
}

// Stops the nodes and checks none crashed or (in a sanitizer build) reported anything.
async function stopClean(...ns) {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(ns.map((n) => n.stop()));
  for (const n of ns) {
    const { code, signal } = await n.exited;
    assert.ok(!/Sanitizer|runtime error/.test(n.stderr), `${n.name}: ${n.stderr.slice(-2000)}`);
    assert.ok(code === 0 || signal === 'SIGTERM', `${n.name} exited with ${code} ${signal}`);
  }
}

async function metric(n, name) {
  const r = await call(n.url, 'GET', '/metrics');
  const m = r.text.match(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

async function downstream(n) {
  return (await call(n.url, 'GET', '/edgeflag/v1/cluster')).json.downstream;
}

test('streams that never read: a large entry is held once, not once per stream', { timeout: 60000 }, async () => {
  const N = 50;
  const primary = node('feedmem');
  nodes.push(primary);
  importInto(primary, 'small', 1, 10); // seq 1: a position to ask from
  // seq 2: one entry of about 8.5 MB, more than the kernel's socket buffers take off the primary's
  // hands for a client that never reads (an entry of 4 MB went into them whole)
  importInto(primary, 'bulk', 4000, 2000);
  await primary.start();
  const head = await version(primary);
  assert.equal(head, 2);
  const before = statusMiB(primary, 'VmRSS');
  for (let i = 0; i < N; i++) deaf(primary, head - 1);
  // every stream has the entry queued (its position is the head), whatever it then does with it
  await waitFor(`${N} streams given the entry`, async () => {
    const d = await downstream(primary);
    return d.length === N && d.every((x) => x.position === head);
  }, 20000, 100);
  await new Promise((r) => setTimeout(r, 500)); // the streams take what was queued to them
  const grown = statusMiB(primary, 'VmRSS') - before;
  // one copy per stream was about N * 5 MB (what the socket buffers did not take); shared, it is
  // one block, the round's read of the log and small change
  assert.ok(grown < 64, `primary RSS grew by ${grown.toFixed(1)} MiB for ${N} streams that never read`);
  await stopClean(primary);
});

// The waits are bounds, not pauses: on a quiet machine the eviction comes within a second; once,
// in a make test whose other lane was busy, it took longer than 10 s.
test('past --sync-feed-budget the stream holding the most is ended; a healthy replica streams on', { timeout: 120000 }, async () => {
  const budget = 1 << 20;
  const primary = node('feedbudget', { args: ['--sync-feed-budget', String(budget)] });
  nodes.push(primary);
  await primary.start();
  // 30 entries of 40 KB each (below the size that is shared): 1.2 MB queued to each stream
  for (let i = 0; i < 30; i++) {
    const r = await call(primary.url, 'POST', '/api/v1/namespaces/default/flags', { key: `f${i}`, name: `f${i}`, type: 'BOOLEAN_FLAG_TYPE', enabled: true, description: 'x'.repeat(40000) });
    assert.equal(r.status, 200, r.text);
  }
  const replica = node('feedbudget-r', { upstream: primary.url });
  nodes.push(replica);
  await replica.start();
  const head = await version(primary);
  await waitFor('the replica in sync', async () => (await version(replica)) === head, 10000);
  const N = 8;
  for (let i = 0; i < N; i++) deaf(primary, 1);
  await waitFor('streams ended for the budget', async () => (await metric(primary, 'edgeflag_replication_feed_evicted_total')) >= 1, 40000, 100);
  await waitFor('what the feed holds back within the budget', async () =>
    (await metric(primary, 'edgeflag_replication_feed_held_bytes')) <= budget, 10000, 100);
  // the deaf streams go (their connections are shut down), the replica's stays
  await waitFor('the ended streams gone', async () => (await downstream(primary)).length < N + 1, 10000, 100);
  const w = await call(primary.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'after', name: 'after', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  assert.equal(w.status, 200);
  await waitFor('the replica to get the next write', async () => (await call(replica.url, 'GET', '/api/v1/namespaces/default/flags/after')).status === 200, 5000);
  assert.equal((await call(replica.url, 'GET', '/edgeflag/v1/cluster')).json.reconnects, 0, 'the healthy replica was never ended');
  assert.match(primary.stderr, /downstream ended: the feed holds more than sync-feed-budget/);
  await stopClean(primary, replica);
});
