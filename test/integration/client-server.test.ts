// Proves our client and our server agree on every operation and signature, refuse tampering, and map faults to errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startTestServer } from '../helpers/server.ts';
import { clientFor, readObject } from '../helpers/client.ts';
import { randomFile, tempDir } from '../helpers/files.ts';
import { OssError, bufferBody, crc64, fileRangeBody, isOssError } from '../../src/oss/index.ts';
import { type SignableRequest, signV4 } from '../../src/oss/signer-v4.ts';
import { signV1 } from '../../src/oss/signer-v1.ts';
import { uriEncode } from '../../src/oss/uri.ts';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';

const B = 'test-bucket';
const KEYS = ['plain.txt', 'dir/ünïcödé 文件.txt', 'a b+c?d#e%f.txt', 'deep/path/with spaces/x'];

for (const signatureVersion of ['v4', 'v1'] as const) {
  test(`every operation round-trips with ${signatureVersion} signatures and awkward keys`, async (t) => {
    const server = await startTestServer();
    t.after(() => server.close());
    const client = clientFor(server, { signatureVersion });
    t.after(() => client.close());
    for (const key of KEYS) {
      const put = await client.putObject({
        bucket: B,
        key,
        body: bufferBody(`body of ${key}`),
        headers: { 'Content-Type': 'text/plain' },
      });
      assert.equal(put.crc64, crc64(Buffer.from(`body of ${key}`)));
      const head = await client.headObject({ bucket: B, key });
      assert.equal(head.size, Buffer.byteLength(`body of ${key}`));
      assert.equal(head.headers['content-type'], 'text/plain');
      assert.equal((await readObject(client, B, key)).toString(), `body of ${key}`);
    }
    assert.deepEqual((await client.listObjects({ bucket: B })).map((o) => o.key).sort(), [...KEYS].sort());
    assert.deepEqual(
      (await client.deleteObjects({ bucket: B, keys: KEYS.slice(0, 2) })).deleted,
      KEYS.slice(0, 2),
    );
    await client.deleteObject({ bucket: B, key: KEYS[2]! });
    assert.deepEqual(
      (await client.listObjects({ bucket: B })).map((o) => o.key),
      [KEYS[3]],
    );

    const dir = await tempDir(t);
    const { path, data } = await randomFile(dir, 'f', 250 * 1024);
    const key = KEYS[1]!;
    const { uploadId } = await client.initiateMultipartUpload({ bucket: B, key });
    const sizes = [102400, 102400, 51200];
    const etags: string[] = [];
    let start = 0;
    for (const [i, size] of sizes.entries()) {
      const r = await client.uploadPart({
        bucket: B,
        key,
        uploadId,
        partNumber: i + 1,
        body: fileRangeBody(path, start, size),
      });
      assert.equal(r.crc64, crc64(data.subarray(start, start + size)));
      etags.push(r.etag);
      start += size;
    }
    const parts = await client.listParts({ bucket: B, key, uploadId });
    assert.deepEqual(
      parts.map((p) => [p.partNumber, p.size, p.etag]),
      sizes.map((s, i) => [i + 1, s, etags[i]]),
    );
    assert.deepEqual(
      (await client.listMultipartUploads({ bucket: B })).map((u) => [u.key, u.uploadId]),
      [[key, uploadId]],
    );
    const done = await client.completeMultipartUpload({
      bucket: B,
      key,
      uploadId,
      parts: etags.map((etag, i) => ({ partNumber: i + 1, etag })),
    });
    assert.equal(done.crc64, crc64(data));
    assert.match(done.etag, /^"[0-9A-F]{32}-3"$/);
    assert.deepEqual(await readObject(client, B, key), data);
    const second = await client.initiateMultipartUpload({ bucket: B, key: 'aborted' });
    await client.abortMultipartUpload({ bucket: B, key: 'aborted', uploadId: second.uploadId });
    assert.deepEqual(await client.listMultipartUploads({ bucket: B }), []);
  });
}

