// Flipt's errors, message for message: every management route driven the way Flipt's Go SDK over
// HTTP (sdk/go/http/flipt.sdk.gen.go of v1.61.1: the whole request as protojson, zero values left
// out, GET lists always sending limit, offset, pageToken and reference) and @flipt-io/flipt do, with
// the HTTP status, the gRPC code and the message each case must answer. Every expected value names
// the Flipt v1.61.1 source it comes from; clients such as the Go SDK turn the body into
// status.Error(code, message) and callers compare both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FliptClient } from '@flipt-io/flipt';
import { startServer, call } from './server.mjs';
import { tempDir } from './tmp.mjs';

let srv;
const NS = '/api/v1/namespaces';

// protojson.Marshal: zero values (false, 0, "", empty lists) are left out
const protojson = (v) =>
  Object.fromEntries(Object.entries(v).filter(([, x]) => !(x === '' || x === 0 || x === false || x == null || (Array.isArray(x) && x.length === 0))));

// One call as the Go SDK makes it. GET lists carry their paging fields in the query, always.
async function sdk(method, p, req = {}, { list = false, query } = {}) {
  let url = p;
  if (list) {
    const q = new URLSearchParams({ limit: String(req.limit ?? 0), offset: String(req.offset ?? 0), pageToken: req.pageToken ?? '', reference: '' });
    url += '?' + q.toString().replace(/%20/g, '+'); // url.Values.Encode writes a space as '+'
  } else if (query) {
    url += '?' + new URLSearchParams(query).toString();
  }
  const body = method === 'POST' || method === 'PUT' ? protojson(req) : undefined;
  return call(srv.url, method, url, body);
}

async function ok(method, p, req, opts) {
  const r = await sdk(method, p, req, opts);
  assert.equal(r.status, 200, `${method} ${p}: ${r.text}`);
  return r.json;
}

// status, gRPC code, message, exactly; details always []
function same(r, status, code, message, what) {
  assert.equal(r.status, status, `${what}: ${r.text}`);
  assert.deepEqual(r.json, { code, message, details: [] }, what);
}

const InvalidArgument = [400, 3];
const NotFound = [404, 5];
const Internal = [500, 13];

let ids = {};

before(async () => {
  srv = await startServer([]);
  await ok('POST', NS, { key: 'other', name: 'Other' });
  await ok('POST', `${NS}/default/flags`, { namespaceKey: 'default', key: 'f', name: 'F', type: 'VARIANT_FLAG_TYPE' });
  await ok('POST', `${NS}/default/flags`, { namespaceKey: 'default', key: 'b', name: 'B', type: 'BOOLEAN_FLAG_TYPE' });
  ids.v1 = (await ok('POST', `${NS}/default/flags/f/variants`, { namespaceKey: 'default', flagKey: 'f', key: 'v1' })).id;
  await ok('POST', `${NS}/default/segments`, { namespaceKey: 'default', key: 's', name: 'S', matchType: 'ALL_MATCH_TYPE' });
  await ok('POST', `${NS}/other/segments`, { namespaceKey: 'other', key: 'onlyother', name: 'O', matchType: 'ALL_MATCH_TYPE' });
  ids.rule = (await ok('POST', `${NS}/default/flags/f/rules`, { namespaceKey: 'default', flagKey: 'f', segmentKey: 's', rank: 1 })).id;
  ids.rollout = (await ok('POST', `${NS}/default/flags/b/rollouts`, { namespaceKey: 'default', flagKey: 'b', rank: 1, threshold: { percentage: 50, value: true } })).id;
  ids.constraint = (await ok('POST', `${NS}/default/segments/s/constraints`, { namespaceKey: 'default', segmentKey: 's', type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'eq', value: 'x' })).id;
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0);
});

