// The engine's success and failure decisions against servers and local files that misbehave, over real
// HTTP: what counts as uploaded, what is kept or deleted after a failure, and what is left billing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clientFor, readObject } from '../helpers/client.ts';
import { randomFile } from '../helpers/files.ts';
import { hostileClient, isPart } from './hostile.ts';
import { bufferBody, crc64 } from '../../src/oss/index.ts';
import {
  type ProgressEvent,
  RangeHasher,
  checkpointPathFor,
  findStaleUploads,
  isUploadError,
  uploadFile,
} from '../../src/engine/index.ts';
import { serverClientDir } from '../helpers/setup.ts';
import { PART, uploadStoppedAt } from '../helpers/upload.ts';

const BUCKET = 'test-bucket';
const HOUR = 3_600_000;
const FILE_CHANGED = /the local file changed \(or was deleted\) during its upload/;

const setup = serverClientDir;

function okParts(server: { requests: ReadonlyArray<{ operation: string; status: number }> }): number {
  return server.requests.filter((r) => r.operation === 'UploadPart' && r.status === 200).length;
}

test('A: a Complete answered 200 without a CRC is checked by HEAD; an object that is not there is a failure with the checkpoint kept', async (t) => {
  const { server, client: direct, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', PART * 3);
  const cpDir = join(dir, 'cp');
  let swallow = true;
  const { client } = await hostileClient(t, server, async (req, res, ctx) => {
    if (req.method !== 'POST' || !req.query.has('uploadId')) return false;
    if (swallow) {
      // a 200 that completed nothing: no CRC, an ETag that proves nothing
      await ctx.body();
      res
        .writeHead(200, { 'content-type': 'application/xml' })
        .end('<CompleteMultipartUploadResult><ETag></ETag></CompleteMultipartUploadResult>');
      return true;
    }
    const real = await ctx.forward();
    delete real.headers['x-oss-hash-crc64ecma'];
    res.writeHead(real.status, real.headers).end(real.body);
    return true;
  });
  const opts = {
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    checkpoint: { dir: cpDir },
  };
  const err = await uploadFile(opts).catch((e: unknown) => e);
  assert.ok(isUploadError(err), String(err));
  assert.match(err.message, /not confirmed|does not exist|NoSuchKey/);
  assert.equal(err.resumable, true);
  assert.ok(existsSync(checkpointPathFor(cpDir, BUCKET, 'f.bin')), 'the checkpoint is kept');

  // a real Complete whose answer lost its CRC header: the HEAD proves the object
  swallow = false;
  const result = await uploadFile(opts);
  assert.equal(result.verified, 'crc64');
  assert.equal(result.crc64, crc64(data).toString());
  assert.deepEqual(await readObject(direct, BUCKET, 'f.bin'), data);
  assert.equal(existsSync(checkpointPathFor(cpDir, BUCKET, 'f.bin')), false);
});

test('B: verified stored bytes are never deleted after a failure; bytes proven wrong are', async (t) => {
  const { server, client: direct, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'page.html', 4000);
  // `touch` during the PutObject: same bytes, new mtime
  const touched = await hostileClient(t, server, async (req) => {
    if (req.method === 'PUT' && req.path.endsWith('/page.html'))
      await utimes(path, new Date(), new Date(Date.now() + 5000));
    return false;
  });
  const err = await uploadFile({
    client: touched.client,
    bucket: BUCKET,
    key: 'page.html',
    file: path,
  }).catch((e: unknown) => e);
  assert.ok(isUploadError(err), String(err));
  assert.match(err.message, FILE_CHANGED);
  assert.match(err.message, /left in place/);
  assert.deepEqual(await readObject(direct, BUCKET, 'page.html'), data, 'the verified object stays');

  // the answer's CRC lies, the stored bytes are right: failed, and left in place
  server.addFault({ operation: 'PutObject', key: 'page.html', times: Infinity, action: { type: 'badCrc' } });
  const lied = await uploadFile({ client: direct, bucket: BUCKET, key: 'page.html', file: path }).catch(
    (e: unknown) => e,
  );
  assert.ok(isUploadError(lied));
  assert.equal(lied.code, 'CrcMismatch');
  assert.deepEqual(await readObject(direct, BUCKET, 'page.html'), data);
  server.clearFaults();

  // bytes damaged on the way, every attempt: the server holds bytes proven not to be the file, they go
  const damaging = await hostileClient(t, server, async (req, res, ctx) => {
    if (req.method !== 'PUT' || !req.path.endsWith('/bad.bin')) return false;
    const body = Buffer.from(await ctx.body());
    body[0] = body[0]! ^ 0xff;
    const real = await ctx.forward(body);
    res.writeHead(real.status, real.headers).end(real.body);
    return true;
  });
  const bad = await randomFile(dir, 'bad.bin', 3000);
  const wrong = await uploadFile({
    client: damaging.client,
    bucket: BUCKET,
    key: 'bad.bin',
    file: bad.path,
  }).catch((e: unknown) => e);
  assert.ok(isUploadError(wrong));
  assert.equal(wrong.code, 'CrcMismatch');
  await assert.rejects(direct.headObject({ bucket: BUCKET, key: 'bad.bin' }), /NoSuchKey|404/);
});

test('C: a file truncated, deleted or edited in place (mtime restored) mid-upload fails at once, named as a local change', async (t) => {
  const { server, dir } = await setup(t);
  const cases: Array<[string, (path: string, data: Buffer) => Promise<void>]> = [
    ['truncated', (p) => truncate(p, PART * 2 + 10)],
    ['deleted', (p) => rm(p)],
    [
      'edited, mtime restored',
      async (p, data) => {
        const before = await stat(p);
        const h = await open(p, 'r+');
        await h.write(Buffer.from([data[10]! ^ 0xff]), 0, 1, 10);
        await h.close();
        await utimes(p, before.atime, before.mtime);
      },
    ],
  ];
  for (const [name, change] of cases) {
    const { path, data } = await randomFile(dir, `${name}.bin`, PART * 6);
    let changed = false;
    const { hostile, client } = await hostileClient(t, server, async (req) => {
      if (isPart(req, 3) && !changed) {
        changed = true;
        await change(path, data);
      }
      return false;
    });
    const err = await uploadFile({
      client,
      bucket: BUCKET,
      key: `${name}.bin`,
      file: path,
      partSize: PART,
      threadNum: 1,
    }).catch((e: unknown) => e);
    assert.ok(isUploadError(err), `${name}: ${String(err)}`);
    assert.match(err.message, FILE_CHANGED, name);
    const partRequests = hostile.requests.filter((r) => isPart(r)).length;
    assert.ok(partRequests <= 4, `${name}: not retried, ${partRequests} part requests`);
    await assert.rejects(
      clientFor(server).headObject({ bucket: BUCKET, key: `${name}.bin` }),
      /NoSuchKey|404/,
      `${name}: never completed`,
    );
  }
});

test('D: a dropped checkpoint takes its multipart upload with it (now one PutObject, corrupt, other endpoint)', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', PART * 4);
  const cpDir = join(dir, 'cp');
  const cp = checkpointPathFor(cpDir, BUCKET, 'f.bin');
  const stopAtPart3 = async (c = client) => {
    const e = await uploadStoppedAt({ server, client: c }, path, 3, { cpDir });
    assert.ok(isUploadError(e) && e.resumable, String(e));
    assert.equal((await client.listMultipartUploads({ bucket: BUCKET })).length, 1);
  };
  const base = { client, bucket: BUCKET, key: 'f.bin', file: path, checkpoint: { dir: cpDir } };

  // the re-run fits one PutObject
  await stopAtPart3();
  await uploadFile({ ...base, partSize: 'auto' });
  assert.deepEqual(await client.listMultipartUploads({ bucket: BUCKET }), []);
  assert.equal(existsSync(cp), false);

  // the checkpoint is corrupt: uploads of this key begun before it was written go; a later one (another job's) stays
  await stopAtPart3();
  await writeFile(cp, '{"checksum":"garbage');
  await new Promise((r) => setTimeout(r, 20));
  const live = await client.initiateMultipartUpload({ bucket: BUCKET, key: 'f.bin' });
  const result = await uploadFile({ ...base, partSize: PART });
  assert.equal(result.crc64, crc64(data).toString());
  assert.deepEqual(
    (await client.listMultipartUploads({ bucket: BUCKET })).map((u) => u.uploadId),
    [live.uploadId],
  );
  await client.abortMultipartUpload({ bucket: BUCKET, key: 'f.bin', uploadId: live.uploadId });

  // the endpoint changed: the old upload cannot be aborted from here, and the run says so
  const { client: elsewhere } = await hostileClient(t, server, () => false);
  await stopAtPart3(elsewhere);
  const notices: string[] = [];
  await uploadFile({ ...base, partSize: PART, onNotice: (m) => notices.push(m) });
  assert.ok(
    notices.some((n) => /cannot abort upload .* on .*127\.0\.0\.1/.test(n)),
    notices.join('\n'),
  );
});

