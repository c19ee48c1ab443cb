#!/usr/bin/env node
// libedgeflag benchmark, one run: ns per evaluation through the library (1 and 2 threads) next to
// the bare engine, HTTP evaluation against a local node, and Flipt's engine, all on the eval
// workload (bench/eval_bench.mjs's: gen seed 42, 200 flags, 50 segments, 50,000 requests, the
// well-formed ones); then propagation from a primary write to the library seeing it (p50, p99).
// The node serves the workload's snapshot with `edgeflag serve --snapshot`; propagation uses a
// fresh primary (SQLite). A benchmark prints figures; it asserts nothing about time.
// usage: node bench/client_bench.mjs [--build build] [--writes 200] [--http 5000]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const build = path.resolve(root, opt('--build', 'build'));
process.env.EDGEFLAG_BIN = path.join(build, 'edgeflag');
const { evalWorkload } = await import(path.join(here, 'workload.mjs'));
const { createFliptEngine } = await import(path.join(root, 'tests/compat/engine.mjs'));
const { startServer } = await import(path.join(root, 'tests/compat/server.mjs'));

const w = await evalWorkload('ef-clientbench-'); // the workload of bench/workload.mjs
const c = { snapshot: w.snapshot };
const { reqs, snapFile, reqFile } = w;
const tmp = w.dir;

// Flipt's engine (Rust in WASM via flipt-client-js), same requests, median of 3 runs
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
function nsPerEval(runs, fn) {
  fn();
  const t = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / reqs.length);
  }
  return median(t);
}
const eng = await createFliptEngine(c.snapshot, { namespace: 'default' });
const snake = reqs.map((r) => ({ b: r.type === 'boolean', q: { flag_key: r.flagKey, entity_id: r.entityId, context: r.context } }));
const pub = reqs.map((r) => ({ b: r.type === 'boolean', q: { flagKey: r.flagKey, entityId: r.entityId, context: r.context } }));
const fliptPublic = nsPerEval(3, () => { for (const r of pub) r.b ? eng.client.evaluateBoolean(r.q) : eng.client.evaluateVariant(r.q); });
const fliptRaw = nsPerEval(3, () => { for (const r of snake) r.b ? eng.client.engine.evaluate_boolean(r.q) : eng.client.engine.evaluate_variant(r.q); });
eng.close();

const bench = path.join(build, 'bench_client');
let node = await startServer(['--snapshot', snapFile]);
let ev;
try {
  const run = spawnSync(bench, ['eval', '--url', node.url, '--snapshot', snapFile, '--requests', reqFile, '--threads', '1,2', '--http', opt('--http', '5000')], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error('bench_client eval failed: ' + run.stderr + run.stdout);
  ev = JSON.parse(run.stdout);
} finally {
  await node.stop();
}
node = await startServer([]);
let prop;
try {
  const run = spawnSync(bench, ['propagation', '--url', node.url, '--writes', opt('--writes', '200')], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error('bench_client propagation failed: ' + run.stderr + run.stdout);
  prop = JSON.parse(run.stdout);
} finally {
  await node.stop();
}
fs.rmSync(tmp, { recursive: true, force: true });

const f = (x) => x.toFixed(0).padStart(8);
console.log(`client library benchmark: ${ev.requests} requests (eval workload: seed 42, 200 flags, 50 segments), ${os.cpus().length} cores; library answers differing from the engine: ${ev.answers_differing_from_engine}`);
for (const t of [1, 2]) {
  const r = ev[`threads_${t}`];
  console.log(`  ${t} thread${t > 1 ? 's' : ' '}: library ${f(r.library_ns)} ns/eval   bare engine ${f(r.engine_ns)} ns/eval   ratio ${r.ratio.toFixed(2)}x (aim <= 1.5x; medians of 9 rounds of each in turn, the ratio the median of the rounds')`);
}
console.log(`  HTTP /evaluate/v1 on a local node (1 keep-alive connection, ${ev.http.requests} requests): ${f(ev.http.ns_per_request)} ns/eval   (${(ev.http.ns_per_request / ev.threads_1.library_ns).toFixed(0)}x the library; ${ev.http.failures} failures)`);
console.log(`  Flipt engine (flipt-client-js, public API) ${f(fliptPublic)} ns/eval;  raw WASM calls ${f(fliptRaw)} ns/eval`);
console.log(`  propagation primary write -> library (push stream, ${prop.writes} writes): p50 ${prop.p50_ms.toFixed(2)} ms, p99 ${prop.p99_ms.toFixed(2)} ms, max ${prop.max_ms.toFixed(2)} ms (aim p99 < 100 ms)`);
