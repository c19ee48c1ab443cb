// app.js - the UI's entry point: routes URLs to views, keeps the namespace switch and navigation
// current, asks for a token when authentication is on, and re-renders the open view when the
// live stream says the node's data changed (unless the user is in the middle of editing a form).
// It must never reload the page to show new data, and never drop what a user is typing.
import * as api from './api.js';
import { h } from './dom.js';
import { Live } from './live.js';
import { flagsView, newFlagView } from './flags.js';
import { flagView } from './flag.js';
import { segmentsView, segmentView, newSegmentView } from './segments.js';
import { consoleView } from './console.js';
import { clusterView } from './cluster.js';
import { namespacesView } from './namespaces.js';
import { tokensView } from './tokens.js';
import { historyView } from './history.js';

const ROUTES = [
  [/^\/namespaces\/?$/, namespacesView, 'namespaces'],
  [/^\/namespaces\/([^/]+)\/flags\/?$/, flagsView, 'flags'],
  [/^\/namespaces\/([^/]+)\/flags\/new$/, newFlagView, 'flags'],
  [/^\/namespaces\/([^/]+)\/flags\/([^/]+)$/, flagView, 'flags'],
  [/^\/namespaces\/([^/]+)\/segments\/?$/, segmentsView, 'segments'],
  [/^\/namespaces\/([^/]+)\/segments\/new$/, newSegmentView, 'segments'],
  [/^\/namespaces\/([^/]+)\/segments\/([^/]+)$/, segmentView, 'segments'],
  [/^\/namespaces\/([^/]+)\/console\/?$/, consoleView, 'console'],
  [/^\/namespaces\/([^/]+)\/history\/?$/, historyView, 'history'],
  [/^\/namespaces\/([^/]+)\/flags\/([^/]+)\/history$/, historyView, 'flags'],
  [/^\/cluster\/?$/, clusterView, 'cluster'],
  [/^\/tokens\/?$/, tokensView, 'tokens'],
];

const state = {
  ns: localStorage.getItem('edgeflag.ns') || 'default',
  namespaces: [],
  live: new Live(),
  renderSeq: 0,
  rendering: false,
  renderedVersion: 0, // the node version the page on screen reflects
  current: null, // {view, params, nav}
};

const main = document.getElementById('main');

export function navigate(path, replace = false) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route(true);
}

// The view of a path, or null (then the flags list is shown). A segment that is not valid
// percent-encoding (a typed or truncated link: /namespaces/%E0) matches nothing, rather than
// throwing out of routing and leaving the page blank.
function match(path) {
  for (const [re, view, nav] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    try {
      return { view, nav, params: m.slice(1).map(decodeURIComponent) };
    } catch {
      return null;
    }
  }
  return null;
}

async function route(focusMain) {
  const path = location.pathname;
  const m = match(path);
  if (!m) {
    navigate(`/namespaces/${encodeURIComponent(state.ns)}/flags`, true);
    return;
  }
  if (!['namespaces', 'cluster', 'tokens'].includes(m.nav) && m.params[0] && m.params[0] !== state.ns) {
    state.ns = m.params[0];
    localStorage.setItem('edgeflag.ns', state.ns);
  }
  state.current = m;
  updateNav();
  await render(focusMain);
}

// Renders the current view into <main>. A later render wins over a slower earlier one.
async function render(focusMain, keepFocus) {
  const m = state.current;
  if (!m) return;
  const seq = ++state.renderSeq;
  const ctx = { ns: state.ns, params: m.params, navigate, refresh: () => render(false, true), live: state.live, reloadNamespaces };
  const seen = { version: Infinity };
  let node;
  state.rendering = true;
  try {
    api.trackVersions(seen); // every read until the view resolves (extra reads only lower it)
    node = await m.view(ctx);
  } catch (e) {
    node = h('section', { class: 'panel' }, h('h1', {}, 'Something went wrong'),
      h('p', { class: 'error', role: 'alert' }, e.message));
  }
  if (seq !== state.renderSeq) return;
  api.trackVersions(null);
  state.rendering = false;
  state.renderedVersion = seen.version === Infinity ? (state.live.version ?? 0) : seen.version;
  const focus = keepFocus ? focusPath() : null;
  const scroll = window.scrollY;
  main.replaceChildren(node);
  if (focus) restoreFocus(focus);
  if (keepFocus) window.scrollTo(0, scroll);
  if (focusMain) {
    const h1 = main.querySelector('h1');
    document.title = `${h1 ? h1.textContent : 'edgeflag'} · edgeflag`;
    main.focus({ preventScroll: true });
  }
}

