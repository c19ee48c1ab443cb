// Failure behaviour of replication, one fault per test: the primary killed with SIGKILL while
// streaming, a replica restarted while the primary is down, a partition through a TCP proxy
// (delay, black hole, drop) then healed, a replica whose position was trimmed upstream, and the
// feed's authentication. Every wait has a deadline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { node, stopAll, call, waitFor, version, exportState, cluster, sleep, lockState, waitForLog } from './cluster.mjs';
import { startProxy } from './proxy.mjs';

const nodes = [];
const proxies = [];
after(async () => {
  await stopAll(nodes);
  for (const p of proxies) await p.close();
});

function track(...ns) {
  nodes.push(...ns);
  return ns;
}

async function createFlag(n, key, extra = {}, headers = {}) {
  const r = await call(n.url, 'POST', '/api/v1/namespaces/default/flags', { key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true, ...extra }, headers);
  assert.equal(r.status, 200, `create ${key} on ${n.name}: ${r.text}`);
  return r;
}

async function converged(a, b) {
  const va = await version(a);
  return va > 0 && (await version(b)) === va;
}

async function evalOnce(n, key) {
  const r = await call(n.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: key, entityId: 'e1', context: {} });
  return r.status;
}

test('kill -9 of the primary mid-stream: replicas keep serving, writes get 503, then converge', { timeout: 30000 }, async () => {
  const [primary] = track(node('primary'));
  await primary.start();
  const [a, b] = track(node('a', { upstream: primary.url }), node('b', { upstream: primary.url }));
  await Promise.all([a.start(), b.start()]);
  await createFlag(primary, 'seed');
  await waitFor('replicas to have the seed flag', async () => (await converged(primary, a)) && converged(primary, b));

  // evaluations on both replicas while the primary streams writes and dies
  let evaluating = true;
  let evals = 0;
  const failures = [];
  const evaluators = [a, b].map(async (n) => {
    while (evaluating) {
      const s = await evalOnce(n, 'seed');
      evals++;
      if (s !== 200) failures.push(`${n.name}: ${s}`);
    }
  });
  const acked = [];
  for (let i = 0; i < 30; i++) {
    await createFlag(primary, `k${i}`);
    acked.push(`k${i}`);
  }
  await primary.kill9();
  await waitFor('replicas to notice the dead link', async () => !(await cluster(a)).connected && !(await cluster(b)).connected, 5000);
  const w = await call(a.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'during-outage', name: 'x' });
  assert.equal(w.status, 503, w.text);
  assert.equal(w.json.code, 14);
  assert.match(w.json.message, /unreachable.*not applied/);
  const ready = await call(a.url, 'GET', '/ready');
  assert.equal(ready.status, 200, 'a replica with state stays ready without a staleness limit');
  assert.equal(ready.json.connected, false);
  assert.equal((await call(a.url, 'GET', '/ready?maxStaleness=0.000001')).status, 503);
  await sleep(300);

  await primary.start(); // same port and database
  await createFlag(primary, 'after-restart');
  await waitFor('replicas to converge after the restart', async () => (await converged(primary, a)) && converged(primary, b), 5000);
  evaluating = false;
  await Promise.all(evaluators);
  assert.deepEqual(failures, [], 'every evaluation on a replica succeeded');
  assert.ok(evals > 50, `too few evaluations (${evals})`);
  const ref = await exportState(primary);
  for (const k of acked) assert.ok(ref.default.flags.some((f) => f.key === k), `acknowledged ${k} survived kill -9`);
  assert.deepEqual(await exportState(a), ref);
  assert.deepEqual(await exportState(b), ref);
  assert.ok((await cluster(a)).reconnects >= 1);
  await Promise.all([primary.stop(), a.stop(), b.stop()]);
});

