// Continuous backup and `edgeflag restore s3://…` against an S3 endpoint that misbehaves on
// purpose: an in-process object store (a Map, plain node:http, signatures not checked) whose
// answers a test can cut short, slow down, refuse or make endless. Each test says which lie it
// tells and what edgeflag must do about it:
//  - a listing cut short (no Content-Length, the connection closed mid-document) is an error,
//    never a complete listing that silently lacks its last names (the newest history);
//  - a listing that never ends, or an upload never answered, does not hold up shutdown past the
//    shipper's grace period;
//  - a bucket that refuses periodic snapshots still gets every write in log batches;
//  - a listing whose continuation tokens loop is refused at the first name listed again;
//  - a newest batch whose body is another (valid) batch is shipped again by its server;
//  - a bucket that answers 503 SlowDown (or drops the connection) now and then does not fail a
//    restore: its GETs are tried again; one that always does fails it, naming the answer;
//  - a snapshot that takes longer to upload than --backup-timeout, data moving all along, gets
//    there (a transfer is bounded by the time it goes without moving data, and 4 s per MiB);
//  - (not the bucket's lie: the host's) a wall clock that stepped back does not hold up the
//    batches.
// Every wait has a deadline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { node, stopAll, call, waitFor, tmpdir } from '../cluster/cluster.mjs';
import { edgeflagBin } from '../compat/server.mjs';

const nodes = [];
const servers = [];
after(async () => {
  await stopAll(nodes);
  for (const s of servers) {
    s.closeAllConnections?.();
    await new Promise((r) => s.close(r));
  }
});

const xmlEsc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// An S3-compatible bucket "bk" in memory. `hooks` may replace an answer:
//   hooks.list(req, res, {prefix, token, xml, keys}) -> true when it answered itself
//   hooks.put(req, res, key, body) -> true when it answered itself
//   hooks.get(req, res, key) -> true when it answered itself (an object's GET)
//   hooks.rate(req) -> bytes per second the request's body is read at (0: as fast as it comes)
async function hostileS3(hooks = {}) {
  const objects = new Map();
  const srv = http.createServer((req, res) => {
    const chunks = [];
    const rate = hooks.rate ? hooks.rate(req) : 0; // bytes/s this request's body is read at; 0: at once
    req.on('data', (c) => {
      chunks.push(c);
      if (!rate) return;
      req.pause();
      setTimeout(() => req.resume(), (c.length / rate) * 1000);
    });
    req.on('end', () => {
      const u = new URL(req.url, 'http://x');
      const [, bucket, ...rest] = u.pathname.split('/');
      const key = decodeURIComponent(rest.join('/'));
      const err = (status, code) => {
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${code}</Message></Error>`);
      };
      if (bucket !== 'bk') return err(404, 'NoSuchBucket');
      const body = Buffer.concat(chunks);
      if (req.method === 'PUT') {
        if (hooks.put && hooks.put(req, res, key, body)) return;
        objects.set(key, body);
        res.writeHead(200, { etag: '"x"' });
        return res.end();
      }
      if (req.method === 'GET' && !key && u.searchParams.get('list-type') === '2') {
        const prefix = u.searchParams.get('prefix') || '';
        const token = u.searchParams.get('continuation-token') || '';
        const keys = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
        const contents = keys.map((k) => `<Contents><Key>${xmlEsc(k)}</Key><Size>${objects.get(k).length}</Size></Contents>`).join('');
        const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>bk</Name><Prefix>${xmlEsc(prefix)}</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`;
        if (hooks.list && hooks.list(req, res, { prefix, token, xml, keys })) return;
        res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
        return res.end(xml);
      }
      if (req.method === 'GET') {
        if (hooks.get && hooks.get(req, res, key)) return;
        const o = objects.get(key);
        if (!o) return err(404, 'NoSuchKey');
        res.writeHead(200, { 'content-length': o.length });
        return res.end(o);
      }
      err(405, 'MethodNotAllowed');
    });
  });
  servers.push(srv);
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, objects, hooks, url: `http://127.0.0.1:${srv.address().port}` };
}

