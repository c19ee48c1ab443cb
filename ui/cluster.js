// cluster.js - the cluster view: the replication tree this node can see (every node's name, role,
// version, lag and state: live, reconnecting, stale, offline), the propagation timeline of the
// recent writes (which node applied each one, how many ms after the primary's commit), then this
// node's own facts and the replicas connected to it. Redrawn on every status event of the live
// stream (no reload); the data is GET /edgeflag/v1/cluster's document (docs/replication.md, "The
// cluster picture"). On a node without replication routes it says "standalone node". It must never
// poll when a stream is open, and never show a stale status as current.
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

const fmtMs = (ms) => (ms < 10 ? ms.toFixed(1) : Math.round(ms).toString());

// The tree as nested lists: each node under its parent; nodes whose parent is not in view hang
// at the top level (a replica whose upstream view has not arrived yet).
function tree(nodes) {
  const names = new Set(nodes.map((n) => n.name));
  const kids = new Map();
  for (const n of nodes) {
    const p = n.parent && names.has(n.parent) ? n.parent : '';
    if (!kids.has(p)) kids.set(p, []);
    kids.get(p).push(n);
  }
  const list = (parent, depth) => {
    const ch = kids.get(parent) || [];
    if (!ch.length || depth > 16) return null;
    return h('ul', { class: depth ? 'tree-children' : 'tree', role: depth ? 'group' : 'tree', 'aria-label': depth ? null : 'Replication tree' },
      ch.map((n) => h('li', { role: 'treeitem', 'aria-expanded': kids.has(n.name) ? 'true' : null },
        nodeCard(n), list(n.name, depth + 1))));
  };
  return list('', 0);
}

function nodeCard(n) {
  const lag = n.lagVersions ? `${n.lagVersions} behind` : 'in sync';
  return h('div', { class: `node-card state-${n.state}`, id: `node-${n.name}`, dataset: { node: n.name, state: n.state } },
    h('p', { class: 'node-name' }, h('strong', {}, n.name), n.self ? h('span', { class: 'tag' }, 'this node') : null),
    h('p', { class: 'node-meta' },
      h('span', { class: `state ${n.state}`, 'aria-label': `state: ${n.state}` }, n.state), ' ',
      n.role, ' · v', h('span', { class: 'node-version' }, String(n.version)), ' · ', lag,
      n.role === 'replica' ? ` · lag ${fmtMs(n.lagMs)} ms` : ''),
    n.ageMs > 1500 ? h('p', { class: 'muted node-age' }, `heard from ${(n.ageMs / 1000).toFixed(1)} s ago`) : null);
}

// One row per recent write: a bar per node at its apply time (scaled to the slowest).
function timeline(writes, nodes) {
  if (!writes.length) return h('p', { class: 'empty', id: 'timeline-empty' }, 'No writes yet: change a flag and watch it arrive on every node.');
  const order = nodes.map((n) => n.name);
  return h('ol', { class: 'timeline', id: 'timeline' }, writes.map((w) => {
    const applied = [...w.applied].sort((a, b) => a.ms - b.ms);
    const max = Math.max(1, ...applied.map((a) => a.ms));
    const missing = order.filter((n) => !applied.some((a) => a.node === n));
    return h('li', { class: 'write', dataset: { seq: String(w.seq) } },
      h('p', { class: 'write-head' },
        h('strong', {}, `#${w.seq}`), ' ', h('code', {}, w.what || 'write'), ' in ', h('code', {}, w.namespace || '—'),
        h('span', { class: 'muted' }, ` · ${fmtTime(w.committedAt)}`)),
      h('table', { class: 'applied' },
        h('caption', { class: 'sr-only' }, `Write ${w.seq}: when each node applied it`),
        h('thead', { class: 'sr-only' }, h('tr', {}, h('th', { scope: 'col' }, 'Node'), h('th', { scope: 'col' }, 'Applied after commit'))),
        h('tbody', {},
          applied.map((a) => {
            const bar = h('span', { class: 'ms-bar' });
            bar.style.width = `${Math.max(2, (a.ms / max) * 100)}%`; // CSSOM, allowed by the CSP
            return h('tr', { dataset: { node: a.node } },
              h('th', { scope: 'row' }, a.node),
              h('td', {}, h('span', { class: 'ms-track' }, bar), h('span', { class: 'ms' }, `${fmtMs(a.ms)} ms`)));
          }),
          missing.map((n) => h('tr', { class: 'pending', dataset: { node: n } },
            h('th', { scope: 'row' }, n), h('td', {}, h('span', { class: 'muted' }, 'not yet')))))));
  }));
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
  const nodes = st.nodes || [];
  const states = ['live', 'reconnecting', 'stale', 'offline'].map((s) => [s, nodes.filter((n) => n.state === s).length]).filter(([, c]) => c);
  return [
    h('p', { class: `role ${st.role}`, id: 'cluster-role' }, replica ? 'Replica' : st.role === 'primary' ? 'Primary' : st.role,
      st.name ? h('span', { class: 'muted', id: 'cluster-name' }, ` · ${st.name}`) : null),
    h('h2', { id: 'tree-title' }, `Nodes (${nodes.length})`),
    h('p', { class: 'muted', id: 'tree-summary' }, states.map(([s, c]) => `${c} ${s}`).join(' · ')),
    h('div', { id: 'cluster-tree' }, tree(nodes)),
    h('h2', {}, 'Recent writes'),
    h('p', { class: 'muted' }, 'When each node applied a write, in ms after the primary committed it (wall clocks: across machines this includes clock skew).'),
    timeline(st.writes || [], nodes),
    h('h2', {}, 'This node'),
    h('dl', { class: 'facts' },
      fact('Name', st.name || '—', 'cluster-node-name'),
      fact('Server version', info.version || '—', 'cluster-server-version'),
      fact('Data version', String(st.version), 'cluster-version'),
      replica ? [
        fact('Upstream', st.upstream || '—', 'cluster-upstream'),
        fact('Upstream name', st.upstreamName || '—', 'cluster-upstream-name'),
        fact('Connection', h('span', { class: st.connected ? 'tag on' : 'tag off' }, st.connected ? 'connected' : 'disconnected'), 'cluster-connected'),
        fact('Lag', lag, 'cluster-lag'),
        fact('Last applied', fmtTime(st.lastAppliedAt), 'cluster-last-applied'),
        fact('Reconnects', String(st.reconnects ?? 0), 'cluster-reconnects'),
      ] : null),
    h('h2', {}, `Downstream replicas (${down.length})`),
    down.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'cluster-downstream' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Peer'), h('th', { scope: 'col' }, 'Joined at version'),
        h('th', { scope: 'col' }, 'Sent up to'), h('th', { scope: 'col' }, 'Connected at'))),
      h('tbody', {}, down.map((d) => h('tr', {}, h('td', {}, d.name || '—'), h('td', {}, d.peer), h('td', {}, String(d.since)),
        h('td', {}, d.position === undefined ? '—' : String(d.position)), h('td', {}, fmtTime(d.connectedAt)))))))
      : h('p', { class: 'empty' }, 'No replicas are following this node.'),
    stream,
  ];
}
