// Flipt's static-token authentication: the bootstrap token, tokens created through
// POST /auth/v1/method/token (stored hashed; optional expiry and namespace scope), listing and
// revoking them, excluded route classes, and the routes that stay open.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { startServer, call, edgeflagBin } from './server.mjs';
import { tempDir } from './tmp.mjs';

const BOOT = 'bootstrap-token';
let srv;
const as = (t) => ({ authorization: `Bearer ${t}` });

before(async () => {
  srv = await startServer(['--auth-token', BOOT, '--auth-exclude', 'ofrep']);
  for (const ns of ['team-a', 'team-b']) {
    assert.equal((await call(srv.url, 'POST', '/api/v1/namespaces', { key: ns, name: ns }, as(BOOT))).status, 200);
    assert.equal((await call(srv.url, 'POST', `/api/v1/namespaces/${ns}/flags`, { key: 'f', name: 'F', type: 'BOOLEAN_FLAG_TYPE', enabled: true }, as(BOOT))).status, 200);
  }
});
after(async () => {
  await srv.stop();
});

test('created tokens work, are listed without their secret, and can be revoked', async () => {
  const r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'ci', description: 'for CI' }, as(BOOT));
  assert.equal(r.status, 200);
  const token = r.json.clientToken;
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(r.json.authentication.method, 'METHOD_TOKEN');
  assert.equal(r.json.authentication.metadata['io.flipt.auth.token.name'], 'ci');
  assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/team-a/flags', undefined, as(token))).status, 200);
  const list = await call(srv.url, 'GET', '/auth/v1/tokens', undefined, as(token));
  assert.equal(list.status, 200);
  assert.ok(list.json.authentications.some((a) => a.id === r.json.authentication.id));
  assert.ok(!list.text.includes(token), 'a token secret was listed');
  const one = await call(srv.url, 'GET', `/auth/v1/tokens/${r.json.authentication.id}`, undefined, as(token));
  assert.equal(one.json.id, r.json.authentication.id);
  assert.equal((await call(srv.url, 'DELETE', `/auth/v1/tokens/${r.json.authentication.id}`, undefined, as(BOOT))).status, 200);
  const after = await call(srv.url, 'GET', '/api/v1/namespaces/team-a/flags', undefined, as(token));
  assert.equal(after.status, 401);
  assert.deepEqual(after.json, { code: 16, message: 'request was not authenticated', details: [] });
  assert.equal((await call(srv.url, 'DELETE', `/auth/v1/tokens/${r.json.authentication.id}`, undefined, as(BOOT))).status, 404);
});

test('namespace-scoped tokens reach only their namespace (outside it: Flipt\'s 401)', async () => {
  const r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'a-only', namespaceKey: 'team-a' }, as(BOOT));
  assert.equal(r.status, 200);
  const t = r.json.clientToken;
  const refused = async (method, p, body, headers = {}) => {
    const res = await call(srv.url, method, p, body, { ...as(t), ...headers });
    assert.equal(res.status, 401, `${method} ${p}: ${res.text}`);
    assert.deepEqual(res.json, { code: 16, message: 'request was not authenticated', details: [] });
  };
  assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/team-a/flags', undefined, as(t))).status, 200);
  await refused('GET', '/api/v1/namespaces/team-b/flags');
  assert.equal((await call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'team-a', flagKey: 'f', entityId: 'e' }, as(t))).status, 200);
  await refused('POST', '/evaluate/v1/boolean', { namespaceKey: 'team-b', flagKey: 'f', entityId: 'e' });
  await refused('POST', '/evaluate/v1/batch', { requests: [{ namespaceKey: 'team-b', flagKey: 'f', entityId: 'e' }] });
  assert.equal((await call(srv.url, 'GET', '/internal/v1/evaluation/snapshot/namespace/team-a', undefined, as(t))).status, 200);
  await refused('GET', '/internal/v1/evaluation/snapshot/namespace/team-b');
  // regressions (issue 19 item 3): these routes name the namespace "key" and "ns", not "namespaceKey"
  assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/team-a', undefined, as(t))).status, 200);
  await refused('GET', '/api/v1/namespaces/team-b');
  await refused('PUT', '/api/v1/namespaces/team-b', { name: 'taken over' });
  await refused('DELETE', '/api/v1/namespaces/team-b');
  await refused('GET', '/edgeflag/v1/namespaces/team-b/stream');
  assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/team-b', undefined, as(BOOT))).json.name, 'team-b');
  // /api/v1/<x> takes the namespace from the query or body, as Flipt's gateway does
  assert.equal((await call(srv.url, 'GET', '/api/v1/flags?namespaceKey=team-a', undefined, as(t))).status, 200);
  await refused('GET', '/api/v1/flags?namespaceKey=team-b');
  await refused('GET', '/api/v1/flags'); // "default"
  await refused('POST', '/api/v1/flags', { namespaceKey: 'team-b', key: 'g', name: 'G', type: 'BOOLEAN_FLAG_TYPE' });
  await refused('DELETE', '/api/v1/flags/f?namespaceKey=team-b');
  assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/team-b/flags/f', undefined, as(BOOT))).status, 200);
  // OFREP: the X-Flipt-Namespace header (this server excludes OFREP from auth: checked in routes.test.mjs)
  // routes about every namespace: refused to a scoped token, as in Flipt
  await refused('GET', '/api/v1/namespaces');
  await refused('POST', '/api/v1/namespaces', { key: 'team-c', name: 'c' });
  await refused('GET', '/auth/v1/tokens');
  await refused('GET', '/auth/v1/self');
  await refused('GET', '/meta/info');
  assert.equal((await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'x', namespaceKey: 'nope' }, as(BOOT))).status, 404);
});

