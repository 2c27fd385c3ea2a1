// The client against servers that lie: each test stages one hostile answer on real HTTP (the rest of the
// protocol forwarded to our real server) and proves the client ends with a clear OssError, bounded in time
// and memory, instead of hanging, looping or taking an error for a success.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  OssClient,
  type OssError,
  bufferBody,
  crc64,
  refreshingCredentials,
  assumeRoleWithOidc,
} from '../../src/oss/index.ts';
import { startIdTokenIssuer, startStsStandIn } from '../../src/server/index.ts';
import { clientFor } from '../helpers/client.ts';
import { startTestServer } from '../helpers/server.ts';
import { endless, errorXml, startHostile, trickle, type HostileHandler } from './hostile.ts';

const bucket = 'test-bucket';
type T = { after: (fn: () => Promise<void>) => void };

async function real(t: T, opts = {}) {
  const server = await startTestServer(opts);
  t.after(() => server.close());
  return server;
}

/** A hostile server in front of our real one, and a client aimed at it. */
async function hostile(t: T, handler: HostileHandler, clientOpts: Parameters<typeof clientFor>[1] = {}) {
  const server = await real(t);
  const front = await startHostile(handler, server.url);
  t.after(() => front.close());
  const client = clientFor(front, clientOpts);
  t.after(() => client.close());
  return { server, front, client };
}

const xmlAnswer = (res: import('node:http').ServerResponse, status: number, body: string): true => {
  res
    .writeHead(status, { 'content-type': 'application/xml', 'x-oss-request-id': 'hostile-request' })
    .end(body);
  return true;
};

test(
  'an argument error (non-ASCII, line break, zero-width space in the key id) is refused before sending, never retried, and leaks no connection',
  { timeout: 30_000 },
  async (t) => {
    const server = await real(t);
    const retries: string[] = [];
    const client = clientFor(server, { connections: 4, onRetry: (i) => retries.push(i.error.code) });
    t.after(() => client.close());
    const bad: Array<[string, string]> = [
      ['x-oss-meta-author', '日本'],
      ['Content-Disposition', 'attachment; filename="报告.pdf"'],
      ['x-oss-meta-note', 'line\r\nbreak'],
    ];
    for (let i = 0; i < 10; i++) {
      const [name, value] = bad[i % bad.length]!;
      await assert.rejects(
        client.putObject({ bucket, key: 'k', body: bufferBody('x'), headers: { [name]: value } }),
        (e: OssError) => {
          assert.equal(e.code, 'InvalidHeaderValue');
          assert.equal(e.status, 0);
          assert.equal(e.retryable, false);
          assert.match(e.message, new RegExp(name, 'i'));
          return true;
        },
      );
    }
    const zwsp = clientFor(server, {
      connections: 4,
      credentials: { accessKeyId: 'test\u200bak', accessKeySecret: 'test-sk' },
    });
    t.after(() => zwsp.close());
    await assert.rejects(zwsp.headObject({ bucket, key: 'k' }), (e: OssError) => {
      assert.equal(e.code, 'InvalidHeaderValue');
      assert.equal(e.retryable, false);
      assert.match(e.message, /access key id/i);
      assert.ok(!e.message.includes('test\u200bak') && !e.message.includes('test-sk'), e.message);
      return true;
    });
    assert.deepEqual(retries, []);
    assert.equal(server.requests.length, 0, 'nothing reached the server');
    // the pool still has every connection: a good request goes through at once
    await client.putObject({ bucket, key: 'k', body: bufferBody('good') });
    assert.equal(server.requests.length, 1);
  },
);

