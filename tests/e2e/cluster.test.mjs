// cluster.test.mjs - the web UI across a primary and a replica (`edgeflag serve --upstream`): a
// change made in the primary's UI appears in the replica's open UI within a second without a
// reload (flags list and flag page), a write made in the replica's UI is forwarded to the primary,
// and the cluster view shows each node's role, upstream, connection and downstream replicas live.
//
// Run: EDGEFLAG_BIN=build/edgeflag node --test tests/e2e/cluster.test.mjs  (after npm ci)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer, launchBrowser, newPage, shot, api, DESKTOP, PHONE } from './harness.mjs';

let primary;
let replica;
let browser;
let pa; // a page on the primary's UI
let pb; // a page on the replica's UI
const NS = '/api/v1/namespaces/default';

before(async () => {
  primary = await startServer();
  replica = await startServer(() => ['--upstream', primary.base]);
  browser = await launchBrowser();
  pa = await newPage(browser.context, DESKTOP);
  pb = await newPage(browser.context, DESKTOP);
});
after(async () => {
  if (browser) await browser.close();
  stopServer(replica);
  stopServer(primary);
});

// Waits for a locator and returns how long after `since` (ms) it appeared.
async function appearsWithin(locator, since, limitMs) {
  await locator.waitFor({ timeout: limitMs + 1000 });
  return Date.now() - since;
}

test('a flag created in the primary\'s UI appears in the replica\'s open flags list within a second', async () => {
  await pb.goto(`${replica.base}/namespaces/default/flags`);
  await pb.getByRole('heading', { level: 1, name: 'Flags' }).waitFor();
  await pb.locator('#live', { hasText: 'replica' }).waitFor();
  await pb.evaluate(() => { window.edgeflagTestMarker = 'same document'; }); // a reload would drop it

  await pa.goto(`${primary.base}/namespaces/default/flags/new`);
  await pa.getByLabel('Key', { exact: true }).fill('live-flag');
  await pa.getByLabel('Name', { exact: true }).fill('Live flag');
  const [res] = await Promise.all([
    pa.waitForResponse((r) => r.url().endsWith('/api/v1/namespaces/default/flags') && r.request().method() === 'POST'),
    pa.getByRole('button', { name: 'Create flag' }).click(),
  ]);
  assert.equal(res.status(), 200);
  const took = await appearsWithin(pb.locator('#flag-list .title', { hasText: 'Live flag' }), Date.now(), 1000);
  assert.ok(took <= 1000, `the replica's UI showed the flag after ${took} ms`);
  assert.equal(await pb.evaluate(() => window.edgeflagTestMarker), 'same document', 'the replica page must not reload');
  assert.deepEqual([pa.errors, pb.errors], [[], []]);
});

test('a variant added on the primary appears on the replica\'s open flag page within a second', async () => {
  await pb.goto(`${replica.base}/namespaces/default/flags/live-flag`);
  await pb.getByRole('heading', { level: 1, name: 'Live flag' }).waitFor();
  await pa.waitForURL(/\/flags\/live-flag$/);
  const form = pa.getByRole('form', { name: 'Add variant' });
  await form.getByLabel('Key', { exact: true }).fill('blue');
  await form.getByLabel('Attachment (JSON)', { exact: true }).fill('{"hex": "#00f"}');
  await Promise.all([
    pa.waitForResponse((r) => r.url().endsWith('/flags/live-flag/variants') && r.status() === 200),
    form.getByRole('button', { name: 'Add variant' }).click(),
  ]);
  const took = await appearsWithin(pb.locator('.variant strong', { hasText: 'blue' }), Date.now(), 1000);
  assert.ok(took <= 1000, `the replica's flag page showed the variant after ${took} ms`);
});

test('a write in the replica\'s UI is forwarded to the primary and shows up in the primary\'s UI', async () => {
  await pa.goto(`${primary.base}/namespaces/default/flags`);
  await pa.locator('#enabled-live-flag').waitFor();
  assert.equal(await pa.locator('#enabled-live-flag').isChecked(), false);
  await pb.goto(`${replica.base}/namespaces/default/flags`);
  await Promise.all([
    pb.waitForResponse((r) => r.url().endsWith('/flags/live-flag') && r.request().method() === 'PUT' && r.status() === 200),
    pb.locator('#enabled-live-flag').check(),
  ]);
  assert.equal((await api(primary.base, 'GET', `${NS}/flags/live-flag`)).json.enabled, true);
  await pa.waitForFunction(() => document.getElementById('enabled-live-flag')?.checked === true, null, { timeout: 2000 });
});

test('the cluster view shows role, upstream, connection and downstream replicas, live', async () => {
  await pb.goto(`${replica.base}/cluster`);
  await pb.locator('#cluster-role', { hasText: 'Replica' }).waitFor();
  assert.equal(await pb.locator('#cluster-upstream').textContent(), primary.base);
  await pb.locator('#cluster-connected', { hasText: 'connected' }).waitFor();
  await pa.goto(`${primary.base}/cluster`);
  await pa.locator('#cluster-role', { hasText: 'Primary' }).waitFor();
  await pa.locator('#cluster-downstream tbody tr').first().waitFor();
  // a change on the primary moves the replica's version on its open cluster page
  const before = Number(await pb.locator('#cluster-version').textContent());
  await api(primary.base, 'POST', `${NS}/flags`, { key: 'bump', name: 'Bump' });
  await pb.waitForFunction((v) => Number(document.getElementById('cluster-version').textContent) > v, before, { timeout: 2000 });
  await shot(pb, 'cluster-replica-desktop');
  await shot(pa, 'cluster-primary-desktop');
  const phone = await newPage(browser.context, PHONE);
  await phone.goto(`${replica.base}/cluster`);
  await phone.locator('#cluster-role', { hasText: 'Replica' }).waitFor();
  await shot(phone, 'cluster-replica-phone');
  await phone.close();
  assert.deepEqual([pa.errors, pb.errors], [[], []]);
});
