// Attacks from the server side and from a bad clock: each test stages one hostile (or merely different) server
// answer over real HTTP, the rest forwarded to our real OSS server, and asserts the product promise (a green
// result means stored and verified; nothing a user already has is lost; every loop is bounded). Each test here
// FAILS today and passes once the finding it names is fixed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { clientFor, readObject } from '../helpers/client.ts';
import { randomFile } from '../helpers/files.ts';
import { serverClientDir } from '../helpers/setup.ts';
import { hostileClient, type HostileHandler } from './hostile.ts';
import { bufferBody, crc64 } from '../../src/oss/index.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import {
  abortUploads,
  checkpointPathFor,
  encodeCheckpoint,
  deleteOrphans,
  findOrphans,
  findStaleUploads,
  uploadFile,
} from '../../src/engine/index.ts';

const BUCKET = 'test-bucket';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T30 = { timeout: 30_000 };

/** Few, quick retries: these servers lie on every attempt. */
const hostileClientFast = (t: TestContext, upstream: { url: string }, handler: HostileHandler) =>
  hostileClient(t, upstream, handler, { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });

type TestContext = Parameters<typeof serverClientDir>[0];

/** One upload through `client`; its failure is returned rather than thrown, for the test to judge. */
function attemptUpload(
  client: ReturnType<typeof clientFor>,
  key: string,
  file: string,
  options: Omit<Parameters<typeof uploadFile>[0], 'client' | 'bucket' | 'key' | 'file'> = {},
): Promise<Awaited<ReturnType<typeof uploadFile>> | Error> {
  return uploadFile({ client, bucket: BUCKET, key, file, ...options }).catch((e: unknown) => e as Error);
}

function xmlAnswer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
  res
    .writeHead(status, {
      'content-type': 'application/xml',
      'x-oss-request-id': 'hostile-request',
      date: new Date().toUTCString(),
      ...headers,
    })
    .end(body);
  return true as const;
}

