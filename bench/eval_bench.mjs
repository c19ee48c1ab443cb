#!/usr/bin/env node
// Evaluation speed: edgeflag's engine next to Flipt's engine on the same requests, in one run.
// Workload = tests/compat/bench.mjs's (gen seed 42, 200 flags, 50 segments, the well-formed
// requests out of 50,000, about 14 context keys each). Flipt's engine (@flipt-io/flipt-client-js,
// Rust in WASM) is timed here in Node, public API and raw engine calls, one pass of each per round;
// edgeflag by build/bench_eval (median of 15 passes, per-evaluation median and p99) right after it
// in the same round; ratios are the medians of the rounds' ratios. Then callgrind (instructions per
// evaluation, stable on a noisy machine).
// usage: node bench/eval_bench.mjs [--build build] [--threads 1,2] [--rounds 7] [--no-callgrind]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const compat = path.join(root, 'tests/compat');
const { evalWorkload } = await import(path.join(here, 'workload.mjs'));
const { createFliptEngine } = await import(path.join(compat, 'engine.mjs'));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const build = path.resolve(root, opt('--build', 'build'));
const threads = opt('--threads', '1').split(',').map(Number);
const callgrind = !args.includes('--no-callgrind');

const w = await evalWorkload('ef-bench-'); // the workload of bench/workload.mjs
const c = { snapshot: w.snapshot };
const { reqs, snapFile, reqFile } = w;
const tmp = w.dir;
const ctxKeys = reqs.reduce((s, r) => s + Object.keys(r.context).length, 0) / reqs.length;

// ---- Flipt's engine and edgeflag's, interleaved ----
// A round times one pass of Flipt's engine (public API, then raw calls) and then one run of
// bench_eval (its median of 15 passes), so both see the same spell of this shared host; the ratio
// is the median of the rounds' ratios. Measured one after the other, a slow minute on either
// side moved the ratio by 15 % (78x and 89x on the same code).
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
function timeOnce(n, fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}
const eng = await createFliptEngine(c.snapshot, { namespace: 'default' });
const cl = eng.client;
const raw = cl.engine;
const pub = reqs.map((r) => ({ b: r.type === 'boolean', q: { flagKey: r.flagKey, entityId: r.entityId, context: r.context } }));
const snake = reqs.map((r) => ({ b: r.type === 'boolean', q: { flag_key: r.flagKey, entity_id: r.entityId, context: r.context } }));
const passPublic = () => { for (const r of pub) r.b ? cl.evaluateBoolean(r.q) : cl.evaluateVariant(r.q); };
const passRaw = () => { for (const r of snake) r.b ? raw.evaluate_boolean(r.q) : raw.evaluate_variant(r.q); };
passPublic(); // warm-up: the WASM module compiled and its caches filled
passRaw();
const bench = path.join(build, 'bench_eval');
function runOurs(t) {
  const run = spawnSync(bench, ['--snapshot', snapFile, '--requests', reqFile, '--threads', String(t)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error('bench_eval failed: ' + run.stderr);
  return JSON.parse(run.stdout);
}
const rounds = Number(opt('--rounds', '7'));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: a whole number of at least 1, not ${opt('--rounds')}`);
const pubRates = [], rawRates = [], ourRuns = [], ratiosPub = [], ratiosRaw = [];
for (let r = 0; r < rounds; r++) {
  pubRates.push(timeOnce(reqs.length, passPublic));
  rawRates.push(timeOnce(reqs.length, passRaw));
  const o = runOurs(threads[0]);
  ourRuns.push(o);
  ratiosPub.push(o.evals_per_sec / pubRates[r]);
  ratiosRaw.push(o.evals_per_sec / rawRates[r]);
}
eng.close();
const fliptPublic = median(pubRates), fliptRaw = median(rawRates);

// ---- edgeflag ----
// the run whose throughput is the rounds' median gives every figure of its own line
const ours = {};
ours[threads[0]] = [...ourRuns].sort((a, b) => a.evals_per_sec - b.evals_per_sec)[Math.floor(rounds / 2)];
for (const t of threads.slice(1)) ours[t] = runOurs(t);
let irPerEval = null;
if (callgrind) {
  const out = path.join(tmp, 'callgrind.out');
  const run = spawnSync('valgrind', ['--tool=callgrind', '--toggle-collect=bench_pass', `--callgrind-out-file=${out}`, bench, '--snapshot', snapFile, '--requests', reqFile, '--once'], { encoding: 'utf8' });
  if (run.status === 0) {
    const text = fs.readFileSync(out, 'utf8');
    const m = text.match(/^(?:summary|totals):\s+(\d+)/m);
    if (m) irPerEval = Number(m[1]) / reqs.length;
  }
}
if (!process.env.EF_KEEP) fs.rmSync(tmp, { recursive: true, force: true });

const one = ours[threads[0]];
const fmt = (x) => Math.round(x).toLocaleString('en-US');
console.log(`evaluation benchmark: ${reqs.length} requests, 200 flags, 50 segments, ${ctxKeys.toFixed(1)} context keys per request, ${os.cpus().length} cores`);
console.log(`  Flipt engine (flipt-client-js 0.5.1, public API)   ${fmt(fliptPublic).padStart(12)} evals/s   ${fmt(1e9 / fliptPublic).padStart(7)} ns/eval`);
console.log(`  Flipt engine (raw WASM calls)                      ${fmt(fliptRaw).padStart(12)} evals/s   ${fmt(1e9 / fliptRaw).padStart(7)} ns/eval`);
for (const t of threads) {
  const o = ours[t];
  console.log(`  edgeflag engine, ${t} thread${t > 1 ? 's' : ' '}                          ${fmt(o.evals_per_sec).padStart(12)} evals/s   ${o.ns_per_eval_mean.toFixed(0).padStart(7)} ns/eval (median ${o.ns_per_eval_median} ns, p99 ${o.ns_per_eval_p99} ns per evaluation)`);
}
console.log(`  edgeflag engine, 1 thread, cold (every request distinct): median ${one.ns_per_eval_median} ns, mean ${one.ns_per_eval_mean.toFixed(0)} ns (timed one by one: ${one.cold_timed_mean.toFixed(0)} ns);  warm (a request evaluated again right away): median ${one.warm_median} ns, mean ${one.warm_mean.toFixed(0)} ns`);
console.log(`  edgeflag engine, 1 thread, served order (each request decoded from its body right before it is evaluated, as the HTTP path does): decoding ${one.served_decode_ns.toFixed(0)} ns, evaluation ${one.served_eval_ns.toFixed(0)} ns`);
const span = (a) => `${Math.min(...a).toFixed(1)}-${Math.max(...a).toFixed(1)}x`;
console.log(`  ratio edgeflag / Flipt public API: ${median(ratiosPub).toFixed(1)}x;  / raw WASM: ${median(ratiosRaw).toFixed(1)}x (medians of ${rounds} interleaved rounds; raw WASM rounds ${span(ratiosRaw)})`);
if (irPerEval !== null) console.log(`  callgrind: ${fmt(irPerEval)} instructions per evaluation (edgeflag, registry read section included)`);
console.log(`  compiled snapshot: ${(one.snapshot_bytes / 1024).toFixed(0)} KiB`);
