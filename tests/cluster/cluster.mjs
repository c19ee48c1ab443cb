// Helpers for multi-process cluster tests on loopback: start/restart/kill edgeflag nodes that keep
// their database and port across restarts, poll until a condition holds (always with a deadline),
// read a node's whole state in a comparable form, and build a flag corpus.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { edgeflagBin, call } from '../compat/server.mjs';
import { tempDir } from '../compat/tmp.mjs';
import { onStablePort } from '../compat/ports.mjs';

export { call };

export function tmpdir(prefix = 'ef-cluster-') {
  return tempDir(prefix); // removed when this process exits (tests/compat/tmp.mjs)
}

// A node: `start()` spawns it (a free port the first time, then the same port), `kill9()`, `stop()`.
// `env` (changeable between restarts) is added to the process environment.
export function node(name, { dir = tmpdir(`ef-${name}-`), upstream, args = [], env = {} } = {}) {
  const n = {
    name,
    dir,
    env,
    port: 0,
    url: null,
    child: null,
    stderr: '',
    upstream,
    // The first start takes a port below the ephemeral range (../compat/ports.mjs): a node that is
    // down for a while must find its port free when it starts again.
    async start() {
      if (n.port !== 0) return n.spawnOnce();
      return onStablePort((port) => {
        n.port = port;
        return n.spawnOnce();
      });
    },
    async spawnOnce() {
      const full = ['serve', '--listen', `127.0.0.1:${n.port}`, '--db', path.join(dir, 'edgeflag.db'), '--threads', '4'];
      if (n.upstream) full.push('--upstream', typeof n.upstream === 'function' ? n.upstream() : n.upstream);
      full.push(...args);
      const child = spawn(edgeflagBin, full, { env: { ...process.env, ...n.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      n.child = child;
      child.stderr.on('data', (d) => {
        n.stderr += d;
        if (n.stderr.length > 200000) n.stderr = n.stderr.slice(-100000);
      });
      n.url = await new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`${name} did not start: ${n.stderr}`)), 10000);
        child.stdout.on('data', (d) => {
          out += d;
          const m = out.match(/listening on (https?:\/\/\S+)/);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        child.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited with ${code}: ${n.stderr}`));
        });
      });
      n.port = Number(new URL(n.url).port);
      n.exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
      return n;
    },
    async kill9() {
      if (n.child && n.child.exitCode === null) n.child.kill('SIGKILL');
      await n.exited;
    },
    async stop() {
      if (n.child && n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGTERM');
      if (n.exited) await n.exited;
    },
  };
  return n;
}

export async function stopAll(nodes) {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A log line of node n, waited for: a node logs what it did after it publishes it (so a test that
// saw the state over HTTP can be ahead of the line), and its stderr reaches this process through
// a pipe, read when the event loop gets to it. Fails, naming the line, after timeoutMs.
export async function waitForLog(n, re, timeoutMs = 5000) {
  await waitFor(`${n.name} to log ${re}`, () => re.test(n.stderr), timeoutMs);
}

// Polls fn until it returns a truthy value; throws with `what` after timeoutMs.
export async function waitFor(what, fn, timeoutMs = 5000, everyMs = 20) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(everyMs);
  }
}

// One /health answer: the node's version and whether it says it is recovering (it may then be
// behind a version it served before a crash: docs/replication.md, "After a crash").
export async function health(n) {
  const r = await fetch(n.url + '/health');
  await r.arrayBuffer();
  return { version: Number(r.headers.get('x-edgeflag-version')), recovering: r.headers.get('x-edgeflag-recovering') === 'true' };
}

export async function version(n) {
  return (await health(n)).version;
}

// Requests suspended on node n now (waits for a version, forwarded writes), from its metrics.
export async function waitingRequests(n) {
  const m = await (await fetch(n.url + '/metrics')).text();
  return Number(/edgeflag_waiting_requests\s+(\d+)/.exec(m)[1]);
}

// Waits until node n serves version v (or a later one); throws after timeoutMs.
export async function waitVersion(n, v, timeoutMs = 5000) {
  await waitFor(`${n.name} to reach version ${v}`, async () => (await version(n)) >= v, timeoutMs);
}

// A field of node n's /proc/PID/status in MiB: VmRSS, what it holds now, or VmHWM, the most it
// has held since it started (a dump sent or loaded is that peak).
export function statusMiB(n, field) {
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${n.child.pid}/status`, 'utf8'))[1]) / 1024;
}

// The state in a node's lock file record ("open", "written", "clean": src/store/sqlite_persist.c).
export function lockState(n) {
  return /state=(\w+)/.exec(fs.readFileSync(path.join(n.dir, 'edgeflag.db.lock'), 'utf8'))[1];
}

export async function cluster(n) {
  return (await call(n.url, 'GET', '/edgeflag/v1/cluster')).json;
}

async function okJson(n, p) {
  const r = await call(n.url, 'GET', p);
  if (r.status !== 200) throw new Error(`${n.name} GET ${p}: ${r.status} ${r.text}`);
  return r.json;
}

// Everything a client can read through the management API and the snapshot endpoint, per namespace.
export async function exportState(n) {
  const out = {};
  const nss = (await okJson(n, '/api/v1/namespaces')).namespaces;
  out.namespaces = nss;
  for (const ns of nss) {
    const k = ns.key;
    out[k] = {
      flags: (await okJson(n, `/api/v1/namespaces/${k}/flags`)).flags,
      segments: (await okJson(n, `/api/v1/namespaces/${k}/segments`)).segments,
      snapshot: await okJson(n, `/internal/v1/evaluation/snapshot/namespace/${k}`),
    };
    for (const f of out[k].flags) {
      f.rules = (await okJson(n, `/api/v1/namespaces/${k}/flags/${f.key}/rules`)).rules;
      f.rollouts = (await okJson(n, `/api/v1/namespaces/${k}/flags/${f.key}/rollouts`)).rules;
    }
  }
  return out;
}

// Evaluation answers without the per-request fields (request id, timings).
export function stripVolatile(v) {
  if (Array.isArray(v)) return v.map(stripVolatile);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) if (!['requestId', 'requestDurationMillis', 'timestamp'].includes(k)) o[k] = stripVolatile(x);
    return o;
  }
  return v;
}

export async function evaluateCorpus(n, requests) {
  const answers = [];
  for (let i = 0; i < requests.length; i += 200) {
    const r = await call(n.url, 'POST', '/evaluate/v1/batch', { requests: requests.slice(i, i + 200) });
    if (r.status !== 200) throw new Error(`${n.name} batch: ${r.status} ${r.text}`);
    answers.push(...r.json.responses);
  }
  return stripVolatile(answers);
}

// A deterministic pseudo-random generator, so a failing run can be replayed.
export function rng(seed) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (a) => a[Math.floor(next() * a.length)] };
}
