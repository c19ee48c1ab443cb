// mgmt_api.test.mjs - Flipt's management REST API (/api/v1) against a real `edgeflag serve` on a
// fresh SQLite database: every route in both forms (/api/v1/<x> and /api/v1/namespaces/{ns}/<x>),
// object shapes with every field present, cascades, ordering, pagination, snake_case input,
// trailing slashes and Flipt's validation errors (status and message).
//
// Run: EDGEFLAG_BIN=build/edgeflag node --test tests/api/
// Needs only Node 18+ (built-in test runner and fetch); the server binary comes from EDGEFLAG_BIN.
// It must never depend on state from another test file or on the order of the `describe` blocks
// beyond the namespaces it creates itself.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.resolve(repoRoot, process.env.EDGEFLAG_BIN || 'build/edgeflag');

let server; // the primary under test: { proc, base, dir }
let base;

// Starts `edgeflag serve` on a free port with extra arguments; resolves once it prints its URL.
function startServer(args) {
  return new Promise((resolve, reject) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edgeflag-mgmt-'));
    const proc = spawn(bin, ['serve', '--listen', '127.0.0.1:0', ...args(dir)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let errText = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${errText}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, base: m[1], dir });
      }
    });
    proc.stderr.on('data', (d) => { errText += d; });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}): ${errText}`));
    });
  });
}

function stopServer(s) {
  if (!s) return;
  s.proc.removeAllListeners('exit');
  s.proc.kill('SIGTERM');
  rmSync(s.dir, { recursive: true, force: true });
}

before(async () => {
  server = await startServer((dir) => ['--db', path.join(dir, 't.db')]);
  base = server.base;
});
after(() => stopServer(server));

// One request; the body may be an object (sent as JSON) or a raw string.
async function api(method, p, body, headers = {}, at = base) {
  const init = { method, headers };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(at + p, init);
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text, headers: res.headers };
}

async function ok(method, p, body) {
  const r = await api(method, p, body);
  assert.equal(r.status, 200, `${method} ${p} -> ${r.status} ${r.text}`);
  return r.json;
}

function assertError(r, status, message) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status} ${r.text}`);
  assert.deepEqual(Object.keys(r.json), ['code', 'message', 'details']);
  assert.deepEqual(r.json.details, []);
  if (message instanceof RegExp) assert.match(r.json.message, message);
  else assert.equal(r.json.message, message);
  const grpc = { 400: 3, 404: 5, 500: [12, 13, 2], 501: 12 }[status];
  if (Array.isArray(grpc)) assert.ok(grpc.includes(r.json.code));
  else if (grpc !== undefined) assert.equal(r.json.code, grpc);
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(\d{3}|\d{6}|\d{9}))?Z$/;
// ids of rows the API creates: time-ordered version 7 UUIDs (src/store/sqlite_log.c, sq_new_id)
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function assertTimes(o) {
  assert.match(o.createdAt, RFC3339);
  assert.match(o.updatedAt, RFC3339);
}

// Exact key lists, in Flipt's (proto field) order.
const KEYS = {
  namespace: ['key', 'name', 'description', 'protected', 'createdAt', 'updatedAt'],
  flag: ['key', 'name', 'description', 'enabled', 'createdAt', 'updatedAt', 'variants', 'namespaceKey', 'type'],
  variant: ['id', 'flagKey', 'key', 'name', 'description', 'createdAt', 'updatedAt', 'attachment', 'namespaceKey'],
  segment: ['key', 'name', 'description', 'createdAt', 'updatedAt', 'constraints', 'matchType', 'namespaceKey'],
  constraint: ['id', 'segmentKey', 'type', 'property', 'operator', 'value', 'createdAt', 'updatedAt', 'namespaceKey', 'description'],
  rule: ['id', 'flagKey', 'segmentKey', 'distributions', 'rank', 'createdAt', 'updatedAt', 'namespaceKey', 'segmentKeys', 'segmentOperator'],
  distribution: ['id', 'ruleId', 'variantId', 'rollout', 'createdAt', 'updatedAt'],
  rollout: ['id', 'namespaceKey', 'flagKey', 'type', 'rank', 'description', 'createdAt', 'updatedAt'],
};

function assertShape(o, kind, extra = []) {
  assert.deepEqual(Object.keys(o), [...KEYS[kind], ...extra]);
  assertTimes(o);
}

// The two spellings of every namespaced route. `nsPrefix(ns)` is where objects of ns live.
const FORMS = [
  { name: '/api/v1/<x> (default namespace)', ns: 'default', prefix: '/api/v1' },
  { name: '/api/v1/namespaces/{ns}/<x>', ns: 'team-a', prefix: '/api/v1/namespaces/team-a' },
];
const nsPrefix = (ns) => `/api/v1/namespaces/${ns}`;

async function ensureNamespace(key) {
  const r = await api('GET', `/api/v1/namespaces/${key}`);
  if (r.status === 404) await ok('POST', '/api/v1/namespaces', { key, name: key });
}

