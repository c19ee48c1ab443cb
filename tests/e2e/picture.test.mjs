// picture.test.mjs - the cluster picture, tokens, flag history and evaluation activity in the web
// UI (issue 17), on a primary and replicas it starts itself: iad and dfw follow the primary, lhr
// follows dfw (a chain). A flag toggled in the primary's UI shows on all four nodes' open pages and
// in the propagation timeline with a time for each node; a replica killed shows offline within the
// heartbeat window and live again after its restart; the history of a flag lists its last three
// changes with their authors and diffs; the activity chart of a flag rises after 1,000 evaluations
// on a replica, and the primary's shows 1,000 on dfw and 500 on lhr (chained) per node and summed;
// the tokens page creates (shown once), lists, expires and scopes tokens. Writes
// screenshots (desktop and phone) of each new page into docs/screenshots.
//
// Run: EDGEFLAG_BIN=build/edgeflag node --test tests/e2e/picture.test.mjs  (after npm ci)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { node, stopAll } from '../cluster/cluster.mjs';
import { launchBrowser, newPage, shot, api, DESKTOP, PHONE } from './harness.mjs';

const BOOT = 'picture-bootstrap';
const AUTH = { Authorization: `Bearer ${BOOT}` };
const named = (name, opts = {}) => node(name, { ...opts, args: ['--name', name, '--auth-token', BOOT, ...(opts.args || [])] });
let primary, iad, dfw, lhr, all, browser;
const pages = {};

// Signs a page in (the UI keeps the token in the tab's session storage) and opens path.
async function open(page, n, p) {
  await page.goto(`${n.url}/cluster`);
  await page.locator('#token-input').fill(BOOT);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#cluster-role').waitFor();
  if (p !== '/cluster') await page.goto(`${n.url}${p}`);
}

// A phone-sized page signed in to n, at path.
async function phoneAt(n, p) {
  const page = await newPage(browser.context, PHONE);
  await open(page, n, p);
  return page;
}

before(async () => {
  primary = named('primary', { args: ['--upstream-token', BOOT] });
  await primary.start();
  iad = named('iad', { upstream: primary.url, args: ['--upstream-token', BOOT] });
  dfw = named('dfw', { upstream: primary.url, args: ['--upstream-token', BOOT] });
  await Promise.all([iad.start(), dfw.start()]);
  lhr = named('lhr', { upstream: () => dfw.url, args: ['--upstream-token', BOOT] });
  await lhr.start();
  all = [primary, iad, dfw, lhr];
  browser = await launchBrowser();
  for (const n of all) pages[n.name] = await newPage(browser.context, DESKTOP);
  const r = await api(primary.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'checkout', name: 'Checkout', type: 'BOOLEAN_FLAG_TYPE', enabled: false }, AUTH);
  assert.equal(r.status, 200, r.text);
});
after(async () => {
  if (browser) await browser.close();
  await stopAll(all || []);
});

test('a flag toggled in the primary\'s UI shows on all four nodes and in the timeline, a time for each', { timeout: 60000 }, async () => {
  for (const n of all) await open(pages[n.name], n, '/namespaces/default/flags');
  for (const n of all) await pages[n.name].locator('#enabled-checkout').waitFor();
  for (const n of all) assert.equal(await pages[n.name].locator('#enabled-checkout').isChecked(), false, n.name);
  const [res] = await Promise.all([
    pages.primary.waitForResponse((r) => r.url().endsWith('/flags/checkout') && r.request().method() === 'PUT'),
    pages.primary.locator('#enabled-checkout').check(),
  ]);
  assert.equal(res.status(), 200);
  const seq = Number(res.headers()['x-edgeflag-version']);
  for (const n of all) {
    await pages[n.name].waitForFunction(() => document.getElementById('enabled-checkout')?.checked === true, null, { timeout: 5000 });
  }
  // the timeline on the primary's cluster page: this write, applied on every node, with times
  const pc = pages.primary;
  await pc.goto(`${primary.url}/cluster`);
  const row = pc.locator(`#timeline li[data-seq="${seq}"]`);
  await row.waitFor({ timeout: 5000 });
  for (const name of ['primary', 'iad', 'dfw', 'lhr']) {
    await row.locator(`tr[data-node="${name}"]:not(.pending) .ms`).waitFor({ timeout: 5000 });
    const text = await row.locator(`tr[data-node="${name}"] .ms`).textContent();
    assert.match(text, /^\d+(\.\d)? ms$/, `${name}: ${text}`);
  }
  assert.match(await row.locator('.write-head').textContent(), /flags\/checkout/);
  // every node's picture holds all four, live, in the right tree
  for (const n of all) {
    const p = pages[n.name];
    await p.goto(`${n.url}/cluster`);
    for (const name of ['primary', 'iad', 'dfw', 'lhr']) await p.locator(`#node-${name}[data-state="live"]`).waitFor({ timeout: 5000 });
    assert.equal(await p.locator('#node-lhr').evaluate((el) => el.closest('ul').closest('li').querySelector('.node-card').id), 'node-dfw');
  }
  await shot(pages.primary, 'cluster-picture-desktop');
  const phone = await phoneAt(lhr, '/cluster');
  await phone.locator('#node-primary').waitFor();
  await shot(phone, 'cluster-picture-phone');
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no sideways scrolling at phone width');
  await phone.close();
  for (const n of all) assert.deepEqual(pages[n.name].errors, [], n.name);
});

