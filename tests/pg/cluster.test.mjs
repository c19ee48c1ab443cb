// cluster.test.mjs - edgeflag nodes on one PostgreSQL database (run under tests/pg/with-postgres.sh,
// which starts a throwaway PostgreSQL 15): a write on one node is evaluated on the other through
// LISTEN/NOTIFY (the poll interval is set far above the bound, so only a notification can meet
// it); concurrent writes from both nodes are serialised by the database; the database killed
// with SIGKILL under write load: evaluation goes on from memory, writes answer 503 JSON quickly,
// and after a restart writes resume without restarting edgeflag, with no acknowledged write lost
// and none applied twice; a SQLite store moved to PostgreSQL and back with export/import keeps
// identical exports and evaluations; a streaming standby promoted after the primary died is
// found by the nodes themselves (libpq multi-host, target_session_attrs=read-write).
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { call, edgeflagBin, startServer } from '../compat/server.mjs';

const execFileP = promisify(execFile);

const PG = process.env.EF_TEST_PG_URL;
const PGDIR = process.env.EF_TEST_PG_DIR;
if (!PG || !PGDIR) throw new Error('run under tests/pg/with-postgres.sh (EF_TEST_PG_URL is not set)');
const PGBIN = process.env.EF_TEST_PG_BIN;
const AS = (process.env.EF_TEST_PG_AS || '').split(' ').filter(Boolean);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-pg-cluster-'));
const POLL_MS = 5000; // far above BOUND_MS: pick-up within the bound can only come from NOTIFY
const BOUND_MS = 1000; // the notification bound asserted here, with slack for 2 shared cores

