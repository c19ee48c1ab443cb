// Builds a namespace's state through the management API from a Flipt snapshot document (as the
// oracle's generator makes them): segments with their constraints, flags, variants, rules with
// distributions, rollouts. Used by the client-engine parity test and the HTTP benchmark, so both
// exercise state written the way users write it. Returns how many writes were accepted/refused.
import { call } from './server.mjs';

// Recreates a generated snapshot's flags and segments through the management API, as a user
// would. Whatever the API refuses (the generator also emits constraints and rules Flipt's
// validation rejects) is simply left out: the comparison is about the state the server holds.
export async function createThroughApi(url, snapshot) {
  const H = {};
  const post = (p, b) => call(url, 'POST', p, b, H);
  const typeOf = { STRING_CONSTRAINT_COMPARISON_TYPE: 'STRING_COMPARISON_TYPE', NUMBER_CONSTRAINT_COMPARISON_TYPE: 'NUMBER_COMPARISON_TYPE',
    BOOLEAN_CONSTRAINT_COMPARISON_TYPE: 'BOOLEAN_COMPARISON_TYPE', DATETIME_CONSTRAINT_COMPARISON_TYPE: 'DATETIME_COMPARISON_TYPE',
    ENTITY_ID_CONSTRAINT_COMPARISON_TYPE: 'ENTITY_ID_COMPARISON_TYPE' };
  const segments = new Map();
  for (const f of snapshot.flags)
    for (const x of [...(f.rules ?? []), ...(f.rollouts ?? []).map((r) => r.segment).filter(Boolean)])
      for (const sg of x.segments ?? []) segments.set(sg.key, sg);
  const made = new Set();
  let refused = 0, accepted = 0;
  const count = (r) => (r.status === 200 ? accepted++ : refused++, r);
  for (const sg of segments.values()) {
    const r = count(await post('/api/v1/segments', { key: sg.key, name: sg.name ?? sg.key, matchType: sg.matchType === 'ALL_SEGMENT_MATCH_TYPE' ? 'ALL_MATCH_TYPE' : 'ANY_MATCH_TYPE' }));
    if (r.status !== 200) continue;
    made.add(sg.key);
    for (const c of sg.constraints)
      if (typeOf[c.type]) count(await post(`/api/v1/segments/${sg.key}/constraints`, { type: typeOf[c.type], property: c.property, operator: c.operator, value: c.value }));
  }
  for (const f of snapshot.flags) {
    const isBool = f.type === 'BOOLEAN_FLAG_TYPE';
    if (count(await post('/api/v1/flags', { key: f.key, name: f.name, enabled: f.enabled, type: isBool ? 'BOOLEAN_FLAG_TYPE' : 'VARIANT_FLAG_TYPE' })).status !== 200) continue;
    const variantIds = new Map();
    for (const v of f.variants ?? []) {
      const r = count(await post(`/api/v1/flags/${f.key}/variants`, { key: v.key, name: v.name ?? v.key, attachment: v.attachment ?? '' }));
      if (r.status === 200) variantIds.set(v.key, r.json.id);
    }
    if (f.defaultVariant && variantIds.has(f.defaultVariant.key))
      count(await call(url, 'PUT', `/api/v1/flags/${f.key}`, { name: f.name, enabled: f.enabled, defaultVariantId: variantIds.get(f.defaultVariant.key) }, H));
    let rank = 1;
    for (const rule of f.rules ?? []) {
      const keys = [...new Set((rule.segments ?? []).map((x) => x.key))].filter((k) => made.has(k));
      if (!keys.length) continue;
      const r = count(await post(`/api/v1/flags/${f.key}/rules`, { segmentKeys: keys, segmentOperator: rule.segmentOperator === 'AND_SEGMENT_OPERATOR' ? 'AND_SEGMENT_OPERATOR' : 'OR_SEGMENT_OPERATOR', rank: rank }));
      if (r.status !== 200) continue;
      rank++;
      for (const d of rule.distributions)
        if (variantIds.has(d.variantKey)) count(await post(`/api/v1/flags/${f.key}/rules/${r.json.id}/distributions`, { variantId: variantIds.get(d.variantKey), rollout: d.rollout }));
    }
    rank = 1;
    for (const ro of f.rollouts ?? []) {
      let body;
      if (ro.threshold) body = { rank, threshold: { percentage: ro.threshold.percentage, value: ro.threshold.value } };
      else {
        const keys = [...new Set(ro.segment.segments.map((x) => x.key))].filter((k) => made.has(k));
        if (!keys.length) continue;
        body = { rank, segment: { segmentKeys: keys, segmentOperator: ro.segment.segmentOperator === 'AND_SEGMENT_OPERATOR' ? 'AND_SEGMENT_OPERATOR' : 'OR_SEGMENT_OPERATOR', value: ro.segment.value } };
      }
      if (count(await post(`/api/v1/namespaces/default/flags/${f.key}/rollouts`, body)).status === 200) rank++;
    }
  }
  return { accepted, refused };
}