describe('namespaces', () => {
  test('default exists, is protected, has every field', async () => {
    const list = await ok('GET', '/api/v1/namespaces');
    assert.deepEqual(Object.keys(list), ['namespaces', 'nextPageToken', 'totalCount']);
    const def = list.namespaces.find((n) => n.key === 'default');
    assertShape(def, 'namespace');
    assert.equal(def.protected, true);
    assert.equal(list.nextPageToken, '');
    assert.equal(list.totalCount, list.namespaces.length);
  });

  test('create, get, update, list, delete', async () => {
    const created = await ok('POST', '/api/v1/namespaces', { key: 'ns-crud', name: 'NS', description: 'd' });
    assertShape(created, 'namespace');
    assert.deepEqual([created.key, created.name, created.description, created.protected], ['ns-crud', 'NS', 'd', false]);
    const got = await ok('GET', '/api/v1/namespaces/ns-crud');
    assert.deepEqual(got, created);
    // the path key wins over a key in the body
    const upd = await ok('PUT', '/api/v1/namespaces/ns-crud', { key: 'other', name: 'NS2', description: '' });
    assert.equal(upd.key, 'ns-crud');
    assert.equal(upd.name, 'NS2');
    assert.equal(upd.createdAt, created.createdAt);
    assert.equal((await api('GET', '/api/v1/namespaces/other')).status, 404);
    const list = await ok('GET', '/api/v1/namespaces');
    assert.ok(list.namespaces.some((n) => n.key === 'ns-crud'));
    assert.deepEqual(await ok('DELETE', '/api/v1/namespaces/ns-crud'), {});
    assertError(await api('GET', '/api/v1/namespaces/ns-crud'), 404, 'namespace "ns-crud" not found');
  });

  test('validation: key regex, missing name, duplicate', async () => {
    assertError(await api('POST', '/api/v1/namespaces', { key: 'bad key!', name: 'x' }), 400,
      'invalid field key: contains invalid characters');
    assertError(await api('POST', '/api/v1/namespaces', { name: 'x' }), 400, 'invalid field key: must not be empty');
    assertError(await api('POST', '/api/v1/namespaces', { key: 'ns-noname' }), 400, 'invalid field name: must not be empty');
    await ok('POST', '/api/v1/namespaces', { key: 'ns-dup', name: 'x' });
    assertError(await api('POST', '/api/v1/namespaces', { key: 'ns-dup', name: 'x' }), 400, 'namespace "ns-dup" is not unique');
  });

  test('the default namespace and namespaces with flags cannot be deleted', async () => {
    assertError(await api('DELETE', '/api/v1/namespaces/default'), 400, 'namespace "default" is protected');
    await ok('POST', '/api/v1/namespaces', { key: 'ns-full', name: 'x' });
    await ok('POST', `${nsPrefix('ns-full')}/flags`, { key: 'f', name: 'f' });
    assertError(await api('DELETE', '/api/v1/namespaces/ns-full'), 400,
      'namespace "ns-full" cannot be deleted; flags must be deleted first');
    await ok('DELETE', `${nsPrefix('ns-full')}/flags/f`);
    assert.deepEqual(await ok('DELETE', '/api/v1/namespaces/ns-full'), {});
  });

  test('objects in an unknown namespace are 404', async () => {
    assertError(await api('POST', `${nsPrefix('nope')}/flags`, { key: 'f', name: 'f' }), 404, 'namespace "nope" not found');
    assertError(await api('POST', `${nsPrefix('nope')}/segments`, { key: 's', name: 's' }), 404, 'namespace "nope" not found');
  });
});

