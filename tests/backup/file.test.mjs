// `edgeflag backup` and `edgeflag restore FILE` against real servers on loopback (docs/backup.md):
//  - a backup taken while the primary takes writes is exactly the primary's state at the seq it
//    reports (every write acknowledged at or before that seq is in it, none after);
//  - restoring over a store a running server holds is refused, naming the pid, and changes nothing;
//  - a restored primary is on a new history: its replica, which followed the old one further,
//    reloads from a dump and serves the restored state (byte-identical export);
//  - bad inputs (missing, not SQLite, not edgeflag, truncated, no --db) are clear errors that
//    leave the target untouched.
// Every wait has a deadline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { node, stopAll, call, waitFor, version, exportState, tmpdir } from '../cluster/cluster.mjs';
import { edgeflagBin } from '../compat/server.mjs';

const nodes = [];
after(async () => {
  await stopAll(nodes);
});

// async, so the writer below keeps writing while the backup runs
function efAsync(...args) {
  return new Promise((resolve) => {
    execFile(edgeflagBin, args, { encoding: 'utf8', timeout: 20000 }, (e, stdout, stderr) => resolve({ status: e ? e.code ?? 1 : 0, stdout, stderr }));
  });
}

function ef(...args) {
  return spawnSync(edgeflagBin, args, { encoding: 'utf8', timeout: 20000 });
}

