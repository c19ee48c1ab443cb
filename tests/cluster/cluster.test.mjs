// A primary, two replicas and a replica chained behind one of them, on loopback. Random writes go
// through random nodes while observers read every node; then, once quiet, every node must export
// the same state and evaluate a generated corpus identically; versions seen on a node never go
// back; every acknowledged write is there; a write through a replica is readable there at once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { node, stopAll, call, waitFor, version, exportState, evaluateCorpus, rng, cluster, sleep } from './cluster.mjs';

const nodes = [];
after(() => stopAll(nodes));

async function ok(n, method, p, body) {
  const r = await call(n.url, method, p, body);
  if (r.status !== 200) throw new Error(`${n.name} ${method} ${p}: ${r.status} ${r.text}`);
  return r;
}

test('random writes through random nodes converge everywhere', { timeout: 60000 }, async () => {
  const primary = node('primary');
  nodes.push(primary);
  await primary.start();
  const iad = node('iad', { upstream: primary.url });
  const dfw = node('dfw', { upstream: primary.url });
  nodes.push(iad, dfw);
  await Promise.all([iad.start(), dfw.start()]);
  const edge = node('edge', { upstream: dfw.url }); // chained: primary -> dfw -> edge
  nodes.push(edge);
  await edge.start();
  const all = [primary, iad, dfw, edge];

  await ok(primary, 'POST', '/api/v1/namespaces', { key: 'prod', name: 'Prod' });

  // observers: one sequential reader per node, so the order of its answers is the order seen
  const seen = new Map(all.map((n) => [n.name, []]));
  let observing = true;
  const observers = all.map(async (n) => {
    while (observing) {
      const v = await version(n);
      seen.get(n.name).push(v);
      await sleep(5);
    }
  });

  const acked = new Map(); // "ns/key" -> expected enabled
  const r = rng(20261127);
  const worker = async (w) => {
    const mine = []; // flags of this worker: {ns, key, type, variants, segs, rules, rollouts, enabled}
    const segs = [];
    for (let i = 0; i < 30; i++) {
      const via = r.pick(all);
      const ns = r.pick(['default', 'prod']);
      const P = `/api/v1/namespaces/${ns}`;
      const op = mine.length < 2 ? 0 : r.int(6);
      if (op === 0) {
        const f = { ns, key: `w${w}-f${i}`, type: r.pick(['VARIANT_FLAG_TYPE', 'BOOLEAN_FLAG_TYPE']), enabled: r.next() < 0.5, variants: [], rules: 0, rollouts: 0 };
        await ok(via, 'POST', `${P}/flags`, { key: f.key, name: f.key, type: f.type, enabled: f.enabled });
        mine.push(f);
        acked.set(`${ns}/${f.key}`, f.enabled);
        // read-your-write on the node that took the write
        const back = await call(via.url, 'GET', `${P}/flags/${f.key}`);
        assert.equal(back.status, 200, `${via.name} must serve its own write ${f.key}: ${back.text}`);
      } else if (op === 1) {
        const f = r.pick(mine);
        f.enabled = !f.enabled;
        await ok(via, 'PUT', `/api/v1/namespaces/${f.ns}/flags/${f.key}`, { name: f.key, enabled: f.enabled });
        acked.set(`${f.ns}/${f.key}`, f.enabled);
        const back = await call(via.url, 'GET', `/api/v1/namespaces/${f.ns}/flags/${f.key}`);
        assert.equal(back.json.enabled, f.enabled, `${via.name} must serve its own update of ${f.key}`);
      } else if (op === 2 || op === 3) {
        const f = r.pick(mine.filter((x) => x.type === 'VARIANT_FLAG_TYPE').concat(mine.slice(0, 1)));
        if (f.type !== 'VARIANT_FLAG_TYPE') continue;
        const v = await ok(via, 'POST', `/api/v1/namespaces/${f.ns}/flags/${f.key}/variants`, { key: `v${i}`, name: `v${i}` });
        f.variants.push(v.json.id);
      } else if (op === 4) {
        const s = { ns, key: `w${w}-s${i}` };
        await ok(via, 'POST', `${P}/segments`, { key: s.key, name: s.key, matchType: 'ALL_MATCH_TYPE' });
        await ok(via, 'POST', `${P}/segments/${s.key}/constraints`, { type: 'STRING_COMPARISON_TYPE', property: 'tier', operator: 'eq', value: r.pick(['gold', 'silver']) });
        segs.push(s);
      } else {
        const f = r.pick(mine);
        const s = segs.find((x) => x.ns === f.ns);
        if (f.type === 'VARIANT_FLAG_TYPE' && f.variants.length && s) {
          const rule = await ok(via, 'POST', `/api/v1/namespaces/${f.ns}/flags/${f.key}/rules`, { segmentKey: s.key, rank: ++f.rules });
          await ok(via, 'POST', `/api/v1/namespaces/${f.ns}/flags/${f.key}/rules/${rule.json.id}/distributions`, { variantId: r.pick(f.variants), rollout: 100 });
        } else if (f.type === 'BOOLEAN_FLAG_TYPE') {
          await ok(via, 'POST', `/api/v1/namespaces/${f.ns}/flags/${f.key}/rollouts`, { rank: ++f.rollouts, threshold: { percentage: 10 + r.int(80), value: r.next() < 0.5 } });
        }
      }
    }
    return mine;
  };
  const flags = (await Promise.all([0, 1, 2].map(worker))).flat();

  const head = await version(primary);
  for (const n of all) await waitFor(`${n.name} to reach version ${head}`, async () => (await version(n)) >= head, 5000);
  observing = false;
  await Promise.all(observers);

  for (const [name, vs] of seen) {
    assert.ok(vs.length > 5, `observer of ${name} saw too little`);
    for (let i = 1; i < vs.length; i++) assert.ok(vs[i] >= vs[i - 1], `${name}: version went back from ${vs[i - 1]} to ${vs[i]}`);
  }

  const ref = await exportState(primary);
  for (const [key, enabled] of acked) {
    const [ns, k] = key.split('/');
    const f = ref[ns].flags.find((x) => x.key === k);
    assert.ok(f, `acknowledged flag ${key} is missing on the primary`);
    assert.equal(f.enabled, enabled, `acknowledged update of ${key} lost`);
  }
  for (const n of [iad, dfw, edge]) assert.deepEqual(await exportState(n), ref, `${n.name} differs from the primary`);

  const corpus = [];
  for (const f of flags) for (let e = 0; e < 12; e++) corpus.push({ namespaceKey: f.ns, flagKey: f.key, entityId: `user-${e}`, context: { tier: e % 3 ? 'gold' : 'silver' } });
  const want = await evaluateCorpus(primary, corpus);
  for (const n of [iad, dfw, edge]) assert.deepEqual(await evaluateCorpus(n, corpus), want, `${n.name} evaluates differently`);

  const st = await cluster(edge);
  assert.equal(st.role, 'replica');
  assert.equal(st.upstream, dfw.url);
  assert.equal(st.connected, true);
  assert.equal(st.version, head);
  const dst = await cluster(dfw);
  assert.equal(dst.downstream.length, 1, 'dfw serves the chained replica');
  assert.equal((await cluster(primary)).downstream.length, 2);
});
