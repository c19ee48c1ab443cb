// Flipt's own engine (@flipt-io/flipt-client-js, Rust flipt-evaluation in WASM) fetches edgeflag's
// snapshot endpoint over HTTP and evaluates locally; its answers must equal edgeflag's
// /evaluate/v1 answers for the same requests: 0 mismatches. A refresh with the ETag gets 304.
// State sources: a generated snapshot document served read-only (--snapshot), and (when the
// store is built) the same flags imported into a database and served from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { FliptClient } from '@flipt-io/flipt-client-js';
import { generate } from './gen.mjs';
import { startServer, call, edgeflagBin } from './server.mjs';
import { createThroughApi } from './populate.mjs';
import { tempDir } from './tmp.mjs';

const REQUESTS = Number(process.env.EF_CLIENT_REQUESTS ?? 52000);

async function quietly(fn) {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return await fn();
  } finally {
    console.warn = warn;
  }
}

const sameSet = (a, b) => JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...(b ?? [])].sort());

// Evaluates every request through edgeflag's batch endpoint (100 per call) and, for a sample,
// through the single variant/boolean endpoints too; returns edgeflag's answers in request order.
async function edgeflagAnswers(url, requests) {
  const out = new Array(requests.length);
  for (let i = 0; i < requests.length; i += 100) {
    const chunk = requests.slice(i, i + 100);
    const r = await fetch(url + '/evaluate/v1/batch', { method: 'POST', body: JSON.stringify({ requests: chunk.map((q) => ({ flagKey: q.flagKey, entityId: q.entityId, context: q.context })) }) });
    assert.equal(r.status, 200);
    const body = await r.json();
    body.responses.forEach((x, k) => (out[i + k] = x.variantResponse ?? x.booleanResponse ?? { notFound: true }));
  }
  for (let i = 0; i < requests.length; i += 25) {
    const q = requests[i];
    const kind = out[i].variantKey !== undefined ? 'variant' : out[i].enabled !== undefined ? 'boolean' : null;
    if (!kind) continue;
    const r = await fetch(url + '/evaluate/v1/' + kind, { method: 'POST', body: JSON.stringify({ flagKey: q.flagKey, entityId: q.entityId, context: q.context }) });
    assert.equal(r.status, 200);
    const single = await r.json();
    for (const f of ['match', 'reason', 'variantKey', 'variantAttachment', 'enabled']) assert.equal(single[f], out[i][f], `single ${kind} call ${i} field ${f}`);
  }
  return out;
}

async function compare(url, namespace, requests) {
  const client = await quietly(() => FliptClient.init({ url, namespace }));
  const ours = await edgeflagAnswers(url, requests);
  let compared = 0;
  const bad = [];
  for (let i = 0; i < requests.length; i++) {
    const q = requests[i];
    if (!q.flagKey.trim() || !q.entityId.trim()) continue; // the JS wrapper rejects these
    const mine = ours[i];
    let theirs;
    try {
      const req = { flagKey: q.flagKey, entityId: q.entityId, context: q.context };
      theirs = mine.enabled !== undefined ? client.evaluateBoolean(req) : mine.variantKey !== undefined ? client.evaluateVariant(req) : null;
    } catch (e) {
      theirs = { error: String(e.message) };
    }
    compared++;
    if (mine.notFound) {
      if (!theirs?.error && theirs !== null) bad.push({ i, q, mine, theirs });
      continue;
    }
    const ok =
      theirs && !theirs.error && theirs.reason === mine.reason && sameSet(theirs.segmentKeys, mine.segmentKeys) &&
      (mine.enabled !== undefined ? theirs.enabled === mine.enabled
        : theirs.match === mine.match && theirs.variantKey === mine.variantKey && (theirs.variantAttachment ?? '') === mine.variantAttachment);
    if (!ok) bad.push({ i, q, mine, theirs });
  }
  client.close?.();
  return { compared, bad };
}

