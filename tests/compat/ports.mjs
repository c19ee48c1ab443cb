// Ports for servers a test stops and starts again on the same port (a node restarted, a webhook
// receiver that is down for a minute). Port 0 hands out a port from the kernel's ephemeral range
// (ip_local_port_range, 32768-60999 here), and while the server is down that port is free for
// anyone else's port 0 or outgoing connection: in CI, where the cluster tests start dozens of nodes
// meanwhile, an audit receiver's port was taken by another node for its minute down, which answered
// the webhook with 404 (2026-11-30). A port below the ephemeral range is taken only by a test that
// names it, so a restart finds it free.
// It must never hand out a port in the ephemeral range.
import net from 'node:net';

const LOW = 20000;
const HIGH = 32767; // below the ephemeral range on Linux's default and on this machine's

function canListen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

// A port that was free a moment ago. Another test may take it in between (two random picks in
// 12,768): callers that can retry do, with isAddressInUse.
export async function stablePort() {
  for (let i = 0; i < 100; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${LOW}-${HIGH} after 100 tries`);
}

export const isAddressInUse = (text) => /address already in use|EADDRINUSE/i.test(String(text));

// listenAt(port) on a stablePort(), with another port when that one was taken meanwhile (up to 5
// tries); any other failure is thrown at once. Returns what listenAt returned.
export async function onStablePort(listenAt) {
  for (let attempt = 1; ; attempt++) {
    const port = await stablePort();
    try {
      return await listenAt(port);
    } catch (e) {
      if (attempt === 5 || !isAddressInUse(e.code || e.message)) throw e;
    }
  }
}
