// dom.js - small DOM helpers shared by the views: element creation, labelled form fields with an
// error slot, showing a server error next to the field it names, and the delete confirmation.
// It must never build markup from strings (no innerHTML with data): text always goes in as text.
import { ApiError } from './api.js';

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `ui${uid}-${prefix}`; // app.js never restores focus by these (they change per render)
}

// h('button', {class: 'x', onclick: fn}, 'text', child...)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// A labelled control with hint and error slot. control: an element (input/select/textarea) whose
// name is the API field it edits.
export function field(label, control, hint) {
  const id = control.id || nextId(control.name || 'f');
  control.id = id;
  const errId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  control.setAttribute('aria-describedby', [hintId, errId].filter(Boolean).join(' '));
  return h('div', { class: 'field', dataset: { field: control.name || '' } },
    h('label', { for: id }, label),
    control,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    h('p', { class: 'error', id: errId, 'aria-live': 'polite' }));
}

export function input(name, attrs = {}) {
  return h('input', { name, type: 'text', autocomplete: 'off', ...attrs });
}

export function select(name, options, value, attrs = {}) {
  const el = h('select', { name, ...attrs },
    options.map(([v, text]) => h('option', { value: v }, text)));
  if (value !== undefined) el.value = value;
  return el;
}

// Clears every error shown in a form.
export function clearErrors(form) {
  for (const p of form.querySelectorAll('.error')) p.textContent = '';
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
}

// Shows an error next to the field it names (err.field, or the given name), else at the form's
// own error slot. Focuses the field so keyboard and screen-reader users land on it.
export function showError(form, err, name) {
  const fieldName = name || (err instanceof ApiError ? err.field : '') || '';
  const message = err instanceof Error ? err.message : String(err);
  let slot = null;
  let control = null;
  if (fieldName) {
    const wrap = [...form.querySelectorAll('.field')].find((f) => f.dataset.field === fieldName);
    if (wrap) {
      slot = wrap.querySelector('.error');
      control = wrap.querySelector('input,select,textarea,fieldset');
    }
  }
  if (!slot) slot = form.querySelector(':scope > .form-error');
  if (!slot) {
    slot = h('p', { class: 'error form-error', role: 'alert' });
    form.prepend(slot);
  }
  slot.textContent = message;
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  }
}

// A form whose submit handler is async: errors go next to their field, the button is disabled
// while the request runs, and a successful submit clears the dirty mark.
export function form(attrs, children, onsubmit) {
  const f = h('form', { novalidate: true, ...attrs }, h('p', { class: 'error form-error', role: 'alert' }), children);
  f.addEventListener('input', () => { f.dataset.dirty = '1'; });
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(f);
    const buttons = [...f.querySelectorAll('button')];
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await onsubmit(f, ev.submitter);
      delete f.dataset.dirty;
    } catch (e) {
      showError(f, e, e.fieldName);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return f;
}

// An error raised by the UI's own checks, for a named field.
export function fieldError(name, message) {
  const e = new Error(message);
  e.fieldName = name;
  return e;
}

// The shared confirmation dialog; resolves true when the user confirms.
export function confirmDelete(text) {
  const dlg = document.getElementById('confirm-dialog');
  document.getElementById('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.returnValue = 'cancel';
    dlg.showModal();
    document.getElementById('confirm-ok').focus();
  });
}

// A horizontal bar of percentages: parts [{label, value}] summing to at most 100.
export function percentBar(parts, label) {
  const bar = h('div', { class: 'bar', role: 'img', 'aria-label': label });
  parts.forEach((p, i) => {
    if (!(p.value > 0)) return;
    const seg = h('span', { class: `seg c${i % 6}`, title: `${p.label}: ${p.value}%` },
      p.value >= 12 ? `${p.label} ${p.value}%` : '');
    seg.style.width = `${Math.min(100, p.value)}%`; // CSSOM, allowed by the CSP (no inline styles)
    bar.append(seg);
  });
  return bar;
}

export function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString();
}

// A named control of a form (never the form's own properties such as form.name).
export function ctl(f, name) {
  return f.elements.namedItem(name);
}