test('/auth/v1/self is the calling token (regression: it was a fixed identity whatever the token)', async () => {
  const created = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'me', description: 'who am I' }, as(BOOT));
  assert.equal(created.status, 200);
  const self = await call(srv.url, 'GET', '/auth/v1/self', undefined, as(created.json.clientToken));
  assert.equal(self.status, 200, self.text);
  assert.deepEqual(self.json, created.json.authentication);
  assert.equal(self.json.metadata['io.flipt.auth.token.name'], 'me');
  assert.equal(self.json.metadata['io.flipt.auth.token.description'], 'who am I');
  const other = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'other' }, as(BOOT));
  assert.equal((await call(srv.url, 'GET', '/auth/v1/self', undefined, as(other.json.clientToken))).json.id, other.json.authentication.id);
  const boot = await call(srv.url, 'GET', '/auth/v1/self', undefined, as(BOOT));
  assert.equal(boot.status, 200);
  assert.equal(boot.json.id, 'bootstrap');
  assert.equal(boot.json.method, 'METHOD_TOKEN');
  assert.equal(boot.json.expiresAt, null);
  assert.ok(!Number.isNaN(Date.parse(boot.json.createdAt)));
  for (const headers of [{}, as('not-a-token')]) {
    const r = await call(srv.url, 'GET', '/auth/v1/self', undefined, headers);
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { code: 16, message: 'request was not authenticated', details: [] });
  }
  // revoked: nobody
  assert.equal((await call(srv.url, 'DELETE', `/auth/v1/tokens/${created.json.authentication.id}`, undefined, as(BOOT))).status, 200);
  assert.equal((await call(srv.url, 'GET', '/auth/v1/self', undefined, as(created.json.clientToken))).status, 401);
});

test('/auth/v1/self with authentication off: 401 (there is no caller)', async () => {
  const open = await startServer([]);
  try {
    const r = await call(open.url, 'GET', '/auth/v1/self');
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { code: 16, message: 'request was not authenticated', details: [] });
  } finally {
    await open.stop();
  }
});

test('expiry: past times are refused, future ones accepted', async () => {
  let r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'old', expiresAt: '2001-01-01T00:00:00Z' }, as(BOOT));
  assert.equal(r.status, 400);
  r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'soon', expiresAt: new Date(Date.now() + 3600e3).toISOString() }, as(BOOT));
  assert.equal(r.status, 200);
  assert.ok(r.json.authentication.expiresAt);
  assert.equal((await call(srv.url, 'GET', '/api/v1/flags', undefined, as(r.json.clientToken))).status, 200);
  // Regression: the fraction was dropped, so an expiry under a second ahead whose whole second
  // had already begun was refused as past. Wait until the clock is early in a second, then ask
  // for 800 ms ahead: the same second, later in it (and should a slow machine cross into the
  // next one, the expiry given back must still be the one asked for, to the millisecond).
  await new Promise((res) => setTimeout(res, (1100 - (Date.now() % 1000)) % 1000));
  const soon = new Date(Date.now() + 800);
  r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'sub-second', expiresAt: soon.toISOString() }, as(BOOT));
  assert.equal(r.status, 200, r.text);
  assert.equal(Date.parse(r.json.authentication.expiresAt), soon.getTime());
  r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: '', description: 'x' }, as(BOOT));
  assert.equal(r.status, 400);
  r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'x', expiresAt: 'tomorrow' }, as(BOOT));
  assert.equal(r.status, 400);
});

