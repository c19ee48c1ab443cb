// Scale (issue 11): a namespace of 100,000 flags, and 1,000 namespaces of 100, next to 200 and
// 10,000 flags, through what users run: `edgeflag import`, a primary on its SQLite file, one
// replica that starts empty. For each size it prints the import's time, the primary's start
// (load + compile + publish), the replica's bootstrap (from its start until it serves the
// primary's version: the dump's transfer and load), both nodes' answers to the same 2,000
// evaluations (they must be equal: the script exits 1 otherwise), the time from a write's
// acknowledgement to the replica serving it (200 writes, one at a time), and both nodes' RSS.
//
// Then the engine alone (build/bench_eval): the evaluation workload of bench/workload.mjs (200
// flags) with its flags copied to 10,000 and 100,000 (same rules, keys suffixed), every request
// sent to a copy picked at random: the evaluation's cost as the flag count grows, and once more
// on the 100,000-flag snapshot with the requests on the 200 original flags only, which separates
// the lookup's cost from the caches' (a 100,000-flag snapshot is far larger than them).
//
// Prints figures; asserts nothing about time. usage: node bench/scale_bench.mjs [--build build]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { node, stopAll, call, rng, evaluateCorpus, waitVersion, statusMiB } from '../tests/cluster/cluster.mjs';
import { tempDir } from '../tests/compat/tmp.mjs';
import { evalWorkload, namespaceYaml } from './workload.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const build = path.resolve(root, args.includes('--build') ? args[args.indexOf('--build') + 1] : 'build');
const bin = process.env.EDGEFLAG_BIN || path.join(build, 'edgeflag');
process.env.EDGEFLAG_BIN = bin; // tests/cluster/cluster.mjs starts this binary
const tmp = tempDir('ef-scale-');
const ms = (t) => `${t.toFixed(0)} ms`;
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const rssMiB = (n) => statusMiB(n, 'VmRSS');
const peakMiB = (n) => statusMiB(n, 'VmHWM');

