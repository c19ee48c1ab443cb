// A real S3-protocol server for the backup tests, run as its own process so a test can stop and
// restart it (the bucket "down and back"): s3rver (npm) keeps the objects in DIR across restarts.
// s3rver checks the access key but not the AWS Signature V4 itself, so every request first
// passes a verifier here that recomputes the signature as AWS documents it (canonical request,
// string to sign, HMAC key chain) with the one key pair S3RVER / S3RVER, checks the payload's
// SHA-256 against x-amz-content-sha256, and answers 403 SignatureDoesNotMatch otherwise; then it
// is forwarded to s3rver unchanged.
//   node s3server.mjs PORT DIR [BUCKET...]   prints "s3 listening on http://127.0.0.1:PORT"
import crypto from 'node:crypto';
import http from 'node:http';
import S3rver from 's3rver';

const [port, dir, ...buckets] = process.argv.slice(2);
if (!port || !dir) {
  console.error('usage: node s3server.mjs PORT DIR [BUCKET...]');
  process.exit(2);
}
const SECRETS = { S3RVER: 'S3RVER' };

const s3 = new S3rver({ address: '127.0.0.1', port: 0, directory: dir, silent: true, configureBuckets: buckets.map((name) => ({ name })) });
const { port: inner } = await s3.run();

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
// RFC 3986 as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ percent-encoded, upper-case hex
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

// null when the request is signed correctly (or not by a key we know: s3rver refuses those),
// else the reason
function verify(req, body) {
  const auth = req.headers.authorization || '';
  const m = auth.match(/^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/);
  if (!m) return 'no AWS4-HMAC-SHA256 Authorization header';
  const [, key, day, region, signed, sig] = m;
  if (!(key in SECRETS)) return null;
  const date = req.headers['x-amz-date'] || '';
  if (!date.startsWith(day)) return 'x-amz-date does not match the credential scope';
  const payload = req.headers['x-amz-content-sha256'];
  if (payload !== sha256(body)) return 'x-amz-content-sha256 is not the SHA-256 of the body';
  const [path, query = ''] = req.url.split(/\?(.*)/s);
  const q = query === '' ? [] : query.split('&').map((kv) => {
    const [k, v = ''] = kv.split(/=(.*)/s);
    return [enc(decodeURIComponent(k)), enc(decodeURIComponent(v))];
  });
  q.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const names = signed.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date') || !names.includes('x-amz-content-sha256')) return `host, x-amz-date and x-amz-content-sha256 must be signed (signed: ${signed})`;
  const headers = names.map((h) => `${h}:${String(req.headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonical = [req.method, path, q.map(([k, v]) => `${k}=${v}`).join('&'), headers, signed, payload].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonical)].join('\n');
  const k = hmac(hmac(hmac(hmac('AWS4' + SECRETS[key], day), region), 's3'), 'aws4_request');
  const want = hmac(k, toSign).toString('hex');
  return want === sig ? null : `the signature does not match (canonical request:\n${canonical})`;
}

const front = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const why = verify(req, body);
    if (why) {
      const x = why.replace(/&/g, '&amp;').replace(/</g, '&lt;');
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>${x}</Message></Error>`);
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: inner, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    up.end(body);
  });
  req.on('error', () => {}); // an uploader that dies mid-request: its body is dropped whole
});
front.listen(Number(port), '127.0.0.1', () => {
  console.log(`s3 listening on http://127.0.0.1:${front.address().port}`);
});
const stop = () => front.close(() => s3.close().then(() => process.exit(0)));
process.on('SIGTERM', () => {
  front.closeAllConnections?.();
  stop();
});
process.on('SIGINT', stop);