const keyEnv = { AWS_ACCESS_KEY_ID: 'K', AWS_SECRET_ACCESS_KEY: 'S', AWS_REGION: 'us-east-1' };

function primary(name, s3, prefix, args = []) {
  const n = node(name, { env: keyEnv, args: ['--backup', `s3://bk/${prefix}`, '--backup-endpoint', s3.url, '--backup-batch-ms', '50', ...args] });
  nodes.push(n);
  return n;
}

// not spawnSync: the bucket is served by this very process's event loop
function restore(s3, args, timeoutMs = 30000) {
  return new Promise((resolve) => {
    const child = spawn(edgeflagBin, ['restore', ...args], { env: { ...process.env, ...keyEnv, AWS_ENDPOINT_URL: s3.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

async function write(n, key) {
  const r = await call(n.url, 'POST', '/api/v1/namespaces/default/flags', { key, name: key, type: 'BOOLEAN_FLAG_TYPE', enabled: true });
  assert.equal(r.status, 200, r.text);
  return Number(r.headers.get('x-edgeflag-version'));
}

async function ready(n) {
  return (await call(n.url, 'GET', '/ready')).json;
}

// Two histories under one prefix: the one a primary shipped first (A), then the one of a primary
// started on a store restored from it (B, written to last, so the one a restore reads). B's id is
// random; the listing is in name order, so a cut drops B only when B sorts after A: try prefixes
// until it does (one chance in two each time).
async function twoHistories(s3) {
  for (let attempt = 0; attempt < 12; attempt++) {
    const prefix = `cut${attempt}`;
    const a = primary(`cut-a${attempt}`, s3, prefix);
    await a.start();
    let last = 0;
    for (let i = 0; i < 3; i++) last = await write(a, `a${i}`);
    await waitFor(`seq ${last} shipped`, async () => (await ready(a)).backup.shippedSeq >= last, 10000);
    const histA = (await ready(a)).backup.history;
    await a.stop();
    const dir = tmpdir('ef-hostile-b-');
    const r = await restore(s3, [`s3://bk/${prefix}`, '--db', path.join(dir, 'edgeflag.db')]);
    assert.equal(r.status, 0, r.stderr);
    const b = node(`cut-b${attempt}`, { dir, env: keyEnv, args: ['--backup', `s3://bk/${prefix}`, '--backup-endpoint', s3.url, '--backup-batch-ms', '50'] });
    nodes.push(b);
    await b.start();
    for (let i = 0; i < 3; i++) last = await write(b, `b${i}`);
    await waitFor(`seq ${last} shipped`, async () => (await ready(b)).backup.shippedSeq >= last, 10000);
    const histB = (await ready(b)).backup.history;
    await b.stop();
    if (histB > histA) return { prefix, histA, histB, last };
  }
  throw new Error('no history sorted after its predecessor in 12 tries');
}

test('a listing cut short (connection closed mid-document, no length) is an error, not a restore of an older history', { timeout: 120000 }, async () => {
  const s3 = await hostileS3();
  const { prefix, histA, histB, last } = await twoHistories(s3);
  const whole = path.join(tmpdir('ef-hostile-'), 'whole.db');
  let r = await restore(s3, [`s3://bk/${prefix}`, '--db', whole]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).fromHistory, histB);
  assert.equal(JSON.parse(r.stdout).seq, last);

  // The same bucket, but its listing is cut before B's first <Contents> and ended by closing the
  // connection: an answer without Content-Length or chunking ends where the connection does, so
  // the client sees no transfer error, only a document without its end.
  s3.hooks.list = (req, res, { xml }) => {
    const cut = xml.indexOf(`<Contents><Key>${prefix}/${histB}/`);
    assert.ok(cut > 0);
    req.socket.end(`HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n${xml.slice(0, cut)}`);
    return true;
  };
  const target = path.join(tmpdir('ef-hostile-'), 'r.db');
  r = await restore(s3, [`s3://bk/${prefix}`, '--db', target]);
  assert.notEqual(r.status, 0, `restored history ${histA} instead of ${histB} from a cut listing: ${r.stdout}`);
  assert.match(r.stderr, /cut short/);
});

// SIGTERM to node n; resolves with the ms it took to exit, or kills it and fails past limitMs.
async function stopWithin(n, limitMs) {
  const t0 = Date.now();
  n.child.kill('SIGTERM');
  let timer;
  const done = await Promise.race([n.exited.then(() => true), new Promise((r) => (timer = setTimeout(() => r(false), limitMs)))]);
  clearTimeout(timer);
  if (!done) {
    await n.kill9();
    assert.fail(`${n.name} did not exit within ${limitMs} ms of SIGTERM (the backup thread held shutdown)`);
  }
  return Date.now() - t0;
}

test('a listing that never ends, or a request never answered, does not hold up shutdown past its grace', { timeout: 120000 }, async () => {
  // every page says "truncated" and hands out a fresh token, a little slowly
  let pages = 0;
  const endless = await hostileS3({
    list(req, res, { token }) {
      pages++;
      const next = `t${Number(token.slice(1) || 0) + 1}`;
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(`<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>${next}</NextContinuationToken></ListBucketResult>`);
      }, 20);
      return true;
    },
  });
  const p = primary('endless', endless, 'endless');
  await p.start();
  await write(p, 'x');
  await waitFor('the shipper to be paging', () => pages > 10, 10000);
  // serve gives the shipper 3 s to ship what is committed (cmd_serve.c), then it must stop
  const ms = await stopWithin(p, 10000);
  assert.ok(ms < 8000, `took ${ms} ms`);

  // an upload the bucket never answers (the request stays open; the client's timeout is 30 s)
  let puts = 0;
  const silent = await hostileS3({ put: () => (puts++, true) });
  const q = primary('silent', silent, 'silent');
  await q.start();
  await write(q, 'x');
  await waitFor('an upload in flight', () => puts > 0, 10000);
  const ms2 = await stopWithin(q, 25000);
  assert.ok(ms2 < 8000, `took ${ms2} ms`);
});

test('a bucket that refuses periodic snapshots still gets every write, in log batches', { timeout: 60000 }, async () => {
  // the first snapshot (the one a new history needs) is taken; every later one is refused, as a
  // snapshot grown past what the bucket or the link takes within a request's timeout would be
  let dbPuts = 0;
  const s3 = await hostileS3({
    put(req, res, key) {
      if (!key.endsWith('.db') || dbPuts++ === 0) return false;
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<Error><Code>InternalError</Code><Message>snapshots are refused here</Message></Error>');
      return true;
    },
  });
  const p = primary('nosnap', s3, 'nosnap', ['--backup-snapshot-every', '3']);
  await p.start();
  let last = 0;
  for (let i = 0; i < 10; i++) last = await write(p, `n${i}`);
  await waitFor(`every write (seq ${last}) shipped while snapshots fail`, async () => (await ready(p)).backup.shippedSeq >= last, 15000);
  assert.ok(dbPuts > 1, 'a periodic snapshot was attempted');
  // the failing snapshots are still reported
  await waitFor('the refused snapshot reported', async () => /snapshots are refused here/.test(p.stderr), 10000);
  await waitFor('/ready says failing', async () => (await ready(p)).backup.state === 'failing', 10000);
  await p.stop();
  const target = path.join(tmpdir('ef-hostile-'), 'r.db');
  const r = await restore(s3, ['s3://bk/nosnap', '--db', target]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).seq, last);
});

test('a listing whose continuation tokens loop (A, B, A, …) is refused at once, not read 10 million names deep', { timeout: 60000 }, async () => {
  // two pages of 2000 well-formed batch names each, handing the listing back and forth: every
  // page is a valid answer, only the sequence never ends and repeats itself
  const hist = 'ab'.repeat(16);
  const pad = (n) => String(n).padStart(20, '0');
  const page = (from) => Array.from({ length: 2000 }, (_, i) => `loop/${hist}/log/${pad(from + i)}-${pad(from + i)}-${pad(1)}.batch`);
  let requests = 0;
  const s3 = await hostileS3({
    list(req, res, { token }) {
      requests++;
      const second = token === 'B';
      const keys = page(second ? 2001 : 1);
      const xml = `<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>${second ? 'A' : 'B'}</NextContinuationToken>${keys.map((k) => `<Contents><Key>${k}</Key><Size>10</Size></Contents>`).join('')}</ListBucketResult>`;
      res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
      return true;
    },
  });
  const t0 = Date.now();
  const r = await restore(s3, ['s3://bk/loop', '--db', path.join(tmpdir('ef-hostile-'), 'r.db')], 15000);
  const ms = Date.now() - t0;
  assert.equal(r.signal, null, `still reading the listing after ${ms} ms and ${requests} pages (killed)`);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /not in name order/);
  assert.ok(requests <= 3, `${requests} pages read`);
});

test('a newest batch whose body is another batch (valid, but not the range its name says) is shipped again', { timeout: 60000 }, async () => {
  const s3 = await hostileS3();
  const p = primary('swapped', s3, 'swapped');
  await p.start();
  let last = 0;
  for (let i = 0; i < 4; i++) {
    last = await write(p, `s${i}`);
    await waitFor(`seq ${last} shipped`, async () => (await ready(p)).backup.shippedSeq >= last, 10000);
  }
  await p.stop();
  // the bucket hands out the batch before it under the newest batch's name: each checks out on
  // its own (header, SHA-256, framing); only the name says which range it should hold
  const batches = [...s3.objects.keys()].filter((k) => k.startsWith('swapped/') && k.endsWith('.batch')).sort();
  assert.ok(batches.length >= 2, batches.join(' '));
  const newest = batches.at(-1);
  const good = s3.objects.get(newest);
  s3.objects.set(newest, s3.objects.get(batches.at(-2)));
  const target = path.join(tmpdir('ef-hostile-'), 'r.db');
  let r = await restore(s3, ['s3://bk/swapped', '--db', target]);
  assert.notEqual(r.status, 0, r.stdout);
  assert.match(r.stderr, /its header does not match its name/);
  // the server that shipped it reads its newest batch back when it starts: this one is not the
  // batch it shipped, so it ships that range again
  await p.start();
  await waitFor('the newest batch shipped again', async () => s3.objects.get(newest).equals(good), 10000);
  await p.stop();
  r = await restore(s3, ['s3://bk/swapped', '--db', target]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).seq, last);
});