for (const form of FORMS) {
  describe(`flags and variants via ${form.name}`, () => {
    const P = form.prefix;
    before(() => ensureNamespace(form.ns));

    test('flag create/get/list/update/delete with every field', async () => {
      const f = await ok('POST', `${P}/flags`, { key: 'flag-crud', name: 'Flag', description: 'desc', enabled: true });
      assertShape(f, 'flag');
      assert.deepEqual([f.key, f.name, f.description, f.enabled, f.namespaceKey, f.type, f.variants],
        ['flag-crud', 'Flag', 'desc', true, form.ns, 'VARIANT_FLAG_TYPE', []]);
      // the other spelling of the route sees the same flag
      const got = await ok('GET', `${nsPrefix(form.ns)}/flags/flag-crud`);
      assert.deepEqual(got, f);
      const list = await ok('GET', `${P}/flags`);
      assert.deepEqual(Object.keys(list), ['flags', 'nextPageToken', 'totalCount']);
      const inList = list.flags.find((x) => x.key === 'flag-crud');
      // SQL ListFlags always carries metadata ({} when unset); GetFlag leaves it out
      assert.deepEqual(inList, { ...f, metadata: {} });
      const upd = await ok('PUT', `${P}/flags/flag-crud`, { key: 'ignored', name: 'Flag 2', description: '', enabled: false });
      assert.deepEqual([upd.key, upd.name, upd.description, upd.enabled], ['flag-crud', 'Flag 2', '', false]);
      assert.equal(upd.createdAt, f.createdAt);
      assert.deepEqual(await ok('DELETE', `${P}/flags/flag-crud`), {});
      assertError(await api('GET', `${P}/flags/flag-crud`), 404, `flag "${form.ns}/flag-crud" not found`);
    });

    test('boolean flag by enum name and by number; metadata object', async () => {
      const a = await ok('POST', `${P}/flags`, { key: 'bool-name', name: 'b', type: 'BOOLEAN_FLAG_TYPE', metadata: { team: 'x', n: 1 } });
      assert.equal(a.type, 'BOOLEAN_FLAG_TYPE');
      assertShape(a, 'flag', ['metadata']);
      assert.deepEqual(a.metadata, { team: 'x', n: 1 });
      const b = await ok('POST', `${P}/flags`, { key: 'bool-num', name: 'b', type: 1 });
      assert.equal(b.type, 'BOOLEAN_FLAG_TYPE');
      assert.equal((await ok('GET', `${P}/flags/bool-name`)).metadata.team, 'x');
    });

    test('flag validation errors', async () => {
      assertError(await api('POST', `${P}/flags`, { key: 'has space', name: 'x' }), 400, 'invalid field key: contains invalid characters');
      assertError(await api('POST', `${P}/flags`, { key: 'no-name' }), 400, 'invalid field name: must not be empty');
      assertError(await api('POST', `${P}/flags`, { name: 'x' }), 400, 'invalid field key: must not be empty');
      await ok('POST', `${P}/flags`, { key: 'dup', name: 'x' });
      assertError(await api('POST', `${P}/flags`, { key: 'dup', name: 'x' }), 400, `flag "${form.ns}/dup" is not unique`);
      assertError(await api('PUT', `${P}/flags/missing`, { name: 'x' }), 404, `flag "${form.ns}/missing" not found`);
      // commas are allowed in keys
      await ok('POST', `${P}/flags`, { key: 'a,b-c_d', name: 'x' });
    });

    test('variants: create/update/delete, attachment compacted, default variant set and cleared', async () => {
      await ok('POST', `${P}/flags`, { key: 'vflag', name: 'v' });
      const v1 = await ok('POST', `${P}/flags/vflag/variants`, { key: 'v1', name: 'One', description: 'd', attachment: '{ "a" : [1, 2] }' });
      assertShape(v1, 'variant');
      assert.match(v1.id, UUID);
      assert.deepEqual([v1.flagKey, v1.key, v1.name, v1.description, v1.attachment, v1.namespaceKey],
        ['vflag', 'v1', 'One', 'd', '{"a":[1,2]}', form.ns]);
      const v2 = await ok('POST', `${P}/flags/vflag/variants`, { key: 'v2' });
      assert.equal(v2.attachment, '');
      const upd = await ok('PUT', `${P}/flags/vflag/variants/${v2.id}`, { key: 'v2b', name: 'Two', attachment: '"s"' });
      assert.deepEqual([upd.id, upd.key, upd.name, upd.attachment], [v2.id, 'v2b', 'Two', '"s"']);

      // default variant: set, shown as defaultVariant, then cleared
      const withDefault = await ok('PUT', `${P}/flags/vflag`, { name: 'v', enabled: true, defaultVariantId: v1.id });
      assertShape(withDefault, 'flag', ['defaultVariant']);
      assert.equal(withDefault.defaultVariant.id, v1.id);
      assertShape(withDefault.defaultVariant, 'variant');
      assert.equal((await ok('GET', `${P}/flags/vflag`)).defaultVariant.key, 'v1');
      const cleared = await ok('PUT', `${P}/flags/vflag`, { name: 'v', enabled: true, defaultVariantId: '' });
      assert.equal(cleared.defaultVariant, undefined);
      assertError(await api('PUT', `${P}/flags/vflag`, { name: 'v', defaultVariantId: 'nope' }), 400,
        `variant "nope" not found for flag "${form.ns}/vflag"`);

      const flag = await ok('GET', `${P}/flags/vflag`);
      assert.deepEqual(flag.variants.map((v) => v.key), ['v1', 'v2b']);
      assert.deepEqual(await ok('DELETE', `${P}/flags/vflag/variants/${v2.id}`), {});
      assert.deepEqual((await ok('GET', `${P}/flags/vflag`)).variants.map((v) => v.key), ['v1']);
    });

    test('variant validation errors', async () => {
      await ok('POST', `${P}/flags`, { key: 'vval', name: 'v' });
      await ok('POST', `${P}/flags/vval/variants`, { key: 'same' });
      assertError(await api('POST', `${P}/flags/vval/variants`, { key: 'same' }), 400, /not unique/);
      assertError(await api('POST', `${P}/flags/vval/variants`, { name: 'x' }), 400, 'invalid field key: must not be empty');
      assertError(await api('POST', `${P}/flags/vval/variants`, { key: 'bad', attachment: '{nope' }), 400,
        'invalid field attachment: must be a json string');
      const big = JSON.stringify({ s: 'x'.repeat(10001) });
      assertError(await api('POST', `${P}/flags/vval/variants`, { key: 'big', attachment: big }), 400,
        'invalid field attachment: must be less than 10000 KB');
      assertError(await api('POST', `${P}/flags/nope/variants`, { key: 'x' }), 404, `flag "${form.ns}/nope" not found`);
      assertError(await api('PUT', `${P}/flags/vval/variants/00000000-0000-4000-8000-000000000000`, { key: 'x' }), 404,
        /not found/);
    });

    // Flipt checks an attachment with json.Valid only, so a repeated key and a number past a
    // double's range are stored as sent (export writes the key once, with its last value, and the
    // number as written; tests/unit/test_decl_roundtrip.c). Metadata is a google.protobuf.Struct,
    // which Flipt's gateway refuses with either.
    test('attachments take any valid JSON; metadata refuses repeated keys and numbers past a double', async () => {
      await ok('POST', `${P}/flags`, { key: 'vjson', name: 'v' });
      const a = await ok('POST', `${P}/flags/vjson/variants`, { key: 'big', attachment: '{"x": 1e400, "y": [-1e999]}' });
      assert.equal(a.attachment, '{"x":1e400,"y":[-1e999]}');
      const d = await ok('POST', `${P}/flags/vjson/variants`, { key: 'dup', attachment: '{"x":1,"x":2}' });
      assert.equal(d.attachment, '{"x":1,"x":2}');
      assertError(await api('POST', `${P}/flags`, '{"key":"m1","name":"m","metadata":{"a":1,"a":2}}'), 400,
        'invalid value for field metadata: duplicate map key "a"');
      assertError(await api('POST', `${P}/flags`, '{"key":"m2","name":"m","metadata":{"a":{"b":[{"c":1,"c":2}]}}}'), 400,
        'invalid value for field metadata: duplicate map key "c"');
      assertError(await api('POST', `${P}/flags`, '{"key":"m3","name":"m","metadata":{"a":{"b":[1e400]}}}'), 400,
        'invalid value for field metadata: invalid google.protobuf.Value: 1e400');
      assertError(await api('PUT', `${P}/flags/vjson`, '{"name":"v","metadata":{"a":-1e999}}'), 400,
        'invalid value for field metadata: invalid google.protobuf.Value: -1e999');
      // what a double holds (1e-400 reads as 0) and the same key in different maps are fine
      const m = await ok('POST', `${P}/flags`, '{"key":"m4","name":"m","metadata":{"a":{"k":1e-400},"b":{"k":1}}}');
      assert.deepEqual(m.metadata, { a: { k: 0 }, b: { k: 1 } });
    });
  });

  describe(`segments and constraints via ${form.name}`, () => {
    const P = form.prefix;
    before(() => ensureNamespace(form.ns));

    test('segment create/get/list/update/delete with every field', async () => {
      const s = await ok('POST', `${P}/segments`, { key: 'seg-crud', name: 'S', description: 'd', matchType: 'ANY_MATCH_TYPE' });
      assertShape(s, 'segment');
      assert.deepEqual([s.key, s.name, s.description, s.matchType, s.namespaceKey, s.constraints],
        ['seg-crud', 'S', 'd', 'ANY_MATCH_TYPE', form.ns, []]);
      assert.deepEqual(await ok('GET', `${nsPrefix(form.ns)}/segments/seg-crud`), s);
      const list = await ok('GET', `${P}/segments`);
      assert.deepEqual(Object.keys(list), ['segments', 'nextPageToken', 'totalCount']);
      assert.deepEqual(list.segments.find((x) => x.key === 'seg-crud'), s);
      const upd = await ok('PUT', `${P}/segments/seg-crud`, { name: 'S2', matchType: 0 });
      assert.deepEqual([upd.key, upd.name, upd.matchType], ['seg-crud', 'S2', 'ALL_MATCH_TYPE']);
      assert.deepEqual(await ok('DELETE', `${P}/segments/seg-crud`), {});
      assertError(await api('GET', `${P}/segments/seg-crud`), 404, `segment "${form.ns}/seg-crud" not found`);
    });

    test('segment validation errors', async () => {
      assertError(await api('POST', `${P}/segments`, { key: 'a/b', name: 'x' }), 400, 'invalid field key: contains invalid characters');
      assertError(await api('POST', `${P}/segments`, { key: 'seg-noname' }), 400, 'invalid field name: must not be empty');
      await ok('POST', `${P}/segments`, { key: 'seg-dup', name: 'x' });
      assertError(await api('POST', `${P}/segments`, { key: 'seg-dup', name: 'x' }), 400, `segment "${form.ns}/seg-dup" is not unique`);
    });

    test('constraints: create/update/delete, operator lower-cased, no-value operators blanked', async () => {
      await ok('POST', `${P}/segments`, { key: 'seg-c', name: 'c' });
      const c = await ok('POST', `${P}/segments/seg-c/constraints`,
        { type: 'STRING_COMPARISON_TYPE', property: 'plan', operator: 'EQ', value: 'pro', description: 'why' });
      assertShape(c, 'constraint');
      assert.match(c.id, UUID);
      assert.deepEqual([c.segmentKey, c.type, c.property, c.operator, c.value, c.namespaceKey, c.description],
        ['seg-c', 'STRING_COMPARISON_TYPE', 'plan', 'eq', 'pro', form.ns, 'why']);
      const upd = await ok('PUT', `${P}/segments/seg-c/constraints/${c.id}`,
        { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'present', value: '3' });
      assert.deepEqual([upd.id, upd.type, upd.property, upd.operator, upd.value], [c.id, 'NUMBER_COMPARISON_TYPE', 'age', 'present', '']);
      const c2 = await ok('POST', `${P}/segments/seg-c/constraints`,
        { type: 5, property: 'entityId', operator: 'isoneof', value: '["a","b"]' });
      assert.equal(c2.type, 'ENTITY_ID_COMPARISON_TYPE');
      const seg = await ok('GET', `${P}/segments/seg-c`);
      assert.deepEqual(seg.constraints.map((x) => x.id), [c.id, c2.id]);
      assertShape(seg.constraints[0], 'constraint');
      assert.deepEqual(await ok('DELETE', `${P}/segments/seg-c/constraints/${c.id}`), {});
      assert.deepEqual((await ok('GET', `${P}/segments/seg-c`)).constraints.map((x) => x.id), [c2.id]);
    });

    test('constraint validation errors', async () => {
      await ok('POST', `${P}/segments`, { key: 'seg-cv', name: 'c' });
      const C = `${P}/segments/seg-cv/constraints`;
      assertError(await api('POST', C, { type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'lt', value: '1' }), 400,
        'constraint operator "lt" is not valid for type string');
      assertError(await api('POST', C, { type: 'BOOLEAN_COMPARISON_TYPE', property: 'p', operator: 'eq', value: '1' }), 400,
        'constraint operator "eq" is not valid for type boolean');
      assertError(await api('POST', C, { type: 'NUMBER_COMPARISON_TYPE', property: 'p', operator: 'gt' }), 400,
        'invalid field value: must not be empty');
      assertError(await api('POST', C, { type: 'STRING_COMPARISON_TYPE', operator: 'eq', value: 'x' }), 400,
        'invalid field property: must not be empty');
      assertError(await api('POST', C, { property: 'p', operator: 'eq', value: 'x' }), 400,
        'invalid constraint type: "UNKNOWN_COMPARISON_TYPE"');
      const many = JSON.stringify(Array.from({ length: 101 }, (_, i) => `v${i}`));
      assertError(await api('POST', C, { type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'isoneof', value: many }), 400,
        'too many values provided for property "p" of type string (maximum 100)');
      const hundred = JSON.stringify(Array.from({ length: 100 }, (_, i) => `v${i}`));
      await ok('POST', C, { type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'isoneof', value: hundred });
      assertError(await api('POST', C, { type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'isoneof', value: 'not json' }), 400,
        'invalid value provided for property "p" of type string');
      assertError(await api('POST', `${P}/segments/nope/constraints`, { type: 1, property: 'p', operator: 'eq', value: 'x' }), 404,
        `segment "${form.ns}/nope" not found`);
    });
  });

  describe(`rules and distributions via ${form.name}`, () => {
    const P = form.prefix;
    let v1;
    let v2;
    before(async () => {
      await ensureNamespace(form.ns);
      await ok('POST', `${P}/flags`, { key: 'rflag', name: 'r', enabled: true });
      v1 = await ok('POST', `${P}/flags/rflag/variants`, { key: 'v1' });
      v2 = await ok('POST', `${P}/flags/rflag/variants`, { key: 'v2' });
      for (const k of ['rs1', 'rs2', 'rs3']) await ok('POST', `${P}/segments`, { key: k, name: k });
    });

    test('rule with one segment uses segmentKey; several use segmentKeys; get/list/update/delete', async () => {
      const r1 = await ok('POST', `${P}/flags/rflag/rules`, { segmentKey: 'rs1', rank: 1 });
      assertShape(r1, 'rule');
      assert.match(r1.id, UUID);
      assert.deepEqual([r1.flagKey, r1.segmentKey, r1.segmentKeys, r1.rank, r1.segmentOperator, r1.namespaceKey, r1.distributions],
        ['rflag', 'rs1', [], 1, 'OR_SEGMENT_OPERATOR', form.ns, []]);
      const r2 = await ok('POST', `${P}/flags/rflag/rules`,
        { segmentKeys: ['rs2', 'rs3', 'rs2'], segmentOperator: 'AND_SEGMENT_OPERATOR', rank: 2 });
      assert.deepEqual([r2.segmentKey, r2.segmentKeys, r2.segmentOperator], ['', ['rs2', 'rs3'], 'AND_SEGMENT_OPERATOR']);
      assert.deepEqual(await ok('GET', `${P}/flags/rflag/rules/${r1.id}`), r1);
      const list = await ok('GET', `${P}/flags/rflag/rules`);
      assert.deepEqual(Object.keys(list), ['rules', 'nextPageToken', 'totalCount']);
      assert.deepEqual(list.rules.map((r) => r.id), [r1.id, r2.id]);
      assert.equal(list.totalCount, 2);
      // a single segment forces OR
      const upd = await ok('PUT', `${P}/flags/rflag/rules/${r2.id}`, { segmentKeys: ['rs3'], segmentOperator: 'AND_SEGMENT_OPERATOR' });
      assert.deepEqual([upd.id, upd.segmentKey, upd.segmentKeys, upd.segmentOperator, upd.rank], [r2.id, 'rs3', [], 'OR_SEGMENT_OPERATOR', 2]);
      assert.deepEqual(await ok('DELETE', `${P}/flags/rflag/rules/${r1.id}`), {});
      const after1 = await ok('GET', `${P}/flags/rflag/rules`);
      assert.deepEqual(after1.rules.map((r) => [r.id, r.rank]), [[r2.id, 1]]);
      await ok('DELETE', `${P}/flags/rflag/rules/${r2.id}`);
    });

    test('rule validation errors', async () => {
      assertError(await api('POST', `${P}/flags/rflag/rules`, { rank: 1 }), 400, 'invalid field segmentKey or segmentKeys: must not be empty');
      assertError(await api('POST', `${P}/flags/rflag/rules`, { segmentKey: 'rs1', segmentKeys: ['rs2'], rank: 1 }), 400,
        'invalid field segmentKey or segmentKeys: only one can be present');
      assertError(await api('POST', `${P}/flags/rflag/rules`, { segmentKey: 'rs1', rank: 0 }), 400, 'invalid field rank: must be greater than 0');
      // Flipt's SQLite store names both for either miss (internal/storage/sql/sqlite/sqlite.go CreateRule)
      assertError(await api('POST', `${P}/flags/rflag/rules`, { segmentKey: 'nope', rank: 1 }), 404, `flag "${form.ns}/rflag" or segment "${form.ns}/nope" not found`);
      assertError(await api('POST', `${P}/flags/nope/rules`, { segmentKey: 'rs1', rank: 1 }), 404, `flag "${form.ns}/nope" or segment "${form.ns}/rs1" not found`);
      assertError(await api('GET', `${P}/flags/rflag/rules/00000000-0000-4000-8000-000000000000`), 404, /^rule ".*" not found$/);
    });

    test('distributions: create/update/delete; shown inside the rule', async () => {
      const rule = await ok('POST', `${P}/flags/rflag/rules`, { segmentKey: 'rs1', rank: 1 });
      const D = `${P}/flags/rflag/rules/${rule.id}/distributions`;
      const d1 = await ok('POST', D, { variantId: v1.id, rollout: 33.33 });
      assertShape(d1, 'distribution');
      assert.deepEqual([d1.ruleId, d1.variantId, d1.rollout], [rule.id, v1.id, 33.33]);
      const d2 = await ok('POST', D, { variant_id: v2.id, rollout: 66.67 });
      const got = await ok('GET', `${P}/flags/rflag/rules/${rule.id}`);
      assert.deepEqual(got.distributions.map((d) => [d.id, d.variantId, d.rollout]), [[d1.id, v1.id, 33.33], [d2.id, v2.id, 66.67]]);
      assertShape(got.distributions[0], 'distribution');
      const upd = await ok('PUT', `${D}/${d1.id}`, { variantId: v1.id, rollout: 50 });
      assert.deepEqual([upd.id, upd.rollout], [d1.id, 50]);
      assertError(await api('POST', D, { variantId: v1.id, rollout: 101 }), 400, "invalid field rollout: must be less than or equal to '100'");
      assertError(await api('POST', D, { variantId: v1.id, rollout: -1 }), 400, "invalid field rollout: must be greater than or equal to '0'");
      assertError(await api('POST', D, { rollout: 1 }), 400, 'invalid field variantId: must not be empty');
      assertError(await api('POST', D, { variantId: '00000000-0000-4000-8000-000000000000', rollout: 1 }), 404, /not found/);
      assert.deepEqual(await ok('DELETE', `${D}/${d2.id}?variantId=${v2.id}`), {});
      assert.deepEqual((await ok('GET', `${P}/flags/rflag/rules/${rule.id}`)).distributions.map((d) => d.id), [d1.id]);
      await ok('DELETE', `${P}/flags/rflag/rules/${rule.id}`);
    });

    test('ordering rules rewrites ranks 1..N', async () => {
      const ids = [];
      for (let i = 1; i <= 3; i++) ids.push((await ok('POST', `${P}/flags/rflag/rules`, { segmentKey: `rs${i}`, rank: i })).id);
      const order = [ids[2], ids[0], ids[1]];
      assert.deepEqual(await ok('PUT', `${P}/flags/rflag/rules/order`, { ruleIds: order }), {});
      const list = await ok('GET', `${P}/flags/rflag/rules`);
      assert.deepEqual(list.rules.map((r) => [r.id, r.rank]), order.map((id, i) => [id, i + 1]));
      assertError(await api('PUT', `${P}/flags/rflag/rules/order`, { ruleIds: [ids[0]] }), 400,
        'invalid field ruleIds: must contain atleast 2 elements');
      for (const id of ids) await ok('DELETE', `${P}/flags/rflag/rules/${id}`);
    });

    test('cascades: deleting a variant removes its distributions; segments in use cannot be deleted; flag delete removes rules', async () => {
      await ok('POST', `${P}/flags`, { key: 'cflag', name: 'c' });
      await ok('POST', `${P}/segments`, { key: 'cseg', name: 'c' });
      const va = await ok('POST', `${P}/flags/cflag/variants`, { key: 'a' });
      const vb = await ok('POST', `${P}/flags/cflag/variants`, { key: 'b' });
      const rule = await ok('POST', `${P}/flags/cflag/rules`, { segmentKey: 'cseg', rank: 1 });
      const D = `${P}/flags/cflag/rules/${rule.id}/distributions`;
      await ok('POST', D, { variantId: va.id, rollout: 50 });
      const db = await ok('POST', D, { variantId: vb.id, rollout: 50 });
      await ok('DELETE', `${P}/flags/cflag/variants/${va.id}`);
      assert.deepEqual((await ok('GET', `${P}/flags/cflag/rules/${rule.id}`)).distributions.map((d) => d.id), [db.id]);

      assertError(await api('DELETE', `${P}/segments/cseg`), 400, `segment "${form.ns}/cseg" is in use`); // internal/storage/sql/sqlite/sqlite.go DeleteSegment
      assert.equal((await api('GET', `${P}/segments/cseg`)).status, 200);

      await ok('DELETE', `${P}/flags/cflag`);
      assert.deepEqual(await ok('DELETE', `${P}/segments/cseg`), {}, 'segment free once the flag and its rules are gone');
      await ok('POST', `${P}/flags`, { key: 'cflag', name: 'c again' });
      const rules = await ok('GET', `${P}/flags/cflag/rules`);
      assert.deepEqual([rules.rules, rules.totalCount], [[], 0]);
    });
  });
}

