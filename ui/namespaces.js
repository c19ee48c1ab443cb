// namespaces.js - the namespaces page: list, switch to one, create, delete (with confirmation).
// It must never offer to delete a protected namespace (the server refuses it anyway).
import * as api from './api.js';
import { h, field, input, form, fieldError, confirmDelete, ctl } from './dom.js';
import { checkKey } from './validate.js';

export async function namespacesView(ctx) {
  const { namespaces = [] } = await api.get('/api/v1/namespaces');
  return h('div', {},
    h('section', { class: 'panel' },
      h('h1', {}, 'Namespaces'),
      h('ul', { class: 'cards' }, namespaces.map((n) => h('li', { class: 'card' },
        h('div', { class: 'grow' },
          h('a', { class: 'title', href: `/namespaces/${api.enc(n.key)}/flags` }, n.name || n.key),
          h('div', { class: 'meta' }, h('code', {}, n.key), n.protected ? h('span', { class: 'tag' }, 'protected') : null,
            n.key === ctx.ns ? h('span', { class: 'tag on' }, 'current') : null),
          n.description ? h('p', { class: 'desc' }, n.description) : null),
        n.protected ? null : h('div', { class: 'actions' }, h('button', {
          type: 'button', class: 'small danger', 'aria-label': `Delete namespace ${n.key}`,
          onclick: async (ev) => {
            if (!(await confirmDelete(`Delete namespace "${n.key}"? It must have no flags.`))) return;
            try {
              await api.del(`/api/v1/namespaces/${api.enc(n.key)}`);
              await ctx.reloadNamespaces();
              ctx.refresh();
            } catch (e) {
              let el = ev.target.parentElement.querySelector('.inline-error');
              if (!el) { el = h('p', { class: 'error inline-error', role: 'alert' }); ev.target.parentElement.append(el); }
              el.textContent = e.message;
            }
          },
        }, 'Delete')))))),
    form({ class: 'panel stack', 'aria-labelledby': 'new-ns-title', id: 'new-namespace' }, [
      h('h2', { id: 'new-ns-title' }, 'New namespace'),
      h('div', { class: 'row' },
        field('Key', input('key', { required: true })),
        field('Name', input('name', { required: true }))),
      field('Description', input('description')),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create namespace')),
    ], async (el) => {
      const key = ctl(el, 'key').value.trim();
      const err = checkKey(key);
      if (err) throw fieldError('key', err);
      const name = ctl(el, 'name').value.trim();
      if (!name) throw fieldError('name', 'invalid field name: must not be empty');
      await api.post('/api/v1/namespaces', { key, name, description: ctl(el, 'description').value });
      await ctx.reloadNamespaces();
      ctx.navigate(`/namespaces/${api.enc(key)}/flags`);
    }));
}