// A wall clock that steps back (NTP, a resumed VM, `date -s`) must not stop the shipper: its waits
// between batches are on the monotonic clock. The step is simulated by an LD_PRELOAD library built
// with edgeflag (tests/unit/realtime_shift.c), under which the process reads the wall clock an hour
// ahead of the kernel's: a wait for a wall-clock deadline then lasts an hour longer. Before the
// fix the first batch went out and the next one an hour later.
test('a wall clock that stepped back does not hold up the batches', { timeout: 60000 }, async () => {
  const shim = path.join(path.dirname(edgeflagBin), 'tests/unit/libef_realtime_shift.so');
  assert.ok(fs.existsSync(shim), `${shim} is missing: build the tree edgeflag comes from (ninja -C <build>), which builds it`);
  const s3 = await hostileS3();
  const p = node('clockstep', {
    env: { ...keyEnv, LD_PRELOAD: shim, EF_REALTIME_SHIFT_S: '3600' },
    args: ['--backup', 's3://bk/clockstep', '--backup-endpoint', s3.url, '--backup-batch-ms', '50'],
  });
  nodes.push(p);
  await p.start();
  let last = await write(p, 'c0');
  await waitFor(`seq ${last} shipped`, async () => (await ready(p)).backup.shippedSeq >= last, 10000);
  for (let i = 1; i <= 3; i++) {
    last = await write(p, `c${i}`);
    await waitFor(`seq ${last} shipped (the next batches, after a wait)`, async () => (await ready(p)).backup.shippedSeq >= last, 10000);
  }
  await p.stop();
});