test('a 200 answer with an <Error> body is an error, for XML and empty-bodied operations alike', async (t) => {
  const lie = new Set<string>();
  const { client, server } = await hostile(t, (req, res) => {
    const op =
      req.method === 'POST' && req.query.has('uploadId')
        ? 'Complete'
        : req.method === 'PUT' && req.headers['x-oss-copy-source']
          ? 'Copy'
          : req.method === 'PUT' && req.query.has('uploadId')
            ? 'UploadPart'
            : req.method === 'PUT'
              ? 'Put'
              : req.method === 'DELETE'
                ? 'Delete'
                : req.method === 'GET' && req.query.get('list-type') === '2'
                  ? 'List'
                  : '';
    if (!lie.has(op)) return false;
    const body = errorXml('InvalidPart', `lying ${op}`);
    return xmlAnswer(res, 200, op === 'Put' ? body.replace(/^<\?xml[^>]*\?>\n/, '') : body);
  });
  const { uploadId } = await client.initiateMultipartUpload({ bucket, key: 'mp' });
  const part = await client.uploadPart({
    bucket,
    key: 'mp',
    uploadId,
    partNumber: 1,
    body: bufferBody('abc'),
  });
  const expectLie = (what: string) => (e: OssError) => {
    assert.equal(e.code, 'InvalidPart', what);
    assert.equal(e.status, 200);
    assert.equal(e.requestId, 'hostile-request');
    assert.match(e.message, new RegExp(`lying ${what}`));
    return true;
  };
  lie.add('Complete');
  await assert.rejects(
    client.completeMultipartUpload({
      bucket,
      key: 'mp',
      uploadId,
      parts: [{ partNumber: 1, etag: part.etag }],
    }),
    expectLie('Complete'),
  );
  for (const op of ['Put', 'UploadPart', 'Copy', 'Delete', 'List']) lie.add(op);
  await assert.rejects(client.putObject({ bucket, key: 'p', body: bufferBody('x') }), expectLie('Put'));
  await assert.rejects(
    client.uploadPart({ bucket, key: 'mp', uploadId, partNumber: 2, body: bufferBody('x') }),
    expectLie('UploadPart'),
  );
  await assert.rejects(client.copyObject({ bucket, key: 'p', headers: {} }), expectLie('Copy'));
  await assert.rejects(client.deleteObject({ bucket, key: 'p' }), expectLie('Delete'));
  await assert.rejects(client.listObjects({ bucket }), expectLie('List'));
  assert.equal(server.requests.filter((r) => r.operation === 'CompleteMultipartUpload').length, 0);
});

test('a Complete answer without x-oss-hash-crc64ecma gives crc64 undefined', async (t) => {
  const { client } = await hostile(t, async (req, res, ctx) => {
    if (!(req.method === 'POST' && req.query.has('uploadId'))) return false;
    const f = await ctx.forward();
    delete f.headers['x-oss-hash-crc64ecma'];
    res.writeHead(f.status, f.headers).end(f.body);
    return true;
  });
  const { uploadId } = await client.initiateMultipartUpload({ bucket, key: 'mp' });
  const part = await client.uploadPart({
    bucket,
    key: 'mp',
    uploadId,
    partNumber: 1,
    body: bufferBody('abc'),
  });
  assert.equal(part.crc64, crc64(Buffer.from('abc')));
  const done = await client.completeMultipartUpload({
    bucket,
    key: 'mp',
    uploadId,
    parts: [{ partNumber: 1, etag: part.etag }],
  });
  assert.equal(done.crc64, undefined);
  assert.ok(done.etag);
});

test(
  'an answer body past the cap is AnswerTooLarge, not retried; an endless error body ends too',
  { timeout: 30_000 },
  async (t) => {
    const { client, front } = await hostile(
      t,
      (req, res) => {
        if (req.query.get('list-type') === '2') {
          res.writeHead(200, { 'content-type': 'application/xml' });
          endless(res, `<ListBucketResult>${'<Contents><Key>k</Key></Contents>'.repeat(2000)}`);
          return true;
        }
        if (req.method === 'HEAD') return false;
        if (req.method === 'GET' && req.query.has('uploads')) {
          res.writeHead(500, { 'content-type': 'application/xml' });
          endless(res);
          return true;
        }
        return false;
      },
      { maxAnswerBytes: 1024 * 1024, maxErrorBytes: 64 * 1024 },
    );
    const before = process.memoryUsage().rss;
    await assert.rejects(client.listObjects({ bucket }), (e: OssError) => {
      assert.equal(e.code, 'AnswerTooLarge');
      assert.equal(e.retryable, false);
      assert.match(e.message, /1048576/);
      return true;
    });
    await assert.rejects(client.listMultipartUploads({ bucket }), {
      code: 'AnswerTooLarge',
      retryable: false,
    });
    assert.equal(front.requests.filter((r) => r.query.get('list-type') === '2').length, 1);
    assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, 'memory stayed bounded');
  },
);

