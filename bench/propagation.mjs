// Propagation benchmark: 1 primary and N replicas on loopback; W sequential writes on the primary.
// For each write, the clock starts at the primary's acknowledgement (its X-Edgeflag-Version v) and
// stops, per replica, when that replica answers a request carrying X-Edgeflag-Min-Version: v,
// which it holds until it has applied v: the time until the replica serves the new state.
// The same again with every replica following through a TCP proxy that delays by --delay ms.
// Prints p50, p99 and max; asserts nothing (the figures go to README.md).
import { execFileSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { node, stopAll, call } from '../tests/cluster/cluster.mjs';
import { startProxy } from '../tests/cluster/proxy.mjs';
import { namespaceYaml } from './workload.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const replicas = arg('replicas', 10);
const writes = arg('writes', 1000);
const delay = arg('delay', 50);
const delayedWrites = arg('delayed-writes', 300);
// --flags N: the primary starts with N flags (imported before it starts), so a write's cost on
// every node can be compared between a small and a large namespace
const preload = arg('flags', 0);
// --client PATH: the writes and the waits are made by the C client (bench/bench_propagation.c),
// which costs far less CPU per write than this process; node only starts the nodes and waits
const clientIdx = process.argv.indexOf('--client');
const client = clientIdx > 0 ? process.argv[clientIdx + 1] : null;
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// CPU time (user + system) in ms from a /proc stat file, with the thread's name; null when gone.
function statCpu(file) {
  try {
    const f = fs.readFileSync(file, 'utf8');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return { name: f.slice(f.indexOf('(') + 1, f.lastIndexOf(')')), ms: ((Number(v[11]) + Number(v[12])) * 1000) / TICKS, faults: Number(v[7]) };
  } catch {
    return null;
  }
}

// CPU time in ms of each thread of a running node, by thread name (ef-follower, MHD-worker...).
function threadCpu(n) {
  const out = {};
  let tasks = [];
  try {
    tasks = fs.readdirSync(`/proc/${n.child.pid}/task`);
  } catch {
    // gone
  }
  for (const t of tasks) {
    const c = statCpu(`/proc/${n.child.pid}/task/${t}/stat`);
    if (c) out[c.name] = (out[c.name] || 0) + c.ms;
  }
  return out;
}

// CPU time of a running node in ms; 0 when it is gone.
const cpuMs = (n) => statCpu(`/proc/${n.child.pid}/stat`)?.ms ?? 0;
// Minor page faults of a running node so far (a 4 KiB one costs about 11 us on the benchmark VM:
// bench_store prints the machine's figure); 0 when it is gone.
const faults = (n) => statCpu(`/proc/${n.child.pid}/stat`)?.faults ?? 0;

async function run(label, upstreamOf, count) {
  const primary = node('primary', { args: ['--threads', '2'] });
  if (preload > 0) {
    const file = path.join(primary.dir, 'preload.yml');
    fs.writeFileSync(file, namespaceYaml('default', preload));
    execFileSync(process.env.EDGEFLAG_BIN || 'build/edgeflag',
      ['import', '--db', path.join(primary.dir, 'edgeflag.db'), file], { stdio: 'inherit' });
  }
  const nodes = [primary];
  let proxy = null;
  try {
    await primary.start();
    if (upstreamOf === 'proxy') {
      proxy = await startProxy(primary.port);
      proxy.delay(delay);
    }
    const up = proxy ? proxy.url : primary.url;
    const rs = [];
    for (let i = 0; i < replicas; i++) rs.push(node(`r${i}`, { upstream: up, args: ['--threads', '2', '--min-version-wait', '10000'] }));
    nodes.push(...rs);
    await Promise.all(rs.map((r) => r.start()));
    // warm up: every replica connected and at the primary's version. Twice: a replica that starts
    // empty may reach the first version by loading a dump and only then open its stream (with
    // 10,000 flags and 10 replicas on 2 cores, a second later); the second write has come through
    // every stream, so the measured writes time steady state, not a replica's first catch-up
    // /health ignores X-Edgeflag-Min-Version (issue 19): a route that answers from state waits
    const served = '/api/v1/namespaces/default';
    for (const key of ['warm', 'warm2']) {
      const w0 = await call(primary.url, 'POST', '/api/v1/namespaces/default/flags', { key, name: key });
      const v0 = w0.headers.get('x-edgeflag-version');
      // a replica still loading a large dump answers 503 when its wait ends: ask again (100,000
      // flags take seconds; the first measured write once waited for the rest of a bootstrap)
      await Promise.all(rs.map(async (r) => {
        const end = Date.now() + 300000;
        for (;;) {
          const a = await call(r.url, 'GET', served, undefined, { 'x-edgeflag-min-version': v0 });
          if (a.status === 200) return;
          if (Date.now() > end) throw new Error(`${r.name} did not reach version ${v0}: ${a.status} ${a.text}`);
        }
      }));
    }
    if (client) {
      const args = ['--primary', primary.url, '--writes', String(count), '--label', label];
      for (const r of rs) args.push('--replica', r.url);
      let stdout;
      const cpu0 = nodes.map(cpuMs);
      const pf0 = nodes.map(faults);
      const th0 = [threadCpu(nodes[0]), threadCpu(nodes[1])];
      const w0 = performance.now();
      try {
        ({ stdout } = await promisify(execFile)(client, args, { maxBuffer: 1 << 20 }));
        // the client's own, which it measures itself (getrusage) and prints on a line of its own
        const clientLine = /client CPU per write\s+([\d.]+) ms\n/.exec(stdout);
        stdout = stdout.replace(/.*client CPU per write.*\n/, '');
        const clientCpu = clientLine ? Number(clientLine[1]) * count : 0;
        // CPU per write, from /proc (user + system, every thread): what the two cores spent, by whom
        const wall = performance.now() - w0;
        const th1 = [threadCpu(nodes[0]), threadCpu(nodes[1])];
        const d = nodes.map((n, i) => cpuMs(n) - cpu0[i]);
        const pf = nodes.map((n, i) => faults(n) - pf0[i]);
        const rep = d.slice(1);
        const per = (x) => (x / count).toFixed(3).padStart(7);
        process.stdout.write(stdout);
        console.log(`${label.padEnd(34)} CPU per write           primary ${per(d[0])} ms  replicas ${per(rep.reduce((a, b) => a + b, 0))} ms` +
          ` (each ${per(rep.reduce((a, b) => a + b, 0) / rep.length)})  client ${per(clientCpu)} ms  wall ${per(wall)} ms`);
        // where a node's share goes, by thread (threads of one name summed)
        for (const [i, who] of [[0, 'primary'], [1, 'replica r0']]) {
          const parts = Object.entries(th1[i])
            .map(([k, v]) => [k, v - (th0[i][k] || 0)])
            .filter(([, v]) => v > 0)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k} ${(v / count).toFixed(3)}`);
          console.log(`${label.padEnd(34)} CPU per write, ${who.padEnd(10)} ${parts.join(', ')} ms`);
        }
        console.log(`${label.padEnd(34)} page faults per write   primary ${(pf[0] / count).toFixed(2)}  replica r0 ${(pf[1] / count).toFixed(2)}` +
          ' (each write creates a flag: some growth is the state\'s own)');
        return;
      } catch (e) { // say what the nodes said
        for (const n of nodes) console.error(`--- ${n.name}\n${n.stderr.slice(-1500)}`);
        throw e;
      }
    }
    const samples = [];
    for (let i = 0; i < count; i++) {
      const body = i % 2 ? { name: 'warm', enabled: i % 4 === 1 } : null;
      const res = body
        ? await call(primary.url, 'PUT', '/api/v1/namespaces/default/flags/warm', body)
        : await call(primary.url, 'POST', '/api/v1/namespaces/default/flags', { key: `p${i}`, name: 'p' });
      const t0 = performance.now();
      if (res.status !== 200) throw new Error(`write ${i}: ${res.status} ${res.text}`);
      const v = res.headers.get('x-edgeflag-version');
      const times = await Promise.all(
        rs.map(async (r) => {
          const a = await call(r.url, 'GET', served, undefined, { 'x-edgeflag-min-version': v });
          if (a.status !== 200) throw new Error(`${r.name} did not reach ${v}: ${a.text}`);
          return performance.now() - t0;
        }),
      );
      samples.push(...times);
    }
    samples.sort((a, b) => a - b);
    const f = (x) => x.toFixed(2).padStart(8);
    console.log(`${label.padEnd(34)} writes ${String(count).padStart(5)}  samples ${String(samples.length).padStart(6)}  p50 ${f(pct(samples, 50))} ms  p99 ${f(pct(samples, 99))} ms  max ${f(samples[samples.length - 1])} ms`);
  } finally {
    const during = nodes.map((n) => n.stderr); // before the stop, whose own warnings say nothing
    await stopAll(nodes);
    if (proxy) await proxy.close();
    // what went wrong during the run, if anything: a figure is read next to it
    for (const [i, n] of nodes.entries()) {
      const bad = during[i].split('\n').filter((l) => /level=(warn|error)/.test(l));
      for (const l of bad.slice(0, 5)) console.log(`  ${n.name}: ${l}`);
      if (bad.length > 5) console.log(`  ${n.name}: ... ${bad.length - 5} more warnings`);
    }
  }
}

if (writes > 0) await run(`loopback, ${replicas} replicas${preload ? `, ${preload} flags` : ''}`, 'direct', writes);
if (delayedWrites > 0) await run(`via proxy +${delay} ms, ${replicas} replicas`, 'proxy', delayedWrites);