test('pagination: which lists need a limit, and invalid page tokens reported as received', async () => {
  // rpc/flipt/validation.go: ListFlagRequest, ListSegmentRequest, ListRuleRequest only
  for (const p of [`${NS}/default/flags`, `${NS}/default/segments`, `${NS}/default/flags/f/rules`]) {
    same(await sdk('GET', p, { pageToken: 'x' }, { list: true }), ...InvalidArgument, 'limit must be set when offset or pageToken is set', p);
    same(await sdk('GET', p, { offset: 1 }, { list: true }), ...InvalidArgument, 'limit must be set when offset or pageToken is set', p);
    // internal/storage/sql/common/util.go decodePageToken: %q of the token as the query decoded it
    same(await sdk('GET', p, { limit: 1, pageToken: 'Hello World' }, { list: true }), ...InvalidArgument, 'pageToken is not valid: "Hello World"', p);
  }
  // namespaces and rollouts are not validated: the store reports the token (namespace.go, rollout.go)
  for (const p of [NS, `${NS}/default/flags/b/rollouts`]) {
    same(await sdk('GET', p, { pageToken: 'Hello World' }, { list: true }), ...InvalidArgument, 'pageToken is not valid: "Hello World"', p);
    const all = await ok('GET', p, { offset: 1 }, { list: true });
    assert.ok(Array.isArray(all.namespaces ?? all.rules), p);
  }
  // base64 of JSON that is not a page token (util.go: json.Unmarshal into {key string, offset uint64})
  const bad = Buffer.from('{"offset":-1}').toString('base64');
  same(await sdk('GET', `${NS}/default/flags`, { limit: 1, pageToken: bad }, { list: true }), ...InvalidArgument, `pageToken is not valid: "${bad}"`, 'negative offset');
  // a token of {} is offset 0, as json.Unmarshal leaves it
  const empty = Buffer.from('{}').toString('base64');
  assert.deepEqual((await ok('GET', `${NS}/default/flags`, { limit: 5, pageToken: empty }, { list: true })).flags.map((f) => f.key).sort(), ['b', 'f']);
  // @flipt-io/flipt's listFlags escapes the token (URLSearchParams) and reports the message
  const client = new FliptClient({ url: srv.url });
  await assert.rejects(client.flags.listFlags('default', { limit: 1, pageToken: 'Hello World' }), { message: 'pageToken is not valid: "Hello World"' });
  await assert.rejects(client.flags.listFlags('default', { pageToken: 'abc' }), { message: 'limit must be set when offset or pageToken is set' });
});

