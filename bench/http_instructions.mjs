#!/usr/bin/env node
// Instructions per HTTP request, counted by callgrind: the same /evaluate/v1/variant request as
// bench/http_bench.mjs (a 317-byte body with 12+ context keys on a 200-flag namespace), sent by wrk
// over keep-alive connections to a node running under valgrind --tool=callgrind. Instruction
// counts do not depend on what else the machine is doing, so this figure can be compared across
// runs and commits where req/s cannot. Each deployment is measured twice, once with no requests
// (start-up and shutdown) and once with a few thousand, and the difference is divided by the
// requests wrk completed. Prints the total per request, the part inside edgeflag's request
// handling (on_access, inclusive), the largest functions, and edgeflag's own work split into
// decode, evaluation, answer, metrics, libmicrohttpd's response objects (what edgeflag pays for
// them above or below the floor, which makes one per request) and the glue between them. The
// reference, in the same run: libmicrohttpd alone with edgeflag's options and headers answering a
// fixed body of the same length (bench/bench_mhd_floor.c, the floor of http_bench.mjs); what
// edgeflag counts above it is its own work per request. A benchmark prints figures; it asserts
// nothing.
//
// memset is listed apart: libmicrohttpd zeroes each connection's memory pool between requests
// with `rep stosb`, which callgrind counts once per byte (~18,000 "instructions" a request) while
// the CPU clears it in a few hundred cycles.
//
// usage: node bench/http_instructions.mjs [--build build] [--seconds 8]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { httpWorkload } = await import(path.join(here, 'workload.mjs'));
const { listeningUrl } = await import(path.join(here, 'listen.mjs'));
const { wrkScript } = await import(path.join(here, 'wrk.mjs'));
const { createThroughApi } = await import(path.join(root, 'tests/compat/populate.mjs'));
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const build = path.resolve(root, opt('--build', 'build'));
const seconds = Number(opt('--seconds', '8'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-httpinstr-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const tool of ['valgrind', 'callgrind_annotate', 'wrk']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`http_instructions: ${tool} is missing (scripts/install-deps.sh installs it)`);
    process.exit(1);
  }
}

const c = await httpWorkload();
fs.writeFileSync(path.join(tmp, 'snapshot.json'), JSON.stringify(c.snapshot));
const { body } = c;
const script = wrkScript(tmp, 'variant.lua', 'POST', body);

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if ((await fetch(url + '/ready')).status === 200) return;
    } catch {}
    await sleep(200);
  }
  throw new Error(`${url} did not become ready`);
}

// A plain node (not under valgrind) that the primary --db database is written through, once;
// returns the length of its answer to the measured request (the floor answers as many bytes).
async function preparePrimaryDb(file) {
  const port = await freePort();
  const child = spawn(path.join(build, 'edgeflag'), ['serve', '--listen', `127.0.0.1:${port}`, '--db', file, '--log-level', 'warn'], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, 10000);
  await createThroughApi(url, c.snapshot);
  const r = await fetch(url + '/evaluate/v1/variant', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
  if (r.status !== 200) throw new Error(`the measured request answers ${r.status}`);
  const answer = Buffer.byteLength(await r.text());
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  return answer;
}

// One run under callgrind: start, (maybe) load, stop; returns { requests, ir, out }. command:
// the program and its arguments; its URL is the one it prints.
async function measure(name, command, load) {
  const out = path.join(tmp, `cg.${name.replace(/\W+/g, '_')}.${load ? 'load' : 'idle'}`);
  const child = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, ...command], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await listeningUrl(child, name, 60000);
  await waitReady(url, 60000);
  let requests = 0;
  if (load) {
    const r = spawnSync('wrk', ['-t1', '-c4', `-d${seconds}s`, '-s', script, url + '/evaluate/v1/variant'], { encoding: 'utf8' });
    requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
    if (/Non-2xx/.test(r.stdout)) throw new Error(`${name}: non-2xx answers:\n${r.stdout}`);
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  const text = fs.readFileSync(out, 'utf8');
  const ir = Number(/^(?:summary|totals):\s+(\d+)/m.exec(text)[1]);
  return { requests, ir, out };
}

function inclusive(file) {
  const r = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const rows = new Map();
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*([\d,]+)\s+\([^)]*\)\s+(\S+)/.exec(line);
    if (!m) continue;
    const fn = m[2].replace(/^.*:/, '');
    if (!rows.has(fn)) rows.set(fn, Number(m[1].replace(/,/g, '')));
  }
  return rows;
}

