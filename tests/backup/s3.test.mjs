// Continuous backup to a real S3-protocol server run locally (s3rver from npm, its own process,
// behind a verifier of AWS Signature V4: tests/backup/s3server.mjs), and `edgeflag restore s3://…`
// (docs/backup.md):
//  - point-in-time restore (--at SEQ and --at TIME) gives a store whose `edgeflag export` is
//    byte-identical to the primary's export taken right after that write; the latest restore
//    starts from a periodic snapshot;
//  - kill -9 of the primary while it ships: every write acknowledged at or before the last
//    shipped seq is in the restored store, nothing after it;
//  - the bucket down (s3rver stopped) and back (restarted on the same port and directory): writes
//    never wait, /ready stays 200 but says degraded with the error, metrics count the failures,
//    and everything owed arrives;
//  - wrong keys, a missing bucket, corrupt objects and bad settings are clear errors.
// Every wait has a deadline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { node, stopAll, call, waitFor, tmpdir, sleep } from '../cluster/cluster.mjs';
import { edgeflagBin } from '../compat/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodes = [];
const s3s = [];
after(async () => {
  await stopAll(nodes);
  for (const s of s3s) await s.stop();
});

// s3rver in its own process; stop() and start() again keep the port and the objects
function s3server(dir = tmpdir('ef-s3-'), buckets = ['bk']) {
  const s = {
    dir,
    port: 0,
    url: null,
    child: null,
    async start() {
      const child = spawn(process.execPath, [path.join(here, 's3server.mjs'), String(s.port), dir, ...buckets], { stdio: ['ignore', 'pipe', 'pipe'] });
      s.child = child;
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      s.url = await new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${err}`)), 15000);
        child.stdout.on('data', (d) => {
          out += d;
          const m = out.match(/s3 listening on (http:\/\/\S+)/);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        child.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`s3rver exited with ${code}: ${err}`));
        });
      });
      s.port = Number(new URL(s.url).port);
      s.exited = new Promise((r) => child.on('exit', r));
      return s;
    },
    async stop() {
      if (s.child && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
      if (s.exited) await s.exited;
    },
  };
  s3s.push(s);
  return s;
}

function env(s3, extra = {}) {
  return { ...process.env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_ENDPOINT_URL: s3.url, AWS_REGION: 'us-east-1', ...extra };
}

function ef(s3, args, extra) {
  return spawnSync(edgeflagBin, args, { encoding: 'utf8', timeout: 30000, env: s3 ? env(s3, extra) : process.env });
}

// a primary shipping to s3://bk/PREFIX (credentials from the AWS_* environment)
function primary(name, s3, prefix, args = []) {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' });
  const n = node(name, { args: ['--backup', `s3://bk/${prefix}`, '--backup-endpoint', s3.url, '--backup-batch-ms', '50', ...args] });
  nodes.push(n);
  return n;
}

async function write(n, method, p, body) {
  const r = await call(n.url, method, p, body);
  assert.ok(r.status === 200 || r.status === 204, `${method} ${p}: ${r.status} ${r.text}`);
  return Number(r.headers.get('x-edgeflag-version'));
}

const flag = (key) => ({ key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true });

async function ready(n) {
  const r = await call(n.url, 'GET', '/ready');
  return { status: r.status, ...r.json };
}

async function shipped(n, seq, ms = 10000) {
  await waitFor(`backup to reach seq ${seq}`, async () => (await ready(n)).backup.shippedSeq >= seq, ms);
}

function exportDb(db) {
  const r = spawnSync(edgeflagBin, ['export', '--db', db, '--all-namespaces'], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('point-in-time restore (--at SEQ, --at TIME, latest) equals the primary at that point, byte for byte', { timeout: 90000 }, async () => {
  const s3 = await s3server().start();
  const p = primary('pit', s3, 'pit/prod', ['--backup-snapshot-every', '12']);
  await p.start();
  // the first snapshot (of the empty store) is in the bucket before the first write, so every
  // point can be restored
  await waitFor('the first snapshot', async () => /^edgeflag_backup_snapshots_total [1-9]/m.test((await call(p.url, 'GET', '/metrics')).text), 10000);
  const db = path.join(p.dir, 'edgeflag.db');
  const at = new Map(); // seq -> export right after that write
  let timePoint = null;
  let seq = 0;
  for (let i = 0; i < 36; i++) {
    const k = `f${i % 9}`;
    if (i < 9) seq = await write(p, 'POST', '/api/v1/namespaces/default/flags', flag(k));
    else if (i % 4 === 0) seq = await write(p, 'PUT', `/api/v1/namespaces/default/flags/${k}`, { ...flag(k), name: `renamed ${i}`, enabled: false });
    else if (i % 4 === 1) seq = await write(p, 'POST', `/api/v1/namespaces/default/flags/${k}/variants`, { key: `v${i}`, name: `v${i}`, attachment: `{"i":${i}}` });
    else if (i % 4 === 2) seq = await write(p, 'POST', '/api/v1/namespaces/default/segments', { key: `s${i}`, name: `s${i}`, matchType: 'ALL_MATCH_TYPE' });
    else seq = await write(p, 'POST', '/api/v1/namespaces', { key: `ns${i}`, name: `ns${i}` });
    if ([5, 11, 20, 29].includes(seq)) at.set(seq, exportDb(db));
    if (seq === 17) {
      at.set(seq, exportDb(db));
      await sleep(30);
      timePoint = new Date(Date.now() - 15).toISOString(); // after seq 17 committed, before 18
      await sleep(30);
    }
  }
  assert.equal(seq, 36);
  const final = exportDb(db);
  await shipped(p, 36);
  const rd = await ready(p);
  assert.equal(rd.status, 200);
  assert.equal(rd.backup.state, 'ok');
  assert.equal(rd.backup.lagSeq, 0);
  assert.ok(rd.backup.snapshotSeq >= 24, `periodic snapshots: ${JSON.stringify(rd.backup)}`);

  const out = tmpdir('ef-s3-restore-');
  for (const [s, want] of at) {
    const target = path.join(out, `at-${s}.db`);
    const r = ef(s3, ['restore', 's3://bk/pit/prod', '--db', target, '--at', String(s)]);
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.seq, s);
    assert.ok(info.snapshotSeq <= s);
    assert.equal(exportDb(target), want, `restore --at ${s}`);
  }
  const tt = path.join(out, 'at-time.db');
  const rt = ef(s3, ['restore', 's3://bk/pit/prod', '--db', tt, '--at', timePoint]);
  assert.equal(rt.status, 0, rt.stderr);
  assert.equal(JSON.parse(rt.stdout).seq, 17, `--at ${timePoint}`);
  assert.equal(exportDb(tt), at.get(17));
  const latest = path.join(out, 'latest.db');
  const rl = ef(s3, ['restore', 's3://bk/pit/prod', '--db', latest]);
  assert.equal(rl.status, 0, rl.stderr);
  const li = JSON.parse(rl.stdout);
  assert.equal(li.seq, 36);
  assert.ok(li.snapshotSeq >= 24, `latest restore starts from a snapshot: ${rl.stdout}`);
  assert.equal(exportDb(latest), final);
  // past the end, and before anything: clear refusals
  const past = ef(s3, ['restore', 's3://bk/pit/prod', '--db', path.join(out, 'x.db'), '--at', '99']);
  assert.equal(past.status, 2);
  assert.match(past.stderr, /only up to seq 36 .* seq 99 cannot be restored/);
  const early = ef(s3, ['restore', 's3://bk/pit/prod', '--db', path.join(out, 'x.db'), '--at', '2001-01-01T00:00:00Z']);
  assert.equal(early.status, 2);
  assert.match(early.stderr, /no snapshot of history [0-9a-f]+ at or before the point/);
  assert.ok(!fs.existsSync(path.join(out, 'x.db')));
});

test('right after a write the backup lag counts it, before the shipper has looked (regression: it read 0 for up to --backup-batch-ms)', { timeout: 60000 }, async () => {
  const s3 = await s3server().start();
  // the shipper looks every 3 s: a write lands between two looks
  const p = primary('lagnow', s3, 'lagnow', ['--backup-batch-ms', '3000']);
  await p.start();
  await waitFor('the shipper to read the bucket', async () => (await ready(p)).backup.state === 'ok', 10000);
  for (let i = 0; i < 3; i++) {
    const v = await write(p, 'POST', '/api/v1/namespaces/default/flags', flag(`lag${i}`));
    const rd = await ready(p);
    const m = (await call(p.url, 'GET', '/metrics')).text;
    const shippedNow = Number(/^edgeflag_backup_shipped_seq (\d+)$/m.exec(m)[1]);
    const lagNow = Number(/^edgeflag_backup_lag_seq (\d+)$/m.exec(m)[1]);
    assert.ok(rd.backup.storeSeq >= v, `/ready storeSeq ${rd.backup.storeSeq} after write ${v}`);
    assert.equal(rd.backup.lagSeq, rd.backup.storeSeq - rd.backup.shippedSeq);
    assert.ok(shippedNow >= v || lagNow >= v - shippedNow, `metrics: shipped ${shippedNow}, lag ${lagNow} after write ${v}`);
    await shipped(p, v);
    const after = await ready(p);
    assert.equal(after.backup.lagSeq, 0);
  }
});

test('kill -9 while shipping: every write acknowledged up to the last shipped batch is restored', { timeout: 60000 }, async () => {
  const s3 = await s3server().start();
  const p = primary('crash', s3, 'crash');
  await p.start();
  const acked = new Map();
  let lastSeen = 0;
  let killed = false;
  const writer = (async () => {
    for (let i = 0; !killed; i++) {
      try {
        acked.set(`k${i}`, await write(p, 'POST', '/api/v1/namespaces/default/flags', flag(`k${i}`)));
      } catch (e) {
        if (!killed) throw e;
      }
    }
  })();
  await waitFor('some shipped batches', async () => (lastSeen = (await ready(p)).backup.shippedSeq) >= 40, 20000);
  await sleep(120); // the kill lands while batches are in flight
  const before = (await ready(p)).backup.shippedSeq;
  killed = true;
  await p.kill9();
  await writer.catch(() => {});
  const target = path.join(tmpdir('ef-s3-crash-'), 'r.db');
  let r = ef(s3, ['restore', 's3://bk/crash', '--db', target]);
  if (r.status !== 0) {
    // a server that keeps the part of an object whose uploader died during the PUT (s3rver on
    // its own does; S3 does not) leaves the newest batch torn: restore says so and up to where
    const m = r.stderr.match(/it is the newest batch .*restore up to seq (\d+) with --at/);
    assert.ok(m, r.stderr);
    r = ef(s3, ['restore', 's3://bk/crash', '--db', target, '--at', m[1]]);
  }
  assert.equal(r.status, 0, r.stderr);
  const R = JSON.parse(r.stdout).seq;
  assert.ok(R >= before && before >= lastSeen, `restored seq ${R}, shipped before the kill ${before}`);
  const exp = exportDb(target);
  let inside = 0;
  for (const [k, s] of acked) {
    assert.equal(exp.includes(`- key: ${k}\n`), s <= R, `${k} (seq ${s}) vs restored seq ${R}`);
    if (s <= R) inside++;
  }
  assert.ok(inside >= 40, `${inside} acknowledged writes restored`);

  // the primary comes back: it checks the newest batch, ships a torn one again, then what it owes
  await p.start();
  const head = Math.max(...acked.values());
  await shipped(p, head, 20000);
  const again = path.join(tmpdir('ef-s3-crash2-'), 'r.db');
  const r2 = ef(s3, ['restore', 's3://bk/crash', '--db', again]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(exportDb(again), exportDb(path.join(p.dir, 'edgeflag.db')));
});

test('bucket down and back: writes never wait, /ready says degraded, everything owed arrives', { timeout: 90000 }, async () => {
  const s3 = await s3server().start();
  const p = primary('outage', s3, 'outage');
  await p.start();
  for (let i = 0; i < 5; i++) await write(p, 'POST', '/api/v1/namespaces/default/flags', flag(`a${i}`));
  await shipped(p, 5);
  await s3.stop();
  let slowest = 0;
  for (let i = 0; i < 10; i++) {
    const t = Date.now();
    await write(p, 'POST', '/api/v1/namespaces/default/flags', flag(`b${i}`));
    slowest = Math.max(slowest, Date.now() - t);
  }
  assert.ok(slowest < 1000, `a write waited ${slowest} ms on the bucket`);
  await waitFor('/ready to say degraded, owing 10', async () => {
    const r = await ready(p);
    return r.degraded === true && r.backup.lagSeq === 10;
  }, 10000);
  const rd = await ready(p);
  assert.equal(rd.status, 200, 'an unreachable bucket does not make the node unready');
  assert.equal(rd.ready, true);
  assert.equal(rd.backup.state, 'failing');
  assert.equal(rd.backup.lagSeq, 10);
  assert.equal(rd.backup.shippedSeq, 5);
  assert.match(rd.backup.lastError, /Couldn't connect|connect/i);
  const ev = await call(p.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: 'b9', entityId: 'e', context: {} });
  assert.equal(ev.status, 200);
  const m = (await call(p.url, 'GET', '/metrics')).text;
  assert.match(m, /^edgeflag_backup_up 0$/m);
  assert.match(m, /^edgeflag_backup_lag_seq 10$/m);
  assert.ok(Number(m.match(/^edgeflag_backup_lag_seconds ([\d.]+)$/m)[1]) > 0, 'the age of what is owed');
  assert.ok(Number(m.match(/^edgeflag_backup_failures_total (\d+)$/m)[1]) >= 1);
  assert.match(p.stderr, /backup: cannot ship to the bucket; retrying with backoff/);

  await s3.start(); // same port, same objects
  await shipped(p, 15, 40000);
  const back = await ready(p);
  assert.equal(back.backup.state, 'ok');
  assert.equal(back.degraded, false);
  assert.match((await call(p.url, 'GET', '/metrics')).text, /^edgeflag_backup_up 1$/m);
  assert.match(p.stderr, /backup: the bucket answers again/);
  const target = path.join(tmpdir('ef-s3-outage-'), 'r.db');
  const r = ef(s3, ['restore', 's3://bk/outage', '--db', target]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).seq, 15);
  assert.equal(exportDb(target), exportDb(path.join(p.dir, 'edgeflag.db')));
});

test('wrong keys, a missing bucket, corrupt objects and bad settings are clear errors', { timeout: 60000 }, async () => {
  const s3 = await s3server().start();
  // a server with a wrong key or a missing bucket: serving goes on, /ready says why
  const bad = primary('badkey', s3, 'x', ['--backup-access-key', 'WRONG', '--backup-secret-key', 'nope']);
  await bad.start();
  await waitFor('bad key reported', async () => (await ready(bad)).backup.state === 'failing', 10000);
  assert.match((await ready(bad)).backup.lastError, /HTTP 403 InvalidAccessKeyId/);
  // the right key with a wrong secret: the signature is checked (s3server.mjs verifies SigV4)
  const badsig = primary('badsecret', s3, 'x', ['--backup-secret-key', 'WRONG']);
  await badsig.start();
  await waitFor('bad signature reported', async () => (await ready(badsig)).backup.state === 'failing', 10000);
  assert.match((await ready(badsig)).backup.lastError, /HTTP 403 SignatureDoesNotMatch: the signature does not match/);
  const nob = node('nobucket', { args: ['--backup', 's3://missing-bucket/x', '--backup-endpoint', s3.url] });
  nodes.push(nob);
  await nob.start();
  await waitFor('missing bucket reported', async () => (await ready(nob)).backup.state === 'failing', 10000);
  assert.match((await ready(nob)).backup.lastError, /HTTP 404 NoSuchBucket/);

  // a good backup, then corrupt objects on the server's disk
  const p = primary('corrupt', s3, 'corrupt');
  await p.start();
  for (let i = 0; i < 4; i++) await write(p, 'POST', '/api/v1/namespaces/default/flags', flag(`c${i}`));
  await shipped(p, 4);
  // after the first snapshot: these go out in batches
  for (let i = 4; i < 8; i++) await write(p, 'POST', '/api/v1/namespaces/default/flags', flag(`c${i}`));
  await shipped(p, 8);
  await p.stop();
  const out = tmpdir('ef-s3-bad-');
  const target = path.join(out, 'r.db');
  const cases = [
    [['restore', 's3://bk/corrupt', '--db', target], { AWS_ACCESS_KEY_ID: 'WRONG' }, 1, /HTTP 403 InvalidAccessKeyId/],
    [['restore', 's3://missing-bucket/corrupt', '--db', target], {}, 1, /HTTP 404 NoSuchBucket/],
    [['restore', 's3://bk/corrupt', '--db', target], { AWS_SECRET_ACCESS_KEY: 'WRONG' }, 1, /HTTP 403 SignatureDoesNotMatch/],
    [['restore', 's3://bk/empty', '--db', target], {}, 2, /holds no edgeflag backup/],
    [['restore', 's3://bk/corrupt', '--db', target, '--at', 'yesterday'], {}, 2, /neither a seq nor an RFC 3339 time/],
    [['restore', 's3://bad bucket/x', '--db', target], {}, 2, /bad bucket name/],
    [['restore', 's3://bk/../x', '--db', target], {}, 2, /bad prefix/],
    [['restore', 's3://bk/corrupt'], {}, 2, /Usage: edgeflag restore s3:/],
  ];
  for (const [args, extra, code, re] of cases) {
    const r = ef(s3, args, extra);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.ok(!fs.existsSync(target), `${args.join(' ')} wrote the target`);
  }
  const files = (sub) => fs.readdirSync(path.join(s3.dir, 'bk', 'corrupt'), { recursive: true }).filter((f) => f.includes(sub) && f.endsWith('._S3rver_object')).map((f) => path.join(s3.dir, 'bk', 'corrupt', f));
  const batch = files('.batch').sort().at(-1); // the newest
  const good = fs.readFileSync(batch);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 3] ^= 0x20;
  fs.writeFileSync(batch, flipped);
  let r = ef(s3, ['restore', 's3://bk/corrupt', '--db', target]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /batch .*\.batch is corrupt: batch body does not match its sha256/);
  assert.match(r.stderr, /it is the newest batch .*restore up to seq \d+ with --at/);
  fs.writeFileSync(batch, good.subarray(0, 40)); // as a server keeping a cut-short upload leaves it
  r = ef(s3, ['restore', 's3://bk/corrupt', '--db', target]);
  assert.match(r.stderr, /batch .*\.batch is corrupt/);
  // the server that shipped it checks its newest batch when it starts, and ships it again
  await p.start();
  await waitFor('the torn batch shipped again', async () => /newest batch in the bucket is incomplete; shipping it again/.test(p.stderr) && (await ready(p)).backup.shippedSeq >= 8, 10000);
  await p.stop();
  assert.deepEqual(fs.readFileSync(batch), good, 'the same batch, under the same name');
  const snap = files('.db')[0];
  const sgood = fs.readFileSync(snap);
  const sbad = Buffer.from(sgood);
  sbad[200] ^= 0xff;
  fs.writeFileSync(snap, sbad);
  r = ef(s3, ['restore', 's3://bk/corrupt', '--db', target]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /snap\/.*\.db is corrupt: .* its manifest says/);
  fs.writeFileSync(snap, sgood);
  const man = files('.json')[0];
  fs.writeFileSync(man, '{"format":"something else"}');
  r = ef(s3, ['restore', 's3://bk/corrupt', '--db', target]);
  assert.match(r.stderr, /not an edgeflag snapshot manifest/);
  assert.ok(!fs.existsSync(target), 'nothing was restored from corrupt objects');

  // bad settings refuse to start
  const dir = tmpdir('ef-s3-cfg-');
  for (const [args, re] of [
    [['--backup', 'http://bk/x'], /is not an s3:\/\/BUCKET\[\/PREFIX\] URL/],
    [['--backup', 's3://bk/x', '--backup-endpoint', 'ftp://h'], /not an http:\/\/ or https:\/\/ URL/],
    [['--backup', 's3://bk/x', '--dir', dir], /needs the embedded SQLite store/],
  ]) {
    const full = ['serve', '--listen', '127.0.0.1:0', ...(args.includes('--dir') ? [] : ['--db', path.join(dir, 'e.db')]), ...args];
    const s = spawnSync(edgeflagBin, full, { encoding: 'utf8', timeout: 10000 });
    assert.equal(s.status, 2, `${args.join(' ')}: ${s.stderr}`);
    assert.match(s.stderr, re);
  }
});

test('backup settings from the config file, with no AWS_* variables', { timeout: 30000 }, async () => {
  const s3 = await s3server().start();
  const dir = tmpdir('ef-s3-yml-');
  const yml = path.join(dir, 'edgeflag.yml');
  fs.writeFileSync(yml, `db: ${path.join(dir, 'e.db')}\nbackup: s3://bk/from-config\nbackup-endpoint: ${s3.url}\nbackup-region: eu-west-1\nbackup-access-key: S3RVER\nbackup_secret_key: S3RVER\nbackup-batch-ms: 20\n`);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  const child = spawn(edgeflagBin, ['serve', '--listen', '127.0.0.1:0', '--config', yml], { stdio: ['ignore', 'pipe', 'pipe'], env: clean });
  const n = { child, stderr: '' };
  child.stderr.on('data', (d) => (n.stderr += d));
  n.exited = new Promise((r) => child.on('exit', r));
  n.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await n.exited;
  };
  nodes.push(n);
  n.url = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(n.stderr)), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
  });
  await write(n, 'POST', '/api/v1/namespaces/default/flags', flag('cfg'));
  await shipped(n, 1);
  const rd = await ready(n);
  assert.equal(rd.backup.target, 's3://bk/from-config');
  assert.equal(rd.backup.state, 'ok');
  // the signature used the configured region: the verifier checked it against the credential scope
  const target = path.join(dir, 'r.db');
  const r = ef(s3, ['restore', 's3://bk/from-config', '--db', target, '--region', 'eu-west-1']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(exportDb(target).includes('- key: cfg\n'));
  const cfgText = (await call(n.url, 'GET', '/meta/config')).text;
  assert.ok(!cfgText.includes('S3RVER'), 'no key in /meta/config');
});
