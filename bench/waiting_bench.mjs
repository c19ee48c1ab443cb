#!/usr/bin/env node
// Waiting requests vs evaluation latency (issue 19 item 1): a replica on its --db file follows a
// primary through a proxy that delays every write by --delay ms (a slow upstream). wrk measures
// POST /evaluate/v1/boolean on the replica idle, then again while --waiters requests wait with an
// X-Edgeflag-Min-Version the replica will not reach and --writes forwarded writes wait for the
// slow upstream. Before the fix each waiter held a server thread; now they are suspended
// connections. Prints p50/p99 of both runs and their ratio. A benchmark: it asserts nothing.
// usage: node bench/waiting_bench.mjs [--build build] [--waiters 1000] [--writes 100] [--duration 5]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const build = path.resolve(root, opt('--build', 'build'));
const WAITERS = Number(opt('--waiters', '1000'));
const WRITES = Number(opt('--writes', '100'));
const DURATION = Number(opt('--duration', '5'));
const DELAY = Number(opt('--delay', '8000'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-waitbench-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function serve(name, extra) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  const child = spawn(path.join(build, 'edgeflag'), ['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'edgeflag.db'), '--log-level', 'error', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let s = '';
    child.stdout.on('data', (d) => {
      s += d;
      const m = /listening on (\S+)/.exec(s);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (c) => reject(new Error(`${name} exited ${c}`)));
  });
}

// The slow upstream: the replication stream and reads pass through; writes wait DELAY ms first.
function slowProxy(target) {
  const t = new URL(target);
  const srv = http.createServer((req, res) => {
    const go = () => {
      const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (req.method === 'GET') go();
    else setTimeout(go, DELAY);
  });
  srv.keepAliveTimeout = 60000;
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r({ srv, url: `http://127.0.0.1:${srv.address().port}` })));
}

function request(url, method, p, body, headers = {}, localAddress) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: p, headers: { 'content-type': 'application/json', ...headers }, agent: false, localAddress }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

function wrkRun(url, script) {
  const run = spawn('wrk', ['-t1', '-c16', `-d${DURATION}s`, '--latency', '-s', script, url]);
  let out = '';
  run.stdout.on('data', (d) => (out += d));
  return new Promise((r) =>
    run.on('exit', () => {
      const pct = (p) => {
        const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
        return m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : null;
      };
      r({ rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0), p50: pct(50), p99: pct(99), non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) });
    }),
  );
}

const primary = await serve('primary', []);
for (let i = 0; i < 50; i++) await request(primary.url, 'POST', '/api/v1/namespaces/default/flags', { key: `f${i}`, name: `f${i}`, type: 'BOOLEAN_FLAG_TYPE', enabled: true });
const proxy = await slowProxy(primary.url);
const replica = await serve('replica', ['--upstream', proxy.url, '--min-version-wait', String(DELAY + 30000), '--write-wait', '2000', '--max-waiting', String(WAITERS + WRITES + 100)]);
for (let i = 0; i < 200; i++) {
  const r = await fetch(replica.url + '/api/v1/namespaces/default/flags/f49').catch(() => null);
  if (r && r.status === 200) break;
  await sleep(50);
}
const script = path.join(tmp, 'eval.lua');
fs.writeFileSync(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(JSON.stringify({ namespaceKey: 'default', flagKey: 'f7', entityId: 'user-1', context: { plan: 'pro' } }))}\nwrk.headers["Content-Type"] = "application/json"\n`);
const evalUrl = replica.url + '/evaluate/v1/boolean';

await wrkRun(evalUrl, script); // warm-up
const idle = await wrkRun(evalUrl, script);

// The load that used to stall a node: waiters spread over loopback addresses (a node allows
// --max-conns-per-ip from one), and forwarded writes stuck behind the slow upstream.
const far = String(1e12);
const pending = [];
for (let i = 0; i < WAITERS; i++)
  pending.push(request(replica.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: 'f1', entityId: `w${i}` }, { 'x-edgeflag-min-version': far }, `127.0.1.${1 + (i % 50)}`));
for (let i = 0; i < WRITES; i++)
  pending.push(request(replica.url, 'POST', '/api/v1/namespaces/default/flags', { key: `w${i}`, name: 'w', type: 'BOOLEAN_FLAG_TYPE' }, {}, `127.0.2.${1 + (i % 50)}`));
let waiting = 0;
for (let i = 0; i < 100; i++) {
  const m = await (await fetch(replica.url + '/metrics')).text();
  waiting = Number(/edgeflag_waiting_requests (\d+)/.exec(m)?.[1] ?? 0) + Number(/edgeflag_replication_forwarded_writes_in_flight (\d+)/.exec(m)?.[1] ?? 0);
  if (waiting >= WAITERS + WRITES) break;
  await sleep(50);
}
const loaded = await wrkRun(evalUrl, script);
const stillWaiting = await (async () => {
  const m = await (await fetch(replica.url + '/metrics')).text();
  return Number(/edgeflag_waiting_requests (\d+)/.exec(m)?.[1] ?? 0) + Number(/edgeflag_replication_forwarded_writes_in_flight (\d+)/.exec(m)?.[1] ?? 0);
})();

replica.child.kill('SIGTERM');
primary.child.kill('SIGTERM');
await Promise.all(pending);
proxy.srv.close();
proxy.srv.closeAllConnections?.();
await sleep(200);
fs.rmSync(tmp, { recursive: true, force: true });

const f = (x) => (x === null ? 'n/a' : x.toFixed(3));
console.log(`Waiting requests: replica on --db behind a slow upstream (writes delayed ${DELAY} ms); wrk -t1 -c16 -d${DURATION}s POST /evaluate/v1/boolean`);
console.log(`  idle                                     ${idle.rps.toFixed(0).padStart(7)} req/s  p50 ${f(idle.p50)} ms  p99 ${f(idle.p99)} ms  non-2xx ${idle.non2xx}`);
console.log(`  ${String(waiting).padStart(5)} waiting (${WAITERS} min-version, ${WRITES} forwarded)  ${loaded.rps.toFixed(0).padStart(7)} req/s  p50 ${f(loaded.p50)} ms  p99 ${f(loaded.p99)} ms  non-2xx ${loaded.non2xx}  (still waiting after: ${stillWaiting})`);
console.log(`  p99 with waiters / idle: ${(loaded.p99 / idle.p99).toFixed(2)}x (aim: within 2x)`);
