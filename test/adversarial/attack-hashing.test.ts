// Parts hashed as they are sent: the digest of what one attempt read must never vouch for bytes the file does
// not hold, whatever the server answers and whenever the file changes; over real HTTP, with real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, statSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { clientFor, readObject } from '../helpers/client.ts';
import { randomFile } from '../helpers/files.ts';
import { hostileClient, isPart } from './hostile.ts';
import { crc64 } from '../../src/oss/index.ts';
import { RangeHasher, isUploadError, uploadFile, uploadFiles } from '../../src/engine/index.ts';
import { serverClientDir } from '../helpers/setup.ts';
import { PART } from '../helpers/upload.ts';

const BUCKET = 'test-bucket';
const setup = serverClientDir;
const FILE_CHANGED = /the local file changed \(or was deleted\) during its upload/;

/** One upload to the test bucket, settled: what it returned, or what it failed with. */
function attempt(
  client: Parameters<typeof uploadFile>[0]['client'],
  o: { key: string; file: string; partSize: number; threadNum: number },
): Promise<unknown> {
  return uploadFile({ client, bucket: BUCKET, ...o }).catch((e: unknown) => e);
}

/** Flip one byte of the file in place and put its times back, as `rsync --inplace -t` would. */
function editInPlace(path: string, at: number): void {
  const before = statSync(path);
  const fd = openSync(path, 'r+');
  const old = Buffer.alloc(1);
  readSync(fd, old, 0, 1, at);
  writeSync(fd, Buffer.from([old[0]! ^ 0xff]), 0, 1, at);
  closeSync(fd);
  utimesSync(path, before.atime, before.mtime);
}

async function absent(server: { url: string }, key: string): Promise<void> {
  const c = clientFor(server);
  try {
    await assert.rejects(c.headObject({ bucket: BUCKET, key }), /NoSuchKey|404/, `${key} never completed`);
  } finally {
    await c.close();
  }
}

/** A failed upload left no object; a successful one stored exactly `data`. */
async function expectStored(
  server: { url: string },
  key: string,
  result: unknown,
  data: Buffer | undefined,
): Promise<void> {
  if (data === undefined) {
    assert.ok(result instanceof Error, String(result));
    await absent(server, key);
    return;
  }
  assert.ok(!(result instanceof Error), String(result));
  assert.ok((await readObject(clientFor(server), BUCKET, key)).equals(data));
}

test('a part edited in place (mtime restored) between a reset attempt and its retry fails as a local change', async (t) => {
  const { server, dir } = await setup(t);
  for (const partSize of [PART, 700 * 1024]) {
    const key = `between-${partSize}`;
    const { path } = await randomFile(dir, `${key}.bin`, partSize * 3 + 17);
    // part 2's first attempt reaches the server whole, then the connection is cut before any answer
    server.addFault({
      operation: 'UploadPart',
      key,
      partNumber: 2,
      action: { type: 'reset', afterBytes: partSize },
    });
    let edited = 0;
    const { client } = await hostileClient(t, server, () => false, {
      onRetry: () => {
        if (edited++ === 0) editInPlace(path, partSize + 5);
      },
    });
    const err = await attempt(client, { key, file: path, partSize, threadNum: 1 });
    assert.equal(edited, 1, 'part 2 was retried once');
    assert.ok(isUploadError(err), `${partSize}: ${String(err)}`);
    assert.match(err.message, FILE_CHANGED);
    await absent(server, key);
  }
});

test('a part edited in place (mtime restored) while the server is still reading it fails as a local change', async (t) => {
  const { server, dir } = await setup(t);
  for (const partSize of [PART, 3 * 512 * 1024 + 3]) {
    const key = `during-${partSize}`;
    const { path } = await randomFile(dir, `${key}.bin`, partSize * 3);
    let edited = false;
    const { client } = await hostileClient(t, server, async (req, res, ctx) => {
      if (!isPart(req, 2) || edited) return false;
      edited = true;
      // the first bytes are here, the rest still on the way: change the end of the part
      editInPlace(path, 2 * partSize - 3);
      const real = await ctx.forward();
      res.writeHead(real.status, real.headers).end(real.body);
      return true;
    });
    const err = await attempt(client, { key, file: path, partSize, threadNum: 1 });
    assert.ok(isUploadError(err), `${partSize}: ${String(err)}`);
    assert.match(err.message, FILE_CHANGED);
    await absent(server, key);
  }
});

test('an answer made before the body from bytes an earlier attempt left is checked against the bytes read now', async (t) => {
  const { server, dir } = await setup(t);
  for (const change of [false, true]) {
    const key = `stale-${change}`;
    const { path, data } = await randomFile(dir, `${key}.bin`, PART * 3);
    let stored:
      { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer } | undefined;
    let seen = 0;
    const { client } = await hostileClient(t, server, async (req, res, ctx) => {
      if (!isPart(req, 2)) return false;
      seen++;
      if (!stored) {
        // the first attempt is stored, then a 500 makes the client send it again
        stored = await ctx.forward();
        if (change) editInPlace(path, PART + 1);
        res
          .writeHead(500, { 'content-type': 'application/xml' })
          .end('<Error><Code>InternalError</Code></Error>');
        return true;
      }
      // the retry is answered at once, with what the first attempt stored
      res.writeHead(stored.status, stored.headers).end(stored.body);
      return true;
    });
    const result = await attempt(client, { key, file: path, partSize: PART, threadNum: 1 });
    assert.ok(seen >= 2, 'part 2 was retried');
    if (change) assert.ok(isUploadError(result), String(result));
    await expectStored(server, key, result, change ? undefined : data);
  }
});

