// segments.js - segments of a namespace: the list, the new-segment form, and one segment's page
// with its match type and constraints (operators offered per type, values checked as the server
// checks them before sending). It must never send a constraint the server's checks would refuse.
import * as api from './api.js';
import { h, field, input, select, form, fieldError, confirmDelete, ctl } from './dom.js';
import { checkKey, checkConstraint, CONSTRAINT_TYPES, operatorOptions, needsValue, valueHint } from './validate.js';

const MATCH = [['ALL_MATCH_TYPE', 'All constraints must match'], ['ANY_MATCH_TYPE', 'Any constraint may match']];
const TYPE_LABEL = Object.fromEntries(CONSTRAINT_TYPES);

export async function segmentsView(ctx) {
  const { ns } = ctx;
  const { segments = [] } = await api.get(api.nsPath(ns, '/segments'));
  return h('section', { class: 'panel' },
    h('div', { class: 'head' }, h('h1', {}, 'Segments'),
      h('a', { class: 'button primary', href: `/namespaces/${api.enc(ns)}/segments/new` }, 'New segment')),
    segments.length ? h('ul', { class: 'cards' }, segments.map((s) => h('li', { class: 'card' },
      h('div', { class: 'grow' },
        h('a', { class: 'title', href: `/namespaces/${api.enc(ns)}/segments/${api.enc(s.key)}` }, s.name || s.key),
        h('div', { class: 'meta' }, h('code', {}, s.key), ` · ${s.matchType === 'ANY_MATCH_TYPE' ? 'any' : 'all'} of ${s.constraints.length} constraints`),
        s.description ? h('p', { class: 'desc' }, s.description) : null))))
      : h('p', { class: 'empty' }, 'No segments in this namespace yet.'));
}

function segmentFields(s) {
  return [
    s ? null : field('Key', input('key', { required: true }), 'Letters, digits, - _ and , only. Cannot change later.'),
    field('Name', input('name', { value: s ? s.name : '', required: true })),
    field('Description', h('textarea', { name: 'description', rows: 2, value: s ? s.description : '' })),
    field('Match type', select('matchType', MATCH, s ? s.matchType : 'ALL_MATCH_TYPE')),
  ];
}

function segmentBody(el) {
  const name = ctl(el, 'name').value.trim();
  if (!name) throw fieldError('name', 'invalid field name: must not be empty');
  return { name, description: ctl(el, 'description').value, matchType: ctl(el, 'matchType').value };
}

