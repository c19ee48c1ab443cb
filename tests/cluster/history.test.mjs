// Issue 19, items 4 and 5: one process per database file, and history identity.
//  - a second `edgeflag serve` (or an `import`) on a file a server holds is refused, naming the
//    file and the holder's pid; `export` still reads it;
//  - a primary restarted on a FRESH database at the same address: its replica was on another
//    history, gets a full dump, and converges (it used to keep serving its old flags for ever);
//  - a primary restored from a backup (same history, behind its replica): the replica is sent a
//    dump and converges on the restored state;
//  - the same, but the restored primary took more writes than the replica was ahead before the
//    replica came back: the entry at the replica's position differs (fingerprint), so it still
//    gets a dump; also when the replica's position came from a dump and it applied nothing since
//    (a dump carries its last entry, which the replica keeps to show its position), while a
//    replica that reconnects to the same unchanged primary after a dump is not sent another.
// Read-your-writes across a change of history: a replica that forwards a write to a primary
// restarted on a fresh database counts the write as applied only once it is on the primary's new
// history (the answer's X-Edgeflag-History) at or past its version, not at its old history's
// higher numbers.
// And item 8 through the API: a rule or rollout over more than 256 segments is a 400 before the
// commit, changes nothing, and later writes to the namespace still reach evaluation.
// Every wait has a deadline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { node, stopAll, call, waitFor, version, exportState, tmpdir, waitForLog, waitingRequests } from './cluster.mjs';
import { startProxy, streamOnly } from './proxy.mjs';
import { edgeflagBin } from '../compat/server.mjs';

const nodes = [];
after(async () => {
  await stopAll(nodes);
});

function track(...ns) {
  nodes.push(...ns);
  return ns;
}

