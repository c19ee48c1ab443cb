#!/usr/bin/env node
// The client library's answers equal the server's /evaluate/v1 answers on generated corpora.
// For each seed: tests/compat/gen.mjs makes a snapshot and requests; `edgeflag serve --snapshot`
// serves it; client_eval (libedgeflag) bootstraps from that node and evaluates every request
// in-process; each request is also POSTed to /evaluate/v1/{variant,boolean}; every field the
// library returns must equal the server's. Fails on any mismatch, and if too few requests were
// compared for the test to mean anything.
// usage: node parity.mjs --edgeflag BIN --client-eval BIN [--seeds 1,2,3] [--requests 3000]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
process.env.EDGEFLAG_BIN = path.resolve(opt('--edgeflag', path.join(here, '../../build/edgeflag')));
const tool = path.resolve(opt('--client-eval', path.join(here, '../../build/client_eval')));
const seeds = opt('--seeds', '1,2,3').split(',').map(Number);
const nReq = Number(opt('--requests', '3000'));
const { generate } = await import(path.join(here, '../compat/gen.mjs'));
const { startServer } = await import(path.join(here, '../compat/server.mjs'));

function expected(status, body) {
  if (status === 404) return { error: 'notfound' };
  if (status === 400) return { error: /flag type .* invalid/.test(body.message) ? 'wrongtype' : 'invalid' };
  if (status !== 200) throw new Error(`server answered ${status}: ${JSON.stringify(body)}`);
  if ('enabled' in body) return { enabled: body.enabled, reason: body.reason, segmentKeys: body.segmentKeys };
  return { match: body.match, reason: body.reason, variantKey: body.variantKey, variantAttachment: body.variantAttachment, segmentKeys: body.segmentKeys };
}

let compared = 0;
let mismatches = 0;
const kinds = {};
for (const seed of seeds) {
  const c = generate({ seed, flags: 60, requests: nReq, segments: 20, namespace: 'default' });
  const reqs = c.requests.filter((r) => r.type !== 'batch' && !r.flagKey.includes('\0') && !r.entityId.includes('\0'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ef-parity-'));
  const snap = path.join(tmp, 'snapshot.json');
  fs.writeFileSync(snap, JSON.stringify(c.snapshot));
  const srv = await startServer(['--snapshot', snap]);
  try {
    const run = spawnSync(tool, ['--url', srv.url], { input: reqs.map((r) => JSON.stringify(r)).join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 28 });
    if (run.status !== 0) throw new Error(`client_eval failed (${run.status}): ${run.stderr}`);
    const ours = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
    if (ours.length !== reqs.length) throw new Error(`client_eval answered ${ours.length} of ${reqs.length}`);
    // the server's answers, 16 requests in flight
    const theirs = new Array(reqs.length);
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < reqs.length) {
        const i = next++;
        const r = reqs[i];
        const res = await fetch(`${srv.url}/evaluate/v1/${r.type}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ namespaceKey: 'default', flagKey: r.flagKey, entityId: r.entityId, context: r.context }),
        });
        theirs[i] = expected(res.status, await res.json());
      }
    }));
    for (let i = 0; i < reqs.length; i++) {
      const want = JSON.stringify(theirs[i]);
      const got = JSON.stringify(ours[i]);
      const kind = theirs[i].error ?? theirs[i].reason;
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      compared++;
      if (want !== got) {
        if (mismatches++ < 10) console.error(`seed ${seed} request ${i} ${JSON.stringify(reqs[i])}\n  server:  ${want}\n  library: ${got}`);
      }
    }
  } finally {
    await srv.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
console.log(`client parity: ${compared} requests over seeds ${seeds.join(',')}, ${mismatches} mismatches; outcomes ${JSON.stringify(kinds)}`);
if (mismatches > 0) process.exit(1);
// a corpus that exercises nothing proves nothing: every outcome must occur
for (const k of ['MATCH_EVALUATION_REASON', 'DEFAULT_EVALUATION_REASON', 'FLAG_DISABLED_EVALUATION_REASON', 'notfound', 'wrongtype']) {
  if (!kinds[k]) {
    console.error(`client parity: no request ended in ${k}`);
    process.exit(1);
  }
}
if (compared < seeds.length * nReq * 0.8) process.exit(1);