test('E: a checkpoint that cannot be written stops the file early, naming the path and what to do', async (t) => {
  const { server, dir } = await setup(t);
  const { path } = await randomFile(dir, 'f.bin', PART * 20);
  const cpDir = join(dir, 'cp');
  const cpPath = join(cpDir, 'sub', 'f.cp');
  await mkdir(join(cpDir, 'sub'), { recursive: true });
  const { client } = await hostileClient(t, server, async (req) => {
    if (isPart(req, 3)) {
      // the checkpoint dir vanishes under the upload: every later write fails
      await rm(join(cpDir, 'sub'), { recursive: true, force: true });
      await writeFile(join(cpDir, 'sub'), 'not a directory');
    }
    return false;
  });
  const err = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    threadNum: 1,
    checkpoint: { path: cpPath },
  }).catch((e: unknown) => e);
  assert.ok(isUploadError(err), String(err));
  assert.ok(err.message.includes(cpPath), err.message);
  assert.match(err.message, /free space|checkpoint-dir|checkpoints off/);
  assert.ok(okParts(server) < 8, `stopped early: ${okParts(server)} of 20 parts sent`);
  assert.deepEqual(
    (await readdir(cpDir)).filter((n) => n.endsWith('.tmp')),
    [],
  );
});

test('F: skip-unchanged compares headers too: same bytes with new headers get the headers, not the bytes again', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'index.html', 5000);
  const send = (headers: Record<string, string>) =>
    uploadFile({ client, bucket: BUCKET, key: 'index.html', file: path, skipUnchanged: true, headers });
  const first = {
    'content-type': 'text/html',
    'cache-control': 'max-age=60',
    'x-oss-meta-a': '1',
    'x-oss-object-acl': 'private',
  };
  await send(first);
  const same = await send(first);
  assert.equal(same.unchanged, true);
  assert.equal(same.headersUpdated, undefined);

  server.clearRequests();
  const { 'x-oss-meta-a': _removed, ...rest } = first;
  const updated = await send({ ...rest, 'cache-control': 'no-cache', 'x-oss-meta-b': '2' });
  assert.equal(updated.headersUpdated, true);
  assert.equal(updated.unchanged, undefined);
  assert.equal(updated.bytesSent, 0);
  assert.equal(updated.crc64, crc64(data).toString());
  const head = await client.headObject({ bucket: BUCKET, key: 'index.html' });
  assert.equal(head.headers['cache-control'], 'no-cache');
  assert.equal(head.headers['x-oss-meta-b'], '2');
  assert.equal(head.headers['x-oss-meta-a'], undefined, 'a meta header no longer set is removed');
  assert.equal(head.headers['content-type'], 'text/html');
  assert.ok(!server.requests.some((r) => r.operation === 'PutObject' || r.operation === 'UploadPart'));

  // only the ACL differs: PutObjectAcl, nothing copied
  server.clearRequests();
  const acl = await send({
    ...rest,
    'cache-control': 'no-cache',
    'x-oss-meta-b': '2',
    'x-oss-object-acl': 'public-read',
  });
  assert.equal(acl.headersUpdated, true);
  assert.equal(await client.getObjectAcl({ bucket: BUCKET, key: 'index.html' }), 'public-read');
  assert.deepEqual(
    server.requests.map((r) => r.operation).filter((o) => o !== 'HeadObject' && o !== 'GetObjectAcl'),
    ['PutObjectAcl'],
  );
  assert.deepEqual(await readObject(client, BUCKET, 'index.html'), data);
});