test('ListParts, ListMultipartUploads and ListObjects follow every page', async (t) => {
  // pages of 10 instead of OSS's 1,000 keep the test quick while crossing several page boundaries
  const server = await startTestServer({ pageLimit: 10 });
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  const { uploadId } = await client.initiateMultipartUpload({ bucket: B, key: 'many' });
  for (let n = 1; n <= 23; n++) {
    await client.uploadPart({ bucket: B, key: 'many', uploadId, partNumber: n, body: bufferBody('x') });
  }
  const parts = await client.listParts({ bucket: B, key: 'many', uploadId });
  assert.deepEqual(
    parts.map((p) => p.partNumber),
    Array.from({ length: 23 }, (_, i) => i + 1),
  );
  assert.equal(server.requests.filter((r) => r.operation === 'ListParts').length, 3);
  const ids = new Set<string>();
  for (let i = 0; i < 25; i++)
    ids.add((await client.initiateMultipartUpload({ bucket: B, key: `u/${i % 3}` })).uploadId);
  const uploads = await client.listMultipartUploads({ bucket: B, prefix: 'u/' });
  assert.deepEqual(new Set(uploads.map((u) => u.uploadId)), ids);
  assert.equal(server.requests.filter((r) => r.operation === 'ListMultipartUploads').length, 3);
  for (let i = 0; i < 25; i++) {
    await client.putObject({ bucket: B, key: `o/${String(i).padStart(4, '0')}`, body: bufferBody('') });
  }
  const objects = await client.listObjects({ bucket: B, prefix: 'o/' });
  assert.deepEqual(
    objects.map((o) => o.key),
    Array.from({ length: 25 }, (_, i) => `o/${String(i).padStart(4, '0')}`),
  );
  assert.equal(server.requests.filter((r) => r.operation === 'ListObjects').length, 3);
  // more keys than one DeleteMultipleObjects call takes; deleting a missing key is not an error in OSS
  const keys = [...objects.map((o) => o.key), ...Array.from({ length: 980 }, (_, i) => `gone/${i}`)];
  const deleted = await client.deleteObjects({ bucket: B, keys });
  assert.deepEqual(deleted.deleted, keys);
  assert.equal(
    server.requests.filter((r) => r.operation === 'DeleteMultipleObjects').length,
    2,
    'batches of 1,000',
  );
  assert.deepEqual(await client.listObjects({ bucket: B, prefix: 'o/' }), []);
});

/** Sign a PUT with our signer, then let `tamper` change what is sent. */
async function sendTampered(
  url: string,
  version: 'v4' | 'v1',
  tamper: (r: { path: string; query: string; headers: Record<string, string> }) => void,
  secret = 'test-sk',
): Promise<{ status: number; body: string }> {
  const req: SignableRequest = {
    method: 'PUT',
    bucket: B,
    key: 'k.txt',
    query: { acl: null },
    headers: { 'content-type': 'text/plain', 'x-oss-meta-a': '1', 'x-oss-object-acl': 'private' },
  };
  const creds = { accessKeyId: 'test-ak', accessKeySecret: secret };
  if (version === 'v4') signV4(req, creds, 'cn-hangzhou', new Date());
  else signV1(req, creds, new Date());
  const sent = { path: `/${B}/${uriEncode('k.txt', true)}`, query: 'acl', headers: { ...req.headers } };
  tamper(sent);
  const res = await request(`${url}${sent.path}?${sent.query}`, {
    method: 'PUT',
    headers: sent.headers,
    body: 'x',
  });
  return { status: res.statusCode, body: await res.body.text() };
}

for (const version of ['v4', 'v1'] as const) {
  test(`${version}: the untampered request passes signature checks; any changed byte is refused`, async (t) => {
    const server = await startTestServer();
    t.after(() => server.close());
    // acl on an object is not an operation the server keeps, but it passes the signature check first
    const ok = await sendTampered(server.url, version, () => undefined);
    assert.doesNotMatch(ok.body, /SignatureDoesNotMatch/);
    const cases: Record<string, Parameters<typeof sendTampered>[2]> = {
      path: (r) => void (r.path = `/${B}/k.txu`),
      query: (r) => void (r.query = 'acm'),
      'signed header': (r) => void (r.headers['x-oss-meta-a'] = '2'),
    };
    for (const [what, tamper] of Object.entries(cases)) {
      const res = await sendTampered(server.url, version, tamper);
      assert.equal(res.status, 403, what);
      assert.match(res.body, /<Code>SignatureDoesNotMatch<\/Code>/, what);
    }
    const wrongSecret = await sendTampered(server.url, version, () => undefined, 'test-sl');
    assert.equal(wrongSecret.status, 403);
    assert.match(wrongSecret.body, /<Code>SignatureDoesNotMatch<\/Code>/);
  });
}

