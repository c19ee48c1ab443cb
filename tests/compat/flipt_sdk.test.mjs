// Flipt's TypeScript server SDK (@flipt-io/flipt 1.5.0) against edgeflag: every call it offers
// (evaluation.variant, evaluation.boolean, evaluation.batch, flags.listFlags), on data created
// through the management API in a non-default namespace, with a token and without one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FliptClient, ClientTokenAuthentication } from '@flipt-io/flipt';
import { startServer, call } from './server.mjs';

const TOKEN = 'sdk-suite-token';
const H = { authorization: `Bearer ${TOKEN}` };
let srv;

async function must(method, path, body) {
  const r = await call(srv.url, method, path, body, H);
  assert.equal(r.status, 200, `${method} ${path}: ${r.text}`);
  return r.json;
}

before(async () => {
  srv = await startServer(['--auth-token', TOKEN]);
  await must('POST', '/api/v1/namespaces', { key: 'shop', name: 'Shop' });
  await must('POST', '/api/v1/namespaces/shop/segments', { key: 'pro', name: 'Pro users', matchType: 'ALL_MATCH_TYPE' });
  await must('POST', '/api/v1/namespaces/shop/segments/pro/constraints', { type: 'STRING_COMPARISON_TYPE', property: 'plan', operator: 'eq', value: 'pro' });
  await must('POST', '/api/v1/namespaces/shop/flags', { key: 'checkout', name: 'Checkout', enabled: true });
  const blue = await must('POST', '/api/v1/namespaces/shop/flags/checkout/variants', { key: 'blue', attachment: '{"hex":"#00f"}' });
  const rule = await must('POST', '/api/v1/namespaces/shop/flags/checkout/rules', { segmentKey: 'pro', rank: 1 });
  await must('POST', `/api/v1/namespaces/shop/flags/checkout/rules/${rule.id}/distributions`, { variantId: blue.id, rollout: 100 });
  await must('POST', '/api/v1/namespaces/shop/flags', { key: 'dark-mode', name: 'Dark mode', type: 'BOOLEAN_FLAG_TYPE', enabled: false });
  await must('POST', '/api/v1/namespaces/shop/flags/dark-mode/rollouts', { rank: 1, segment: { segmentKey: 'pro', value: true } });
  for (let i = 0; i < 5; i++) await must('POST', '/api/v1/namespaces/shop/flags', { key: `extra-${i}`, name: `Extra ${i}`, enabled: i % 2 === 0 });
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0);
});

const client = () => new FliptClient({ url: srv.url, authenticationStrategy: new ClientTokenAuthentication(TOKEN), timeout: 5 });

test('evaluation.variant', async () => {
  const r = await client().evaluation.variant({ namespaceKey: 'shop', flagKey: 'checkout', entityId: 'u1', context: { plan: 'pro' } });
  assert.equal(r.match, true);
  assert.equal(r.variantKey, 'blue');
  assert.equal(r.variantAttachment, '{"hex":"#00f"}');
  assert.equal(r.reason, 'MATCH_EVALUATION_REASON');
  assert.deepEqual(r.segmentKeys, ['pro']);
  assert.equal(r.flagKey, 'checkout');
  assert.ok(!Number.isNaN(Date.parse(r.timestamp)));
  assert.equal(typeof r.requestDurationMillis, 'number');
  const miss = await client().evaluation.variant({ namespaceKey: 'shop', flagKey: 'checkout', entityId: 'u1', context: { plan: 'free' } });
  assert.equal(miss.match, false);
  assert.equal(miss.reason, 'UNKNOWN_EVALUATION_REASON');
});

test('evaluation.boolean', async () => {
  const on = await client().evaluation.boolean({ namespaceKey: 'shop', flagKey: 'dark-mode', entityId: 'u1', context: { plan: 'pro' } });
  assert.equal(on.enabled, true);
  assert.equal(on.reason, 'MATCH_EVALUATION_REASON');
  assert.deepEqual(on.segmentKeys, ['pro']);
  const off = await client().evaluation.boolean({ namespaceKey: 'shop', flagKey: 'dark-mode', entityId: 'u1', context: {} });
  assert.equal(off.enabled, false);
  assert.equal(off.reason, 'DEFAULT_EVALUATION_REASON');
});

