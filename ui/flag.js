// flag.js - one flag's page: details (name, description, enabled, default variant), variants with
// a validating JSON attachment editor, rules (segments, AND/OR, distributions as bars, edited as
// numbers, reordering) for variant flags, rollouts (threshold and segment) for boolean flags, and
// deletion with confirmation. It must never send a write the user did not ask for; reordering
// sends the whole new order at once.
import * as api from './api.js';
import { h, field, input, select, form, fieldError, confirmDelete, percentBar, ctl } from './dom.js';
import { checkAttachment } from './validate.js';

const OPS = [['OR_SEGMENT_OPERATOR', 'OR (any segment)'], ['AND_SEGMENT_OPERATOR', 'AND (all segments)']];

export async function flagView(ctx) {
  const [ns, key] = ctx.params;
  const base = api.nsPath(ns, `/flags/${api.enc(key)}`);
  const flag = await api.get(base);
  const boolean = flag.type === 'BOOLEAN_FLAG_TYPE';
  const [{ segments = [] }, rulesRes] = await Promise.all([
    api.get(api.nsPath(ns, '/segments')),
    api.get(`${base}/${boolean ? 'rollouts' : 'rules'}`),
  ]);
  const page = { ctx, ns, key, base, flag, segments, items: rulesRes.rules || [] };
  return h('div', { class: 'flag-page' },
    header(page),
    activitySection(page),
    detailsForm(page),
    boolean ? null : variantsSection(page),
    boolean ? rolloutsSection(page) : rulesSection(page));
}

function header(p) {
  const { flag } = p;
  return h('section', { class: 'panel head' },
    h('div', { class: 'grow' },
      h('p', { class: 'crumbs' }, h('a', { href: `/namespaces/${api.enc(p.ns)}/flags` }, 'Flags'), ' / ', h('code', {}, flag.key)),
      h('h1', {}, flag.name || flag.key),
      h('p', { class: 'meta' }, h('span', { class: 'tag' }, flag.type === 'BOOLEAN_FLAG_TYPE' ? 'boolean' : 'variant'), ' ',
        h('span', { class: flag.enabled ? 'tag on' : 'tag off' }, flag.enabled ? 'enabled' : 'disabled'))),
    h('div', { class: 'actions' },
      h('a', { class: 'button', href: `/namespaces/${api.enc(p.ns)}/console?flag=${api.enc(flag.key)}` }, 'Evaluate'),
      h('a', { class: 'button', id: 'flag-history-link', href: `/namespaces/${api.enc(p.ns)}/flags/${api.enc(flag.key)}/history` }, 'History'),
      h('button', {
        type: 'button', class: 'danger', id: 'delete-flag',
        onclick: async () => {
          if (!(await confirmDelete(`Delete flag "${flag.key}" with its variants and rules? This cannot be undone.`))) return;
          try {
            await api.del(p.base);
            p.ctx.navigate(`/namespaces/${api.enc(p.ns)}/flags`);
          } catch (e) {
            alertIn(document.getElementById('delete-flag').parentElement, e.message);
          }
        },
      }, 'Delete flag')));
}

function alertIn(parent, message) {
  let el = parent.querySelector('.inline-error');
  if (!el) {
    el = h('p', { class: 'error inline-error', role: 'alert' });
    parent.append(el);
  }
  el.textContent = message;
}

function flagBody(flag, over) {
  const body = { name: flag.name, description: flag.description, enabled: flag.enabled,
    defaultVariantId: flag.defaultVariant ? flag.defaultVariant.id : '' };
  if (flag.metadata) body.metadata = flag.metadata;
  return { ...body, ...over };
}