test('a wrong secret through the client: SignatureDoesNotMatch, not retried, with request id and EC', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const client = clientFor(server, { credentials: { accessKeyId: 'test-ak', accessKeySecret: 'wrong' } });
  t.after(() => client.close());
  const err = await client.putObject({ bucket: B, key: 'x', body: bufferBody('x') }).catch((e: unknown) => e);
  assert.ok(isOssError(err));
  assert.deepEqual(
    [err.status, err.code, err.retryable, err.operation],
    [403, 'SignatureDoesNotMatch', false, 'PutObject'],
  );
  assert.match(err.requestId ?? '', /^[0-9A-F]{24}$/);
  assert.equal(err.ec, '0002-00000403');
  assert.match(
    err.message,
    /^SignatureDoesNotMatch \(403\) on PutObject test-bucket\/x: .* \(RequestId [0-9A-F]{24}, EC 0002-00000403\)$/,
  );
  assert.doesNotMatch(JSON.stringify(err) + err.message, /wrong/);
  assert.equal(server.requests.length, 1);
});

test('missing bucket and missing key: NoSuchBucket, and NoSuchKey decoded from a HEAD x-oss-err header', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  const e1 = await client
    .putObject({ bucket: 'nope-bucket', key: 'x', body: bufferBody('x') })
    .catch((e: unknown) => e);
  assert.ok(isOssError(e1));
  assert.deepEqual([e1.status, e1.code, e1.retryable], [404, 'NoSuchBucket', false]);
  const e2 = await client.headObject({ bucket: B, key: 'missing' }).catch((e: unknown) => e);
  assert.ok(isOssError(e2));
  assert.deepEqual([e2.status, e2.code, e2.retryable], [404, 'NoSuchKey', false]);
  assert.ok(e2.requestId);
});

test('faults: each kind gives the right code, status, request id and retryable', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const retries: string[] = [];
  const client = clientFor(server, {
    headersTimeoutMs: 300,
    onRetry: (i) => retries.push(`${i.operation}:${i.error.code}`),
  });
  t.after(() => client.close());
  const put = (key: string) =>
    client.putObject({ bucket: B, key, body: bufferBody('0123456789'.repeat(1000)) });

  server.addFault({
    operation: 'PutObject',
    action: { type: 'error', status: 503, code: 'ServiceUnavailable' },
  });
  await put('a');
  assert.deepEqual(retries.splice(0), ['PutObject:ServiceUnavailable']);

  server.addFault({ operation: 'PutObject', action: { type: 'error', status: 403, code: 'AccessDenied' } });
  const denied = await put('b').catch((e: unknown) => e);
  assert.ok(denied instanceof OssError);
  assert.deepEqual([denied.status, denied.code, denied.retryable], [403, 'AccessDenied', false]);
  assert.ok(denied.requestId);
  assert.deepEqual(retries.splice(0), []);

  server.addFault({ operation: 'PutObject', action: { type: 'delay', ms: 1000 } });
  await put('c');
  assert.deepEqual(retries.splice(0), ['PutObject:UND_ERR_HEADERS_TIMEOUT']);

  server.addFault({ operation: 'PutObject', action: { type: 'reset', afterBytes: 2000 } });
  await put('d');
  const [reset] = retries.splice(0);
  assert.match(reset!, /^PutObject:(ECONNRESET|UND_ERR_SOCKET|EPIPE)$/);

  server.addFault({
    operation: 'PutObject',
    times: Infinity,
    action: { type: 'error', status: 500, code: 'InternalError' },
  });
  const gaveUp = await put('e').catch((e: unknown) => e);
  assert.ok(isOssError(gaveUp));
  assert.deepEqual([gaveUp.status, gaveUp.code, gaveUp.retryable], [500, 'InternalError', true]);
  assert.equal(retries.splice(0).length, 4, 'five attempts in all');
  server.clearFaults();

  const { uploadId } = await client.initiateMultipartUpload({ bucket: B, key: 'm' });
  server.addFault({ operation: 'UploadPart', action: { type: 'forgetUpload' } });
  const forgot = await client
    .uploadPart({ bucket: B, key: 'm', uploadId, partNumber: 1, body: bufferBody('x') })
    .catch((e: unknown) => e);
  assert.ok(isOssError(forgot));
  assert.deepEqual(
    [forgot.status, forgot.code, forgot.retryable, forgot.partNumber],
    [404, 'NoSuchUpload', false, 1],
  );

  const second = await client.initiateMultipartUpload({ bucket: B, key: 'n' });
  const part = await client.uploadPart({
    bucket: B,
    key: 'n',
    uploadId: second.uploadId,
    partNumber: 1,
    body: bufferBody('x'),
  });
  server.addFault({ operation: 'CompleteMultipartUpload', action: { type: 'completeThen500' } });
  const lost = await client
    .completeMultipartUpload({
      bucket: B,
      key: 'n',
      uploadId: second.uploadId,
      parts: [{ partNumber: 1, etag: part.etag }],
    })
    .catch((e: unknown) => e);
  assert.ok(isOssError(lost));
  assert.deepEqual(
    [lost.code, lost.retryable],
    ['NoSuchUpload', false],
    'the retry finds the upload completed',
  );
  assert.equal((await client.headObject({ bucket: B, key: 'n' })).size, 1);
  assert.deepEqual(retries.splice(0), ['CompleteMultipartUpload:InternalError']);

  server.addFault({ operation: 'PutObject', action: { type: 'badCrc' } });
  const bad = await client.putObject({ bucket: B, key: 'f', body: bufferBody('abc') });
  assert.equal(
    bad.crc64,
    crc64(Buffer.from('abc')) ^ 1n,
    'the client reports what the server said; the engine judges it',
  );

  server.addFault({ operation: 'PutObject', action: { type: 'skew' } });
  await put('g');
  assert.deepEqual(retries.splice(0), ['PutObject:RequestTimeTooSkewed']);
});

