// ui.test.mjs - the web UI in a real browser (Debian's Chromium, headless, via playwright-core)
// against a real `edgeflag serve` on a fresh database: create a flag, its variants, a segment with
// constraints, a rule with a 50/50 distribution; evaluate in the console and get exactly the
// server's answer; an invalid attachment shows the server's error and saves nothing; the enable
// toggle, search, delete with confirmation, the token prompt, labels on every control, and the
// phone-width layout. Screenshots of the main pages go to docs/screenshots/ (desktop and phone).
//
// Run: EDGEFLAG_BIN=build/edgeflag node --test tests/e2e/ui.test.mjs  (after npm ci in tests/e2e)
// The tests in this file share one server and run in order; none depends on another file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, stopServer, launchBrowser, newPage, shot, api, DESKTOP, PHONE } from './harness.mjs';

let server;
let browser;
let page;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await newPage(browser.context, DESKTOP);
});
after(async () => {
  if (browser) await browser.close();
  stopServer(server);
});

const url = (p) => server.base + p;
const NS = '/api/v1/namespaces/default';

// Every visible form control has a label (its own <label>, or aria-label), and no page errors.
async function assertLabelled(p) {
  const unlabelled = await p.evaluate(() => [...document.querySelectorAll('input,select,textarea,button')]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.textContent.trim()))
    .map((e) => e.outerHTML.slice(0, 80)));
  assert.deepEqual(unlabelled, []);
  assert.deepEqual(p.errors, []);
}

test('create a flag from the flags list', async () => {
  await page.goto(url('/'));
  await page.waitForURL(/\/namespaces\/default\/flags$/);
  await page.getByRole('link', { name: 'New flag' }).click();
  await page.getByLabel('Key', { exact: true }).fill('new-checkout');
  await page.getByLabel('Name', { exact: true }).fill('New checkout');
  await page.getByLabel('Description', { exact: true }).fill('The redesigned checkout flow');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await page.waitForURL(/\/flags\/new-checkout$/);
  await page.getByRole('heading', { level: 1, name: 'New checkout' }).waitFor();
  const f = await api(server.base, 'GET', `${NS}/flags/new-checkout`);
  assert.equal(f.status, 200);
  assert.deepEqual([f.json.name, f.json.type, f.json.enabled], ['New checkout', 'VARIANT_FLAG_TYPE', false]);
  await assertLabelled(page);
});

test('a bad key is refused next to the key field', async () => {
  await page.goto(url('/namespaces/default/flags/new'));
  await page.getByLabel('Key', { exact: true }).fill('has space');
  await page.getByLabel('Name', { exact: true }).fill('x');
  await page.getByRole('button', { name: 'Create flag' }).click();
  const key = page.getByLabel('Key', { exact: true });
  await assert.doesNotReject(key.and(page.locator('[aria-invalid="true"]')).waitFor());
  const errId = (await key.getAttribute('aria-describedby')).split(' ').pop();
  assert.equal(await page.locator(`#${errId}`).textContent(), 'invalid field key: contains invalid characters');
  assert.equal((await api(server.base, 'GET', `${NS}/flags`)).json.flags.length, 1);
});

// Opens the "Add ..." section of the page (once the view has rendered) and returns its form.
async function openAdd(p, name) {
  const summary = p.locator('details.add > summary', { hasText: name });
  await summary.waitFor();
  if (!(await summary.evaluate((s) => s.parentElement.open))) await summary.click();
  return p.getByRole('form', { name });
}

async function addVariant(key, attachment) {
  const form = await openAdd(page, 'Add variant');
  await form.getByLabel('Key', { exact: true }).fill(key);
  await form.getByLabel('Attachment (JSON)', { exact: true }).fill(attachment);
  return form;
}

test('variants with a validating JSON attachment editor', async () => {
  await page.goto(url('/namespaces/default/flags/new-checkout'));
  let form = await addVariant('control', '{"color": "blue"}');
  await form.getByRole('button', { name: 'Add variant' }).click();
  await page.locator('.variant strong', { hasText: 'control' }).waitFor();
  form = await addVariant('treatment', '{"color": "green", "steps": 2}');
  await form.getByRole('button', { name: 'Add variant' }).click();
  await page.locator('.variant strong', { hasText: 'treatment' }).waitFor();
  const f = (await api(server.base, 'GET', `${NS}/flags/new-checkout`)).json;
  assert.deepEqual(f.variants.map((v) => [v.key, v.attachment]), [['control', '{"color":"blue"}'], ['treatment', '{"color":"green","steps":2}']]);
});