test('G: abort-stale-uploads judges age by the server clock and the newest part, so live uploads stay', async (t) => {
  const { server, client } = await setup(t);
  // initiated "3 h ago" with a part uploaded just now: a long upload still going
  const long = await client.initiateMultipartUpload({ bucket: BUCKET, key: 'live.bin' });
  const dead = await client.initiateMultipartUpload({ bucket: BUCKET, key: 'dead.bin' });
  await server.ageUploads(3 * HOUR);
  await client.uploadPart({
    bucket: BUCKET,
    key: 'live.bin',
    uploadId: long.uploadId,
    partNumber: 1,
    body: bufferBody('hello'),
  });
  const stale = await findStaleUploads({
    client,
    bucket: BUCKET,
    prefix: '',
    olderThanMs: HOUR,
    owned: new Set(),
  });
  assert.deepEqual(
    stale.map((u) => u.uploadId),
    [dead.uploadId],
  );

  // the runner's clock is 2 h ahead of the server's: an upload begun seconds ago is not stale
  await client.abortMultipartUpload({ bucket: BUCKET, key: 'dead.bin', uploadId: dead.uploadId });
  await client.abortMultipartUpload({ bucket: BUCKET, key: 'live.bin', uploadId: long.uploadId });
  const behind = (iso: string) => new Date(Date.parse(iso) - 2 * HOUR).toISOString();
  const { client: skewed } = await hostileClient(t, server, async (req, res, ctx) => {
    const real = await ctx.forward();
    real.headers.date = new Date(Date.parse(String(real.headers.date)) - 2 * HOUR).toUTCString();
    let body = real.body;
    if (req.method === 'GET' && req.query.has('uploads')) {
      body = Buffer.from(
        body
          .toString('utf8')
          .replace(
            /<Initiated>([^<]+)<\/Initiated>/g,
            (_, d: string) => `<Initiated>${behind(d)}</Initiated>`,
          ),
      );
      real.headers['content-length'] = String(body.length);
      delete real.headers['transfer-encoding'];
    }
    res.writeHead(real.status, real.headers).end(body);
    return true;
  });
  const fresh = await skewed.initiateMultipartUpload({ bucket: BUCKET, key: 'fresh.bin' });
  const none = await findStaleUploads({
    client: skewed,
    bucket: BUCKET,
    prefix: '',
    olderThanMs: HOUR,
    owned: new Set(),
  });
  assert.deepEqual(none, [], `fresh upload ${fresh.uploadId} kept`);
});