test(
  'a server trickling its answer cannot keep an attempt alive past the deadline',
  { timeout: 30_000 },
  async (t) => {
    const { client, front } = await hostile(
      t,
      (req, res) => {
        if (req.query.get('list-type') !== '2') return false;
        res.writeHead(200, { 'content-type': 'application/xml' });
        trickle(res, ' ', 100);
        return true;
      },
      { requestTimeoutMs: 800, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } },
    );
    const started = Date.now();
    await assert.rejects(client.listObjects({ bucket }), (e: OssError) => {
      assert.equal(e.code, 'RequestDeadlineExceeded');
      assert.match(e.message, /800 ms/);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 1600 && took < 5000, `two attempts of 800 ms, took ${took}`);
    assert.equal(front.requests.length, 2);
  },
);

test(
  'a truncated listing with a missing, empty or repeated marker is MalformedAnswer; pages are capped',
  { timeout: 30_000 },
  async (t) => {
    let pages = 0;
    const { client } = await hostile(
      t,
      (req, res) => {
        if (req.method !== 'GET') return false;
        pages++;
        if (req.query.has('uploads'))
          return xmlAnswer(
            res,
            200,
            '<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker></NextKeyMarker></ListMultipartUploadsResult>',
          );
        if (req.query.has('uploadId'))
          return xmlAnswer(
            res,
            200,
            '<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>0</NextPartNumberMarker></ListPartsResult>',
          );
        if (req.query.get('prefix') === 'fresh/')
          return xmlAnswer(
            res,
            200,
            `<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t${pages}</NextContinuationToken></ListBucketResult>`,
          );
        return xmlAnswer(
          res,
          200,
          '<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken></ListBucketResult>',
        );
      },
      { maxListPages: 50 },
    );
    await assert.rejects(client.listMultipartUploads({ bucket }), (e: OssError) => {
      assert.equal(e.code, 'MalformedAnswer');
      assert.match(e.message, /IsTruncated.*NextKeyMarker/);
      return true;
    });
    await assert.rejects(client.listParts({ bucket, key: 'k', uploadId: 'U' }), { code: 'MalformedAnswer' });
    await assert.rejects(client.listObjects({ bucket }), (e: OssError) => {
      assert.equal(e.code, 'MalformedAnswer');
      assert.match(e.message, /repeat/);
      return true;
    });
    pages = 0;
    await assert.rejects(client.listObjects({ bucket, prefix: 'fresh/' }), (e: OssError) => {
      assert.equal(e.code, 'MalformedAnswer');
      assert.match(e.message, /50 pages/);
      return true;
    });
    assert.equal(pages, 50);
  },
);

test('character references decode exactly, \\r included; lists ask for encoding-type=url and decode it', async (t) => {
  const { client, front } = await hostile(t, (req, res) => {
    if (req.query.get('prefix') === 'refs/')
      return xmlAnswer(
        res,
        200,
        '<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>refs/a&#34;b&#x22;c&#13;d&#x1;e&amp;&lt;f&gt;&apos;&quot;</Key><ETag>&quot;E&quot;</ETag><Size>1</Size><LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents></ListBucketResult>',
      );
    if (req.query.get('prefix') === 'url/')
      return xmlAnswer(
        res,
        200,
        '<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated><Contents><Key>url/a%0Db%01c%26%3C%E6%97%A5+%2B</Key><Size>1</Size></Contents></ListBucketResult>',
      );
    return false;
  });
  const [refs] = await client.listObjects({ bucket, prefix: 'refs/' });
  assert.equal(refs!.key, 'refs/a"b"c\rd\x01e&<f>\'"');
  assert.equal(refs!.etag, '"E"');
  const [url] = await client.listObjects({ bucket, prefix: 'url/' });
  assert.equal(url!.key, 'url/a\rb\x01c&<日++', 'percent-decoded; + is not a space in RFC 3986');
  await client.listMultipartUploads({ bucket });
  await client.deleteObjects({ bucket, keys: ['x'] });
  for (const r of front.requests.filter((r) => r.method !== 'PUT'))
    assert.equal(r.query.get('encoding-type'), 'url', `${r.method} ${r.url}`);
});

