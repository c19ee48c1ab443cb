// Hand-written differential cases for what the seeded generator does not reach: byte strings with
// NUL and non-ASCII, 32-bit integer bounds and odd number spellings, RFC 3339 corner cases, list
// syntax corners, duplicate segments and flags, rollout/threshold edges, namespace mismatch.
// Each case is {namespace?, snapshot, requests}; requests are the cross product of every flag with
// a set of entity ids and contexts, as variant, boolean and batch requests.

const T = {
  S: 'STRING_CONSTRAINT_COMPARISON_TYPE', N: 'NUMBER_CONSTRAINT_COMPARISON_TYPE', B: 'BOOLEAN_CONSTRAINT_COMPARISON_TYPE',
  D: 'DATETIME_CONSTRAINT_COMPARISON_TYPE', E: 'ENTITY_ID_CONSTRAINT_COMPARISON_TYPE',
};
const ALL = 'ALL_SEGMENT_MATCH_TYPE', ANY = 'ANY_SEGMENT_MATCH_TYPE', OR = 'OR_SEGMENT_OPERATOR', AND = 'AND_SEGMENT_OPERATOR';

const seg = (key, matchType, constraints) => ({ key, name: key, matchType, constraints });
const con = (type, property, operator, value) => ({ type, property, operator, value });
// One boolean flag per constraint: a segment rollout with just that constraint, so the answer shows
// whether the constraint matched (MATCH) or not (DEFAULT).
const probeFlag = (key, c) => ({
  key, name: key, enabled: false, type: 'BOOLEAN_FLAG_TYPE',
  rollouts: [{ segment: { value: true, segmentOperator: OR, segments: [seg('s_' + key, ALL, [c])] } }],
});
const variantFlag = (key, rules, extra = {}) => ({ key, name: key, enabled: true, type: 'VARIANT_FLAG_TYPE', rules, ...extra });
const rule = (segments, distributions, op = OR) => ({ segmentOperator: op, segments, distributions });
const dist = (variantKey, rollout, variantAttachment) => (variantAttachment === undefined ? { variantKey, rollout } : { variantKey, rollout, variantAttachment });

function requestsFor(snapshot, entities, contexts) {
  const out = [];
  for (const f of snapshot.flags) {
    const own = f.type === 'BOOLEAN_FLAG_TYPE' ? 'boolean' : 'variant';
    for (const entityId of entities)
      for (const context of contexts) {
        out.push({ type: own, flagKey: f.key, entityId, context });
      }
    out.push({ type: own === 'boolean' ? 'variant' : 'boolean', flagKey: f.key, entityId: entities[0], context: contexts[0] });
    out.push({ type: 'batch', flagKey: f.key, entityId: entities[0], context: contexts[0] });
  }
  out.push({ type: 'variant', flagKey: 'no-such-flag', entityId: 'x', context: {} });
  out.push({ type: 'batch', flagKey: 'no-such-flag', entityId: 'x', context: {} });
  return out;
}