// S3 answers 503 SlowDown (and 500 InternalError) now and then and asks clients to try again; a
// restore makes one GET per object, hundreds for a long log. Each object's first GET and the first
// listing page are refused here (one of them by a dropped connection): the restore goes through.
// A bucket that always refuses fails it, with the last answer.
test('a restore tries a refused GET again; a bucket that always refuses fails it', { timeout: 60000 }, async () => {
  const s3 = await hostileS3();
  const p = primary('flaky', s3, 'flaky', ['--backup-snapshot-every', '4']);
  await p.start();
  let last = 0;
  for (let i = 0; i < 10; i++) last = await write(p, `f${i}`);
  await waitFor(`seq ${last} shipped`, async () => (await ready(p)).backup.shippedSeq >= last, 10000);
  await p.stop();
  const seen = new Set();
  let refused = 0;
  s3.hooks.list = (req, res) => {
    if (seen.has('(list)')) return false;
    seen.add('(list)');
    refused++;
    res.writeHead(503, { 'content-type': 'application/xml' });
    res.end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
    return true;
  };
  s3.hooks.get = (req, res, key) => {
    if (seen.has(key)) return false;
    seen.add(key);
    refused++;
    if (refused % 3 === 0) { // a connection dropped without an answer
      res.socket.destroy();
      return true;
    }
    res.writeHead(503, { 'content-type': 'application/xml' });
    res.end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
    return true;
  };
  const target = path.join(tmpdir('ef-hostile-'), 'r.db');
  const r = await restore(s3, ['s3://bk/flaky', '--db', target]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).seq, last);
  assert.ok(refused >= 3, `the listing and at least two objects were refused once (${refused})`);

  s3.hooks.list = (req, res) => {
    res.writeHead(503, { 'content-type': 'application/xml' });
    res.end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
    return true;
  };
  const t0 = Date.now();
  const f = await restore(s3, ['s3://bk/flaky', '--db', path.join(tmpdir('ef-hostile-'), 'f.db')]);
  assert.equal(f.status, 1, f.stderr);
  assert.match(f.stderr, /HTTP 503 SlowDown/);
  assert.ok(Date.now() - t0 < 15000, 'four more tries, 250 ms apart doubling: a few seconds');
});

