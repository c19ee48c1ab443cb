// Issue 14 (audit): Flipt's audit events, from the node that commits each write, to a webhook
// receiver run here (a node http server) and a log file.
//  - every write through the primary and through a replica, with a created token, the bootstrap
//    token and without authentication, produces exactly one event with the right actor (the replica
//    that forwarded a write is in metadata.edgeflag.via, never the actor); the replica, given the
//    same sinks, sends none;
//  - the receiver verifies x-flipt-webhook-signature (hex HMAC-SHA256 of the body) on every request
//    and sees each idempotency key once with one body;
//  - a receiver that is down for a minute (AUDIT_DOWN_MS, default 60000) gets every event afterwards,
//    in order; a receiver that hangs does not slow a write;
//  - a 4xx other than 408/429 is a refusal: sent once, logged and counted, and the next event goes on;
//  - a full queue drops (counted in edgeflag_audit_events_total, logged) and never blocks a write;
//  - the event filter (audit.events) and bad configuration (refused with Flipt's messages).
// Every wait has a deadline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { node, stopAll, call, waitFor, sleep, tmpdir } from './cluster.mjs';
import { edgeflagBin } from '../compat/server.mjs';
import { onStablePort } from '../compat/ports.mjs';

const DOWN_MS = Number(process.env.AUDIT_DOWN_MS || 60000);
const SECRET = 's3cret-signing-key';
const BOOT = { authorization: 'Bearer boot' };
const bearer = (t) => ({ authorization: `Bearer ${t}` });

const nodes = [];
const receivers = [];
after(async () => {
  await stopAll(nodes);
  for (const r of receivers) await r.close();
});

// A webhook receiver. mode: 'ok' (200), 'hang' (never answers), 'refuse' (400). down(): stops listening (connection
// refused); up(): listens again on the same port. Every request's signature is checked.
async function receiver() {
  const r = {
    mode: 'ok',
    events: [], // accepted, in arrival order
    byKey: new Map(),
    badSignatures: 0,
    requests: 0,
    hung: [],
    refused: [], // payload keys answered 400 in mode 'refuse'
    port: 0,
    server: null,
  };
  const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      r.requests++;
      const body = Buffer.concat(chunks);
      const want = crypto.createHmac('sha256', SECRET).update(body).digest('hex');
      if (req.headers['x-flipt-webhook-signature'] !== want) r.badSignatures++;
      if (r.mode === 'hang') {
        r.hung.push(res);
        return;
      }
      if (r.mode === 'refuse') {
        r.refused.push(JSON.parse(body.toString()).payload?.key);
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":"no"}');
        return;
      }
      const key = req.headers['idempotency-key'];
      const text = body.toString();
      if (r.byKey.has(key)) {
        assert.equal(r.byKey.get(key), text, `key ${key} came back with another body`);
      } else {
        r.byKey.set(key, text);
        r.events.push({ key, event: JSON.parse(text) });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  };
  // Listens on a port below the ephemeral range (../compat/ports.mjs), the same one after down():
  // with port 0 another node could take it during the minute down and answer the webhook itself.
  const listenAt = (port) =>
    new Promise((resolve, reject) => {
      r.server = http.createServer(handler);
      r.server.once('error', reject);
      r.server.listen(port, '127.0.0.1', () => {
        r.port = port;
        resolve();
      });
    });
  r.up = () => (r.port === 0 ? onStablePort(listenAt) : listenAt(r.port));
  r.down = () =>
    new Promise((resolve) => {
      for (const res of r.hung.splice(0)) res.destroy();
      r.server.closeAllConnections();
      r.server.close(() => resolve());
    });
  r.close = async () => {
    if (r.server && r.server.listening) await r.down();
  };
  r.url = () => `http://127.0.0.1:${r.port}/hook`;
  await r.up();
  receivers.push(r);
  return r;
}

async function ok(res, what) {
  assert.equal(res.status, 200, `${what}: ${res.status} ${res.text}`);
  return res.json;
}