describe('rollouts (namespaced form only)', () => {
  const P = nsPrefix('roll');
  const R = `${P}/flags/bflag/rollouts`;
  before(async () => {
    await ensureNamespace('roll');
    await ok('POST', `${P}/flags`, { key: 'bflag', name: 'b', type: 'BOOLEAN_FLAG_TYPE' });
    await ok('POST', `${P}/segments`, { key: 'ro1', name: 'x' });
    await ok('POST', `${P}/segments`, { key: 'ro2', name: 'x' });
  });

  test('threshold and segment rollouts: shapes, get, list under "rules", update, delete', async () => {
    const t = await ok('POST', R, { rank: 1, description: 'pct', threshold: { percentage: 33.3, value: true } });
    assertShape(t, 'rollout', ['threshold']);
    assert.deepEqual([t.namespaceKey, t.flagKey, t.type, t.rank, t.description], ['roll', 'bflag', 'THRESHOLD_ROLLOUT_TYPE', 1, 'pct']);
    assert.deepEqual(t.threshold, { percentage: 33.3, value: true });
    const s = await ok('POST', R, { rank: 2, segment: { segmentKey: 'ro1', value: true } });
    assertShape(s, 'rollout', ['segment']);
    assert.deepEqual(s.segment, { segmentKey: 'ro1', value: true, segmentKeys: [], segmentOperator: 'OR_SEGMENT_OPERATOR' });
    const m = await ok('POST', R, { rank: 3, segment: { segment_keys: ['ro1', 'ro2'], segment_operator: 'AND_SEGMENT_OPERATOR' } });
    assert.deepEqual(m.segment, { segmentKey: '', value: false, segmentKeys: ['ro1', 'ro2'], segmentOperator: 'AND_SEGMENT_OPERATOR' });
    assert.deepEqual(await ok('GET', `${R}/${t.id}`), t);
    const list = await ok('GET', R);
    assert.deepEqual(Object.keys(list), ['rules', 'nextPageToken', 'totalCount']);
    assert.deepEqual(list.rules.map((x) => x.id), [t.id, s.id, m.id]);
    assert.equal(list.totalCount, 3);
    const upd = await ok('PUT', `${R}/${t.id}`, { description: 'half', threshold: { percentage: 50, value: false } });
    assert.deepEqual([upd.description, upd.threshold, upd.rank], ['half', { percentage: 50, value: false }, 1]);
    assertError(await api('PUT', `${R}/${t.id}`, { segment: { segmentKey: 'ro1' } }), 400,
      'cannot change type of rollout: have "THRESHOLD_ROLLOUT_TYPE" attempted "SEGMENT_ROLLOUT_TYPE"');
    assert.deepEqual(await ok('DELETE', `${R}/${s.id}`), {});
    const after1 = await ok('GET', R);
    assert.deepEqual(after1.rules.map((x) => [x.id, x.rank]), [[t.id, 1], [m.id, 2]]);
    for (const x of after1.rules) await ok('DELETE', `${R}/${x.id}`);
  });

  test('ordering rollouts rewrites ranks', async () => {
    const ids = [];
    for (let i = 1; i <= 3; i++) ids.push((await ok('POST', R, { rank: i, threshold: { percentage: i, value: true } })).id);
    const order = [ids[1], ids[2], ids[0]];
    assert.deepEqual(await ok('PUT', `${R}/order`, { rolloutIds: order }), {});
    assert.deepEqual((await ok('GET', R)).rules.map((x) => [x.id, x.rank]), order.map((id, i) => [id, i + 1]));
    assertError(await api('PUT', `${R}/order`, { rolloutIds: [] }), 400, 'invalid field rolloutIds: must contain atleast 2 elements');
    for (const id of ids) await ok('DELETE', `${R}/${id}`);
  });

  test('rollout validation errors', async () => {
    await ok('POST', R, { rank: 1, threshold: { percentage: 10, value: true } });
    assertError(await api('POST', R, { rank: 1, threshold: { percentage: 20, value: true } }), 400, 'rank number: 1 already exists');
    assertError(await api('POST', R, { rank: 2 }), 400, 'rollout rule is missing');
    assertError(await api('POST', R, { rank: 2, threshold: { percentage: 1 }, segment: { segmentKey: 'ro1' } }), 400, /oneof/);
    // Flipt's SQLite store (internal/storage/sql/sqlite/sqlite.go CreateRollout), quotes as Flipt places them
    assertError(await api('POST', R, { rank: 2, segment: { segmentKey: 'nope' } }), 404, 'flag "roll/bflag or segment nope" not found');
    assertError(await api('POST', R, { rank: 2, threshold: 5 }), 400, /threshold/);
    assertError(await api('POST', `${P}/flags/nope/rollouts`, { rank: 1, threshold: { percentage: 1 } }), 404, 'flag "roll/nope" not found');
    // no un-namespaced form
    assert.equal((await api('GET', '/api/v1/flags/bflag/rollouts')).status, 404);
  });
});

