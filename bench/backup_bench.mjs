#!/usr/bin/env node
// The recovery point of continuous backup (docs/backup.md): how far the bucket runs behind the
// store under write load, in seq and in ms. A primary with --backup ships to the test S3 server
// (tests/backup/s3server.mjs: s3rver behind a SigV4 verifier) while WRITERS clients create flags
// as fast as they are answered for SECONDS; /metrics is sampled every 20 ms. Per acknowledged
// write: the time from its acknowledgement until a sample shows edgeflag_backup_shipped_seq at or
// past its seq (so figures carry up to 20 ms of sampling). Per sample: store seq - shipped seq.
// usage: node bench/backup_bench.mjs [--build build] [--seconds 8] [--writers 4] [--batch-ms 200,50]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../tests/compat/tmp.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const bin = path.resolve(root, opt('--build', 'build'), 'edgeflag');
const seconds = Number(opt('--seconds', '8'));
const writers = Number(opt('--writers', '4'));
const batches = opt('--batch-ms', '200,50').split(',').map(Number);

function start(cmd, argv, re, what, env = process.env) {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${what} did not start: ${err}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(re);
      if (m) {
        clearTimeout(t);
        resolve({ child, url: m[1], stderr: () => err });
      }
    });
    child.on('exit', (c) => reject(new Error(`${what} exited with ${c}: ${err}`)));
  });
}

const pct = (a, p) => (a.length ? a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))] : NaN);
const sorted = (a) => [...a].sort((x, y) => x - y);

async function run(batchMs) {
  const dir = tempDir('ef-bk-bench-');
  const s3 = await start(process.execPath, [path.join(root, 'tests/backup/s3server.mjs'), '0', path.join(dir, 's3'), 'bk'], /s3 listening on (http:\/\/\S+)/, 's3 server');
  const env = { ...process.env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_ENDPOINT_URL: s3.url };
  const p = await start(bin, ['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'p.db'), '--backup', 's3://bk/bench', '--backup-batch-ms', String(batchMs)], /listening on (http:\/\/\S+)/, 'edgeflag', env);
  const acks = []; // [seq, t]
  const samples = []; // [t, storeSeq, shippedSeq]
  let stop = false;
  const sampler = (async () => {
    while (!stop) {
      const r = await fetch(p.url + '/metrics');
      const t = performance.now();
      const text = await r.text();
      const shipped = Number(text.match(/^edgeflag_backup_shipped_seq (\d+)$/m)[1]);
      samples.push([t, Number(r.headers.get('x-edgeflag-version')), shipped]);
      await new Promise((res) => setTimeout(res, 20));
    }
  })();
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const writer = async (w) => {
    while (performance.now() < end) {
      const key = `f${w}-${n++}`;
      const r = await fetch(p.url + '/api/v1/namespaces/default/flags', { method: 'POST', body: JSON.stringify({ key, name: key, type: 'BOOLEAN_FLAG_TYPE' }) });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`write ${key}: ${r.status}`);
      acks.push([Number(r.headers.get('x-edgeflag-version')), performance.now()]);
    }
  };
  await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  const last = Math.max(...acks.map((a) => a[0]));
  const drainEnd = performance.now() + 30000;
  while (samples.at(-1)[2] < last && performance.now() < drainEnd) await new Promise((res) => setTimeout(res, 20));
  stop = true;
  await sampler;
  // ms from each ack to the first sample that shows it shipped
  const ms = [];
  let j = 0;
  for (const [seq, t] of sorted(acks.map((a) => a[0])).map((s) => acks.find((a) => a[0] === s))) {
    while (j < samples.length && (samples[j][2] < seq || samples[j][0] < t)) j++;
    if (j < samples.length) ms.push(samples[j][0] - t);
  }
  const lag = sorted(samples.filter((s) => s[0] < end).map((s) => Math.max(0, s[1] - s[2])));
  const m = sorted(ms);
  const metrics = await (await fetch(p.url + '/metrics')).text();
  const num = (name) => Number(metrics.match(new RegExp(`^${name} (\\d+)$`, 'm'))[1]);
  console.log(
    `batch ${String(batchMs).padStart(3)} ms: ${(acks.length / seconds).toFixed(0)} writes/s from ${writers} writers, ` +
      `${num('edgeflag_backup_batches_total')} batches, ${num('edgeflag_backup_snapshots_total')} snapshot(s), ${num('edgeflag_backup_failures_total')} failures; ` +
      `behind in seq p50 ${pct(lag, 50)} p99 ${pct(lag, 99)} max ${lag.at(-1)}; ` +
      `ack->in bucket ms p50 ${pct(m, 50).toFixed(0)} p99 ${pct(m, 99).toFixed(0)} max ${m.at(-1).toFixed(0)} (${m.length}/${acks.length} writes)`,
  );
  p.child.kill('SIGTERM');
  s3.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  fs.rmSync(dir, { recursive: true, force: true });
}

console.log(`load ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores (figures taken under that load)`);
for (const b of batches) await run(b);
