// history.js - who changed what: a flag's history (/namespaces/{ns}/flags/{key}/history) and the
// namespace's activity feed (/namespaces/{ns}/history), both from
// GET /edgeflag/v1/namespaces/{ns}/history[?flag=KEY] (docs/api.md, "History"), newest first, with
// the author (token name or id, "anonymous" without authentication, the replicas that forwarded
// it) and a readable diff of every row the write touched: only the fields that changed, old and
// new side by side. "Older" follows nextPageToken. It must never show a field it was not sent.
import * as api from './api.js';
import { h, fmtTime } from './dom.js';

// Bookkeeping columns a person does not need in a diff.
const HIDDEN = new Set(['created_at', 'updated_at', 'namespace_key']);

export async function historyView(ctx) {
  const [ns, flag] = ctx.params;
  const q = flag ? `?flag=${api.enc(flag)}&limit=20` : '?limit=20';
  const base = `/edgeflag/v1/namespaces/${api.enc(ns)}/history`;
  const first = await api.get(base + q);
  const list = h('ol', { class: 'history', id: 'history-list' });
  const more = h('div', { class: 'actions' });
  const add = (page) => {
    list.append(...(page.records || []).map(record));
    more.replaceChildren(...(page.nextPageToken ? [h('button', { type: 'button', id: 'history-older', onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        add(await api.get(`${base}${q}&pageToken=${api.enc(page.nextPageToken)}`));
      } catch (e) {
        more.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
      }
    } }, 'Older changes')] : []));
  };
  add(first);
  const title = flag ? `History of ${flag}` : `Activity in ${ns}`;
  return h('section', { class: 'panel', 'aria-labelledby': 'history-title' },
    flag ? h('p', { class: 'crumbs' }, h('a', { href: `/namespaces/${api.enc(ns)}/flags` }, 'Flags'), ' / ',
      h('a', { href: `/namespaces/${api.enc(ns)}/flags/${api.enc(flag)}` }, h('code', {}, flag)), ' / history') : null,
    h('h1', { id: 'history-title' }, title),
    h('p', { class: 'muted' }, flag ? 'Every change to this flag, its variants, rules and rollouts, newest first.'
      : 'Every change in this namespace, newest first.'),
    (first.records || []).length ? list : h('p', { class: 'empty', id: 'history-empty' }, 'No changes recorded yet (history starts where this node\'s change log starts).'),
    more);
}

export function author(r) {
  const a = r.actor;
  let who;
  if (!a) who = 'the server (no request)';
  else if (a.method === 'none') who = 'anonymous';
  else who = a.name || a.email || a.id || a.method;
  const via = r.via ? ` via ${r.via}` : '';
  return `${who}${via}`;
}

function record(r) {
  const changes = r.changes && r.changes.length ? r.changes : [{ type: r.type, key: r.key, before: r.before, after: r.after }];
  return h('li', { class: 'history-record', dataset: { seq: String(r.seq) } },
    h('p', { class: 'write-head' },
      h('strong', { class: 'history-action' }, `${r.type} ${r.action}`), ' ', r.key ? h('code', {}, r.key) : null,
      ' by ', h('span', { class: 'history-author' }, author(r)),
      h('span', { class: 'muted' }, ` · ${fmtTime(r.time)} · #${r.seq}`)),
    changes.map((c) => diff(c)));
}

// Columns as stored, made readable: 0/1 switches, Flipt's type enums, empty values.
const READABLE = {
  enabled: (v) => (v ? 'on' : 'off'),
  type: (v, table) => (table === 'flags' || table === undefined ? ['variant', 'boolean'][v] ?? String(v) : String(v)),
};
function show(v, k, table) {
  if (v === null || v === undefined || v === '' || (typeof v === 'object' && Object.keys(v).length === 0)) return '(empty)';
  if (READABLE[k] && typeof v === 'number') return READABLE[k](v, table);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

// A table of the fields that differ between before and after (all of them for a creation or a
// deletion, without bookkeeping columns).
export function diff(c) {
  const before = c.before || {};
  const after = c.after || {};
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !HIDDEN.has(k) && k !== 'id');
  const changed = keys.filter((k) => show(before[k], k, c.table) !== show(after[k], k, c.table));
  const label = `${c.type || c.table || 'row'}${c.key ? ` ${c.key}` : ''}${!c.before ? ' (created)' : !c.after ? ' (deleted)' : ''}`;
  if (!changed.length) return h('p', { class: 'muted diff-none' }, `${label}: no visible field changed`);
  return h('table', { class: 'diff' },
    h('caption', { class: 'muted' }, label),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After'))),
    h('tbody', {}, changed.map((k) => h('tr', { dataset: { field: k } },
      h('th', { scope: 'row' }, k),
      h('td', { class: c.before ? 'old' : '' }, c.before ? show(before[k], k, c.table) : '—'),
      h('td', { class: c.after ? 'new' : '' }, c.after ? show(after[k], k, c.table) : '—')))));
}