async function createFlag(n, key) {
  const r = await call(n.url, 'POST', '/api/v1/namespaces/default/flags', { key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  assert.equal(r.status, 200, `create ${key} on ${n.name}: ${r.text}`);
  return Number(r.headers.get('x-edgeflag-version'));
}

async function flagKeys(n) {
  const r = await call(n.url, 'GET', '/api/v1/namespaces/default/flags');
  assert.equal(r.status, 200, r.text);
  return r.json.flags.map((f) => f.key).sort().join(',');
}

test('online backup under writes, refused restore over a served store, restore to a new history that a replica follows', { timeout: 60000 }, async () => {
  const primary = node('bk-primary');
  nodes.push(primary);
  await primary.start();
  const db = path.join(primary.dir, 'edgeflag.db');
  for (const k of ['a', 'b', 'c']) await createFlag(primary, k);
  const replica = node('bk-replica', { upstream: () => primary.url });
  nodes.push(replica);
  await replica.start();

  // writes keep going while the backup runs; each acknowledged write's seq is recorded
  const acked = new Map();
  let stop = false;
  const writer = (async () => {
    for (let i = 0; !stop && i < 400; i++) acked.set(`w${i}`, await createFlag(primary, `w${i}`));
  })();
  await waitFor('some writes', async () => acked.size >= 10, 10000);
  const out = path.join(tmpdir('ef-bk-out-'), 'copy.db');
  const during = acked.size;
  const bk = await efAsync('backup', '--db', db, '-o', out);
  assert.ok(acked.size > during, 'writes went on while the backup ran');
  await waitFor('more writes after the backup', async () => acked.size >= during + 20, 10000);
  stop = true;
  await writer;
  assert.equal(bk.status, 0, bk.stderr);
  const info = JSON.parse(bk.stdout);
  const ident = await call(primary.url, 'GET', '/edgeflag/v1/cluster');
  assert.ok(info.seq >= 13, `backup seq ${info.seq}`);
  assert.match(info.history, /^[0-9a-f]{32}$/);
  assert.deepEqual(fs.readdirSync(path.dirname(out)), ['copy.db'], 'one self-contained file, no -wal');

  // exactly the writes acknowledged at or before its seq
  const inCopy = ef('export', '--db', out);
  assert.equal(inCopy.status, 0, inCopy.stderr);
  for (const [k, seq] of acked) {
    assert.equal(inCopy.stdout.includes(`- key: ${k}\n`), seq <= info.seq, `${k} (seq ${seq}) vs backup seq ${info.seq}`);
  }

  // the replica follows everything the primary took
  const head = await version(primary);
  await waitFor('replica to catch up', async () => (await version(replica)) === head, 10000);

  // refused while the primary holds the file; nothing changes
  const before = await exportState(primary);
  const refused = ef('restore', out, '--db', db);
  assert.notEqual(refused.status, 0);
  assert.ok(refused.stderr.includes(`database ${db} is in use by another process (pid ${primary.child.pid}`), refused.stderr);
  assert.deepEqual(await exportState(primary), before);
  assert.equal(ident.status, 200);

  // restore while stopped: a new history at the backup's seq
  await primary.stop();
  const rs = ef('restore', out, '--db', db);
  assert.equal(rs.status, 0, rs.stderr);
  const rinfo = JSON.parse(rs.stdout);
  assert.equal(rinfo.seq, info.seq);
  assert.equal(rinfo.fromHistory, info.history);
  assert.notEqual(rinfo.history, info.history, 'a restore starts a new history');
  assert.notEqual(rinfo.dbId, info.dbId);
  await primary.start();
  assert.equal(await version(primary), info.seq);

  // the replica (ahead of the restored primary on the old history) reloads and serves the restored state
  await waitFor('replica to take the restored state', async () => (await version(replica)) === info.seq && (await flagKeys(replica)) === (await flagKeys(primary)), 15000);
  assert.match(replica.stderr, /upstream is on another history/);
  assert.deepEqual(await exportState(replica), await exportState(primary));
  // and follows the new history from there
  const v = await createFlag(primary, 'after-restore');
  assert.equal(v, info.seq + 1);
  await waitFor('replica to apply a write of the new history', async () => (await version(replica)) === v, 10000);
  assert.deepEqual(await exportState(replica), await exportState(primary));
  const pexp = ef('export', '--db', db, '--all-namespaces');
  assert.equal(pexp.status, 0, pexp.stderr);
  assert.ok(pexp.stdout.includes('- key: after-restore\n'));
});

test('bad restore inputs are clear errors and leave the target untouched', { timeout: 30000 }, async () => {
  const dir = tmpdir('ef-bk-bad-');
  const target = path.join(dir, 'target.db');
  const yml = path.join(dir, 'f.yml');
  fs.writeFileSync(yml, 'version: "1.2"\nnamespace: default\nflags:\n- key: keep\n  name: keep\n  type: BOOLEAN_FLAG_TYPE\n');
  assert.equal(ef('import', '--db', target, yml).status, 0);
  const before = ef('export', '--db', target).stdout;
  const good = path.join(dir, 'good.db');
  assert.equal(ef('backup', '--db', target, '-o', good).status, 0);

  fs.writeFileSync(path.join(dir, 'garbage.db'), 'this is not a database at all, just text\n'.repeat(200));
  fs.writeFileSync(path.join(dir, 'trunc.db'), fs.readFileSync(good).subarray(0, 8192));
  const other = path.join(dir, 'other.db');
  const mk = spawnSync('sqlite3', [other, 'CREATE TABLE t(a); INSERT INTO t VALUES (1);'], { encoding: 'utf8' });
  assert.equal(mk.status, 0, `sqlite3: ${mk.stderr}`);
  const cases = [
    [['restore', path.join(dir, 'missing.db'), '--db', target], /cannot read backup .*missing\.db: No such file/],
    [['restore', path.join(dir, 'garbage.db'), '--db', target], /garbage\.db is damaged or not a database: file is not a database/],
    [['restore', path.join(dir, 'trunc.db'), '--db', target], /trunc\.db is damaged or not a database/],
    [['restore', other, '--db', target], /other\.db is not an edgeflag store/],
    [['restore', good], /Usage: edgeflag restore/],
    [['restore', good, '--db', 'file:' + target], /plain file path/],
    [['backup', '--db', path.join(dir, 'missing.db'), '-o', path.join(dir, 'x.db')], /cannot open database/],
    [['backup', '--db', other, '-o', path.join(dir, 'x.db')], /is not an edgeflag store/],
    [['backup', '--db', target, '-o', path.join(dir, 'no/such/dir/x.db')], /cannot create/],
  ];
  for (const [args, re] of cases) {
    const r = ef(...args);
    assert.notEqual(r.status, 0, `${args.join(' ')} must fail`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(ef('export', '--db', target).stdout, before, `${args.join(' ')} changed the target`);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'x.db')));
  // the good one restores
  const ok = ef('restore', good, '--db', target);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ef('export', '--db', target).stdout, before);
});
