// remote_bench.mjs - per backend: write latency over HTTP and other-node pick-up time, for edgeflag
// nodes on a throwaway PostgreSQL 15 (pick-up by LISTEN/NOTIFY) and MariaDB 10.11 (pick-up by
// polling), next to the local SQLite store. Run by bench/run-remote.sh, which starts the servers
// (EF_TEST_PG_URL, EF_TEST_MYSQL_URL). Figures only; nothing here asserts on time.
// usage: node bench/remote_bench.mjs [--writes N] [--picks N] [--poll MS]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call, startServer } from '../tests/compat/server.mjs';

const arg = (n, d) => (process.argv.includes(n) ? Number(process.argv[process.argv.indexOf(n) + 1]) : d);
const WRITES = arg('--writes', 200);
const PICKS = arg('--picks', 50);
const POLL = arg('--poll', 1000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-remote-bench-'));
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const fmt = (xs) => `p50 ${pct(xs, 0.5).toFixed(2)} ms  p99 ${pct(xs, 0.99).toFixed(2)} ms`;
const flag = (key) => ({ key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true });

async function writes(srv, prefix) {
  const xs = [];
  for (let i = 0; i < WRITES; i++) {
    const t0 = performance.now();
    const r = await call(srv.url, 'POST', '/api/v1/namespaces/default/flags', flag(`${prefix}-${i}`));
    if (r.status !== 200) throw new Error(JSON.stringify(r.json));
    xs.push(performance.now() - t0);
  }
  return xs;
}

// from the write's acknowledgement on a to its first evaluation on b
async function pickups(a, b, gap) {
  const xs = [];
  for (let i = 0; i < PICKS; i++) {
    const key = `pick-${i}`;
    await call(a.url, 'POST', '/api/v1/namespaces/default/flags', flag(key));
    const t0 = performance.now();
    for (;;) {
      const r = await call(b.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: key, entityId: 'u' });
      if (r.json?.enabled === true) break;
      await new Promise((res) => setTimeout(res, 1));
    }
    xs.push(performance.now() - t0);
    await new Promise((res) => setTimeout(res, Math.random() * gap)); // a random phase against a poll
  }
  return xs;
}

const backends = [];
if (process.env.EF_TEST_PG_URL) {
  execFileSync('psql', ['-X', '-q', `${process.env.EF_TEST_PG_URL}/postgres`, '-c', 'CREATE DATABASE bench']);
  backends.push(['PostgreSQL 15 (NOTIFY)', `${process.env.EF_TEST_PG_URL}/bench`, 50]);
}
if (process.env.EF_TEST_MYSQL_URL) {
  const port = new URL(process.env.EF_TEST_MYSQL_URL).port;
  execFileSync('mariadb', ['--no-defaults', '-uroot', '-h127.0.0.1', `-P${port}`, '-e', 'CREATE DATABASE bench']);
  backends.push([`MariaDB 10.11 (poll ${POLL} ms)`, `${process.env.EF_TEST_MYSQL_URL}/bench`, POLL]);
}
const started = [];
try {
  const local = await startServer(['--db', path.join(tmp, 'local.db')], { dir: tmp });
  started.push(local);
  console.log(`flag create, ${WRITES} sequential writes over HTTP (load average ${os.loadavg()[0].toFixed(1)}):`);
  console.log(`  ${'local SQLite store'.padEnd(30)} ${fmt(await writes(local, 'l'))}`);
  for (const [i, [name, url, gap]] of backends.entries()) {
    const a = await startServer(['--db', url, '--db-cache', path.join(tmp, `${i}-a.db`), '--db-poll', String(POLL)], { dir: tmp });
    const b = await startServer(['--db', url, '--db-cache', path.join(tmp, `${i}-b.db`), '--db-poll', String(POLL)], { dir: tmp });
    started.push(a, b);
    console.log(`  ${name.padEnd(30)} ${fmt(await writes(a, 'w'))}`);
    const p = await pickups(a, b, gap);
    console.log(`  ${name.padEnd(30)} pick-up on the other node, ${PICKS} writes: ${fmt(p)}  max ${Math.max(...p).toFixed(0)} ms`);
  }
} finally {
  for (const s of started) await s.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