describe('pagination', () => {
  const P = nsPrefix('pages');
  before(async () => {
    await ensureNamespace('pages');
    for (let i = 0; i < 5; i++) await ok('POST', `${P}/flags`, { key: `p${i}`, name: `p${i}` });
  });

  test('limit and nextPageToken walk every flag once; totalCount counts them all', async () => {
    const seen = [];
    let token = '';
    let pages = 0;
    do {
      const q = `limit=2${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`;
      const page = await ok('GET', `${P}/flags?${q}`);
      assert.equal(page.totalCount, 5);
      assert.ok(page.flags.length <= 2);
      seen.push(...page.flags.map((f) => f.key));
      token = page.nextPageToken;
      pages++;
    } while (token && pages < 10);
    assert.deepEqual(seen, ['p0', 'p1', 'p2', 'p3', 'p4']);
    assert.equal(pages, 3);
  });

  test('snake_case page_token, offset, limit 0 means all, reference ignored', async () => {
    const first = await ok('GET', `${P}/flags?limit=3`);
    const rest = await ok('GET', `${P}/flags?limit=3&page_token=${encodeURIComponent(first.nextPageToken)}`);
    assert.deepEqual(rest.flags.map((f) => f.key), ['p3', 'p4']);
    assert.equal(rest.nextPageToken, '');
    assert.deepEqual((await ok('GET', `${P}/flags?limit=2&offset=4`)).flags.map((f) => f.key), ['p4']);
    assert.equal((await ok('GET', `${P}/flags?reference=main`)).flags.length, 5);
    assert.equal((await ok('GET', `${P}/flags?limit=0`)).flags.length, 5);
  });

  test('bad pagination input is 400', async () => {
    assertError(await api('GET', `${P}/flags?limit=abc`), 400, /limit/);
    assertError(await api('GET', `${P}/flags?offset=1.5`), 400, /offset/);
    assertError(await api('GET', `${P}/flags?offset=2`), 400, 'limit must be set when offset or pageToken is set');
    assertError(await api('GET', `${P}/flags?limit=1&pageToken=%25%25%25`), 400, /pageToken/);
  });

  test('segments and namespaces paginate too', async () => {
    for (let i = 0; i < 3; i++) await ok('POST', `${P}/segments`, { key: `ps${i}`, name: 'x' });
    const a = await ok('GET', `${P}/segments?limit=2`);
    assert.equal(a.totalCount, 3);
    assert.notEqual(a.nextPageToken, '');
    const b = await ok('GET', `${P}/segments?limit=2&pageToken=${encodeURIComponent(a.nextPageToken)}`);
    assert.deepEqual([...a.segments, ...b.segments].map((s) => s.key), ['ps0', 'ps1', 'ps2']);
    const ns = await ok('GET', '/api/v1/namespaces?limit=1');
    assert.equal(ns.namespaces.length, 1);
    assert.ok(ns.totalCount >= 2);
    assert.notEqual(ns.nextPageToken, '');
  });
});

