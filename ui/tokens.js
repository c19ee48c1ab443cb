// tokens.js - the tokens page: create a client token (name, description, optional expiry and
// namespace scope; the secret is shown once, right after creation, and never again), list the
// tokens with their scope and expiry, expire one now (PUT /auth/v1/tokens/{id}/expire: it stays
// listed, expired) or delete it. It must never store or re-display a token's secret.
import * as api from './api.js';
import { h, field, input, select, form, fieldError, confirmDelete, fmtTime, ctl } from './dom.js';

const NAME = 'io.flipt.auth.token.name';
const DESC = 'io.flipt.auth.token.description';
const NS = 'io.flipt.auth.token.namespace';

export async function tokensView(ctx) {
  const [{ authentications = [] }, { namespaces = [] }] = await Promise.all([
    api.get('/auth/v1/tokens'),
    api.get('/api/v1/namespaces').catch(() => ({ namespaces: [] })),
  ]);
  const created = h('div', { id: 'token-created', 'aria-live': 'polite' });
  return h('div', {},
    h('section', { class: 'panel', 'aria-labelledby': 'tokens-title' },
      h('h1', { id: 'tokens-title' }, 'Tokens'),
      h('p', { class: 'muted' }, 'Client tokens for the API. A token is shown once, when it is created; only its hash is kept.'),
      created,
      createForm(ctx, namespaces, created)),
    h('section', { class: 'panel', 'aria-labelledby': 'tokens-list-title' },
      h('h2', { id: 'tokens-list-title' }, `Tokens (${authentications.length})`),
      authentications.length ? list(ctx, authentications) : h('p', { class: 'empty' }, 'No tokens yet.')));
}

function createForm(ctx, namespaces, created) {
  const nsOptions = [['', 'All namespaces'], ...namespaces.map((n) => [n.key, n.name ? `${n.name} (${n.key})` : n.key])];
  return form({ id: 'token-form-new', class: 'stack', 'aria-label': 'Create a token' }, [
    field('Name', input('name', { required: true })),
    field('Description', input('description')),
    field('Namespace scope', select('namespaceKey', nsOptions, ''), 'A scoped token reaches only that namespace.'),
    field('Expires at', input('expiresAt', { type: 'datetime-local' }), 'Empty: never.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create token')),
  ], async (f) => {
    const name = ctl(f, 'name').value.trim();
    if (!name) throw fieldError('name', 'Enter a name.');
    const body = { name, description: ctl(f, 'description').value.trim() };
    const ns = ctl(f, 'namespaceKey').value;
    if (ns) body.namespaceKey = ns;
    const exp = ctl(f, 'expiresAt').value;
    if (exp) {
      const d = new Date(exp);
      if (Number.isNaN(d.getTime())) throw fieldError('expiresAt', 'Not a date and time.');
      body.expiresAt = d.toISOString().replace(/\.\d+Z$/, 'Z');
    }
    const r = await api.post('/auth/v1/method/token', body);
    f.reset();
    delete f.dataset.dirty;
    await ctx.refresh();
    const slot = document.getElementById('token-created');
    if (slot) showOnce(slot, r.clientToken, name);
  });
}

// The secret, once: copy it now. Nothing keeps it after this page is left. It sits in a form
// marked as being edited, so the live refresh (the token write moved the version) does not redraw
// the page under it (app.js) until Done.
function showOnce(slot, secret, name) {
  const code = h('p', { class: 'secret', id: 'token-secret', tabindex: '0' }, secret);
  slot.replaceChildren(h('form', { class: 'card', role: 'alert', dataset: { dirty: '1' }, onsubmit: (ev) => ev.preventDefault() },
    h('div', { class: 'grow' },
      h('p', {}, h('strong', {}, `Token "${name}" created.`), ' Copy it now: it will not be shown again.'),
      code,
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: async (ev) => {
          try { await navigator.clipboard.writeText(secret); ev.target.textContent = 'Copied'; } catch { ev.target.textContent = 'Select the text and copy it'; }
        } }, 'Copy'),
        h('button', { type: 'button', onclick: () => slot.replaceChildren() }, 'Done')))));
  code.focus();
}

function expired(t) {
  return t.expiresAt && new Date(t.expiresAt).getTime() <= Date.now();
}

function list(ctx, tokens) {
  const rows = [...tokens].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  return h('ul', { class: 'cards', id: 'tokens-list' }, rows.map((t) => {
    const m = t.metadata || {};
    const err = h('p', { class: 'error', role: 'alert' });
    const act = (fn) => async () => {
      err.textContent = '';
      try { await fn(); await ctx.refresh(); } catch (e) { err.textContent = e.message; }
    };
    return h('li', { class: 'card token-row', dataset: { id: t.id } },
      h('div', { class: 'grow' },
        h('p', { class: 'title' }, m[NAME] || '(no name)',
          expired(t) ? h('span', { class: 'tag off' }, 'expired') : h('span', { class: 'tag on' }, 'active')),
        m[DESC] ? h('p', { class: 'muted' }, m[DESC]) : null,
        h('p', { class: 'meta' },
          'Scope: ', m[NS] ? h('code', { class: 'token-scope' }, m[NS]) : h('span', { class: 'token-scope' }, 'all namespaces'),
          ' · created ', fmtTime(t.createdAt),
          ' · ', t.expiresAt ? `expires ${fmtTime(t.expiresAt)}` : 'never expires'),
        h('p', { class: 'muted' }, 'id ', h('code', {}, t.id)),
        err),
      h('div', { class: 'actions' },
        expired(t) ? null : h('button', { type: 'button', class: 'small', onclick: act(() => api.put(`/auth/v1/tokens/${api.enc(t.id)}/expire`, {})) },
          h('span', {}, 'Expire now'), h('span', { class: 'sr-only' }, ` ${m[NAME] || t.id}`)),
        h('button', { type: 'button', class: 'small danger', onclick: act(async () => {
          if (!(await confirmDelete(`Delete token "${m[NAME] || t.id}"? Clients using it are refused at once.`))) return;
          await api.del(`/auth/v1/tokens/${api.enc(t.id)}`);
        }) }, h('span', {}, 'Delete'), h('span', { class: 'sr-only' }, ` ${m[NAME] || t.id}`))));
  }));
}