export async function newSegmentView(ctx) {
  const { ns } = ctx;
  return form({ class: 'panel stack', 'aria-labelledby': 'new-seg-title' }, [
    h('h1', { id: 'new-seg-title' }, 'New segment'),
    ...segmentFields(null),
    h('div', { class: 'actions' },
      h('a', { class: 'button', href: `/namespaces/${api.enc(ns)}/segments` }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary' }, 'Create segment')),
  ], async (el) => {
    const key = ctl(el, 'key').value.trim();
    const err = checkKey(key);
    if (err) throw fieldError('key', err);
    const seg = await api.post(api.nsPath(ns, '/segments'), { key, ...segmentBody(el) });
    ctx.navigate(`/namespaces/${api.enc(ns)}/segments/${api.enc(seg.key)}`);
  });
}

export async function segmentView(ctx) {
  const [ns, key] = ctx.params;
  const base = api.nsPath(ns, `/segments/${api.enc(key)}`);
  const seg = await api.get(base);
  return h('div', { class: 'segment-page' },
    h('section', { class: 'panel head' },
      h('div', { class: 'grow' },
        h('p', { class: 'crumbs' }, h('a', { href: `/namespaces/${api.enc(ns)}/segments` }, 'Segments'), ' / ', h('code', {}, seg.key)),
        h('h1', {}, seg.name || seg.key)),
      h('div', { class: 'actions' }, h('button', {
        type: 'button', class: 'danger', id: 'delete-segment',
        onclick: async (ev) => {
          if (!(await confirmDelete(`Delete segment "${seg.key}" and its constraints?`))) return;
          try {
            await api.del(base);
            ctx.navigate(`/namespaces/${api.enc(ns)}/segments`);
          } catch (e) {
            showInline(ev.target.parentElement, e.message);
          }
        },
      }, 'Delete segment'))),
    form({ class: 'panel stack', 'aria-labelledby': 'seg-details' }, [
      h('h2', { id: 'seg-details' }, 'Details'),
      ...segmentFields(seg),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save details')),
    ], async (el) => {
      await api.put(base, segmentBody(el));
      ctx.refresh();
    }),
    h('section', { class: 'panel', 'aria-labelledby': 'constraints-title' },
      h('h2', { id: 'constraints-title' }, 'Constraints'),
      seg.constraints.length ? h('ul', { class: 'cards' }, seg.constraints.map((c) => h('li', { class: 'card constraint' },
        h('div', { class: 'grow' },
          h('p', {}, h('code', {}, c.property), ' ', h('span', { class: 'op' }, c.operator), ' ', c.value ? h('code', {}, c.value) : '',
            ' ', h('span', { class: 'tag' }, TYPE_LABEL[c.type] || c.type)),
          c.description ? h('p', { class: 'desc' }, c.description) : null,
          h('details', {}, h('summary', {}, `Edit constraint on ${c.property}`), constraintForm(ctx, base, c))),
        h('div', { class: 'actions' }, h('button', {
          type: 'button', class: 'small danger', 'aria-label': `Delete constraint on ${c.property}`,
          onclick: async (ev) => {
            if (!(await confirmDelete(`Delete the constraint on "${c.property}"?`))) return;
            try {
              await api.del(`${base}/constraints/${api.enc(c.id)}`);
              ctx.refresh();
            } catch (e) {
              showInline(ev.target.parentElement, e.message);
            }
          },
        }, 'Delete')))))
        : h('p', { class: 'empty' }, 'No constraints: this segment matches every entity.'),
      h('details', { class: 'add', open: seg.constraints.length === 0 }, h('summary', {}, 'Add constraint'), constraintForm(ctx, base, null))));
}

function showInline(parent, message) {
  let el = parent.querySelector('.inline-error');
  if (!el) {
    el = h('p', { class: 'error inline-error', role: 'alert' });
    parent.append(el);
  }
  el.textContent = message;
}

function constraintForm(ctx, base, c) {
  const typeSel = select('type', CONSTRAINT_TYPES, c ? c.type : 'STRING_COMPARISON_TYPE');
  const prop = input('property', { value: c ? c.property : '', required: true });
  const opSel = select('operator', [], undefined);
  const val = input('value', { value: c ? c.value : '' });
  const valField = field('Value', val, ' ');
  const hint = valField.querySelector('.hint');
  const fillOps = (keep) => {
    const want = keep || opSel.value;
    const opts = operatorOptions(typeSel.value);
    opSel.replaceChildren(...opts.map(([v, t]) => h('option', { value: v }, t)));
    opSel.value = opts.some(([v]) => v === want) ? want : opts[0][0];
  };
  const syncValue = () => {
    const needs = needsValue(opSel.value);
    val.disabled = !needs;
    if (!needs) val.value = '';
    hint.textContent = valueHint(typeSel.value, opSel.value);
    if (typeSel.value === 'ENTITY_ID_COMPARISON_TYPE' && !prop.value) prop.value = 'entityId';
  };
  // live check of the value, with the server's wording
  const liveCheck = () => {
    const err = valField.querySelector('.error');
    const problem = val.value && needsValue(opSel.value)
      ? checkConstraint({ type: typeSel.value, property: prop.value || 'x', operator: opSel.value, value: val.value }) : null;
    err.textContent = problem && problem.field === 'value' ? problem.message : '';
    if (err.textContent) val.setAttribute('aria-invalid', 'true'); else val.removeAttribute('aria-invalid');
  };
  typeSel.addEventListener('change', () => { fillOps(); syncValue(); liveCheck(); });
  opSel.addEventListener('change', () => { syncValue(); liveCheck(); });
  val.addEventListener('input', liveCheck);
  fillOps(c ? c.operator : 'eq');
  syncValue();
  return form({ class: 'stack', 'aria-label': c ? `Edit constraint on ${c.property}` : 'Add constraint' }, [
    h('div', { class: 'row' },
      field('Type', typeSel),
      field('Property', prop, 'The context key; "entityId" for the Entity ID type.'),
      field('Operator', opSel)),
    valField,
    field('Description', input('description', { value: c ? c.description : '' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, c ? 'Save constraint' : 'Add constraint')),
  ], async (el) => {
    const body = { type: typeSel.value, property: prop.value.trim(), operator: opSel.value, value: val.value.trim(), description: ctl(el, 'description').value };
    const problem = checkConstraint(body);
    if (problem) throw fieldError(problem.field, problem.message);
    if (c) await api.put(`${base}/constraints/${api.enc(c.id)}`, body);
    else await api.post(`${base}/constraints`, body);
    ctx.refresh();
  });
}
