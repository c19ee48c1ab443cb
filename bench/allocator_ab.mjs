#!/usr/bin/env node
// Whether another malloc would serve evaluations faster: the same `--db` primary (the default
// deployment, state written through the API) started three times, with glibc's malloc and with
// mimalloc and jemalloc by LD_PRELOAD, each on CPU 0 with one server thread, and measured in
// interleaved rounds of wrk -t1 -c64 on CPU 1 with http_bench.mjs's request. Prints each one's
// median req/s and its ratio to glibc's, with the rounds' range. Run it alone on the machine; a
// benchmark prints figures and asserts nothing. An allocator that is not installed is skipped
// with a line saying so (Debian: libmimalloc2.0, libjemalloc2).
//
// usage: node bench/allocator_ab.mjs [--build build] [--rounds 5] [--seconds 4]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../tests/compat/tmp.mjs';
import { listeningUrl } from './listen.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { httpWorkload } = await import(path.join(here, 'workload.mjs'));
const { createThroughApi } = await import(path.join(root, 'tests/compat/populate.mjs'));
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const build = path.resolve(root, opt('--build', 'build'));
const rounds = Number(opt('--rounds', '5'));
const seconds = Number(opt('--seconds', '4'));
const tmp = tempDir('ef-allocab-');

if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) {
  console.error('allocator_ab: wrk is missing (scripts/install-deps.sh bench installs it)');
  process.exit(1);
}
const c = await httpWorkload();
const script = path.join(tmp, 'variant.lua');
fs.writeFileSync(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(c.body)}\nwrk.headers["Content-Type"] = "application/json"\n`);

const libdir = '/usr/lib/x86_64-linux-gnu';
const candidates = [
  { name: 'glibc malloc', preload: null },
  { name: 'mimalloc', preload: path.join(libdir, 'libmimalloc.so.2') },
  { name: 'jemalloc', preload: path.join(libdir, 'libjemalloc.so.2') },
];
const nodes = [];
for (const a of candidates) {
  if (a.preload && !fs.existsSync(a.preload)) {
    console.log(`  ${a.name}: ${a.preload} is not installed; left out`);
    continue;
  }
  const env = { ...process.env, ...(a.preload ? { LD_PRELOAD: a.preload } : {}) };
  const db = path.join(tmp, `${nodes.length}.db`);
  const child = spawn('taskset', ['-c', '0', path.join(build, 'edgeflag'), 'serve', '--listen', '127.0.0.1:0',
    '--threads', '1', '--log-level', 'warn', '--db', db], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await listeningUrl(child, 'edgeflag');
  await createThroughApi(url, c.snapshot);
  const r = await fetch(url + '/evaluate/v1/variant', { method: 'POST', body: c.body });
  if (r.status !== 200) throw new Error(`${a.name}: the measured request answers ${r.status}`);
  nodes.push({ ...a, child, url, rps: [] });
}

for (let i = 0; i < rounds; i++) {
  for (const n of nodes) {
    const out = spawnSync('taskset', ['-c', '1', 'wrk', '-t1', '-c64', `-d${seconds}s`, '-s', script, n.url + '/evaluate/v1/variant'], { encoding: 'utf8' }).stdout;
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
    if (!rps || /Non-2xx/.test(out)) throw new Error(`${n.name}: wrk failed: ${out}`);
    n.rps.push(rps);
  }
}
for (const n of nodes) n.child.kill('SIGTERM');

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const base = median(nodes[0].rps);
console.log(`allocators on a --db primary, ${rounds} interleaved rounds of ${seconds} s (wrk -t1 -c64 on CPU 1, server on CPU 0):`);
for (const n of nodes) {
  const m = median(n.rps);
  console.log(`  ${n.name.padEnd(13)} ${Math.round(m).toLocaleString('en-US').padStart(9)} req/s (rounds ${Math.round(Math.min(...n.rps)).toLocaleString('en-US')}-${Math.round(Math.max(...n.rps)).toLocaleString('en-US')})  ${(m / base).toFixed(3)}x glibc`);
}
