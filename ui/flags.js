// flags.js - the flags list of a namespace (search, enable toggle) and the new-flag form.
// It must never change a flag other than by the enable toggle the user pressed.
import * as api from './api.js';
import { h, field, input, select, form, fieldError, ctl } from './dom.js';
import { checkKey } from './validate.js';

export async function flagsView(ctx) {
  const { ns } = ctx;
  const { flags = [] } = await api.get(api.nsPath(ns, '/flags'));
  const q = new URLSearchParams(location.search).get('q') || '';
  const search = h('input', { type: 'search', id: 'flag-search', name: 'q', value: q, placeholder: 'key, name or description', autocomplete: 'off' });
  const list = h('ul', { class: 'cards', id: 'flag-list' });
  const count = h('p', { class: 'muted', 'aria-live': 'polite' });
  const fill = () => {
    const term = search.value.trim().toLowerCase();
    const shown = flags.filter((f) => !term || [f.key, f.name, f.description].some((s) => (s || '').toLowerCase().includes(term)));
    list.replaceChildren(...shown.map((f) => flagRow(ctx, f)));
    count.textContent = `${shown.length} of ${flags.length} flags`;
    const u = new URL(location.href);
    if (term) u.searchParams.set('q', search.value.trim()); else u.searchParams.delete('q');
    history.replaceState(null, '', u.pathname + u.search);
  };
  search.addEventListener('input', fill);
  fill();
  return h('section', { class: 'panel' },
    h('div', { class: 'head' },
      h('h1', {}, 'Flags'),
      h('a', { class: 'button primary', href: `/namespaces/${api.enc(ns)}/flags/new` }, 'New flag')),
    h('div', { class: 'field search' }, h('label', { for: 'flag-search' }, 'Search flags'), search),
    count,
    flags.length ? list : h('p', { class: 'empty' }, 'No flags in this namespace yet.'));
}

function flagRow(ctx, f) {
  const id = `enabled-${f.key}`;
  const toggle = h('input', { type: 'checkbox', role: 'switch', id, class: 'switch', checked: f.enabled, 'aria-describedby': `${id}-error` });
  const err = h('span', { class: 'error', id: `${id}-error`, 'aria-live': 'polite' });
  toggle.addEventListener('change', async () => {
    err.textContent = '';
    toggle.disabled = true;
    try {
      const body = { name: f.name, description: f.description, enabled: toggle.checked };
      if (f.defaultVariant) body.defaultVariantId = f.defaultVariant.id;
      if (f.metadata) body.metadata = f.metadata;
      const upd = await api.put(api.nsPath(ctx.ns, `/flags/${api.enc(f.key)}`), body);
      f.enabled = upd.enabled;
    } catch (e) {
      toggle.checked = f.enabled;
      err.textContent = e.message;
    } finally {
      toggle.disabled = false;
    }
  });
  return h('li', { class: 'card flag-row' },
    h('div', { class: 'grow' },
      h('a', { href: `/namespaces/${api.enc(ctx.ns)}/flags/${api.enc(f.key)}`, class: 'title' }, f.name || f.key),
      h('div', { class: 'meta' },
        h('code', {}, f.key), ' ',
        h('span', { class: 'tag' }, f.type === 'BOOLEAN_FLAG_TYPE' ? 'boolean' : 'variant'),
        f.type !== 'BOOLEAN_FLAG_TYPE' ? ` · ${f.variants.length} variants` : ''),
      f.description ? h('p', { class: 'desc' }, f.description) : null),
    h('div', { class: 'toggle' },
      h('label', { for: id }, 'Enabled'), toggle, err));
}

export async function newFlagView(ctx) {
  const { ns } = ctx;
  const f = form({ class: 'panel stack', 'aria-labelledby': 'new-flag-title' }, [
    h('h1', { id: 'new-flag-title' }, 'New flag'),
    field('Key', input('key', { required: true, pattern: '[-_,A-Za-z0-9]+' }), 'Letters, digits, - _ and , only. Cannot change later.'),
    field('Name', input('name', { required: true })),
    field('Description', h('textarea', { name: 'description', rows: 2 })),
    field('Type', select('type', [['VARIANT_FLAG_TYPE', 'Variant'], ['BOOLEAN_FLAG_TYPE', 'Boolean']], 'VARIANT_FLAG_TYPE'), 'Cannot change later.'),
    h('div', { class: 'check' }, h('input', { type: 'checkbox', name: 'enabled', id: 'new-flag-enabled' }), h('label', { for: 'new-flag-enabled' }, 'Enabled')),
    h('div', { class: 'actions' },
      h('a', { class: 'button', href: `/namespaces/${api.enc(ns)}/flags` }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary' }, 'Create flag')),
  ], async (el) => {
    const key = ctl(el, 'key').value.trim();
    const keyErr = checkKey(key);
    if (keyErr) throw fieldError('key', keyErr);
    if (!ctl(el, 'name').value.trim()) throw fieldError('name', 'invalid field name: must not be empty');
    const flag = await api.post(api.nsPath(ns, '/flags'), {
      key, name: ctl(el, 'name').value.trim(), description: ctl(el, 'description').value, type: ctl(el, 'type').value, enabled: ctl(el, 'enabled').checked,
    });
    ctx.navigate(`/namespaces/${api.enc(ns)}/flags/${api.enc(flag.key)}`);
  });
  return f;
}
