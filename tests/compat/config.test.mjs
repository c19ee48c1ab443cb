// `edgeflag serve` settings: flags win over EDGEFLAG_* variables, which win over the YAML file;
// unknown keys, malformed values and unknown flags stop the server with status 2 and a message
// that names the setting (and file:line:column for the file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, edgeflagBin } from './server.mjs';
import { tempDir } from './tmp.mjs';

const tmp = tempDir('ef-config-');
// every server runs in the temporary directory, so a default ./data/ never lands in the source tree
const run = (args, env = {}) => spawnSync(edgeflagBin, ['serve', ...args], { cwd: tmp, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 5000 });

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

test('one worker thread or several: serving, and nothing from libmicrohttpd on stderr', async () => {
  // regression: --threads 1 made libmicrohttpd print its own warning about a pool of one
  for (const threads of ['1', '3']) {
    const s = await startServer(['--threads', threads, '--log-level', 'warn']);
    try {
      const r = await fetch(s.url + '/evaluate/v1/variant', { method: 'POST', body: JSON.stringify({ flagKey: 'x', entityId: 'y' }) });
      assert.equal(r.status, 404);
    } finally {
      await s.stop();
    }
    assert.equal(s.stderr(), '', `--threads ${threads}`);
  }
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

// Flipt's own config.yml: the file below is Flipt v1.61.1's internal/config/testdata/advanced.yml
// (every section Flipt has) with only what cannot run here changed: storage.type git -> database,
// db.url postgres -> a SQLite file:, the audit log file, and the ports. Every key that does not
// apply is logged once.
const fliptAdvanced = (dbPath, port, auditPath) => `audit:
  sinks:
    log:
      enabled: true
      file: "${auditPath}"
  buffer:
    capacity: 10
    flush_period: 3m

log:
  level: WARN
  file: "testLogFile.txt"
  encoding: "json"
  keys:
    time: "time"
    level: "level"
    message: "msg"

cors:
  enabled: true
  allowed_origins: "foo.com bar.com  baz.com"
  allowed_headers:
    - "X-Some-Header"
    - "X-Some-Other-Header"

cache:
  enabled: true
  backend: memory
  ttl: 60s
  memory:
    eviction_interval: 5m # Evict Expired Items Every 5m

server:
  protocol: http
  host: 127.0.0.1
  http_port: ${port}
  https_port: 8080
  grpc_port: 9001

tracing:
  enabled: true
  exporter: otlp
  otlp:
    endpoint: "localhost:4318"

storage:
  type: database

db:
  url: file:${dbPath}
  max_idle_conn: 10
  max_open_conn: 50
  conn_max_lifetime: 30m

meta:
  check_for_updates: false
  telemetry_enabled: false

authentication:
  required: true
  session:
    domain: "auth.flipt.io"
    secure: true
  methods:
    token:
      enabled: true
      bootstrap:
        token: "s3cret"
      cleanup:
        interval: 2h
        grace_period: 48h
  exclude:
    evaluation: true

experimental:
  authorization:
    enabled: true
`;

const freePort = async () => {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
};

// spawn edgeflag serve with no --listen of its own, wait for its URL
async function serveRaw(args, env = {}) {
  const { spawn } = await import('node:child_process');
  const child = spawn(edgeflagBin, ['serve', ...args], { cwd: tmp, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('no start: ' + stderr)), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    child.on('exit', (c) => { clearTimeout(t); reject(new Error(`exited ${c}: ${stderr}`)); });
  });
  const exited = new Promise((r) => child.on('exit', r));
  return { url, stderr: () => stderr, stop: async () => { child.kill('SIGTERM'); await exited; } };
}

test("Flipt's config.yml: address, db.url, token auth with exclusions, log level; other keys logged once", async () => {
  const port = await freePort();
  const cfg = path.join(tmp, 'flipt-advanced.yml');
  const db = path.join(tmp, 'flipt.db');
  const auditLog = path.join(tmp, 'audit-logs.txt');
  fs.writeFileSync(cfg, fliptAdvanced(db, port, auditLog));
  const s = await serveRaw(['--config', cfg]);
  try {
    assert.equal(s.url, `http://127.0.0.1:${port}`);
    assert.ok(fs.existsSync(db), 'db.url was not used');
    // management needs the bootstrap token; evaluation is excluded
    let r = await fetch(s.url + '/api/v1/namespaces');
    assert.equal(r.status, 401);
    r = await fetch(s.url + '/api/v1/namespaces', { headers: { authorization: 'Bearer s3cret' } });
    assert.equal(r.status, 200);
    r = await fetch(s.url + '/evaluate/v1/boolean', { method: 'POST', body: JSON.stringify({ flagKey: 'x', entityId: 'e' }) });
    assert.equal(r.status, 404);
    const err = s.stderr();
    // one line per key that does not apply, none for those that do
    for (const k of ['cache.ttl', 'tracing.otlp.endpoint', 'server.grpc_port', 'db.max_open_conn', 'log.encoding', 'experimental.authorization.enabled'])
      assert.equal(err.split('\n').filter((l) => l.includes(`key=${k} `)).length, 1, `${k} not logged once:\n${err}`);
    for (const k of ['server.host', 'server.http_port', 'db.url', 'authentication.required', 'authentication.session.domain', 'cors.enabled', 'cors.allowed_origins', 'log.level', 'audit.sinks.log.enabled', 'audit.sinks.log.file', 'audit.buffer.capacity', 'audit.buffer.flush_period'])
      assert.ok(!err.includes(`key=${k} `), `${k} was reported as ignored`);
    // audit.sinks.log: a write's audit event lands in the file (docs/audit.md)
    r = await fetch(s.url + '/api/v1/namespaces/default/flags', { method: 'POST', headers: { authorization: 'Bearer s3cret' }, body: JSON.stringify({ key: 'audited', name: 'A', type: 'BOOLEAN_FLAG_TYPE' }) });
    assert.equal(r.status, 200);
    for (let i = 0; i < 100 && !(fs.existsSync(auditLog) && fs.readFileSync(auditLog, 'utf8').includes('"audited"')); i++) await new Promise((res) => setTimeout(res, 50));
    const ev = JSON.parse(fs.readFileSync(auditLog, 'utf8').trim().split('\n').pop());
    assert.deepEqual([ev.type, ev.action, ev.payload.key, ev.metadata.actor.name], ['flag', 'created', 'audited', 'initial_bootstrap_token']);
    // log.level WARN: no info lines
    assert.ok(!/level=info/.test(err), 'log.level WARN was not applied');
  } finally {
    await s.stop();
  }
});

test("Flipt's default config files and FLIPT_* variables; edgeflag's settings win", async () => {
  // config/local.yml of Flipt v1.61.1, as shipped
  const local = path.join(tmp, 'flipt-local.yml');
  fs.writeFileSync(local, `# version: "1.0"
log:
  level: DEBUG
audit:
  sinks:
    log:
      enabled: true

cors:
  enabled: true
  allowed_origins: ["*"]
`);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(tmp, 'flipt-local-'));
  fs.writeFileSync(path.join(dir, 'features.yml'), 'namespace: default\nflags:\n  - key: on\n    name: on\n    type: BOOLEAN_FLAG_TYPE\n    enabled: true\n');
  const s = await serveRaw(['--config', local], {
    FLIPT_SERVER_HOST: '127.0.0.1',
    FLIPT_SERVER_HTTP_PORT: String(port),
    FLIPT_STORAGE_TYPE: 'local',
    FLIPT_STORAGE_LOCAL_PATH: dir,
    FLIPT_AUTHENTICATION_REQUIRED: 'true',
    FLIPT_AUTHENTICATION_METHODS_TOKEN_ENABLED: 'true',
    FLIPT_AUTHENTICATION_METHODS_TOKEN_BOOTSTRAP_TOKEN: 'from-env',
    FLIPT_AUTHENTICATION_EXCLUDE_OFREP: 'true',
    FLIPT_CACHE_ENABLED: 'true',
  });
  try {
    assert.equal(s.url, `http://127.0.0.1:${port}`);
    let r = await fetch(s.url + '/evaluate/v1/boolean', { method: 'POST', headers: { authorization: 'Bearer from-env' }, body: JSON.stringify({ flagKey: 'on', entityId: 'e' }) });
    assert.equal(r.status, 200, 'storage.local.path from FLIPT_* was not served');
    assert.equal((await r.json()).enabled, true);
    r = await fetch(s.url + '/evaluate/v1/boolean', { method: 'POST', body: JSON.stringify({ flagKey: 'on', entityId: 'e' }) });
    assert.equal(r.status, 401);
    r = await fetch(s.url + '/ofrep/v1/evaluate/flags/on', { method: 'POST', body: JSON.stringify({ context: { targetingKey: 'e' } }) });
    assert.equal(r.status, 200, 'FLIPT_AUTHENTICATION_EXCLUDE_OFREP was not applied');
    const err = s.stderr();
    assert.match(err, /level=info msg=serving/, 'log.level DEBUG hid info lines');
    assert.equal(err.split('\n').filter((l) => l.includes('key=FLIPT_CACHE_ENABLED ')).length, 1);
    // the audit log sink applies, but a directory commits no writes: said once
    assert.ok(!err.includes('key=audit.sinks.log.enabled '));
    assert.equal(err.split('\n').filter((l) => l.includes('audit sinks ignored')).length, 1);
  } finally {
    await s.stop();
  }
  // an edgeflag setting wins over the Flipt key of the same meaning
  const s2 = await serveRaw(['--config', local, '--listen', '127.0.0.1:0', '--db', path.join(tmp, 'mixed.db')], { FLIPT_SERVER_HTTP_PORT: String(port), FLIPT_DB_URL: 'file:' + path.join(tmp, 'never.db') });
  try {
    assert.notEqual(s2.url, `http://127.0.0.1:${port}`);
    assert.ok(fs.existsSync(path.join(tmp, 'mixed.db')) && !fs.existsSync(path.join(tmp, 'never.db')));
  } finally {
    await s2.stop();
  }
});