describe('request decoding', () => {
  const P = nsPrefix('decode');
  before(() => ensureNamespace('decode'));

  test('snake_case fields are accepted', async () => {
    const s = await ok('POST', `${P}/segments`, { key: 'snake', name: 'x', match_type: 'ANY_MATCH_TYPE' });
    assert.equal(s.matchType, 'ANY_MATCH_TYPE');
    await ok('POST', `${P}/flags`, { key: 'snakef', name: 'x' });
    const v = await ok('POST', `${P}/flags/snakef/variants`, { key: 'v' });
    const f = await ok('PUT', `${P}/flags/snakef`, { name: 'x', default_variant_id: v.id });
    assert.equal(f.defaultVariant.id, v.id);
    const r = await ok('POST', `${P}/flags/snakef/rules`, { segment_keys: ['snake'], rank: '1' });
    assert.deepEqual([r.segmentKey, r.rank], ['snake', 1]);
    await ok('POST', `${P}/flags/snakef/rules`, { segment_key: 'snake', rank: 2 });
    const ids = (await ok('GET', `${P}/flags/snakef/rules`)).rules.map((x) => x.id).reverse();
    await ok('PUT', `${P}/flags/snakef/rules/order`, { rule_ids: ids });
    assert.deepEqual((await ok('GET', `${P}/flags/snakef/rules`)).rules.map((x) => x.id), ids);
  });

  test('unknown keys are ignored, null means absent, any Content-Type is JSON', async () => {
    const f = await ok('POST', `${P}/flags`, { key: 'lenient', name: 'x', description: null, whatever: [1, { a: 2 }] });
    assert.equal(f.description, '');
    const r = await api('POST', `${P}/flags`, JSON.stringify({ key: 'textplain', name: 'x' }), { 'Content-Type': 'text/plain;charset=UTF-8' });
    assert.equal(r.status, 200);
  });

  test('wrong JSON types and malformed bodies are 400', async () => {
    assertError(await api('POST', `${P}/flags`, { key: 'x', name: 5 }), 400, /name/);
    assertError(await api('POST', `${P}/flags`, { key: 'x', name: 'x', enabled: 'yes' }), 400, /enabled/);
    assertError(await api('POST', `${P}/flags`, { key: 'x', name: 'x', type: 'NOT_A_TYPE' }), 400, /type/);
    assertError(await api('POST', `${P}/flags`, { key: 'x', name: 'x', metadata: 'str' }), 400, /metadata/);
    assertError(await api('POST', `${P}/flags/lenient/variants`, { key: 'x', attachment: { a: 1 } }), 400, /attachment/);
    assertError(await api('POST', `${P}/flags/lenient/rules`, { segmentKeys: 'snake', rank: 1 }), 400, /segmentKeys/);
    assertError(await api('POST', `${P}/flags/lenient/rules`, { segmentKey: 'snake', rank: 1.5 }), 400, /rank/);
    assertError(await api('POST', `${P}/segments`, { key: 'x', name: 'x', matchType: true }), 400, /matchType/);
    assertError(await api('POST', `${P}/flags`, '{"key": '), 400, /JSON/);
    assertError(await api('POST', `${P}/flags`, '[1,2]'), 400, /object/);
  });

  test('an empty body is {} and path parameters win over body fields', async () => {
    assertError(await api('POST', `${P}/flags`, ''), 400, 'invalid field key: must not be empty');
    await ok('POST', `${P}/flags`, { key: 'pathwins', name: 'x' });
    const upd = await ok('PUT', `${P}/flags/pathwins`, { key: 'lenient', namespaceKey: 'default', name: 'changed' });
    assert.deepEqual([upd.key, upd.namespaceKey, upd.name], ['pathwins', 'decode', 'changed']);
    assert.equal((await ok('GET', `${P}/flags/lenient`)).name, 'x');
  });

  test('without a namespace in the path, the namespaceKey field (body or query) picks it', async () => {
    const f = await ok('POST', '/api/v1/flags', { key: 'viafield', name: 'x', namespaceKey: 'decode' });
    assert.equal(f.namespaceKey, 'decode');
    assert.equal((await ok('GET', `${P}/flags/viafield`)).key, 'viafield');
    assert.equal((await ok('GET', '/api/v1/flags/viafield?namespaceKey=decode')).namespaceKey, 'decode');
    assert.equal((await ok('GET', '/api/v1/flags/viafield?namespace_key=decode')).namespaceKey, 'decode');
    assert.equal((await api('GET', '/api/v1/flags/viafield')).status, 404);
  });

  test('trailing slashes are ignored', async () => {
    assert.equal((await ok('GET', `${P}/flags/`)).flags.length > 0, true);
    assert.equal((await ok('GET', `${P}/flags/pathwins/`)).key, 'pathwins');
    assert.equal((await ok('POST', `${P}/segments/`, { key: 'slash', name: 'x' })).key, 'slash');
    assert.ok((await ok('GET', '/api/v1/namespaces/')).namespaces.length >= 1);
  });

  test('wrong method on a known path is answered as Flipt does', async () => {
    const r = await api('PATCH', `${P}/flags/pathwins`, { name: 'x' });
    assert.ok(r.status === 501 || r.status === 405, `status ${r.status}`);
    // RFC 9110: a 405 lists the methods the resource takes (it said GET, POST, PUT, DELETE for any path)
    if (r.status === 405) assert.equal(r.headers.get('allow'), 'GET, PUT, DELETE');
    const e = await api('DELETE', '/evaluate/v1/variant');
    assert.equal(e.status, 405);
    assert.equal(e.headers.get('allow'), 'POST');
  });
});

