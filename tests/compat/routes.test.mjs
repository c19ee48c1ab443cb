// The route table, tried from the outside: GENERATED from `edgeflag routes --json` (the table that
// `serve` builds with the same registration code), so a route added later is covered without
// anyone remembering to add it here. For every route and method it sends a request with no token,
// a bad token, the bootstrap token, an unscoped created token, a token scoped to the namespace the
// request is about and one scoped to another, and checks what each auth class and namespace
// source promises (src/http/http.h, docs/security.md):
//   - open routes never ask for a token; every other route answers 401 without a valid one;
//   - a scoped token reaches its own namespace only, and no route about every namespace;
//   - a refused request is Flipt's 401 body and changes nothing (`edgeflag export` and the
//     version before and after); no request ever gets a 5xx.
// Then the same table against a server with `--auth-exclude management,evaluation,ofrep`.
// Requests that are let through must not destroy the fixtures: writes that pass authentication
// are aimed at keys that do not exist (or carry an empty body), each with tokens of its own (a
// write may act on its caller, e.g. PUT /auth/v1/self/expire); refused writes aim at real ones.
// Never skip a route: one that this generator cannot build a request for fails, with its pattern.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, call, edgeflagBin } from './server.mjs';
import { tempDir } from './tmp.mjs';

const BOOT = 'bootstrap-token';
const IN = 'team-a'; // the scoped token's namespace
const OUT = 'team-b'; // another namespace with the same objects
const MISSING_ID = '00000000-0000-0000-0000-000000000000';
const UNAUTHENTICATED = { code: 16, message: 'request was not authenticated', details: [] };
const as = (t) => ({ authorization: `Bearer ${t}` });