function bytesCase() {
  const flags = [
    probeFlag('eq_nul', con(T.S, 'p', 'eq', 'a\u0000b')),
    probeFlag('prefix_nul', con(T.S, 'p', 'prefix', 'a\u0000')),
    probeFlag('suffix_uni', con(T.S, 'p', 'suffix', 'ü')),
    probeFlag('contains_empty', con(T.S, 'p', 'contains', '')),
    probeFlag('notcontains_empty', con(T.S, 'p', 'notcontains', '')),
    probeFlag('contains_nul', con(T.S, 'p', 'contains', '\u0000')),
    probeFlag('neq_missing', con(T.S, 'missing', 'neq', 'x')),
    probeFlag('empty_space', con(T.S, 'p', 'empty', '')),
    probeFlag('notempty_space', con(T.S, 'p', 'notempty', '')),
    probeFlag('prop_nul', con(T.S, 'k\u0000', 'eq', 'v')),
    probeFlag('prop_uni', con(T.S, 'ключ', 'eq', 'значение')),
    probeFlag('entity_eq_nul', con(T.E, '', 'eq', 'u\u0000v')),
    probeFlag('entity_suffix', con(T.E, 'x', 'suffix', '🎉')),
    probeFlag('entity_isoneof', con(T.E, '', 'isoneof', '["u\u0000v","ünï"]')),
    probeFlag('entity_notcontains', con(T.E, '', 'notcontains', 'z')),
    probeFlag('flag\u0000nul', con(T.S, 'p', 'eq', 'a')),
    probeFlag('flag-ünï-🎉', con(T.S, 'p', 'eq', 'a')),
    variantFlag('bucket\u0000key', [rule([], [dist('a', 50), dist('b', 50)], AND)]),
    variantFlag('bucket-ünï', [rule([], [dist('a', 33.3), dist('b', 33.3), dist('c', 33.4)], AND)]),
  ];
  const snapshot = { namespace: { key: 'default' }, flags };
  const entities = ['u\u0000v', 'ünï', '🎉', 'user-1', ' ', 'a\u0000', '\u0000'];
  const contexts = [{}, { p: 'a\u0000b' }, { p: 'a\u0000bc' }, { p: 'ü' }, { p: '' }, { p: ' ' }, { p: 'a' }, { 'k\u0000': 'v' }, { ключ: 'значение' }, { p: '\u0000' }];
  return { snapshot, requests: requestsFor(snapshot, entities, contexts) };
}

const NUM_VALUES = ['2147483647', '-2147483648', '2147483648', '-2147483649', '+0', '-0', '00', '007', '+', '-', '0x1', ' 1', '1 ', '１', '1.0', '1e1', '', '10', '-10', '+2147483647', '99999999999999999999'];
function numbersCase() {
  const flags = [];
  const ops = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'present', 'notpresent'];
  const vals = ['2147483647', '-2147483648', '0', '-0', '+5', '2147483648', '1.5', '', '10'];
  let i = 0;
  for (const op of ops) for (const v of vals) flags.push(probeFlag(`n${i++}_${op}`, con(T.N, 'n', op, v)));
  const lists = ['[2147483647,-2147483648]', '[-0]', '[0]', '[01]', '[1e2]', '[ 1 , 2 ]', '[1,]', '[]', ' [10] ', '[10]x', '[[10]]', '[null]', '[true]', '[10.0]', '[-]', '["10"]', '[10,2147483648]', '\t[10]\n', '[-2147483649]'];
  for (const l of lists) {
    flags.push(probeFlag(`nl${i++}_in`, con(T.N, 'n', 'isoneof', l)));
    flags.push(probeFlag(`nl${i++}_out`, con(T.N, 'n', 'isnotoneof', l)));
  }
  const snapshot = { namespace: { key: 'default' }, flags };
  const contexts = NUM_VALUES.map((n) => ({ n })).concat([{}]);
  return { snapshot, requests: requestsFor(snapshot, ['e1'], contexts) };
}

const DATES = ['2024-01-01T00:00:00Z', '2024-01-01T05:30:00+05:30', '2023-12-31T00:01:00-23:59', '2024-01-01T00:00:00+24:00',
  '2024-01-01T00:00:00.123456789123Z', '2024-01-01t00:00:00z', '2024-01-01 00:00:00Z', '2024-02-29T00:00:00Z', '2023-02-29T00:00:00Z',
  '2024-01-01T23:59:60Z', '2024-01-01T00:00:00+0100', '2024-01-01T00:00Z', '02024-01-01T00:00:00Z', '2024-1-01T00:00:00Z',
  '2024-01-01T00:00:00.Z', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00-00:00', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z',
  '2024-01-01T01:00:00.5+01:00', '2024-04-31T00:00:00Z', '2024-01-01T00:00:00+01:60', '2024-01-01T00:00:00 Z', '2024-01-01T00:00:00Z ',
  '2024-01-01', '1900-02-29T00:00:00Z', '2000-02-29T12:00:00Z', '2024-12-31T24:00:00Z', '2024-01-01T00:60:00Z', '2024-01-02T00:00:00.999Z'];
