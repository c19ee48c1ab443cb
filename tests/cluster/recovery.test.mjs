// Issue 11: a replica applies entries in memory first (a savepoint of one open transaction, the
// batch, published at once) and commits and syncs its file in batches (--replica-sync). A kill of
// the process takes back the open batch; a machine crash can also take back what was written but
// not synced. Such a replica must never answer with an older version than it answered before
// without saying so (docs/replication.md, "After a crash").
//
// A power loss is simulated on disk: the replica's files are put back to what an earlier sync left
// (state at v1) while its lock file says what a machine crash leaves (batched, the old boot id),
// and it restarts under another boot id (EDGEFLAG_BOOT_ID stands in for
// /proc/sys/kernel/random/boot_id). With its primary down it serves v1 but says it is recovering
// (/ready 503, X-Edgeflag-Recovering on every answer); once it has caught up it is ready again.
// A kill -9 while the batch is open (--replica-sync long enough to keep it open) is the same on the
// same boot. Control cases: a kill -9 on the same boot once every entry is written (the lock file
// says "written"), and a clean stop, are not "recovering".
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { node, stopAll, call, waitFor, version, health, lockState, waitForLog } from './cluster.mjs';

const nodes = [];
after(async () => {
  await stopAll(nodes);
});

async function createFlag(n, key) {
  const r = await call(n.url, 'POST', '/api/v1/namespaces/default/flags', { key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  assert.equal(r.status, 200, `create ${key}: ${r.text}`);
  return Number(r.headers.get('x-edgeflag-version'));
}

// A node started and tracked for cleanup; a replica's upstream is a function (ports are kept
// across restarts), and every node runs under boot id "boot-a" unless told otherwise.
async function started(name, { upstream, args = [] } = {}) {
  const n = node(name, { upstream, args, env: { EDGEFLAG_BOOT_ID: 'boot-a' } });
  nodes.push(n);
  await n.start();
  return n;
}

const dbFiles = (dir) => fs.readdirSync(dir).filter((f) => f.startsWith('edgeflag.db'));

async function ready(n) {
  const r = await call(n.url, 'GET', '/ready');
  return { status: r.status, body: r.json, recovering: r.headers.get('x-edgeflag-recovering') };
}

test('a replica after a simulated power loss says it is recovering until it has caught up', async () => {
  const p = await started('primary');
  const r = await started('replica', { upstream: () => p.url, args: ['--replica-sync', '20'] });
  const v1 = await createFlag(p, 'one');
  await waitFor('replica at v1', async () => (await version(r)) >= v1);
  await r.stop(); // clean: everything synced, the lock file says "clean"
  assert.match(fs.readFileSync(path.join(r.dir, 'edgeflag.db.lock'), 'utf8'), /state=clean/);
  const saved = path.join(r.dir, 'at-v1');
  fs.mkdirSync(saved);
  for (const f of dbFiles(r.dir)) fs.copyFileSync(path.join(r.dir, f), path.join(saved, f));

  await r.start();
  let v = v1;
  for (let i = 0; i < 5; i++) v = await createFlag(p, `later${i}`);
  await waitFor('replica at the latest version', async () => (await version(r)) >= v);
  const lockWhileRunning = fs.readFileSync(path.join(r.dir, 'edgeflag.db.lock'), 'utf8');
  assert.match(lockWhileRunning, /boot=boot-a\nbatched=1\nunwritten=1\nstate=(open|written)\n/);
  await r.kill9();
  await p.stop();

  // the machine "restarts": the files hold only what was synced at v1, the lock record is the
  // one the crashed process left
  for (const f of dbFiles(r.dir)) fs.rmSync(path.join(r.dir, f));
  for (const f of dbFiles(saved)) if (f !== 'edgeflag.db.lock') fs.copyFileSync(path.join(saved, f), path.join(r.dir, f));
  fs.writeFileSync(path.join(r.dir, 'edgeflag.db.lock'), lockWhileRunning);
  r.env.EDGEFLAG_BOOT_ID = 'boot-b';
  await r.start();
  assert.equal(await version(r), v1, 'the replica restarted on its older durable state');
  const rd = await ready(r);
  assert.equal(rd.status, 503, JSON.stringify(rd.body));
  assert.equal(rd.body.recovering, true);
  assert.match(rd.body.reason, /^recovering: the previous run of this replica stopped without a clean close/);
  const ev = await call(r.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: 'one', entityId: 'e', context: {} });
  assert.equal(ev.status, 200, 'it keeps serving what it has');
  assert.equal(ev.headers.get('x-edgeflag-recovering'), 'true', 'and says that it may be behind');
  await waitForLog(r, /reporting itself recovering/);

  await p.start(); // same port: the replica reconnects and catches up
  await waitFor('replica caught up and ready', async () => (await ready(r)).status === 200, 15000);
  assert.ok((await version(r)) >= v);
  const after = await ready(r);
  assert.equal(after.body.recovering, false);
  assert.equal(after.recovering, null, 'no recovering header once caught up');
});

test('kill -9 with entries in the open batch: recovering until caught up', async () => {
  const p = await started('primary3');
  // a batch that stays open for the whole test: nothing after the first dump is written
  const r = await started('replica3', { upstream: () => p.url, args: ['--replica-sync', '600000'] });
  const v0 = await createFlag(p, 'base');
  await waitFor('replica at v0', async () => (await version(r)) >= v0);
  let v = v0;
  for (let i = 0; i < 3; i++) v = await createFlag(p, `held${i}`);
  await waitFor('replica serving v', async () => (await version(r)) >= v);
  assert.equal(lockState(r), 'open', 'the batch holds entries not written to the file');
  const m = (await call(r.url, 'GET', '/metrics')).text;
  const unsynced = Number(/^edgeflag_replica_unsynced_entries (\d+)$/m.exec(m)[1]);
  assert.ok(unsynced >= 3, `the metrics show the entries not on disk yet: ${unsynced}`);
  assert.match(m, /^edgeflag_replica_batches_total 0$/m);
  await r.kill9();
  await p.stop();
  await r.start(); // same boot, but the open batch died with the process
  const h = await health(r);
  const after = h.version;
  assert.ok(after < v, `the batch was lost (restarted at ${after}, had served ${v})`);
  assert.equal(h.recovering, true, 'the lower version says so');
  const rd = await ready(r);
  assert.equal(rd.status, 503, JSON.stringify(rd.body));
  assert.equal(rd.body.recovering, true);
  await waitForLog(r, /reporting itself recovering/);
  await p.start();
  await waitFor('replica caught up and ready', async () => (await ready(r)).status === 200, 15000);
  assert.ok((await version(r)) >= v);
  assert.equal((await ready(r)).recovering, null);
  await r.stop();
  assert.equal(lockState(r), 'clean', 'a clean stop writes the batch and syncs it');
});

test('a chained replica ahead of its killed upstream keeps its state and follows on', async () => {
  const p = await started('primary4');
  // before the middle starts: its first dump is then at a seq other than 0, from which it can ask
  // for entries after a restart (a replica at seq 0 always asks for a dump)
  await createFlag(p, 'first');
  // r1's batch stays open: a kill takes back what r2 already got from it
  const r1 = await started('mid', { upstream: () => p.url, args: ['--replica-sync', '600000'] });
  const r2 = await started('edge', { upstream: () => r1.url });
  const v0 = await createFlag(p, 'c0');
  await waitFor('edge at v0', async () => (await version(r2)) >= v0, 10000);
  let v = v0;
  for (let i = 1; i < 4; i++) v = await createFlag(p, `c${i}`);
  await waitFor('edge at v', async () => (await version(r2)) >= v, 10000);
  const logBefore = r2.stderr.length;
  await r1.kill9();
  let lowest = Infinity;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      lowest = Math.min(lowest, await version(r2));
      await new Promise((res) => setTimeout(res, 5));
    }
  })();
  await r1.start(); // behind the edge now, recovering, and catching up from the primary
  const w = await createFlag(p, 'after');
  await waitFor('edge at the new write, through the restarted middle', async () => (await version(r2)) >= w, 15000);
  watching = false;
  await watcher;
  assert.ok(lowest >= v, `the edge never went back (lowest ${lowest}, had ${v})`);
  const edgeLog = r2.stderr.slice(logBefore);
  assert.doesNotMatch(edgeLog, /another history|behind this replica|loaded a full dump/, `${edgeLog}\n--- mid\n${r1.stderr}`);
  assert.equal((await ready(r1)).status, 200, 'the middle caught up');
});

test('kill -9 on the same boot once every entry is written, or a clean stop, is not a recovery', async () => {
  const p = await started('primary2');
  const r = await started('replica2', { upstream: () => p.url });
  const v = await createFlag(p, 'x');
  await waitFor('replica at v', async () => (await version(r)) >= v);
  // the batch is committed within --replica-sync (50 ms): the record then says so
  await waitFor('the batch written', async () => lockState(r) === 'written');
  await waitFor('the batch synced', async () => /^edgeflag_replica_unsynced_entries 0$/m.test((await call(r.url, 'GET', '/metrics')).text));
  await r.kill9();
  await p.stop();
  await r.start(); // same boot: the page cache kept every write
  assert.equal(await version(r), v, 'nothing written was lost to kill -9');
  let rd = await ready(r);
  assert.equal(rd.body.recovering, false, JSON.stringify(rd.body));
  assert.equal(rd.recovering, null);
  await r.stop();
  r.env.EDGEFLAG_BOOT_ID = 'boot-b'; // a clean stop synced everything: another boot changes nothing
  await r.start();
  rd = await ready(r);
  assert.equal(rd.body.recovering, false, JSON.stringify(rd.body));
});