test('open and excluded routes; creating tokens needs a token', async () => {
  assert.equal((await call(srv.url, 'GET', '/health')).status, 200);
  assert.equal((await call(srv.url, 'GET', '/metrics')).status, 200);
  assert.equal((await call(srv.url, 'GET', '/auth/v1/method')).json.methods[0].enabled, true);
  assert.equal((await call(srv.url, 'POST', '/ofrep/v1/evaluate/flags/f', { context: { targetingKey: 'e' } }, { 'x-flipt-namespace': 'team-a' })).status, 200);
  assert.equal((await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'sneaky' })).status, 401);
  assert.equal((await call(srv.url, 'GET', '/auth/v1/tokens')).status, 401);
});

test('tokens are stored as hashes only', async () => {
  const r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'secret-check' }, as(BOOT));
  const db = path.join(srv.dir, 'edgeflag.db');
  const dump = spawnSync('sqlite3', [db, 'SELECT hashed_token FROM tokens; SELECT entry FROM changelog;'], { encoding: 'utf8' });
  assert.equal(dump.status, 0, dump.stderr);
  assert.ok(!dump.stdout.includes(r.json.clientToken), 'the token secret is in the database');
});

test('token lists page (regression: the next page used to be lost)', async () => {
  for (const name of ['page-a', 'page-b']) assert.equal((await call(srv.url, 'POST', '/auth/v1/method/token', { name }, as(BOOT))).status, 200);
  const all = (await call(srv.url, 'GET', '/auth/v1/tokens', undefined, as(BOOT))).json.authentications;
  const seen = [];
  let page = (await call(srv.url, 'GET', '/auth/v1/tokens?limit=1', undefined, as(BOOT))).json;
  seen.push(...page.authentications.map((a) => a.id));
  while (page.nextPageToken) {
    page = (await call(srv.url, 'GET', `/auth/v1/tokens?limit=1&pageToken=${encodeURIComponent(page.nextPageToken)}`, undefined, as(BOOT))).json;
    seen.push(...page.authentications.map((a) => a.id));
  }
  assert.deepEqual(seen, all.map((a) => a.id));
  assert.ok(seen.length >= 2);
});

test("expired tokens are deleted after the grace period, as Flipt's cleanup does (auth-token-cleanup-*)", async () => {
  const dir = tempDir('ef-cleanup-');
  const auditLog = path.join(dir, 'audit.log');
  const s = await startServer(['--auth-token', BOOT, '--auth-token-cleanup-interval', '1', '--auth-token-cleanup-grace-period', '2', '--audit-log', auditLog]);
  try {
    const make = async (name, expiresAt) => {
      const r = await call(s.url, 'POST', '/auth/v1/method/token', expiresAt ? { name, expiresAt } : { name }, as(BOOT));
      assert.equal(r.status, 200, r.text);
      return r.json.authentication.id;
    };
    const t0 = Date.now();
    const short = await make('short', new Date(t0 + 1000).toISOString());
    const hour = await make('hour', new Date(t0 + 3600e3).toISOString());
    const never = await make('never');
    const ids = async () => (await call(s.url, 'GET', '/auth/v1/tokens', undefined, as(BOOT))).json.authentications.map((a) => a.id);
    // expired after 1 s, but within the 2 s grace period it stays (and is refused as expired)
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok((await ids()).includes(short), 'deleted before its grace period ended');
    let left;
    for (let i = 0; i < 80; i++) {
      left = await ids();
      if (!left.includes(short)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(!left.includes(short), 'the expired token was not deleted');
    assert.ok(Date.now() - t0 >= 3000, 'deleted before expiry + grace');
    assert.ok(left.includes(hour) && left.includes(never), 'a token that has not expired was deleted');
    // the deletion is a write like any other: its audit event says this node's cleanup made it
    let ev;
    for (let i = 0; i < 50 && !ev; i++) {
      ev = fs.readFileSync(auditLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
        .find((e) => e.type === 'token' && e.action === 'deleted');
      if (!ev) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ev, 'no audit event for the deletion');
    assert.equal(ev.metadata.actor.name, 'edgeflag cleanup');
  } finally {
    await s.stop();
  }
  // a schedule must be a positive duration (Flipt's validation), in Flipt's config file too
  const cfg = path.join(dir, 'config.yml');
  fs.writeFileSync(cfg, 'authentication:\n  required: true\n  methods:\n    token:\n      enabled: true\n      cleanup:\n        interval: 0s\n');
  const bad = spawnSync(edgeflagBin, ['serve', '--config', cfg], { cwd: dir, encoding: 'utf8', timeout: 10000 });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /authentication\.methods\.token\.cleanup\.interval.*positive non-zero duration required/);
});
