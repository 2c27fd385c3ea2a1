// Proves the engine uploads, verifies, resumes and cleans up against our OSS server over real HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { readObject } from '../helpers/client.ts';
import { randomFile } from '../helpers/files.ts';
import { crc64 } from '../../src/oss/index.ts';
import { intentPathFor, writeIntent } from '../../src/engine/upload-intent.ts';
import {
  type ProgressEvent,
  checkpointPathFor,
  isUploadError,
  uploadFile,
  uploadFiles,
} from '../../src/engine/index.ts';
import { serverClientDir } from '../helpers/setup.ts';
import { PART, uploadStoppedAt } from '../helpers/upload.ts';

const BUCKET = 'test-bucket';

const setup = serverClientDir;

function partsOf(server: {
  requests: ReadonlyArray<{ operation: string; status: number; partNumber?: number }>;
}) {
  return server.requests
    .filter((r) => r.operation === 'UploadPart' && r.status === 200)
    .map((r) => r.partNumber!)
    .sort((a, b) => a - b);
}

test('a multi-part file goes up in parallel parts, each sent once, and is verified by CRC-64', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'big.bin', PART * 7 + 123);
  const events: ProgressEvent[] = [];
  const result = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'dir/big.bin',
    file: path,
    partSize: PART,
    threadNum: 3,
    onProgress: (e) => events.push(e),
  });
  assert.equal(result.multipart, true);
  assert.equal(result.parts, 8);
  assert.equal(result.partsSent, 8);
  assert.equal(result.bytesSent, data.length);
  assert.equal(result.bytesResumed, 0);
  assert.equal(result.verified, 'crc64');
  assert.equal(result.crc64, crc64(data).toString());
  assert.deepEqual(partsOf(server), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(await readObject(client, BUCKET, 'dir/big.bin'), data);
  const last = events.at(-1)!;
  assert.deepEqual(
    { done: last.bytesDone, total: last.bytesTotal, parts: last.partsDone, of: last.partsTotal },
    { done: data.length, total: data.length, parts: 8, of: 8 },
  );
  assert.equal(await client.listMultipartUploads({ bucket: BUCKET }).then((u) => u.length), 0);
});

test('small and empty files go up with one verified PutObject', async (t) => {
  const { server, client, dir } = await setup(t);
  const small = await randomFile(dir, 'small.txt', 1000);
  const empty = await randomFile(dir, 'empty', 0);
  const a = await uploadFile({ client, bucket: BUCKET, key: 'small.txt', file: small.path });
  const b = await uploadFile({ client, bucket: BUCKET, key: 'empty', file: empty.path });
  assert.deepEqual([a.multipart, a.verified, a.crc64], [false, 'crc64', crc64(small.data).toString()]);
  assert.deepEqual([b.multipart, b.size, b.crc64], [false, 0, '0']);
  assert.deepEqual(
    server.requests.map((r) => r.operation),
    ['PutObject', 'PutObject'],
  );
  assert.deepEqual(await readObject(client, BUCKET, 'small.txt'), small.data);
  assert.equal((await readObject(client, BUCKET, 'empty')).length, 0);
});

test('a failed upload keeps its checkpoint, and the next run sends only the missing parts', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', PART * 10);
  const cpDir = join(dir, 'cp');
  const err = await uploadStoppedAt({ server, client }, path, 5, { cpDir });
  assert.ok(isUploadError(err), String(err));
  assert.equal(err.resumable, true);
  assert.equal(err.code, 'AccessDenied');
  assert.match(err.message, /AccessDenied/);
  const cpPath = checkpointPathFor(cpDir, BUCKET, 'f.bin');
  assert.ok(existsSync(cpPath));
  assert.deepEqual(partsOf(server), [1, 2, 3, 4]);

  server.clearRequests();
  const notices: string[] = [];
  const result = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    threadNum: 2,
    checkpoint: { dir: cpDir },
    onNotice: (m) => notices.push(m),
  });
  assert.deepEqual(partsOf(server), [5, 6, 7, 8, 9, 10]);
  assert.equal(result.bytesResumed, PART * 4);
  assert.equal(result.bytesSent, PART * 6);
  assert.equal(result.uploadId, err.uploadId);
  assert.ok(
    notices.some((n) => /resuming upload .*: 4 of 10 parts/.test(n)),
    notices.join('\n'),
  );
  assert.equal(existsSync(cpPath), false, 'checkpoint removed after a verified Complete');
  assert.deepEqual(await readObject(client, BUCKET, 'f.bin'), data);
});

