// libsql_bench.mjs - write latency and change pick-up time through libSQL (edgeflag nodes on the
// Hrana test peer) next to the local SQLite store, plus evaluation latency on a libSQL node (which
// must not touch the database). Figures only; nothing here asserts on time.
// usage: node bench/libsql_bench.mjs [--writes N] [--poll MS]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, startServer } from '../tests/compat/server.mjs';
import { listeningUrl } from './listen.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (n, d) => (process.argv.includes(n) ? Number(process.argv[process.argv.indexOf(n) + 1]) : d);
const WRITES = arg('--writes', 200);
const POLL = arg('--poll', 1000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-libsql-bench-'));

const peer = spawn(process.execPath, [path.join(root, 'tests/libsql/peer.mjs'), '--db', path.join(tmp, 'remote.db')], { stdio: ['ignore', 'pipe', 'inherit'] });
const peerUrl = await listeningUrl(peer, 'the libSQL test peer');

const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const fmt = (xs) => `p50 ${pct(xs, 0.5).toFixed(2)} ms  p99 ${pct(xs, 0.99).toFixed(2)} ms`;

async function writeLatency(srv, prefix) {
  const xs = [];
  for (let i = 0; i < WRITES; i++) {
    const t0 = performance.now();
    const r = await call(srv.url, 'POST', '/api/v1/namespaces/default/flags', { key: `${prefix}-${i}`, name: 'x', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
    if (r.status !== 200) throw new Error(JSON.stringify(r.json));
    xs.push(performance.now() - t0);
  }
  return xs;
}

async function evalLatency(srv, key) {
  const xs = [];
  for (let i = 0; i < 500; i++) {
    const t0 = performance.now();
    await call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: key, entityId: 'u' + i });
    xs.push(performance.now() - t0);
  }
  return xs;
}

const local = await startServer(['--db', path.join(tmp, 'local.db')]);
const a = await startServer(['--db', peerUrl, '--db-cache', path.join(tmp, 'a.db'), '--db-poll', String(POLL)]);
const b = await startServer(['--db', peerUrl, '--db-cache', path.join(tmp, 'b.db'), '--db-poll', String(POLL)]);
try {
  console.log(`flag create, ${WRITES} sequential writes over HTTP:`);
  console.log(`  local SQLite store      ${fmt(await writeLatency(local, 'l'))}`);
  console.log(`  libSQL (Hrana peer)     ${fmt(await writeLatency(a, 'a'))}`);
  console.log('evaluation over HTTP, 500 requests (no database round trip on either):');
  console.log(`  local SQLite node       ${fmt(await evalLatency(local, 'l-1'))}`);
  console.log(`  libSQL node             ${fmt(await evalLatency(a, 'a-1'))}`);
  const picks = [];
  for (let i = 0; i < 10; i++) {
    const key = `pick-${i}`;
    await call(a.url, 'POST', '/api/v1/namespaces/default/flags', { key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true });
    const t0 = performance.now();
    for (;;) {
      const r = await call(b.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: key, entityId: 'u' });
      if (r.json?.enabled === true) break;
      await new Promise((res) => setTimeout(res, 5));
    }
    picks.push(performance.now() - t0);
    await new Promise((res) => setTimeout(res, Math.random() * POLL));
  }
  console.log(`change pick-up on the other node (--db-poll ${POLL} ms), 10 writes: ${fmt(picks)}  max ${Math.max(...picks).toFixed(0)} ms`);
} finally {
  await local.stop();
  await a.stop();
  await b.stop();
  peer.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
}
