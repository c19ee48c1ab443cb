// api.js - every call the UI makes to its own server (same origin, relative URLs): JSON in and
// out, the bearer token when authentication is on (or, for a signed-in browser session, whose
// secret is an HttpOnly cookie the page cannot read, the session's CSRF token), and Flipt's error
// bodies turned into ApiError with the field they concern. It must never talk to another origin.

const TOKEN_KEY = 'edgeflag.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// The CSRF token of the cookie session (GET /auth/v1/self hands it out); writes must send it.
let csrf = '';
export function setCsrf(t) {
  csrf = t || '';
}

export function authHeaders() {
  const t = token();
  if (t) return { Authorization: `Bearer ${t}` };
  return csrf ? { 'X-CSRF-Token': csrf } : {};
}

// The form field a server message is about: "invalid field attachment: ..." -> "attachment".
export function fieldOf(message) {
  const m = /^invalid field ([A-Za-z.]+)(?: or [A-Za-z]+)?:/.exec(message || '');
  if (m) return m[1] === 'segmentKey' ? 'segmentKeys' : m[1].replace(/^threshold\./, '');
  if (/^constraint operator/.test(message)) return 'operator';
  if (/^(invalid|too many) values? provided for property|^parsing datetime/.test(message)) return 'value';
  if (/^property is .* instead of/.test(message)) return 'property';
  if (/not unique|already exists/.test(message)) return 'key';
  if (/^cannot change type of rollout/.test(message)) return 'type';
  return '';
}

export class ApiError extends Error {
  constructor(status, body, text) {
    const message = (body && typeof body.message === 'string' && body.message) || text || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.code = body && body.code;
    this.field = fieldOf(message);
  }
}

// Listeners told about a 401 (the app shows the token prompt).
const unauthorized = new Set();
export function onUnauthorized(fn) {
  unauthorized.add(fn);
}

// The views' reads are tracked while a view renders: the lowest X-Edgeflag-Version among them is
// the state the rendered page reflects (the app refetches when the node moves past it).
let tracker = null;
export function trackVersions(t) {
  tracker = t;
}

export async function request(method, path, body) {
  const t = tracker;
  const init = { method, headers: { Accept: 'application/json', ...authHeaders() } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, null, `cannot reach the server: ${e.message}`);
  }
  const v = Number(res.headers.get('X-Edgeflag-Version'));
  if (t && method === 'GET' && res.headers.has('X-Edgeflag-Version') && Number.isFinite(v)) t.version = Math.min(t.version, v);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, json, text.slice(0, 300));
    if (res.status === 401) for (const fn of unauthorized) fn(err);
    throw err;
  }
  return json;
}

export const get = (p) => request('GET', p);
export const post = (p, b) => request('POST', p, b ?? {});
export const put = (p, b) => request('PUT', p, b ?? {});
export const del = (p) => request('DELETE', p);

// Path helpers for one namespace.
export function nsPath(ns, rest = '') {
  return `/api/v1/namespaces/${encodeURIComponent(ns)}${rest}`;
}
export const enc = encodeURIComponent;
