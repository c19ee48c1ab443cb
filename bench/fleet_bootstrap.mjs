// A fleet bootstrapping at once (issue 11's scale, the dump path): a primary on its SQLite file
// with N flags (default 100,000, imported), then R replicas (default 4) that start empty at the
// same moment, as a fleet restarting after an outage does. Prints how long until every replica
// serves the primary's version, the primary's peak memory (VmHWM) before and after, the dumps it
// built and gave out again (edgeflag_replication_dumps_built_total / _reused_total), and each
// replica's answer to the same evaluations (they must equal the primary's: exit 1 otherwise).
// Another build is measured by running it again with EDGEFLAG_BIN=PATH (the nodes' binary is fixed
// when tests/compat/server.mjs is loaded).
//
// Prints figures; asserts nothing about time or memory.
// usage: node bench/fleet_bootstrap.mjs [--build build] [--flags 100000] [--replicas 4]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../tests/compat/tmp.mjs';
import { namespaceYaml } from './workload.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const build = path.resolve(root, opt('--build', 'build'));
const bin = process.env.EDGEFLAG_BIN || path.join(build, 'edgeflag');
process.env.EDGEFLAG_BIN = bin; // before tests/compat/server.mjs loads: the nodes run this binary
const { node, stopAll, evaluateCorpus, rng, version, waitVersion, statusMiB } = await import('../tests/cluster/cluster.mjs');
const flags = Number(opt('--flags', '100000'));
const replicas = Number(opt('--replicas', '4'));
const tmp = tempDir('ef-fleet-');

async function metric(n, name) {
  const text = await (await fetch(n.url + '/metrics')).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null; // null: a build without the metric
}

async function run(file) {
  const dir = fs.mkdtempSync(path.join(tmp, 'c-'));
  const primary = node('primary', { dir: path.join(dir, 'p'), args: ['--threads', '2'] });
  fs.mkdirSync(primary.dir);
  execFileSync(bin, ['import', '--db', path.join(primary.dir, 'edgeflag.db'), file], { stdio: 'ignore' });
  const fleet = Array.from({ length: replicas }, (_, i) =>
    node(`replica${i}`, { dir: path.join(dir, `r${i}`), upstream: () => primary.url, args: ['--threads', '2'] }));
  for (const r of fleet) fs.mkdirSync(r.dir);
  const nodes = [primary, ...fleet];
  try {
    await primary.start();
    const v0 = await version(primary);
    const peakBefore = statusMiB(primary, 'VmHWM');
    const t0 = performance.now();
    await Promise.all(fleet.map((r) => r.start()));
    await Promise.all(fleet.map((r) => waitVersion(r, v0, 600000)));
    const allMs = performance.now() - t0;
    const out = {
      allMs,
      peakBefore,
      peakAfter: statusMiB(primary, 'VmHWM'),
      built: await metric(primary, 'edgeflag_replication_dumps_built_total'),
      reused: await metric(primary, 'edgeflag_replication_dumps_reused_total'),
    };
    const r = rng(11);
    const reqs = Array.from({ length: 500 }, (_, i) => ({
      namespaceKey: 'default', flagKey: `f${r.int(flags)}`, entityId: `user-${i}`, context: { plan: `p${r.int(12)}` },
    }));
    const want = JSON.stringify(await evaluateCorpus(primary, reqs));
    out.differ = 0;
    for (const rep of fleet) if (JSON.stringify(await evaluateCorpus(rep, reqs)) !== want) out.differ++;
    if (out.differ) process.exitCode = 1;
    return out;
  } finally {
    await stopAll(nodes);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const file = path.join(tmp, 'flags.yml');
fs.writeFileSync(file, namespaceYaml('default', flags, 10));
const o = await run(file);
const dumps = o.built === null ? 'dumps not counted by this build' : `dumps built ${o.built}, given again ${o.reused}`;
console.log(`fleet bootstrap (${path.relative(root, bin) || bin}): ${flags.toLocaleString('en-US')} flags, ${replicas} replicas ` +
  `starting empty at once: every replica serving in ${(o.allMs / 1000).toFixed(1)} s; primary's peak ` +
  `${o.peakBefore.toFixed(0)} MiB after its start, ${o.peakAfter.toFixed(0)} MiB after the fleet's dumps; ${dumps}; ` +
  `${o.differ} of ${replicas} replicas answer differently from the primary`);
fs.rmSync(tmp, { recursive: true, force: true });