test('rules and rollouts naming an unknown flag or a segment of another namespace', async () => {
  // internal/storage/sql/sqlite/sqlite.go CreateRule: one message for the failed foreign key
  same(await sdk('POST', `${NS}/default/flags/f/rules`, { namespaceKey: 'default', flagKey: 'f', segmentKey: 'onlyother', rank: 2 }),
    ...NotFound, 'flag "default/f" or segment "default/onlyother" not found', 'rule, segment of another namespace');
  same(await sdk('POST', `${NS}/default/flags/nf/rules`, { namespaceKey: 'default', flagKey: 'nf', segmentKey: 's', rank: 1 }),
    ...NotFound, 'flag "default/nf" or segment "default/s" not found', 'rule, unknown flag');
  // the request's single segmentKey is quoted: empty when segmentKeys is used
  same(await sdk('POST', `${NS}/default/flags/f/rules`, { namespaceKey: 'default', flagKey: 'f', segmentKeys: ['s', 'nope'], segmentOperator: 'AND_SEGMENT_OPERATOR', rank: 2 }),
    ...NotFound, 'flag "default/f" or segment "default/" not found', 'rule, segmentKeys');
  same(await sdk('POST', `${NS}/other/flags/f/rules`, { namespaceKey: 'other', flagKey: 'f', segmentKey: 'onlyother', rank: 1 }),
    ...NotFound, 'flag "other/f" or segment "other/onlyother" not found', 'rule, flag of another namespace');
  // sqlite.go CreateRollout: (sic) the quote closes after the segment key
  same(await sdk('POST', `${NS}/default/flags/b/rollouts`, { namespaceKey: 'default', flagKey: 'b', rank: 2, segment: { segmentKey: 'onlyother', value: true } }),
    ...NotFound, 'flag "default/b or segment onlyother" not found', 'rollout, segment of another namespace');
  same(await sdk('POST', `${NS}/default/flags/nf/rollouts`, { namespaceKey: 'default', flagKey: 'nf', rank: 1, segment: { segmentKey: 's', value: true } }),
    ...NotFound, 'flag "default/nf or segment s" not found', 'rollout, unknown flag');
  same(await sdk('POST', `${NS}/default/flags/nf/rollouts`, { namespaceKey: 'default', flagKey: 'nf', rank: 1, threshold: { percentage: 5, value: true } }),
    ...NotFound, 'flag "default/nf" not found', 'threshold rollout, unknown flag');
  // sqlite.go UpdateRule: a failed foreign key names the rule
  same(await sdk('PUT', `${NS}/default/flags/f/rules/${ids.rule}`, { namespaceKey: 'default', flagKey: 'f', id: ids.rule, segmentKey: 'onlyother' }),
    ...NotFound, `rule "default/${ids.rule}" not found`, 'rule update, unknown segment');
  // common/rule.go distributionValidationHelper: one message for rule, variant and flag
  same(await sdk('POST', `${NS}/default/flags/f/rules/nope/distributions`, { namespaceKey: 'default', flagKey: 'f', ruleId: 'nope', variantId: ids.v1, rollout: 50 }),
    ...NotFound, `variant "${ids.v1}", rule "nope", flag "f" in namespace "default" not found`, 'distribution, unknown rule');
  same(await sdk('POST', `${NS}/default/flags/f/rules/${ids.rule}/distributions`, { namespaceKey: 'default', flagKey: 'f', ruleId: ids.rule, variantId: 'nope', rollout: 50 }),
    ...NotFound, `variant "nope", rule "${ids.rule}", flag "f" in namespace "default" not found`, 'distribution, unknown variant');
  same(await sdk('PUT', `${NS}/default/flags/f/rules/${ids.rule}/distributions/d`, { namespaceKey: 'default', flagKey: 'f', ruleId: ids.rule, id: 'd', variantId: 'nope', rollout: 50 }),
    ...NotFound, `variant "nope", rule "${ids.rule}", flag "f" in namespace "default" not found`, 'distribution update, unknown variant');
});

