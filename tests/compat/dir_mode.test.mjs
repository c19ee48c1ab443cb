// `edgeflag serve --dir`: Flipt features files served read-only over HTTP, reloaded within a second
// of a change, the last good state kept when a change is invalid, writes refused clearly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, call } from './server.mjs';
import { tempDir } from './tmp.mjs';

const features = (variant) => `version: "1.4"
namespace: default
flags:
  - key: banner
    name: Banner
    type: VARIANT_FLAG_TYPE
    enabled: true
    variants:
      - key: ${variant}
    rules:
      - segment: everyone
        distributions:
          - variant: ${variant}
            rollout: 100
segments:
  - key: everyone
    name: Everyone
    match_type: ALL_MATCH_TYPE
`;

const variantOf = async (url) => (await call(url, 'POST', '/evaluate/v1/variant', { flagKey: 'banner', entityId: 'u1' })).json.variantKey;

async function waitFor(fn, want, ms) {
  const start = Date.now();
  for (;;) {
    const got = await fn();
    if (got === want) return Date.now() - start;
    if (Date.now() - start > ms) return -1;
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('directory mode: serve, reload, keep the last good state, refuse writes', async () => {
  const dir = tempDir('ef-dirmode-');
  const file = path.join(dir, 'team', 'features.yml');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, features('blue'));
  const srv = await startServer(['--dir', dir], { dir: tempDir('ef-dirmode-run-') });
  try {
    assert.equal(await variantOf(srv.url), 'blue');
    const snap = await call(srv.url, 'GET', '/internal/v1/evaluation/snapshot/namespace/default', undefined, { 'x-flipt-accept-server-version': '1.47.0' });
    assert.equal(snap.json.flags[0].key, 'banner');

    fs.writeFileSync(file, features('green'));
    const took = await waitFor(() => variantOf(srv.url), 'green', 1000);
    assert.ok(took >= 0, 'the change was not served within a second');
    console.log(`directory change served after ${took} ms`);

    fs.writeFileSync(file, features('red').replace('ALL_MATCH_TYPE', 'SOME_MATCH_TYPE'));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await variantOf(srv.url), 'green', 'an invalid file replaced the last good state');
    assert.match(srv.stderr(), /reload failed.*features\.yml:\d+:\d+/);

    fs.writeFileSync(file, features('red'));
    assert.ok((await waitFor(() => variantOf(srv.url), 'red', 1000)) >= 0);

    // internal/storage/unmodifiable/store.go: errReadOnly, a plain error the gRPC layer makes Internal
    const w = await call(srv.url, 'POST', '/api/v1/flags', { key: 'x', name: 'X' });
    assert.equal(w.status, 500);
    assert.deepEqual(w.json, { code: 13, message: 'modification is not allowed in read-only mode', details: [] });
  } finally {
    await srv.stop();
  }
});

// The management API's reads as Flipt's local storage answers them (internal/storage/fs/snapshot.go):
// lists ordered by key (rules and rollouts by rank), decimal page tokens, 'invalid offset', rules of
// an unknown flag are an empty list; every write is refused with the read-only error.
const team = `version: "1.4"
namespace:
  key: team
  name: Team
  description: the team's flags
flags:
  - key: zeta
    name: Zeta
    type: VARIANT_FLAG_TYPE
    enabled: true
    description: last by key
    metadata:
      owner: ops
    variants:
      - key: blue
        attachment:
          color: "#00f"
      - key: red
        default: true
    rules:
      - segment: everyone
        distributions:
          - variant: blue
            rollout: 70
          - variant: red
            rollout: 30
      - segment:
          keys: [everyone, beta]
          operator: AND_SEGMENT_OPERATOR
  - key: alpha
    name: Alpha
    type: BOOLEAN_FLAG_TYPE
    enabled: false
    rollouts:
      - description: half
        threshold:
          percentage: 50
          value: true
      - segment:
          key: beta
          value: false
  - key: mid
    name: Mid
    type: VARIANT_FLAG_TYPE
    enabled: true
segments:
  - key: everyone
    name: Everyone
    match_type: ALL_MATCH_TYPE
  - key: beta
    name: Beta
    match_type: ANY_MATCH_TYPE
    constraints:
      - type: STRING_COMPARISON_TYPE
        property: plan
        operator: eq
        value: beta
`;