test('a 3xx answer is an error naming its Location, never followed', async (t) => {
  const { client, front } = await hostile(t, (_req, res) => {
    res.writeHead(307, { location: 'https://elsewhere.example/bucket/k' }).end();
    return true;
  });
  await assert.rejects(client.headObject({ bucket, key: 'k' }), (e: OssError) => {
    assert.equal(e.code, 'Http307');
    assert.equal(e.retryable, false);
    assert.match(e.message, /redirected to https:\/\/elsewhere\.example\/bucket\/k/);
    return true;
  });
  assert.equal(front.requests.length, 1);
});

test("serverNow follows the server's Date header, from success and error answers", async (t) => {
  const server = await real(t, { clockOffsetMs: 3_600_000 });
  const client = clientFor(server);
  t.after(() => client.close());
  assert.ok(Math.abs(client.serverNow() - Date.now()) < 1000, 'local time before any answer');
  await assert.rejects(client.headObject({ bucket, key: 'none' }), { code: 'NoSuchKey' });
  assert.ok(
    Math.abs(client.serverNow() - (Date.now() + 3_600_000)) < 2000,
    'the server clock after an answer',
  );
  // a server whose clock agrees to the second: no lag made up from the Date header's truncation
  const same = await real(t);
  const sameClient = clientFor(same);
  t.after(() => sameClient.close());
  await sameClient.headObject({ bucket, key: 'none' }).catch(() => undefined);
  assert.ok(
    Math.abs(sameClient.serverNow() - Date.now()) < 50,
    `${sameClient.serverNow() - Date.now()} ms off`,
  );
});

test(
  'a runner clock 20 minutes ahead does not refetch 15-minute credentials on every request',
  { timeout: 60_000 },
  async (t) => {
    const skew = -20 * 60_000; // the services are 20 minutes behind the runner
    const oss = await real(t, { credentials: [], clockOffsetMs: skew });
    const issuer = await startIdTokenIssuer();
    t.after(() => issuer.close());
    const roleArn = 'acs:ram::1:role/r';
    const oidcProviderArn = 'acs:ram::1:oidc-provider/GitHub';
    const sts = await startStsStandIn({
      issuer,
      oss,
      roleArn,
      oidcProviderArn,
      audiences: ['sts.aliyuncs.com'],
      clockOffsetMs: skew,
    });
    t.after(() => sts.close());
    const tokenAnswer = await fetch(`${issuer.requestUrl}&audience=sts.aliyuncs.com`, {
      headers: { authorization: `Bearer ${issuer.requestToken}` },
    });
    const oidcToken = ((await tokenAnswer.json()) as { value: string }).value;
    const credentials = refreshingCredentials(() =>
      assumeRoleWithOidc({
        endpoint: sts.url,
        roleArn,
        oidcProviderArn,
        oidcToken,
        roleSessionName: 'skewed',
        durationSeconds: 900,
      }),
    );
    const client = new OssClient({
      credentials,
      endpoint: oss.url,
      retry: { baseDelayMs: 1, maxDelayMs: 5 },
    });
    t.after(() => client.close());
    for (let i = 0; i < 64; i++) await client.putObject({ bucket, key: `k${i % 4}`, body: bufferBody('x') });
    assert.ok(sts.requests.length <= 3, `${sts.requests.length} AssumeRoleWithOIDC calls for 64 requests`);
  },
);

test(
  'an STS answer that trickles or never ends is bounded like every OSS answer',
  { timeout: 30_000 },
  async (t) => {
    const sts = await startHostile((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.path === '/flood') endless(res);
      else trickle(res, ' ', 100);
      return true;
    });
    t.after(() => sts.close());
    const ask = (mode: string) =>
      assumeRoleWithOidc({
        endpoint: `${sts.url}/${mode}`,
        roleArn: 'acs:ram::1:role/x',
        oidcProviderArn: 'acs:ram::1:oidc-provider/x',
        oidcToken: 'token',
        roleSessionName: 'trickle',
        timeoutMs: 500,
        retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      });
    const started = Date.now();
    await assert.rejects(ask('trickle'), (e: OssError) => {
      assert.equal(e.code, 'RequestDeadlineExceeded');
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 1000 && took < 5000, `two attempts of 500 ms, took ${took}`);
    const before = sts.requests.length;
    await assert.rejects(ask('flood'), (e: OssError) => {
      assert.equal(e.code, 'AnswerTooLarge');
      return true;
    });
    assert.equal(sts.requests.length - before, 1, 'an answer too large is not asked again');
  },
);