function detailsForm(p) {
  const { flag } = p;
  const boolean = flag.type === 'BOOLEAN_FLAG_TYPE';
  return form({ class: 'panel stack', 'aria-labelledby': 'details-title', id: 'flag-details' }, [
    h('h2', { id: 'details-title' }, 'Details'),
    field('Name', input('name', { value: flag.name, required: true })),
    field('Description', h('textarea', { name: 'description', rows: 2, value: flag.description })),
    h('div', { class: 'check' }, h('input', { type: 'checkbox', role: 'switch', class: 'switch', name: 'enabled', id: 'flag-enabled', checked: flag.enabled }),
      h('label', { for: 'flag-enabled' }, boolean ? 'Enabled (the value when no rollout matches)' : 'Enabled')),
    boolean ? null : field('Default variant', select('defaultVariantId',
      [['', '(none)'], ...flag.variants.map((v) => [v.id, v.name ? `${v.key} — ${v.name}` : v.key])],
      flag.defaultVariant ? flag.defaultVariant.id : ''), 'Returned when the flag is enabled and no rule matches.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save details')),
  ], async (el) => {
    const name = ctl(el, 'name').value.trim();
    if (!name) throw fieldError('name', 'invalid field name: must not be empty');
    const over = { name, description: ctl(el, 'description').value, enabled: ctl(el, 'enabled').checked };
    if (!boolean) over.defaultVariantId = ctl(el, 'defaultVariantId').value;
    await api.put(p.base, flagBody(flag, over));
    p.ctx.refresh();
  });
}

// ---- variants -------------------------------------------------------------------------------------

function attachmentField(value) {
  const ta = h('textarea', { name: 'attachment', rows: 4, class: 'code', spellcheck: 'false', value: value || '' });
  const wrap = field('Attachment (JSON)', ta, 'Any JSON value, e.g. {"color": "blue"}. Leave empty for none.');
  const err = wrap.querySelector('.error');
  const check = () => {
    const msg = checkAttachment(ta.value);
    err.textContent = msg;
    if (msg) ta.setAttribute('aria-invalid', 'true'); else ta.removeAttribute('aria-invalid');
  };
  ta.addEventListener('input', check);
  const fmt = h('button', {
    type: 'button', class: 'small',
    onclick: () => {
      try { ta.value = JSON.stringify(JSON.parse(ta.value), null, 2); check(); } catch { check(); }
    },
  }, 'Format JSON');
  wrap.append(fmt);
  return wrap;
}

function variantForm(p, v) {
  const editing = !!v;
  return form({ class: 'stack', 'aria-label': editing ? `Edit variant ${v.key}` : 'Add variant' }, [
    h('div', { class: 'row' },
      field('Key', input('key', { value: v ? v.key : '', required: true })),
      field('Name', input('name', { value: v ? v.name : '' }))),
    field('Description', input('description', { value: v ? v.description : '' })),
    attachmentField(v ? prettyJson(v.attachment) : ''),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, editing ? 'Save variant' : 'Add variant')),
  ], async (el) => {
    const key = ctl(el, 'key').value.trim();
    if (!key) throw fieldError('key', 'invalid field key: must not be empty');
    // The attachment goes to the server as typed: the server is the judge, its message is shown.
    const body = { key, name: ctl(el, 'name').value, description: ctl(el, 'description').value, attachment: ctl(el, 'attachment').value.trim() };
    if (editing) await api.put(`${p.base}/variants/${api.enc(v.id)}`, body);
    else await api.post(`${p.base}/variants`, body);
    el.reset();
    p.ctx.refresh();
  });
}

function prettyJson(s) {
  if (!s) return '';
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch { return s; }
}

function variantsSection(p) {
  const { flag } = p;
  return h('section', { class: 'panel', 'aria-labelledby': 'variants-title' },
    h('h2', { id: 'variants-title' }, 'Variants'),
    flag.variants.length ? h('ul', { class: 'cards' }, flag.variants.map((v) => h('li', { class: 'card variant' },
      h('div', { class: 'grow' },
        h('strong', {}, v.key), v.name ? ` — ${v.name}` : '',
        flag.defaultVariant && flag.defaultVariant.id === v.id ? h('span', { class: 'tag on' }, 'default') : null,
        v.description ? h('p', { class: 'desc' }, v.description) : null,
        v.attachment ? h('pre', { class: 'code' }, prettyJson(v.attachment)) : null,
        h('details', {}, h('summary', {}, `Edit ${v.key}`), variantForm(p, v))),
      h('div', { class: 'actions' }, h('button', {
        type: 'button', class: 'danger small',
        onclick: (ev) => remove(p, ev.target, `Delete variant "${v.key}"? Its distributions are removed too.`, `${p.base}/variants/${api.enc(v.id)}`),
      }, `Delete ${v.key}`)))))
      : h('p', { class: 'empty' }, 'No variants yet.'),
    h('details', { class: 'add', open: flag.variants.length === 0 }, h('summary', {}, 'Add variant'), variantForm(p, null)));
}