describe('metrics', () => {
  test('writes are counted by operation and result, with a latency histogram', async () => {
    await ensureNamespace('metrics');
    await ok('POST', `${nsPrefix('metrics')}/flags`, { key: 'm', name: 'm' });
    await api('POST', `${nsPrefix('metrics')}/flags`, { key: 'm', name: 'm' });
    const text = await (await fetch(`${base}/metrics`)).text();
    const count = (op, result) => {
      const m = text.match(new RegExp(`edgeflag_store_writes_total\\{operation="${op}",result="${result}"\\} (\\d+)`));
      return m ? Number(m[1]) : 0;
    };
    assert.ok(count('flag_create', 'ok') >= 1);
    assert.ok(count('flag_create', 'error') >= 1);
    assert.ok(count('namespace_create', 'ok') >= 1);
    assert.match(text, /edgeflag_store_write_duration_seconds_count \d+/);
  });
});

describe('read-only mode (serving a snapshot file, no store)', () => {
  let ro;
  before(async () => {
    const snap = path.join(repoRoot, 'tests/compat/examples/snapshot.json');
    ro = await startServer(() => ['--snapshot', snap]);
  });
  after(() => stopServer(ro));

  test('writes answer Flipt\'s read-only error (internal/storage/unmodifiable: 500, Internal)', async () => {
    assertError(await api('POST', '/api/v1/flags', { key: 'x', name: 'x' }, {}, ro.base), 500, 'modification is not allowed in read-only mode');
    assertError(await api('PUT', '/api/v1/namespaces/default/flags/x', { name: 'x' }, {}, ro.base), 500, 'modification is not allowed in read-only mode');
    assertError(await api('DELETE', '/api/v1/namespaces/default', undefined, {}, ro.base), 500, 'modification is not allowed in read-only mode');
    assertError(await api('PUT', '/api/v1/namespaces/default/flags/x/rollouts/order', { rolloutIds: ['a', 'b'] }, {}, ro.base), 500,
      'modification is not allowed in read-only mode');
  });

  test('management reads are not supported with a single snapshot file (501; a directory answers them)', async () => {
    assertError(await api('GET', '/api/v1/flags', undefined, {}, ro.base), 501, 'not supported in snapshot mode');
    assertError(await api('GET', '/api/v1/namespaces', undefined, {}, ro.base), 501, 'not supported in snapshot mode');
  });
});
