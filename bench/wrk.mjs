// wrk.mjs - for the HTTP benchmarks: wrk's request script, one wrk run pinned to a CPU and its
// requests per second, and a primary on `--db` started the way users run it (state written
// through the API). One place for what http_bench, http_instructions, http_ab, allocator_ab and
// waiting_bench each wrote out before.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listeningUrl } from './listen.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// A wrk script in dir that sends body (a string) with method as JSON; returns its path.
export function wrkScript(dir, name, method, body) {
  const f = path.join(dir, name);
  fs.writeFileSync(f, `wrk.method = "${method}"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`);
  return f;
}

// Fails the benchmark, with a line saying how to get it, when wrk is not installed.
export function requireWrk(who) {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) {
    console.error(`${who}: wrk is missing (scripts/install-deps.sh bench installs it)`);
    process.exit(1);
  }
}

// wrk -t1 -cN -dS on CPU cpu against url; its requests per second. Throws when wrk fails or any
// answer was not a 2xx or 3xx: a figure made of error answers is not the request's.
export function wrkRps(url, script, { conns = 64, seconds = 4, cpu = '1' } = {}) {
  const run = spawnSync('taskset', ['-c', String(cpu), 'wrk', '-t1', `-c${conns}`, `-d${seconds}s`, '-s', script, url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(run.stdout ?? '')?.[1] ?? 0);
  if (run.status !== 0 || !rps || /Non-2xx/.test(run.stdout)) throw new Error(`wrk against ${url} failed: ${run.stdout}${run.stderr}`);
  return rps;
}

// `bin serve --db db` on CPU 0 with one server thread, the workload's flags created through the
// API, and the measured request checked to answer 200. Returns { child, url }; the caller stops
// the child.
export async function startPrimary(bin, db, workload, { env = process.env, logLevel = 'error', name = path.basename(bin) } = {}) {
  const child = spawn('taskset', ['-c', '0', bin, 'serve', '--listen', '127.0.0.1:0', '--threads', '1', '--log-level', logLevel, '--db', db],
    { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await listeningUrl(child, name);
  const { createThroughApi } = await import(path.join(root, 'tests/compat/populate.mjs'));
  await createThroughApi(url, workload.snapshot);
  const r = await fetch(url + '/evaluate/v1/variant', { method: 'POST', body: workload.body });
  if (r.status !== 200) throw new Error(`${name}: the measured request answers ${r.status}`);
  return { child, url };
}

export const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
