// soak.mjs - a mixed load for SOAK_SECONDS against a primary and a replica that follows it through
// the TCP proxy of the cluster tests (issue 13, `make soak`).
//
// Load: evaluation loops at saturation on both nodes; writes on the primary and through the
// replica (read-your-writes checked at once with X-Edgeflag-Min-Version); namespace-stream
// subscribers, snapshot clients and real libedgeflag clients (client_eval) connecting and
// disconnecting; the replica SIGKILLed and restarted every SOAK_RESTART_SECONDS; the upstream link blackholed or
// dropped for a few seconds now and then. Every SOAK_SAMPLE_SECONDS it prints each node's RSS and
// open descriptors, the errors and the evaluation p99; at the end the slopes and the invariants:
// every acknowledged write visible on both nodes after convergence, versions monotonic per client
// session (a lower one only on an answer marked recovering, after the replica's kill), read-your-
// writes through the replica. Exit 1 on any violation. It must never hide an
// error: errors expected during a partition or restart are counted apart, never dropped.
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { node, call, sleep, waitFor, version, rng, stopAll } from '../cluster/cluster.mjs';
import { startProxy } from '../cluster/proxy.mjs';

const seconds = Number(process.env.SOAK_SECONDS || 3600);
const sampleEvery = Number(process.env.SOAK_SAMPLE_SECONDS || Math.max(5, Math.min(60, seconds / 20)));
const restartEvery = Number(process.env.SOAK_RESTART_SECONDS || Math.max(20, Math.min(180, seconds / 5)));
const R = rng(Number(process.env.SOAK_SEED || 7));
const violations = [];
const violate = (m) => violations.length < 50 && violations.push(m) && console.error(`VIOLATION: ${m}`);

const p = node('soak-primary');
await p.start();
const proxy = await startProxy(p.port);
const r = node('soak-replica', { upstream: proxy.url });
await r.start();
await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key: 'hot', name: 'hot', type: 'BOOLEAN_FLAG_TYPE', enabled: true });

let running = true;
let disturbed = false; // a restart or partition is under way: failures are expected, counted apart
const stats = { eval: [], evalMax: 0, evalErr: 0, evalErrDisturbed: 0, writes: 0, writeErr: 0, writeErrDisturbed: 0, ryw: 0, rywLate: 0, rywWait: 0, subs: 0, subErr: 0, subErrDisturbed: 0, snaps: 0, libClients: 0, libErr: 0, libErrDisturbed: 0, restarts: 0, partitions: 0, lowerSaid: 0 };
const acked = [];
// What the first errors outside a restart or partition were, printed at the end: a count alone
// does not say whether the server or the client's own connection failed.
const errorNotes = [];
const noteStart = Date.now();
const noteError = (what, e) => errorNotes.length < 10 && errorNotes.push(`${((Date.now() - noteStart) / 1000).toFixed(1)} s ${what}: ${e?.cause?.code ?? ''} ${e?.message ?? e}`);
// An error of kind (stats[kind], stats[kind + 'Disturbed']): counted apart during a restart or
// partition, else counted and noted.
function failed(kind, what, e) {
  if (disturbed) stats[kind + 'Disturbed']++;
  else {
    stats[kind]++;
    noteError(what, e);
  }
}

async function timed(fn) {
  const t = performance.now();
  const res = await fn();
  return [res, performance.now() - t];
}

// The real libedgeflag: client_eval (tests/client) bootstraps a client from a node, waits for its
// first state, evaluates and destroys the client; one process at a time, over and over.
const clientEval = process.env.EDGEFLAG_CLIENT_EVAL;
if (!clientEval || !fs.existsSync(clientEval)) throw new Error(`EDGEFLAG_CLIENT_EVAL must name the client_eval program (got ${clientEval})`);
function libClientLoop() {
  return (async () => {
    while (running) {
      const n = R.next() < 0.5 ? p : r;
      const ok = await new Promise((resolve) => {
        const c = spawn(clientEval, ['--url', n.url, '--namespace', 'default'], { stdio: ['pipe', 'pipe', 'ignore'] });
        let out = '';
        const kill = setTimeout(() => c.kill('SIGKILL'), 15000);
        c.stdout.on('data', (d) => { out += d; });
        c.on('close', (code) => {
          clearTimeout(kill);
          const lines = out.trim().split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return {}; } });
          resolve(code === 0 && lines.length === 3 && lines.every((a) => a.enabled === true));
        });
        c.stdin.end(Array.from({ length: 3 }, (_, i) => JSON.stringify({ type: 'boolean', flagKey: 'hot', entityId: `lib${i}`, context: {} })).join('\n') + '\n');
      });
      if (ok) stats.libClients++;
      else if (disturbed) stats.libErrDisturbed++;
      else stats.libErr++;
      await sleep(200 + R.int(800));
    }
  })();
}