const psql = (db, sql, url = PG) => execFileSync('psql', ['-X', '-q', '-t', '-A', `${url}/${db}`, '-c', sql], { encoding: 'utf8' }).trim();
function createDb(name) {
  psql('postgres', `CREATE DATABASE "${name}"`);
  return `${PG}/${name}`;
}
// the server as the unprivileged user with_postgres.sh runs it as
const asUser = (cmd, args, opts = {}) => (AS.length ? execFileSync(AS[0], [...AS.slice(1), cmd, ...args], opts) : execFileSync(cmd, args, opts));
function pgPids(dataDir) {
  const pm = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const kids = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pm)], { encoding: 'utf8' }).stdout.split('\n').map(Number).filter(Boolean);
  return [pm, ...kids];
}
// SIGKILL to the postmaster and every process it started (this server's only, by pid). Its lock
// files go too: here a killed postmaster may stay a zombie (no init reaps it), and PostgreSQL
// takes a zombie's pid in a lock file for a live server.
function killServer(dataDir, port) {
  for (const pid of pgPids(dataDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  fs.rmSync(path.join(dataDir, 'postmaster.pid'), { force: true });
  fs.rmSync(path.join(PGDIR, `.s.PGSQL.${port}.lock`), { force: true });
  fs.rmSync(path.join(PGDIR, `.s.PGSQL.${port}`), { force: true });
}
// asynchronous: a synchronous wait would stall this process's clock and HTTP calls meanwhile
async function startPg(dataDir, port) {
  const log = path.join(path.dirname(dataDir), `server-${port}.log`);
  const cmd = [`${PGBIN}/pg_ctl`, ['-D', dataDir, '-l', log, '-w', '-t', '60', '-o',
    `-p ${port} -k ${PGDIR} -c listen_addresses=127.0.0.1 -c max_connections=200 -c wal_level=replica -c max_wal_senders=4`, 'start']];
  try {
    if (AS.length) await execFileP(AS[0], [...AS.slice(1), cmd[0], ...cmd[1]]);
    else await execFileP(...cmd);
  } catch (e) { // the reason is in the server's log, which the directory's removal takes along
    e.message += `\nserver log:\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-2000) : '(none)'}`;
    throw e;
  }
}
// A port the kernel had free a moment ago (another process may take it before PostgreSQL binds
// it: startPgFree tries again). Not the primary's port + 1, which lies in the ephemeral range.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
async function startPgFree(dataDir) {
  let last;
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    try {
      await startPg(dataDir, port);
      return port;
    } catch (e) {
      last = e;
    }
  }
  throw last;
}
const pgPort = Number(new URL(PG).port);

const nodes = [];
async function node(name, dbUrl, extra = []) {
  const srv = await startServer(['--db', dbUrl, '--db-cache', path.join(tmp, name + '.db'), '--db-poll', String(POLL_MS), ...extra], { dir: tmp });
  nodes.push(srv);
  return srv;
}
after(async () => {
  for (const n of nodes) await n.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const flag = (key, enabled = true) => ({ key, name: key, enabled, type: 'BOOLEAN_FLAG_TYPE' });
const evalBool = (srv, key) => call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: key, entityId: 'u1' });
const keysOf = async (srv) => (await call(srv.url, 'GET', '/api/v1/namespaces/default/flags?limit=1000')).json.flags.map((f) => f.key).sort();
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

async function waitFor(fn, ms) {
  const t0 = performance.now();
  for (;;) {
    if (await fn()) return performance.now() - t0;
    if (performance.now() - t0 > ms) return null;
    await new Promise((res) => setTimeout(res, 2));
  }
}

test('two nodes on one PostgreSQL: writes on one are evaluated on the other through NOTIFY', async () => {
  const url = createDb('cluster');
  const iad = await node('iad', url);
  const lhr = await node('lhr', url);
  const lat = [];
  for (let i = 0; i < 30; i++) {
    const r = await call(iad.url, 'POST', '/api/v1/namespaces/default/flags', flag(`n-${i}`));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const took = await waitFor(async () => (await evalBool(lhr, `n-${i}`)).json?.enabled === true, BOUND_MS);
    assert.notEqual(took, null, `lhr did not see n-${i} within ${BOUND_MS} ms (poll interval ${POLL_MS} ms)`);
    lat.push(took);
  }
  console.log(`# pick-up on the other node through NOTIFY (under load): p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms`);
  let r = await call(lhr.url, 'PUT', '/api/v1/namespaces/default/flags/n-0', flag('n-0', false));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.notEqual(await waitFor(async () => (await evalBool(iad, 'n-0')).json?.enabled === false, BOUND_MS), null);

  // concurrent writes from both nodes: the database serialises them, nothing is lost
  const writes = [];
  for (let i = 0; i < 12; i++) {
    writes.push(call(iad.url, 'POST', '/api/v1/namespaces/default/flags', flag(`iad-${i}`)));
    writes.push(call(lhr.url, 'POST', '/api/v1/namespaces/default/flags', flag(`lhr-${i}`)));
  }
  for (const w of await Promise.all(writes)) assert.equal(w.status, 200, JSON.stringify(w.json));
  assert.match(iad.stderr() + lhr.stderr(), /another node wrote first; pulling and retrying/);
  const want = JSON.stringify([...Array.from({ length: 30 }, (_, i) => `n-${i}`), ...Array.from({ length: 12 }, (_, i) => [`iad-${i}`, `lhr-${i}`]).flat()].sort());
  for (const s of [iad, lhr]) assert.notEqual(await waitFor(async () => JSON.stringify(await keysOf(s)) === want, BOUND_MS), null);
  // the database of record holds the same rows, typed: booleans, C-collated keys
  assert.equal(psql('cluster', "SELECT count(*) FROM flags WHERE namespace_key = 'default'"), '54');
  assert.equal(psql('cluster', "SELECT enabled FROM flags WHERE key = 'n-0'"), 'f');
  assert.equal(psql('cluster', "SELECT data_type FROM information_schema.columns WHERE table_name = 'flags' AND column_name = 'enabled'"), 'boolean');
  assert.equal(psql('cluster', "SELECT collation_name FROM information_schema.columns WHERE table_name = 'flags' AND column_name = 'key'"), 'C');
  // two nodes creating the same flag: one success, one "not unique"
  const same = await Promise.all([iad, lhr].map((s) => call(s.url, 'POST', '/api/v1/namespaces/default/flags', flag('same'))));
  assert.deepEqual(same.map((x) => x.status).sort(), [200, 400]);
});

test('PostgreSQL killed with SIGKILL under write load: no acknowledged write lost or doubled, writes resume', async () => {
  const url = createDb('faults');
  const a = await node('fa', url);
  const b = await node('fb', url);
  const acked = new Set();
  let failedFast = 0, failedSlow = 0, stop = false, n = 0;
  const worker = async () => {
    while (!stop) {
      const key = `w-${n++}`;
      const t0 = performance.now();
      const r = await call(a.url, 'POST', '/api/v1/namespaces/default/flags', flag(key));
      const ms = performance.now() - t0;
      if (r.status === 200) acked.add(key);
      else {
        assert.equal(r.status, 503, JSON.stringify(r.json));
        assert.match(r.json.message, /postgres 127\.0\.0\.1:\d+\/faults/);
        if (ms < 2000) failedFast++;
        else failedSlow++;
        await new Promise((res) => setTimeout(res, 20));
      }
    }
  };
  const workers = [worker(), worker(), worker(), worker()];
  await waitFor(async () => acked.size >= 40, 20000);
  // keys both nodes hold before the kill (b picks writes up by NOTIFY)
  const [probe, probe2] = [...acked];
  assert.notEqual(await waitFor(async () => (await evalBool(b, probe)).json?.enabled === true &&
    (await call(b.url, 'GET', `/api/v1/namespaces/default/flags/${probe2}`)).status === 200, 10000), null, `${probe} never reached b`);
  killServer(path.join(PGDIR, 'data'), pgPort);
  const ackedAtKill = acked.size;
  // down: evaluation and reads go on from memory on both nodes
  await new Promise((res) => setTimeout(res, 500));
  assert.equal((await evalBool(a, probe)).json.enabled, true);
  assert.equal((await evalBool(b, probe)).json.enabled, true);
  assert.equal((await call(b.url, 'GET', `/api/v1/namespaces/default/flags/${probe2}`)).status, 200);
  const t0 = performance.now();
  const down = await call(b.url, 'POST', '/api/v1/namespaces/default/flags', flag('while-down'));
  assert.equal(down.status, 503, JSON.stringify(down.json));
  assert.ok(performance.now() - t0 < 2000, `a write with the database down took ${performance.now() - t0} ms`);
  assert.match(down.json.message, /not saved|cannot connect/);
  await startPg(path.join(PGDIR, 'data'), pgPort);
  // writes resume without restarting edgeflag
  assert.notEqual(await waitFor(async () => acked.size >= ackedAtKill + 40, 30000), null, 'writes did not resume');
  stop = true;
  await Promise.all(workers);
  console.log(`# kill -9 under load: ${acked.size} writes acknowledged, ${failedFast} refused within 2 s, ${failedSlow} slower`);
  assert.equal(failedSlow, 0);
  // every acknowledged write is in the database of record and on both nodes; none was applied twice
  const inDb = new Set(psql('faults', "SELECT key FROM flags WHERE key LIKE 'w-%'").split('\n').filter(Boolean));
  for (const k of acked) assert.ok(inDb.has(k), `acknowledged ${k} is missing from PostgreSQL`);
  const [count, distinct, max] = psql('faults', 'SELECT count(*), count(DISTINCT seq), max(seq) FROM changelog').split('|').map(Number);
  assert.equal(count, max, 'the change log has a gap');
  assert.equal(distinct, count);
  assert.equal(psql('faults', 'SELECT seq FROM ef_state'), String(max));
  // one change-log entry per created flag: nothing applied twice
  assert.equal(Number(psql('faults', "SELECT count(*) FROM changelog WHERE entry LIKE '%\"table\":\"flags\",\"op\":\"upsert\"%'")), inDb.size);
  const want = JSON.stringify([...inDb].sort());
  for (const s of [a, b])
    assert.notEqual(await waitFor(async () => JSON.stringify((await keysOf(s)).filter((k) => k.startsWith('w-'))) === want, 10000), null);
});

test('SQLite → PostgreSQL → SQLite with export/import: identical exports and evaluations', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'move-'));
  const run = (args) => {
    const r = spawnSync(edgeflagBin, args, { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const yml = path.join(dir, 'in.yml');
  fs.writeFileSync(yml, `version: "1.4"
namespace:
  key: default
flags:
  - key: color
    name: Color
    type: VARIANT_FLAG_TYPE
    enabled: true
    metadata: {team: "web", "z": 1, "a": [1, 2]}
    variants:
      - key: red
        attachment: {"hex": "#f00", "b": true}
      - key: blue
    rules:
      - segment: beta
        distributions:
          - variant: red
            rollout: 33.3
          - variant: blue
            rollout: 66.7
  - key: "Zeta"
    name: upper
    type: BOOLEAN_FLAG_TYPE
    enabled: false
    rollouts:
      - threshold: {percentage: 12.5, value: true}
  - key: alpha
    name: lower
    type: BOOLEAN_FLAG_TYPE
    enabled: true
segments:
  - key: beta
    name: Beta
    match_type: ALL_MATCH_TYPE
    constraints:
      - {type: STRING_COMPARISON_TYPE, property: plan, operator: eq, value: pro}
`);
  const sqlite1 = path.join(dir, 'one.db');
  run(['import', '--db', sqlite1, yml]);
  const e1 = run(['export', '--db', sqlite1]);
  const pgUrl = createDb('moved');
  fs.writeFileSync(path.join(dir, 'e1.yml'), e1);
  run(['import', '--db', pgUrl, path.join(dir, 'e1.yml')]);
  const e2 = run(['export', '--db', pgUrl]);
  assert.equal(e2, e1);
  const sqlite2 = path.join(dir, 'two.db');
  fs.writeFileSync(path.join(dir, 'e2.yml'), e2);
  run(['import', '--db', sqlite2, path.join(dir, 'e2.yml')]);
  assert.equal(run(['export', '--db', sqlite2]), e1);
  // JSON kept as written, keys ordered bytewise (upper case first, as SQLite's BINARY)
  assert.equal(psql('moved', "SELECT metadata::text FROM flags WHERE key = 'color'"), '{"team":"web","z":1,"a":[1,2]}');
  assert.equal(psql('moved', "SELECT string_agg(key, ',' ORDER BY key) FROM flags"), 'Zeta,alpha,color');
  // evaluations identical on the three stores
  const s1 = await startServer(['--db', sqlite1], { dir });
  const s2 = await node('moved', pgUrl);
  const s3 = await startServer(['--db', sqlite2], { dir: fs.mkdtempSync(path.join(tmp, 'three-')) });
  nodes.push(s1, s3);
  for (let i = 0; i < 200; i++) {
    const ctx = { plan: i % 3 ? 'pro' : 'free' };
    const bodies = [
      ['/evaluate/v1/variant', { namespaceKey: 'default', flagKey: 'color', entityId: `u${i}`, context: ctx }],
      ['/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: 'Zeta', entityId: `u${i}`, context: ctx }],
    ];
    for (const [p, body] of bodies) {
      const rs = await Promise.all([s1, s2, s3].map((s) => call(s.url, 'POST', p, body)));
      const strip = (j) => JSON.stringify({ ...j, requestId: undefined, requestDurationMillis: undefined, timestamp: undefined });
      assert.equal(strip(rs[1].json), strip(rs[0].json));
      assert.equal(strip(rs[2].json), strip(rs[0].json));
    }
  }
});

test('a promoted standby is found by the nodes themselves (multi-host, target_session_attrs=read-write)', async () => {
  createDb('promo');
  const standby = path.join(PGDIR, 'standby');
  asUser(`${PGBIN}/pg_basebackup`, ['-D', standby, '-R', '-X', 'stream', '-c', 'fast', '-d', `${PG}/promo`], { stdio: 'ignore' });
  const port2 = await startPgFree(standby);
  const multi = `postgresql://edgeflag@127.0.0.1:${pgPort},127.0.0.1:${port2}/promo?target_session_attrs=read-write`;
  const a = await node('pa', multi);
  const b = await node('pb', multi);
  assert.equal((await call(a.url, 'POST', '/api/v1/namespaces/default/flags', flag('before'))).status, 200);
  assert.notEqual(await waitFor(async () => (await evalBool(b, 'before')).status === 200, BOUND_MS), null);
  // the standby has replayed the write before the primary dies (synchronous replication is not
  // what this test is about)
  assert.notEqual(await waitFor(async () => psql('promo', "SELECT count(*) FROM flags WHERE key = 'before'", `postgresql://edgeflag@127.0.0.1:${port2}`) === '1', 10000), null);
  killServer(path.join(PGDIR, 'data'), pgPort);
  asUser(`${PGBIN}/pg_ctl`, ['-D', standby, '-w', 'promote'], { stdio: 'ignore' });
  let status = 0;
  const took = await waitFor(async () => {
    status = (await call(a.url, 'POST', '/api/v1/namespaces/default/flags', flag('after'))).status;
    return status === 200;
  }, 20000);
  assert.notEqual(took, null, `writes did not move to the promoted standby (last status ${status})`);
  console.log(`# standby promotion: writes accepted again ${took.toFixed(0)} ms after promotion`);
  assert.notEqual(await waitFor(async () => (await evalBool(b, 'after')).status === 200, 10000), null, 'the other node did not follow');
  assert.equal(psql('promo', "SELECT count(*) FROM flags WHERE key IN ('before', 'after')", `postgresql://edgeflag@127.0.0.1:${port2}`), '2');
  // restore the primary for later users of this server (there are none in this file) and stop the standby
  asUser(`${PGBIN}/pg_ctl`, ['-D', standby, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
});
