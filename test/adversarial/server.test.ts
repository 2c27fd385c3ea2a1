// Our OSS server's copy and ACL operations, its XML reading (Go-style character references) and its
// url-encoded listings, through the real client over HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bufferBody, crc64 } from '../../src/oss/index.ts';
import { clientFor, readObject } from '../helpers/client.ts';
import { startHostile } from './hostile.ts';
import { serverClientDir } from '../helpers/setup.ts';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Store } from '../../src/server/store.ts';

const bucket = 'test-bucket';

const setup = serverClientDir;

test('copyObject onto itself replaces the headers, keeps the bytes and the CRC-64, and HEAD shows the new ones', async (t) => {
  const { client } = await setup(t);
  const data = Buffer.from('copy me onto myself');
  await client.putObject({
    bucket,
    key: 'a/b c.txt',
    body: bufferBody(data),
    headers: { 'content-type': 'text/plain', 'x-oss-meta-old': 'gone', 'cache-control': 'no-cache' },
  });
  const copied = await client.copyObject({
    bucket,
    key: 'a/b c.txt',
    headers: {
      'Content-Type': 'text/html',
      'Cache-Control': 'max-age=60',
      'Content-Disposition': 'attachment; filename="x.html"',
      'Content-Encoding': 'identity',
      'x-oss-meta-new': 'here',
      'x-oss-storage-class': 'IA',
      'x-oss-object-acl': 'public-read',
    },
  });
  assert.equal(copied.crc64, crc64(data));
  assert.match(copied.etag, /^"[0-9A-F]{32}"$/);
  assert.ok(copied.requestId);
  const head = await client.headObject({ bucket, key: 'a/b c.txt' });
  assert.equal(head.crc64, crc64(data));
  assert.equal(head.etag, copied.etag);
  assert.equal(head.headers['content-type'], 'text/html');
  assert.equal(head.headers['cache-control'], 'max-age=60');
  assert.equal(head.headers['content-disposition'], 'attachment; filename="x.html"');
  assert.equal(head.headers['content-encoding'], 'identity');
  assert.equal(head.headers['x-oss-meta-new'], 'here');
  assert.equal(head.headers['x-oss-storage-class'], 'IA');
  assert.equal(head.headers['x-oss-meta-old'], undefined, 'REPLACE drops headers not given');
  assert.equal(await client.getObjectAcl({ bucket, key: 'a/b c.txt' }), 'public-read');
  assert.deepEqual(await readObject(client, bucket, 'a/b c.txt'), data);
});

test('CopyObject refuses a source at the size limit with EntityTooLarge, not retried', async (t) => {
  const { server, client } = await setup(t, { copyObjectLimit: 1000 });
  await client.putObject({ bucket, key: 'big', body: bufferBody(Buffer.alloc(1000)) });
  await client.putObject({ bucket, key: 'small', body: bufferBody(Buffer.alloc(999)) });
  await client.copyObject({ bucket, key: 'small', headers: {} });
  server.clearRequests();
  await assert.rejects(client.copyObject({ bucket, key: 'big', headers: {} }), {
    code: 'EntityTooLarge',
    status: 400,
    retryable: false,
  });
  assert.equal(server.requests.length, 1);
});