test('validation of every write, as rpc/flipt/validation.go words it', async () => {
  const F = `${NS}/default/flags`;
  const cases = [
    ['POST', F, { name: 'x' }, 'invalid field key: must not be empty'],
    ['POST', F, { key: 'a b', name: 'x' }, 'invalid field key: contains invalid characters'],
    ['POST', F, { key: 'ok' }, 'invalid field name: must not be empty'],
    ['PUT', `${F}/f`, { key: 'f' }, 'invalid field name: must not be empty'],
    ['POST', `${F}/f/variants`, { flagKey: 'f' }, 'invalid field key: must not be empty'],
    ['POST', `${F}/f/variants`, { flagKey: 'f', key: 'v2', attachment: '{bad' }, 'invalid field attachment: must be a json string'],
    ['POST', `${NS}/default/segments`, { key: 's2' }, 'invalid field name: must not be empty'],
    ['POST', `${NS}/default/segments/s/constraints`, { segmentKey: 's', type: 'STRING_COMPARISON_TYPE', operator: 'eq', value: 'v' }, 'invalid field property: must not be empty'],
    ['POST', `${NS}/default/segments/s/constraints`, { segmentKey: 's', type: 'STRING_COMPARISON_TYPE', property: 'p', value: 'v' }, 'invalid field operator: must not be empty'],
    ['POST', `${NS}/default/segments/s/constraints`, { segmentKey: 's', type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'eq' }, 'invalid field value: must not be empty'],
    ['POST', `${NS}/default/segments/s/constraints`, { segmentKey: 's', type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'zz', value: 'v' }, 'constraint operator "zz" is not valid for type string'],
    ['POST', `${NS}/default/segments/s/constraints`, { segmentKey: 's', type: 'BOOLEAN_COMPARISON_TYPE', property: 'p', operator: 'eq', value: 'x' }, 'constraint operator "eq" is not valid for type boolean'],
    ['POST', `${NS}/default/segments/s/constraints`, { segmentKey: 's', type: 'DATETIME_COMPARISON_TYPE', property: 'p', operator: 'eq', value: 'yesterday' }, 'parsing datetime from "yesterday"'],
    ['POST', `${NS}/default/segments/s/constraints`, { segmentKey: 's', type: 'ENTITY_ID_COMPARISON_TYPE', property: 'p', operator: 'eq', value: 'x' }, 'property is p instead of "entityId"'],
    ['POST', `${NS}/default/segments/s/constraints`, { segmentKey: 's', type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'isoneof', value: 'nope' }, 'invalid value provided for property "p" of type string'],
    ['POST', `${F}/f/rules`, { flagKey: 'f', segmentKey: 's' }, 'invalid field rank: must be greater than 0'],
    ['POST', `${F}/f/rules`, { flagKey: 'f', rank: 1 }, 'invalid field segmentKey or segmentKeys: must not be empty'],
    ['POST', `${F}/f/rules`, { flagKey: 'f', segmentKey: 's', segmentKeys: ['s'], rank: 1 }, 'invalid field segmentKey or segmentKeys: only one can be present'],
    ['PUT', `${F}/f/rules/order`, { flagKey: 'f', ruleIds: ['a'] }, 'invalid field ruleIds: must contain atleast 2 elements'],
    ['PUT', `${F}/b/rollouts/order`, { flagKey: 'b', rolloutIds: ['a'] }, 'invalid field rolloutIds: must contain atleast 2 elements'],
    ['POST', `${F}/f/rules/r/distributions`, { flagKey: 'f', ruleId: 'r', rollout: 5 }, 'invalid field variantId: must not be empty'],
    ['POST', `${F}/f/rules/r/distributions`, { flagKey: 'f', ruleId: 'r', variantId: 'v', rollout: 101 }, "invalid field rollout: must be less than or equal to '100'"],
    ['POST', `${F}/f/rules/r/distributions`, { flagKey: 'f', ruleId: 'r', variantId: 'v', rollout: -1 }, "invalid field rollout: must be greater than or equal to '0'"],
    ['POST', `${F}/b/rollouts`, { flagKey: 'b', rank: 2, threshold: { percentage: 105, value: true } }, 'invalid field threshold.percentage: must be within range [0, 100]'],
    ['POST', `${F}/b/rollouts`, { flagKey: 'b', rank: 2, segment: { value: true } }, 'invalid field segmentKey or segmentKeys: must not be empty'],
    // internal/storage/sql/common/rollout.go CreateRollout
    ['POST', `${F}/b/rollouts`, { flagKey: 'b', rank: 2 }, 'rollout rule is missing'],
    ['POST', `${F}/b/rollouts`, { flagKey: 'b', rank: 1, threshold: { percentage: 5, value: true } }, 'rank number: 1 already exists'],
    ['PUT', `${F}/b/rollouts/${'ROLLOUT'}`, { flagKey: 'b', id: 'ROLLOUT', segment: { segmentKey: 's', value: true } }, 'cannot change type of rollout: have "THRESHOLD_ROLLOUT_TYPE" attempted "SEGMENT_ROLLOUT_TYPE"'],
    ['POST', NS, { name: 'x' }, 'invalid field key: must not be empty'],
    ['POST', NS, { key: 'x' }, 'invalid field name: must not be empty'],
    ['PUT', `${NS}/other`, { key: 'other' }, 'invalid field name: must not be empty'],
  ];
  for (const [method, p0, req0, message] of cases) {
    const p = p0.replace('ROLLOUT', ids.rollout);
    const req = JSON.parse(JSON.stringify(req0).replace('ROLLOUT', ids.rollout));
    same(await sdk(method, p, { namespaceKey: 'default', ...req }), ...InvalidArgument, message, `${method} ${p} ${JSON.stringify(req)}`);
  }
});