test('flipt-client-js on a generated snapshot served by edgeflag: 0 mismatches', async () => {
  const c = generate({ seed: 7, flags: 200, requests: REQUESTS, segments: 50, namespace: 'default' });
  const dir = tempDir('ef-client-');
  const file = path.join(dir, 'snapshot.json');
  fs.writeFileSync(file, JSON.stringify(c.snapshot));
  const srv = await startServer(['--snapshot', file], { dir });
  try {
    const { compared, bad } = await compare(srv.url, 'default', c.requests.filter((r) => r.type !== 'batch'));
    console.log(`client engine vs edgeflag (snapshot mode): ${compared} requests, ${bad.length} mismatches`);
    assert.deepEqual(bad.slice(0, 3), []);
    assert.ok(compared >= REQUESTS * 0.9);

    // the ETag: a refresh with If-None-Match gets 304 and no body
    const first = await fetch(srv.url + '/internal/v1/evaluation/snapshot/namespace/default', { headers: { 'x-flipt-accept-server-version': '1.47.0' } });
    const etag = first.headers.get('etag');
    assert.ok(etag);
    const again = await fetch(srv.url + '/internal/v1/evaluation/snapshot/namespace/default', { headers: { 'x-flipt-accept-server-version': '1.47.0', 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), '');
    const older = await fetch(srv.url + '/internal/v1/evaluation/snapshot/namespace/default', { headers: { 'if-none-match': etag } });
    assert.equal(older.status, 200); /* no version header means 1.37.1: another representation */
    const doc = await older.json();
    assert.ok(doc.flags.every((f) => f.defaultVariant === undefined));
  } finally {
    await srv.stop();
  }
});


test('flipt-client-js on generated state created through the management API: 0 mismatches', async () => {
  const c = generate({ seed: 11, flags: 200, requests: REQUESTS, segments: 50, namespace: 'default' });
  const srv = await startServer([]);
  try {
    const { accepted, refused } = await createThroughApi(srv.url, c.snapshot);
    console.log(`state through the API: ${accepted} writes accepted, ${refused} refused by validation`);
    assert.ok(accepted > 1000);
    const requests = c.requests.filter((r) => r.type !== 'batch');
    const { compared, bad } = await compare(srv.url, 'default', requests);
    console.log(`client engine vs edgeflag (state from the API): ${compared} requests, ${bad.length} mismatches`);
    assert.deepEqual(bad.slice(0, 3), []);
    assert.ok(compared >= 50000);

    // The same state as a declarative document: export, import into an empty database, serve,
    // compare again. The import -> compile path must give Flipt's answers too.
    const db = path.join(srv.dir, 'edgeflag.db');
    const yml = path.join(srv.dir, 'export.yml');
    let r = spawnSync(edgeflagBin, ['export', '--db', db, '-o', yml], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const db2 = path.join(srv.dir, 'imported.db');
    r = spawnSync(edgeflagBin, ['import', '--db', db2, yml], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const srv2 = await startServer(['--db', db2], { dir: srv.dir });
    try {
      const again = await compare(srv2.url, 'default', requests.slice(0, 20000));
      console.log(`client engine vs edgeflag (exported, imported): ${again.compared} requests, ${again.bad.length} mismatches`);
      assert.deepEqual(again.bad.slice(0, 3), []);
      r = spawnSync(edgeflagBin, ['export', '--db', db2], { encoding: 'utf8' });
      assert.equal(r.stdout, fs.readFileSync(yml, 'utf8'), 'export -> import -> export changed the document');
    } finally {
      await srv2.stop();
    }
  } finally {
    await srv.stop();
  }
});

// X-Flipt-Accept-Server-Version is compared as a version, as Flipt's semver does: a newer client
// gets the current shape however its numbers are spelled, and a number that is not a version
// (past 64 bits) gets the default, as any unparsable value does. The numbers used to be packed
// into an unsigned int (major * 10000), so "429497.0.0" wrapped to 2704 and got the 1.37 shape
// (ENTITY_ID constraints as UNKNOWN, no defaultVariant), and a 20-digit major overflowed a long.
test('the accepted server version is compared, never wrapped', async () => {
  const srv = await startServer([]);
  try {
    const snap = '/internal/v1/evaluation/snapshot/namespace/default';
    assert.equal((await call(srv.url, 'POST', '/api/v1/flags', { key: 'f', name: 'F', type: 'VARIANT_FLAG_TYPE', enabled: true })).status, 200);
    const etag = async (v) => (await fetch(srv.url + snap, { headers: { 'x-flipt-accept-server-version': v } })).headers.get('etag');
    const current = await etag('1.47.0');
    assert.match(current, /^[0-9a-f]{16}$/);
    for (const v of ['2.0.0', '1.100.0', 'v1.47', '429497.0.0', '4294967296.0.0', '18446744073709551615.0.0'])
      assert.equal(await etag(v), current, v);
    assert.equal(await etag('1.38.0'), `${current}-146`);
    for (const v of ['1.37.1', '18446744073709551616.0.0', '99999999999999999999', '-2.0.0', 'garbage'])
      assert.equal(await etag(v), `${current}-137`, v);
  } finally {
    await srv.stop();
  }
});