for (const [name, damage] of [
  ['corrupt', (text: string) => text.replace(/"uploadId":"/, '"uploadId":"X')],
  ['truncated', (text: string) => text.slice(0, text.length / 2)],
  ['foreign', (text: string) => text],
] as const) {
  test(`a ${name} checkpoint leads to a clean fresh upload`, async (t) => {
    const { server, client, dir } = await setup(t);
    const { path, data } = await randomFile(dir, 'f.bin', PART * 4);
    const cpDir = join(dir, 'cp');
    const first = await uploadStoppedAt({ server, client }, path, 3, {
      cpDir,
      status: 400,
      code: 'InvalidArgument',
    });
    assert.ok(isUploadError(first));
    const cpPath = checkpointPathFor(cpDir, BUCKET, 'f.bin');
    await writeFile(cpPath, damage(await readFile(cpPath, 'utf8')));
    server.clearRequests();
    const notices: string[] = [];
    const result = await uploadFile({
      client,
      bucket: BUCKET,
      key: 'f.bin',
      file: path,
      // a foreign checkpoint: written for another part size
      partSize: name === 'foreign' ? PART * 2 : PART,
      checkpoint: { dir: cpDir },
      onNotice: (m) => notices.push(m),
    });
    assert.equal(result.bytesResumed, 0);
    assert.notEqual(result.uploadId, first.uploadId);
    assert.ok(
      notices.some((n) => /not used: .*starting a fresh upload/.test(n)),
      notices.join('\n'),
    );
    assert.deepEqual(await readObject(client, BUCKET, 'f.bin'), data);
    assert.equal(existsSync(cpPath), false);
    // the old upload was aborted rather than left billing, found by key and age where the checkpoint is unreadable
    assert.deepEqual(await client.listMultipartUploads({ bucket: BUCKET }), []);
  });
}

test('a part changed on disk since it was uploaded is sent again; untouched parts are not', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', PART * 5);
  const cpDir = join(dir, 'cp');
  await uploadStoppedAt({ server, client }, path, 4, { cpDir });
  // same size, one byte different inside part 2: a size-and-mtime check would miss it
  const handle = await open(path, 'r+');
  await handle.write(Buffer.from([data[PART + 10]! ^ 0xff]), 0, 1, PART + 10);
  await handle.close();
  data[PART + 10] = data[PART + 10]! ^ 0xff;
  server.clearRequests();
  const result = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    checkpoint: { dir: cpDir },
  });
  assert.deepEqual(partsOf(server), [2, 4, 5]);
  assert.equal(result.bytesResumed, PART * 2);
  assert.deepEqual(await readObject(client, BUCKET, 'f.bin'), data);
});

test('an upload id the server forgot means a fresh upload, not a failure', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', PART * 3);
  const cpDir = join(dir, 'cp');
  const first = await uploadStoppedAt({ server, client }, path, 2, { cpDir });
  assert.ok(isUploadError(first));
  server.addFault({ operation: 'ListParts', action: { type: 'forgetUpload' } });
  server.clearRequests();
  const notices: string[] = [];
  const result = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    checkpoint: { dir: cpDir },
    onNotice: (m) => notices.push(m),
  });
  assert.notEqual(result.uploadId, first.uploadId);
  assert.deepEqual(partsOf(server), [1, 2, 3]);
  assert.ok(notices.some((n) => /no longer knows upload/.test(n)));
  assert.deepEqual(await readObject(client, BUCKET, 'f.bin'), data);
});

test('a Complete that succeeds but answers 500 is recognised as done', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', PART * 3);
  server.addFault({ operation: 'CompleteMultipartUpload', action: { type: 'completeThen500' } });
  const result = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    checkpoint: { dir: join(dir, 'cp') },
  });
  assert.equal(result.verified, 'crc64');
  assert.equal(result.crc64, crc64(data).toString());
  assert.deepEqual(await readObject(client, BUCKET, 'f.bin'), data);
  assert.equal(existsSync(checkpointPathFor(join(dir, 'cp'), BUCKET, 'f.bin')), false);
});

