// Issue 11: a replica applies entries in memory first and syncs its file in batches
// (--replica-sync). A process crash loses nothing; a machine crash can take back what the last
// interval applied. Such a replica must never answer with an older version than it answered
// before without saying so (docs/replication.md, "After a crash").
//
// A power loss is simulated on disk: the replica's files are put back to what an earlier sync left
// (state at v1) while its lock file says what a machine crash leaves ("open", batched, the old boot
// id), and it restarts under another boot id (EDGEFLAG_BOOT_ID stands in for
// /proc/sys/kernel/random/boot_id). With its primary down it serves v1 but says it is recovering
// (/ready 503, X-Edgeflag-Recovering on every answer); once it has caught up it is ready again.
// Control cases: a kill -9 on the same boot, and a clean stop, are not "recovering".
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { node, stopAll, call, waitFor, version } from './cluster.mjs';

const nodes = [];
after(async () => {
  await stopAll(nodes);
});

async function createFlag(n, key) {
  const r = await call(n.url, 'POST', '/api/v1/namespaces/default/flags', { key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  assert.equal(r.status, 200, `create ${key}: ${r.text}`);
  return Number(r.headers.get('x-edgeflag-version'));
}

const dbFiles = (dir) => fs.readdirSync(dir).filter((f) => f.startsWith('edgeflag.db'));

async function ready(n) {
  const r = await call(n.url, 'GET', '/ready');
  return { status: r.status, body: r.json, recovering: r.headers.get('x-edgeflag-recovering') };
}

test('a replica after a simulated power loss says it is recovering until it has caught up', async () => {
  const p = node('primary');
  nodes.push(p);
  await p.start();
  const r = node('replica', { upstream: () => p.url, args: ['--replica-sync', '20'], env: { EDGEFLAG_BOOT_ID: 'boot-a' } });
  nodes.push(r);
  await r.start();
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
  assert.match(lockWhileRunning, /boot=boot-a\nbatched=1\nstate=open/);
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
  assert.match(rd.body.reason, /^recovering: the machine restarted/);
  const ev = await call(r.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: 'one', entityId: 'e', context: {} });
  assert.equal(ev.status, 200, 'it keeps serving what it has');
  assert.equal(ev.headers.get('x-edgeflag-recovering'), 'true', 'and says that it may be behind');
  assert.match(r.stderr, /reporting itself recovering/);

  await p.start(); // same port: the replica reconnects and catches up
  await waitFor('replica caught up and ready', async () => (await ready(r)).status === 200, 15000);
  assert.ok((await version(r)) >= v);
  const after = await ready(r);
  assert.equal(after.body.recovering, false);
  assert.equal(after.recovering, null, 'no recovering header once caught up');
});

test('kill -9 on the same boot, or a clean stop, is not a recovery', async () => {
  const p = node('primary2');
  nodes.push(p);
  await p.start();
  const r = node('replica2', { upstream: () => p.url, env: { EDGEFLAG_BOOT_ID: 'boot-a' } });
  nodes.push(r);
  await r.start();
  const v = await createFlag(p, 'x');
  await waitFor('replica at v', async () => (await version(r)) >= v);
  await r.kill9();
  await p.stop();
  await r.start(); // same boot: the page cache kept every write
  assert.equal(await version(r), v, 'nothing applied was lost to kill -9');
  let rd = await ready(r);
  assert.equal(rd.body.recovering, false, JSON.stringify(rd.body));
  assert.equal(rd.recovering, null);
  await r.stop();
  r.env.EDGEFLAG_BOOT_ID = 'boot-b'; // a clean stop synced everything: another boot changes nothing
  await r.start();
  rd = await ready(r);
  assert.equal(rd.body.recovering, false, JSON.stringify(rd.body));
});
