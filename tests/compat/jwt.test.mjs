// Flipt's `jwt` authentication method against a real server: keys generated at test time with
// node's crypto, a JWKS served by a local HTTP server the test controls (rotate, count fetches,
// take down), tokens accepted and refused for every reason Flipt refuses them, namespace scopes,
// a PEM public key file, Flipt's config keys, and a JWKS that is down never blocking evaluations.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startServer, call, edgeflagBin } from './server.mjs';
import { tempDir } from './tmp.mjs';

const b64u = (b) => Buffer.from(b).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const ISS = 'https://issuer.test';
const AUD = 'edgeflag-api';

function keypair(type, opts = {}) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync(type, opts);
  return { publicKey, privateKey };
}
const keys = {
  rsa: keypair('rsa', { modulusLength: 2048 }),
  rsa2: keypair('rsa', { modulusLength: 2048 }),
  p256: keypair('ec', { namedCurve: 'P-256' }),
  p521: keypair('ec', { namedCurve: 'P-521' }),
  ed: keypair('ed25519'),
  small: keypair('rsa', { modulusLength: 1024 }),
};
const jwk = (k, kid, extra = {}) => ({ ...k.publicKey.export({ format: 'jwk' }), kid, use: 'sig', ...extra });

// Signs header.payload as a JWS of the given alg (ES*: r||s, as JWS wants).
function sign(alg, key, claims, header = {}) {
  const h = b64u(JSON.stringify({ alg, typ: 'JWT', ...header }));
  const p = b64u(JSON.stringify(claims));
  const input = `${h}.${p}`;
  let sig;
  if (alg === 'none') sig = Buffer.alloc(0);
  else if (alg.startsWith('HS')) sig = crypto.createHmac('sha256', key).update(input).digest();
  else if (alg === 'EdDSA') sig = crypto.sign(null, Buffer.from(input), key.privateKey);
  else {
    const md = { RS256: 'sha256', RS512: 'sha512', ES256: 'sha256', ES512: 'sha512' }[alg];
    sig = crypto.sign(md, Buffer.from(input), alg.startsWith('ES') ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' } : key.privateKey);
  }
  return `${input}.${b64u(sig)}`;
}
const good = (extra = {}) => ({ iss: ISS, aud: AUD, sub: 'alice', iat: now(), exp: now() + 600, ...extra });

// A JWKS server: serves `set`, counts fetches, can be closed.
function jwksServer(initial) {
  const s = { set: initial, hits: 0 };
  s.server = http.createServer((req, res) => {
    s.hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: s.set }));
  });
  return new Promise((resolve) => s.server.listen(0, '127.0.0.1', () => {
    s.url = `http://127.0.0.1:${s.server.address().port}/jwks.json`;
    resolve(s);
  }));
}

let jw, srv;
const BOOT = 'boot-token';
const as = (t, scheme = 'JWT') => ({ authorization: `${scheme} ${t}` });
const flags = (t, scheme, ns = 'default') => call(srv.url, 'GET', `/api/v1/namespaces/${ns}/flags`, undefined, as(t, scheme));
async function until(fn, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  jw = await jwksServer([jwk(keys.rsa, 'rsa-1'), jwk(keys.p256, 'ec-1'), jwk(keys.p521, 'ec-2'), jwk(keys.ed, 'ed-1'),
    jwk(keys.small, 'small'), { kty: 'oct', k: b64u('secret'), kid: 'hmac' }]);
  srv = await startServer(['--auth-token', BOOT, '--auth-jwt-jwks-url', jw.url, '--auth-jwt-issuer', ISS,
    '--auth-jwt-audiences', `other,${AUD}`, '--auth-jwt-min-refresh', '1']);
  for (const ns of ['team-a', 'team-b']) {
    assert.equal((await call(srv.url, 'POST', '/api/v1/namespaces', { key: ns, name: ns }, as(BOOT, 'Bearer'))).status, 200);
    assert.equal((await call(srv.url, 'POST', `/api/v1/namespaces/${ns}/flags`, { key: 'f', name: 'F', type: 'BOOLEAN_FLAG_TYPE', enabled: true }, as(BOOT, 'Bearer'))).status, 200);
  }
  // the first fetch happens in the background right after start
  assert.ok(await until(async () => (await flags(sign('RS256', keys.rsa, good(), { kid: 'rsa-1' }))).status === 200), srv.stderr());
});
after(async () => {
  await srv?.stop();
  jw?.server.close();
});