test('a server that stops sending CRCs mid-upload is checked by MD5 ETags; an ETag that is no MD5 fails the part', async (t) => {
  const { server, dir } = await setup(t);
  for (const fakeEtag of [false, true]) {
    const key = `md5-${fakeEtag}`;
    const { path, data } = await randomFile(dir, `${key}.bin`, 512 * 1024 * 2 + 300 * 1024 + 5);
    const { client } = await hostileClient(t, server, async (req, res, ctx) => {
      if (!isPart(req) || Number(req.query.get('partNumber')) < 2) return false;
      const real = await ctx.forward();
      delete real.headers['x-oss-hash-crc64ecma'];
      if (fakeEtag) real.headers.etag = '"not-an-md5-at-all"';
      res.writeHead(real.status, real.headers).end(real.body);
      return true;
    });
    const result = await attempt(client, { key, file: path, partSize: 512 * 1024, threadNum: 2 });
    if (fakeEtag) assert.ok(result instanceof Error, 'an ETag that is no MD5 proves nothing');
    await expectStored(server, key, result, fakeEtag ? undefined : data);
  }
});

test('a server that answers every part with the CRC of what it did not read is never believed', async (t) => {
  const { server, dir } = await setup(t);
  const partSize = 600 * 1024;
  const { path } = await randomFile(dir, 'prefix.bin', partSize * 2 + 1);
  const { client } = await hostileClient(t, server, async (req, res, ctx) => {
    if (!isPart(req)) return false;
    // only the first chunk's worth is stored, and answered for as if it were the whole part
    const body = await ctx.body();
    const real = await ctx.forward(body.subarray(0, 512 * 1024));
    res.writeHead(real.status, real.headers).end(real.body);
    return true;
  });
  const err = await attempt(client, { key: 'prefix', file: path, partSize, threadNum: 2 });
  assert.ok(err instanceof Error, 'never a success');
  await absent(server, 'prefix');
});

test('sizes at the edges, one and many threads, many files at once: every object is the file', async (t) => {
  const { client, dir } = await setup(t);
  const chunk = 512 * 1024;
  const sizes = [0, 1, PART - 1, PART, PART + 1, chunk, chunk + 1, 2 * chunk, 3 * PART + 7, 5 * chunk - 1];
  const files = await Promise.all(sizes.map((s, i) => randomFile(dir, `e${i}.bin`, s)));
  for (const threadNum of [1, 64]) {
    const hasher = new RangeHasher();
    t.after(() => hasher.close());
    const outcomes = await uploadFiles(
      files.map((f, i) => ({ file: f.path, key: `t${threadNum}/e${i}` })),
      { client, bucket: BUCKET, partSize: PART, threadNum, hasher },
    );
    for (const [i, o] of outcomes.entries()) {
      assert.ok(o.ok, `${sizes[i]}: ${String((o as { error?: unknown }).error)}`);
      const got = await readObject(client, BUCKET, `t${threadNum}/e${i}`);
      assert.ok(got.equals(files[i]!.data), `size ${sizes[i]} threads ${threadNum}`);
    }
  }
  // a lone file of exactly one part, and of one part and a byte
  for (const size of [PART, PART + 1, 2 * chunk]) {
    const { path, data } = await randomFile(dir, `lone-${size}.bin`, size);
    const r = await uploadFile({ client, bucket: BUCKET, key: `lone-${size}`, file: path, partSize: PART });
    assert.equal(r.crc64, crc64(data).toString());
    assert.ok((await readObject(client, BUCKET, `lone-${size}`)).equals(data));
  }
});

test('a server that sends no CRC at all, parts cut mid-body, stopped and resumed: verified by MD5, the object is the file', async (t) => {
  const { server, client, dir } = await serverClientDir(t, { crcHeaders: false });
  const partSize = 512 * 1024 + 3;
  const { path, data } = await randomFile(dir, 'md5.bin', partSize * 5 + 11);
  const cpDir = join(dir, 'cp');
  server.addFault({ operation: 'UploadPart', times: 3, action: { type: 'reset', afterBytes: 300 * 1024 } });
  server.addFault({
    operation: 'UploadPart',
    partNumber: 4,
    times: Infinity,
    action: { type: 'error', status: 403, code: 'AccessDenied' },
  });
  const opts = {
    client,
    bucket: BUCKET,
    key: 'md5',
    file: path,
    partSize,
    threadNum: 64,
    checkpoint: { dir: cpDir },
  };
  const stopped = await uploadFile(opts).catch((e: unknown) => e);
  assert.ok(isUploadError(stopped) && stopped.resumable, String(stopped));
  server.clearFaults();
  const result = await uploadFile(opts);
  assert.equal(result.verified, 'md5');
  assert.ok(result.bytesResumed > 0, 'parts were resumed');
  assert.ok((await readObject(client, BUCKET, 'md5')).equals(data));
});