async function exists(client: ReturnType<typeof clientFor>, key: string): Promise<boolean> {
  try {
    await client.headObject({ bucket: BUCKET, key });
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === 'NoSuchKey') return false;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// 1. delete-orphans trusts the listing to stay under the prefix.
test(
  'delete-orphans never deletes a key outside the destination prefix, whatever the listing answer holds',
  T30,
  async (t) => {
    // A server that ignores `prefix` (or a hostile one) lists keys outside the destination. findOrphans
    // (src/engine/orphans.ts) keeps everything not in `keep`, so a deploy to `site/` deletes `precious/db.sql`.
    const { server, client: direct } = await serverClientDir(t);
    await direct.putObject({ bucket: BUCKET, key: 'site/index.html', body: bufferBody('<html>') });
    await direct.putObject({ bucket: BUCKET, key: 'precious/db.sql', body: bufferBody('the only copy') });
    const { client } = await hostileClientFast(t, server, (req, res) => {
      if (!(req.method === 'GET' && req.query.get('list-type') === '2')) return false;
      // the listing of a server that does not honour prefix: every key in the bucket
      return xmlAnswer(
        res,
        200,
        `<ListBucketResult><Name>${BUCKET}</Name><Prefix>site/</Prefix><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>` +
          '<Contents><Key>precious/db.sql</Key><Size>13</Size><ETag>"x"</ETag><LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents>' +
          '<Contents><Key>site/index.html</Key><Size>6</Size><ETag>"y"</ETag><LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents>' +
          '</ListBucketResult>',
      );
    });
    const orphans = await findOrphans({
      client,
      bucket: BUCKET,
      prefix: 'site/',
      keep: new Set(['site/index.html']),
    }).catch((e: unknown) => e as Error);
    if (Array.isArray(orphans) && orphans.length > 0)
      await deleteOrphans({ client, bucket: BUCKET, keys: orphans }).catch(() => undefined);
    assert.ok(
      await exists(direct, 'precious/db.sql'),
      `a key outside site/ was deleted as an orphan (findOrphans answered ${JSON.stringify(orphans)})`,
    );
  },
);

// ---------------------------------------------------------------------------------------------------------
// 2. abort-stale-uploads trusts the listing to stay under the prefix.
test(
  'abort-stale-uploads never aborts an upload outside the destination prefix, whatever the listing answer holds',
  T30,
  async (t) => {
    // findStaleUploads (src/engine/stale-uploads.ts) keeps every listed upload older than the cutoff, without
    // checking its key starts with the prefix asked for: another team's upload elsewhere in the bucket is aborted.
    const { server, client: direct } = await serverClientDir(t);
    const other = await direct.initiateMultipartUpload({ bucket: BUCKET, key: 'backups/huge.tar' });
    const { client } = await hostileClientFast(t, server, (req, res) => {
      if (!(req.method === 'GET' && req.query.has('uploads'))) return false;
      return xmlAnswer(
        res,
        200,
        `<ListMultipartUploadsResult><Bucket>${BUCKET}</Bucket><Prefix>site/</Prefix><IsTruncated>false</IsTruncated>` +
          `<Upload><Key>backups/huge.tar</Key><UploadId>${other.uploadId}</UploadId><Initiated>2020-01-01T00:00:00.000Z</Initiated></Upload>` +
          '</ListMultipartUploadsResult>',
      );
    });
    // refusing the whole listing (as for delete-orphans) keeps the promise as well as leaving the key out
    const stale = await findStaleUploads({
      client,
      bucket: BUCKET,
      prefix: 'site/',
      olderThanMs: DAY,
      owned: new Set(),
    }).catch((e: unknown) => e as Error);
    if (Array.isArray(stale)) await abortUploads({ client, bucket: BUCKET, uploads: stale });
    const still = await direct
      .listParts({ bucket: BUCKET, key: 'backups/huge.tar', uploadId: other.uploadId })
      .then(
        () => true,
        () => false,
      );
    if (Array.isArray(stale)) {
      assert.deepEqual(
        stale.map((u) => u.key),
        [],
        'an upload outside site/ was judged a stale upload of site/',
      );
    } else
      assert.match(stale.message, /backups\/huge\.tar.*outside/, 'refused, naming the key outside site/');
    assert.ok(still, 'the upload outside site/ was aborted');
  },
);

// ---------------------------------------------------------------------------------------------------------
// 3. A Date header far in the future makes every upload stale.
test(
  'a Date header far in the future (or a garbage one that parses as year 99999) does not make a live upload stale',
  T30,
  async (t) => {
    // serverNow() (src/oss/client.ts learnServerTime) takes any Date header as the server clock, however far
    // it is from ours and from the dates the same server writes into Initiated/LastModified. A proxy or a
    // server whose Date is wrong makes findStaleUploads abort an upload that began, and got a part, seconds ago.
    for (const date of ['Tue, 01 Jan 2999 00:00:00 GMT', '99999']) {
      const { server, client: direct } = await serverClientDir(t);
      const live = await direct.initiateMultipartUpload({ bucket: BUCKET, key: 'site/live.bin' });
      await direct.uploadPart({
        bucket: BUCKET,
        key: 'site/live.bin',
        uploadId: live.uploadId,
        partNumber: 1,
        body: bufferBody('fresh part'),
      });
      const { client } = await hostileClientFast(t, server, async (_req, res, ctx) => {
        const real = await ctx.forward();
        real.headers.date = date;
        res.writeHead(real.status, real.headers).end(real.body);
        return true;
      });
      const stale = await findStaleUploads({
        client,
        bucket: BUCKET,
        prefix: 'site/',
        olderThanMs: DAY,
        owned: new Set(),
      });
      assert.deepEqual(
        stale.map((u) => u.uploadId),
        [],
        `Date ${JSON.stringify(date)}: an upload with a part sent seconds ago was judged older than a day`,
      );
      assert.ok(
        Math.abs(client.serverNow() - Date.now()) < 366 * DAY,
        `Date ${JSON.stringify(date)}: serverNow() is ${new Date(client.serverNow()).toISOString()}`,
      );
    }
  },
);

// ---------------------------------------------------------------------------------------------------------
// 4. skip-unchanged reports "headers updated" on the word of a CopyObject answer alone.
test(
  'skip-unchanged with new headers: a CopyObject 200 that changed nothing is not reported as headers updated',
  T30,
  async (t) => {
    // unchangedStoredCopy (src/engine/unchanged.ts) checks the copy's CRC (bytes) but never that the stored
    // headers are now the wanted ones. A server that answers CopyObject 200 with a CopyObjectResult and the
    // object's CRC, without copying (or ignoring x-oss-metadata-directive), gives a green "headers updated"
    // result while the bucket still serves the old Cache-Control.
    const { server, client: direct, dir } = await serverClientDir(t);
    const { path, data } = await randomFile(dir, 'index.html', 2048);
    await direct.putObject({
      bucket: BUCKET,
      key: 'index.html',
      body: bufferBody(data),
      headers: { 'cache-control': 'max-age=31536000' },
    });
    const stored = await direct.headObject({ bucket: BUCKET, key: 'index.html' });
    const { client } = await hostileClientFast(t, server, (req, res) => {
      if (!(req.method === 'PUT' && req.headers['x-oss-copy-source'])) return false;
      return xmlAnswer(
        res,
        200,
        `<CopyObjectResult><ETag>${stored.etag}</ETag><LastModified>${new Date().toISOString()}</LastModified></CopyObjectResult>`,
        { 'x-oss-hash-crc64ecma': String(crc64(data)), etag: stored.etag },
      );
    });
    const outcome = await attemptUpload(client, 'index.html', path, {
      skipUnchanged: true,
      headers: { 'Cache-Control': 'no-cache' },
    });
    const after = await direct.headObject({ bucket: BUCKET, key: 'index.html' });
    if (!(outcome instanceof Error)) {
      assert.equal(
        after.headers['cache-control'],
        'no-cache',
        `reported ${JSON.stringify({ headersUpdated: outcome.headersUpdated, unchanged: outcome.unchanged })} but the stored Cache-Control is still ${after.headers['cache-control']}`,
      );
    }
  },
);

// ---------------------------------------------------------------------------------------------------------
// 5. The same for the ACL: PutObjectAcl's 200 alone.
test(
  'skip-unchanged with a new ACL: a PutObjectAcl 200 that changed nothing is not reported as headers updated',
  T30,
  async (t) => {
    // unchangedStoredCopy (src/engine/unchanged.ts, the differing.length === 0 branch) sends PutObjectAcl and
    // reports headersUpdated without reading the ACL back; a gateway that answers 200 and ignores object ACLs
    // (many S3-compatible ones do) leaves a "private" object public-read while the run says it was set.
    const { server, client: direct, dir } = await serverClientDir(t);
    const { path, data } = await randomFile(dir, 'secret.json', 512);
    await direct.putObject({ bucket: BUCKET, key: 'secret.json', body: bufferBody(data) });
    await direct.putObjectAcl({ bucket: BUCKET, key: 'secret.json', acl: 'public-read' });
    const { client } = await hostileClientFast(t, server, async (req, res, ctx) => {
      if (!(req.method === 'PUT' && req.query.has('acl'))) return false;
      await ctx.body();
      res.writeHead(200, { 'x-oss-request-id': 'hostile-request', 'content-length': '0' }).end();
      return true;
    });
    const outcome = await attemptUpload(client, 'secret.json', path, {
      skipUnchanged: true,
      headers: { 'x-oss-object-acl': 'private' },
    });
    const acl = await direct.getObjectAcl({ bucket: BUCKET, key: 'secret.json' });
    if (!(outcome instanceof Error)) {
      assert.equal(
        acl,
        'private',
        `reported ${JSON.stringify({ headersUpdated: outcome.headersUpdated })} but the object is still ${acl}`,
      );
    }
  },
);

// ---------------------------------------------------------------------------------------------------------
// 6. A PUT answered with the previous object's ETag and CRC gets the previous object deleted.
test(
  'a PutObject 200 that stored nothing and echoes the existing object does not get the existing object deleted',
  T30,
  async (t) => {
    // keyStateAfterMismatch (src/engine/failure-policy.ts) takes "HEAD's ETag equals the answer's ETag" as
    // proof that the key holds what this upload wrote, and settleFailure then deletes it. A server that did not
    // store the bytes and answered with the existing object's ETag and CRC (a gateway treating
    // x-oss-forbid-overwrite as "already there, fine", a caching proxy, a dedup layer) makes the engine delete
    // the object the user already had, the very object x-oss-forbid-overwrite was set to protect.
    const { server, client: direct, dir } = await serverClientDir(t);
    await direct.putObject({
      bucket: BUCKET,
      key: 'release.zip',
      body: bufferBody('version 1, the one users download'),
    });
    const old = await direct.headObject({ bucket: BUCKET, key: 'release.zip' });
    const { path } = await randomFile(dir, 'release.zip', 4096);
    const { client } = await hostileClientFast(t, server, async (req, res, ctx) => {
      if (!(req.method === 'PUT' && req.path.endsWith('/release.zip') && !req.query.has('acl'))) return false;
      await ctx.body();
      res
        .writeHead(200, {
          etag: old.etag,
          'x-oss-hash-crc64ecma': String(old.crc64),
          'x-oss-request-id': 'hostile-request',
          'content-length': '0',
        })
        .end();
      return true;
    });
    const outcome = await attemptUpload(client, 'release.zip', path, {
      headers: { 'x-oss-forbid-overwrite': 'true' },
    });
    assert.ok(outcome instanceof Error, 'the upload did not store the file, so it must fail');
    assert.ok(await exists(direct, 'release.zip'), `the existing object was deleted: ${String(outcome)}`);
    assert.equal(
      (await readObject(direct, BUCKET, 'release.zip')).toString(),
      'version 1, the one users download',
    );
  },
);

// ---------------------------------------------------------------------------------------------------------
// 7. A PutObject with x-oss-forbid-overwrite whose answer is lost can never succeed.
test(
  'a PutObject with x-oss-forbid-overwrite whose 200 was lost, retried into FileAlreadyExists, is checked by HEAD and succeeds',
  T30,
  async (t) => {
    // The client retries the PUT after the connection drops (src/oss/client.ts send); the retry meets
    // FileAlreadyExists (409) for the object the first attempt stored. putSingle (src/engine/upload-file.ts)
    // fails on it without a HEAD, and since the key now exists every re-run fails the same way: the deploy can
    // never go green although the bucket holds exactly the file. (Complete has this HEAD check for NoSuchUpload.)
    const { server, client: direct, dir } = await serverClientDir(t);
    const { path, data } = await randomFile(dir, 'app.js', 3000);
    let first = true;
    const { client } = await hostileClientFast(t, server, async (req, res, ctx) => {
      if (!(req.method === 'PUT' && first)) return false;
      first = false;
      await ctx.forward(); // stored
      res.destroy(); // the answer is lost on the way back
      return true;
    });
    const outcome = await attemptUpload(client, 'app.js', path, {
      headers: { 'x-oss-forbid-overwrite': 'true' },
    });
    assert.deepEqual(await readObject(direct, BUCKET, 'app.js'), data, 'the bucket holds the file');
    assert.ok(
      !(outcome instanceof Error),
      `the step failed although the object is the file: ${outcome instanceof Error ? outcome.message : 'ok'}`,
    );
    assert.equal(outcome.crc64, crc64(data).toString());
  },
);

// ---------------------------------------------------------------------------------------------------------
// 8. A part answered with its CRC but no ETag surfaces only as InvalidPart from Complete.
test(
  'an UploadPart answer with a matching CRC but no ETag is caught at the part, not left to fail Complete with InvalidPart',
  T30,
  async (t) => {
    // checkPart (src/engine/upload-file.ts) accepts a part on its CRC alone and records etag '' in the state
    // and the checkpoint; Complete then sends <ETag></ETag> and the service answers InvalidPart, an error that
    // names neither the part nor the empty ETag. The part answer should be refused (and the part sent again,
    // or its ETag taken from ListParts) as soon as it arrives.
    const { server, dir } = await serverClientDir(t);
    const { path } = await randomFile(dir, 'f.bin', 300 * 1024);
    let blanked = 0;
    const { client } = await hostileClientFast(t, server, async (req, res, ctx) => {
      if (!(req.method === 'PUT' && req.query.get('partNumber') === '2' && blanked === 0)) return false;
      blanked++;
      const f = await ctx.forward();
      f.headers.etag = '';
      res.writeHead(f.status, f.headers).end(f.body);
      return true;
    });
    const outcome = await attemptUpload(client, 'f.bin', path, {
      partSize: 100 * 1024,
      checkpoint: { dir: join(dir, 'cp') },
    });
    if (outcome instanceof Error) {
      assert.doesNotMatch(outcome.message, /InvalidPart/, 'the error is the Complete the empty ETag broke');
      assert.match(outcome.message, /part 2.*ETag|ETag.*part 2/i, outcome.message);
    }
  },
);

// ---------------------------------------------------------------------------------------------------------
// 9. A HEAD without Content-Length is read as "the object is 0 bytes".
test(
  'a HEAD answer without Content-Length is size unknown, not 0: a Complete checked by HEAD with a matching CRC succeeds',
  T30,
  async (t) => {
    // objectInfo (src/oss/client.ts) reads a missing Content-Length as size 0; checkStatement then calls a
    // correct object a size mismatch. With a Complete answer lacking the CRC (checked by HEAD), a HEAD that is
    // chunked or comes through a proxy that drops Content-Length fails the upload, deletes the checkpoint and
    // consumes the upload, though the HEAD's own CRC proves the object is the file.
    const { server, client: direct, dir } = await serverClientDir(t);
    const { path, data } = await randomFile(dir, 'f.bin', 300 * 1024);
    const { client } = await hostileClientFast(t, server, async (req, res, ctx) => {
      const complete = req.method === 'POST' && req.query.has('uploadId');
      if (!complete && req.method !== 'HEAD') return false;
      const f = await ctx.forward();
      if (complete) delete f.headers['x-oss-hash-crc64ecma'];
      else delete f.headers['content-length'];
      res.writeHead(f.status, f.headers).end(f.body);
      return true;
    });
    const outcome = await attemptUpload(client, 'f.bin', path, { partSize: 100 * 1024 });
    assert.deepEqual(await readObject(direct, BUCKET, 'f.bin'), data, 'the bucket holds the file');
    assert.ok(
      !(outcome instanceof Error),
      `failed although HEAD's CRC matches: ${outcome instanceof Error ? outcome.message : 'ok'}`,
    );
  },
);

// ---------------------------------------------------------------------------------------------------------
// 10. A checkpoint in the checkpoint dir that names another key's upload gets that upload aborted.
test(
  'a checkpoint file edited to name another key and its live upload does not get that upload aborted',
  T30,
  async (t) => {
    // In dir mode the checkpoint's file name is derived from bucket and key (checkpointPathFor), so a file at
    // site/a.bin's path that records backups/live.tar was written by hand (or restored from a poisoned cache).
    // resume (src/engine/upload-file.ts) rejects it as "written for another key" and then abortRecorded
    // (src/engine/orphan-uploads.ts) aborts the upload it names, in whatever key (or bucket) it says: another
    // job's live multi-GB upload is killed by a deploy of an unrelated file.
    const { client, dir } = await serverClientDir(t);
    const live = await client.initiateMultipartUpload({ bucket: BUCKET, key: 'backups/live.tar' });
    await client.uploadPart({
      bucket: BUCKET,
      key: 'backups/live.tar',
      uploadId: live.uploadId,
      partNumber: 1,
      body: bufferBody('x'.repeat(100 * 1024)),
    });
    const cpDir = join(dir, 'cp');
    await mkdir(cpDir, { recursive: true });
    const { path } = await randomFile(dir, 'a.bin', 300 * 1024);
    await writeFile(
      checkpointPathFor(cpDir, BUCKET, 'site/a.bin'),
      encodeCheckpoint({
        bucket: BUCKET,
        key: 'backups/live.tar',
        endpoint: client.objectUrl(BUCKET, 'backups/live.tar'),
        file: path,
        fileSize: 300 * 1024,
        partSize: 100 * 1024,
        uploadId: live.uploadId,
        parts: [],
      }),
    );
    await uploadFile({
      client,
      bucket: BUCKET,
      key: 'site/a.bin',
      file: path,
      partSize: 100 * 1024,
      checkpoint: { dir: cpDir },
    });
    const parts = await client
      .listParts({ bucket: BUCKET, key: 'backups/live.tar', uploadId: live.uploadId })
      .catch((e: unknown) => e);
    assert.ok(Array.isArray(parts), `the live upload of backups/live.tar was aborted: ${String(parts)}`);
  },
);