const refused = async (t, why, scheme = 'JWT') => {
  const r = await flags(t, scheme);
  assert.equal(r.status, 401, `${why}: ${r.text}`);
  assert.deepEqual(r.json, { code: 16, message: 'request was not authenticated', details: [] });
};

test('tokens of every algorithm Flipt accepts, as "JWT" and as "Bearer"', async () => {
  const cases = [['RS256', keys.rsa, 'rsa-1'], ['RS512', keys.rsa, 'rsa-1'], ['ES256', keys.p256, 'ec-1'],
    ['ES512', keys.p521, 'ec-2'], ['EdDSA', keys.ed, 'ed-1']];
  for (const [alg, key, kid] of cases) {
    const t = sign(alg, key, good(), { kid });
    assert.equal((await flags(t, 'JWT')).status, 200, alg);
    assert.equal((await flags(t, 'Bearer')).status, 200, alg + ' as Bearer');
  }
  // without a kid: every key of the fitting type is tried
  assert.equal((await flags(sign('ES256', keys.p256, good()))).status, 200);
  // the static token still works beside it
  assert.equal((await flags(BOOT, 'Bearer')).status, 200);
  // /auth/v1/self: Flipt's METHOD_JWT authentication with the metadata it derives from the claims
  const self = await call(srv.url, 'GET', '/auth/v1/self', undefined,
    as(sign('RS256', keys.rsa, good({ user: { email: 'a@example.com', name: 'Alice', image: 'p.png' }, 'io.flipt.auth.role': 'admin' }), { kid: 'rsa-1' })));
  assert.equal(self.status, 200, self.text);
  assert.equal(self.json.method, 'METHOD_JWT');
  assert.equal(self.json.metadata['io.flipt.auth.jwt.issuer'], ISS);
  assert.equal(self.json.metadata['io.flipt.auth.jwt.email'], 'a@example.com');
  assert.equal(self.json.metadata['io.flipt.auth.jwt.name'], 'Alice');
  assert.equal(self.json.metadata['io.flipt.auth.jwt.picture'], 'p.png');
  assert.equal(self.json.metadata['io.flipt.auth.role'], 'admin');
  const methods = await call(srv.url, 'GET', '/auth/v1/method');
  assert.ok(methods.json.methods.some((m) => m.method === 'METHOD_JWT' && m.enabled), methods.text);
});

