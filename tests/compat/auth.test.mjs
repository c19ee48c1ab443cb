// Flipt's static-token authentication: the bootstrap token, tokens created through
// POST /auth/v1/method/token (stored hashed; optional expiry and namespace scope), listing and
// revoking them, excluded route classes, and the routes that stay open.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startServer, call } from './server.mjs';

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

test('namespace-scoped tokens reach only their namespace', async () => {
  const r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'a-only', namespaceKey: 'team-a' }, as(BOOT));
  assert.equal(r.status, 200);
  const t = r.json.clientToken;
  assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/team-a/flags', undefined, as(t))).status, 200);
  assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces/team-b/flags', undefined, as(t))).status, 403);
  assert.equal((await call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'team-a', flagKey: 'f', entityId: 'e' }, as(t))).status, 200);
  assert.equal((await call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'team-b', flagKey: 'f', entityId: 'e' }, as(t))).status, 403);
  assert.equal((await call(srv.url, 'POST', '/evaluate/v1/batch', { requests: [{ namespaceKey: 'team-b', flagKey: 'f', entityId: 'e' }] }, as(t))).status, 403);
  assert.equal((await call(srv.url, 'GET', '/internal/v1/evaluation/snapshot/namespace/team-a', undefined, as(t))).status, 200);
  assert.equal((await call(srv.url, 'GET', '/internal/v1/evaluation/snapshot/namespace/team-b', undefined, as(t))).status, 403);
  assert.equal((await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'x', namespaceKey: 'nope' }, as(BOOT))).status, 404);
});

test('expiry: past times are refused, future ones accepted', async () => {
  let r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'old', expiresAt: '2001-01-01T00:00:00Z' }, as(BOOT));
  assert.equal(r.status, 400);
  r = await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'soon', expiresAt: new Date(Date.now() + 3600e3).toISOString() }, as(BOOT));
  assert.equal(r.status, 200);
  assert.ok(r.json.authentication.expiresAt);
  assert.equal((await call(srv.url, 'GET', '/api/v1/flags', undefined, as(r.json.clientToken))).status, 200);
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