test('Flipt configs edgeflag cannot serve, and malformed ones, are clear errors', () => {
  const cfg = path.join(tmp, 'flipt-bad.yml');
  fs.writeFileSync(cfg, 'version: "1.0"\ndb:\n  url: sqlserver://sa@localhost:1433/flipt\n');
  let r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /flipt-bad\.yml:3:8: db\.url 'sqlserver\.\.\.': edgeflag stores flags in SQLite, libSQL, PostgreSQL or MySQL only/);
  fs.writeFileSync(cfg, 'storage:\n  type: git\n  git:\n    repository: https://github.com/flipt-io/flipt.git\n');
  r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /storage\.type 'git' is not supported/);
  fs.writeFileSync(cfg, 'version: "2.0"\n');
  r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid version: 2\.0/);
  fs.writeFileSync(cfg, 'server:\n  http_port: eighty\n');
  r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /flipt-bad\.yml:2:14: invalid value 'eighty' for server\.http_port/);
  fs.writeFileSync(cfg, 'authentication:\n  required: maybe\n');
  r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid value 'maybe' for authentication\.required/);
  fs.writeFileSync(cfg, 'log:\n  level: LOUD\n');
  r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid value 'LOUD' for log\.level/);
  r = run([], { FLIPT_STORAGE_TYPE: 'oci' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /FLIPT_STORAGE_TYPE: storage\.type 'oci' is not supported/);
  fs.writeFileSync(cfg, 'server:\n  host: [a\n');
  r = run(['--config', cfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /flipt-bad\.yml:\d+:\d+:/);
});

