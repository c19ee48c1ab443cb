// cluster.test.mjs - edgeflag nodes on one libSQL database (the Turso setup), through the Hrana
// test peer: a write on one node is evaluated on the other within the poll bound; concurrent
// writes from both nodes are serialised by the database; the database killed and restarted: nodes
// keep evaluating from memory, writes fail with a clear 503, and everything resumes without
// restarting edgeflag; and database files move both ways between edgeflag's SQLite store and the
// libSQL server.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { call, edgeflagBin, startServer } from '../compat/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-libsql-cluster-'));
const POLL_MS = 200;
const BOUND_MS = 2000; // poll interval plus generous scheduling slack on 2 shared cores

// The peer as a child process, so it can be killed and restarted on the same port and file.
async function startPeer(db, port = 0) {
  const child = spawn(process.execPath, [path.join(here, 'peer.mjs'), '--db', db, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('peer did not start')), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (c) => reject(new Error('peer exited ' + c)));
  });
  const exited = new Promise((r) => child.on('exit', r));
  return { url, port: Number(new URL(url).port), kill: async (sig = 'SIGKILL') => (child.kill(sig), exited) };
}

const nodes = [];
async function node(name, dbUrl) {
  const srv = await startServer(['--db', dbUrl, '--db-cache', path.join(tmp, name + '.db'), '--db-poll', String(POLL_MS)], { dir: tmp });
  nodes.push(srv);
  return srv;
}

const peers = [];
after(async () => {
  for (const n of nodes) await n.stop();
  for (const p of peers) await p.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const flag = (key, enabled = true) => ({ key, name: key, enabled, type: 'BOOLEAN_FLAG_TYPE' });
const evalBool = (srv, key) => call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: key, entityId: 'u1' });

async function waitFor(fn, ms) {
  const t0 = Date.now();
  for (;;) {
    const r = await fn();
    if (r) return Date.now() - t0;
    if (Date.now() - t0 > ms) return null;
    await new Promise((res) => setTimeout(res, 20));
  }
}

test('two nodes on one database: a write on one is evaluated on the other within the bound', async () => {
  const peer = await startPeer(path.join(tmp, 'shared.db'));
  peers.push(peer);
  const iad = await node('iad', peer.url);
  const lhr = await node('lhr', peer.url);
  let r = await call(iad.url, 'POST', '/api/v1/namespaces/default/flags', flag('launch', true));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const took = await waitFor(async () => (await evalBool(lhr, 'launch')).json?.enabled === true, BOUND_MS);
  assert.notEqual(took, null, 'lhr never saw the flag created on iad');
  r = await call(lhr.url, 'PUT', '/api/v1/namespaces/default/flags/launch', flag('launch', false));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.notEqual(await waitFor(async () => (await evalBool(iad, 'launch')).json?.enabled === false, BOUND_MS), null);

  // concurrent writes from both nodes: the database serialises them, nothing is lost
  const writes = [];
  for (let i = 0; i < 12; i++) {
    writes.push(call(iad.url, 'POST', '/api/v1/namespaces/default/flags', flag(`iad-${i}`)));
    writes.push(call(lhr.url, 'POST', '/api/v1/namespaces/default/flags', flag(`lhr-${i}`)));
  }
  for (const w of await Promise.all(writes)) assert.equal(w.status, 200, JSON.stringify(w.json));
  // racing nodes: at least one write lost the race on the database, pulled the winner's entries
  // and was retried (the guard step is what serialises the nodes)
  assert.match(iad.stderr() + lhr.stderr(), /another node wrote first; pulling and retrying/);
  const keys = async (srv) => (await call(srv.url, 'GET', '/api/v1/namespaces/default/flags')).json.flags.map((f) => f.key).sort();
  const want = ['launch', ...Array.from({ length: 12 }, (_, i) => [`iad-${i}`, `lhr-${i}`]).flat()].sort();
  assert.notEqual(await waitFor(async () => JSON.stringify(await keys(iad)) === JSON.stringify(want) && JSON.stringify(await keys(lhr)) === JSON.stringify(want), BOUND_MS), null);

  // the database killed: evaluation goes on from memory, writes fail with a clear 503
  await peer.kill();
  assert.equal((await evalBool(iad, 'iad-3')).json.enabled, true);
  assert.equal((await evalBool(lhr, 'lhr-3')).json.enabled, true);
  r = await call(iad.url, 'POST', '/api/v1/namespaces/default/flags', flag('while-down'));
  assert.equal(r.status, 503, JSON.stringify(r.json));
  assert.match(r.json.message, /libsql http:\/\/127\.0\.0\.1:\d+/);
  assert.match(r.json.message, /not saved/);
  // restarted on the same port and file: writes resume without restarting edgeflag (stale batons
  // are reopened), and the other node picks the write up
  const again = await startPeer(path.join(tmp, 'shared.db'), peer.port);
  peers.push(again);
  r = await call(iad.url, 'POST', '/api/v1/namespaces/default/flags', flag('after-restart'));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.notEqual(await waitFor(async () => (await evalBool(lhr, 'after-restart')).json?.enabled === true, BOUND_MS), null);
  assert.equal((await evalBool(lhr, 'while-down')).status, 404);
});