test('a server clock an hour ahead: the client corrects its clock from the server and goes on', async (t) => {
  const server = await startTestServer({ clockOffsetMs: 3600_000 });
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  await client.putObject({ bucket: B, key: 'x', body: bufferBody('x') });
  await client.putObject({ bucket: B, key: 'y', body: bufferBody('y') });
  assert.deepEqual(
    server.requests.map((r) => `${r.status}${r.code ? ` ${r.code}` : ''}`),
    ['403 RequestTimeTooSkewed', '200', '200'],
  );
});

test('the security token is sent on every request; a server that requires one refuses others', async (t) => {
  const server = await startTestServer({
    credentials: [{ accessKeyId: 'test-ak', accessKeySecret: 'test-sk', securityToken: 'sts-token' }],
  });
  t.after(() => server.close());
  const good = clientFor(server, {
    credentials: { accessKeyId: 'test-ak', accessKeySecret: 'test-sk', securityToken: 'sts-token' },
  });
  t.after(() => good.close());
  await good.putObject({ bucket: B, key: 'x', body: bufferBody('x') });
  assert.equal(server.requests[0]!.securityToken, 'sts-token');
  const bad = clientFor(server);
  t.after(() => bad.close());
  const err = await bad.putObject({ bucket: B, key: 'x', body: bufferBody('x') }).catch((e: unknown) => e);
  assert.ok(isOssError(err));
  assert.equal(err.code, 'InvalidSecurityToken');
  const wrong = clientFor(server, {
    credentials: { accessKeyId: 'test-ak', accessKeySecret: 'test-sk', securityToken: 'other-token' },
  });
  t.after(() => wrong.close());
  const err2 = await wrong.putObject({ bucket: B, key: 'x', body: bufferBody('x') }).catch((e: unknown) => e);
  assert.ok(isOssError(err2));
  assert.equal(err2.code, 'InvalidSecurityToken');
});

test('an aborted call rejects with the signal reason itself', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  server.addFault({ operation: 'PutObject', action: { type: 'delay', ms: 2000 } });
  const controller = new AbortController();
  const reason = new Error('stop now');
  setTimeout(() => controller.abort(reason), 50);
  await assert.rejects(
    client.putObject({ bucket: B, key: 'x', body: bufferBody('x'), signal: controller.signal }),
    (e) => e === reason,
  );
});

test('HEAD requests keep their connection (undici would close it after each; over a real link that doubles a HEAD)', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  let connections = 0;
  const counter = createNetServer((socket) => {
    connections++;
    const upstream = connect(Number(new URL(server.url).port), '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => counter.listen(0, '127.0.0.1', () => resolve()));
  t.after(() => new Promise<void>((resolve) => counter.close(() => resolve())));
  const client = clientFor({ url: `http://127.0.0.1:${(counter.address() as AddressInfo).port}` });
  t.after(() => client.close());
  await client.putObject({ bucket: 'test-bucket', key: 'k', body: bufferBody('x') });
  for (let i = 0; i < 10; i++) await client.headObject({ bucket: 'test-bucket', key: 'k' });
  for (let i = 0; i < 10; i++)
    await assert.rejects(client.headObject({ bucket: 'test-bucket', key: `missing-${i}` }), /NoSuchKey/);
  assert.ok(connections <= 2, `21 sequential requests opened ${connections} connections`);
});
