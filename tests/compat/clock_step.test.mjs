// A wall clock that steps (NTP, a resumed VM, an operator's `date -s`) must not stop what edgeflag
// does periodically. Waits for "N seconds from now" are taken on the monotonic clock: a deadline
// on the wall clock, computed just before the clock stepped back by an hour, is an hour late.
// The step is simulated with an LD_PRELOAD library (tests/unit/realtime_shift.c) under which the
// process reads the wall clock an hour ahead of the kernel's: the state a step back leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startServer, call, edgeflagBin } from './server.mjs';

const shim = path.join(path.dirname(edgeflagBin), 'tests/unit/libef_realtime_shift.so');

// A test never skips: without the library (built with edgeflag by ninja, next to it in the
// build tree) the test fails and says how to get it.
function needShim() {
  assert.ok(fs.existsSync(shim), `${shim} is missing: build the tree edgeflag comes from (ninja -C <build>), which builds it`);
}

// The events of an SSE response for up to ms milliseconds: its text.
function readStream(url, ms) {
  return new Promise((resolve, reject) => {
    let text = '';
    const req = http.get(url, (res) => {
      assert.equal(res.statusCode, 200);
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
    });
    req.on('error', (e) => (e.code === 'ECONNRESET' ? resolve(text) : reject(e)));
    setTimeout(() => {
      req.destroy();
      resolve(text);
    }, ms);
  });
}

test('namespace stream heartbeats go on after the wall clock stepped back', async () => {
  needShim();
  const srv = await startServer([], { env: { LD_PRELOAD: shim, EF_REALTIME_SHIFT_S: '3600' } });
  try {
    // a heartbeat every 5 s (ns_stream.c); subscribers give up after 3 silent periods
    const text = await readStream(srv.url + '/edgeflag/v1/namespaces/default/stream', 12000);
    assert.match(text, /^event: change\n/m, 'the first event comes at once');
    assert.match(text, /^: heartbeat$/m, `no heartbeat in 12 s: ${JSON.stringify(text)}`);
  } finally {
    await srv.stop();
  }
});

// A replica learns the tokens created and revoked on other nodes by reloading its copy of them
// every second (auth.c). On a wall-clock deadline, a step back held that reload for the length
// of the step: a token revoked on the primary kept working on the replica meanwhile.
test('a replica picks up tokens created and revoked upstream after the wall clock stepped back', async () => {
  needShim();
  const BOOT = { authorization: 'Bearer boot' };
  const p = await startServer(['--auth-token', 'boot']);
  let r;
  try {
    r = await startServer(['--db', path.join(p.dir, 'replica.db'), '--upstream', p.url, '--auth-token', 'boot', '--upstream-token', 'boot'],
      { env: { LD_PRELOAD: shim, EF_REALTIME_SHIFT_S: '3600' } });
    const until = async (what, fn, ms = 8000) => {
      const end = Date.now() + ms;
      for (;;) {
        if (await fn()) return;
        if (Date.now() > end) assert.fail(`${what} within ${ms} ms`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    await until('the replica ready', async () => (await call(r.url, 'GET', '/ready')).status === 200);
    const tok = await call(p.url, 'POST', '/auth/v1/method/token', { name: 'late' }, BOOT);
    assert.equal(tok.status, 200);
    const auth = { authorization: `Bearer ${tok.json.clientToken}` };
    await until('the token created on the primary accepted by the replica', async () => (await call(r.url, 'GET', '/api/v1/flags', undefined, auth)).status === 200);
    assert.equal((await call(p.url, 'DELETE', `/auth/v1/authentications/${tok.json.authentication.id}`, undefined, BOOT)).status, 200);
    await until('the token revoked on the primary refused by the replica', async () => (await call(r.url, 'GET', '/api/v1/flags', undefined, auth)).status === 401);
  } finally {
    await r?.stop();
    await p.stop();
  }
});
