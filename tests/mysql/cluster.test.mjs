// cluster.test.mjs - edgeflag nodes on one MariaDB database (run under tests/mysql/with-mariadb.sh,
// which starts a throwaway MariaDB 10.11): a write on one node is evaluated on the other within
// the poll interval; concurrent writes from both nodes are serialised by the database (row lock
// and seq guard); MariaDB killed with SIGKILL under write load: evaluation goes on from memory,
// writes answer 503 JSON quickly, and after a restart writes resume without restarting edgeflag,
// with no acknowledged write lost and none applied twice; a SQLite store moved to MariaDB and back
// with export/import keeps identical exports; types and collation in the database are checked.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { call, edgeflagBin, startServer } from '../compat/server.mjs';

const URL0 = process.env.EF_TEST_MYSQL_URL;
const DIR = process.env.EF_TEST_MYSQL_DIR;
if (!URL0 || !DIR) throw new Error('run under tests/mysql/with-mariadb.sh (EF_TEST_MYSQL_URL is not set)');
const port = Number(new URL(URL0).port);
let serverPid = Number(process.env.EF_TEST_MYSQL_PID);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-mysql-cluster-'));
const POLL_MS = 200;
const BOUND_MS = 2000; // the poll interval plus generous scheduling slack on 2 shared cores