// `edgeflag routes --json` with the server's own options (on a scratch database of its own).
function routeTable(args) {
  const dir = tempDir('ef-routes-');
  const r = spawnSync(edgeflagBin, ['routes', '--json', '--db', path.join(dir, 'routes.db'), ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  fs.rmSync(dir, { recursive: true, force: true });
  const table = JSON.parse(r.stdout);
  assert.ok(table.length > 50, 'the route table is suspiciously short');
  return table;
}

// Every route x method, once each.
function cases(table) {
  const out = [];
  for (const route of table) for (const method of route.methods) out.push({ route, method });
  return out;
}

async function ok(url, method, p, body) {
  const r = await call(url, method, p, body, as(BOOT));
  assert.equal(r.status, 200, `${method} ${p}: ${r.text}`);
  return r.json;
}

// Objects of every kind in a namespace; returns their ids.
async function seed(url, ns) {
  const P = `/api/v1/namespaces/${ns}`;
  if (ns !== 'default') await ok(url, 'POST', '/api/v1/namespaces', { key: ns, name: ns });
  await ok(url, 'POST', `${P}/flags`, { key: 'f', name: 'F', type: 'VARIANT_FLAG_TYPE', enabled: true });
  await ok(url, 'POST', `${P}/flags`, { key: 'b', name: 'B', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  const variant = (await ok(url, 'POST', `${P}/flags/f/variants`, { key: 'v1' })).id;
  await ok(url, 'POST', `${P}/segments`, { key: 's', name: 'S' });
  const constraint = (await ok(url, 'POST', `${P}/segments/s/constraints`, { type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'eq', value: 'v' })).id;
  const rule = (await ok(url, 'POST', `${P}/flags/f/rules`, { segmentKey: 's', rank: 1 })).id;
  const dist = (await ok(url, 'POST', `${P}/flags/f/rules/${rule}/distributions`, { variantId: variant, rollout: 50 })).id;
  const rollout = (await ok(url, 'POST', `${P}/flags/b/rollouts`, { rank: 1, threshold: { percentage: 50, value: true } })).id;
  return { variant, constraint, rule, dist, rollout };
}

async function fixtures(url) {
  const ids = {};
  for (const ns of ['default', IN, OUT]) ids[ns] = await seed(url, ns);
  const token = async (body) => (await ok(url, 'POST', '/auth/v1/method/token', body)).clientToken;
  const victim = await ok(url, 'POST', '/auth/v1/method/token', { name: 'victim' });
  return {
    ids,
    unscoped: await token({ name: 'unscoped' }),
    scoped: await token({ name: 'scoped', namespaceKey: IN }),
    victimId: victim.authentication.id,
  };
}

// Fresh tokens for the writes that are let through, one unscoped and one scoped pair per write.
async function tokenPool(url, table) {
  const n = cases(table).filter((c) => c.route.write).length;
  const pool = [];
  for (let i = 0; i < n; i++) {
    const u = (await ok(url, 'POST', '/auth/v1/method/token', { name: `spare-${i}` })).clientToken;
    const s = (await ok(url, 'POST', '/auth/v1/method/token', { name: `spare-scoped-${i}`, namespaceKey: IN })).clientToken;
    pool.push({ unscoped: u, scoped: s });
  }
  return pool;
}

// The request target for a route: parameters filled from the pattern with keys that exist in
// namespace ns, or (harmless) keys that do not, so a write let through changes nothing.
function target(route, ns, fx, harmless) {
  const segs = route.pattern.split('/');
  const ids = fx.ids[ns || 'default'] ?? fx.ids[IN];
  const filled = segs.map((seg, i) => {
    const m = /^\{(.+)\}$/.exec(seg);
    if (!m) return seg;
    if (route.ns === 'path' && m[1] === route.nsParam) return encodeURIComponent(ns);
    const prev = segs[i - 1];
    const real = {
      flags: segs[i + 1] === 'rollouts' ? 'b' : 'f',
      segments: 's',
      variants: ids.variant,
      constraints: ids.constraint,
      rules: ids.rule,
      distributions: ids.dist,
      rollouts: ids.rollout,
      tokens: fx.victimId,
      authentications: fx.victimId,
      oidc: 'local', // an OIDC provider name (none is configured here: 404, never a 5xx)
    }[prev];
    assert.ok(real, `routes.test.mjs cannot fill {${m[1]}} of ${route.pattern}: teach target() about it`);
    if (!harmless) return encodeURIComponent(real);
    return /^[0-9a-f-]{36}$/.test(real) || prev === 'tokens' || prev === 'authentications' ? MISSING_ID : 'zz-missing';
  });
  let p = filled.join('/') || '/';
  if (route.ns === 'body') p += `?namespaceKey=${encodeURIComponent(ns)}`;
  return p;
}

// A body that the route would accept in namespace ns (so a refusal is authentication's doing).
function validBody(route, method, ns, fx) {
  const ids = fx.ids[ns || 'default'] ?? fx.ids[IN];
  const p = route.pattern;
  const entity = { flagKey: 'f', entityId: 'e', context: {} };
  let body;
  if (route.class === 'ofrep') body = { context: { targetingKey: 'e' } };
  else if (/\/evaluate\/v1\/batch$/.test(p)) body = { requests: [{ namespaceKey: ns, ...entity }] };
  else if (/batch-evaluate$/.test(p)) body = { requests: [entity] };
  else if (route.class === 'evaluation') body = { ...entity };
  else if (/\/auth\/v1\/method\/token$/.test(p)) body = { name: 'zz-new' };
  else if (/\/namespaces$/.test(p)) body = { key: 'zz-new', name: 'New' };
  else if (/\/namespaces\/\{key\}$/.test(p)) body = { name: 'Renamed' };
  else if (/\/flags$/.test(p)) body = { key: 'zz-new', name: 'New', type: 'BOOLEAN_FLAG_TYPE', enabled: true };
  else if (/\/flags\/\{key\}$/.test(p)) body = { name: 'Renamed', enabled: false };
  else if (/\/variants$/.test(p)) body = { key: 'zz-new' };
  else if (/\/variants\/\{id\}$/.test(p)) body = { key: 'v1', name: 'Renamed' };
  else if (/\/segments$/.test(p)) body = { key: 'zz-new', name: 'New' };
  else if (/\/segments\/\{key\}$/.test(p)) body = { name: 'Renamed', matchType: 'ANY_MATCH_TYPE' };
  else if (/\/constraints(\/\{id\})?$/.test(p)) body = { type: 'STRING_COMPARISON_TYPE', property: 'q', operator: 'eq', value: 'w' };
  else if (/\/rules$/.test(p)) body = { segmentKey: 's', rank: 2 };
  else if (/\/rules\/order$/.test(p)) body = { ruleIds: [ids.rule] };
  else if (/\/rules\/\{id\}$/.test(p)) body = { segmentKey: 's', segmentOperator: 'AND_SEGMENT_OPERATOR' };
  else if (/\/distributions(\/\{id\})?$/.test(p)) body = { variantId: ids.variant, rollout: 20 };
  else if (/\/rollouts$/.test(p)) body = { rank: 2, threshold: { percentage: 10, value: false } };
  else if (/\/rollouts\/order$/.test(p)) body = { rolloutIds: [ids.rollout] };
  else if (/\/rollouts\/\{id\}$/.test(p)) body = { rank: 1, threshold: { percentage: 20, value: false } };
  else body = {};
  if (route.ns === 'body' && !/\/evaluate\/v1\/batch$/.test(p)) body.namespaceKey = ns;
  return body;
}

// One request; streams are cut once their status is known. Never hangs: 5 s at most.
async function send(base, method, p, { headers = {}, body } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 5000);
  try {
    const res = await fetch(base + p, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined || method === 'GET' || method === 'HEAD' || method === 'DELETE' ? undefined : JSON.stringify(body),
      signal: ac.signal,
    });
    let text = '';
    if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) ac.abort();
    else text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {}
    return { status: res.status, json, text };
  } catch (e) {
    return { status: 0, json: null, text: String(e) };
  } finally {
    clearTimeout(timer);
  }
}

// What a refused write must leave alone: every namespace, the tokens, the version.
async function state(srv) {
  const exp = spawnSync(edgeflagBin, ['export', '--db', path.join(srv.dir, 'edgeflag.db'), '--all-namespaces'], { encoding: 'utf8' });
  assert.equal(exp.status, 0, exp.stderr);
  const toks = await call(srv.url, 'GET', '/auth/v1/tokens', undefined, as(BOOT));
  return { export: exp.stdout, tokens: toks.json.authentications.map((a) => a.id).sort(), version: toks.headers.get('x-edgeflag-version') };
}

function label(c, who) {
  return `${c.method} ${c.route.pattern} (${c.route.class}, ns ${c.route.ns}) as ${who}`;
}

function assertRefused(r, c, who) {
  assert.equal(r.status, 401, `${label(c, who)}: want 401, got ${r.status} ${r.text}`);
  if (c.method !== 'HEAD') assert.deepEqual(r.json, UNAUTHENTICATED, `${label(c, who)}: ${r.text}`);
}

function assertLetThrough(r, c, who) {
  assert.ok(r.status >= 200 && r.status < 500 && r.status !== 401 && r.status !== 403,
    `${label(c, who)}: want it past authentication without a 5xx, got ${r.status} ${r.text}`);
}

let table;
let srv; // authentication on, nothing excluded
let fx;

before(async () => {
  table = routeTable(['--auth-token', BOOT]);
  srv = await startServer(['--auth-token', BOOT]);
  fx = await fixtures(srv.url);
});
after(async () => {
  await srv?.stop();
});

test('the table declares every route it routes by (no route without its facts)', () => {
  for (const r of table) {
    assert.ok(['open', 'management', 'evaluation', 'ofrep', 'auth', 'internal'].includes(r.class), r.pattern);
    assert.ok(['none', 'path', 'header', 'body'].includes(r.ns), r.pattern);
    if (r.ns === 'path') assert.ok(r.pattern.includes(`{${r.nsParam}}`), r.pattern);
    if (r.write) assert.ok(!r.methods.includes('GET') && !r.methods.includes('HEAD'), r.pattern);
    const meta = r.pattern.startsWith('/meta/'); // about the node, not its state
    if (r.class === 'management') assert.equal(r.write, !r.methods.includes('GET') && !meta, r.pattern);
    if (r.class === 'management' && r.methods.includes('GET') && !meta) assert.ok(r.state, r.pattern);
    // an empty namespace segment means "default" exactly on the routes that take Flipt's
    // namespaceKey in their path (Flipt's Go SDK sends /api/v1/namespaces//flags)
    assert.equal(r.nsEmpty, r.ns === 'path' && r.nsParam === 'namespaceKey', `${r.pattern}: nsEmpty`);
    if (['evaluation', 'ofrep'].includes(r.class)) assert.ok(!r.write, `${r.pattern}: evaluation is never a write`);
    // a route about one namespace that names it in its path must declare it (regression: item 3)
    const nsParam = /\/namespaces\/\{([^}]+)\}/.exec(r.pattern);
    if (nsParam && r.class !== 'open') assert.deepEqual([r.ns, r.nsParam], ['path', nsParam[1]], r.pattern);
  }
  // the regressions of issue 19 item 3, by name
  const find = (p) => table.find((r) => r.pattern === p);
  assert.deepEqual([find('/api/v1/namespaces/{key}').ns, find('/api/v1/namespaces/{key}').nsParam], ['path', 'key']);
  assert.deepEqual([find('/edgeflag/v1/namespaces/{ns}/stream').ns, find('/edgeflag/v1/namespaces/{ns}/stream').nsParam], ['path', 'ns']);
});

