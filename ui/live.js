// live.js - keeps the UI current without reloads. It reads the node's cluster stream
// (GET /edgeflag/v1/cluster/stream, server-sent events `status` carrying the cluster JSON) with
// fetch, so the bearer token can be sent, and tells subscribers about every status and about every
// change of `version` (the views then refetch). On a node without the cluster routes (404) it
// falls back to watching X-Edgeflag-Version on a cheap request every two seconds and reports
// "standalone". It must never hold more than one stream open, and never spin: reconnects back off.
import { authHeaders } from './api.js';

const STREAM = '/edgeflag/v1/cluster/stream';
const POLL_MS = 2000;

export class Live {
  constructor() {
    this.listeners = new Set();
    this.status = null;         // last cluster JSON, or null
    this.state = 'connecting';  // 'live' | 'standalone' | 'reconnecting' | 'connecting'
    this.version = null;
    this.error = '';
    this.ctrl = null;
    this.timer = null;
    this.backoff = 500;
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(versionChanged) {
    for (const fn of this.listeners) fn(this, versionChanged);
  }

  setVersion(v) {
    const changed = this.version !== null && v !== null && v !== this.version;
    if (v !== null) this.version = v;
    return changed;
  }

  start() {
    this.stop();
    this.run();
  }

  stop() {
    if (this.ctrl) this.ctrl.abort();
    clearTimeout(this.timer);
    this.ctrl = null;
  }

  async run() {
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    let res;
    try {
      res = await fetch(STREAM, { headers: { Accept: 'text/event-stream', ...authHeaders() }, signal: ctrl.signal });
    } catch (e) {
      if (ctrl.signal.aborted) return;
      return this.retry(`cannot reach the server: ${e.message}`);
    }
    if (res.status === 404) return this.poll(ctrl);
    if (!res.ok || !res.body) return this.retry(`stream answered HTTP ${res.status}`);
    this.backoff = 500;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
          this.onEvent(block);
        }
      }
    } catch (e) {
      if (ctrl.signal.aborted) return;
      return this.retry(`stream broke: ${e.message}`);
    }
    if (!ctrl.signal.aborted) this.retry('stream ended');
  }

  onEvent(block) {
    let event = 'message';
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const k = i < 0 ? line : line.slice(0, i);
      const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (k === 'event') event = v;
      else if (k === 'data') data.push(v);
    }
    if (event !== 'status' || data.length === 0) return;
    let st;
    try { st = JSON.parse(data.join('\n')); } catch { return; }
    this.status = st;
    this.state = 'live';
    this.error = '';
    const changed = this.setVersion(typeof st.version === 'number' ? st.version : null);
    this.emit(changed);
  }

  retry(why) {
    this.state = 'reconnecting';
    this.error = why;
    this.emit(false);
    this.timer = setTimeout(() => this.run(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 8000);
  }

  // Standalone node: no cluster stream; the version header still tells when data changed.
  async poll(ctrl) {
    this.status = null;
    this.state = 'standalone';
    const tick = async () => {
      if (ctrl.signal.aborted) return;
      try {
        const res = await fetch('/auth/v1/method', { headers: authHeaders(), signal: ctrl.signal });
        const v = Number(res.headers.get('X-Edgeflag-Version'));
        this.state = 'standalone';
        this.error = '';
        this.emit(this.setVersion(Number.isFinite(v) ? v : null));
      } catch (e) {
        if (ctrl.signal.aborted) return;
        this.state = 'reconnecting';
        this.error = `cannot reach the server: ${e.message}`;
        this.emit(false);
      }
      this.timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }
}
