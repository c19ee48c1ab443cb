// Many namespaces through a replica's bootstrap (issue 11, "1,000 namespaces"): a replica that
// starts empty loads the primary's dump of 400 namespaces; requests that arrive meanwhile with
// X-Edgeflag-Min-Version set to the primary's version must be answered from the whole state, every
// namespace there. The replica once raised its version as the dump's first namespace was published
// and released those requests while the others were still missing: they got "flag not found"
// (333 of 2,000 answers at 1,000 namespaces in bench/run-scale.sh).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { node, stopAll, call } from './cluster.mjs';
import { edgeflagBin } from '../compat/server.mjs';

const nodes = [];
after(() => stopAll(nodes));

const NAMESPACES = 400;
const FLAGS = 5;

test('requests waiting for a dump of many namespaces see all of them', async () => {
  const primary = node('primary');
  nodes.push(primary);
  const docs = [];
  for (let n = 0; n < NAMESPACES; n++) {
    const lines = ['version: "1.4"', `namespace: ns${n}`, 'segments:', '  - key: all', '    name: all',
      '    match_type: ALL_MATCH_TYPE', 'flags:'];
    for (let f = 0; f < FLAGS; f++)
      lines.push(`  - key: f${f}`, `    name: f${f}`, '    type: VARIANT_FLAG_TYPE', '    enabled: true',
        '    variants:', '      - key: "on"', '    rules:', '      - segment: all', '        distributions:',
        '          - variant: "on"', '            rollout: 100');
    docs.push(lines.join('\n') + '\n');
  }
  const file = path.join(primary.dir, 'many.yml');
  fs.writeFileSync(file, docs.join('---\n'));
  execFileSync(edgeflagBin, ['import', '--db', path.join(primary.dir, 'edgeflag.db'), file], { stdio: 'pipe' });
  await primary.start();
  const v0 = (await call(primary.url, 'GET', '/health')).headers.get('x-edgeflag-version');
  assert.ok(Number(v0) > 0);

  const replica = node('replica', { upstream: primary.url, args: ['--min-version-wait', '30000'] });
  nodes.push(replica);
  await replica.start();
  // at once, while the replica is still taking its dump: every namespace, in batches of 100
  const batches = [];
  for (let n = 0; n < NAMESPACES; n += 100) {
    const requests = [];
    for (let k = n; k < n + 100; k++) requests.push({ namespaceKey: `ns${k}`, flagKey: `f${k % FLAGS}`, entityId: `e${k}`, context: {} });
    batches.push(call(replica.url, 'POST', '/evaluate/v1/batch', { requests }, { 'x-edgeflag-min-version': v0 }));
  }
  const answers = await Promise.all(batches);
  const missing = [];
  for (const a of answers) {
    assert.equal(a.status, 200, a.text);
    assert.ok(Number(a.headers.get('x-edgeflag-version')) >= Number(v0));
    for (const r of a.json.responses)
      if (r.type !== 'VARIANT_EVALUATION_RESPONSE_TYPE' || !r.variantResponse.match)
        missing.push(r.errorResponse?.namespaceKey ?? JSON.stringify(r));
  }
  assert.deepEqual(missing, [], `${missing.length} of ${NAMESPACES} namespaces answered as missing: ${missing.slice(0, 5).join(', ')}…`);
  // and the replica's whole state is the primary's: each namespace's flags listed
  for (const n of [0, NAMESPACES / 2, NAMESPACES - 1]) {
    const r = await call(replica.url, 'GET', `/api/v1/namespaces/ns${n}/flags`);
    assert.equal(r.json.flags.length, FLAGS);
  }
});
