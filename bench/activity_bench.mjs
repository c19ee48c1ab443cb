#!/usr/bin/env node
// What counting evaluations per flag and outcome (the flag page's activity chart, issue 17) costs
// the engine: build/bench_eval on eval_bench.mjs's workload (gen seed 42, 200 flags, 50 segments),
// with and without --count, interleaved ROUNDS times; prints both medians and the difference, and
// (valgrind installed) the instructions per evaluation of each and their ratio, which callgrind
// counts the same on a busy machine. The times are taken on whatever load the machine has.
// usage: node bench/activity_bench.mjs [--build build] [--rounds 3] [--threads 1]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { evalWorkload } = await import(path.join(here, 'workload.mjs'));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const build = path.resolve(root, opt('--build', 'build'));
const rounds = Number(opt('--rounds', '3'));
const threads = opt('--threads', '1');
const { reqs, dir: tmp, snapFile, reqFile } = await evalWorkload('ef-activity-');

const bench = path.join(build, 'bench_eval');
const runs = { plain: [], counting: [] };
for (let i = 0; i < rounds; i++) {
  for (const mode of ['plain', 'counting']) {
    const a = ['--snapshot', snapFile, '--requests', reqFile, '--threads', threads, '--rounds', '5'];
    if (mode === 'counting') a.push('--count');
    const run = spawnSync(bench, a, { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`bench_eval ${mode} failed: ${run.stderr}`);
    runs[mode].push(JSON.parse(run.stdout));
  }
}
// instructions per evaluation (callgrind, one pass inside bench_pass): stable on a busy machine
const instr = {};
const haveValgrind = spawnSync('valgrind', ['--version']).status === 0;
for (const mode of haveValgrind ? ['plain', 'counting'] : []) {
  const out = path.join(tmp, `cg.${mode}`);
  const a = ['--tool=callgrind', '--toggle-collect=bench_pass', `--callgrind-out-file=${out}`, bench,
    '--snapshot', snapFile, '--requests', reqFile, '--once'];
  if (mode === 'counting') a.push('--count');
  const run = spawnSync('valgrind', a, { encoding: 'utf8' });
  const m = /Collected : (\d+)/.exec(run.stderr);
  if (run.status === 0 && m) instr[mode] = Number(m[1]) / reqs.length;
}
fs.rmSync(tmp, { recursive: true, force: true });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = {};
for (const mode of ['plain', 'counting']) {
  m[mode] = {
    rate: median(runs[mode].map((r) => r.evals_per_sec)),
    ns: median(runs[mode].map((r) => r.ns_per_eval_median)),
  };
}
console.log(`activity counting: ${reqs.length} requests, 200 flags, ${threads} thread(s), ${rounds} interleaved runs of 5 rounds, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)} (times are taken under that load)`);
for (const mode of ['plain', 'counting'])
  console.log(`  ${mode.padEnd(9)} ${(m[mode].rate / 1e6).toFixed(2)} M evals/s, median ${m[mode].ns} ns/eval`);
const slower = (m.plain.rate / m.counting.rate - 1) * 100;
if (instr.plain && instr.counting)
  console.log(`  instructions per evaluation (callgrind, load-independent): ${instr.plain.toFixed(1)} plain, ${instr.counting.toFixed(1)} counting, ratio ${(instr.counting / instr.plain).toFixed(4)} (+${((instr.counting / instr.plain - 1) * 100).toFixed(1)} %, ${(instr.counting - instr.plain).toFixed(1)} instructions)`);
else console.log('  (valgrind missing: no instruction counts)');
console.log(`  counting costs ${slower.toFixed(1)} % of throughput (${(1e9 / m.counting.rate - 1e9 / m.plain.rate).toFixed(1)} ns per evaluation)`);