async function remove(p, button, question, path) {
  if (!(await confirmDelete(question))) return;
  try {
    await api.del(path);
    p.ctx.refresh();
  } catch (e) {
    alertIn(button.parentElement, e.message);
  }
}

// ---- segments picker (rules and segment rollouts) -------------------------------------------------

function segmentPicker(p, chosen, operator) {
  const set = new Set(chosen);
  const boxes = p.segments.map((s) => {
    const id = `seg-${Math.random().toString(36).slice(2, 9)}`;
    return h('span', { class: 'check' },
      h('input', { type: 'checkbox', name: 'segmentKeys', value: s.key, id, checked: set.has(s.key) }),
      h('label', { for: id }, s.name && s.name !== s.key ? `${s.key} (${s.name})` : s.key));
  });
  const opName = `op-${Math.random().toString(36).slice(2, 9)}`;
  return [
    h('fieldset', { class: 'field', dataset: { field: 'segmentKeys' } },
      h('legend', {}, 'Segments'),
      boxes.length ? h('div', { class: 'checks' }, boxes) : h('p', { class: 'hint' }, 'No segments in this namespace: create one first.'),
      h('p', { class: 'error', 'aria-live': 'polite' })),
    h('fieldset', { class: 'field', dataset: { field: 'segmentOperator' } },
      h('legend', {}, 'When several segments'),
      h('div', { class: 'checks' }, OPS.map(([v, label]) => {
        const id = `${opName}-${v}`;
        return h('span', { class: 'check' }, h('input', { type: 'radio', name: 'segmentOperator', value: v, id, checked: (operator || 'OR_SEGMENT_OPERATOR') === v }), h('label', { for: id }, label));
      })),
      h('p', { class: 'error', 'aria-live': 'polite' })),
  ];
}

function pickedSegments(el) {
  const keys = [...el.querySelectorAll('input[name="segmentKeys"]:checked')].map((c) => c.value);
  if (!keys.length) throw fieldError('segmentKeys', 'invalid field segmentKey or segmentKeys: must not be empty');
  const op = el.querySelector('input[name="segmentOperator"]:checked');
  return { segmentKeys: keys, segmentOperator: op ? op.value : 'OR_SEGMENT_OPERATOR' };
}

function ruleSegments(r) {
  return r.segmentKeys && r.segmentKeys.length ? r.segmentKeys : (r.segmentKey ? [r.segmentKey] : []);
}

// ---- distributions ---------------------------------------------------------------------------------

function distributionInputs(p, rule) {
  const { variants } = p.flag;
  const current = new Map((rule ? rule.distributions : []).map((d) => [d.variantId, d.rollout]));
  const even = variants.length ? Math.floor(10000 / variants.length) / 100 : 0;
  return h('fieldset', { class: 'field', dataset: { field: 'rollout' } },
    h('legend', {}, 'Distribution (percent of matching entities)'),
    variants.length ? h('div', { class: 'dist-inputs' }, variants.map((v) => {
      const id = `dist-${rule ? rule.id : 'new'}-${v.id}`;
      const val = rule ? (current.get(v.id) ?? 0) : even;
      return h('span', { class: 'dist-input' },
        h('label', { for: id }, v.key),
        h('input', { type: 'number', id, name: `rollout:${v.id}`, min: 0, max: 100, step: 'any', value: String(val), inputmode: 'decimal' }),
        h('span', { 'aria-hidden': 'true' }, '%'));
    })) : h('p', { class: 'hint' }, 'Add variants to distribute between them.'),
    h('p', { class: 'error', 'aria-live': 'polite' }));
}