test('uniqueness and missing resources, as the SQLite store words them', async () => {
  const F = `${NS}/default/flags`;
  // internal/storage/sql/sqlite/sqlite.go
  same(await sdk('POST', F, { namespaceKey: 'default', key: 'f', name: 'F' }), ...InvalidArgument, 'flag "default/f" is not unique', 'flag');
  same(await sdk('POST', `${NS}/nons/flags`, { namespaceKey: 'nons', key: 'x', name: 'x' }), ...NotFound, 'namespace "nons" not found', 'flag, namespace');
  same(await sdk('POST', `${F}/f/variants`, { namespaceKey: 'default', flagKey: 'f', key: 'v1' }), ...InvalidArgument, 'variant "v1" is not unique for flag "default/f"', 'variant');
  same(await sdk('POST', `${F}/zz/variants`, { namespaceKey: 'default', flagKey: 'zz', key: 'v' }), ...NotFound, 'flag "default/zz" not found', 'variant, flag');
  same(await sdk('POST', `${NS}/default/segments`, { namespaceKey: 'default', key: 's', name: 'S' }), ...InvalidArgument, 'segment "default/s" is not unique', 'segment');
  same(await sdk('POST', `${NS}/default/segments/nope/constraints`, { namespaceKey: 'default', segmentKey: 'nope', type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'eq', value: 'v' }),
    ...NotFound, 'segment "default/nope" not found', 'constraint, segment');
  same(await sdk('POST', NS, { key: 'other', name: 'Other' }), ...InvalidArgument, 'namespace "other" is not unique', 'namespace');
  // internal/storage/sql/common/flag.go UpdateFlag, UpdateVariant (the key asked for, not the id)
  same(await sdk('PUT', `${F}/f`, { namespaceKey: 'default', key: 'f', name: 'F', defaultVariantId: 'nope' }), ...InvalidArgument, 'variant "nope" not found for flag "default/f"', 'default variant');
  same(await sdk('PUT', `${F}/zz`, { namespaceKey: 'default', key: 'zz', name: 'x' }), ...NotFound, 'flag "default/zz" not found', 'flag update');
  // common/flag.go UpdateFlag checks the default variant before the flag exists
  same(await sdk('PUT', `${F}/zz`, { namespaceKey: 'default', key: 'zz', name: 'x', defaultVariantId: 'x' }), ...InvalidArgument, 'variant "x" not found for flag "default/zz"', 'flag update, default variant');
  // common/rollout.go CreateRollout: the rank is checked first, then the rule, then the references
  same(await sdk('POST', `${F}/b/rollouts`, { namespaceKey: 'default', flagKey: 'b', rank: 1 }), ...InvalidArgument, 'rank number: 1 already exists', 'rollout rank before rule');
  same(await sdk('POST', `${F}/b/rollouts`, { namespaceKey: 'default', flagKey: 'b', rank: 1, segment: { segmentKey: 'nope', value: true } }), ...InvalidArgument, 'rank number: 1 already exists', 'rollout rank before segment');
  same(await sdk('POST', `${F}/nf/rollouts`, { namespaceKey: 'default', flagKey: 'nf', rank: 1 }), ...InvalidArgument, 'rollout rule is missing', 'rollout rule before flag');
  same(await sdk('PUT', `${F}/f/variants/nope`, { namespaceKey: 'default', flagKey: 'f', id: 'nope', key: 'v9' }), ...NotFound, 'variant "v9" not found', 'variant update');
  // common/segment.go UpdateConstraint
  same(await sdk('PUT', `${NS}/default/segments/s/constraints/nope`, { namespaceKey: 'default', segmentKey: 's', id: 'nope', type: 'STRING_COMPARISON_TYPE', property: 'p', operator: 'eq', value: 'v' }),
    ...NotFound, 'constraint "nope" not found', 'constraint update');
  // common/rule.go, common/rollout.go, common/segment.go, common/namespace.go getters
  same(await sdk('GET', `${F}/f/rules/nope`), ...NotFound, 'rule "default/nope" not found', 'rule get');
  same(await sdk('PUT', `${F}/f/rules/nope`, { namespaceKey: 'default', flagKey: 'f', id: 'nope', segmentKey: 's' }), ...NotFound, 'rule "default/nope" not found', 'rule update');
  same(await sdk('GET', `${F}/b/rollouts/nope`), ...NotFound, 'rollout "default/nope" not found', 'rollout get');
  same(await sdk('PUT', `${F}/b/rollouts/nope`, { namespaceKey: 'default', flagKey: 'b', id: 'nope', threshold: { percentage: 5 } }), ...NotFound, 'rollout "default/nope" not found', 'rollout update');
  // common/rollout.go UpdateRollout: without a rule only the description changes
  same(await sdk('PUT', `${F}/b/rollouts/nope`, { namespaceKey: 'default', flagKey: 'b', id: 'nope', description: 'd' }), ...NotFound, 'rollout "default/nope" not found', 'rollout update, no rule');
  const described = await ok('PUT', `${F}/b/rollouts/${ids.rollout}`, { namespaceKey: 'default', flagKey: 'b', id: ids.rollout, description: 'just words' });
  assert.equal(described.description, 'just words');
  assert.deepEqual(described.threshold, { percentage: 50, value: true });
  same(await sdk('GET', `${F}/zz`), ...NotFound, 'flag "default/zz" not found', 'flag get');
  same(await sdk('GET', `${NS}/default/segments/zz`), ...NotFound, 'segment "default/zz" not found', 'segment get');
  same(await sdk('GET', `${NS}/zz`), ...NotFound, 'namespace "zz" not found', 'namespace get');
  same(await sdk('PUT', `${NS}/zz`, { key: 'zz', name: 'x' }), ...NotFound, 'namespace "zz" not found', 'namespace update');
  // internal/storage/sql/sqlite/sqlite.go DeleteSegment: a segment a rule uses
  same(await sdk('DELETE', `${NS}/default/segments/s`), ...InvalidArgument, 'segment "default/s" is in use', 'segment delete');
  // internal/server/namespace.go DeleteNamespace
  same(await sdk('DELETE', `${NS}/default`, {}, { query: { force: 'false' } }), ...InvalidArgument, 'namespace "default" is protected', 'namespace delete');
  // deletes of what does not exist succeed (common/*.go: a DELETE that matches no row)
  for (const p of [`${F}/zz`, `${NS}/default/segments/zz`, `${F}/f/variants/zz`, `${F}/f/rules/zz`, `${F}/b/rollouts/zz`, `${NS}/default/segments/s/constraints/zz`])
    assert.deepEqual((await sdk('DELETE', p)).json, {}, p);
});