test('an invalid attachment shows the server\'s error next to the field and saves nothing', async () => {
  const form = await addVariant('broken', '{"color": ');
  // the editor flags it while typing...
  const ta = form.getByLabel('Attachment (JSON)', { exact: true });
  const errId = (await ta.getAttribute('aria-describedby')).split(' ').pop();
  const errP = page.locator(`#${errId}`);
  assert.equal(await errP.textContent(), 'invalid field attachment: must be a json string');
  // ...and on submit the server is asked and its own message is what stays shown
  await errP.evaluate((e) => { e.textContent = ''; });
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/flags/new-checkout/variants') && r.request().method() === 'POST'),
    form.getByRole('button', { name: 'Add variant' }).click(),
  ]);
  assert.equal(res.status(), 400);
  const body = await res.json();
  assert.equal(body.message, 'invalid field attachment: must be a json string');
  await page.waitForFunction((id) => document.getElementById(id).textContent !== '', errId);
  assert.equal(await errP.textContent(), body.message);
  assert.equal(await ta.getAttribute('aria-invalid'), 'true');
  const f = (await api(server.base, 'GET', `${NS}/flags/new-checkout`)).json;
  assert.deepEqual(f.variants.map((v) => v.key), ['control', 'treatment']);
  await form.getByLabel('Key', { exact: true }).fill('');
  await ta.fill('');
});

test('a segment with constraints: operators per type, values checked as the server does', async () => {
  await page.goto(url('/namespaces/default/segments'));
  await page.getByRole('link', { name: 'New segment' }).click();
  await page.getByLabel('Key', { exact: true }).fill('beta-users');
  await page.getByLabel('Name', { exact: true }).fill('Beta users');
  await page.getByLabel('Match type', { exact: true }).selectOption('ALL_MATCH_TYPE');
  await page.getByRole('button', { name: 'Create segment' }).click();
  await page.waitForURL(/\/segments\/beta-users$/);

  const form = await openAdd(page, 'Add constraint');
  // operators offered follow the type
  await form.getByLabel('Type', { exact: true }).selectOption('BOOLEAN_COMPARISON_TYPE');
  assert.deepEqual(await form.getByLabel('Operator', { exact: true }).locator('option').evaluateAll((os) => os.map((o) => o.value)),
    ['true', 'false', 'present', 'notpresent']);
  assert.equal(await form.getByLabel('Value', { exact: true }).isDisabled(), true);

  await form.getByLabel('Type', { exact: true }).selectOption('STRING_COMPARISON_TYPE');
  await form.getByLabel('Property', { exact: true }).fill('plan');
  await form.getByLabel('Operator', { exact: true }).selectOption('eq');
  await form.getByLabel('Value', { exact: true }).fill('pro');
  await form.getByRole('button', { name: 'Add constraint' }).click();
  await page.locator('.constraint code', { hasText: 'plan' }).waitFor();

  // a number list that is not a list of numbers: refused with the server's wording, nothing sent
  const form2 = await openAdd(page, 'Add constraint');
  await form2.getByLabel('Type', { exact: true }).selectOption('NUMBER_COMPARISON_TYPE');
  await form2.getByLabel('Property', { exact: true }).fill('age');
  await form2.getByLabel('Operator', { exact: true }).selectOption('isoneof');
  await form2.getByLabel('Value', { exact: true }).fill('["eighteen"]');
  await form2.getByRole('button', { name: 'Add constraint' }).click();
  const val = form2.getByLabel('Value', { exact: true });
  const errId = (await val.getAttribute('aria-describedby')).split(' ').pop();
  assert.equal(await page.locator(`#${errId}`).textContent(), 'invalid value provided for property "age" of type number');
  // the server says the same of the same value
  const direct = await api(server.base, 'POST', `${NS}/segments/beta-users/constraints`,
    { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'isoneof', value: '["eighteen"]' });
  assert.deepEqual([direct.status, direct.json.message], [400, 'invalid value provided for property "age" of type number']);
  await val.fill('[18, 21, 30]');
  await form2.getByRole('button', { name: 'Add constraint' }).click();
  await page.locator('.constraint code', { hasText: 'age' }).waitFor();

  const seg = (await api(server.base, 'GET', `${NS}/segments/beta-users`)).json;
  assert.deepEqual(seg.constraints.map((c) => [c.type, c.property, c.operator, c.value]), [
    ['STRING_COMPARISON_TYPE', 'plan', 'eq', 'pro'],
    ['NUMBER_COMPARISON_TYPE', 'age', 'isoneof', '[18, 21, 30]'],
  ]);
  await assertLabelled(page);
  await shot(page, 'segment-desktop');
});

