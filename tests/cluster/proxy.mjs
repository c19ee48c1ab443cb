// A small user-space TCP proxy for partition tests (the kernel here has no netem): every byte
// between a node and its upstream goes through it, and the test switches it between
//   pass       forward at once,
//   delay      forward after a fixed delay (order kept),
//   blackhole  accept and hold everything, forward nothing (a silent network); `heal` releases
//              what was held, as a real network delivers retransmitted segments when it recovers,
//   drop       reset every connection and refuse new ones.
// `only(firstChunk)`, when given, limits delay and blackhole to the connections whose first bytes
// from the node it accepts (e.g. only the replication stream, so a replica's forwarded writes still
// pass at once); the others always pass. `streamOnly` is that test for the replication stream.
import net from 'node:net';

export const streamOnly = (chunk) => chunk.toString('latin1').startsWith('GET /edgeflag/v1/replication/stream');

export async function startProxy(targetPort, { host = '127.0.0.1', only } = {}) {
  let mode = 'pass';
  let delayMs = 0;
  const conns = new Set();

  function kill(c) {
    conns.delete(c);
    c.client.destroy();
    c.upstream.destroy();
  }

  function send(c, dir, data) {
    const sock = dir === 'up' ? c.upstream : c.client;
    if (c.applies === undefined && dir === 'up') c.applies = only ? only(data) : true;
    if (!c.applies) {
      sock.write(data);
      return;
    }
    if (mode === 'blackhole') {
      c.held.push([dir, data]);
      return;
    }
    if (delayMs > 0) {
      // never reorder: each chunk leaves no earlier than the one before it
      const at = Math.max(Date.now() + delayMs, c.nextAt);
      c.nextAt = at;
      setTimeout(() => sock.destroyed || sock.write(data), at - Date.now());
      return;
    }
    sock.write(data);
  }

  const server = net.createServer((client) => {
    if (mode === 'drop') {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, host);
    const c = { client, upstream, held: [], nextAt: 0 };
    conns.add(c);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (d) => send(c, 'up', d));
    upstream.on('data', (d) => send(c, 'down', d));
    for (const s of [client, upstream]) {
      s.on('error', () => kill(c));
      s.on('close', () => kill(c));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pass() {
      mode = 'pass';
      delayMs = 0;
    },
    delay(ms) {
      mode = 'pass';
      delayMs = ms;
    },
    blackhole() {
      mode = 'blackhole';
    },
    drop() {
      mode = 'drop';
      for (const c of [...conns]) kill(c);
    },
    heal() {
      mode = 'pass';
      delayMs = 0;
      for (const c of conns)
        for (const [dir, data] of c.held.splice(0)) (dir === 'up' ? c.upstream : c.client).write(data);
    },
    async close() {
      for (const c of [...conns]) kill(c);
      await new Promise((r) => server.close(r));
    },
  };
}