async function metric(n, line) {
  const text = (await call(n.url, 'GET', '/metrics')).text;
  const m = text.split('\n').find((l) => l.startsWith(line + ' '));
  return m ? Number(m.split(' ').pop()) : 0;
}

function auditArgs(r, extra = []) {
  return ['--audit-webhook-url', r.url(), '--audit-webhook-secret', SECRET, '--audit-webhook-max-backoff', '1000', ...extra];
}

test('audit events', { concurrency: true }, async (t) => {
  await Promise.all([
    t.test('a receiver down for a minute gets every event afterwards, in order (no authentication: anonymous)', async () => {
      const r = await receiver();
      const p = await node('audit-down', { args: auditArgs(r) }).start();
      nodes.push(p);
      await r.down();
      const keys = ['d1', 'd2', 'd3', 'd4', 'd5'];
      for (const k of keys) await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: k, name: k, type: 'BOOLEAN_FLAG_TYPE' }), k);
      await sleep(DOWN_MS);
      assert.equal(r.events.length, 0);
      await r.up();
      // the node's log says what its webhook thread did if this ever times out again (it did
      // once, 2026-11-28, not reproduced: 10 of 10 at once after)
      await waitFor('every event after the outage', () => r.events.length >= keys.length, 30000, 50).catch((e) => {
        throw new Error(`${e.message}; receiver saw ${r.requests} requests; node log tail:\n${p.stderr.slice(-3000)}`);
      });
      await sleep(300);
      assert.equal(r.events.length, keys.length, 'each event once');
      assert.deepEqual(r.events.map((x) => x.event.payload.key), keys, 'in commit order');
      for (const { event } of r.events) {
        assert.equal(event.type, 'flag');
        assert.equal(event.action, 'created');
        assert.equal(event.metadata.actor.authentication, 'none');
        assert.equal(event.metadata.actor.name, 'anonymous');
      }
      assert.equal(r.badSignatures, 0);
      assert.ok((await metric(p, 'edgeflag_audit_events_total{sink="webhook",result="failed"}')) >= 1, 'failed attempts are counted');
      assert.equal(await metric(p, 'edgeflag_audit_events_total{sink="webhook",result="delivered"}'), keys.length);
    }),

    t.test('primary and replica, created token and bootstrap token: one signed event per write, right actor, log sink', async () => {
      const r = await receiver();
      const dir = tmpdir('ef-audit-log-');
      const logFile = path.join(dir, 'audit.log');
      const p = await node('audit-p', { args: ['--auth-token', 'boot', ...auditArgs(r, ['--audit-log', logFile])] }).start();
      nodes.push(p);
      // the replica is given the same sinks: it commits nothing, so it must send nothing
      const rep = await node('audit-r', { upstream: p.url, args: ['--auth-token', 'boot', '--upstream-token', 'boot', '--name', 'dfw', ...auditArgs(r)] }).start();
      nodes.push(rep);
      // logged before "listening on" goes to stdout, but the two pipes are read apart: wait for it
      await waitFor('the replica says its audit sinks are ignored', async () => /audit sinks ignored/.test(rep.stderr), 5000);

      const tok = await ok(await call(p.url, 'POST', '/auth/v1/method/token', { name: 'ci-bot' }, BOOT), 'token');
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'checkout', name: 'Checkout', type: 'VARIANT_FLAG_TYPE' }, bearer(tok.clientToken)), 'create');
      // the replica checks tokens itself: it knows a new one once it has replicated and reloaded
      await waitFor('the replica knows the token', async () => (await call(rep.url, 'GET', '/auth/v1/self', undefined, bearer(tok.clientToken))).status === 200, 10000);
      await ok(await call(rep.url, 'PUT', '/api/v1/namespaces/default/flags/checkout', { name: 'Checkout v2', enabled: true }, BOOT), 'update');
      await ok(await call(rep.url, 'POST', '/api/v1/namespaces/default/segments', { key: 'beta', name: 'Beta', matchType: 'ANY_MATCH_TYPE' }, bearer(tok.clientToken)), 'segment');
      await ok(await call(rep.url, 'DELETE', '/api/v1/namespaces/default/flags/checkout', undefined, BOOT), 'delete');
      // refused writes make no event
      assert.equal((await call(rep.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'x', name: 'X', type: 'BOOLEAN_FLAG_TYPE' })).status, 401);
      assert.equal((await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: '', name: 'X' }, BOOT)).status, 400);

      await waitFor('five events', () => r.events.length >= 5, 10000, 20);
      await sleep(500);
      const ev = r.events.map((x) => x.event);
      assert.deepEqual(ev.map((e) => `${e.type}:${e.action}`), ['token:created', 'flag:created', 'flag:updated', 'segment:created', 'flag:deleted']);
      assert.equal(r.badSignatures, 0, 'every body signed with the secret');
      assert.equal(new Set(r.events.map((x) => x.key)).size, 5, 'one key per write');
      for (const e of ev) {
        assert.equal(e.version, '0.2');
        assert.equal(e.status, 'success');
        assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        assert.equal(e.metadata.actor.authentication, 'token');
      }
      assert.equal(ev[0].metadata.actor.name, 'initial_bootstrap_token');
      assert.equal(ev[0].payload.name, 'ci-bot');
      assert.equal(ev[0].payload.hashed_token, undefined, 'never a token hash');
      assert.equal(ev[1].metadata.actor.name, 'ci-bot');
      assert.equal(ev[1].metadata.edgeflag.actor_id, tok.authentication.id);
      assert.equal(ev[1].metadata.edgeflag.via, undefined, 'written on the primary');
      assert.deepEqual([ev[1].payload.key, ev[1].payload.name, ev[1].payload.enabled, ev[1].payload.namespace_key], ['checkout', 'Checkout', false, 'default']);
      for (const i of [2, 3, 4]) assert.equal(ev[i].metadata.edgeflag.via, 'dfw', 'forwarded by the replica');
      assert.equal(ev[2].metadata.actor.name, 'initial_bootstrap_token');
      assert.equal(ev[2].payload.name, 'Checkout v2');
      assert.equal(ev[2].payload.enabled, true);
      assert.equal(ev[3].metadata.actor.name, 'ci-bot');
      assert.equal(ev[3].payload.key, 'beta');
      assert.equal(ev[4].payload.name, 'Checkout v2', 'a deletion carries the entity as it was');
      // the log sink has the same events, one JSON object a line
      const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(lines, ev);
      assert.equal(await metric(p, 'edgeflag_audit_events_total{sink="log",result="delivered"}'), 5);
      assert.equal(await metric(rep, 'edgeflag_audit_events_total{sink="webhook",result="delivered"}'), 0);
    }),

    t.test('JWT callers: events and history name the subject, through the primary and a replica', async () => {
      const r = await receiver();
      const dir = tmpdir('ef-audit-jwt-');
      const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pem = path.join(dir, 'jwt.pem');
      fs.writeFileSync(pem, publicKey.export({ type: 'spki', format: 'pem' }));
      const b64u = (b) => Buffer.from(b).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const input = `${b64u(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64u(
        JSON.stringify({ iss: 'https://issuer.test', aud: 'edgeflag', sub: 'alice', iat: now, exp: now + 600, user: { email: 'a@example.com', name: 'Alice' } }),
      )}`;
      const jwt = `${input}.${b64u(crypto.sign('sha256', Buffer.from(input), privateKey))}`;
      const jwtArgs = ['--auth-token', 'boot', '--auth-jwt-public-key-file', pem, '--auth-jwt-issuer', 'https://issuer.test', '--auth-jwt-audiences', 'edgeflag'];
      const p = await node('audit-jwt-p', { args: [...jwtArgs, ...auditArgs(r)] }).start();
      nodes.push(p);
      const rep = await node('audit-jwt-r', { upstream: p.url, args: [...jwtArgs, '--upstream-token', 'boot', '--name', 'iad'] }).start();
      nodes.push(rep);
      // "via" is believed only from a replica's live stream (docs/audit.md): write once it follows
      await waitFor('the replica to follow', async () => (await call(rep.url, 'GET', '/ready')).status === 200, 10000);
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'j1', name: 'J1', type: 'BOOLEAN_FLAG_TYPE' }, { authorization: `JWT ${jwt}` }), 'primary');
      await ok(await call(rep.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'j2', name: 'J2', type: 'BOOLEAN_FLAG_TYPE' }, { authorization: `Bearer ${jwt}` }), 'replica');
      await waitFor('two events', () => r.events.length >= 2, 10000, 20);
      await sleep(300);
      assert.equal(r.events.length, 2);
      for (const { event } of r.events) {
        assert.deepEqual(event.metadata.actor, { authentication: 'jwt', ip: event.metadata.actor.ip, email: 'a@example.com', name: 'Alice' });
        assert.equal(event.metadata.edgeflag.actor_id, 'alice');
      }
      assert.equal(r.events[0].event.metadata.edgeflag.via, undefined);
      assert.equal(r.events[1].event.metadata.edgeflag.via, 'iad');
      const h = await ok(await call(rep.url, 'GET', '/edgeflag/v1/namespaces/default/history?flag=j2', undefined, { authorization: `JWT ${jwt}` }), 'history');
      assert.deepEqual([h.records[0].actor.method, h.records[0].actor.id, h.records[0].actor.name], ['jwt', 'alice', 'Alice']);
    }),

    t.test('events a restart left undelivered are sent after it, from the change log (cursor file)', async () => {
      const r = await receiver();
      await r.down();
      const p = node('audit-restart', { args: auditArgs(r) });
      await p.start();
      nodes.push(p);
      // delivered before the outage: not sent again after the restart
      await r.up();
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'r0', name: 'r0', type: 'BOOLEAN_FLAG_TYPE' }), 'r0');
      await waitFor('r0 delivered', () => r.events.length === 1, 10000, 20);
      await sleep(400); // the cursor is written within 200 ms of the queue running empty
      await r.down();
      for (const k of ['r1', 'r2', 'r3']) await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: k, name: k, type: 'BOOLEAN_FLAG_TYPE' }), k);
      await p.stop(); // SIGTERM: 3 s of grace, then what is left stays in the change log
      await p.start();
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'r4', name: 'r4', type: 'BOOLEAN_FLAG_TYPE' }), 'r4');
      await r.up();
      await waitFor('every event', () => r.events.length >= 5, 15000, 50);
      await sleep(300);
      assert.deepEqual(r.events.map((x) => x.event.payload.key), ['r0', 'r1', 'r2', 'r3', 'r4'], 'each once, in commit order');
      assert.equal(r.badSignatures, 0);
      assert.match(p.stderr, /resending the events of writes not yet delivered.*writes=3/);
    }),

    t.test('--db as a file: URI keeps its cursor beside the database file too', async () => {
      const dir = tmpdir('ef-audit-uri-');
      const db = path.join(dir, 'flags.db');
      const p = node('audit-uri', { args: ['--db', `file:${db}?mode=rwc`, '--audit-log', path.join(dir, 'audit.log')] });
      await p.start();
      nodes.push(p);
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'u1', name: 'u1', type: 'BOOLEAN_FLAG_TYPE' }), 'u1');
      await waitFor('the cursor file beside flags.db', () => fs.existsSync(`${db}.audit`), 5000, 20);
      await p.stop();
      assert.ok(!fs.readdirSync(dir).some((f) => f.startsWith('file:')), 'no file named after the URI');
    }),

    t.test('a hanging receiver does not slow a write; its events arrive once it answers', async () => {
      const r = await receiver();
      r.mode = 'hang';
      // one attempt may hang for 30 s: a write that waited on the sink would take that long
      const p = await node('audit-hang', { args: auditArgs(r, ['--audit-webhook-timeout', '30000']) }).start();
      nodes.push(p);
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'h0', name: 'h0', type: 'BOOLEAN_FLAG_TYPE' }), 'h0');
      await waitFor('the receiver holds a request', () => r.hung.length >= 1, 5000, 20);
      const times = [];
      for (let i = 1; i <= 5; i++) {
        const t0 = performance.now();
        await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: `h${i}`, name: `h${i}`, type: 'BOOLEAN_FLAG_TYPE' }), `h${i}`);
        times.push(performance.now() - t0);
      }
      // milliseconds on a quiet machine; the bound leaves room for a loaded one (CI shares 2 cores)
      assert.ok(Math.max(...times) < 5000, `write latencies while the receiver hangs: ${times.map((x) => x.toFixed(1))} ms`);
      assert.equal(r.events.length, 0, 'nothing delivered while it hangs');
      r.mode = 'ok';
      for (const res of r.hung.splice(0)) res.destroy();
      await waitFor('six events', () => r.events.length >= 6, 20000, 50);
      assert.deepEqual(r.events.map((x) => x.event.payload.key), ['h0', 'h1', 'h2', 'h3', 'h4', 'h5']);
      assert.equal(r.badSignatures, 0);
    }),

    t.test('a 4xx other than 408/429 is a refusal: logged, counted, not retried; the next event goes on', async () => {
      const r = await receiver();
      r.mode = 'refuse';
      const p = await node('audit-refuse', { args: auditArgs(r) }).start();
      nodes.push(p);
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'x1', name: 'x1', type: 'BOOLEAN_FLAG_TYPE' }), 'x1');
      await waitFor('the refusal logged', () => /audit webhook refused an event for good/.test(p.stderr), 10000);
      r.mode = 'ok';
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'x2', name: 'x2', type: 'BOOLEAN_FLAG_TYPE' }), 'x2');
      await waitFor('the next event', () => r.events.length >= 1, 10000, 20);
      await sleep(1500); // past the 1 s backoff: a retry of x1 would have come by now
      assert.deepEqual(r.refused, ['x1'], 'the refused event was sent once');
      assert.deepEqual(r.events.map((x) => x.event.payload.key), ['x2']);
      assert.match(p.stderr, /audit webhook refused an event for good.*status=400/);
      assert.equal(await metric(p, 'edgeflag_audit_events_total{sink="webhook",result="failed"}'), 1);
      assert.equal(await metric(p, 'edgeflag_audit_events_total{sink="webhook",result="delivered"}'), 1);
    }),

    t.test('a full queue drops, counts and logs, and never blocks a write', async () => {
      const r = await receiver();
      await r.down(); // nothing is taken: the queue fills
      const p = await node('audit-full', { args: auditArgs(r, ['--audit-queue', '2']) }).start();
      nodes.push(p);
      for (let i = 0; i < 8; i++) await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: `q${i}`, name: 'q', type: 'BOOLEAN_FLAG_TYPE' }), `q${i}`);
      await waitFor('drops counted', async () => (await metric(p, 'edgeflag_audit_events_total{sink="queue",result="dropped"}')) >= 5, 5000);
      await waitFor('drops logged', () => /audit queue full/.test(p.stderr), 5000);
      await r.up();
      await waitFor('what was queued', () => r.events.length >= 2, 10000, 50);
      await sleep(300);
      const got = r.events.length;
      const dropped = await metric(p, 'edgeflag_audit_events_total{sink="queue",result="dropped"}');
      assert.equal(got + dropped, 8, `delivered ${got} + dropped ${dropped}`);
    }),

    t.test('audit.events filters; bad audit configuration is refused with a clear message', async () => {
      const r = await receiver();
      const p = await node('audit-filter', { args: auditArgs(r, ['--audit-events', 'segment:*,flag:deleted']) }).start();
      nodes.push(p);
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'f', name: 'F', type: 'BOOLEAN_FLAG_TYPE' }), 'flag');
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/segments', { key: 's', name: 'S', matchType: 'ALL_MATCH_TYPE' }), 'segment');
      await ok(await call(p.url, 'DELETE', '/api/v1/namespaces/default/flags/f'), 'delete');
      await waitFor('two events', () => r.events.length >= 2, 10000, 20);
      await sleep(300);
      assert.deepEqual(r.events.map((x) => `${x.event.type}:${x.event.action}`), ['segment:created', 'flag:deleted']);

      const dir = tmpdir('ef-audit-cfg-');
      const run = (args, env = {}) =>
        spawnSync(edgeflagBin, ['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'x.db'), ...args], {
          encoding: 'utf8',
          timeout: 10000,
          env: { ...process.env, ...env },
        });
      const cases = [
        [['--audit-webhook-url', 'http://127.0.0.1:1/', '--audit-events', 'flag:bogus'], /audit\.events: invalid verb: bogus/],
        [['--audit-webhook-url', 'http://127.0.0.1:1/', '--audit-events', 'flags:created'], /invalid noun: flags/],
        [['--audit-webhook-url', 'http://127.0.0.1:1/', '--audit-events', 'flag:*,flag:created'], /repeated event pair: flag:created/],
        [['--audit-webhook-url', 'ftp://127.0.0.1/'], /audit webhook url must be http/],
        [['--audit-log', path.join(dir, 'no/such/dir/audit.log')], /audit log sink: cannot open/],
      ];
      for (const [args, re] of cases) {
        const res = run(args);
        assert.notEqual(res.status, 0, args.join(' '));
        assert.match(res.stderr, re, args.join(' '));
      }
      const cfg = (yaml) => {
        const f = path.join(dir, `c${Math.random()}.yml`);
        fs.writeFileSync(f, yaml);
        return ['--config', f];
      };
      const flipt = [
        ['audit:\n  sinks:\n    webhook:\n      enabled: true\n', /url or template\(s\) not provided/],
        ['audit:\n  sinks:\n    kafka:\n      enabled: true\n', /kafka audit sink is not supported/],
        ['audit:\n  buffer:\n    capacity: 20\n', /buffer capacity below 2 or above 10/],
        ['audit:\n  buffer:\n    flush_period: 10s\n', /flush period below 2 minutes or greater than 5 minutes/],
        ['audit:\n  sinks:\n    webhook:\n      enabled: true\n      url: http://x/\n      max_backoff_duration: soon\n', /max_backoff_duration/],
        ['audit:\n  sinks:\n    webhook:\n      enabled: true\n      templates:\n        - url: http://x/\n', /templates are not supported/],
      ];
      for (const [yaml, re] of flipt) {
        const res = run(cfg(yaml));
        assert.notEqual(res.status, 0, yaml);
        assert.match(res.stderr, re, yaml);
      }
    }),

    t.test("Flipt's audit config (file and FLIPT_* env) drives the same sinks", async () => {
      const r = await receiver();
      const dir = tmpdir('ef-audit-flipt-');
      const f = path.join(dir, 'config.yml');
      fs.writeFileSync(
        f,
        `audit:\n  sinks:\n    webhook:\n      enabled: true\n      url: ${r.url()}\n      max_backoff_duration: 1s\n  events:\n    - "flag:created"\n`,
      );
      const p = node('audit-flipt', { args: ['--config', f] });
      process.env.FLIPT_AUDIT_SINKS_WEBHOOK_SIGNING_SECRET = SECRET; // spawn inherits it
      await p.start();
      delete process.env.FLIPT_AUDIT_SINKS_WEBHOOK_SIGNING_SECRET;
      nodes.push(p);
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'ff', name: 'FF', type: 'BOOLEAN_FLAG_TYPE' }), 'flag');
      await ok(await call(p.url, 'POST', '/api/v1/namespaces/default/segments', { key: 'ss', name: 'SS', matchType: 'ALL_MATCH_TYPE' }), 'segment');
      await waitFor('the flag event', () => r.events.length >= 1, 10000, 20);
      await sleep(300);
      assert.deepEqual(r.events.map((x) => `${x.event.type}:${x.event.action}:${x.event.payload.key}`), ['flag:created:ff']);
      assert.equal(r.badSignatures, 0, 'signed with the secret from FLIPT_AUDIT_SINKS_WEBHOOK_SIGNING_SECRET');
    }),
  ]);
});