test('a wrong CRC from the server is caught: the part is sent again, and never reported as success', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', PART * 3);
  server.addFault({ operation: 'UploadPart', partNumber: 2, action: { type: 'badCrc' } });
  const notices: string[] = [];
  const ok = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    onNotice: (m) => notices.push(m),
  });
  assert.equal(ok.verified, 'crc64');
  assert.deepEqual(partsOf(server), [1, 2, 2, 3]);
  assert.ok(
    notices.some((n) =>
      /part 2: the server's CRC64 \d+ differs from the local \d+; sending part 2 again/.test(n),
    ),
    notices.join('\n'),
  );
  assert.deepEqual(await readObject(client, BUCKET, 'f.bin'), data);

  server.addFault({ operation: 'UploadPart', partNumber: 1, times: Infinity, action: { type: 'badCrc' } });
  const err = await uploadFile({ client, bucket: BUCKET, key: 'g.bin', file: path, partSize: PART }).catch(
    (e: unknown) => e,
  );
  assert.ok(isUploadError(err));
  assert.equal(err.code, 'CrcMismatch');
  assert.equal(err.resumable, false);
  await assert.rejects(client.headObject({ bucket: BUCKET, key: 'g.bin' }), /NoSuchKey|404/);
  assert.equal(
    (await client.listMultipartUploads({ bucket: BUCKET })).length,
    0,
    'aborted, no parts left billing',
  );

  server.addFault({ operation: 'PutObject', times: Infinity, action: { type: 'badCrc' } });
  const small = await randomFile(dir, 's.bin', 10);
  const putErr = await uploadFile({ client, bucket: BUCKET, key: 's.bin', file: small.path }).catch(
    (e: unknown) => e,
  );
  assert.ok(isUploadError(putErr));
  assert.equal(putErr.code, 'CrcMismatch');
  // only the answers lied: the stored bytes are the file's, so they stay
  assert.match(putErr.message, /left in place/);
  assert.deepEqual(await readObject(client, BUCKET, 's.bin'), small.data);
});

test('a server without CRC headers: parts are verified by MD5 ETag, and the result says so', async (t) => {
  const { client, dir } = await setup(t, { crcHeaders: false });
  const { path, data } = await randomFile(dir, 'f.bin', PART * 2 + 5);
  const notices: string[] = [];
  const result = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    onNotice: (m) => notices.push(m),
  });
  assert.equal(result.verified, 'md5');
  assert.equal(notices.filter((n) => /sent no x-oss-hash-crc64ecma/.test(n)).length, 1);
  assert.deepEqual(await readObject(client, BUCKET, 'f.bin'), data);
});

test('cancel: in-flight requests stop, the checkpoint is flushed, and the next run resumes', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', PART * 8);
  const cpDir = join(dir, 'cp');
  server.addFault({ operation: 'UploadPart', nth: 3, times: Infinity, action: { type: 'delay', ms: 5000 } });
  const controller = new AbortController();
  const pending = uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    threadNum: 2,
    checkpoint: { dir: cpDir },
    signal: controller.signal,
    onProgress: (e) => {
      if (e.partsDone === 2) controller.abort();
    },
  });
  await assert.rejects(pending, (e: unknown) => e instanceof Error && e.name === 'AbortError');
  server.clearFaults();
  server.clearRequests();
  const result = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    checkpoint: { dir: cpDir },
  });
  // parts 1 and 2 were confirmed before the cancel; a part cut off mid-flight may or may not have landed
  assert.ok(result.bytesResumed >= PART * 2, `resumed ${result.bytesResumed}`);
  assert.equal(partsOf(server).length, 8 - result.bytesResumed / PART);
  assert.ok(!partsOf(server).includes(1) && !partsOf(server).includes(2));
  assert.deepEqual(await readObject(client, BUCKET, 'f.bin'), data);
});

test('with checkpoints off, a failed upload is aborted on the server so no parts are billed', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path } = await randomFile(dir, 'f.bin', PART * 4);
  const err = await uploadStoppedAt({ server, client }, path, 3);
  assert.ok(isUploadError(err));
  assert.equal(err.resumable, false);
  assert.deepEqual(await client.listMultipartUploads({ bucket: BUCKET }), []);
  assert.ok(server.requests.some((r) => r.operation === 'AbortMultipartUpload' && r.status === 204));
});