test('a rule on the segment with a 50/50 distribution, shown as a bar', async () => {
  await page.goto(url('/namespaces/default/flags/new-checkout'));
  const form = await openAdd(page, 'Add rule');
  await form.getByLabel('beta-users (Beta users)', { exact: true }).check();
  // over 100% in total is refused before anything is sent
  await form.getByLabel('control', { exact: true }).fill('60');
  await form.getByLabel('treatment', { exact: true }).fill('50');
  await form.getByRole('button', { name: 'Add rule' }).click();
  await form.locator('[data-field="rollout"] .error', { hasText: 'more than 100%' }).waitFor();
  assert.equal((await api(server.base, 'GET', `${NS}/flags/new-checkout/rules`)).json.rules.length, 0);
  await form.getByLabel('control', { exact: true }).fill('50');
  await form.getByRole('button', { name: 'Add rule' }).click();
  await page.locator('.rule .bar').waitFor();
  const rules = (await api(server.base, 'GET', `${NS}/flags/new-checkout/rules`)).json.rules;
  assert.equal(rules.length, 1);
  assert.equal(rules[0].segmentKey, 'beta-users');
  const variants = (await api(server.base, 'GET', `${NS}/flags/new-checkout`)).json.variants;
  const byId = Object.fromEntries(variants.map((v) => [v.id, v.key]));
  assert.deepEqual(rules[0].distributions.map((d) => [byId[d.variantId], d.rollout]), [['control', 50], ['treatment', 50]]);
  assert.equal(await page.locator('.rule .bar').getAttribute('aria-label'), 'control 50%, treatment 50%');
  // default variant
  await page.getByLabel('Default variant', { exact: true }).selectOption({ label: 'control' });
  await page.getByRole('button', { name: 'Save details' }).click();
  await page.locator('.variant .tag', { hasText: 'default' }).waitFor();
  assert.equal((await api(server.base, 'GET', `${NS}/flags/new-checkout`)).json.defaultVariant.key, 'control');
});

test('enable toggle and search on the flags list', async () => {
  await api(server.base, 'POST', `${NS}/flags`, { key: 'dark-mode', name: 'Dark mode', type: 'BOOLEAN_FLAG_TYPE' });
  await page.goto(url('/namespaces/default/flags'));
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/flags/new-checkout') && r.request().method() === 'PUT'),
    page.locator('#enabled-new-checkout').check(),
  ]);
  assert.equal((await api(server.base, 'GET', `${NS}/flags/new-checkout`)).json.enabled, true);
  await page.getByLabel('Search flags', { exact: true }).fill('dark');
  assert.deepEqual(await page.locator('#flag-list .title').allTextContents(), ['Dark mode']);
  await page.getByLabel('Search flags', { exact: true }).fill('');
  assert.equal(await page.locator('#flag-list .title').count(), 2);
  await assertLabelled(page);
  await shot(page, 'flags-desktop');
});

test('the evaluation console gives exactly the server\'s answer', async () => {
  await page.goto(url('/namespaces/default/console?flag=new-checkout'));
  await page.getByLabel('Entity ID', { exact: true }).fill('user-1');
  await page.getByLabel('Context (JSON object of strings)', { exact: true }).fill('{"plan": "pro", "age": "21"}');
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/evaluate/v1/variant')),
    page.getByRole('button', { name: 'Evaluate' }).click(),
  ]);
  assert.equal(res.status(), 200);
  await page.locator('#res-reason').waitFor();
  const direct = (await api(server.base, 'POST', '/evaluate/v1/variant',
    { namespaceKey: 'default', flagKey: 'new-checkout', entityId: 'user-1', context: { plan: 'pro', age: '21' } })).json;
  assert.equal(direct.match, true);
  assert.equal(direct.reason, 'MATCH_EVALUATION_REASON');
  assert.equal(await page.locator('#res-match').textContent(), String(direct.match));
  assert.equal(await page.locator('#res-variant').textContent(), direct.variantKey);
  assert.equal(await page.locator('#res-reason').textContent(), direct.reason);
  assert.deepEqual(await page.locator('#res-segments .chip').allTextContents(), direct.segmentKeys);
  assert.equal(await page.locator('#res-attachment').textContent(), direct.variantAttachment);
  // a context that matches no segment: the default variant, with the DEFAULT reason
  await page.getByLabel('Context (JSON object of strings)', { exact: true }).fill('{"plan": "free"}');
  await page.getByRole('button', { name: 'Evaluate' }).click();
  await page.locator('#res-reason', { hasText: 'DEFAULT_EVALUATION_REASON' }).waitFor();
  assert.equal(await page.locator('#res-variant').textContent(), 'control');
  // a context with a non-string value is refused next to the context field
  await page.getByLabel('Context (JSON object of strings)', { exact: true }).fill('{"age": 21}');
  await page.getByRole('button', { name: 'Evaluate' }).click();
  await page.locator('[data-field="context"] .error', { hasText: 'must be a string' }).waitFor();
  await page.getByLabel('Context (JSON object of strings)', { exact: true }).fill('{"plan": "pro", "age": "21"}');
  await page.getByRole('button', { name: 'Evaluate' }).click();
  await page.locator('#res-reason', { hasText: 'MATCH_EVALUATION_REASON' }).waitFor();
  await assertLabelled(page);
  await shot(page, 'console-desktop');
});