const serve = (...args) => [path.join(build, 'edgeflag'), 'serve', '--listen', '127.0.0.1:0', '--threads', '1', '--log-level', 'warn', ...args];
const answerBytes = await preparePrimaryDb(path.join(tmp, 'primary.db'));
const deployments = [
  { name: 'primary --db (default)', command: serve('--db', path.join(tmp, 'primary.db')) },
  { name: '--snapshot (reference)', command: serve('--snapshot', path.join(tmp, 'snapshot.json')) },
  { name: `libmicrohttpd alone (same options and headers, a fixed ${answerBytes}-byte body)`, floor: true,
    command: [path.join(build, 'bench', 'bench_mhd_floor'), '--body-bytes', String(answerBytes)] },
];
console.log(`instructions per /evaluate/v1/variant request (callgrind; ${body.length}-byte body, keep-alive, 1 server thread)`);
const withoutMemset = new Map();
const parts = new Map();
// edgeflag's own work by part, from inclusive counts of the functions that do it (per request):
// what is left once the parts are taken from the total above the floor is the glue (headers
// walked, routing, admission, hooks before and after, the response object's fill).
const PARTS = [
  ['decode the body', ['read_input']],
  ['evaluate', ['ef_eval_variant', 'ef_registry_get']],
  ['write the answer', ['ef_write_variant_response']],
  ['metrics (evaluation and HTTP)', ['ef_eval_metrics_variant', 'ef_node_count_response']],
];
// libmicrohttpd's response objects (made, given their headers and freed): the floor makes one per
// request; edgeflag queues a connection's kept one again when it can (src/http/server.c, reuse),
// so this part is what it pays above (or, negative, below) the floor's cost for them.
const RESPONSE_FNS = ['MHD_create_response_from_buffer', 'MHD_add_response_header', 'MHD_destroy_response'];
const responseCost = new Map();
function partsOf(f) {
  return PARTS.map(([label, fns]) => [label, fns.reduce((sum, fn) => sum + f(fn), 0)]);
}
for (const d of deployments) {
  const idle = await measure(d.name, d.command, false);
  const busy = await measure(d.name, d.command, true);
  if (!busy.requests) throw new Error(`${d.name}: wrk completed no requests`);
  const per = (busy.ir - idle.ir) / busy.requests;
  const fns = inclusive(busy.out);
  const idleFns = inclusive(idle.out);
  const f = (name) => ((fns.get(name) ?? 0) - (idleFns.get(name) ?? 0)) / busy.requests;
  const memset = f('__memset_avx2_unaligned_erms');
  console.log(`\n${d.name}: ${busy.requests} requests`);
  console.log(`  total              ${Math.round(per).toLocaleString('en-US').padStart(8)} per request`);
  console.log(`  without memset     ${Math.round(per - memset).toLocaleString('en-US').padStart(8)}   (memset: ${Math.round(memset).toLocaleString('en-US')}, counted per byte; see the header)`);
  withoutMemset.set(d, per - memset);
  responseCost.set(d, RESPONSE_FNS.reduce((sum, fn) => sum + f(fn), 0));
  if (!d.floor) parts.set(d, partsOf(f));
  for (const name of ['on_access', 'dispatch', 'on_variant', 'ef_json_parse', 'ef_write_variant_response', 'ef_eval_metrics_variant', ...RESPONSE_FNS, 'ef_router_match', 'after_request', 'finish_request', 'before_request']) {
    const v = f(name);
    if (v > 0) console.log(`  ${name.padEnd(26)} ${Math.round(v).toLocaleString('en-US').padStart(8)}`);
  }
}
const floor = deployments.find((d) => d.floor);
const floorIr = withoutMemset.get(floor);
console.log('\nedgeflag\'s own work (without memset, above libmicrohttpd alone):');
for (const d of deployments.filter((x) => !x.floor)) {
  const own = withoutMemset.get(d) - floorIr;
  console.log(`  ${d.name.padEnd(24)} ${Math.round(own).toLocaleString('en-US').padStart(8)} per request (${(withoutMemset.get(d) / floorIr).toFixed(2)}x the floor's)`);
  let rest = own;
  const responses = ['response objects (vs the floor)', responseCost.get(d) - responseCost.get(floor)];
  for (const [label, v] of [...parts.get(d), responses]) {
    console.log(`    ${label.padEnd(30)} ${Math.round(v).toLocaleString('en-US').padStart(8)}`);
    rest -= v;
  }
  console.log(`    ${'the rest (glue)'.padEnd(30)} ${Math.round(rest).toLocaleString('en-US').padStart(8)}`);
}
if (!process.env.EF_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