const FOCUSABLE = 'a[href],button,input,select,textarea,summary,[tabindex="0"]';
function focusPath() {
  const a = document.activeElement;
  if (!a || !main.contains(a) || a === main) return null;
  return { id: a.id && !/^ui\d+-/.test(a.id) ? a.id : '', index: [...main.querySelectorAll(FOCUSABLE)].indexOf(a) };
}
function restoreFocus(f) {
  const el = (f.id && document.getElementById(f.id)) || main.querySelectorAll(FOCUSABLE)[f.index];
  if (el) el.focus({ preventScroll: true });
}

// True when the user is editing: a form with unsaved input, or an open dialog.
function busy() {
  return !!main.querySelector('form[data-dirty]') || !!document.querySelector('dialog[open]');
}

function updateNav() {
  const ns = encodeURIComponent(state.ns);
  for (const a of document.querySelectorAll('[data-nav]')) {
    const nav = a.dataset.nav;
    if (nav === 'flags' || nav === 'segments' || nav === 'console' || nav === 'history') a.setAttribute('href', `/namespaces/${ns}/${nav}`);
    if (state.current && state.current.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const sel = document.getElementById('ns-select');
  sel.replaceChildren(...state.namespaces.map((n) => h('option', { value: n.key }, n.name || n.key)));
  if (!state.namespaces.some((n) => n.key === state.ns)) sel.append(h('option', { value: state.ns }, state.ns));
  sel.value = state.ns;
}

async function reloadNamespaces() {
  try {
    const r = await api.get('/api/v1/namespaces');
    state.namespaces = r.namespaces || [];
  } catch {
    state.namespaces = [];
  }
  updateNav();
}

function onNamespaceChange(ev) {
  const ns = ev.target.value;
  state.ns = ns;
  localStorage.setItem('edgeflag.ns', ns);
  const nav = state.current && ['flags', 'segments', 'console', 'history'].includes(state.current.nav) ? state.current.nav : 'flags';
  navigate(`/namespaces/${encodeURIComponent(ns)}/${nav}`);
}

function liveLabel(live) {
  const el = document.getElementById('live');
  const st = live.status;
  let text;
  if (live.state === 'live') text = `${st.role || 'node'} · v${st.version}${st.role === 'replica' ? (st.connected ? ' · in sync' : ' · upstream lost') : ''}`;
  else if (live.state === 'standalone') text = `standalone · v${live.version ?? '?'}`;
  else if (live.state === 'reconnecting') text = 'reconnecting…';
  else text = 'connecting…';
  el.textContent = text;
  el.dataset.state = live.state === 'live' && st.role === 'replica' && !st.connected ? 'warn' : live.state;
}

// ---- authentication ----------------------------------------------------------------------------

// What GET /auth/v1/method says: {token, jwt, providers: [name]} (providers: OIDC sign-in).
let methods = { token: false, jwt: false, providers: [] };

// Starts an OIDC sign-in: the server answers where to send the browser (and sets its state cookie).
async function signInWith(provider, err) {
  try {
    const r = await fetch(`/auth/v1/method/oidc/${encodeURIComponent(provider)}/authorize`);
    const j = await r.json();
    if (!r.ok || !j.authorizeUrl) throw new Error(j.message || `HTTP ${r.status}`);
    location.assign(j.authorizeUrl);
  } catch (e) {
    err.textContent = `cannot start the sign-in: ${e.message}`;
  }
}

// The signed-in person of a cookie session, or null; keeps the session's CSRF token.
async function session() {
  if (!methods.providers.length) return null;
  try {
    const r = await fetch('/auth/v1/self', { headers: { Accept: 'application/json' } });
    if (!r.ok) return null;
    const j = await r.json();
    if (j.method !== 'METHOD_OIDC') return null;
    api.setCsrf(r.headers.get('X-CSRF-Token'));
    const m = j.metadata || {};
    return { name: m['io.flipt.auth.oidc.name'] || m['io.flipt.auth.oidc.email'] || m['io.flipt.auth.oidc.sub'] || 'signed in', email: m['io.flipt.auth.oidc.email'] || '' };
  } catch {
    return null;
  }
}

function showUser(user) {
  const el = document.getElementById('who');
  if (!user) {
    el.hidden = true;
    el.replaceChildren();
    return;
  }
  const out = h('button', { type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out');
  el.replaceChildren(h('span', { class: 'who-name', title: user.email }, user.name), ' ', out);
  el.hidden = false;
}

async function signOut() {
  try {
    await api.put('/auth/v1/self/expire', {});
  } catch {
    // expired already: the cookie is cleared either way below by the reload's sign-in prompt
  }
  api.setCsrf('');
  location.assign('/');
}

let prompting = null;
function askToken(message) {
  if (prompting) return prompting;
  const dlg = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  const err = document.getElementById('token-error');
  const sso = document.getElementById('sso-buttons');
  err.textContent = message || '';
  sso.replaceChildren(...methods.providers.map((p) =>
    h('button', { type: 'button', class: 'primary', 'data-provider': p, onclick: () => signInWith(p, err) }, `Sign in with ${p}`)));
  sso.hidden = !methods.providers.length;
  document.getElementById('token-fields').hidden = !(methods.token || methods.jwt);
  input.value = '';
  prompting = new Promise((resolve) => {
    const submit = async (ev) => {
      ev.preventDefault();
      const t = input.value.trim();
      if (!t) {
        err.textContent = 'Enter a token.';
        input.setAttribute('aria-invalid', 'true');
        return;
      }
      api.setToken(t);
      try {
        await api.get('/api/v1/namespaces');
      } catch (e) {
        api.setToken('');
        err.textContent = e.message;
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      input.removeAttribute('aria-invalid');
      form.removeEventListener('submit', submit);
      dlg.close();
      prompting = null;
      resolve();
    };
    form.addEventListener('submit', submit);
    dlg.addEventListener('cancel', (ev) => ev.preventDefault()); // a token is required
    dlg.showModal();
    input.focus();
  });
  return prompting;
}

async function authRequired() {
  try {
    const r = await fetch('/auth/v1/method');
    const j = await r.json();
    const on = (name) => (j.methods || []).find((m) => m.method === name && m.enabled);
    const oidc = on('METHOD_OIDC');
    methods = { token: !!on('METHOD_TOKEN'), jwt: !!on('METHOD_JWT'), providers: Object.keys(oidc?.metadata?.providers || {}) };
    return methods.token || methods.jwt || methods.providers.length > 0;
  } catch {
    return false;
  }
}

async function start() {
  document.addEventListener('click', (ev) => {
    const a = ev.target.closest('a[href]');
    if (!a || a.target || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
    ev.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => route(true));
  document.getElementById('ns-select').addEventListener('change', onNamespaceChange);

  api.onUnauthorized(async (e) => {
    api.setToken('');
    api.setCsrf('');
    showUser(null);
    await askToken(e.message);
    state.live.start();
    await reloadNamespaces();
    render(false);
  });
  if ((await authRequired()) && !api.token()) {
    const user = await session();
    showUser(user);
    if (!user) await askToken('');
  }

  state.live.subscribe((live, changed) => {
    liveLabel(live);
    const behind = live.version !== null && live.version > state.renderedVersion;
    if (!behind || state.rendering) return;
    if (!busy()) {
      if (changed) reloadNamespaces();
      render(false, true);
    } else if (changed) {
      showBanner('This data changed on the server. Save or cancel your edit to see the new state.');
    }
  });
  state.live.start();
  await reloadNamespaces();
  await route(false);
}

function showBanner(text) {
  const b = document.getElementById('banner');
  b.replaceChildren(text, ' ', h('button', { type: 'button', onclick: () => { b.hidden = true; render(false, true); } }, 'Show changes'));
  b.hidden = false;
}

start();