test('boolean rollouts: threshold and segment, reordered', async () => {
  await page.goto(url('/namespaces/default/flags/dark-mode'));
  const add = async (fill) => {
    const form = await openAdd(page, 'Add rollout');
    await fill(form);
    await form.getByRole('button', { name: 'Add rollout' }).click();
  };
  await add(async (f) => { await f.getByLabel('Percentage', { exact: true }).fill('25'); });
  await page.locator('.rule h3', { hasText: 'Rollout 1' }).waitFor();
  await add(async (f) => {
    await f.getByLabel('Type', { exact: true }).selectOption('SEGMENT_ROLLOUT_TYPE');
    await f.getByLabel('beta-users (Beta users)', { exact: true }).check();
    await f.getByLabel('Value', { exact: true }).selectOption('false');
  });
  await page.locator('.rule h3', { hasText: 'Rollout 2' }).waitFor();
  await page.getByRole('button', { name: 'Move Rollout 2 up' }).click();
  await page.waitForFunction(() => document.querySelector('.rule .tag')?.textContent === 'segment');
  const rs = (await api(server.base, 'GET', `${NS}/flags/dark-mode/rollouts`)).json.rules;
  assert.deepEqual(rs.map((r) => [r.type, r.rank]), [['SEGMENT_ROLLOUT_TYPE', 1], ['THRESHOLD_ROLLOUT_TYPE', 2]]);
  assert.deepEqual([rs[0].segment.segmentKey, rs[0].segment.value, rs[1].threshold.percentage], ['beta-users', false, 25]);
  // keyboard focus follows the moved rollout
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Move Rollout 1 down');
  await assertLabelled(page);
});

test('delete asks for confirmation; cancel keeps, confirm deletes', async () => {
  await api(server.base, 'POST', `${NS}/flags`, { key: 'doomed', name: 'Doomed' });
  await page.goto(url('/namespaces/default/flags/doomed'));
  await page.getByRole('button', { name: 'Delete flag' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await api(server.base, 'GET', `${NS}/flags/doomed`)).status, 200);
  await page.getByRole('button', { name: 'Delete flag' }).click();
  await page.keyboard.press('Enter'); // the confirm button has focus
  await page.waitForURL(/\/namespaces\/default\/flags$/);
  assert.equal((await api(server.base, 'GET', `${NS}/flags/doomed`)).status, 404);
});

test('keyboard only: create a namespace and switch to it', async () => {
  await page.goto(url('/namespaces'));
  await page.getByLabel('Key', { exact: true }).focus();
  await page.keyboard.type('staging');
  await page.keyboard.press('Tab');
  await page.keyboard.type('Staging');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/namespaces\/staging\/flags$/);
  assert.equal(await page.getByLabel('Namespace', { exact: true }).inputValue(), 'staging');
  assert.equal((await api(server.base, 'GET', '/api/v1/namespaces/staging')).json.name, 'Staging');
  await page.getByLabel('Namespace', { exact: true }).selectOption('default');
  await page.waitForURL(/\/namespaces\/default\/flags$/);
  assert.deepEqual(page.errors, []);
});

