// OpenFeature's server SDK with the OFREP provider against edgeflag: boolean and string flags,
// targeting, a disabled flag, an unknown flag, and the namespace header.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { startServer } from './server.mjs';
import { tempDir } from './tmp.mjs';

const snapshot = {
  namespace: { key: 'default' },
  flags: [
    { key: 'color', name: 'Color', enabled: true, type: 'VARIANT_FLAG_TYPE',
      rules: [{ segmentOperator: 'OR_SEGMENT_OPERATOR',
        segments: [{ key: 'pro', matchType: 'ALL_SEGMENT_MATCH_TYPE', constraints: [{ type: 'STRING_CONSTRAINT_COMPARISON_TYPE', property: 'plan', operator: 'eq', value: 'pro' }] }],
        distributions: [{ variantKey: 'blue', rollout: 100, variantAttachment: '{"hex":"#00f"}' }] }],
      defaultVariant: { id: 'v1', key: 'grey' } },
    { key: 'off-variant', name: 'Off', enabled: false, type: 'VARIANT_FLAG_TYPE', rules: [] },
    { key: 'beta', name: 'Beta', enabled: false, type: 'BOOLEAN_FLAG_TYPE',
      rollouts: [{ segment: { value: true, segmentOperator: 'OR_SEGMENT_OPERATOR',
        segments: [{ key: 'staff', matchType: 'ALL_SEGMENT_MATCH_TYPE', constraints: [{ type: 'STRING_CONSTRAINT_COMPARISON_TYPE', property: 'email', operator: 'suffix', value: '@example.com' }] }] } }] },
    { key: 'kill', name: 'Kill', enabled: false, type: 'BOOLEAN_FLAG_TYPE', rollouts: [] },
  ],
};

let srv, client;
before(async () => {
  const dir = tempDir('ef-ofrep-');
  const file = path.join(dir, 'snapshot.json');
  fs.writeFileSync(file, JSON.stringify(snapshot));
  srv = await startServer(['--snapshot', file], { dir });
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: srv.url }));
  client = OpenFeature.getClient();
});
after(async () => {
  await OpenFeature.close();
  await srv.stop();
});

test('string flag: targeting match with metadata', async () => {
  const d = await client.getStringDetails('color', 'fallback', { targetingKey: 'u1', plan: 'pro' });
  assert.equal(d.value, 'blue');
  assert.equal(d.variant, 'blue');
  assert.equal(d.reason, 'TARGETING_MATCH');
  assert.equal(d.flagMetadata.attachment, '{"hex":"#00f"}');
  assert.equal(d.flagMetadata.segments, 'pro');
});

test('string flag: default variant when nothing matches', async () => {
  const d = await client.getStringDetails('color', 'fallback', { targetingKey: 'u1', plan: 'free' });
  assert.equal(d.value, 'grey');
  assert.equal(d.reason, 'DEFAULT');
});

test('numbers and booleans in the context are passed as strings', async () => {
  const d = await client.getStringDetails('color', 'fallback', { targetingKey: 'u1', plan: 'pro', seats: 5, admin: true });
  assert.equal(d.value, 'blue');
});

test('disabled variant flag', async () => {
  const d = await client.getStringDetails('off-variant', 'fallback', { targetingKey: 'u1' });
  assert.equal(d.reason, 'DISABLED');
  assert.equal(d.value, '');
});

test('boolean flag: segment rollout and default', async () => {
  assert.equal(await client.getBooleanValue('beta', false, { targetingKey: 'u1', email: 'a@example.com' }), true);
  const d = await client.getBooleanDetails('beta', true, { targetingKey: 'u1', email: 'a@other.org' });
  assert.equal(d.value, false);
  assert.equal(d.reason, 'DEFAULT');
  const k = await client.getBooleanDetails('kill', true, { targetingKey: 'u1' });
  assert.equal(k.value, false);
});

test('unknown flag: FLAG_NOT_FOUND and the caller default', async () => {
  const d = await client.getBooleanDetails('nope', true, { targetingKey: 'u1' });
  assert.equal(d.value, true);
  assert.equal(d.errorCode, 'FLAG_NOT_FOUND');
  assert.equal(d.reason, 'ERROR');
});

test('wrong type: the provider reports a type mismatch', async () => {
  const d = await client.getBooleanDetails('color', true, { targetingKey: 'u1' });
  assert.equal(d.value, true);
  assert.equal(d.errorCode, 'TYPE_MISMATCH');
});

test('bulk evaluation and namespaces over plain HTTP', async () => {
  let r = await fetch(srv.url + '/ofrep/v1/evaluate/flags', { method: 'POST', body: JSON.stringify({ context: { targetingKey: 'u1', plan: 'pro' } }) });
  assert.equal(r.status, 200);
  const keys = (await r.json()).flags.map((f) => f.key).sort();
  assert.deepEqual(keys, ['beta', 'color', 'kill']); /* disabled variant flags are left out */
  r = await fetch(srv.url + '/ofrep/v1/evaluate/flags', { method: 'POST', body: JSON.stringify({ context: { targetingKey: 'u1', flags: 'color, kill' } }) });
  assert.deepEqual((await r.json()).flags.map((f) => f.key), ['color', 'kill']);
  r = await fetch(srv.url + '/ofrep/v1/evaluate/flags/color', { method: 'POST', headers: { 'X-Flipt-Namespace': 'other' }, body: '{"context":{}}' });
  assert.equal(r.status, 404);
  assert.equal((await r.json()).errorCode, 'FLAG_NOT_FOUND');
  r = await fetch(srv.url + '/ofrep/v1/evaluate/flags/color', { method: 'POST', body: '{"context":{"a":{"b":1}}}' });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).errorCode, 'INVALID_CONTEXT');
  r = await fetch(srv.url + '/ofrep/v1/configuration');
  assert.deepEqual((await r.json()).capabilities.flagEvaluation.supportedTypes, ['string', 'boolean']);
});