test('many files share one limit; one missing file fails alone', async (t) => {
  const { client, dir } = await setup(t);
  const items = [];
  for (let i = 0; i < 40; i++) {
    const f = await randomFile(dir, `s${i}.txt`, 100 + i);
    items.push({ file: f.path, key: `many/s${i}.txt` });
  }
  const big = await randomFile(dir, 'big.bin', PART * 3);
  items.push({ file: big.path, key: 'many/big.bin' });
  items.push({ file: join(dir, 'missing.bin'), key: 'many/missing.bin' });
  const outcomes = await uploadFiles(items, { client, bucket: BUCKET, threadNum: 4, partSize: PART });
  assert.equal(outcomes.filter((o) => o.ok).length, 41);
  const failed = outcomes.filter((o) => !o.ok);
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.item.key, 'many/missing.bin');
  assert.match(String((failed[0] as { error: unknown }).error), /cannot read the local file \(ENOENT\)/);
  assert.deepEqual(await readObject(client, BUCKET, 'many/big.bin'), big.data);
  const listed = await client.listObjects({ bucket: BUCKET, prefix: 'many/' });
  assert.equal(listed.length, 41);
});

test('overwrite forbidden: an existing key fails with FileAlreadyExists and nothing is left behind', async (t) => {
  const { client, dir } = await setup(t);
  const { path } = await randomFile(dir, 'f.bin', PART * 2);
  await uploadFile({ client, bucket: BUCKET, key: 'f.bin', file: path, partSize: PART });
  const err = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    headers: { 'x-oss-forbid-overwrite': 'true' },
  }).catch((e: unknown) => e);
  assert.ok(isUploadError(err));
  assert.equal(err.code, 'FileAlreadyExists');
  assert.deepEqual(await client.listMultipartUploads({ bucket: BUCKET }), []);
});

test('what a run killed before its first checkpoint leaves (an unrecorded upload, a temp file) is cleaned up by the next run', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path, data } = await randomFile(dir, 'f.bin', 5 * PART);
  const cpDir = join(dir, 'cp');
  const cp = checkpointPathFor(cpDir, BUCKET, 'k/f.bin');
  // what a process killed right after InitiateMultipartUpload leaves: an intent and an upload nobody recorded
  await writeIntent(intentPathFor(cp), 'k/f.bin', new Date());
  // and a temp file of a checkpoint write it did not finish
  await writeFile(`${cp}.4242.0badc0de.tmp`, '{"checksum":');
  const ghost = await client.initiateMultipartUpload({ bucket: BUCKET, key: 'k/f.bin' });
  const other = await client.initiateMultipartUpload({ bucket: BUCKET, key: 'k/f.bin.other' });

  const notices: string[] = [];
  await uploadFile({
    client,
    bucket: BUCKET,
    key: 'k/f.bin',
    file: path,
    partSize: PART,
    checkpoint: { dir: cpDir },
    onNotice: (m) => notices.push(m),
  });
  assert.ok((await readObject(client, BUCKET, 'k/f.bin')).equals(data));
  const left = await client.listMultipartUploads({ bucket: BUCKET, prefix: 'k/' });
  assert.deepEqual(
    left.map((u) => u.uploadId),
    [other.uploadId],
    'the ghost is aborted, the upload of another key is not',
  );
  assert.ok(
    notices.some((n) => n.includes(`aborting upload ${ghost.uploadId}`)),
    notices.join('\n'),
  );
  assert.equal(existsSync(intentPathFor(cp)), false);
  assert.equal(existsSync(cp), false);
  assert.deepEqual(await readdir(cpDir), [], 'nothing is left in the checkpoint dir');
  assert.equal(server.requests.filter((r) => r.operation === 'AbortMultipartUpload').length, 1);
});

test('the intent is on disk while InitiateMultipartUpload is in flight and gone once the checkpoint records the id', async (t) => {
  const { server, client, dir } = await setup(t);
  const { path } = await randomFile(dir, 'f.bin', 3 * PART);
  const cpDir = join(dir, 'cp');
  const cp = checkpointPathFor(cpDir, BUCKET, 'f.bin');
  server.addFault({ operation: 'InitiateMultipartUpload', action: { type: 'delay', ms: 300 } });
  let seenDuringInitiate = false;
  const watch = setInterval(() => {
    if (existsSync(intentPathFor(cp)) && !existsSync(cp)) seenDuringInitiate = true;
  }, 5);
  await uploadFile({
    client,
    bucket: BUCKET,
    key: 'f.bin',
    file: path,
    partSize: PART,
    checkpoint: { dir: cpDir },
  });
  clearInterval(watch);
  assert.equal(seenDuringInitiate, true);
  assert.equal(existsSync(intentPathFor(cp)), false);
});