test("Flipt's ${NAME} substitution in config values, and YAML keys in any case", async () => {
  const port = await freePort();
  const cfg = path.join(tmp, 'flipt-envsubst.yml');
  fs.writeFileSync(cfg, `version: "1.0"
Server:
  HTTP_Port: \${EF_TEST_PORT}
  host: 127.0.0.1
db:
  url: sqlite:${path.join(tmp, 'subst.db')}
authentication:
  required: true
  methods:
    token:
      enabled: true
      bootstrap:
        token: "\${EF_TEST_TOKEN}"
`);
  const s = await serveRaw(['--config', cfg], { EF_TEST_TOKEN: 'from-subst', EF_TEST_PORT: String(port) });
  try {
    assert.equal(s.url, `http://127.0.0.1:${port}`);
    assert.ok(fs.existsSync(path.join(tmp, 'subst.db')), 'sqlite: url was not used');
    assert.equal((await fetch(s.url + '/api/v1/namespaces', { headers: { authorization: 'Bearer from-subst' } })).status, 200);
    assert.equal((await fetch(s.url + '/api/v1/namespaces', { headers: { authorization: 'Bearer ${EF_TEST_TOKEN}' } })).status, 401);
  } finally {
    await s.stop();
  }
});

// A path the user names that is not a regular file: a FIFO nobody writes to (opening it for
// reading used to wait for a writer for ever), /dev/zero (read until memory ran out), a directory.
// Each is refused at once with a message that says so.
test('a FIFO, a device or a directory named as a file: refused at once, with a clear message', () => {
  const fifo = path.join(tmp, 'named.fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  for (const bad of [fifo, '/dev/zero', tmp]) {
    for (const args of [['--config', bad], ['--snapshot', bad], ['--tls-cert', bad, '--tls-key', bad, '--db', path.join(tmp, 'tls.db')]]) {
      const r = run(args);
      assert.equal(r.error, undefined, `${args.join(' ')}: ${r.error}`); // not killed by the 5 s timeout
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, /not a regular file/, `${args.join(' ')}: ${r.stderr}`);
    }
    const imp = spawnSync(edgeflagBin, ['import', '--db', path.join(tmp, 'imp.db'), bad], { cwd: tmp, encoding: 'utf8', timeout: 5000 });
    assert.equal(imp.error, undefined, `import ${bad}: ${imp.error}`);
    assert.notEqual(imp.status, 0);
    assert.match(imp.stderr, /not a regular file/, `import ${bad}: ${imp.stderr}`);
  }
});
