// Starts a real edgeflag server for a test: `edgeflag serve --listen 127.0.0.1:0 ...` in a fresh
// temporary directory, waits for its "listening on URL" line, and stops it with SIGTERM.
// The binary is $EDGEFLAG_BIN, else build/edgeflag at the repository root.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './tmp.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const edgeflagBin = process.env.EDGEFLAG_BIN ? path.resolve(process.env.EDGEFLAG_BIN) : path.join(root, 'build/edgeflag');

export async function startServer(args = [], { env = {}, dir, db = true } = {}) {
  const tmp = dir ?? tempDir('ef-srv-'); // removed when this process exits; a `dir` passed in is the caller's
  const hasSource = args.some((a) => /^--(db|dir|snapshot|upstream)\b/.test(a));
  const full = ['serve', '--listen', '127.0.0.1:0', ...(hasSource || !db ? [] : ['--db', path.join(tmp, 'edgeflag.db')]), ...args];
  const child = spawn(edgeflagBin, full, { cwd: tmp, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start: ' + stderr)), 10000);
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
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return {
    url,
    dir: tmp,
    child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

// JSON over fetch with the status kept, for API calls in tests.
export async function call(url, method, pathname, body, headers = {}) {
  const res = await fetch(url + pathname, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, json, text, headers: res.headers };
}