test('a replica restarted while the primary is down serves its persisted state at once', { timeout: 20000 }, async () => {
  const [primary] = track(node('primary2'));
  await primary.start();
  const [r] = track(node('r', { upstream: primary.url }));
  await r.start();
  for (let i = 0; i < 5; i++) await createFlag(primary, `p${i}`);
  await waitFor('replica to converge', () => converged(primary, r));
  const before = await exportState(r);
  const v = await version(r);
  // applied entries are written to the file in batches (--replica-sync, 50 ms): a kill before that
  // is a recovery (tests/cluster/recovery.test.mjs); here the state is on file
  await waitFor('the batch written', () => lockState(r) === 'written');
  await r.kill9();
  await primary.kill9();
  await r.start();
  // first request after start: no waiting for an upstream that is not there
  assert.equal(await version(r), v);
  assert.equal(await evalOnce(r, 'p3'), 200);
  assert.deepEqual(await exportState(r), before);
  const ready = await call(r.url, 'GET', '/ready');
  assert.equal(ready.status, 200);
  assert.equal(ready.json.hasState, true);
  assert.equal(ready.json.connected, false);
  assert.equal((await call(r.url, 'GET', '/health')).status, 200);
  const st = await cluster(r);
  assert.equal(st.connected, false);
  assert.ok(st.lagSeconds > 0, 'staleness is visible');
  const w = await call(r.url, 'DELETE', '/api/v1/namespaces/default/flags/p1');
  assert.equal(w.status, 503);
  assert.deepEqual(await exportState(r), before, 'nothing half-applied');
  await primary.start();
  await createFlag(primary, 'back');
  await waitFor('replica to catch up once the primary is back', () => converged(primary, r), 5000);
  await Promise.all([primary.stop(), r.stop()]);
});

test('partition through a proxy (delay, black hole, drop), healed: converges within 2 s', { timeout: 40000 }, async () => {
  const [primary] = track(node('primary3'));
  await primary.start();
  const proxy = await startProxy(primary.port);
  proxies.push(proxy);
  const [r] = track(node('r3', { upstream: proxy.url }));
  await r.start();
  await createFlag(primary, 'x0');
  await waitFor('replica to converge through the proxy', () => converged(primary, r));

  proxy.delay(100);
  await createFlag(primary, 'x1');
  const t1 = Date.now();
  await waitFor('delayed write', () => converged(primary, r), 3000, 5);
  assert.ok(Date.now() - t1 >= 90, 'the proxy really delayed');

  proxy.blackhole();
  for (let i = 2; i < 5; i++) await createFlag(primary, `x${i}`);
  assert.equal(await evalOnce(r, 'x0'), 200, 'reads keep working in the partition');
  await waitFor('the dead link to be visible', async () => !(await cluster(r)).connected, 6000, 100).catch((e) => { throw new Error(e.message + r.stderr); });
  assert.ok((await version(r)) < (await version(primary)));
  proxy.heal();
  let t0 = Date.now();
  await waitFor('convergence after healing a black hole', () => converged(primary, r), 2000, 10);
  const healedBlackhole = Date.now() - t0;

  proxy.drop();
  await createFlag(primary, 'x5');
  const w = await call(r.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'nope', name: 'nope' });
  assert.equal(w.status, 503, 'a write through a cut-off replica is refused');
  await sleep(1500);
  proxy.heal();
  t0 = Date.now();
  await waitFor('convergence after healing a drop', () => converged(primary, r), 2000, 10);
  const healedDrop = Date.now() - t0;
  assert.deepEqual(await exportState(r), await exportState(primary));
  assert.ok(!(await exportState(primary)).default.flags.some((f) => f.key === 'nope'));
  console.log(`# healed: black hole ${healedBlackhole} ms, drop ${healedDrop} ms`);
  await Promise.all([primary.stop(), r.stop()]);
});