// A store of a few hundred MB over an ordinary uplink takes minutes to snapshot; the request
// timeout used to bound the whole transfer, so such a snapshot failed at every try and the bucket
// never held one past the first. Scaled down: --backup-timeout 1 and a 3 MB snapshot the bucket
// reads at 1 MiB/s (about 3 s, data moving all along).
test('a snapshot that takes longer than --backup-timeout to upload, moving all along, gets there', { timeout: 60000 }, async () => {
  const s3 = await hostileS3({ rate: (req) => (req.method === 'PUT' && req.url.endsWith('.db') ? 1 << 20 : 0) });
  const p = primary('slowup', s3, 'slowup', ['--backup-timeout', '1', '--backup-snapshot-every', '20']);
  await p.start();
  const description = 'x'.repeat(100 * 1024);
  let last = 0;
  for (let i = 0; i < 30; i++) {
    const r = await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: `big${i}`, name: `big${i}`, type: 'BOOLEAN_FLAG_TYPE', description });
    assert.equal(r.status, 200, r.text);
    last = Number(r.headers.get('x-edgeflag-version'));
  }
  // a snapshot holding the 30 descriptions (over 3 MB: more than 1 s at 1 MiB/s) in the bucket.
  // When the first snapshot was taken depends on the machine (at start, or a few writes in), so
  // small writes go on until one is due: one every 20 entries.
  const big = () => [...s3.objects.keys()].some((k) => k.endsWith('.db') && s3.objects.get(k).length > 3000000);
  let ticks = 0;
  try {
    await waitFor('a snapshot of over 3 MB in the bucket', async () => {
      if (big()) return true;
      last = await write(p, `tick${ticks++}`);
      return false;
    }, 30000);
  } catch (e) {
    const sizes = [...s3.objects.keys()].filter((k) => k.endsWith('.db')).map((k) => `${k} ${s3.objects.get(k).length}`);
    throw new Error(`${e.message}\nsnapshots: ${sizes.join(', ')}\nnode: ${p.stderr.slice(-3000)}`);
  }
  await waitFor(`seq ${last} shipped`, async () => (await ready(p)).backup.shippedSeq >= last, 10000);
  await p.stop();
});