test('refused: bad signature, wrong issuer/audience, time, alg none, HS256 with the public key, wrong key type', async () => {
  const t = sign('RS256', keys.rsa, good(), { kid: 'rsa-1' });
  const [h, p, s] = t.split('.');
  await refused(`${h}.${b64u(JSON.stringify(good({ sub: 'mallory' })))}.${s}`, 'payload changed');
  await refused(`${h}.${p}.${b64u(crypto.randomBytes(256))}`, 'random signature');
  await refused(sign('RS256', keys.rsa2, good(), { kid: 'rsa-1' }), 'signed by another key under a known kid');
  await refused(sign('RS256', keys.rsa, good({ iss: 'https://evil.test' }), { kid: 'rsa-1' }), 'wrong issuer');
  await refused(sign('RS256', keys.rsa, good({ iss: undefined }), { kid: 'rsa-1' }), 'no issuer');
  await refused(sign('RS256', keys.rsa, good({ aud: 'someone-else' }), { kid: 'rsa-1' }), 'wrong audience');
  assert.equal((await flags(sign('RS256', keys.rsa, good({ aud: ['x', AUD] }), { kid: 'rsa-1' }))).status, 200, 'aud array');
  // time, with Flipt's 60 s of clock skew
  await refused(sign('RS256', keys.rsa, good({ iat: now() - 1000, exp: now() - 61 }), { kid: 'rsa-1' }), 'expired');
  assert.equal((await flags(sign('RS256', keys.rsa, good({ iat: now() - 1000, exp: now() - 30 }), { kid: 'rsa-1' }))).status, 200, 'expired within the skew');
  await refused(sign('RS256', keys.rsa, good({ nbf: now() + 120 }), { kid: 'rsa-1' }), 'not yet valid');
  await refused(sign('RS256', keys.rsa, good({ iat: now() + 120 }), { kid: 'rsa-1' }), 'issued in the future');
  await refused(sign('RS256', keys.rsa, { iss: ISS, aud: AUD, sub: 'x' }, { kid: 'rsa-1' }), 'no exp, nbf or iat');
  await refused(sign('RS256', keys.rsa, good({ exp: 'tomorrow' }), { kid: 'rsa-1' }), 'exp not a number');
  // iat alone: valid for 150 s after it (cap's leeway) plus the skew
  assert.equal((await flags(sign('RS256', keys.rsa, { iss: ISS, aud: AUD, iat: now() - 100 }, { kid: 'rsa-1' }))).status, 200);
  await refused(sign('RS256', keys.rsa, { iss: ISS, aud: AUD, iat: now() - 300 }, { kid: 'rsa-1' }), 'iat too old without exp');
  // algorithms
  await refused(sign('none', null, good(), { kid: 'rsa-1' }), 'alg none');
  await refused(`${b64u(JSON.stringify({ alg: 'none' }))}.${b64u(JSON.stringify(good()))}.`, 'alg none, empty signature');
  const pem = keys.rsa.publicKey.export({ type: 'spki', format: 'pem' });
  await refused(sign('HS256', pem, good(), { kid: 'rsa-1' }), 'HS256 with the RSA public key as secret');
  await refused(sign('HS256', 'secret', good(), { kid: 'hmac' }), 'HS256 with an oct key of the set');
  await refused(sign('ES256', keys.p256, good(), { kid: 'rsa-1' }), 'ES256 under an RSA kid');
  await refused(sign('RS256', keys.small, good(), { kid: 'small' }), 'RSA key under 2048 bits (skipped from the set)');
  await refused(sign('RS256', keys.rsa, good(), { kid: 'rsa-1', crit: ['exp'] }), 'crit header');
  // not a token
  for (const junk of ['a.b.c', 'x', '..', `${h}.${p}`, `${h}.${p}.${s}.x`, `${h}!.${p}.${s}`, '%%%.%%%.%%%']) await refused(junk, `junk ${junk}`);
  await refused(t, 'a JWT is not a bearer static token when JWT is off for Bearer', 'Basic');
});