test('a replica whose position was trimmed upstream recovers through a dump', { timeout: 20000 }, async () => {
  const [primary] = track(node('primary4', { args: ['--log-keep-entries', '3'] }));
  await primary.start();
  const [r] = track(node('r4', { upstream: primary.url }));
  await r.start();
  await createFlag(primary, 't0');
  await waitFor('replica to converge', () => converged(primary, r));
  await r.stop();
  for (let i = 1; i <= 10; i++) await createFlag(primary, `t${i}`);
  await sleep(1300); // the feed trims at most once a second
  const changes = await fetch(primary.url + '/metrics').then((x) => x.text());
  assert.match(changes, /edgeflag_replication_applied_seq 11/);
  await r.start();
  await waitFor('replica to recover', () => converged(primary, r), 5000);
  await waitForLog(r, /loaded a full dump from upstream"( node=\S+)? seq=11/);
  assert.deepEqual(await exportState(r), await exportState(primary));
  const m = await fetch(r.url + '/metrics').then((x) => x.text());
  assert.match(m, /edgeflag_replication_dumps_loaded_total 1/);
  await Promise.all([primary.stop(), r.stop()]);
});

test('with authentication on, following the stream needs a token; writes carry the caller\'s', { timeout: 20000 }, async () => {
  const [primary] = track(node('primary5', { args: ['--auth-token', 'sekret'] }));
  await primary.start();
  const auth = { authorization: 'Bearer sekret' };
  assert.equal((await call(primary.url, 'GET', '/edgeflag/v1/replication/stream?since=0')).status, 401);
  assert.equal((await call(primary.url, 'GET', '/edgeflag/v1/cluster')).status, 401);
  const [anon, good] = track(node('anon', { upstream: primary.url }), node('good', { upstream: primary.url, args: ['--upstream-token', 'sekret'] }));
  await Promise.all([anon.start(), good.start()]);
  await createFlag(primary, 'secret-flag', {}, auth);
  await waitFor('the authenticated replica to converge', async () => (await version(good)) === (await version(primary)) && (await version(good)) > 0);
  await waitFor('the anonymous replica to report the refusal', () => /upstream answered 401/.test(anon.stderr));
  assert.equal((await cluster(anon)).connected, false);
  assert.equal(await version(anon), 0);
  // a write through the replica is forwarded with the caller's credentials
  assert.equal((await call(good.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'nocreds', name: 'x' })).status, 401);
  const w = await createFlag(good, 'via-replica', {}, auth);
  assert.ok(Number(w.headers.get('x-edgeflag-version')) >= 2);
  assert.equal((await call(good.url, 'GET', '/api/v1/namespaces/default/flags/via-replica', undefined, auth)).status, 200);
  await Promise.all([primary.stop(), anon.stop(), good.stop()]);
});

test('X-Edgeflag-Min-Version waits, bounded, then answers 503', { timeout: 20000 }, async () => {
  const [primary] = track(node('primary6'));
  await primary.start();
  const [r] = track(node('r6', { upstream: primary.url, args: ['--min-version-wait', '300'] }));
  await r.start();
  await createFlag(primary, 'm0');
  const v = await version(primary);
  const okr = await call(r.url, 'GET', '/api/v1/namespaces/default/flags/m0', undefined, { 'x-edgeflag-min-version': String(v) });
  assert.equal(okr.status, 200);
  assert.ok(Number(okr.headers.get('x-edgeflag-version')) >= v);
  const t0 = Date.now();
  const late = await call(r.url, 'GET', '/api/v1/namespaces/default/flags/m0', undefined, { 'x-edgeflag-min-version': String(v + 100) });
  assert.equal(late.status, 503);
  assert.match(late.json.message, new RegExp(`version ${v + 100} was not reached within 300 ms`));
  assert.ok(Date.now() - t0 >= 280);
  assert.equal((await call(r.url, 'GET', '/api/v1/namespaces/default/flags/m0', undefined, { 'x-edgeflag-min-version': 'abc' })).status, 400);
  // where the answer does not come from the node's state, the header means nothing
  assert.equal((await call(r.url, 'GET', '/health', undefined, { 'x-edgeflag-min-version': String(v + 100) })).status, 200);
  // a write that lands later releases a waiting reader
  const waiting = call(r.url, 'GET', '/api/v1/namespaces/default/flags/m0', undefined, { 'x-edgeflag-min-version': String(v + 1) });
  await createFlag(primary, 'm1');
  assert.equal((await waiting).status, 200);
  await Promise.all([primary.stop(), r.stop()]);
});