function readDistributions(el, variants) {
  let sum = 0;
  const out = [];
  for (const v of variants) {
    const c = ctl(el, `rollout:${v.id}`);
    const raw = c.value.trim();
    const n = raw === '' ? 0 : Number(raw);
    if (!Number.isFinite(n)) throw fieldError('rollout', `invalid field rollout: "${raw}" is not a number`);
    if (n < 0) throw fieldError('rollout', "invalid field rollout: must be greater than or equal to '0'");
    if (n > 100) throw fieldError('rollout', "invalid field rollout: must be less than or equal to '100'");
    sum += n;
    out.push({ variantId: v.id, rollout: n });
  }
  if (sum > 100.0001) throw fieldError('rollout', `distributions add up to ${Math.round(sum * 100) / 100}%, more than 100%`);
  return out;
}

async function saveDistributions(p, rule, wanted) {
  const D = `${p.base}/rules/${api.enc(rule.id)}/distributions`;
  const have = new Map(rule.distributions.map((d) => [d.variantId, d]));
  for (const w of wanted) {
    const d = have.get(w.variantId);
    if (d && d.rollout !== w.rollout) await api.put(`${D}/${api.enc(d.id)}`, w);
    else if (!d && w.rollout > 0) await api.post(D, w);
  }
}

// ---- rules -------------------------------------------------------------------------------------------

function rulesSection(p) {
  const rules = [...p.items].sort((a, b) => a.rank - b.rank);
  return h('section', { class: 'panel', 'aria-labelledby': 'rules-title' },
    h('h2', { id: 'rules-title' }, 'Rules'),
    h('p', { class: 'hint' }, 'Evaluated top to bottom; the first rule whose segments match decides.'),
    rules.length ? h('ol', { class: 'cards rules' }, rules.map((r, i) => ruleCard(p, rules, r, i))) : h('p', { class: 'empty' }, 'No rules: every entity gets the default variant.'),
    h('details', { class: 'add', open: rules.length === 0 && p.flag.variants.length > 0 },
      h('summary', {}, 'Add rule'),
      form({ class: 'stack', 'aria-label': 'Add rule', id: 'add-rule' }, [
        ...segmentPicker(p, [], 'OR_SEGMENT_OPERATOR'),
        distributionInputs(p, null),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add rule')),
      ], async (el) => {
        const segs = pickedSegments(el);
        const dists = readDistributions(el, p.flag.variants);
        const rank = rules.reduce((m, r) => Math.max(m, r.rank), 0) + 1;
        const rule = await api.post(`${p.base}/rules`, { ...segs, rank });
        for (const d of dists) if (d.rollout > 0) await api.post(`${p.base}/rules/${api.enc(rule.id)}/distributions`, d);
        p.ctx.refresh();
      })));
}