test('screenshots: flag page, cluster view; phone width has no horizontal scroll', async () => {
  await page.goto(url('/namespaces/default/flags/new-checkout'));
  await page.locator('.rule .bar').waitFor();
  await shot(page, 'flag-desktop');
  await page.goto(url('/cluster'));
  await page.locator('#cluster-role', { hasText: /Primary|Standalone/ }).waitFor();
  await shot(page, 'cluster-desktop');
  const phone = await newPage(browser.context, PHONE);
  for (const [p, name, ready] of [
    ['/namespaces/default/flags', 'flags-phone', '#flag-list'],
    ['/namespaces/default/flags/new-checkout', 'flag-phone', '.rule .bar'],
    ['/namespaces/default/segments/beta-users', 'segment-phone', '.constraint'],
    ['/namespaces/default/console?flag=new-checkout', 'console-phone', '#eval-form'],
    ['/cluster', 'cluster-phone', '#cluster-role'],
  ]) {
    await phone.goto(url(p));
    await phone.locator(ready).first().waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${p} scrolls sideways by ${overflow}px at phone width`);
    await assertLabelled(phone);
    await shot(phone, name);
  }
  await phone.close();
});

// A link with a segment that is not valid percent-encoding threw out of the router and left the
// page blank (an attacker review); it now shows the flags list.
test('a malformed link shows the flags list, not a blank page', async () => {
  for (const bad of ['/namespaces/%E0/flags', '/namespaces/default/flags/%E0%A4']) {
    const p = await newPage(browser.context, DESKTOP);
    try {
      await p.goto(url(bad));
      await p.waitForURL(/\/namespaces\/default\/flags$/);
      await p.locator('main h1').first().waitFor();
      assert.deepEqual(p.errors, [], bad);
    } finally {
      await p.close();
    }
  }
});

// Authentication is off here, as by default: a page of another site that the person opens must
// not be able to make their browser write (an attacker review created flags this way, with a
// no-cors fetch and a text/plain form, both "simple" requests without a preflight).
test('a page of another site cannot write through the browser (cross-site request forgery)', async () => {
  const target = server.base + NS + '/flags';
  const evil = `<!doctype html><html><body>
<form id=f method=POST action="${target}" enctype="text/plain">
<input name='{"key":"csrf_form","name":"x","enabled":true,"pad":"' value='"}'></form>
<script>
fetch(${JSON.stringify(target)}, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
  body: JSON.stringify({key: "csrf_fetch", name: "pwned", enabled: true})})
  .finally(() => { document.title = "sent"; document.getElementById("f").submit(); });
</script></body></html>`;
  const site = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(evil));
  await new Promise((r) => site.listen(0, '127.0.0.2', r)); // another origin: another address
  const p = await browser.context.newPage();
  try {
    const sent = p.waitForRequest((r) => r.method() === 'POST' && r.url() === target && r.postData()?.includes('csrf_form'));
    await p.goto(`http://127.0.0.2:${site.address().port}/`);
    await sent; // both requests were made: the fetch before the form
    await p.waitForLoadState('load').catch(() => {});
    for (const key of ['csrf_fetch', 'csrf_form'])
      assert.equal((await api(server.base, 'GET', `${NS}/flags/${key}`)).status, 404, `${key} was created`);
  } finally {
    await p.close();
    site.close();
  }
  // the UI's own writes (same origin) are the tests above and below, through the browser
});

test('with authentication on, the UI asks for a token and uses it', async () => {
  const secured = await startServer(() => ['--auth-token', 'sekret-token']);
  const p = await newPage(browser.context, DESKTOP);
  try {
    await p.goto(`${secured.base}/`);
    const dialog = p.getByRole('dialog', { name: 'Sign in' });
    await dialog.waitFor();
    await p.getByLabel('Token', { exact: true }).fill('wrong');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await dialog.locator('#token-error', { hasText: 'request was not authenticated' }).waitFor();
    await p.getByLabel('Token', { exact: true }).fill('sekret-token');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await p.getByRole('heading', { level: 1, name: 'Flags' }).waitFor();
    await p.getByRole('link', { name: 'New flag' }).click();
    await p.getByLabel('Key', { exact: true }).fill('secured');
    await p.getByLabel('Name', { exact: true }).fill('Secured');
    await p.getByRole('button', { name: 'Create flag' }).click();
    await p.waitForURL(/\/flags\/secured$/);
    const got = await api(secured.base, 'GET', `${NS}/flags/secured`, undefined, { Authorization: 'Bearer sekret-token' });
    assert.equal(got.status, 200);
    assert.deepEqual(p.errors, []);
  } finally {
    await p.close();
    stopServer(secured);
  }
});