test('uploadPartCopy copies byte ranges into parts; the completed object has the right bytes and CRC-64', async (t) => {
  const { client } = await setup(t);
  const data = Buffer.alloc(300 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
  await client.putObject({ bucket, key: 'src', body: bufferBody(data) });
  const { uploadId } = await client.initiateMultipartUpload({
    bucket,
    key: 'src',
    headers: { 'content-type': 'image/png', 'x-oss-meta-kept': 'yes' },
  });
  const half = 150 * 1024;
  const p1 = await client.uploadPartCopy({
    bucket,
    key: 'src',
    uploadId,
    partNumber: 1,
    sourceKey: 'src',
    range: { start: 0, length: half },
  });
  const p2 = await client.uploadPartCopy({
    bucket,
    key: 'src',
    uploadId,
    partNumber: 2,
    sourceKey: 'src',
    range: { start: half, length: data.length - half },
  });
  assert.equal(p1.crc64, crc64(data.subarray(0, half)));
  assert.equal(p2.crc64, crc64(data.subarray(half)));
  const done = await client.completeMultipartUpload({
    bucket,
    key: 'src',
    uploadId,
    parts: [
      { partNumber: 1, etag: p1.etag },
      { partNumber: 2, etag: p2.etag },
    ],
  });
  assert.equal(done.crc64, crc64(data));
  const head = await client.headObject({ bucket, key: 'src' });
  assert.equal(head.headers['content-type'], 'image/png');
  assert.equal(head.headers['x-oss-meta-kept'], 'yes');
  assert.deepEqual(await readObject(client, bucket, 'src'), data);
  await assert.rejects(
    client.uploadPartCopy({
      bucket,
      key: 'src',
      uploadId: (await client.initiateMultipartUpload({ bucket, key: 'src' })).uploadId,
      partNumber: 1,
      sourceKey: 'src',
      range: { start: data.length - 1, length: 2 },
    }),
    { code: 'InvalidRange', status: 416 },
  );
});

test('getObjectAcl says default until putObjectAcl sets one; a bad ACL is refused before sending', async (t) => {
  const { server, client } = await setup(t);
  await client.putObject({ bucket, key: 'acl', body: bufferBody('x') });
  assert.equal(await client.getObjectAcl({ bucket, key: 'acl' }), 'default');
  await client.putObjectAcl({ bucket, key: 'acl', acl: 'private' });
  assert.equal(await client.getObjectAcl({ bucket, key: 'acl' }), 'private');
  server.clearRequests();
  await assert.rejects(
    client.putObjectAcl({ bucket, key: 'acl', acl: 'world' }),
    /acl "world" is not one of/,
  );
  assert.equal(server.requests.length, 0);
  await assert.rejects(client.getObjectAcl({ bucket, key: 'none' }), { code: 'NoSuchKey' });
});

test('a CompleteMultipartUpload body written by Go encoding/xml (&#34; around ETags) is accepted', async (t) => {
  const { server } = await setup(t);
  const bodies: string[] = [];
  const front = await startHostile(async (req, res, ctx) => {
    if (!(req.method === 'POST' && req.query.has('uploadId'))) return false;
    const goStyle = (await ctx.body()).toString('utf8').replaceAll('&quot;', '&#34;');
    bodies.push(goStyle);
    const f = await ctx.forward(Buffer.from(goStyle));
    res.writeHead(f.status, f.headers).end(f.body);
    return true;
  }, server.url);
  t.after(() => front.close());
  const client = clientFor(front);
  t.after(() => client.close());
  const { uploadId } = await client.initiateMultipartUpload({ bucket, key: 'go' });
  const part = await client.uploadPart({
    bucket,
    key: 'go',
    uploadId,
    partNumber: 1,
    body: bufferBody('go'),
  });
  const done = await client.completeMultipartUpload({
    bucket,
    key: 'go',
    uploadId,
    parts: [{ partNumber: 1, etag: part.etag }],
  });
  assert.match(bodies[0]!, /<ETag>&#34;[0-9A-F]{32}&#34;<\/ETag>/);
  assert.equal(done.crc64, crc64(Buffer.from('go')));
  assert.deepEqual(await readObject(client, bucket, 'go'), Buffer.from('go'));
});

test('keys with \\r, \\x01, &, <, quotes and non-ASCII round-trip through upload, ListObjectsV2 and DeleteMultipleObjects', async (t) => {
  const { server, client } = await setup(t, { pageLimit: 2 });
  const keys = ['odd/a\rb', 'odd/c\x01d', 'odd/e&f<g>h', 'odd/"q\'', 'odd/日本 報告.pdf', 'odd/tab\there'];
  for (const key of keys) await client.putObject({ bucket, key, body: bufferBody(key) });
  const listed = (await client.listObjects({ bucket, prefix: 'odd/' })).map((o) => o.key);
  assert.deepEqual(listed, [...keys].sort());
  const lists = server.requests.filter((r) => r.operation === 'ListObjects');
  assert.equal(lists.length, 3, 'pages of two keys each');
  const { deleted } = await client.deleteObjects({ bucket, keys });
  assert.deepEqual(deleted.sort(), [...keys].sort());
  assert.deepEqual(await client.listObjects({ bucket, prefix: 'odd/' }), []);
});

test('the server URL-encodes keys in list answers when encoding-type=url is asked', async (t) => {
  const { server } = await setup(t);
  const answers: string[] = [];
  const front = await startHostile(async (req, res, ctx) => {
    const f = await ctx.forward();
    if (req.method === 'GET') answers.push(f.body.toString('utf8'));
    res.writeHead(f.status, f.headers).end(f.body);
    return true;
  }, server.url);
  t.after(() => front.close());
  const client = clientFor(front);
  t.after(() => client.close());
  await client.putObject({ bucket, key: 'enc/a\rb&', body: bufferBody('x') });
  const { uploadId } = await client.initiateMultipartUpload({ bucket, key: 'enc/a\rb&' });
  assert.equal((await client.listObjects({ bucket, prefix: 'enc/' }))[0]!.key, 'enc/a\rb&');
  assert.equal((await client.listMultipartUploads({ bucket, prefix: 'enc/' }))[0]!.key, 'enc/a\rb&');
  await client.listParts({ bucket, key: 'enc/a\rb&', uploadId });
  assert.equal(answers.length, 3);
  for (const a of answers) {
    assert.match(a, /<EncodingType>url<\/EncodingType>/);
    assert.match(a, /<Key>enc%2Fa%0Db%26<\/Key>/);
  }
});

test('a completed upload keeps its parts as the data: ranges across parts, copies, overwrites and deletes read the right bytes', async (t) => {
  const { client } = await setup(t);
  const data = Buffer.alloc(350 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) % 253;
  const cut = [0, 120 * 1024, 240 * 1024, data.length];
  const multipart = async (key: string): Promise<void> => {
    const { uploadId } = await client.initiateMultipartUpload({ bucket, key });
    const parts = [];
    for (let n = 1; n < cut.length; n++) {
      const p = await client.uploadPart({
        bucket,
        key,
        uploadId,
        partNumber: n,
        body: bufferBody(data.subarray(cut[n - 1], cut[n])),
      });
      parts.push({ partNumber: n, etag: p.etag });
    }
    const done = await client.completeMultipartUpload({ bucket, key, uploadId, parts });
    assert.equal(done.crc64, crc64(data));
  };
  await client.putObject({ bucket, key: 'm', body: bufferBody('a single object first') });
  await multipart('m');
  assert.deepEqual(await readObject(client, bucket, 'm'), data);
  // a range from inside part 1 to inside part 3, read by UploadPartCopy
  const { uploadId } = await client.initiateMultipartUpload({ bucket, key: 'r' });
  const range = { start: 100 * 1024, length: 200 * 1024 };
  const copied = await client.uploadPartCopy({
    bucket,
    key: 'r',
    uploadId,
    partNumber: 1,
    sourceKey: 'm',
    range,
  });
  assert.equal(copied.crc64, crc64(data.subarray(range.start, range.start + range.length)));
  await client.copyObject({ bucket, key: 'm', headers: { 'content-type': 'text/plain' } });
  assert.deepEqual(await readObject(client, bucket, 'm'), data);
  await multipart('m2');
  await multipart('m2'); // parts over parts
  assert.deepEqual(await readObject(client, bucket, 'm2'), data);
  await client.putObject({ bucket, key: 'm', body: bufferBody('single again') });
  assert.equal((await readObject(client, bucket, 'm')).toString(), 'single again');
  await client.deleteObjects({ bucket, keys: ['m2'] });
  assert.deepEqual(
    (await client.listObjects({ bucket })).map((o) => o.key),
    ['m'],
  );
});

test('listings page through thousands of keys in order, by prefix, and see every write and delete at once', async (t) => {
  const { client } = await setup(t);
  const keys = Array.from({ length: 2100 }, (_, i) => `p/${String(i).padStart(4, '0')}`);
  for (let i = 0; i < keys.length; i += 100)
    await Promise.all(
      keys.slice(i, i + 100).map((key) => client.putObject({ bucket, key, body: bufferBody(key) })),
    );
  await client.putObject({ bucket, key: 'o', body: bufferBody('outside the prefix') });
  await client.putObject({ bucket, key: 'p', body: bufferBody('the prefix itself') });
  assert.deepEqual(
    (await client.listObjects({ bucket, prefix: 'p/' })).map((o) => o.key),
    keys,
  );
  await client.deleteObjects({ bucket, keys: keys.slice(0, 1500) });
  await client.putObject({ bucket, key: 'p/9999', body: bufferBody('late') });
  assert.deepEqual(
    (await client.listObjects({ bucket, prefix: 'p' })).map((o) => o.key),
    ['p', ...keys.slice(1500), 'p/9999'],
  );
});

test('the store copies an object kept as parts to another key, and deletes it whole', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'oss-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new Store(dir);
  await store.createBucket('b');
  const up = await store.initiate('b', 'src', {});
  const chunks = [Buffer.from('first part, '), Buffer.from('second part')];
  const parts = [];
  for (const [i, c] of chunks.entries())
    parts.push(await store.putPart(up.uploadId, i + 1, Readable.from([c])));
  const source = await store.complete(up, parts);
  await store.copyObject('b', source, 'copy', {});
  await store.deleteObject('b', 'src');
  const read = async (start?: number, end?: number): Promise<string> =>
    Buffer.concat(await store.objectStream('b', 'copy', start, end).toArray()).toString();
  assert.equal(await read(), 'first part, second part');
  assert.equal(await read(6, 17), 'part, second');
  assert.deepEqual(
    store.listObjects('b', '').map((o) => o.key),
    ['copy'],
  );
  assert.deepEqual(await readdir(join(dir, 'uploads')), []);
});