function ruleCard(p, rules, r, i) {
  const segs = ruleSegments(r);
  const byId = new Map(p.flag.variants.map((v) => [v.id, v]));
  const parts = r.distributions.map((d) => ({ label: byId.get(d.variantId)?.key || d.variantId, value: d.rollout }));
  const op = segs.length > 1 ? (r.segmentOperator === 'AND_SEGMENT_OPERATOR' ? 'AND' : 'OR') : '';
  const label = `Rule ${i + 1}`;
  return h('li', { class: 'card rule', 'aria-label': label },
    h('div', { class: 'rule-head' },
      h('h3', {}, label),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', id: `rule-up-${r.id}`, disabled: i === 0, 'aria-label': `Move ${label} up`, onclick: () => reorder(p, rules, i, -1, 'rules') }, '↑ Up'),
        h('button', { type: 'button', class: 'small', id: `rule-down-${r.id}`, disabled: i === rules.length - 1, 'aria-label': `Move ${label} down`, onclick: () => reorder(p, rules, i, 1, 'rules') }, '↓ Down'),
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${label}`, onclick: (ev) => remove(p, ev.target, `Delete ${label}?`, `${p.base}/rules/${api.enc(r.id)}`) }, 'Delete'))),
    h('p', { class: 'segs' }, 'If ', segs.map((s, j) => [j ? h('span', { class: 'op' }, ` ${op} `) : '', h('a', { class: 'chip', href: `/namespaces/${api.enc(p.ns)}/segments/${api.enc(s)}` }, s)]), ' matches:'),
    parts.length ? percentBar(parts, parts.map((x) => `${x.label} ${x.value}%`).join(', ')) : h('p', { class: 'hint' }, 'No distribution: a match returns no variant.'),
    parts.length ? h('ul', { class: 'legend' }, parts.map((x, k) => h('li', {}, h('span', { class: `dot c${k % 6}`, 'aria-hidden': 'true' }), `${x.label}: ${x.value}%`))) : null,
    h('details', {}, h('summary', {}, `Edit ${label}`),
      form({ class: 'stack', 'aria-label': `Edit ${label}` }, [
        ...segmentPicker(p, segs, r.segmentOperator),
        distributionInputs(p, r),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save rule')),
      ], async (el) => {
        const s = pickedSegments(el);
        const dists = readDistributions(el, p.flag.variants);
        const same = s.segmentKeys.join('\n') === segs.join('\n') && (s.segmentKeys.length < 2 || s.segmentOperator === r.segmentOperator);
        if (!same) await api.put(`${p.base}/rules/${api.enc(r.id)}`, s);
        await saveDistributions(p, r, dists);
        p.ctx.refresh();
      })));
}

async function reorder(p, list, i, delta, kind) {
  const ids = list.map((x) => x.id);
  const j = i + delta;
  [ids[i], ids[j]] = [ids[j], ids[i]];
  const section = document.getElementById(`${kind}-title`).parentElement;
  try {
    await api.put(`${p.base}/${kind}/order`, kind === 'rules' ? { ruleIds: ids } : { rolloutIds: ids });
    // focus follows the moved item (its button id is stable across the re-render)
    const moved = list[i].id;
    await p.ctx.refresh();
    const btn = document.getElementById(`${kind === 'rules' ? 'rule' : 'rollout'}-${delta < 0 ? 'up' : 'down'}-${moved}`);
    if (btn && !btn.disabled) btn.focus();
    else document.getElementById(`${kind === 'rules' ? 'rule' : 'rollout'}-${delta < 0 ? 'down' : 'up'}-${moved}`)?.focus();
  } catch (e) {
    alertIn(section, e.message);
  }
}

// ---- rollouts (boolean flags) --------------------------------------------------------------------

function rolloutsSection(p) {
  const items = [...p.items].sort((a, b) => a.rank - b.rank);
  return h('section', { class: 'panel', 'aria-labelledby': 'rollouts-title' },
    h('h2', { id: 'rollouts-title' }, 'Rollouts'),
    h('p', { class: 'hint' }, `Evaluated top to bottom; the first match decides. Otherwise the flag's enabled value (${p.flag.enabled}) is returned.`),
    items.length ? h('ol', { class: 'cards rules' }, items.map((r, i) => rolloutCard(p, items, r, i))) : h('p', { class: 'empty' }, 'No rollouts.'),
    h('details', { class: 'add' }, h('summary', {}, 'Add rollout'), rolloutForm(p, null, items)));
}

function rolloutForm(p, r, items) {
  const type = r ? r.type : 'THRESHOLD_ROLLOUT_TYPE';
  const typeSel = select('type', [['THRESHOLD_ROLLOUT_TYPE', 'Threshold (percentage of entities)'], ['SEGMENT_ROLLOUT_TYPE', 'Segment']], type, { disabled: !!r });
  const th = r && r.threshold ? r.threshold : { percentage: 50, value: true };
  const sg = r && r.segment ? r.segment : { segmentKeys: [], segmentOperator: 'OR_SEGMENT_OPERATOR', value: true };
  const thresholdPart = h('div', { class: 'stack' },
    field('Percentage', input('percentage', { type: 'number', min: 0, max: 100, step: 'any', value: String(th.percentage), inputmode: 'decimal' })));
  const segmentPart = h('div', { class: 'stack' }, segmentPicker(p, ruleSegments(sg), sg.segmentOperator));
  const value = r ? (r.threshold || r.segment).value : true;
  const sync = () => {
    const t = typeSel.value;
    thresholdPart.hidden = t !== 'THRESHOLD_ROLLOUT_TYPE';
    segmentPart.hidden = t !== 'SEGMENT_ROLLOUT_TYPE';
  };
  typeSel.addEventListener('change', sync);
  sync();
  return form({ class: 'stack', 'aria-label': r ? 'Edit rollout' : 'Add rollout' }, [
    field('Type', typeSel, r ? 'The type of a rollout cannot change.' : ''),
    thresholdPart, segmentPart,
    field('Value', select('value', [['true', 'true (enabled)'], ['false', 'false (disabled)']], String(value))),
    field('Description', input('description', { value: r ? r.description : '' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, r ? 'Save rollout' : 'Add rollout')),
  ], async (el) => {
    const body = { description: ctl(el, 'description').value };
    const val = ctl(el, 'value').value === 'true';
    if (typeSel.value === 'THRESHOLD_ROLLOUT_TYPE') {
      const raw = ctl(el, 'percentage').value.trim();
      const pct = Number(raw);
      if (raw === '' || !Number.isFinite(pct) || pct < 0 || pct > 100) throw fieldError('percentage', 'invalid field threshold.percentage: must be within range [0, 100]');
      body.threshold = { percentage: pct, value: val };
    } else {
      const s = pickedSegments(el);
      body.segment = { ...s, value: val };
    }
    if (r) {
      await api.put(`${p.base}/rollouts/${api.enc(r.id)}`, body);
    } else {
      body.rank = items.reduce((m, x) => Math.max(m, x.rank), 0) + 1;
      await api.post(`${p.base}/rollouts`, body);
    }
    p.ctx.refresh();
  });
}

function rolloutCard(p, items, r, i) {
  const label = `Rollout ${i + 1}`;
  let what;
  if (r.threshold) {
    what = [h('p', {}, `${r.threshold.percentage}% of entities get `, h('strong', {}, String(r.threshold.value))),
      percentBar([{ label: String(r.threshold.value), value: r.threshold.percentage }], `${r.threshold.percentage}% get ${r.threshold.value}`)];
  } else {
    const segs = ruleSegments(r.segment);
    const op = r.segment.segmentOperator === 'AND_SEGMENT_OPERATOR' ? 'AND' : 'OR';
    what = h('p', { class: 'segs' }, 'If ', segs.map((s, j) => [j ? h('span', { class: 'op' }, ` ${op} `) : '', h('a', { class: 'chip', href: `/namespaces/${api.enc(p.ns)}/segments/${api.enc(s)}` }, s)]),
      ' matches: ', h('strong', {}, String(r.segment.value)));
  }
  return h('li', { class: 'card rule', 'aria-label': label },
    h('div', { class: 'rule-head' },
      h('h3', {}, label, ' ', h('span', { class: 'tag' }, r.threshold ? 'threshold' : 'segment')),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', id: `rollout-up-${r.id}`, disabled: i === 0, 'aria-label': `Move ${label} up`, onclick: () => reorder(p, items, i, -1, 'rollouts') }, '↑ Up'),
        h('button', { type: 'button', class: 'small', id: `rollout-down-${r.id}`, disabled: i === items.length - 1, 'aria-label': `Move ${label} down`, onclick: () => reorder(p, items, i, 1, 'rollouts') }, '↓ Down'),
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${label}`, onclick: (ev) => remove(p, ev.target, `Delete ${label}?`, `${p.base}/rollouts/${api.enc(r.id)}`) }, 'Delete'))),
    r.description ? h('p', { class: 'desc' }, r.description) : null,
    what,
    h('details', {}, h('summary', {}, `Edit ${label}`), rolloutForm(p, r, items)));
}


// ---- evaluation activity (GET /edgeflag/v1/namespaces/{ns}/flags/{key}/activity) ----------------

const ACTIVITY_EVERY_MS = 5000; // evaluations move no version: the chart reads again on a timer

// The flag's evaluations in the last hour, per minute: on this node stacked by outcome, and on
// every node it can see stacked by node, with their sum. It reads again every few seconds while
// it is on screen, and stops when the page is left.
function activitySection(p) {
  const body = h('div', { id: 'activity-body' }, h('p', { class: 'muted' }, 'Loading…'));
  const sec = h('section', { class: 'panel', 'aria-labelledby': 'activity-title' },
    h('h2', { id: 'activity-title' }, 'Evaluations, last hour'), body);
  const url = `/edgeflag/v1/namespaces/${api.enc(p.ns)}/flags/${api.enc(p.key)}/activity?minutes=60`;
  let timer = null;
  const load = async () => {
    if (timer !== null && !sec.isConnected) return; // the page was left
    try {
      body.replaceChildren(...chart(await api.get(url)));
    } catch (e) {
      body.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Activity: ${e.message}`));
    }
    timer = setTimeout(load, ACTIVITY_EVERY_MS);
  };
  load();
  return sec;
}