test('scopes: io.flipt.auth.token.namespace limits a JWT as it limits a scoped token', async () => {
  const t = sign('RS256', keys.rsa, good({ 'io.flipt.auth.token.namespace': 'team-a' }), { kid: 'rsa-1' });
  assert.equal((await flags(t, 'JWT', 'team-a')).status, 200);
  assert.equal((await flags(t, 'JWT', 'team-b')).status, 401);
  assert.equal((await call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'team-a', flagKey: 'f', entityId: 'e' }, as(t))).status, 200);
  assert.equal((await call(srv.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'team-b', flagKey: 'f', entityId: 'e' }, as(t))).status, 401);
  assert.equal((await call(srv.url, 'GET', '/api/v1/namespaces', undefined, as(t))).status, 401);
  assert.equal((await call(srv.url, 'POST', '/auth/v1/method/token', { name: 'x' }, as(t))).status, 401);
  await refused(sign('RS256', keys.rsa, good({ 'io.flipt.auth.token.namespace': 7 }), { kid: 'rsa-1' }), 'scope not a string');
  // unscoped JWTs may write; scoped ones within their namespace
  assert.equal((await call(srv.url, 'POST', '/api/v1/namespaces/team-a/flags', { key: 'jw', name: 'J', type: 'BOOLEAN_FLAG_TYPE' }, as(t))).status, 200);
  assert.equal((await call(srv.url, 'POST', '/api/v1/namespaces/team-b/flags', { key: 'jw', name: 'J', type: 'BOOLEAN_FLAG_TYPE' }, as(t))).status, 401);
  // the change log records the JWT's identity: method jwt, its subject, the user claim's name and email
  const who = sign('RS256', keys.rsa, good({ sub: 'carol', user: { name: 'Carol', email: 'carol@example.com' } }), { kid: 'rsa-1' });
  assert.equal((await call(srv.url, 'POST', '/api/v1/namespaces/team-a/flags', { key: 'by-carol', name: 'C', type: 'BOOLEAN_FLAG_TYPE' }, as(who))).status, 200);
  const hist = await call(srv.url, 'GET', '/edgeflag/v1/namespaces/team-a/history?flag=by-carol', undefined, as(BOOT, 'Bearer'));
  assert.equal(hist.status, 200, hist.text);
  const actor = JSON.stringify(hist.json);
  for (const want of ['"jwt"', '"carol"', '"Carol"', '"carol@example.com"']) assert.ok(actor.includes(want), `${want} in ${actor}`);
});

test('key rotation: an unknown kid triggers a (rate-limited) refresh; removed keys stop working', async () => {
  const newTok = () => sign('RS256', keys.rsa2, good(), { kid: 'rsa-2' });
  const oldTok = () => sign('RS256', keys.rsa, good(), { kid: 'rsa-1' });
  assert.equal((await flags(newTok())).status, 401, 'not in the set yet');
  jw.set = [jwk(keys.rsa2, 'rsa-2')];
  assert.ok(await until(async () => (await flags(newTok())).status === 200, 5000), 'new key accepted after the refresh');
  await refused(oldTok(), 'old kid removed');
  // a flood of made-up kids costs the JWKS at most one fetch per --auth-jwt-min-refresh (1 s)
  const before = jw.hits;
  const t0 = Date.now();
  for (let round = 0; round < 6; round++) { // 50 at a time: under the per-address connection limit
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => flags(sign('RS256', keys.rsa, good(), { kid: `bogus-${round}-${i}` }))));
    assert.ok(rs.every((r) => r.status === 401));
  }
  const secs = (Date.now() - t0) / 1000;
  assert.ok(jw.hits - before <= Math.ceil(secs) + 2, `${jw.hits - before} fetches in ${secs} s for 300 unknown kids`);
});

test('a JWKS that goes down: cached keys keep working; a server whose JWKS never answers still evaluates', async () => {
  jw.set = [jwk(keys.rsa, 'rsa-1'), jwk(keys.rsa2, 'rsa-2')];
  assert.ok(await until(async () => (await flags(sign('RS256', keys.rsa, good(), { kid: 'rsa-1' }))).status === 200, 5000));
  const closed = new Promise((r) => jw.server.close(r));
  jw.server.closeAllConnections();
  await closed;
  // a refresh attempt fails: the last good set stays
  assert.equal((await flags(sign('RS256', keys.rsa, good(), { kid: 'unknown-now' }))).status, 401);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await flags(sign('RS256', keys.rsa, good(), { kid: 'rsa-1' }))).status, 200, 'cached key after failed refresh');

  // a black hole: accepts connections, never answers
  const hole = http.createServer(() => {});
  await new Promise((r) => hole.listen(0, '127.0.0.1', r));
  const s2 = await startServer(['--auth-jwt-jwks-url', `http://127.0.0.1:${hole.address().port}/jwks`, '--auth-exclude', 'evaluation']);
  try {
    assert.equal((await call(s2.url, 'POST', '/api/v1/namespaces', { key: 'x', name: 'x' }, as(BOOT, 'Bearer'))).status, 401, 'no bootstrap token when JWT alone is configured');
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      const r = await call(s2.url, 'POST', '/evaluate/v1/boolean', { namespaceKey: 'default', flagKey: 'nope', entityId: 'e' });
      assert.equal(r.status, 404, r.text);
    }
    assert.ok(Date.now() - t0 < 3000, 'evaluations waited on the JWKS');
    const t1 = Date.now();
    assert.equal((await call(s2.url, 'GET', '/api/v1/namespaces', undefined, as(sign('RS256', keys.rsa, good(), { kid: 'rsa-1' })))).status, 401);
    assert.ok(Date.now() - t1 < 1000, 'a JWT request waited on the JWKS');
  } finally {
    await s2.stop();
    hole.closeAllConnections();
    hole.close();
  }
});

