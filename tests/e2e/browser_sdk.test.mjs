// browser_sdk.test.mjs - Flipt's browser SDK (@flipt-io/flipt-client-browser, its WASM engine) in a
// page served from one origin, evaluating flags against an edgeflag node on another origin: with
// Flipt's cors.* settings on (FLIPT_CORS_ENABLED) it works, preflight included (the SDK sends
// Authorization and X-Flipt-Accept-Server-Version, so every fetch is preflighted); without CORS
// the browser refuses the response. The answers must equal the node's own /evaluate/v1 answers.
// The page and the SDK come from a tiny static server on loopback; nothing reaches the internet.
//
// Run: EDGEFLAG_BIN=build/edgeflag node --test tests/e2e/browser_sdk.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, stopServer, launchBrowser, api } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = readFileSync(path.join(here, 'node_modules/@flipt-io/flipt-client-browser/dist/index.mjs'));
const TOKEN = 'browser-sdk-token';

// The application's page: loads the SDK as a module and exposes one function to the test.
const page = `<!doctype html><meta charset="utf-8"><title>app</title>
<script type="module">
import { FliptEvaluationClient } from '/sdk/index.mjs';
window.evaluateWithSdk = async (url, token) => {
  const client = await FliptEvaluationClient.init('default', { url, authentication: { clientToken: token } });
  const out = {};
  for (const id of ['alice', 'bob', 'carol']) {
    out[id] = {
      variant: client.evaluateVariant('color', id, { plan: 'pro' }),
      boolean: client.evaluateBoolean('dark-mode', id, {}),
    };
  }
  window.sdkClient = client;
  return out;
};
window.refreshWithSdk = async () => ({ changed: await window.sdkClient.refresh(), after: window.sdkClient.evaluateBoolean('late', 'alice', {}) });
window.ready = true;
</script>`;

let app; // the static server: the page's origin
let withCors; // edgeflag with FLIPT_CORS_ENABLED=true (another origin: another port)
let withoutCors; // edgeflag as it starts by default
let browser;

function startStatic() {
  const srv = http.createServer((req, res) => {
    if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
    } else if (req.url === '/sdk/index.mjs') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(sdk);
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, base: `http://127.0.0.1:${srv.address().port}` })));
}

async function seed(base) {
  const h = { authorization: `Bearer ${TOKEN}` };
  const must = async (m, p, body) => {
    const r = await api(base, m, p, body, h);
    assert.equal(r.status, 200, `${m} ${p}: ${r.text}`);
    return r.json;
  };
  await must('POST', '/api/v1/flags', { key: 'color', name: 'Color', type: 'VARIANT_FLAG_TYPE', enabled: true });
  const red = await must('POST', '/api/v1/flags/color/variants', { key: 'red' });
  const blue = await must('POST', '/api/v1/flags/color/variants', { key: 'blue' });
  await must('POST', '/api/v1/segments', { key: 'pro', name: 'Pro', matchType: 'ALL_MATCH_TYPE' });
  await must('POST', '/api/v1/segments/pro/constraints', { type: 'STRING_COMPARISON_TYPE', property: 'plan', operator: 'eq', value: 'pro' });
  const rule = await must('POST', '/api/v1/flags/color/rules', { segmentKey: 'pro', rank: 1 });
  await must('POST', `/api/v1/flags/color/rules/${rule.id}/distributions`, { variantId: red.id, rollout: 50 });
  await must('POST', `/api/v1/flags/color/rules/${rule.id}/distributions`, { variantId: blue.id, rollout: 50 });
  await must('POST', '/api/v1/flags', { key: 'dark-mode', name: 'Dark mode', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  await must('POST', '/api/v1/namespaces/default/flags/dark-mode/rollouts', { rank: 1, threshold: { percentage: 50, value: true } });
}

// Starts edgeflag with Flipt's CORS variables in its environment (the harness passes ours on).
async function startWith(env) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await startServer(() => ['--auth-token', TOKEN]);
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
  }
}

before(async () => {
  app = await startStatic();
  withCors = await startWith({ FLIPT_CORS_ENABLED: 'true', FLIPT_CORS_ALLOWED_ORIGINS: app.base });
  withoutCors = await startServer(() => ['--auth-token', TOKEN]);
  await seed(withCors.base);
  await seed(withoutCors.base);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  stopServer(withCors);
  stopServer(withoutCors);
  await new Promise((r) => app?.srv.close(r));
});

async function openApp() {
  const p = await browser.context.newPage();
  p.errors = [];
  p.on('pageerror', (e) => p.errors.push(e.message));
  p.on('console', (m) => { if (m.type() === 'error') p.errors.push(m.text()); });
  await p.goto(app.base + '/');
  await p.waitForFunction(() => window.ready === true);
  return p;
}

test('the browser SDK on another origin evaluates flags through CORS, as the node itself does', async () => {
  const p = await openApp();
  try {
    assert.notEqual(new URL(app.base).origin, new URL(withCors.base).origin);
    const got = await p.evaluate(([url, token]) => window.evaluateWithSdk(url, token), [withCors.base, TOKEN]);
    for (const id of ['alice', 'bob', 'carol']) {
      const h = { authorization: `Bearer ${TOKEN}` };
      const v = (await api(withCors.base, 'POST', '/evaluate/v1/variant', { flagKey: 'color', entityId: id, context: { plan: 'pro' } }, h)).json;
      const b = (await api(withCors.base, 'POST', '/evaluate/v1/boolean', { flagKey: 'dark-mode', entityId: id, context: {} }, h)).json;
      // this SDK version answers the result itself (and throws on errors)
      assert.equal(got[id].variant.variantKey, v.variantKey, `${id}: variant`);
      assert.equal(got[id].variant.match, true);
      assert.deepEqual(got[id].variant.segmentKeys, ['pro']);
      assert.equal(got[id].boolean.enabled, b.enabled, `${id}: boolean`);
      assert.equal(got[id].boolean.reason, b.reason, `${id}: boolean reason`);
    }
    // a flag created on the node reaches the page on refresh
    const h = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await api(withCors.base, 'POST', '/api/v1/flags', { key: 'late', name: 'Late', type: 'BOOLEAN_FLAG_TYPE', enabled: true }, h)).status, 200);
    const r = await p.evaluate(() => window.refreshWithSdk());
    assert.equal(r.changed, true, JSON.stringify(r));
    assert.equal(r.after.flagKey, 'late', JSON.stringify(r));
    assert.equal(r.after.enabled, true, JSON.stringify(r));
    assert.deepEqual(p.errors, []);
  } finally {
    await p.close();
  }
});

test('without CORS (the default) the browser refuses the cross-origin answer', async () => {
  const p = await openApp();
  try {
    const err = await p.evaluate(([url, token]) => window.evaluateWithSdk(url, token).then(() => null, (e) => String(e)), [withoutCors.base, TOKEN]);
    assert.ok(err, 'the SDK must fail without CORS');
    assert.match(err, /Failed to fetch/);
    assert.ok(p.errors.some((e) => /CORS/.test(e)), `the browser reports CORS: ${p.errors.join(' | ')}`);
  } finally {
    await p.close();
  }
});