// evaluation at saturation; each loop is a client session whose versions must never go back
function evalLoop(n, id) {
  return (async () => {
    let last = 0;
    while (running) {
      try {
        const [res, ms] = await timed(() => call(n.url, 'POST', '/evaluate/v1/boolean', { flagKey: 'hot', entityId: `e${id}`, context: {} }));
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        stats.eval.push(ms);
        if (ms > stats.evalMax) stats.evalMax = ms;
        const v = Number(res.headers.get('x-edgeflag-version'));
        // a replica killed with entries not yet written restarts below what it served: allowed
        // only on an answer that says so (docs/replication.md, "recovering"), as in scripts/crash.sh
        if (v && v < last) {
          if (res.headers.get('x-edgeflag-recovering') === 'true') stats.lowerSaid++;
          else violate(`session ${n.name}/${id}: version ${v} after ${last}, not marked recovering`);
        }
        if (v) last = v;
      } catch (e) {
        failed('evalErr', `evaluation on ${n.name}`, e);
        await sleep(20);
      }
    }
  })();
}

// Writes on a bounded set of flags (SOAK_FLAGS per writer: created, then renamed over and over), so
// the data set stays the same size (all created before the load starts) and RSS measures the server, not the data. Per flag: the name of
// the last acknowledged write, and the names of later attempts that failed (a 503 may or may not
// have been applied): after convergence a node must show one of those, on both nodes.
const flagsPerWriter = Number(process.env.SOAK_FLAGS || 100);
const lastAcked = new Map(); // key -> name
const laterTries = new Map(); // key -> Set of names tried after the last ack
function writeLoop(n, viaReplica) {
  return (async () => {
    for (let i = 0; running; i++) {
      const key = `${n.name}-${i % flagsPerWriter}`;
      const name = `${key}@${i}`;
      try {
        const res = await call(n.url, 'PUT', `/api/v1/namespaces/default/flags/${key}`, { key, name, description: '', enabled: i % 2 === 0 });
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        lastAcked.set(key, name);
        laterTries.set(key, new Set());
        acked.push(key);
        stats.writes++;
        // A replica that could not apply the write within write-wait still answers the primary's
        // 200, with X-Edgeflag-Write-Applied: false and the write's version in
        // X-Edgeflag-Write-Version (X-Edgeflag-Version is then its own, older one): read at that.
        const late = res.headers.get('x-edgeflag-write-applied') === 'false';
        const v = late ? res.headers.get('x-edgeflag-write-version') : res.headers.get('x-edgeflag-version');
        if (late) stats.rywLate++;
        if (viaReplica && v) {
          const g = await call(n.url, 'GET', `/api/v1/namespaces/default/flags/${key}`, undefined, { 'x-edgeflag-min-version': v });
          if (g.status === 200 && g.json.name === name) stats.ryw++;
          else if (g.status === 503 && g.json?.code === 14) stats.rywWait++; // honest: not there yet, and said so
          else if (!disturbed) violate(`read-your-writes: ${key} at min-version ${v}: ${g.status} ${g.text.slice(0, 120)}`);
        }
      } catch (e) {
        laterTries.get(key).add(name);
        failed('writeErr', `write on ${n.name}`, e);
        await sleep(50);
      }
      await sleep(20);
    }
  })();
}

