// The evaluation benches' workload, in one place: tests/compat/gen.mjs with seed 42, 200 flags,
// 50 segments, and the well-formed requests out of 50,000 (about 14 context keys each), written
// as a snapshot document and a JSON-lines request file in a fresh temporary directory for
// build/bench_eval. The caller removes `dir` when done.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function evalWorkload(prefix = 'ef-bench-') {
  const { generate } = await import(path.join(root, 'tests/compat/gen.mjs'));
  const c = generate({ seed: 42, flags: 200, requests: 50000, segments: 50, namespace: 'default' });
  const byKey = new Map(c.snapshot.flags.map((f) => [f.key, f]));
  const reqs = c.requests.filter((r) => {
    const f = byKey.get(r.flagKey);
    if (!f) return false;
    const isBool = f.type === 'BOOLEAN_FLAG_TYPE';
    return (r.type === 'boolean' && isBool) || (r.type === 'variant' && !isBool);
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const snapFile = path.join(dir, 'snapshot.json');
  const reqFile = path.join(dir, 'requests.jsonl');
  fs.writeFileSync(snapFile, JSON.stringify(c.snapshot));
  fs.writeFileSync(reqFile, reqs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return { snapshot: c.snapshot, reqs, dir, snapFile, reqFile };
}

// The HTTP benches' workload: the same generator with 2,000 requests; `body` is one
// /evaluate/v1/variant request with 12 or more context keys (the one http_bench.mjs and
// http_instructions.mjs send), `batchBody` 100 variant requests for /evaluate/v1/batch.
export async function httpWorkload() {
  const { generate } = await import(path.join(root, 'tests/compat/gen.mjs'));
  const c = generate({ seed: 42, flags: 200, requests: 2000, segments: 50, namespace: 'default' });
  const byKey = new Map(c.snapshot.flags.map((f) => [f.key, f]));
  const variantReqs = c.requests.filter((r) => r.type === 'variant' && byKey.get(r.flagKey)?.type !== 'BOOLEAN_FLAG_TYPE' && byKey.has(r.flagKey));
  const one = variantReqs.find((r) => Object.keys(r.context).length >= 12) ?? variantReqs[0];
  const body = JSON.stringify({ namespaceKey: 'default', flagKey: one.flagKey, entityId: one.entityId, context: one.context });
  const batchBody = JSON.stringify({ requests: variantReqs.slice(0, 100).map((r) => ({ flagKey: r.flagKey, entityId: r.entityId, context: r.context })) });
  return { snapshot: c.snapshot, body, batchBody };
}

// One namespace of `flags` variant flags (f0, f1, ...) as a declarative document: two variants
// each, and a rule on one of `segments` segments (seg0, seg1, ...: plan eq p0, p1, ...) that splits
// 50/50. The store benches' namespace (bench_store's has the same shape).
export function namespaceYaml(ns, flags, segments = 1) {
  const out = ['version: "1.4"', `namespace: ${ns}`, 'segments:'];
  for (let s = 0; s < segments; s++)
    out.push(`  - key: seg${s}`, `    name: seg${s}`, '    match_type: ALL_MATCH_TYPE', '    constraints:',
      '      - type: STRING_COMPARISON_TYPE', '        property: plan', '        operator: eq', `        value: p${s}`);
  out.push('flags:');
  for (let i = 0; i < flags; i++)
    out.push(`  - key: f${i}`, `    name: f${i}`, '    type: VARIANT_FLAG_TYPE', '    enabled: true',
      '    variants:', '      - key: "on"', '      - key: "off"', '    rules:', `      - segment: seg${i % segments}`,
      '        distributions:', '          - variant: "on"', '            rollout: 50',
      '          - variant: "off"', '            rollout: 50');
  return out.join('\n') + '\n';
}
