// validate.js - the checks the server makes, made before sending so mistakes show at once: key
// syntax, variant attachments, constraint operators per type and constraint values. The messages
// are the server's own, so the same text appears whether the UI or the server caught it. It must
// never be stricter than the server (the server stays the authority; its answer is shown as is).

export const KEY_RE = /^[-_,A-Za-z0-9]+$/;

export function checkKey(key) {
  if (!key) return 'invalid field key: must not be empty';
  if (!KEY_RE.test(key)) return 'invalid field key: contains invalid characters';
  return '';
}

// Attachments: any JSON text (or empty), at most 10000 bytes.
export function checkAttachment(text) {
  if (text.trim() === '') return '';
  try {
    JSON.parse(text);
  } catch {
    return 'invalid field attachment: must be a json string';
  }
  if (new TextEncoder().encode(text).length > 10000) return 'invalid field attachment: must be less than 10000 KB';
  return '';
}

export const CONSTRAINT_TYPES = [
  ['STRING_COMPARISON_TYPE', 'String'],
  ['NUMBER_COMPARISON_TYPE', 'Number'],
  ['BOOLEAN_COMPARISON_TYPE', 'Boolean'],
  ['DATETIME_COMPARISON_TYPE', 'Date/time'],
  ['ENTITY_ID_COMPARISON_TYPE', 'Entity ID'],
];

const OP_LABELS = {
  eq: '== equals', neq: '!= not equals', empty: 'is empty', notempty: 'is not empty',
  prefix: 'has prefix', suffix: 'has suffix', isoneof: 'is one of', isnotoneof: 'is not one of',
  contains: 'contains', notcontains: 'does not contain', lt: '< less than', lte: '<= less or equal',
  gt: '> greater than', gte: '>= greater or equal', present: 'is present', notpresent: 'is not present',
  true: 'is true', false: 'is false',
};

const NUMBER_OPS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'present', 'notpresent', 'isoneof', 'isnotoneof'];
export const OPERATORS = {
  STRING_COMPARISON_TYPE: ['eq', 'neq', 'empty', 'notempty', 'prefix', 'suffix', 'isoneof', 'isnotoneof', 'contains', 'notcontains'],
  NUMBER_COMPARISON_TYPE: NUMBER_OPS,
  BOOLEAN_COMPARISON_TYPE: ['true', 'false', 'present', 'notpresent'],
  // the server accepts the number set; the evaluator never matches isoneof on dates, so not offered
  DATETIME_COMPARISON_TYPE: ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'present', 'notpresent'],
  ENTITY_ID_COMPARISON_TYPE: ['eq', 'neq', 'isoneof', 'isnotoneof', 'contains', 'notcontains'],
};
const NO_VALUE = new Set(['true', 'false', 'empty', 'notempty', 'present', 'notpresent']);

export function operatorOptions(type) {
  return (OPERATORS[type] || []).map((op) => [op, OP_LABELS[op] || op]);
}

export function needsValue(op) {
  return !NO_VALUE.has(op);
}

const TYPE_NAME = {
  STRING_COMPARISON_TYPE: 'string', NUMBER_COMPARISON_TYPE: 'number', BOOLEAN_COMPARISON_TYPE: 'boolean',
  DATETIME_COMPARISON_TYPE: 'datetime', ENTITY_ID_COMPARISON_TYPE: 'entityId',
};

// RFC 3339 with seconds (fraction and offset allowed) or YYYY-MM-DD, as the server parses them.
export function validDatetime(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2})))?$/.exec(v);
  if (!m) return false;
  const [y, mo, d] = [+m[1], +m[2], +m[3]];
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (mo < 1 || mo > 12 || d < 1 || d > days[mo - 1]) return false;
  if (m[4] !== undefined) {
    if (v.length === 10) return false;
    if (+m[4] > 23 || +m[5] > 59 || +m[6] > 59) return false;
    if (m[7] !== undefined && (+m[7] > 23 || +m[8] > 59)) return false;
  } else if (v.length !== 10) {
    return false;
  }
  return true;
}

// Returns {field, message} for the first problem, or null.
export function checkConstraint({ type, property, operator, value }) {
  if (!property) return { field: 'property', message: 'invalid field property: must not be empty' };
  if (type === 'ENTITY_ID_COMPARISON_TYPE' && property !== 'entityId') {
    return { field: 'property', message: `property is ${property} instead of "entityId"` };
  }
  if (!operator) return { field: 'operator', message: 'invalid field operator: must not be empty' };
  const tname = TYPE_NAME[type] || type;
  if (!(OPERATORS[type] || []).includes(operator) && !(type === 'DATETIME_COMPARISON_TYPE' && NUMBER_OPS.includes(operator))) {
    return { field: 'operator', message: `constraint operator "${operator}" is not valid for type ${tname}` };
  }
  if (!needsValue(operator)) return null;
  if (value === '') return { field: 'value', message: 'invalid field value: must not be empty' };
  if (type === 'DATETIME_COMPARISON_TYPE') {
    return validDatetime(value) ? null : { field: 'value', message: `parsing datetime from "${value}"` };
  }
  if (operator === 'isoneof' || operator === 'isnotoneof') {
    let arr;
    try { arr = JSON.parse(value); } catch { arr = null; }
    const want = type === 'NUMBER_COMPARISON_TYPE' ? 'number' : 'string';
    if (!Array.isArray(arr) || arr.some((x) => typeof x !== want)) {
      return { field: 'value', message: `invalid value provided for property "${property}" of type ${tname}` };
    }
    if (arr.length > 100) {
      return { field: 'value', message: `too many values provided for property "${property}" of type ${tname} (maximum 100)` };
    }
  }
  return null;
}

export function valueHint(type, operator) {
  if (!needsValue(operator)) return 'This operator takes no value.';
  if (operator === 'isoneof' || operator === 'isnotoneof') {
    return type === 'NUMBER_COMPARISON_TYPE' ? 'A JSON array of numbers, e.g. [1, 2, 3] (at most 100).' : 'A JSON array of strings, e.g. ["a", "b"] (at most 100).';
  }
  if (type === 'DATETIME_COMPARISON_TYPE') return 'RFC 3339 (2024-05-01T12:00:00Z) or a date (2024-05-01).';
  if (type === 'NUMBER_COMPARISON_TYPE') return 'A number, e.g. 42 or 3.5.';
  return '';
}
