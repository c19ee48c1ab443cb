#!/usr/bin/env node
// Differential test: edgeflag's engine (`edgeflag eval`) against Flipt's own evaluation engine
// (@flipt-io/flipt-client-js, Rust flipt-evaluation in WASM) on the same snapshot and requests.
// Cases: the seeded generator (gen.mjs) for each seed, plus hand-written edge cases (extra_cases.mjs).
// Compared: match, reason, variantKey, variantAttachment (absent == ""), segmentKeys (as a set),
// enabled, batch response type, and the error kind. Prints one line per case set and a closing
// "N passed, M failed" line; exits 1 on any mismatch.
//
// usage: node diff_eval.mjs --edgeflag ../../build/edgeflag [--seeds 1,2,3,4,5] [--requests 20000]
//                           [--flags 200] [--segments 50] [--no-extra] [--show 5]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { generate } from './gen.mjs';
import { createFliptEngine } from './engine.mjs';
import { extraCases } from './extra_cases.mjs';
import { tempDir } from './tmp.mjs';

function parseArgs(argv) {
  const o = { edgeflag: '../../build/edgeflag', seeds: [1, 2, 3, 4, 5], requests: 20000, flags: 200, segments: 50, extra: true, show: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--edgeflag') o.edgeflag = next();
    else if (a === '--seeds') o.seeds = next().split(',').map(Number);
    else if (a === '--requests') o.requests = parseInt(next(), 10);
    else if (a === '--flags') o.flags = parseInt(next(), 10);
    else if (a === '--segments') o.segments = parseInt(next(), 10);
    else if (a === '--no-extra') o.extra = false;
    else if (a === '--show') o.show = parseInt(next(), 10);
    else throw new Error('unknown argument ' + a);
  }
  return o;
}

const sameSet = (a, b) => {
  const x = [...(a ?? [])].sort();
  const y = [...(b ?? [])].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

// What Flipt's engine said, in the shape edgeflag's server body has, for comparison.
function expectedOf(exp) {
  if (exp.error !== undefined) return { error: exp.errorKind };
  if (exp.type === 'batch') {
    const out = { responseType: exp.responseType };
    if (exp.responseType === 'ERROR_EVALUATION_RESPONSE_TYPE') Object.assign(out, { flagKey: exp.flagKey, namespaceKey: exp.namespaceKey, reason: exp.reason });
    else if (exp.responseType === 'VARIANT_EVALUATION_RESPONSE_TYPE')
      Object.assign(out, { match: exp.match, reason: exp.reason, variantKey: exp.variantKey, variantAttachment: exp.variantAttachment ?? '', segmentKeys: exp.segmentKeys, flagKey: exp.flagKey });
    else Object.assign(out, { enabled: exp.enabled, reason: exp.reason, segmentKeys: exp.segmentKeys, flagKey: exp.flagKey });
    return out;
  }
  if (exp.type === 'boolean') return { enabled: exp.enabled, reason: exp.reason, segmentKeys: exp.segmentKeys, flagKey: exp.flagKey };
  return { match: exp.match, reason: exp.reason, variantKey: exp.variantKey, variantAttachment: exp.variantAttachment ?? '', segmentKeys: exp.segmentKeys, flagKey: exp.flagKey };
}

function gotOf(type, got) {
  if (got.code !== undefined) {
    if (got.code === 5) return { error: 'not_found' };
    if (got.code === 3 && /^flag type .* invalid$/.test(got.message)) return { error: 'type_mismatch' };
    return { error: `code ${got.code}: ${got.message}` };
  }
  if (type === 'batch') {
    const out = { responseType: got.type };
    if (got.errorResponse) Object.assign(out, got.errorResponse);
    const v = got.variantResponse, b = got.booleanResponse;
    if (v) Object.assign(out, { match: v.match, reason: v.reason, variantKey: v.variantKey, variantAttachment: v.variantAttachment, segmentKeys: v.segmentKeys, flagKey: v.flagKey });
    if (b) Object.assign(out, { enabled: b.enabled, reason: b.reason, segmentKeys: b.segmentKeys, flagKey: b.flagKey });
    return out;
  }
  if (type === 'boolean') return { enabled: got.enabled, reason: got.reason, segmentKeys: got.segmentKeys, flagKey: got.flagKey };
  return { match: got.match, reason: got.reason, variantKey: got.variantKey, variantAttachment: got.variantAttachment, segmentKeys: got.segmentKeys, flagKey: got.flagKey };
}

function equal(e, g) {
  const keys = new Set([...Object.keys(e), ...Object.keys(g)]);
  for (const k of keys) {
    if (k === 'segmentKeys') {
      if (!sameSet(e[k], g[k])) return false;
    } else if (e[k] !== g[k]) return false;
  }
  return true;
}

async function runCase(o, name, c, tmp) {
  const snapPath = path.join(tmp, `${name}.snapshot.json`);
  fs.writeFileSync(snapPath, JSON.stringify(c.snapshot));
  const input = c.requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const args = ['eval', '--snapshot', snapPath];
  if (c.namespace && c.namespace !== c.snapshot.namespace.key) args.push('--namespace', c.namespace);
  const run = spawnSync(o.edgeflag, args, { input, maxBuffer: 1 << 30 });
  if (run.status !== 0) throw new Error(`${name}: edgeflag eval exited ${run.status}: ${run.stderr}`);
  const lines = run.stdout.toString().split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length !== c.requests.length) throw new Error(`${name}: ${lines.length} answers for ${c.requests.length} requests`);

  const engine = await createFliptEngine(c.snapshot, { namespace: c.namespace ?? c.snapshot.namespace.key, fast: true });
  let compared = 0, skipped = 0, bad = 0;
  const examples = [];
  for (let i = 0; i < c.requests.length; i++) {
    const r = c.requests[i];
    const exp = engine.evaluate(r);
    // The JS wrapper rejects empty flag keys and entity ids before the engine runs; Flipt's server
    // does not (it evaluates them), so those requests have no engine answer to compare with.
    if (exp.errorKind === 'client_validation') {
      skipped++;
      continue;
    }
    const e = expectedOf(exp);
    const g = gotOf(r.type ?? 'variant', JSON.parse(lines[i]));
    compared++;
    if (!equal(e, g)) {
      bad++;
      if (examples.length < o.show) examples.push({ i, request: r, flipt: e, edgeflag: g });
    }
  }
  engine.close();
  return { compared, skipped, bad, examples };
}

const o = parseArgs(process.argv.slice(2));
const tmp = tempDir('ef-diff-');
const sets = o.seeds.map((seed) => [`seed${seed}`, () => generate({ seed, flags: o.flags, requests: o.requests, segments: o.segments, namespace: 'default' })]);
if (o.extra) for (const [name, c] of Object.entries(extraCases())) sets.push([name, () => c]);
let total = 0, failed = 0, skippedAll = 0;
for (const [name, make] of sets) {
  const c = make();
  const res = await runCase(o, name, c, tmp);
  total += res.compared;
  failed += res.bad;
  skippedAll += res.skipped;
  console.log(`${name}: ${res.compared} requests compared, ${res.bad} mismatches${res.skipped ? `, ${res.skipped} skipped (rejected by the JS wrapper)` : ''}`);
  for (const ex of res.examples) console.log('  MISMATCH ' + JSON.stringify(ex));
}
console.log(`differential: ${total} requests against Flipt's engine, ${failed} mismatches`);
console.log(`${total - failed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
