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
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../tests/compat/tmp.mjs';
import { median, requireWrk, startPrimary, wrkRps, wrkScript } from './wrk.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { httpWorkload } = await import(path.join(here, 'workload.mjs'));
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const build = path.resolve(root, opt('--build', 'build'));
const rounds = Number(opt('--rounds', '5'));
const seconds = Number(opt('--seconds', '4'));
const tmp = tempDir('ef-allocab-');

requireWrk('allocator_ab');
const c = await httpWorkload();
const script = wrkScript(tmp, 'variant.lua', 'POST', c.body);

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
  const { child, url } = await startPrimary(path.join(build, 'edgeflag'), path.join(tmp, `${nodes.length}.db`), c,
    { env, logLevel: 'warn', name: a.name });
  nodes.push({ ...a, child, url, rps: [] });
}

for (let i = 0; i < rounds; i++)
  for (const n of nodes) n.rps.push(wrkRps(n.url + '/evaluate/v1/variant', script, { seconds }));
for (const n of nodes) n.child.kill('SIGTERM');

const base = median(nodes[0].rps);
console.log(`allocators on a --db primary, ${rounds} interleaved rounds of ${seconds} s (wrk -t1 -c64 on CPU 1, server on CPU 0):`);
for (const n of nodes) {
  const m = median(n.rps);
  console.log(`  ${n.name.padEnd(13)} ${Math.round(m).toLocaleString('en-US').padStart(9)} req/s (rounds ${Math.round(Math.min(...n.rps)).toLocaleString('en-US')}-${Math.round(Math.max(...n.rps)).toLocaleString('en-US')})  ${(m / base).toFixed(3)}x glibc`);
}