async function createFlag(n, key) {
  const r = await call(n.url, 'POST', '/api/v1/namespaces/default/flags', { key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  assert.equal(r.status, 200, `create ${key} on ${n.name}: ${r.text}`);
}

async function flagKeys(n) {
  const r = await call(n.url, 'GET', '/api/v1/namespaces/default/flags');
  assert.equal(r.status, 200, r.text);
  return r.json.flags.map((f) => f.key).sort().join(',');
}

// A primary with a, b, c (seq 3), its files copied aside as a backup while it was stopped, running
// again; restoreBackup puts those files back under it (a restore by copy: same history).
async function primaryWithBackup(name) {
  const [primary] = track(node(name));
  await primary.start();
  for (const k of ['a', 'b', 'c']) await createFlag(primary, k);
  await primary.stop();
  const backup = tmpdir(`ef-backup-${name}-`);
  for (const f of fs.readdirSync(primary.dir)) if (!f.endsWith('.lock')) fs.copyFileSync(path.join(primary.dir, f), path.join(backup, f));
  await primary.start();
  return { primary, backup };
}

async function restoreBackup(primary, backup) {
  await primary.stop();
  for (const f of fs.readdirSync(primary.dir)) fs.rmSync(path.join(primary.dir, f));
  for (const f of fs.readdirSync(backup)) fs.copyFileSync(path.join(backup, f), path.join(primary.dir, f));
  await primary.start();
}

test('a second serve or an import on a database a server holds is refused, naming the pid', { timeout: 20000 }, async () => {
  const [a] = track(node('holder'));
  await a.start();
  await createFlag(a, 'kept');
  const db = path.join(a.dir, 'edgeflag.db');
  const second = spawnSync(edgeflagBin, ['serve', '--listen', '127.0.0.1:0', '--db', db], { encoding: 'utf8', timeout: 10000 });
  assert.notEqual(second.status, 0, 'the second serve must not start');
  const want = `database ${db} is in use by another process (pid ${a.child.pid}`;
  assert.ok(second.stderr.includes(want), `stderr should name the file and pid: ${second.stderr}`);

  const yml = path.join(tmpdir('ef-hist-yml-'), 'f.yml');
  fs.writeFileSync(yml, 'version: "1.2"\nnamespace: default\nflags:\n- key: sneaky\n  name: sneaky\n  type: BOOLEAN_FLAG_TYPE\n');
  const imp = spawnSync(edgeflagBin, ['import', '--db', db, yml], { encoding: 'utf8', timeout: 10000 });
  assert.notEqual(imp.status, 0, 'import into a served file must be refused');
  assert.ok(imp.stderr.includes(want), imp.stderr);

  const exp = spawnSync(edgeflagBin, ['export', '--db', db], { encoding: 'utf8', timeout: 10000 });
  assert.equal(exp.status, 0, exp.stderr);
  assert.ok(exp.stdout.includes('kept'));
  assert.equal(await flagKeys(a), 'kept', 'nothing was written by the refused processes');

  // once the holder is gone the file is free
  await a.stop();
  const again = spawnSync(edgeflagBin, ['import', '--db', db, yml], { encoding: 'utf8', timeout: 10000 });
  assert.equal(again.status, 0, again.stderr);
});

test('a primary restarted on a fresh database: its replica reloads from a dump and converges', { timeout: 30000 }, async () => {
  const [primary] = track(node('primary'));
  await primary.start();
  for (const k of ['a', 'b', 'c', 'd', 'e']) await createFlag(primary, k);
  const [replica] = track(node('replica', { upstream: () => primary.url }));
  await replica.start();
  await waitFor('replica to follow a-e', async () => (await flagKeys(replica)) === 'a,b,c,d,e', 5000);
  const before = await version(replica);
  assert.equal(before, 5);

  // same address, a new database: another history
  await primary.stop();
  const fresh = node('primary2', { dir: tmpdir('ef-primary2-') });
  fresh.port = primary.port;
  track(fresh);
  await fresh.start();
  for (const k of ['x', 'y', 'z']) await createFlag(fresh, k);

  await waitFor('replica to converge to x,y,z', async () => (await flagKeys(replica)) === 'x,y,z', 10000);
  await waitFor('replica version to follow the new history', async () => (await version(replica)) === 3, 5000);
  assert.deepEqual(await exportState(replica), await exportState(fresh));
  await waitForLog(replica, /upstream is on another history/);
  await waitForLog(fresh, /downstream is on another history/);
  // and it keeps following the new history
  await createFlag(fresh, 'w');
  await waitFor('replica to apply a later write', async () => (await flagKeys(replica)) === 'w,x,y,z', 5000);
  // a replica of the replica (chain) ends on the same history too
  const [edge] = track(node('edge', { upstream: () => replica.url }));
  await edge.start();
  await waitFor('edge to follow the chain', async () => (await flagKeys(edge)) === 'w,x,y,z', 5000);
});

test('a replica reset to an empty dump (a fresh primary before its first write) serves the new state, not the old one', { timeout: 30000 }, async () => {
  const [primary] = track(node('primary0'));
  await primary.start();
  for (const k of ['a', 'b', 'c']) await createFlag(primary, k);
  const [replica] = track(node('replica0', { upstream: () => primary.url }));
  await replica.start();
  await waitFor('replica to follow a-c', async () => (await flagKeys(replica)) === 'a,b,c', 5000);

  // same address, a new database, and no write on it until the replica has taken its dump (seq 0)
  await primary.stop();
  const fresh = node('primary0b', { dir: tmpdir('ef-primary0b-') });
  fresh.port = primary.port;
  track(fresh);
  await fresh.start();
  await waitForLog(replica, /upstream is on another history/);
  await waitFor('replica to take the empty state', async () => (await flagKeys(replica)) === '', 5000);
  assert.deepEqual(await exportState(replica), await exportState(fresh));
  for (const k of ['x', 'y']) await createFlag(fresh, k);
  await waitFor('replica to follow x,y', async () => (await flagKeys(replica)) === 'x,y', 5000);
  await waitFor('replica version 2', async () => (await version(replica)) === 2, 5000);
  assert.deepEqual(await exportState(replica), await exportState(fresh));
});

// P with 5 writes and two replicas; P killed and started on a fresh database at the same address;
// a write through a replica before it has reconnected (its stream is held by a proxy, its
// forwarded writes pass). The new primary answers version 1 of the new history; the replica, at
// version 5 of the old one, took the write as applied and answered 200 while it served the old
// flags and 404 for the new one (attacker review). Now it waits until it is on the new history.
test('a write through a replica whose primary moved to a fresh history counts only once the replica is on it', { timeout: 40000 }, async () => {
  const [primary] = track(node('ryw-primary'));
  await primary.start();
  for (let i = 0; i < 5; i++) await createFlag(primary, `old${i}`);
  const proxy = await startProxy(primary.port, { only: streamOnly });
  after(() => proxy.close());
  const [patient] = track(node('ryw-patient', { upstream: proxy.url, args: ['--write-wait', '20000'] }));
  const [hasty] = track(node('ryw-hasty', { upstream: proxy.url, args: ['--write-wait', '300'] }));
  await patient.start();
  await hasty.start();
  for (const n of [patient, hasty]) await waitFor(`${n.name} at version 5`, async () => (await version(n)) === 5);

  await primary.kill9();
  proxy.blackhole(); // the replicas cannot reconnect (and take the new history's dump) until healed
  const fresh = node('ryw-primary2', { dir: tmpdir('ef-ryw-primary2-') });
  fresh.port = primary.port;
  track(fresh);
  await fresh.start();

  // a short write-wait runs out: the answer says so, with the write's version and its history
  const wh = await call(hasty.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'new1', name: 'new1', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  assert.equal(wh.status, 200, wh.text);
  assert.equal(wh.headers.get('x-edgeflag-write-applied'), 'false');
  assert.equal(wh.headers.get('x-edgeflag-write-version'), '1');
  const history = wh.headers.get('x-edgeflag-history');
  assert.match(history ?? '', /^[0-9a-f]+$/);

  // a long one waits until the replica is on the new history
  let answered = false;
  const pending = call(patient.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'new2', name: 'new2', type: 'BOOLEAN_FLAG_TYPE', enabled: true }).then((r) => ((answered = true), r));
  await waitFor('the replica to hold its answer', async () => (await waitingRequests(patient)) === 1, 10000);
  assert.equal(answered, false);
  proxy.heal();
  const wp = await pending;
  assert.equal(wp.status, 200, wp.text);
  assert.equal(wp.headers.get('x-edgeflag-write-applied'), null);
  assert.equal(wp.headers.get('x-edgeflag-history'), history);
  assert.equal((await call(patient.url, 'GET', '/api/v1/namespaces/default/flags/new2')).status, 200, 'the new flag is served');
  assert.equal((await call(patient.url, 'GET', '/api/v1/namespaces/default/flags/old4')).status, 404, 'the old history is gone');
  // the fresh primary names the same history on its own write answers
  const direct = await call(fresh.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'new3', name: 'new3', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  assert.equal(direct.headers.get('x-edgeflag-history'), history);
  await waitFor('the hasty replica to reach the new history too', async () => (await flagKeys(hasty)) === 'new1,new2,new3', 10000);
});

test('a primary restored from a backup (same history, behind): its replica takes the restored state', { timeout: 30000 }, async () => {
  const { primary, backup } = await primaryWithBackup('restored');
  for (const k of ['d', 'e']) await createFlag(primary, k);
  const [replica] = track(node('replica-r', { upstream: () => primary.url }));
  await replica.start();
  await waitFor('replica to follow a-e', async () => (await flagKeys(replica)) === 'a,b,c,d,e', 5000);

  await restoreBackup(primary, backup);
  await waitFor('replica to take the restored state', async () => (await flagKeys(replica)) === 'a,b,c', 10000);
  assert.equal(await version(replica), 3);
  await waitForLog(replica, /upstream is behind this replica on the same history/);
  assert.deepEqual(await exportState(replica), await exportState(primary));
});

test('a restored primary that took other writes past the replica\'s position: the diverged replica reloads', { timeout: 30000 }, async () => {
  const { primary, backup } = await primaryWithBackup('restored2');
  const [replica] = track(node('replica-d', { upstream: () => primary.url }));
  await replica.start();
  for (const k of ['d', 'e']) await createFlag(primary, k);
  await waitFor('replica to follow a-e', async () => (await flagKeys(replica)) === 'a,b,c,d,e', 5000);
  await replica.stop();

  await restoreBackup(primary, backup);
  for (const k of ['p', 'q', 'r']) await createFlag(primary, k); // seq 6: past the replica's 5
  await replica.start();
  await waitFor('the diverged replica to take the primary\'s state', async () => (await flagKeys(replica)) === 'a,b,c,p,q,r', 10000)
    .catch((e) => { /* what each node did, for a failure seen once in CI and not since */
      e.message += `\nreplica: ${replica.stderr.slice(-3000)}\nprimary: ${primary.stderr.slice(-3000)}`;
      throw e;
    });
  await waitForLog(primary, /downstream holds another entry at its position/);
  assert.deepEqual(await exportState(replica), await exportState(primary));
});

test('a replica whose position came from a dump: a restored primary past it still makes it reload; an unchanged one sends no second dump', { timeout: 40000 }, async () => {
  const { primary, backup } = await primaryWithBackup('restored3');
  for (const k of ['d', 'e']) await createFlag(primary, k); // seq 5, before the replica exists
  const [replica] = track(node('replica-dump', { upstream: () => primary.url }));
  await replica.start();
  await waitFor('replica to load a-e', async () => (await flagKeys(replica)) === 'a,b,c,d,e', 10000);
  await waitForLog(replica, /loaded a full dump from upstream.*seq=5/);
  // the same primary, unchanged: the replica reconnects at its position without another dump
  await replica.stop();
  await replica.start();
  await createFlag(primary, 'f');
  await waitFor('replica to follow f', async () => (await flagKeys(replica)) === 'a,b,c,d,e,f', 10000);
  const dumps = primary.stderr.match(/sent a full dump downstream/g) ?? [];
  assert.equal(dumps.length, 1, `one dump (the bootstrap), got ${dumps.length}:\n${primary.stderr.slice(-3000)}`);
  // f again, as a dump: the replica's position (6) comes from a dump once more
  await replica.stop();
  fs.rmSync(replica.dir, { recursive: true, force: true });
  fs.mkdirSync(replica.dir);
  await replica.start();
  await waitFor('replica to load a-f', async () => (await flagKeys(replica)) === 'a,b,c,d,e,f', 10000);
  await replica.stop();

  // the primary restored to seq 3, then four other writes: seq 7, past the replica's 6
  await restoreBackup(primary, backup);
  for (const k of ['p', 'q', 'r', 's']) await createFlag(primary, k);
  await replica.start();
  await waitFor('the diverged replica to take the primary\'s state', async () => (await flagKeys(replica)) === 'a,b,c,p,q,r,s', 10000)
    .catch(async (e) => {
      e.message += `\nreplica has ${await flagKeys(replica)}\nreplica: ${replica.stderr.slice(-3000)}\nprimary: ${primary.stderr.slice(-3000)}`;
      throw e;
    });
  await waitForLog(primary, /downstream holds another entry at its position/);
  assert.deepEqual(await exportState(replica), await exportState(primary));
});

test('a chained replica one entry behind a replica that reloaded after a restore: it reloads too', { timeout: 60000 }, async () => {
  const { primary, backup } = await primaryWithBackup('restored4');
  const [mid] = track(node('mid', { upstream: () => primary.url }));
  await mid.start();
  const [leaf] = track(node('leaf', { upstream: () => mid.url }));
  await leaf.start();
  for (const k of ['d', 'e', 'f']) await createFlag(primary, k); // seq 6
  await waitFor('the chain to follow a-f', async () => (await flagKeys(leaf)) === 'a,b,c,d,e,f', 10000);
  await leaf.stop();
  await mid.stop();
  await restoreBackup(primary, backup); // seq 3, then four other writes: seq 7
  for (const k of ['p', 'q', 'r', 's']) await createFlag(primary, k);
  // mid holds another entry at 6: it reloads, its log starting with the dump's entry 7
  await mid.start();
  await waitFor('mid to take the primary\'s state', async () => (await flagKeys(mid)) === 'a,b,c,p,q,r,s', 10000);
  // leaf, at 6 on the old branch, is one before mid's first entry: it must not get 7 on top
  await leaf.start();
  await waitFor('leaf to take the primary\'s state', async () => (await flagKeys(leaf)) === 'a,b,c,p,q,r,s', 10000)
    .catch(async (e) => {
      e.message += `\nleaf has ${await flagKeys(leaf)}\nmid: ${mid.stderr.slice(-3000)}`;
      throw e;
    });
  assert.deepEqual(await exportState(leaf), await exportState(primary));
});

// Review of the sync code (bug 1): in both tests below the chain's streams stay up while the
// middle node reloads, so the leaf never reconnects on its own. Before the fix the middle node's
// feed checked a stream's history and position once, when it connected: after the middle node
// loaded the new primary's dump, the leaf was sent the new history's entries on top of its old
// flags (new5..new7 with old0..old4 in a review run), reported the same version and /ready 200,
// for ever. Now a node that loads a dump ends every stream it had checked against its old state,
// and each follower reconnects and is checked against the new one.
test('a chained replica stays connected while its upstream reloads onto a new history: it reloads too', { timeout: 30000 }, async () => {
  const [primary] = track(node('chain-p'));
  await primary.start();
  const [mid] = track(node('chain-mid', { upstream: () => primary.url }));
  await mid.start();
  const [leaf] = track(node('chain-leaf', { upstream: () => mid.url }));
  await leaf.start();
  for (let i = 0; i < 5; i++) await createFlag(primary, `old${i}`);
  await waitFor('leaf to follow old0-old4', async () => (await version(leaf)) === 5, 5000);

  // same address, a new database: mid reloads (another history); its stream to leaf is still up
  await primary.kill9();
  const fresh = node('chain-p2', { dir: tmpdir('ef-chain-p2-') });
  fresh.port = primary.port;
  track(fresh);
  await fresh.start();
  await waitFor('mid to take the empty state', async () => (await flagKeys(mid)) === '', 10000);
  const want = [];
  for (let i = 0; i < 8; i++) {
    await createFlag(fresh, `new${i}`);
    want.push(`new${i}`);
  }
  await waitFor('leaf to hold exactly new0-new7', async () => (await flagKeys(leaf)) === want.join(','), 10000)
    .catch(async (e) => {
      e.message += `\nleaf has ${await flagKeys(leaf)}\nmid: ${mid.stderr.slice(-3000)}\nleaf: ${leaf.stderr.slice(-3000)}`;
      throw e;
    });
  assert.deepEqual(await exportState(leaf), await exportState(fresh));
  await waitForLog(mid, /ended every downstream stream/);
});

test('a chained replica stays connected while its upstream reloads from a restored primary (same history, behind): it reloads too', { timeout: 30000 }, async () => {
  const { primary, backup } = await primaryWithBackup('restored5');
  const [mid] = track(node('mid5', { upstream: () => primary.url }));
  await mid.start();
  const [leaf] = track(node('leaf5', { upstream: () => mid.url }));
  await leaf.start();
  for (const k of ['d', 'e']) await createFlag(primary, k); // seq 5
  await waitFor('leaf to follow a-e', async () => (await flagKeys(leaf)) === 'a,b,c,d,e', 10000);

  await restoreBackup(primary, backup); // seq 3 on the same history: mid reloads, leaf stays connected
  await waitFor('mid to take the restored state', async () => (await flagKeys(mid)) === 'a,b,c', 10000);
  // no write follows: leaf is ahead of mid on its history, and only mid knows that its 4 and 5 are gone
  await waitFor('leaf to take the restored state', async () => (await flagKeys(leaf)) === 'a,b,c', 10000)
    .catch(async (e) => {
      e.message += `\nleaf has ${await flagKeys(leaf)}\nmid: ${mid.stderr.slice(-3000)}`;
      throw e;
    });
  assert.equal(await version(leaf), 3);
  for (const k of ['x', 'y', 'z']) await createFlag(primary, k);
  await waitFor('leaf to follow x,y,z', async () => (await flagKeys(leaf)) === 'a,b,c,x,y,z', 10000);
  assert.deepEqual(await exportState(leaf), await exportState(primary));
});

test('a rule or rollout with more than 256 segments is refused before the commit; the namespace keeps working', { timeout: 30000 }, async () => {
  const dir = tmpdir('ef-segs-');
  const yml = path.join(dir, 'segs.yml');
  let y = 'version: "1.2"\nnamespace: default\nflags:\n- key: big\n  name: big\n  type: VARIANT_FLAG_TYPE\n  enabled: true\n- key: bool\n  name: bool\n  type: BOOLEAN_FLAG_TYPE\n  enabled: true\nsegments:\n';
  for (let i = 0; i < 257; i++) y += `- key: s${i}\n  name: s${i}\n  match_type: ANY_MATCH_TYPE\n`;
  fs.writeFileSync(yml, y);
  const imp = spawnSync(edgeflagBin, ['import', '--db', path.join(dir, 'edgeflag.db'), yml], { encoding: 'utf8', timeout: 10000 });
  assert.equal(imp.status, 0, imp.stderr);
  const [n] = track(node('segs', { dir }));
  await n.start();
  const before = await exportState(n);
  const v0 = await version(n);
  const keys = Array.from({ length: 257 }, (_, i) => `s${i}`);
  let r = await call(n.url, 'POST', '/api/v1/namespaces/default/flags/big/rules', { segmentKeys: keys, segmentOperator: 'AND_SEGMENT_OPERATOR', rank: 1 });
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.message, /at most 256 distinct segments, got 257/);
  r = await call(n.url, 'POST', '/api/v1/namespaces/default/flags/bool/rollouts', { rank: 1, segment: { segmentKeys: keys, segmentOperator: 'AND_SEGMENT_OPERATOR', value: true } });
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.message, /at most 256 distinct segments, got 257/);
  assert.equal(await version(n), v0);
  assert.deepEqual(await exportState(n), before);
  // exactly 256 is fine, and so is everything after it
  r = await call(n.url, 'POST', '/api/v1/namespaces/default/flags/big/rules', { segmentKeys: keys.slice(0, 256), segmentOperator: 'AND_SEGMENT_OPERATOR', rank: 1 });
  assert.equal(r.status, 200, r.text);
  await createFlag(n, 'later');
  r = await call(n.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: 'later', entityId: 'e1', context: {} });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.enabled, true);
});