function datesCase() {
  const flags = [];
  let i = 0;
  const values = ['2024-01-01T00:00:00Z', '2024-01-01T00:00:00.999+00:00', '2024-01-01t01:00:00+01:00', '2024-01-01 00:00:00z', '2024-01-01T23:59:60Z', '2024-01-01', 'nope', ''];
  for (const op of ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'present', 'notpresent', 'isoneof'])
    for (const v of values) flags.push(probeFlag(`d${i++}_${op}`, con(T.D, 'd', op, v)));
  const snapshot = { namespace: { key: 'default' }, flags };
  const contexts = DATES.map((d) => ({ d })).concat([{}]);
  return { snapshot, requests: requestsFor(snapshot, ['e1'], contexts) };
}

function stringsCase() {
  const flags = [];
  let i = 0;
  const lists = ['["a","b"]', '[ "a" , "b" ]', '["a",]', '[]', '[""]', '["a","a"]', '["\\u00fc"]', '["ü"]', '["a\tb"]', '["a\\"b"]', '["a\\\\b"]', 'a,b', '["a"', '["a"] ', ' ["a"]', '["a"]x', '[["a"]]', '[null]', '[1]', '["a",1]', '{"a":1}', '"a"', '["\u0000"]'];
  for (const l of lists) {
    flags.push(probeFlag(`sl${i++}_in`, con(T.S, 's', 'isoneof', l)));
    flags.push(probeFlag(`sl${i++}_out`, con(T.S, 's', 'isnotoneof', l)));
  }
  for (const op of ['eq', 'neq', 'prefix', 'suffix', 'contains', 'notcontains', 'empty', 'notempty', 'EQ', 'lt', 'present'])
    for (const v of ['a', '', ' ', 'A']) flags.push(probeFlag(`s${i++}_${op}`, con(T.S, 's', op, v)));
  for (const op of ['true', 'false', 'present', 'notpresent', 'eq']) flags.push(probeFlag(`b${i++}_${op}`, con(T.B, 'b', op, '')));
  const snapshot = { namespace: { key: 'default' }, flags };
  const contexts = ['a', 'b', 'ü', 'a\tb', 'a"b', 'a\\b', '', ' ', 'A', 'ab', 'ba', '\u0000'].map((s) => ({ s }))
    .concat(['true', 'false', 'TRUE', ' true', '1', ''].map((b) => ({ b })), [{}]);
  return { snapshot, requests: requestsFor(snapshot, ['e1'], contexts) };
}

