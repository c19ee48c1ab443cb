// peer.test.mjs - proves the Hrana test peer with a real third-party client before edgeflag is
// tested against it: @libsql/client's own execute, batch, transaction, executeMultiple and migrate,
// plus the protocol details edgeflag relies on (decltypes, value encoding, batons, expiry, auth).
// A test here must fail when the peer deviates from what sqld does on the wire.
import { createClient } from '@libsql/client';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startPeer } from './peer.mjs';

let peer, client, tmp;
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-peer-'));
  peer = await startPeer({ db: path.join(tmp, 'db.sqlite'), token: 'sekret', streamExpiryMs: 300 });
  client = createClient({ url: peer.url, authToken: 'sekret' });
});
after(async () => {
  client.close();
  await peer.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('execute: DDL, positional and named args, bool, Date, blob, decltypes', async () => {
  await client.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, on_ BOOLEAN, at TIMESTAMP, r REAL, b BLOB, s TEXT)');
  const ins = await client.execute({ sql: 'INSERT INTO t(on_, at, r, b, s) VALUES (?, ?, ?, ?, ?)', args: [true, new Date(1700000000000), 0.5, new Uint8Array([1, 2, 255]), 'x'] });
  assert.equal(ins.rowsAffected, 1);
  assert.equal(ins.lastInsertRowid, 1n);
  await client.execute({ sql: 'INSERT INTO t(on_, s) VALUES (:on, @s)', args: { on: false, s: 'named' } });
  const rs = await client.execute('SELECT id, on_, at, r, b, s FROM t ORDER BY id');
  assert.deepEqual(rs.columnTypes, ['INTEGER', 'BOOLEAN', 'TIMESTAMP', 'REAL', 'BLOB', 'TEXT']);
  assert.equal(rs.rows.length, 2);
  assert.equal(rs.rows[0].on_, 1);
  assert.equal(rs.rows[0].at, 1700000000000);
  assert.equal(rs.rows[0].r, 0.5);
  assert.deepEqual([...new Uint8Array(rs.rows[0].b)], [1, 2, 255]);
  assert.equal(rs.rows[1].on_, 0);
  assert.equal(rs.rows[1].s, 'named');
});

test('batch("write") is atomic: a failing step rolls back the earlier ones', async () => {
  await client.batch(['CREATE TABLE u(k TEXT PRIMARY KEY)', "INSERT INTO u VALUES ('a')"], 'write');
  await assert.rejects(client.batch(["INSERT INTO u VALUES ('b')", "INSERT INTO u VALUES ('a')"], 'write'), /UNIQUE/);
  const rs = await client.execute('SELECT k FROM u ORDER BY k');
  assert.deepEqual(rs.rows.map((r) => r.k), ['a']);
});

test('interactive transaction chains batons; rollback discards', async () => {
  const tx = await client.transaction('write');
  await tx.execute("INSERT INTO u VALUES ('c')");
  const mid = await tx.execute('SELECT count(*) AS n FROM u');
  assert.equal(mid.rows[0].n, 2);
  await tx.rollback();
  const tx2 = await client.transaction('write');
  await tx2.execute("INSERT INTO u VALUES ('d')");
  await tx2.commit();
  const rs = await client.execute('SELECT k FROM u ORDER BY k');
  assert.deepEqual(rs.rows.map((r) => r.k), ['a', 'd']);
});

test('executeMultiple and migrate', async () => {
  await client.executeMultiple("CREATE TABLE m1(x); INSERT INTO m1 VALUES (1); INSERT INTO m1 VALUES (2);");
  assert.equal((await client.execute('SELECT count(*) AS n FROM m1')).rows[0].n, 2);
  await client.migrate(['CREATE TABLE m2(y)', 'INSERT INTO m2 VALUES (3)']);
  assert.equal((await client.execute('SELECT y FROM m2')).rows[0].y, 3);
});

test('errors carry the SQLite code', async () => {
  await assert.rejects(client.execute('SELECT * FROM nope'), (e) => e.code === 'SQLITE_ERROR' && /no such table/.test(e.message));
});

test('wire: auth, version probes, baton reuse, expiry, integer encoding', async () => {
  const post = (p, body, auth = 'Bearer sekret') =>
    fetch(peer.url + p, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await post('/v2/pipeline', { requests: [] }, 'Bearer wrong')).status, 401);
  assert.equal((await fetch(peer.url + '/v3', { headers: { authorization: 'Bearer sekret' } })).status, 200);
  let r = await (await post('/v3/pipeline', { baton: null, requests: [{ type: 'execute', stmt: { sql: 'SELECT ?1 + 1 AS v', args: [{ type: 'integer', value: '9007199254740993' }] } }, { type: 'get_autocommit' }] })).json();
  assert.deepEqual(r.results[0].response.result.rows[0][0], { type: 'integer', value: '9007199254740994' });
  assert.equal(r.results[1].response.is_autocommit, true);
  const baton = r.baton;
  assert.equal((await post('/v3/pipeline', { baton, requests: [] })).status, 200);
  const reused = await post('/v3/pipeline', { baton, requests: [] });
  assert.equal(reused.status, 400);
  assert.match(await reused.text(), /already been used/);
  const bad = await post('/v2/pipeline', { baton: 'garbage', requests: [] });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /invalid baton/);
  r = await (await post('/v2/pipeline', { baton: null, requests: [] })).json();
  await new Promise((res) => setTimeout(res, 500));
  const exp = await post('/v2/pipeline', { baton: r.baton, requests: [] });
  assert.equal(exp.status, 400);
  assert.equal((await exp.json()).code, 'STREAM_EXPIRED');
});
