// cluster.js - the cluster view: this node's role, version, upstream, lag and connection state,
// and its downstream replicas, redrawn on every status event of the live stream (no reload). On a
// node without replication routes it says "standalone node". It must never poll when a stream is
// open, and never show a stale status as current: the stream's state is shown alongside.
import * as api from './api.js';
import { h, fmtTime } from './dom.js';

export async function clusterView(ctx) {
  const live = ctx.live;
  let info = {};
  try { info = await api.get('/meta/info'); } catch { info = {}; }
  const body = h('div', { id: 'cluster-body' });
  const draw = () => {
    body.replaceChildren(...content(live, info));
  };
  draw();
  const unsubscribe = live.subscribe(() => {
    if (!body.isConnected) { unsubscribe(); return; }
    draw();
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'cluster-title' },
    h('h1', { id: 'cluster-title' }, 'Cluster'),
    body);
}

function fact(label, value, id) {
  return [h('dt', {}, label), h('dd', { id }, value)];
}

function content(live, info) {
  const st = live.status;
  const stream = h('p', { class: 'muted', id: 'cluster-stream' },
    live.state === 'live' ? 'Updating live from the cluster stream.'
      : live.state === 'standalone' ? 'This node has no replication routes.'
        : `Stream: ${live.state}${live.error ? ` (${live.error})` : ''}.`);
  if (!st) {
    return [
      h('p', { class: 'role', id: 'cluster-role' }, live.state === 'standalone' ? 'Standalone node' : 'Waiting for the cluster status…'),
      h('dl', { class: 'facts' },
        fact('Server version', info.version || '—', 'cluster-server-version'),
        fact('Data version', live.version ?? '—', 'cluster-version')),
      stream,
    ];
  }
  const replica = st.role === 'replica';
  const lag = typeof st.lagSeconds === 'number' ? `${st.lagSeconds.toFixed(st.lagSeconds < 10 ? 2 : 0)} s` : '—';
  const down = st.downstream || [];
  return [
    h('p', { class: `role ${st.role}`, id: 'cluster-role' }, replica ? 'Replica' : st.role === 'primary' ? 'Primary' : st.role),
    h('dl', { class: 'facts' },
      fact('Server version', info.version || '—', 'cluster-server-version'),
      fact('Data version', String(st.version), 'cluster-version'),
      replica ? [
        fact('Upstream', st.upstream || '—', 'cluster-upstream'),
        fact('Connection', h('span', { class: st.connected ? 'tag on' : 'tag off' }, st.connected ? 'connected' : 'disconnected'), 'cluster-connected'),
        fact('Lag', lag, 'cluster-lag'),
        fact('Last applied', fmtTime(st.lastAppliedAt), 'cluster-last-applied'),
        fact('Reconnects', String(st.reconnects ?? 0), 'cluster-reconnects'),
      ] : null),
    h('h2', {}, `Downstream replicas (${down.length})`),
    down.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'cluster-downstream' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Peer'), h('th', { scope: 'col' }, 'Joined at version'),
        h('th', { scope: 'col' }, 'Sent up to'), h('th', { scope: 'col' }, 'Connected at'))),
      h('tbody', {}, down.map((d) => h('tr', {}, h('td', {}, d.peer), h('td', {}, String(d.since)),
        h('td', {}, d.position === undefined ? '—' : String(d.position)), h('td', {}, fmtTime(d.connectedAt)))))))
      : h('p', { class: 'empty' }, 'No replicas are following this node.'),
    stream,
  ];
}
