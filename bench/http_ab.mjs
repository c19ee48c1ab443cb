#!/usr/bin/env node
// Two builds of edgeflag side by side: a primary on --db of each (the bench workload's flags,
// created through the API), pinned to CPU 0 as http_bench.mjs pins its servers, and wrk on CPU 1
// against one then the other, in alternating order, N runs. Prints each build's req/s per run and
// their medians: the A/B figures of a change, taken in one spell of the host. With
// --connections 64,128 each run measures each count in turn on the same server (one wrk after
// another): how a server copes with more connections than it just had (libmicrohttpd's epoll loop
// slept on 128 ready connections, docs/security.md). A benchmark: it prints, asserts nothing.
// usage: node bench/http_ab.mjs --a build/edgeflag [--b OTHER/edgeflag] [--runs 6]
//        [--connections 64] [--duration 4]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, requireWrk, startPrimary, wrkRps, wrkScript } from './wrk.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { httpWorkload } = await import(path.join(here, 'workload.mjs'));

const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const bins = [opt('--a', path.join(root, 'build/edgeflag')), opt('--b', null)].filter(Boolean).map((b) => path.resolve(b));
const runs = Number(opt('--runs', '6'));
const duration = Number(opt('--duration', '4'));
const conns = opt('--connections', '64').split(',').map(Number);
if (!Number.isInteger(runs) || runs < 1 || conns.some((c) => !Number.isInteger(c) || c < 1))
  throw new Error('--runs and --connections: whole numbers of at least 1');
for (const b of bins) if (!fs.existsSync(b)) throw new Error(`no such build: ${b}`);
requireWrk('http_ab');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-ab-'));
const c = await httpWorkload();
const script = wrkScript(tmp, 'variant.lua', 'POST', c.body);
const children = [];
process.on('exit', () => {
  children.forEach((ch) => ch.exitCode === null && ch.kill('SIGKILL'));
  fs.rmSync(tmp, { recursive: true, force: true });
});

const servers = [];
for (const [i, bin] of bins.entries()) {
  const { child, url } = await startPrimary(bin, path.join(tmp, `${i}.db`), c);
  children.push(child);
  servers.push({ name: bins.length > 1 ? `${'ab'[i]}: ${bin}` : bin, url, rps: conns.map(() => []) });
}
const wrk = (url, n) => wrkRps(url + '/evaluate/v1/variant', script, { conns: n, seconds: duration });
for (const s of servers) wrk(s.url, conns[0]); // warm-up, at the first count
for (let r = 0; r < runs; r++)
  for (const s of r % 2 ? [...servers].reverse() : servers)
    conns.forEach((n, k) => s.rps[k].push(Math.round(wrk(s.url, n))));

console.log(`A/B: primary --db, 1 worker on CPU 0, wrk -t1 -d${duration}s on CPU 1, ${runs} runs in alternating order`);
for (const s of servers)
  conns.forEach((n, k) => console.log(`  ${s.name}  -c${n}: median ${median(s.rps[k])} req/s  (${s.rps[k].join(' ')})`));
if (servers.length === 2)
  conns.forEach((n, k) => console.log(`  b / a at -c${n}: ${(median(servers[1].rps[k]) / median(servers[0].rps[k])).toFixed(3)}`));
children.forEach((ch) => ch.kill('SIGTERM'));
process.exit(0);