test('public_key_file, Flipt config keys, and configuration errors', async () => {
  const tmp = tempDir('ef-jwt-');
  const pemFile = path.join(tmp, 'key.pem');
  fs.writeFileSync(pemFile, keys.p256.publicKey.export({ type: 'spki', format: 'pem' }));
  const cfg = path.join(tmp, 'config.yml');
  fs.writeFileSync(cfg, [
    'authentication:', '  required: true', '  methods:', '    jwt:', '      enabled: true',
    `      public_key_file: ${pemFile}`, '      validate_claims:', `        issuer: ${ISS}`, '        subject: alice',
    '        audiences:', `          - ${AUD}`, ''].join('\n'));
  const s = await startServer(['--config', cfg]);
  try {
    const ok = await call(s.url, 'GET', '/api/v1/namespaces', undefined, as(sign('ES256', keys.p256, good(), { kid: 'anything' })));
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await call(s.url, 'GET', '/api/v1/namespaces', undefined, as(sign('ES256', keys.p256, good({ sub: 'bob' }))))).status, 401, 'subject');
    assert.equal((await call(s.url, 'GET', '/api/v1/namespaces', undefined, as(sign('ES256', keypair('ec', { namedCurve: 'P-256' }), good())))).status, 401, 'another P-256 key');
    assert.equal((await call(s.url, 'GET', '/api/v1/namespaces', undefined, as(sign('EdDSA', keys.ed, good())))).status, 401);
    assert.equal((await call(s.url, 'GET', '/api/v1/namespaces')).status, 401);
  } finally {
    await s.stop();
  }
  const fails = (args, re) => {
    const r = spawnSync(edgeflagBin, ['serve', '--listen', '127.0.0.1:0', '--db', path.join(tmp, 'x.db'), ...args], { encoding: 'utf8', timeout: 10000 });
    assert.notEqual(r.status, 0, `${args.join(' ')} started`);
    assert.match(r.stderr, re);
  };
  fails(['--auth-jwt-public-key-file', path.join(tmp, 'missing.pem')], /public_key_file .*missing\.pem: No such file/);
  fails(['--auth-jwt-public-key-file', pemFile, '--auth-jwt-jwks-url', 'http://127.0.0.1:1/'], /one of jwks_url or public_key_file.*not both/);
  fails(['--auth-jwt-jwks-url', 'file:///etc/passwd'], /http:\/\/ or https:\/\//);
  fs.writeFileSync(path.join(tmp, 'bad.pem'), 'not a key');
  fails(['--auth-jwt-public-key-file', path.join(tmp, 'bad.pem')], /no PEM public key/);
  fs.writeFileSync(path.join(tmp, 'small.pem'), keys.small.publicKey.export({ type: 'spki', format: 'pem' }));
  fails(['--auth-jwt-public-key-file', path.join(tmp, 'small.pem')], /shorter than 2048 bits/);
  fs.writeFileSync(path.join(tmp, 'nokeys.yml'), 'authentication:\n  required: true\n  methods:\n    jwt:\n      enabled: true\n');
  fails(['--config', path.join(tmp, 'nokeys.yml')], /one of jwks_url or public_key_file is required/);
});
