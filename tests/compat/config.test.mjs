// `edgeflag serve` settings: flags win over EDGEFLAG_* variables, which win over the YAML file;
// unknown keys, malformed values and unknown flags stop the server with status 2 and a message
// that names the setting (and file:line:column for the file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, edgeflagBin } from './server.mjs';

const tmp = fs.mkdtempSync('/tmp/ef-config-');
const run = (args, env = {}) => spawnSync(edgeflagBin, ['serve', ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 5000 });

test('bad settings exit 2 with a clear message', () => {
  const cfg = path.join(tmp, 'bad.yml');
  fs.writeFileSync(cfg, 'listen: 127.0.0.1:0\nmax-bodyy: 5\n');
  let r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.yml:2:1: unknown setting 'max-bodyy'/);
  fs.writeFileSync(cfg, 'max-body: lots\n');
  r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.yml:1:11: invalid value 'lots' for max-body/);
  fs.writeFileSync(cfg, 'listen: [a\n');
  r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.yml:\d+:\d+:/);
  r = run(['--nope']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option '--nope'/);
  r = run(['--listen', 'nohost']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid listen address 'nohost'/);
  r = run([], { EDGEFLAG_THREADS: '-3' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /EDGEFLAG_THREADS: invalid value '-3' for threads/);
  r = run(['--dir', tmp, '--snapshot', cfg]);
  assert.equal(r.status, 2);
  r = run(['--config', path.join(tmp, 'missing.yml')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /missing\.yml: No such file/);
});

test('flags win over the environment, which wins over the file', async () => {
  const cfg = path.join(tmp, 'good.yml');
  fs.writeFileSync(cfg, `listen: 127.0.0.1:1\ndb: ${tmp}/file.db\nmax_body: 100\n`);
  // file says max-body 100, env says 200: a 150-byte body must pass
  const s = await startServer(['--config', cfg, '--listen', '127.0.0.1:0'], { env: { EDGEFLAG_MAX_BODY: '200' }, db: false });
  try {
    const body = JSON.stringify({ flagKey: 'x', entityId: 'y'.repeat(100) });
    assert.ok(body.length > 100 && body.length < 200);
    let r = await fetch(s.url + '/evaluate/v1/variant', { method: 'POST', body });
    assert.equal(r.status, 404); /* evaluated (no such flag), not refused as too large */
    r = await fetch(s.url + '/evaluate/v1/variant', { method: 'POST', body: JSON.stringify({ flagKey: 'x', entityId: 'y'.repeat(300) }) });
    assert.equal(r.status, 413);
    assert.ok(fs.existsSync(path.join(tmp, 'file.db')), 'db from the file was not used');
  } finally {
    await s.stop();
  }
});
