#!/usr/bin/env node
// Two or more builds of the engine side by side: each build's bench_eval on the evaluation
// workload (bench/workload.mjs), pinned to one CPU, run after run in turn (the order turned each
// run), N runs of 15 passes each. Prints each build's cold mean (its median, best and every run),
// warm mean, and instructions per evaluation (callgrind, once each, load-independent): the A/B
// figures of an engine change, taken in one spell of the host. The ratio to Flipt's engine in
// eval_bench.mjs moves with the host by more than most engine changes; this does not involve it.
// A benchmark: it prints, asserts nothing.
// usage: node bench/eval_ab.mjs BUILD_DIR_OR_BENCH_EVAL... [--runs 10] [--cpu 1] [--no-callgrind]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { evalWorkload } = await import(path.join(here, 'workload.mjs'));

const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const runs = Number(opt('--runs', '10'));
const cpu = opt('--cpu', '1');
const callgrind = !args.includes('--no-callgrind');
const valued = new Set(['--runs', '--cpu']);
const bins = args.filter((a, i) => !a.startsWith('--') && !valued.has(args[i - 1])).map((b) => {
  const p = path.resolve(b);
  return fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, 'bench_eval') : p;
});
if (bins.length < 1 || !Number.isInteger(runs) || runs < 1)
  throw new Error('usage: node bench/eval_ab.mjs BUILD... [--runs N] [--cpu C] [--no-callgrind]');
for (const b of bins) if (!fs.existsSync(b)) throw new Error(`no such bench_eval: ${b}`);

const w = await evalWorkload('ef-eval-ab-');
process.on('exit', () => fs.rmSync(w.dir, { recursive: true, force: true }));
const base = ['--snapshot', w.snapFile, '--requests', w.reqFile];
const one = (bin) => {
  const r = spawnSync('taskset', ['-c', cpu, bin, ...base, '--rounds', '15'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
};
const seen = bins.map(() => ({ cold: [], warm: [] }));
bins.forEach((b) => one(b)); // warm-up: the files in the page cache, the CPU's clock up
for (let r = 0; r < runs; r++) {
  const order = bins.map((_, i) => i);
  if (r % 2) order.reverse();
  for (const i of order) {
    const o = one(bins[i]);
    seen[i].cold.push(o.ns_per_eval_mean);
    seen[i].warm.push(o.warm_mean);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`engine A/B: ${w.reqs.length} requests, bench_eval pinned to CPU ${cpu}, ${runs} runs each in turn`);
bins.forEach((b, i) => {
  let ir = '';
  if (callgrind) {
    const out = path.join(w.dir, `cg.${i}`);
    const r = spawnSync('valgrind', ['--tool=callgrind', '--toggle-collect=bench_pass', `--callgrind-out-file=${out}`, b, ...base, '--once'], { encoding: 'utf8' });
    const m = r.status === 0 ? /^(?:summary|totals):\s+(\d+)/m.exec(fs.readFileSync(out, 'utf8')) : null;
    ir = m ? `, ${(Number(m[1]) / w.reqs.length).toFixed(1)} instructions per evaluation` : ', callgrind failed';
  }
  const s = seen[i];
  console.log(`  ${b}\n    cold mean ${median(s.cold).toFixed(1)} ns (best ${Math.min(...s.cold).toFixed(1)}; ${s.cold.map((x) => x.toFixed(1)).join(' ')}), warm mean ${median(s.warm).toFixed(1)} ns${ir}`);
});
if (bins.length >= 2)
  bins.slice(1).forEach((b, k) => console.log(`  build ${k + 2} / build 1, cold mean: ${(median(seen[k + 1].cold) / median(seen[0].cold)).toFixed(3)}`));
