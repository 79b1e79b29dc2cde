// Runs s3rver in its own process for test/harness/s3.ts. Usage:
//   node --openssl-legacy-provider s3rver-server.mjs <directory> '<json array of bucket names>'
// --openssl-legacy-provider: s3rver encrypts ListObjectsV2 continuation tokens with DES, which
// OpenSSL 3 only offers through the legacy provider (truncated listings fail with HTTP 500 otherwise).
// Prints one line `{"port":N}` once listening. Exits on SIGTERM/SIGINT or when stdin closes
// (the parent died), so a crashed test run does not leave servers behind.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import S3rver from 's3rver';

const [directory, bucketsJson = '["backups"]'] = process.argv.slice(2);
if (!directory) {
  process.stderr.write('usage: s3rver-server.mjs <directory> [buckets-json]\n');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  directory,
  silent: true,
  configureBuckets: JSON.parse(bucketsJson).map((name) => ({ name })),
});

// s3rver answers ListMultipartUploads and AbortMultipartUpload with NotImplemented /
// MethodNotAllowed. Real S3 (and MinIO, Ceph, R2) has both, and bk relies on them to clean up
// uploads that never completed, so they are added here, in front of s3rver's own routes. s3rver
// keeps an upload in <directory>/<bucket>/._S3rver_uploads/<uploadId>/ (files `key`, `metadata`
// and one per part).
const xml = (s) => String(s).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
server.middleware.unshift(async (ctx, next) => {
  const [, bucket, ...rest] = ctx.path.split('/');
  const keyParts = rest.filter(Boolean);
  const uploadsDir = bucket ? join(directory, decodeURIComponent(bucket), '._S3rver_uploads') : '';
  if (ctx.method === 'GET' && bucket && keyParts.length === 0 && 'uploads' in ctx.query) {
    const prefix = String(ctx.query.prefix ?? '');
    const uploads = [];
    for (const id of await readdir(uploadsDir).catch(() => [])) {
      const key = await readFile(join(uploadsDir, id, 'key'), 'utf8').catch(() => undefined);
      if (key === undefined || !key.startsWith(prefix)) continue;
      const initiated = (await stat(join(uploadsDir, id, 'key'))).mtime.toISOString();
      uploads.push(`<Upload><Key>${xml(key)}</Key><UploadId>${xml(id)}</UploadId><Initiated>${initiated}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`);
    }
    ctx.type = 'application/xml';
    ctx.body =
      '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Bucket>${xml(decodeURIComponent(bucket))}</Bucket><Prefix>${xml(prefix)}</Prefix><MaxUploads>10000</MaxUploads><IsTruncated>false</IsTruncated>${uploads.join('')}</ListMultipartUploadsResult>`;
    return;
  }
  if (ctx.method === 'DELETE' && bucket && keyParts.length > 0 && typeof ctx.query.uploadId === 'string') {
    const dir = join(uploadsDir, ctx.query.uploadId.replace(/[^A-Za-z0-9]/g, ''));
    if (!(await stat(dir).catch(() => undefined))) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
      return;
    }
    await rm(dir, { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  await next();
});

const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  try {
    await server.close();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