// Columns of a stacked chart: one per minute, a coloured segment per series (counts[i] each).
function stacked(series, minutes, start, max) {
  return Array.from({ length: minutes }, (_, i) => {
    const n = series.reduce((s, x) => s + x.counts[i], 0);
    const col = h('div', { class: 'col', title: `${new Date(start.getTime() + i * 60000).toLocaleTimeString()}: ${n}` });
    series.forEach((x, k) => {
      if (!x.counts[i]) return;
      const seg = h('span', { class: `c${k % 6}` });
      seg.style.height = `${(x.counts[i] / max) * 100}%`; // CSSOM, allowed by the CSP
      col.append(seg);
    });
    return col;
  });
}

function chartOf(id, label, series, minutes, start, total) {
  const perMinute = Array.from({ length: minutes }, (_, i) => series.reduce((s, x) => s + x.counts[i], 0));
  const max = Math.max(1, ...perMinute);
  return h('div', { class: 'chart', role: 'img', id,
    'aria-label': `${label} per minute over the last ${minutes} minutes: ${total} in all, at most ${total ? max : 0} in one minute` },
    stacked(series, minutes, start, max));
}

function chart(doc) {
  const a = doc.activity;
  const series = a.series || [];
  const total = a.total || 0;
  const start = new Date(a.start);
  const out = [
    h('h3', {}, 'This node, by outcome'),
    h('p', {}, h('strong', { id: 'activity-total' }, String(total)), ` evaluations on node `, h('code', { id: 'activity-node' }, doc.node),
      ` in the last ${a.minutes} minutes.`),
    chartOf('activity-chart', 'Evaluations on this node', series, a.minutes, start, total),
    series.length ? h('ul', { class: 'legend', id: 'activity-legend' }, series.map((x, k) =>
      h('li', {}, h('span', { class: `dot c${k % 6}` }), `${x.outcome}: ${x.total}`))) : h('p', { class: 'empty' }, 'No evaluations in this window.'),
  ];
  // every node this one can see (itself and the replicas below it, whose counts come up in their
  // cluster reports), stacked by node, and their sum
  const nodes = doc.nodes || [];
  if (doc.sum) {
    out.push(
      h('h3', {}, 'All nodes this node can see, by node'),
      h('p', {}, h('strong', { id: 'activity-sum-total' }, String(doc.sum.total)), ` evaluations summed over `,
        h('span', { id: 'activity-sum-nodes' }, String(doc.sum.nodes)), doc.sum.nodes === 1 ? ' node' : ' nodes',
        nodes.length > 1 ? '' : ' (no replica has reported evaluations of this flag)', '.'),
      chartOf('activity-sum-chart', 'Evaluations on all nodes', nodes, a.minutes, start, doc.sum.total),
      h('ul', { class: 'legend', id: 'activity-nodes' }, nodes.map((x, k) =>
        h('li', { 'data-node': x.node }, h('span', { class: `dot c${k % 6}` }), `${x.node}${x.self ? ' (this node)' : ''}: ${x.total}`))));
  }
  return out;
}
