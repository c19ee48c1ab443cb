// `edgeflag serve --dir`: Flipt features files served read-only over HTTP, reloaded within a second
// of a change, the last good state kept when a change is invalid, writes refused clearly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, call } from './server.mjs';

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
  const dir = fs.mkdtempSync('/tmp/ef-dirmode-');
  const file = path.join(dir, 'team', 'features.yml');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, features('blue'));
  const srv = await startServer(['--dir', dir], { dir: fs.mkdtempSync('/tmp/ef-dirmode-run-') });
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

    const w = await call(srv.url, 'POST', '/api/v1/flags', { key: 'x', name: 'X' });
    assert.equal(w.status, 500);
    assert.match(w.json.message, /not implemented/);
  } finally {
    await srv.stop();
  }
});