test('a replica killed shows offline within the heartbeat window, live again after a restart', { timeout: 60000 }, async () => {
  const p = pages.primary;
  await p.goto(`${primary.url}/cluster`);
  await p.locator('#node-iad[data-state="live"]').waitFor();
  await p.evaluate(() => { window.edgeflagTestMarker = 'same document'; });
  await iad.kill9();
  const t0 = Date.now();
  await p.locator('#node-iad[data-state="offline"]').waitFor({ timeout: 6000 });
  const took = Date.now() - t0;
  assert.ok(took < 5500, `offline after ${took} ms (heartbeat window 3 s + a report period)`);
  await shot(p, 'cluster-offline-desktop');
  await iad.start();
  await p.locator('#node-iad[data-state="live"]').waitFor({ timeout: 8000 });
  assert.equal(await p.evaluate(() => window.edgeflagTestMarker), 'same document', 'no reload');
  assert.deepEqual(p.errors, []);
});

test('the history of a flag lists its last three changes with authors and diffs', { timeout: 30000 }, async () => {
  // three changes by three authors: a token through a replica, the bootstrap token, anonymous is
  // not possible with auth on, so a second created token
  const mk = async (name) => (await api(primary.url, 'POST', '/auth/v1/method/token', { name }, AUTH)).json.clientToken;
  const alice = await mk('alice');
  const bob = await mk('bob');
  const put = async (n, tok, body) => {
    // a token made on the primary takes effect on a replica within a second (docs/api.md)
    let r;
    for (const end = Date.now() + 3000; ;) {
      r = await api(n.url, 'PUT', '/api/v1/namespaces/default/flags/checkout', { name: 'Checkout', ...body }, { Authorization: `Bearer ${tok}` });
      if (r.status !== 401 || Date.now() > end) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(r.status, 200, r.text);
  };
  await put(dfw, alice, { description: 'new payment page', enabled: true });
  await put(primary, bob, { description: 'new payment page', enabled: false });
  await put(lhr, BOOT, { name: 'Checkout v2', description: 'new payment page', enabled: false });
  const p = pages.primary;
  await p.goto(`${primary.url}/namespaces/default/flags/checkout`);
  await p.locator('#flag-history-link').click();
  await p.locator('#history-title', { hasText: 'History of checkout' }).waitFor();
  const recs = p.locator('#history-list > li');
  await recs.nth(2).waitFor();
  const text = async (i) => recs.nth(i).textContent();
  assert.match(await recs.nth(0).locator('.history-author').textContent(), /^initial_bootstrap_token via lhr/);
  assert.match(await text(0), /Checkout v2/);
  assert.equal(await recs.nth(0).locator('tr[data-field="name"] td.old').textContent(), 'Checkout');
  assert.equal(await recs.nth(0).locator('tr[data-field="name"] td.new').textContent(), 'Checkout v2');
  assert.equal(await recs.nth(1).locator('.history-author').textContent(), 'bob');
  assert.equal(await recs.nth(1).locator('tr[data-field="enabled"] td.old').textContent(), 'on');
  assert.equal(await recs.nth(1).locator('tr[data-field="enabled"] td.new').textContent(), 'off');
  assert.equal(await recs.nth(1).locator('tr').count(), 2, 'only what changed: a header and enabled');
  assert.match(await recs.nth(2).locator('.history-author').textContent(), /^alice via dfw/);
  assert.equal(await recs.nth(2).locator('tr[data-field="description"] td.new').textContent(), 'new payment page');
  await shot(p, 'flag-history-desktop');
  // the namespace's activity feed has them too, and more (the creation, the toggle)
  await p.goto(`${primary.url}/namespaces/default/history`);
  await p.locator('#history-list > li').nth(4).waitFor();
  await shot(p, 'activity-feed-desktop');
  const phone = await phoneAt(primary, '/namespaces/default/flags/checkout/history');
  await phone.locator('#history-list > li').first().waitFor();
  await shot(phone, 'flag-history-phone');
  await phone.close();
  assert.deepEqual(p.errors, []);
});

test('the activity chart of a flag rises after 1,000 evaluations on a replica; the primary shows each node and the sum', { timeout: 40000 }, async () => {
  const p = pages.dfw;
  await p.goto(`${dfw.url}/namespaces/default/flags/checkout`);
  await p.locator('#activity-total').waitFor();
  const before = Number(await p.locator('#activity-total').textContent());
  const requests = Array.from({ length: 250 }, (_, i) => ({ namespaceKey: 'default', flagKey: 'checkout', entityId: `user-${i}`, context: {} }));
  for (let i = 0; i < 4; i++) {
    const r = await api(dfw.url, 'POST', '/evaluate/v1/batch', { requests }, AUTH);
    assert.equal(r.status, 200, r.text);
  }
  // 500 on lhr, the replica chained behind dfw: its counts reach the primary through dfw's reports
  for (let i = 0; i < 2; i++) {
    const r = await api(lhr.url, 'POST', '/evaluate/v1/batch', { requests }, AUTH);
    assert.equal(r.status, 200, r.text);
  }
  await p.waitForFunction((b) => Number(document.getElementById('activity-total')?.textContent) >= b + 1000, before, { timeout: 8000 });
  assert.equal(await p.locator('#activity-node').textContent(), 'dfw');
  assert.match(await p.locator('#activity-legend').textContent(), /(enabled|disabled): 1000/);
  const bars = await p.locator('#activity-chart .col span').count();
  assert.ok(bars >= 1, 'a bar for the current minute');

  // the primary's page: its own count (none), each node's series and the sum over the tree
  const q = pages.primary;
  await q.goto(`${primary.url}/namespaces/default/flags/checkout`);
  await q.locator('#activity-sum-total').waitFor();
  await q.waitForFunction(() => Number(document.getElementById('activity-sum-total')?.textContent) === 1500, null, { timeout: 15000 });
  assert.equal(await q.locator('#activity-total').textContent(), '0');
  assert.equal(await q.locator('#activity-sum-nodes').textContent(), '3');
  const legend = async (name) => q.locator(`#activity-nodes li[data-node="${name}"]`).textContent();
  assert.equal(await legend('primary'), 'primary (this node): 0');
  assert.equal(await legend('dfw'), 'dfw: 1000');
  assert.equal(await legend('lhr'), 'lhr: 500');
  const segs = await q.locator('#activity-sum-chart .col span').count();
  assert.ok(segs >= 2, 'a segment per node with evaluations');
  await shot(q, 'flag-activity-desktop');
  const phone = await phoneAt(primary, '/namespaces/default/flags/checkout');
  await phone.waitForFunction(() => Number(document.getElementById('activity-sum-total')?.textContent) === 1500, null, { timeout: 8000 });
  await shot(phone, 'flag-activity-phone');
  await phone.close();
  assert.deepEqual(p.errors, []);
  assert.deepEqual(q.errors, []);
});

test('tokens: create (shown once), list, scope, expire, delete', { timeout: 30000 }, async () => {
  const p = pages.primary;
  await api(primary.url, 'POST', '/api/v1/namespaces', { key: 'team-a', name: 'Team A' }, AUTH);
  await p.goto(`${primary.url}/tokens`);
  await p.locator('#tokens-title').waitFor();
  await p.getByLabel('Name', { exact: true }).fill('ci-deployer');
  await p.getByLabel('Description').fill('the deploy pipeline');
  await p.getByLabel('Namespace scope').selectOption('team-a');
  await p.getByRole('button', { name: 'Create token' }).click();
  const secret = (await p.locator('#token-secret').textContent()).trim();
  assert.ok(secret.length >= 20, 'the secret is shown');
  // the secret works, scoped to team-a only
  assert.equal((await api(primary.url, 'GET', '/api/v1/namespaces/team-a/flags', undefined, { Authorization: `Bearer ${secret}` })).status, 200);
  assert.equal((await api(primary.url, 'GET', '/api/v1/namespaces/default/flags', undefined, { Authorization: `Bearer ${secret}` })).status, 401);
  const row = p.locator('.token-row', { hasText: 'ci-deployer' });
  await row.waitFor();
  assert.equal(await row.locator('.token-scope').textContent(), 'team-a');
  await shot(p, 'tokens-desktop');
  await p.getByRole('button', { name: 'Done' }).click();
  assert.equal(await p.locator('#token-secret').count(), 0, 'shown once');
  await p.reload();
  await p.locator('.token-row', { hasText: 'ci-deployer' }).waitFor();
  assert.equal((await p.content()).includes(secret), false, 'never shown again');
  // keyboard: expire it
  await p.locator('.token-row', { hasText: 'ci-deployer' }).getByRole('button', { name: /Expire now/ }).focus();
  await p.keyboard.press('Enter');
  await p.locator('.token-row', { hasText: 'ci-deployer' }).locator('.tag.off', { hasText: 'expired' }).waitFor();
  assert.equal((await api(primary.url, 'GET', '/api/v1/namespaces/team-a/flags', undefined, { Authorization: `Bearer ${secret}` })).status, 401, 'expired');
  const phone = await phoneAt(primary, '/tokens');
  await phone.locator('.token-row').first().waitFor();
  await shot(phone, 'tokens-phone');
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no sideways scrolling at phone width');
  await phone.close();
  // a bad expiry is refused with the server's message and creates nothing
  const count = await p.locator('.token-row').count();
  await p.getByLabel('Name', { exact: true }).fill('past');
  await p.getByLabel('Expires at').fill('1500-01-01T00:00');
  await p.getByRole('button', { name: 'Create token' }).click();
  await p.locator('[data-field="expiresAt"] .error', { hasText: /expiresAt/ }).waitFor();
  assert.equal(await p.getByLabel('Expires at').getAttribute('aria-invalid'), 'true');
  assert.equal(await p.locator('.token-row').count(), count);
  assert.deepEqual(p.errors, []);
});
