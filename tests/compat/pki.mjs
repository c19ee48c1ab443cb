// A throwaway PKI for the TLS tests, made with the `openssl` command at test time (nothing is
// committed): a CA and a second, unrelated CA; server certificates for localhost/127.0.0.1 (a
// current one, one for another host name, an expired one, a second one for rotation); client
// certificates signed by each CA. Keys are P-256. Never used outside tests.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './tmp.mjs';

function openssl(args, cwd) {
  try {
    return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (e.code === 'ENOENT') throw new Error('the openssl command is missing: scripts/install-deps.sh test installs it');
    throw new Error(`openssl ${args.join(' ')}: ${e.stderr}`);
  }
}

function keyAndCsr(dir, name, cn) {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
}

function ca(dir, name, cn) {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.pem`, '-days', '3', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

function sign(dir, caName, name, ext, days = 3) {
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`,
    '-CAcreateserial', '-out', `${name}.pem`, '-days', String(days), '-extfile', `${name}.ext`], dir);
}

// openssl x509 cannot date a certificate in the past; `openssl ca` can.
function signExpired(dir, caName, name, ext) {
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  fs.writeFileSync(path.join(dir, 'index.txt'), '');
  fs.writeFileSync(path.join(dir, 'serial'), '1000\n');
  fs.writeFileSync(path.join(dir, 'ca.cnf'), [
    '[ ca ]', 'default_ca = d', '[ d ]', `database = ${path.join(dir, 'index.txt')}`, `new_certs_dir = ${dir}`,
    `serial = ${path.join(dir, 'serial')}`, 'default_md = sha256', 'policy = p', '[ p ]', 'commonName = supplied', '',
  ].join('\n'));
  openssl(['ca', '-batch', '-notext', '-config', 'ca.cnf', '-cert', `${caName}.pem`, '-keyfile', `${caName}.key`,
    '-in', `${name}.csr`, '-out', `${name}.pem`, '-startdate', '20200101000000Z', '-enddate', '20200102000000Z',
    '-extfile', `${name}.ext`], dir);
}

const serverExt = (names) => `subjectAltName=${names}\nextendedKeyUsage=serverAuth\n`;
const clientExt = 'extendedKeyUsage=clientAuth\n';

// Returns { dir, file(name) } with: ca, other-ca, server, rotated, wronghost, expired, client,
// client-other (each NAME.pem and NAME.key). In a directory of its own, removed when the process
// exits (tmp.mjs), unless into names a directory the caller made and removes.
export function makePki(into) {
  const dir = into ?? tempDir('ef-pki-');
  ca(dir, 'ca', 'edgeflag test CA');
  ca(dir, 'other-ca', 'another CA');
  const local = 'DNS:localhost,IP:127.0.0.1';
  keyAndCsr(dir, 'server', 'localhost');
  sign(dir, 'ca', 'server', serverExt(local));
  keyAndCsr(dir, 'rotated', 'rotated.localhost');
  sign(dir, 'ca', 'rotated', serverExt(local));
  keyAndCsr(dir, 'wronghost', 'elsewhere.example');
  sign(dir, 'ca', 'wronghost', serverExt('DNS:elsewhere.example'));
  keyAndCsr(dir, 'expired', 'localhost');
  signExpired(dir, 'ca', 'expired', serverExt(local));
  keyAndCsr(dir, 'client', 'replica-1');
  sign(dir, 'ca', 'client', clientExt);
  keyAndCsr(dir, 'client-other', 'intruder');
  sign(dir, 'other-ca', 'client-other', clientExt);
  return { dir, file: (name) => path.join(dir, name) };
}

// Subject CN of the certificate a new TLS connection to host:port is served with.
export async function peerCn(port, ca) {
  const tls = await import('node:tls');
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      s.end();
      resolve(cn);
    });
    s.on('error', reject);
  });
}

// JSON over HTTPS with a private CA (fetch cannot take one): { status, json, text, socket, peer:
// { protocol, cn } }.
// opts: { ca, cert, key, agent, headers }.
export async function httpsCall(url, method, pathname, body, opts = {}) {
  const https = await import('node:https');
  const u = new URL(pathname, url);
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(u, {
      method,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      agent: opts.agent,
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
      servername: u.hostname === '127.0.0.1' ? 'localhost' : undefined,
      headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) },
      timeout: 10000,
    }, (res) => {
      const socket = res.socket; // released to the agent (or gone) once the answer ends
      const peer = { protocol: socket.getProtocol(), cn: socket.getPeerCertificate().subject?.CN };
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {}
        resolve({ status: res.statusCode, json, text, headers: res.headers, socket, peer });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${u} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

// `node pki.mjs DIR`: makes the PKI in DIR, an existing directory the caller owns and removes (a
// test written in C: its own temporary directory outlives this process), and prints DIR.
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  const into = process.argv[2];
  if (!into || !fs.statSync(into, { throwIfNoEntry: false })?.isDirectory()) {
    console.error('usage: node pki.mjs DIR (an existing directory, removed by the caller)');
    process.exit(2);
  }
  console.log(makePki(path.resolve(into)).dir);
}