// The whole matrix against node (its URL), with stateOf() reading the state refused writes must
// not change (on a replica: the primary's, where writes land).
async function matrix(url, stateOf, pool) {
  let checked = 0;
  let spare = 0;
  for (const c of cases(table)) {
    const { route, method } = c;
    const write = route.write;
    const open = route.class === 'open';
    // Refused first, aimed at real objects: no token, a bad token, a token scoped elsewhere.
    const refusals = [];
    if (!open) {
      refusals.push(['no token', IN, {}]);
      refusals.push(['a bad token', IN, as('not-a-valid-token')]);
    }
    if (!open && route.ns !== 'none') refusals.push([`a token scoped to ${IN}, about ${OUT}`, OUT, as(fx.scoped)]);
    if (!open && route.ns === 'none') refusals.push([`a token scoped to ${IN}`, IN, as(fx.scoped)]);
    // an empty namespace segment means "default" where a route allows it: still not IN's
    if (!open && route.ns === 'path' && route.nsEmpty) refusals.push([`a token scoped to ${IN}, about "" (default)`, '', as(fx.scoped)]);
    const before = write && refusals.length ? await stateOf() : null;
    for (const [who, ns, headers] of refusals) {
      const hdr = route.ns === 'header' ? { ...headers, 'x-flipt-namespace': ns } : headers;
      const r = await send(url, method, target(route, ns, fx, false), { headers: hdr, body: validBody(route, method, ns, fx) });
      assertRefused(r, c, who);
      checked++;
    }
    if (before) assert.deepEqual(await stateOf(), before, `${method} ${route.pattern}: a refused write changed the state`);
    // Let through: the bootstrap token, an unscoped token, the scoped token in its namespace (or
    // nothing at all on an open route). Writes aim at keys that do not exist.
    const own = write ? pool[spare++] : fx;
    const allowed = [['the bootstrap token', as(BOOT)], ['an unscoped token', as(own.unscoped)]];
    if (open) allowed.push(['no token', {}]);
    if (open || route.ns !== 'none') allowed.push([`a token scoped to ${IN}, about ${IN}`, as(own.scoped)]);
    for (const [who, headers] of allowed) {
      const hdr = route.ns === 'header' ? { ...headers, 'x-flipt-namespace': IN } : headers;
      const body = write ? (route.ns === 'body' ? { namespaceKey: IN } : {}) : validBody(route, method, IN, fx);
      const r = await send(url, method, target(route, IN, fx, write), { headers: hdr, body });
      assertLetThrough(r, c, who);
      checked++;
    }
  }
  // the fixtures survived the writes that were let through
  assert.equal((await call(url, 'GET', `/api/v1/namespaces/${IN}/flags/f`, undefined, as(BOOT))).status, 200);
  assert.ok(checked > 400, `only ${checked} requests`);
}