test('directory mode: every write answers the read-only error (internal/storage/unmodifiable)', async () => {
  const dir = tempDir('ef-flipt-errors-');
  fs.writeFileSync(path.join(dir, 'features.yml'), 'namespace: default\nflags:\n  - key: f\n    name: F\n    type: VARIANT_FLAG_TYPE\n');
  const ro = await startServer(['--dir', dir], { dir: tempDir('ef-flipt-errors-run-') });
  try {
    for (const [method, p, req] of [
      ['POST', NS, { key: 'n', name: 'n' }],
      ['PUT', `${NS}/default/flags/f`, { key: 'f', name: 'F' }],
      ['DELETE', `${NS}/default/flags/f`],
      ['POST', `${NS}/default/flags/f/variants`, { flagKey: 'f', key: 'v' }],
      ['POST', `${NS}/default/segments`, { key: 's', name: 's' }],
      ['PUT', `${NS}/default/flags/f/rules/order`, { flagKey: 'f', ruleIds: ['a', 'b'] }],
    ]) {
      const r = await call(ro.url, method, p, req ? protojson(req) : undefined);
      same(r, ...Internal, 'modification is not allowed in read-only mode', `${method} ${p}`);
    }
    // reads work, with the local storage's errors (internal/storage/fs/snapshot.go)
    const r = await call(ro.url, 'GET', `${NS}/default/flags?limit=1&offset=0&pageToken=7&reference=`);
    same(r, ...InvalidArgument, 'invalid offset: 7', 'offset past the end');
    same(await call(ro.url, 'GET', `${NS}/default/flags?limit=1&pageToken=x`), ...InvalidArgument, 'pageToken is not valid: "x"', 'token');
  } finally {
    await ro.stop();
  }
});