test('database files move both ways between the SQLite store and the libSQL server', async () => {
  // written by edgeflag's SQLite store, served by the libSQL peer
  const yml = path.join(tmp, 'in.yml');
  fs.writeFileSync(yml, 'version: "1.4"\nnamespace:\n  key: default\nflags:\n  - key: from-sqlite\n    name: from-sqlite\n    type: BOOLEAN_FLAG_TYPE\n    enabled: true\n');
  const file = path.join(tmp, 'written-by-sqlite.db');
  let r = spawnSync(edgeflagBin, ['import', '--db', file, yml], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  let peer = await startPeer(file);
  peers.push(peer);
  const n1 = await node('n1', peer.url);
  assert.equal((await evalBool(n1, 'from-sqlite')).json.enabled, true);
  // written through the libSQL peer, opened by the SQLite store (which can keep writing: the
  // remote file carries the same schema, triggers included)
  r = await call(n1.url, 'POST', '/api/v1/namespaces/default/flags', flag('from-libsql'));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  await n1.stop();
  await peer.kill('SIGTERM');
  const local = await startServer(['--db', file], { dir: tmp });
  nodes.push(local);
  assert.equal((await evalBool(local, 'from-libsql')).json.enabled, true);
  assert.equal((await evalBool(local, 'from-sqlite')).json.enabled, true);
  r = await call(local.url, 'POST', '/api/v1/namespaces/default/flags', flag('sqlite-again'));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const exp = spawnSync(edgeflagBin, ['export', '--db', file], { encoding: 'utf8' });
  assert.match(exp.stdout, /sqlite-again/);
  await local.stop();
  // and back: the peer serves it again, a fresh node sees all three
  peer = await startPeer(file);
  peers.push(peer);
  const n2 = await node('n2', peer.url);
  for (const k of ['from-sqlite', 'from-libsql', 'sqlite-again']) assert.equal((await evalBool(n2, k)).json.enabled, true, k);
});

test('a node whose position was trimmed from the database recovers through a dump', async () => {
  const peer = await startPeer(path.join(tmp, 'trim.db'));
  peers.push(peer);
  const a = await node('trim-a', peer.url);
  let b = await node('trim-b', peer.url);
  assert.equal((await call(a.url, 'POST', '/api/v1/namespaces/default/flags', flag('before'))).status, 200);
  assert.notEqual(await waitFor(async () => (await evalBool(b, 'before')).status === 200, BOUND_MS), null);
  await b.stop();
  for (const k of ['t1', 't2', 't3']) assert.equal((await call(a.url, 'POST', '/api/v1/namespaces/default/flags', flag(k))).status, 200);
  // trim the database's change log past b's position, as retention would
  const { createClient } = await import('@libsql/client');
  const db = createClient({ url: peer.url });
  await db.batch(['DELETE FROM changelog', 'UPDATE ef_state SET trimmed = seq WHERE id = 1'], 'write');
  db.close();
  // b restarts on its cache (behind the trimmed position) and must take a dump, not a gap
  b = await startServer(['--db', peer.url, '--db-cache', path.join(tmp, 'trim-b.db'), '--db-poll', String(POLL_MS)], { dir: tmp });
  nodes.push(b);
  assert.notEqual(await waitFor(async () => (await evalBool(b, 't3')).status === 200, BOUND_MS), null, 'b never caught up');
  for (const k of ['before', 't1', 't2']) assert.equal((await evalBool(b, k)).status, 200);
  assert.match(b.stderr(), /loading a full dump/);
  const exportOf = (srv) => call(srv.url, 'GET', '/api/v1/namespaces/default/flags').then((r) => r.json.flags.map((f) => f.key).sort());
  assert.deepEqual(await exportOf(b), await exportOf(a));
  // and it keeps following after the dump
  assert.equal((await call(a.url, 'POST', '/api/v1/namespaces/default/flags', flag('after'))).status, 200);
  assert.notEqual(await waitFor(async () => (await evalBool(b, 'after')).status === 200, BOUND_MS), null);
});
