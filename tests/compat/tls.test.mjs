// HTTPS on the server (docs/configuration.md "TLS"), with a throwaway PKI made by openssl at test
// time: serving, plain HTTP to the HTTPS port, certificate rotation on SIGHUP (a new connection
// sees the new certificate, an open one carries on), a failed reload keeping the previous
// certificate, client certificates (signed by the client CA / none / another CA), the client CA
// reloaded on SIGHUP (a new CA admitted, the old refused, a bad bundle keeping the old), bad settings,
// Flipt's server.protocol https keys, and real clients over HTTPS: flipt-client-js and the
// OpenFeature OFREP provider in a Node process that trusts the CA through NODE_EXTRA_CA_CERTS
// (and refuses the server without it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer, edgeflagBin } from './server.mjs';
import { makePki, peerCn, httpsCall } from './pki.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let pki, ca;
before(() => {
  pki = makePki();
  ca = fs.readFileSync(pki.file('ca.pem'));
});

const tlsArgs = (name = 'server') => ['--tls-cert', pki.file(`${name}.pem`), '--tls-key', pki.file(`${name}.key`)];
const port = (url) => Number(new URL(url).port);

async function withServer(args, fn, opts) {
  const srv = await startServer(args, opts);
  try {
    return await fn(srv);
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, srv.stderr());
  }
}