test('every route x method, every auth class: 401 where needed, scoped tokens stay in their namespace, refusals change nothing, never a 5xx', async () => {
  await matrix(srv.url, () => state(srv), await tokenPool(srv.url, table));
});

test('the same through a replica (with its own authentication; writes are forwarded): nothing refused reaches the primary', async () => {
  const dir = tempDir('ef-routes-replica-');
  const replica = await startServer(['--db', path.join(dir, 'edgeflag.db'), '--upstream', srv.url, '--upstream-token', BOOT, '--auth-token', BOOT], { dir });
  try {
    const pool = await tokenPool(srv.url, table);
    // converged: the fixtures and the created tokens (they replicate like any row)
    const deadline = Date.now() + 10000;
    for (;;) {
      const r = await call(replica.url, 'GET', `/api/v1/namespaces/${IN}/flags`, undefined, as(pool.at(-1).scoped));
      const v = await call(replica.url, 'GET', '/health');
      const pv = await call(srv.url, 'GET', '/health');
      if (r.status === 200 && v.headers.get('x-edgeflag-version') === pv.headers.get('x-edgeflag-version')) break;
      assert.ok(Date.now() < deadline, `the replica did not converge: ${r.status} ${r.text}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    await matrix(replica.url, () => state(srv), pool);
  } catch (e) {
    e.message += `\nreplica stderr (tail):\n${replica.stderr().slice(-4000)}\nprimary stderr (tail):\n${srv.stderr().slice(-2000)}`;
    throw e;
  } finally {
    await replica.stop();
  }
});

test('with --auth-exclude management,evaluation,ofrep: those classes need no token, the others still do', async () => {
  const args = ['--auth-token', BOOT, '--auth-exclude', 'management,evaluation,ofrep'];
  const excludedTable = routeTable(args);
  const ex = await startServer(args);
  try {
    const efx = await fixtures(ex.url);
    for (const c of cases(excludedTable)) {
      const { route, method } = c;
      const excluded = ['open', 'management', 'evaluation', 'ofrep'].includes(route.class);
      const hdr = route.ns === 'header' ? { 'x-flipt-namespace': IN } : {};
      if (excluded) {
        const body = route.write ? (route.ns === 'body' ? { namespaceKey: IN } : {}) : validBody(route, method, IN, efx);
        assertLetThrough(await send(ex.url, method, target(route, IN, efx, route.write), { headers: hdr, body }), c, 'no token (excluded)');
      } else {
        const before = route.write ? await state(ex) : null;
        assertRefused(await send(ex.url, method, target(route, IN, efx, false), { headers: hdr, body: validBody(route, method, IN, efx) }), c, 'no token');
        if (before) assert.deepEqual(await state(ex), before, `${method} ${route.pattern}: a refused write changed the state`);
      }
    }
  } finally {
    await ex.stop();
  }
});
