// console.js - the evaluation console: pick a flag, give an entity id and a context, and see the
// server's own /evaluate/v1 answer (variant or boolean by the flag's type) with reason and matched
// segments, plus the raw JSON. It must never compute an answer itself: it only shows the server's.
import * as api from './api.js';
import { h, field, input, select, form, fieldError, ctl } from './dom.js';

export async function consoleView(ctx) {
  const { ns } = ctx;
  const { flags = [] } = await api.get(api.nsPath(ns, '/flags'));
  const want = new URLSearchParams(location.search).get('flag') || '';
  const out = h('div', { id: 'eval-result', class: 'result', 'aria-live': 'polite' });
  const f = form({ class: 'panel stack', 'aria-labelledby': 'console-title', id: 'eval-form' }, [
    h('h1', { id: 'console-title' }, 'Evaluation console'),
    h('p', { class: 'hint' }, `Asks this server exactly what a client would ask (POST /evaluate/v1/…) in namespace "${ns}".`),
    flags.length ? null : h('p', { class: 'empty' }, 'No flags in this namespace yet.'),
    field('Flag', select('flagKey', flags.map((x) => [x.key, `${x.key} (${x.type === 'BOOLEAN_FLAG_TYPE' ? 'boolean' : 'variant'})`]),
      flags.some((x) => x.key === want) ? want : undefined)),
    field('Entity ID', input('entityId', { value: sessionStorage.getItem('edgeflag.console.entity') || '' }), 'Who is asking, e.g. a user id. It decides percentage buckets.'),
    field('Context (JSON object of strings)', h('textarea', { name: 'context', rows: 4, class: 'code', spellcheck: 'false',
      value: sessionStorage.getItem('edgeflag.console.context') || '{}' }), 'E.g. {"plan": "pro", "age": "42"}. Values must be strings.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', disabled: !flags.length }, 'Evaluate')),
  ], async (el) => {
    const flagKey = ctl(el, 'flagKey').value;
    const flag = flags.find((x) => x.key === flagKey);
    if (!flag) throw fieldError('flagKey', 'choose a flag');
    const entityId = ctl(el, 'entityId').value;
    let context;
    try {
      context = JSON.parse(ctl(el, 'context').value || '{}');
    } catch (e) {
      throw fieldError('context', `context is not valid JSON: ${e.message}`);
    }
    if (!context || typeof context !== 'object' || Array.isArray(context)) throw fieldError('context', 'context must be a JSON object');
    const bad = Object.entries(context).find(([, v]) => typeof v !== 'string');
    if (bad) throw fieldError('context', `context value of "${bad[0]}" must be a string (write "${bad[1]}")`);
    sessionStorage.setItem('edgeflag.console.entity', entityId);
    sessionStorage.setItem('edgeflag.console.context', ctl(el, 'context').value);
    const kind = flag.type === 'BOOLEAN_FLAG_TYPE' ? 'boolean' : 'variant';
    let res;
    try {
      res = await api.post(`/evaluate/v1/${kind}`, { namespaceKey: ns, flagKey, entityId, context });
    } catch (e) {
      out.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
      throw e;
    }
    out.replaceChildren(resultView(kind, res));
    delete el.dataset.dirty;
  });
  return h('div', { class: 'console' }, f, h('section', { class: 'panel', 'aria-labelledby': 'result-title' }, h('h2', { id: 'result-title' }, 'Answer'), out));
}

function row(label, value, id) {
  return [h('dt', {}, label), h('dd', { id }, value)];
}

function resultView(kind, r) {
  const segs = r.segmentKeys && r.segmentKeys.length ? r.segmentKeys.map((s) => h('span', { class: 'chip' }, s)) : '—';
  return h('div', {},
    h('dl', { class: 'facts' },
      kind === 'variant'
        ? [row('Match', String(r.match), 'res-match'), row('Variant', r.variantKey || '—', 'res-variant')]
        : row('Enabled', String(r.enabled), 'res-enabled'),
      row('Reason', r.reason, 'res-reason'),
      row('Matched segments', segs, 'res-segments'),
      kind === 'variant' && r.variantAttachment ? row('Attachment', h('code', {}, r.variantAttachment), 'res-attachment') : null,
      row('Duration', `${r.requestDurationMillis} ms`, 'res-duration')),
    h('details', {}, h('summary', {}, 'Raw response'), h('pre', { class: 'code', id: 'res-raw' }, JSON.stringify(r, null, 2))));
}