test('directory mode: management reads (namespaces, flags, segments, rules, rollouts) with pagination', async () => {
  const dir = tempDir('ef-dirmode-');
  fs.writeFileSync(path.join(dir, 'features.yml'), team);
  const srv = await startServer(['--dir', dir], { dir: tempDir('ef-dirmode-run-') });
  const get = async (p) => call(srv.url, 'GET', p);
  const okGet = async (p) => {
    const r = await get(p);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    return r.json;
  };
  const err = async (p, status, code, message) => {
    const r = await get(p);
    assert.equal(r.status, status, `${p}: ${r.text}`);
    assert.deepEqual(r.json, { code, message, details: [] }, p);
  };
  try {
    // namespaces: the file's, and default (Flipt's ext.DefaultNamespace, named "Default"); by key
    const nss = await okGet('/api/v1/namespaces');
    assert.deepEqual(nss.namespaces.map((n) => [n.key, n.name, n.protected]), [['default', 'Default', false], ['team', 'Team', false]]);
    assert.equal(nss.totalCount, 2);
    assert.equal(nss.nextPageToken, '');
    assert.equal((await okGet('/api/v1/namespaces/team')).description, "the team's flags");
    await err('/api/v1/namespaces/nope', 404, 5, 'namespace "nope" not found');
    // namespaces need no limit with a page token (no validation in Flipt), tokens are offsets
    assert.deepEqual((await okGet('/api/v1/namespaces?pageToken=1')).namespaces.map((n) => n.key), ['team']);

    const T = '/api/v1/namespaces/team';
    const all = await okGet(`${T}/flags`);
    assert.deepEqual(all.flags.map((f) => f.key), ['alpha', 'mid', 'zeta']);
    assert.equal(all.totalCount, 3);
    // pages of one: tokens "1", "2", then none
    const seen = [];
    let token = '';
    for (let i = 0; i < 5; i++) {
      const page = await okGet(`${T}/flags?limit=1${token ? `&pageToken=${token}` : ''}`);
      seen.push(...page.flags.map((f) => f.key));
      assert.equal(page.totalCount, 3);
      token = page.nextPageToken;
      if (!token) break;
      assert.match(token, /^\d+$/);
    }
    assert.deepEqual(seen, ['alpha', 'mid', 'zeta']);
    const zeta = await okGet(`${T}/flags/zeta`);
    assert.equal(zeta.type, 'VARIANT_FLAG_TYPE');
    assert.deepEqual(zeta.metadata, { owner: 'ops' });
    assert.deepEqual(zeta.variants.map((v) => v.key), ['blue', 'red']);
    assert.equal(zeta.defaultVariant.key, 'red');
    assert.equal(JSON.parse(zeta.variants[0].attachment).color, '#00f');
    for (const v of zeta.variants) assert.match(v.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await err(`${T}/flags/nope`, 404, 5, 'flag "team/nope" not found');
    await err('/api/v1/namespaces/nope/flags', 404, 5, 'namespace "nope" not found');

    const segs = await okGet(`${T}/segments`);
    assert.deepEqual(segs.segments.map((s) => [s.key, s.matchType]), [['beta', 'ANY_MATCH_TYPE'], ['everyone', 'ALL_MATCH_TYPE']]);
    const beta = await okGet(`${T}/segments/beta`);
    assert.deepEqual(beta.constraints.map((c) => [c.property, c.operator, c.value, c.type]), [['plan', 'eq', 'beta', 'STRING_COMPARISON_TYPE']]);
    await err(`${T}/segments/nope`, 404, 5, 'segment "team/nope" not found');

    const rules = await okGet(`${T}/flags/zeta/rules`);
    assert.equal(rules.totalCount, 2);
    assert.deepEqual(rules.rules.map((r) => r.rank), [1, 2]);
    assert.equal(rules.rules[0].segmentKey, 'everyone');
    assert.deepEqual(rules.rules[1].segmentKeys, ['everyone', 'beta']);
    assert.equal(rules.rules[1].segmentOperator, 'AND_SEGMENT_OPERATOR');
    const byId = Object.fromEntries(zeta.variants.map((v) => [v.id, v.key]));
    assert.deepEqual(rules.rules[0].distributions.map((d) => [byId[d.variantId], d.rollout, d.ruleId]), [['blue', 70, rules.rules[0].id], ['red', 30, rules.rules[0].id]]);
    assert.deepEqual(await okGet(`${T}/flags/zeta/rules/${rules.rules[1].id}`), rules.rules[1]);
    await err(`${T}/flags/zeta/rules/nope`, 404, 5, 'rule "team/nope" not found');
    assert.deepEqual(await okGet(`${T}/flags/nope/rules`), { rules: [], nextPageToken: '', totalCount: 0 });

    const ro = await okGet(`${T}/flags/alpha/rollouts`);
    assert.deepEqual(ro.rules.map((r) => [r.rank, r.type, r.description]), [[1, 'THRESHOLD_ROLLOUT_TYPE', 'half'], [2, 'SEGMENT_ROLLOUT_TYPE', '']]);
    assert.deepEqual(ro.rules[0].threshold, { percentage: 50, value: true });
    assert.equal(ro.rules[1].segment.segmentKey, 'beta');
    assert.deepEqual(await okGet(`${T}/flags/alpha/rollouts/${ro.rules[0].id}`), ro.rules[0]);
    await err(`${T}/flags/alpha/rollouts/nope`, 404, 5, 'rollout "team/nope" not found');

    // ids survive a reload of unchanged files
    fs.writeFileSync(path.join(dir, 'features.yml'), team + '\n');
    await new Promise((r) => setTimeout(r, 900));
    assert.equal((await okGet(`${T}/flags/zeta/rules`)).rules[1].id, rules.rules[1].id);

    // pagination errors, message for message (rpc/flipt/validation.go; internal/storage/fs/snapshot.go paginate)
    await err(`${T}/flags?pageToken=1`, 400, 3, 'limit must be set when offset or pageToken is set');
    await err(`${T}/segments?offset=1`, 400, 3, 'limit must be set when offset or pageToken is set');
    await err(`${T}/flags/zeta/rules?pageToken=1`, 400, 3, 'limit must be set when offset or pageToken is set');
    await err(`${T}/flags?limit=1&pageToken=Hello%20World`, 400, 3, 'pageToken is not valid: "Hello World"');
    await err(`${T}/flags/alpha/rollouts?pageToken=x`, 400, 3, 'pageToken is not valid: "x"');
    await err(`${T}/flags?limit=1&pageToken=3`, 400, 3, 'invalid offset: 3');
    // an empty list takes any token
    assert.deepEqual(await okGet(`${T}/flags/nope/rollouts?pageToken=x`), { rules: [], nextPageToken: '', totalCount: 0 });

    // writes: every kind refused with Flipt's read-only error
    for (const [method, p, body] of [
      ['POST', '/api/v1/namespaces', { key: 'n', name: 'n' }],
      ['PUT', `${T}/flags/zeta`, { name: 'z' }],
      ['DELETE', `${T}/flags/zeta`],
      ['POST', `${T}/segments`, { key: 's', name: 's', matchType: 'ALL_MATCH_TYPE' }],
      ['POST', `${T}/flags/zeta/rules`, { segmentKey: 'beta', rank: 3 }],
      ['DELETE', `${T}/flags/alpha/rollouts/${ro.rules[0].id}`],
    ]) {
      const r = await call(srv.url, method, p, body);
      assert.equal(r.status, 500, `${method} ${p}`);
      assert.deepEqual(r.json, { code: 13, message: 'modification is not allowed in read-only mode', details: [] });
    }
    assert.equal((await okGet(`${T}/flags`)).totalCount, 3);
  } finally {
    await srv.stop();
  }
});