function structureCase() {
  const yes = (k) => seg(k, ALL, []);
  const no = (k) => seg(k, ALL, [con(T.S, 'never', 'eq', 'x')]);
  const ctry = (k, c) => seg(k, ALL, [con(T.S, 'country', 'eq', c)]);
  const unknownAfterMatch = seg('unk_any', ANY, [con(T.S, 'country', 'eq', 'de'), con('WEIRD_TYPE', 'x', 'eq', 'y')]);
  const unknownAll = seg('unk_all', ALL, [con(T.S, 'country', 'eq', 'de'), con('WEIRD_TYPE', 'x', 'eq', 'y')]);
  const weirdMatch = seg('weird_match', 'WEIRD', [con(T.S, 'country', 'eq', 'de'), con(T.S, 'country', 'eq', 'fr')]);
  const flags = [
    variantFlag('dup_seg_and', [rule([no('d'), yes('d')], [dist('v', 100)], AND)]),
    variantFlag('dup_seg_and2', [rule([yes('d'), no('d')], [dist('v', 100)], AND)]),
    variantFlag('dup_seg_or', [rule([ctry('d', 'de'), ctry('e', 'de'), ctry('d', 'fr')], [dist('v', 100)], OR)]),
    variantFlag('unknown_any', [rule([unknownAfterMatch], [dist('v', 100)])]),
    variantFlag('unknown_all', [rule([unknownAll], [dist('v', 100)])]),
    variantFlag('weird_match', [rule([weirdMatch], [dist('v', 100)])]),
    variantFlag('weird_op', [rule([yes('a'), no('b')], [dist('v', 100)], 'XOR_SEGMENT_OPERATOR')]),
    variantFlag('no_segs_or', [rule([], [dist('v', 100)], OR), rule([], [dist('w', 100)], AND)]),
    variantFlag('null_segs', [{ segmentOperator: AND, segments: null, distributions: [dist('n', 100)] }]),
    variantFlag('neg_zero', [rule([yes('a')], [dist('a', -5), dist('b', 0), dist('c', 0.001)])]),
    variantFlag('half', [rule([yes('a')], [dist('a', 25), dist('b', 25)])]),
    variantFlag('double', [rule([yes('a')], [dist('a', 150), dist('b', 50)])]),
    variantFlag('tiny', [rule([yes('a')], [dist('a', 0.01), dist('b', 0.01), dist('c', 0.01), dist('d', 99.97)])]),
    variantFlag('thirds', [rule([yes('a')], [dist('a', 33.33, '{"x":1}'), dist('b', 33.33, ''), dist('c', 33.33)])]),
    variantFlag('no_dist_default', [rule([yes('a')], [])], { defaultVariant: { id: 'x', key: 'dflt', attachment: '{"d":true}' } }),
    variantFlag('no_dist', [rule([yes('a')], [dist('z', 0)])]),
    variantFlag('disabled_default', [rule([yes('a')], [dist('v', 100)])], { enabled: false, defaultVariant: { id: 'x', key: 'dflt' } }),
    variantFlag('default_no_match', [rule([no('a')], [dist('v', 100)])], { defaultVariant: { id: 'x', key: 'dflt', attachment: '' } }),
    variantFlag('dup_flag', [rule([yes('a')], [dist('first', 100)])]),
    variantFlag('dup_flag', [rule([yes('a')], [dist('second', 100)])]),
    { key: 'no_type', name: 'n', enabled: true, rules: [rule([yes('a')], [dist('v', 100)])] },
    { key: 'odd_type', name: 'n', enabled: true, type: 'FOO_FLAG_TYPE', rules: [rule([yes('a')], [dist('v', 100)])] },
    { key: 'null_rules', name: 'n', enabled: true, type: 'VARIANT_FLAG_TYPE', rules: null, rollouts: null },
    { key: 'bool_disabled', name: 'n', enabled: false, type: 'BOOLEAN_FLAG_TYPE', rollouts: [{ threshold: { percentage: 50, value: true } }] },
    { key: 'bool_both', name: 'n', enabled: true, type: 'BOOLEAN_FLAG_TYPE', rollouts: [{ threshold: { percentage: 30, value: false }, segment: { value: true, segments: [yes('a')] } }] },
    { key: 'bool_neither', name: 'n', enabled: true, type: 'BOOLEAN_FLAG_TYPE', rollouts: [{ description: 'nothing' }, { segment: { value: false, segmentOperator: AND, segments: [] } }] },
    ...[0, 100, -5, 100.5, 33.333, 99.99, 0.5, 1].map((p, i) => ({ key: `thr_${i}`, name: 'n', enabled: false, type: 'BOOLEAN_FLAG_TYPE', rollouts: [{ threshold: { percentage: p, value: true } }] })),
    { key: 'bool_seg_and_dup', name: 'n', enabled: false, type: 'BOOLEAN_FLAG_TYPE', rollouts: [{ segment: { value: true, segmentOperator: AND, segments: [ctry('c', 'de'), ctry('c', 'fr')] } }] },
  ];
  const snapshot = { namespace: { key: 'default' }, flags };
  const entities = Array.from({ length: 40 }, (_, i) => `entity-${i}`);
  const contexts = [{}, { country: 'de' }, { country: 'fr' }];
  return { snapshot, requests: requestsFor(snapshot, entities, contexts) };
}

function namespaceCase() {
  const { snapshot, requests } = structureCase();
  return { namespace: 'other', snapshot, requests: requests.slice(0, 300) };
}

export function extraCases() {
  return { bytes: bytesCase(), numbers: numbersCase(), dates: datesCase(), strings: stringsCase(), structure: structureCase(), namespace_mismatch: namespaceCase() };
}