test('H: a PutObject reset mid-body and sent again counts its bytes once', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', 3 * 1024 * 1024);
  server.addFault({ operation: 'PutObject', action: { type: 'reset', afterBytes: 1024 * 1024 } });
  const events: ProgressEvent[] = [];
  const result = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    onProgress: (e) => events.push(e),
  });
  assert.equal(
    server.requests.filter((r) => r.operation === 'PutObject').length,
    2,
    'the first PUT was reset',
  );
  assert.equal(result.bytesSent, data.length);
  assert.ok(Math.max(...events.map((e) => e.bytesDone)) <= data.length, 'progress never passes 100%');
  assert.equal(events.at(-1)!.bytesDone, data.length);

  // a PUT whose answer had the wrong CRC is sent again: its bytes count once too
  server.addFault({ operation: 'PutObject', action: { type: 'badCrc' } });
  const again = await uploadFile({ client, bucket: BUCKET, key: 'g.bin', file: path });
  assert.equal(again.bytesSent, data.length);
});

test('I: parts are hashed as they are sent: a lone large file starts no hashing thread, and an answer that came before the body is checked against the whole part', async (t) => {
  const env = await setup(t);
  const partSize = 256 * 1024;
  const { path: file, data } = await randomFile(env.dir, 'big.bin', 4 * partSize + 1000);
  let threads = 0;
  const onWorker = (): void => void threads++;
  process.on('worker', onWorker);
  t.after(() => process.off('worker', onWorker));
  const hasher = new RangeHasher();
  t.after(() => hasher.close());
  const alone = await uploadFile({
    client: env.client,
    bucket: BUCKET,
    key: 'alone',
    file,
    partSize,
    hasher,
  });
  assert.equal(alone.verified, 'crc64');
  assert.ok((await readObject(env.client, BUCKET, 'alone')).equals(data));
  assert.equal(threads, 0, 'no hashing thread for a lone file');

  // part 2 answered at once, before its body is read, with the CRC-64 of its first 1000 bytes
  let early = 0;
  const { client } = await hostileClient(t, env.server, (req, res) => {
    if (!isPart(req, 2) || early++ > 0) return false;
    res
      .writeHead(200, {
        etag: '"0123456789ABCDEF0123456789ABCDEF"',
        'x-oss-hash-crc64ecma': crc64(data.subarray(partSize, partSize + 1000)).toString(),
        'x-oss-request-id': 'early',
      })
      .end();
    return true;
  });
  const result = await uploadFile({ client, bucket: BUCKET, key: 'early', file, partSize, hasher });
  assert.equal(result.verified, 'crc64');
  assert.equal(early, 2, 'part 2 was sent again');
  assert.ok((await readObject(env.client, BUCKET, 'early')).equals(data));
});