async function cluster(label, namespaces, flags) {
  const dir = fs.mkdtempSync(path.join(tmp, 'c-'));
  const file = path.join(dir, 'flags.yml');
  const nsKeys = namespaces === 1 ? ['default'] : Array.from({ length: namespaces }, (_, i) => `ns${i}`);
  fs.writeFileSync(file, nsKeys.map((k) => namespaceYaml(k, flags, 10)).join('---\n'));
  const primary = node('primary', { dir: path.join(dir, 'p'), args: ['--threads', '2'] });
  fs.mkdirSync(primary.dir);
  let t0 = performance.now();
  execFileSync(bin, ['import', '--db', path.join(primary.dir, 'edgeflag.db'), file], { stdio: 'ignore' });
  const importMs = performance.now() - t0;
  const replica = node('replica', { dir: path.join(dir, 'r'), upstream: () => primary.url, args: ['--threads', '2'] });
  fs.mkdirSync(replica.dir);
  const nodes = [primary, replica];
  try {
    t0 = performance.now();
    await primary.start();
    const startMs = performance.now() - t0;
    const v0 = Number((await fetch(primary.url + '/health')).headers.get('x-edgeflag-version'));
    const peakBefore = peakMiB(primary);
    t0 = performance.now();
    await replica.start();
    await waitVersion(replica, v0, 300000);
    const bootMs = performance.now() - t0;
    const peakAfter = peakMiB(primary);
    const replicaPeak = peakMiB(replica);

    // the same 2,000 evaluations on both nodes, answers compared
    const r = rng(7);
    const reqs = [];
    for (let i = 0; i < 2000; i++)
      reqs.push({ namespaceKey: r.pick(nsKeys), flagKey: `f${r.int(flags)}`, entityId: `user-${i}`, context: { plan: `p${r.int(12)}` } });
    t0 = performance.now();
    const fromReplica = await evaluateCorpus(replica, reqs);
    const evalMs = performance.now() - t0;
    const fromPrimary = await evaluateCorpus(primary, reqs);
    const differ = fromReplica.filter((a, i) => JSON.stringify(a) !== JSON.stringify(fromPrimary[i])).length;
    const matched = fromReplica.filter((a) => a.variantResponse?.reason === 'MATCH_EVALUATION_REASON').length;
    if (differ || matched === 0) {
      console.error(`${label}: ${differ} of ${reqs.length} answers differ between primary and replica; ${matched} matched`);
      process.exitCode = 1;
    }

    // writes: one flag at a time enabled or disabled on the primary, then served by the replica
    const lat = [];
    for (let i = 0; i < 200; i++) {
      const ns = r.pick(nsKeys), key = `f${r.int(flags)}`;
      const w = await call(primary.url, 'PUT', `/api/v1/namespaces/${ns}/flags/${key}`, { key, name: key, enabled: i % 2 === 1 });
      if (w.status !== 200) throw new Error(`${label}: write ${ns}/${key}: ${w.status} ${w.text}`);
      const at = performance.now();
      const s = await call(replica.url, 'GET', `/api/v1/namespaces/${ns}/flags/${key}`, undefined,
        { 'x-edgeflag-min-version': w.headers.get('x-edgeflag-version') });
      if (s.status !== 200 || s.json.enabled !== (i % 2 === 1)) throw new Error(`${label}: the replica served ${s.status} ${s.text}`);
      lat.push(performance.now() - at);
    }
    lat.sort((a, b) => a - b);
    console.log(`${label.padEnd(34)} import ${ms(importMs)}, primary start ${ms(startMs)}, replica bootstrap ${ms(bootMs)};` +
      ` 2,000 evaluations in batches of 100 ${ms(evalMs)} (replica), ${differ} answers differ from the primary's;` +
      ` write -> replica serving p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms (node client);` +
      ` RSS primary ${rssMiB(primary).toFixed(0)} MiB, replica ${rssMiB(replica).toFixed(0)} MiB;` +
      ` primary's peak ${peakBefore.toFixed(0)} MiB after its start, ${peakAfter.toFixed(0)} MiB after sending the dump;` +
      ` replica's peak ${replicaPeak.toFixed(0)} MiB after loading it`);
  } finally {
    await stopAll(nodes);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

console.log('scale: import, primary start, replica bootstrap, evaluations, writes (one replica, loopback)');
await cluster('200 flags', 1, 200);
await cluster('10,000 flags', 1, 10000);
await cluster('100,000 flags', 1, 100000);
await cluster('1,000 namespaces x 100 flags', 1000, 100);

// ---- the engine alone, as the flag count grows ----
const w = await evalWorkload('ef-scale-eval-');
function copies(k) {
  if (k === 1) return w.snapshot;
  const flags = [];
  for (let c = 0; c < k; c++)
    for (const f of w.snapshot.flags) {
      if (c === 0) {
        flags.push(f);
        continue;
      }
      // a copy: keys and ids suffixed, everything else (rules, segments, variants) the same
      const g = JSON.parse(JSON.stringify(f).replaceAll(`"${f.key}`, `"${f.key}~${c}`));
      flags.push(g);
    }
  return { ...w.snapshot, flags };
}
function runEval(label, snapshot, reqs) {
  const snapFile = path.join(w.dir, 'scale-snapshot.json'), reqFile = path.join(w.dir, 'scale-requests.jsonl');
  fs.writeFileSync(snapFile, JSON.stringify(snapshot));
  fs.writeFileSync(reqFile, reqs.map((q) => JSON.stringify(q)).join('\n') + '\n');
  const out = execFileSync(path.join(build, 'bench_eval'), ['--snapshot', snapFile, '--requests', reqFile, '--threads', '1', '--rounds', '9'],
    { encoding: 'utf8', maxBuffer: 1 << 24 });
  const j = JSON.parse(out);
  console.log(`${label.padEnd(58)} mean ${j.ns_per_eval_mean.toFixed(0).padStart(4)} ns, median ${String(j.ns_per_eval_median).padStart(4)} ns,` +
    ` p99 ${String(j.ns_per_eval_p99).padStart(5)} ns; compiled snapshot ${(j.snapshot_bytes / 1048576).toFixed(1)} MiB`);
  return j.ns_per_eval_mean;
}
console.log(`\nengine, 1 thread, ${w.reqs.length} requests of bench/workload.mjs, flags copied (cold: every request distinct)`);
const r = rng(11);
const base = runEval('200 flags', copies(1), w.reqs);
const results = [];
for (const k of [50, 500]) {
  const snap = copies(k);
  const reqs = w.reqs.map((q) => {
    const c = r.int(k);
    return c === 0 ? q : { ...q, flagKey: `${q.flagKey}~${c}` };
  });
  results.push([k, runEval(`${(200 * k).toLocaleString('en-US')} flags, requests over all of them`, snap, reqs)]);
  if (k === 500) results.push(['hot', runEval('100,000 flags, requests on 200 of them', snap, w.reqs)]);
}
console.log(`ratio of the mean to 200 flags: ${results.map(([k, v]) => `${k === 'hot' ? '100,000 (200 used)' : (200 * k).toLocaleString('en-US')} ${(v / base).toFixed(2)}x`).join(', ')}`);
fs.rmSync(w.dir, { recursive: true, force: true });
