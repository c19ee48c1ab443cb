// A real S3-protocol server for the backup tests, run as its own process so a test can stop and
// restart it (the bucket "down and back"): s3rver (npm) on 127.0.0.1, objects kept in DIR across
// restarts, SigV4 checked with its one key pair (S3RVER / S3RVER).
//   node s3server.mjs PORT DIR [BUCKET...]   prints "s3 listening on http://127.0.0.1:PORT"
import S3rver from 's3rver';

const [port, dir, ...buckets] = process.argv.slice(2);
if (!port || !dir) {
  console.error('usage: node s3server.mjs PORT DIR [BUCKET...]');
  process.exit(2);
}
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  directory: dir,
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});
const { port: bound } = await server.run();
console.log(`s3 listening on http://127.0.0.1:${bound}`);
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