test('serves HTTPS: the listening line says https, the API answers over TLS', async () => {
  await withServer(tlsArgs(), async (srv) => {
    assert.match(srv.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await httpsCall(srv.url, 'GET', '/health', undefined, { ca });
    assert.equal(r.status, 200, r.text);
    assert.ok(['TLSv1.3', 'TLSv1.2'].includes(r.peer.protocol), r.peer.protocol);
    const w = await httpsCall(srv.url, 'POST', '/api/v1/namespaces', { key: 'tls', name: 'TLS' }, { ca });
    assert.equal(w.status, 200, w.text);
    assert.match(srv.stderr(), /msg="HTTPS certificate".*CN=localhost, expires/);
    // TLS 1.1 is refused (TLS 1.2 and 1.3 only, as Flipt's server)
    await assert.rejects(httpsCall(srv.url, 'GET', '/health', undefined, { ca, agent: new https.Agent({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }) }));
  });
});

test('plain HTTP to the HTTPS port is answered 400 in plain HTTP, not a hang', async () => {
  await withServer(tlsArgs(), async (srv) => {
    const plain = srv.url.replace('https://', 'http://');
    for (let i = 0; i < 20; i++) { // every time, not by luck of timing
      const res = await fetch(plain + '/health', { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 400);
      const body = await res.json();
      assert.equal(body.code, 3);
      assert.match(body.message, /this port serves HTTPS: the request was sent in plain HTTP/);
    }
    // and the port still serves HTTPS
    assert.equal((await httpsCall(srv.url, 'GET', '/health', undefined, { ca })).status, 200);
  });
});

test('SIGHUP rotates the certificate: new connections get the new one, an open one carries on', async () => {
  const live = fs.mkdtempSync(path.join(pki.dir, 'live-'));
  const cert = path.join(live, 'cert.pem');
  const key = path.join(live, 'key.pem');
  fs.copyFileSync(pki.file('server.pem'), cert);
  fs.copyFileSync(pki.file('server.key'), key);
  await withServer(['--tls-cert', cert, '--tls-key', key], async (srv) => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await httpsCall(srv.url, 'GET', '/health', undefined, { ca, agent });
    assert.equal(first.peer.cn, 'localhost');
    const openSocket = first.socket;
    assert.equal(await peerCn(port(srv.url), ca), 'localhost');

    fs.copyFileSync(pki.file('rotated.pem'), cert);
    fs.copyFileSync(pki.file('rotated.key'), key);
    srv.child.kill('SIGHUP');
    await waitForLog(srv, /msg="certificate reloaded".*CN=rotated\.localhost/);
    assert.equal(await peerCn(port(srv.url), ca), 'rotated.localhost', 'a new connection gets the new certificate');

    // the connection opened before the reload was not dropped: same socket, old certificate
    const again = await httpsCall(srv.url, 'GET', '/health', undefined, { ca, agent });
    assert.equal(again.status, 200);
    assert.equal(again.socket, openSocket, 'the keep-alive connection was reused');
    assert.equal(again.peer.cn, 'localhost');
    agent.destroy();

    // a reload that fails (the key is not the certificate's) keeps serving the previous one
    fs.copyFileSync(pki.file('server.pem'), cert);
    srv.child.kill('SIGHUP');
    await waitForLog(srv, /level=error msg="certificate reload failed; serving the previous one".* error="tls-key .* is not the key of the certificate/);
    assert.equal(await peerCn(port(srv.url), ca), 'rotated.localhost');
    fs.rmSync(cert);
    srv.child.kill('SIGHUP');
    await waitForLog(srv, /certificate reload failed.*tls-cert .*cert\.pem: No such file/);
    assert.equal(await peerCn(port(srv.url), ca), 'rotated.localhost');
    assert.equal((await httpsCall(srv.url, 'GET', '/health', undefined, { ca })).status, 200);
  });
});

async function waitForLog(srv, re, ms = 5000) {
  const end = Date.now() + ms;
  while (!re.test(srv.stderr())) {
    if (Date.now() > end) throw new Error(`log line ${re} not seen; log:\n${srv.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('--tls-client-ca: a certificate from that CA is admitted, none gets 401, another CA fails the handshake', async () => {
  await withServer([...tlsArgs(), '--tls-client-ca', pki.file('ca.pem')], async (srv) => {
    const cert = fs.readFileSync(pki.file('client.pem'));
    const key = fs.readFileSync(pki.file('client.key'));
    const ok = await httpsCall(srv.url, 'GET', '/api/v1/namespaces', undefined, { ca, cert, key });
    assert.equal(ok.status, 200, ok.text);

    const none = await httpsCall(srv.url, 'GET', '/api/v1/namespaces', undefined, { ca });
    assert.equal(none.status, 401);
    assert.equal(none.json.code, 16);
    assert.match(none.json.message, /requires a client certificate signed by its client CA/);

    const other = httpsCall(srv.url, 'GET', '/api/v1/namespaces', undefined, {
      ca, cert: fs.readFileSync(pki.file('client-other.pem')), key: fs.readFileSync(pki.file('client-other.key')),
    });
    await assert.rejects(other, (e) => /unknown ca/i.test(`${e.code} ${e.message}`));
  });
});

test('SIGHUP reloads the client CA with the certificate: a new CA admitted, the old one refused, a bad bundle keeps the old', async () => {
  const live = fs.mkdtempSync(path.join(pki.dir, 'live-ca-'));
  const bundle = path.join(live, 'client-ca.pem');
  fs.copyFileSync(pki.file('ca.pem'), bundle);
  const pair = (name) => ({ cert: fs.readFileSync(pki.file(`${name}.pem`)), key: fs.readFileSync(pki.file(`${name}.key`)) });
  const oldClient = pair('client'); // signed by ca
  const newClient = pair('client-other'); // signed by other-ca
  const refused = (p) => assert.rejects(p, (e) => /unknown ca/i.test(`${e.code} ${e.message}`));
  await withServer([...tlsArgs(), '--tls-client-ca', bundle], async (srv) => {
    // a new connection each time unless an agent is given (the global agent keeps sockets alive)
    const call = (who, agent = false) => httpsCall(srv.url, 'GET', '/api/v1/namespaces', undefined, { ca, ...who, agent });
    await waitForLog(srv, /msg="HTTPS certificate".*client_ca="1 certificate: CN=edgeflag test CA"/);
    const openAgent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const before = await call(oldClient, openAgent);
    assert.equal(before.status, 200, before.text);
    await refused(call(newClient));

    // a bundle that is not PEM certificates: logged, and the old CA still decides
    fs.writeFileSync(bundle, 'not a certificate\n');
    srv.child.kill('SIGHUP');
    await waitForLog(srv, /level=error msg="certificate reload failed; serving the previous one".* error="tls-client-ca .*client-ca\.pem: not PEM CA certificates/);
    assert.equal((await call(oldClient)).status, 200);
    await refused(call(newClient));
    fs.rmSync(bundle);
    srv.child.kill('SIGHUP');
    await waitForLog(srv, /certificate reload failed.*tls-client-ca .*client-ca\.pem: No such file/);
    assert.equal((await call(oldClient)).status, 200);

    // the new CA replaces the old one
    fs.copyFileSync(pki.file('other-ca.pem'), bundle);
    srv.child.kill('SIGHUP');
    await waitForLog(srv, /msg="certificate reloaded".*client_ca="1 certificate: CN=another CA"/);
    const admitted = await call(newClient);
    assert.equal(admitted.status, 200, admitted.text);
    await refused(call(oldClient));
    // a connection that finished its handshake before the reload carries on (docs/security.md)
    const again = await call(oldClient, openAgent);
    assert.equal(again.status, 200);
    assert.equal(again.socket, before.socket, 'the keep-alive connection was reused');
    openAgent.destroy();

    // both CAs in one bundle (the way to change CAs without refusing anyone): both admitted
    fs.writeFileSync(bundle, Buffer.concat([fs.readFileSync(pki.file('other-ca.pem')), ca]));
    srv.child.kill('SIGHUP');
    await waitForLog(srv, /client_ca="2 certificates: CN=another CA; CN=edgeflag test CA"/);
    assert.equal((await call(oldClient)).status, 200);
    assert.equal((await call(newClient)).status, 200);
    // and a client without a certificate is still answered 401
    assert.equal((await call({})).status, 401);
  });
});

test('bad TLS settings stop the server with a clear error (status 2)', () => {
  const dir = fs.mkdtempSync(path.join(pki.dir, 'bad-'));
  const run = (...args) => spawnSync(edgeflagBin, ['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'x.db'), ...args], { encoding: 'utf8', timeout: 10000 });
  const cases = [
    [['--tls-cert', pki.file('server.pem')], /--tls-cert and --tls-key go together/],
    [['--tls-cert', pki.file('server.pem'), '--tls-key', pki.file('rotated.key')], /tls-key .*rotated\.key is not the key of the certificate in tls-cert .*server\.pem/],
    [['--tls-cert', pki.file('nope.pem'), '--tls-key', pki.file('server.key')], /tls-cert .*nope\.pem: No such file or directory/],
    [['--tls-cert', pki.file('server.key'), '--tls-key', pki.file('server.key')], /tls-cert .*server\.key: not a PEM certificate chain/],
    [['--tls-cert', pki.file('server.pem'), '--tls-key', pki.file('server.pem')], /tls-key .*server\.pem: not an unencrypted PEM private key/],
    [[...tlsArgs(), '--tls-client-ca', pki.file('server.key')], /tls-client-ca .*server\.key: not PEM CA certificates/],
    [['--tls-client-ca', pki.file('ca.pem')], /--tls-client-ca needs HTTPS/],
    [['--upstream-ca', pki.file('ca.pem')], /need --upstream/],
    [['--upstream', 'http://127.0.0.1:1', '--upstream-ca', pki.file('ca.pem')], /need an https:\/\/ upstream/],
    [['--upstream', 'https://127.0.0.1:1', '--upstream-cert', pki.file('client.pem')], /--upstream-cert and --upstream-key go together/],
    [['--upstream', 'https://127.0.0.1:1', '--upstream-ca', pki.file('missing-ca.pem')], /upstream-ca .*missing-ca\.pem: No such file/],
  ];
  for (const [args, re] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});

test("Flipt's config: server.protocol https serves TLS on https_port with cert_file and cert_key", async () => {
  const dir = fs.mkdtempSync(path.join(pki.dir, 'flipt-'));
  const cfg = path.join(dir, 'config.yml');
  fs.writeFileSync(cfg, `version: "1.0"\nserver:\n  protocol: https\n  host: 127.0.0.1\n  http_port: 1\n  https_port: 0\n  cert_file: ${pki.file('server.pem')}\n  cert_key: ${pki.file('server.key')}\ndb:\n  url: file:${path.join(dir, 'f.db')}\n`);
  const child = spawn(edgeflagBin, ['serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stderr.on('data', (d) => (err += d));
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no listening line: ' + err)), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (https?:\/\/\S+)/);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    child.on('exit', (c) => { clearTimeout(t); reject(new Error(`exited ${c}: ${err}`)); });
  });
  try {
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(port(url), 1, 'https_port is used, not http_port');
    assert.equal((await httpsCall(url, 'GET', '/health', undefined, { ca })).status, 200);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  }
  fs.writeFileSync(cfg, `version: "1.0"\nserver:\n  protocol: https\n  https_port: 0\n  cert_key: ${pki.file('server.key')}\n`);
  const r = spawnSync(edgeflagBin, ['serve', '--config', cfg, '--db', path.join(dir, 'g.db')], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /field "server.cert_file": non-empty value is required/);
});

// flipt-client-js and the OFREP provider in a child Node process (they use the global fetch, which
// takes extra CAs from NODE_EXTRA_CA_CERTS at start).
function runSdk(url, env) {
  const r = spawnSync(process.execPath, [path.join(here, 'tls_sdk_child.mjs'), url], {
    cwd: here, encoding: 'utf8', timeout: 30000, env: { ...process.env, ...env },
  });
  const line = r.stdout.trim().split('\n').pop() || '{}';
  return { status: r.status, out: JSON.parse(line), stderr: r.stderr };
}

test('flipt-client-js and the OFREP provider over HTTPS; refused without the CA', async () => {
  await withServer(tlsArgs(), async (srv) => {
    const opts = { ca };
    const must = async (p, body) => {
      const r = await httpsCall(srv.url, 'POST', p, body, opts);
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      return r.json;
    };
    await must('/api/v1/flags', { key: 'checkout', name: 'Checkout', enabled: true });
    const blue = await must('/api/v1/flags/checkout/variants', { key: 'blue' });
    await must('/api/v1/segments', { key: 'all', name: 'All', matchType: 'ALL_MATCH_TYPE' });
    const rule = await must('/api/v1/flags/checkout/rules', { segmentKey: 'all', rank: 1 });
    await must(`/api/v1/flags/checkout/rules/${rule.id}/distributions`, { variantId: blue.id, rollout: 100 });
    await must('/api/v1/flags', { key: 'dark', name: 'Dark', type: 'BOOLEAN_FLAG_TYPE', enabled: true });

    const good = runSdk(srv.url, { NODE_EXTRA_CA_CERTS: pki.file('ca.pem') });
    assert.equal(good.status, 0, good.stderr);
    assert.deepEqual(good.out.engine, { variant: 'blue', boolean: true });
    assert.deepEqual(good.out.ofrep, { variant: 'blue', boolean: true, reason: 'TARGETING_MATCH' });

    const bad = runSdk(srv.url, { NODE_EXTRA_CA_CERTS: pki.file('other-ca.pem') });
    assert.equal(bad.status, 0, bad.stderr);
    assert.match(bad.out.engineError, /fetch failed|certificate|issuer/i);
    assert.equal(bad.out.ofrep.variant, 'fallback', 'the OFREP provider fell back: nothing was read from the server');
    assert.match(bad.out.ofrepCause, /request failed|certificate/i);
  });
});

test('the libSQL client verifies the server: an HTTPS database with an unknown CA is refused, named, at start', async () => {
  await withServer(tlsArgs(), async (srv) => {
    const dir = fs.mkdtempSync(path.join(pki.dir, 'libsql-'));
    const url = srv.url.replace('127.0.0.1', 'localhost');
    const r = spawnSync(edgeflagBin, ['serve', '--listen', '127.0.0.1:0', '--db', url, '--db-cache', path.join(dir, 'c.db')], { encoding: 'utf8', timeout: 20000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`libsql TLS with ${url.replace(/[.]/g, '\\.')} failed: SSL certificate problem: unable to get local issuer certificate`));
    // --db-ca: the same server is now trusted; what fails is that it is no libSQL server (HTTP, not TLS)
    const t = spawnSync(edgeflagBin, ['serve', '--listen', '127.0.0.1:0', '--db', url, '--db-ca', pki.file('ca.pem'), '--db-cache', path.join(dir, 'd.db')], { encoding: 'utf8', timeout: 20000 });
    assert.notEqual(t.status, 0);
    assert.doesNotMatch(t.stderr, /TLS with|certificate/, t.stderr);
    assert.match(t.stderr, /libsql/);
    // a --db-ca that cannot be read is refused at start, named
    const m = spawnSync(edgeflagBin, ['serve', '--listen', '127.0.0.1:0', '--db', url, '--db-ca', path.join(dir, 'missing.pem'), '--db-cache', path.join(dir, 'e.db')], { encoding: 'utf8', timeout: 20000 });
    assert.equal(m.status, 2);
    assert.match(m.stderr, /--db-ca/);
  });
});