// a libedgeflag-like client: snapshot, then the namespace stream for a while, then away
function subscriberLoop() {
  return (async () => {
    while (running) {
      const n = R.next() < 0.5 ? p : r;
      const ac = new AbortController();
      try {
        const s = await fetch(`${n.url}/internal/v1/evaluation/snapshot/namespace/default`);
        await s.arrayBuffer();
        if (s.status === 200) stats.snaps++;
        const res = await fetch(`${n.url}/edgeflag/v1/namespaces/default/stream`, { signal: ac.signal });
        if (res.status !== 200) throw new Error(`stream ${res.status}`);
        stats.subs++;
        const reader = res.body.getReader();
        const until = Date.now() + 500 + R.int(3000);
        while (running && Date.now() < until) {
          const t = setTimeout(() => ac.abort(), until - Date.now());
          const { done } = await reader.read().finally(() => clearTimeout(t));
          if (done) break;
        }
        ac.abort();
      } catch (e) {
        if (e.name !== 'AbortError') {
          failed('subErr', `stream subscriber on ${n.name}`, e);
        }
        await sleep(50);
      }
    }
  })();
}

function proc(n) {
  try {
    const st = fs.readFileSync(`/proc/${n.child.pid}/status`, 'utf8');
    const rss = Number(st.match(/VmRSS:\s+(\d+)/)[1]);
    return { rss, fds: fs.readdirSync(`/proc/${n.child.pid}/fd`).length };
  } catch {
    return { rss: NaN, fds: NaN };
  }
}
const p99 = (a) => (a.length ? a.slice().sort((x, y) => x - y)[Math.floor(a.length * 0.99)] : NaN);
function slope(pts) { // least squares, per minute
  const n = pts.length;
  if (n < 2) return NaN;
  const mx = pts.reduce((s, q) => s + q[0], 0) / n;
  const my = pts.reduce((s, q) => s + q[1], 0) / n;
  let num = 0, den = 0;
  for (const [x, y] of pts) { num += (x - mx) * (y - my); den += (x - mx) ** 2; }
  return den ? (num / den) * 60 : NaN;
}

for (const w of [p, r])
  for (let i = 0; i < flagsPerWriter; i++) {
    const key = `${w.name}-${i}`;
    const res = await call(p.url, 'POST', '/api/v1/namespaces/default/flags', { key, name: key, type: 'BOOLEAN_FLAG_TYPE' });
    if (res.status !== 200) throw new Error(`creating ${key}: ${res.status} ${res.text}`);
    lastAcked.set(key, key);
    laterTries.set(key, new Set());
  }
await waitFor('the replica to follow the initial flags', async () => (await version(r)) >= (await version(p)), 20000);

const loops = [];
for (let i = 0; i < 4; i++) loops.push(evalLoop(p, i), evalLoop(r, i));
loops.push(writeLoop(p, false), writeLoop(r, true));
for (let i = 0; i < 4; i++) loops.push(subscriberLoop());
loops.push(libClientLoop());