const sql = (db, q) => execFileSync('mariadb', ['--no-defaults', '-uroot', '-h127.0.0.1', `-P${port}`, '-N', '-B', ...(db ? [db] : []), '-e', q], { encoding: 'utf8' }).trim();
function createDb(name) {
  sql('', `CREATE DATABASE ${name}`);
  return `${URL0}/${name}`;
}
// the server again on the same files and port, as with-mariadb.sh started it
async function restartServer() {
  const user = process.getuid() === 0 ? 'nobody' : os.userInfo().username;
  const bin = fs.existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : 'mariadbd';
  const child = spawn(bin, ['--no-defaults', `--datadir=${DIR}/data`, `--user=${user}`, `--port=${port}`, '--bind-address=127.0.0.1',
    `--socket=${DIR}/sock`, `--pid-file=${DIR}/pid`, `--log-error=${DIR}/server.log`, '--skip-name-resolve',
    '--innodb-buffer-pool-size=32M', '--innodb-log-file-size=16M', '--max-connections=300'], { stdio: 'ignore', detached: false });
  serverPid = child.pid;
  restarted.push(child);
  for (let i = 0; i < 300; i++) {
    if (spawnSync('mariadb', ['--no-defaults', '-uroot', '-h127.0.0.1', `-P${port}`, '-e', 'SELECT 1']).status === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('MariaDB did not restart: ' + fs.readFileSync(`${DIR}/server.log`, 'utf8').slice(-2000));
}
const restarted = [];

const nodes = [];
async function node(name, dbUrl) {
  const srv = await startServer(['--db', dbUrl, '--db-cache', path.join(tmp, name + '.db'), '--db-poll', String(POLL_MS)], { dir: tmp });
  nodes.push(srv);
  return srv;
}
after(async () => {
  for (const n of nodes) await n.stop();
  for (const c of restarted) c.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

const flag = (key, enabled = true) => ({ key, name: key, enabled, type: 'BOOLEAN_FLAG_TYPE' });
const evalBool = (srv, key) => call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: key, entityId: 'u1' });
const keysOf = async (srv) => (await call(srv.url, 'GET', '/api/v1/namespaces/default/flags?limit=1000')).json.flags.map((f) => f.key).sort();
async function waitFor(fn, ms) {
  const t0 = performance.now();
  for (;;) {
    if (await fn()) return performance.now() - t0;
    if (performance.now() - t0 > ms) return null;
    await new Promise((res) => setTimeout(res, 5));
  }
}

test('two nodes on one MariaDB: a write on one is evaluated on the other within the poll interval', async () => {
  const url = createDb('cluster');
  const iad = await node('iad', url);
  const lhr = await node('lhr', url);
  let r = await call(iad.url, 'POST', '/api/v1/namespaces/default/flags', flag('launch'));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.notEqual(await waitFor(async () => (await evalBool(lhr, 'launch')).json?.enabled === true, BOUND_MS), null);
  r = await call(lhr.url, 'PUT', '/api/v1/namespaces/default/flags/launch', flag('launch', false));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.notEqual(await waitFor(async () => (await evalBool(iad, 'launch')).json?.enabled === false, BOUND_MS), null);
  const writes = [];
  for (let i = 0; i < 12; i++) {
    writes.push(call(iad.url, 'POST', '/api/v1/namespaces/default/flags', flag(`iad-${i}`)));
    writes.push(call(lhr.url, 'POST', '/api/v1/namespaces/default/flags', flag(`lhr-${i}`)));
  }
  for (const w of await Promise.all(writes)) assert.equal(w.status, 200, JSON.stringify(w.json));
  assert.match(iad.stderr() + lhr.stderr(), /another node wrote first; pulling and retrying/);
  const want = JSON.stringify(['launch', ...Array.from({ length: 12 }, (_, i) => [`iad-${i}`, `lhr-${i}`]).flat()].sort());
  for (const s of [iad, lhr]) assert.notEqual(await waitFor(async () => JSON.stringify(await keysOf(s)) === want, BOUND_MS), null);
  // typed rows in the database of record: booleans, binary collation (upper case sorts first)
  assert.equal(sql('cluster', "SELECT enabled FROM flags WHERE `key` = 'launch'"), '0');
  assert.equal(sql('cluster', "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'cluster' AND TABLE_NAME = 'flags' AND COLUMN_NAME = 'key'"), 'ascii_bin');
  const same = await Promise.all([iad, lhr].map((s) => call(s.url, 'POST', '/api/v1/namespaces/default/flags', flag('same'))));
  assert.deepEqual(same.map((x) => x.status).sort(), [200, 400]);
  // a key MariaDB cannot index is refused with a clear 400, and nothing changes
  r = await call(iad.url, 'POST', '/api/v1/namespaces/default/flags', flag('k'.repeat(1001)));
  assert.equal(r.status, 400, JSON.stringify(r.json));
  assert.match(r.json.message, /at most 1000 characters/);
  assert.equal((await keysOf(iad)).length, 26);
});

test('MariaDB killed with SIGKILL under write load: no acknowledged write lost or doubled, writes resume', async () => {
  const url = createDb('faults');
  const a = await node('fa', url);
  const b = await node('fb', url);
  const acked = new Set();
  let failedSlow = 0, stop = false, n = 0;
  const worker = async () => {
    while (!stop) {
      const key = `w-${n++}`;
      const t0 = performance.now();
      const r = await call(a.url, 'POST', '/api/v1/namespaces/default/flags', flag(key));
      if (r.status === 200) acked.add(key);
      else {
        assert.equal(r.status, 503, JSON.stringify(r.json));
        assert.match(r.json.message, /mysql 127\.0\.0\.1:\d+\/faults/);
        if (performance.now() - t0 >= 2000) failedSlow++;
        await new Promise((res) => setTimeout(res, 20));
      }
    }
  };
  const workers = [worker(), worker(), worker(), worker()];
  await waitFor(async () => acked.size >= 40, 20000);
  // a key both nodes hold before the kill (b picks writes up by its own means, polling on MariaDB)
  const probe = [...acked][0];
  assert.notEqual(await waitFor(async () => (await evalBool(b, probe)).json?.enabled === true, 10000), null, `${probe} never reached b`);
  process.kill(serverPid, 'SIGKILL');
  const ackedAtKill = acked.size;
  await new Promise((res) => setTimeout(res, 500));
  assert.equal((await evalBool(a, probe)).json.enabled, true);
  assert.equal((await evalBool(b, probe)).json.enabled, true);
  const t0 = performance.now();
  const down = await call(b.url, 'POST', '/api/v1/namespaces/default/flags', flag('while-down'));
  assert.equal(down.status, 503, JSON.stringify(down.json));
  assert.ok(performance.now() - t0 < 2000, `a write with the database down took ${performance.now() - t0} ms`);
  await restartServer();
  assert.notEqual(await waitFor(async () => acked.size >= ackedAtKill + 40, 30000), null, 'writes did not resume');
  stop = true;
  await Promise.all(workers);
  console.log(`# MariaDB kill -9 under load: ${acked.size} writes acknowledged, ${failedSlow} refusals slower than 2 s`);
  assert.equal(failedSlow, 0);
  const inDb = new Set(sql('faults', "SELECT `key` FROM flags WHERE `key` LIKE 'w-%'").split('\n').filter(Boolean));
  for (const k of acked) assert.ok(inDb.has(k), `acknowledged ${k} is missing from MariaDB`);
  const [count, max] = sql('faults', 'SELECT count(*), max(seq) FROM changelog').split('\t').map(Number);
  assert.equal(count, max, 'the change log has a gap');
  assert.equal(sql('faults', 'SELECT seq FROM ef_state'), String(max));
  assert.equal(Number(sql('faults', "SELECT count(*) FROM changelog WHERE entry LIKE '%\"table\":\"flags\",\"op\":\"upsert\"%'")), inDb.size);
  const want = JSON.stringify([...inDb].sort());
  for (const s of [a, b])
    assert.notEqual(await waitFor(async () => JSON.stringify((await keysOf(s)).filter((k) => k.startsWith('w-'))) === want, 10000), null);
});

test('SQLite → MariaDB → SQLite with export/import: identical exports', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'move-'));
  const run = (args) => {
    const r = spawnSync(edgeflagBin, args, { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const yml = path.join(dir, 'in.yml');
  fs.writeFileSync(yml, 'version: "1.4"\nnamespace:\n  key: default\nflags:\n  - key: color\n    name: Color\n    type: VARIANT_FLAG_TYPE\n    enabled: true\n    metadata: {team: "web", "z": 1}\n    variants:\n      - key: red\n        attachment: {"hex": "#f00"}\n    rules:\n      - segment: beta\n        distributions:\n          - variant: red\n            rollout: 33.3\n  - key: Zeta\n    name: upper\n    type: BOOLEAN_FLAG_TYPE\n    rollouts:\n      - threshold: {percentage: 12.5, value: true}\nsegments:\n  - key: beta\n    name: Beta\n    match_type: ALL_MATCH_TYPE\n    constraints:\n      - {type: STRING_COMPARISON_TYPE, property: plan, operator: eq, value: "pro \\u00e9"}\n');
  const one = path.join(dir, 'one.db');
  run(['import', '--db', one, yml]);
  const e1 = run(['export', '--db', one]);
  fs.writeFileSync(path.join(dir, 'e1.yml'), e1);
  const url = createDb('moved');
  run(['import', '--db', url, path.join(dir, 'e1.yml')]);
  fs.rmSync(path.join(dir, 'data'), { recursive: true, force: true }); // a new cache: a dump from MariaDB
  const e2 = run(['export', '--db', url]);
  assert.equal(e2, e1);
  fs.writeFileSync(path.join(dir, 'e2.yml'), e2);
  const two = path.join(dir, 'two.db');
  run(['import', '--db', two, path.join(dir, 'e2.yml')]);
  assert.equal(run(['export', '--db', two]), e1);
  assert.equal(sql('moved', 'SELECT metadata FROM flags WHERE `key` = \'color\''), '{"team":"web","z":1}');
  assert.equal(sql('moved', 'SELECT GROUP_CONCAT(`key` ORDER BY `key`) FROM flags'), 'Zeta,color');
});