test('evaluation.batch', async () => {
  const r = await client().evaluation.batch({
    requests: [
      { namespaceKey: 'shop', flagKey: 'checkout', entityId: 'u1', context: { plan: 'pro' } },
      { namespaceKey: 'shop', flagKey: 'dark-mode', entityId: 'u1', context: { plan: 'pro' } },
      { namespaceKey: 'shop', flagKey: 'nope', entityId: 'u1', context: {} },
    ],
  });
  assert.equal(r.responses.length, 3);
  assert.equal(r.responses[0].type, 'VARIANT_EVALUATION_RESPONSE_TYPE');
  assert.equal(r.responses[0].variantResponse.variantKey, 'blue');
  assert.equal(r.responses[1].type, 'BOOLEAN_EVALUATION_RESPONSE_TYPE');
  assert.equal(r.responses[1].booleanResponse.enabled, true);
  assert.equal(r.responses[2].type, 'ERROR_EVALUATION_RESPONSE_TYPE');
  assert.deepEqual(r.responses[2].errorResponse, { flagKey: 'nope', namespaceKey: 'shop', reason: 'NOT_FOUND_ERROR_EVALUATION_REASON' });
  assert.ok(r.requestId.length > 0);
});

test('flags.listFlags with pagination', async () => {
  const all = await client().flags.listFlags('shop');
  assert.equal(all.totalCount, 7);
  assert.equal(all.flags.length, 7);
  const checkout = all.flags.find((f) => f.key === 'checkout');
  assert.equal(checkout.type, 'VARIANT_FLAG_TYPE');
  assert.equal(checkout.variants[0].key, 'blue');
  assert.equal(checkout.namespaceKey, 'shop');
  const seen = [];
  let page = await client().flags.listFlags('shop', { limit: 3 });
  seen.push(...page.flags.map((f) => f.key));
  while (page.nextPageToken) {
    page = await client().flags.listFlags('shop', { limit: 3, pageToken: page.nextPageToken });
    seen.push(...page.flags.map((f) => f.key));
  }
  assert.deepEqual(seen, all.flags.map((f) => f.key));
});

test('errors: unknown flag, wrong type, and no token', async () => {
  await assert.rejects(client().evaluation.variant({ namespaceKey: 'shop', flagKey: 'nope', entityId: 'u1', context: {} }), /flag "shop\/nope" not found/);
  await assert.rejects(client().evaluation.variant({ namespaceKey: 'shop', flagKey: 'dark-mode', entityId: 'u1', context: {} }), /BOOLEAN_FLAG_TYPE/);
  const anonymous = new FliptClient({ url: srv.url, timeout: 5 });
  await assert.rejects(anonymous.evaluation.variant({ namespaceKey: 'shop', flagKey: 'checkout', entityId: 'u1', context: {} }), /request was not authenticated/);
  await assert.rejects(anonymous.evaluation.boolean({ namespaceKey: 'shop', flagKey: 'dark-mode', entityId: 'u1', context: {} }), /request was not authenticated/);
  await assert.rejects(anonymous.evaluation.batch({ requests: [] }), /request was not authenticated/);
  await assert.rejects(anonymous.flags.listFlags('shop'), /request was not authenticated/);
  const wrong = new FliptClient({ url: srv.url, authenticationStrategy: new ClientTokenAuthentication('nope'), timeout: 5 });
  await assert.rejects(wrong.flags.listFlags('shop'), /request was not authenticated/);
});

test('without authentication configured, the same calls work with no token', async () => {
  const open = await startServer([]);
  try {
    await call(open.url, 'POST', '/api/v1/flags', { key: 'f', name: 'F', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
    const c = new FliptClient({ url: open.url });
    assert.equal((await c.evaluation.boolean({ namespaceKey: 'default', flagKey: 'f', entityId: 'e', context: {} })).enabled, true);
    assert.equal((await c.flags.listFlags('default')).totalCount, 1);
    const b = await c.evaluation.batch({ requests: [{ namespaceKey: 'default', flagKey: 'f', entityId: 'e', context: {} }] });
    assert.equal(b.responses[0].booleanResponse.enabled, true);
    await assert.rejects(c.evaluation.variant({ namespaceKey: 'default', flagKey: 'f', entityId: 'e', context: {} }), /invalid/);
  } finally {
    await open.stop();
  }
});