const t0 = Date.now();
const samples = { p: [], r: [] };
let rLife = Date.now();
let nextRestart = t0 + restartEvery * 1000;
let nextPartition = t0 + (restartEvery / 2) * 1000;
let nextSample = t0 + sampleEvery * 1000;
const allP99 = [];
console.log(`# soak: ${seconds} s, sample every ${sampleEvery} s, replica restart every ${restartEvery} s`);
console.log('#   t(s)  P rss(KB) fds | R rss(KB) fds | evals  p99(ms) errs | writes errs | subs lib');
while (Date.now() - t0 < seconds * 1000) {
  await sleep(250);
  const now = Date.now();
  if (now >= nextRestart) {
    disturbed = true;
    await r.kill9();
    await r.start();
    stats.restarts++;
    rLife = Date.now();
    samples.r = [];
    disturbed = false;
    nextRestart = now + restartEvery * 1000;
  }
  if (now >= nextPartition) {
    disturbed = true;
    if (R.next() < 0.5) proxy.blackhole();
    else proxy.drop();
    await sleep(2000 + R.int(3000));
    proxy.heal();
    proxy.pass();
    await waitFor('the replica to catch up after a partition', async () => (await version(r)) >= (await version(p)) - 5, 20000).catch(() => {});
    disturbed = false;
    stats.partitions++;
    nextPartition = Date.now() + restartEvery * 1000;
  }
  if (now >= nextSample) {
    const t = (now - t0) / 1000;
    const a = proc(p), b = proc(r);
    samples.p.push([t, a.rss, a.fds]);
    samples.r.push([t, b.rss, b.fds]);
    const q = p99(stats.eval);
    allP99.push(q);
    console.log(`  ${t.toFixed(0).padStart(6)} ${String(a.rss).padStart(10)} ${String(a.fds).padStart(4)} | ${String(b.rss).padStart(9)} ${String(b.fds).padStart(4)} | ${String(stats.eval.length).padStart(6)} ${q.toFixed(2).padStart(7)} ${stats.evalErr} | ${stats.writes} ${stats.writeErr} | ${stats.subs} ${stats.libClients}`);
    stats.eval = [];
    nextSample = now + sampleEvery * 1000;
  }
}
running = false;
await Promise.all(loops);
proxy.heal();
proxy.pass();
const pv = await version(p);
await waitFor('the replica to converge', async () => (await version(r)) >= pv, 30000).catch((e) => violate(e.message));
let missing = { p: 0, r: 0 };
for (const [key, name] of lastAcked)
  for (const [n, k] of [[p, 'p'], [r, 'r']]) {
    const g = await call(n.url, 'GET', `/api/v1/namespaces/default/flags/${encodeURIComponent(key)}`);
    if (g.status !== 200 || (g.json.name !== name && !laterTries.get(key).has(g.json.name))) missing[k]++;
  }
if (missing.p || missing.r) violate(`acknowledged writes not visible after convergence: primary ${missing.p}, replica ${missing.r}`);
const sl = (s, i) => slope(s.map((q) => [q[0], q[i]]).filter((q) => !Number.isNaN(q[1])));
const half = (s) => s.filter((q) => q[0] >= seconds / 2);
console.log(`# soak: second half (warm caches): primary RSS slope ${sl(half(samples.p), 1).toFixed(1)} KB/min, fds slope ${sl(half(samples.p), 2).toFixed(2)}/min; primary RSS min/max ${Math.min(...samples.p.map((q) => q[1]))}/${Math.max(...samples.p.map((q) => q[1]))} KB, fds min/max ${Math.min(...samples.p.map((q) => q[2]))}/${Math.max(...samples.p.map((q) => q[2]))}`);
console.log(`# soak: primary RSS slope ${sl(samples.p, 1).toFixed(1)} KB/min, fds slope ${sl(samples.p, 2).toFixed(2)}/min; replica (since its last restart ${((Date.now() - rLife) / 1000).toFixed(0)} s ago) RSS slope ${sl(samples.r, 1).toFixed(1)} KB/min, fds slope ${sl(samples.r, 2).toFixed(2)}/min`);
console.log(`# soak: eval p99 max over samples ${Math.max(...allP99.filter((x) => !Number.isNaN(x))).toFixed(2)} ms, slowest evaluation ${stats.evalMax.toFixed(1)} ms; errors: eval ${stats.evalErr} (+${stats.evalErrDisturbed} during restarts/partitions), write ${stats.writeErr} (+${stats.writeErrDisturbed}), subscriber ${stats.subErr} (+${stats.subErrDisturbed}), libedgeflag client ${stats.libErr} (+${stats.libErrDisturbed})`);
for (const m of errorNotes) console.log(`# soak: error outside a restart or partition: ${m}`);
console.log(`# soak: ${acked.length} acknowledged writes on ${lastAcked.size} flags, the last of each visible on both nodes: ${!missing.p && !missing.r}; read-your-writes checked ${stats.ryw} (writes not applied within write-wait, and said so: ${stats.rywLate}; reads then answered 503 not reached: ${stats.rywWait}); ${stats.subs} stream subscriptions, ${stats.snaps} snapshots, ${stats.libClients} libedgeflag clients; ${stats.restarts} replica restarts (answers below a version served before, marked recovering: ${stats.lowerSaid}), ${stats.partitions} partitions; ${violations.length} violations`);
await stopAll([r, p]);
await proxy.close();
process.exit(violations.length ? 1 : 0);
