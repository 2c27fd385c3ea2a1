// Proves retryability follows the reference table, backoff stays within its bounds, and endpoints resolve as documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OssError, isOssError, isRetryable } from '../../../src/oss/errors.ts';
import { UploadError, isUploadError } from '../../../src/engine/errors.ts';
import { DEFAULT_RETRY, backoffDelayMs, sleep } from '../../../src/oss/retry.ts';
import { OssClient } from '../../../src/oss/client.ts';
import { resolveEndpoint, validateBucket } from '../../../src/oss/endpoint.ts';

test('retryable: 408, 429, 5xx, skew, transport and CRC errors; not signature, access, argument or existence', () => {
  const yes: Array<[number, string]> = [
    [408, 'RequestTimeout'],
    [429, 'TooManyRequests'],
    [500, 'InternalError'],
    [503, 'ServiceUnavailable'],
    [403, 'RequestTimeTooSkewed'],
    [0, 'ECONNRESET'],
    [0, 'UND_ERR_HEADERS_TIMEOUT'],
    [0, 'UND_ERR_SOCKET'],
    [200, 'CrcMismatch'],
    [0, 'RequestDeadlineExceeded'],
    [0, 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'],
  ];
  const no: Array<[number, string]> = [
    [403, 'SignatureDoesNotMatch'],
    [403, 'AccessDenied'],
    [404, 'NoSuchBucket'],
    [404, 'NoSuchUpload'],
    [400, 'InvalidArgument'],
    [409, 'FileAlreadyExists'],
    [0, 'ENOENT'],
    [0, 'UND_ERR_INVALID_ARG'],
    [0, 'InvalidHeaderValue'],
    [500, 'AnswerTooLarge'],
  ];
  for (const [s, c] of yes) assert.equal(isRetryable(s, c), true, `${s} ${c}`);
  for (const [s, c] of no) assert.equal(isRetryable(s, c), false, `${s} ${c}`);
});

test('the message names code, status, operation, object, part, request id and EC', () => {
  const e = new OssError({
    status: 403,
    code: 'SignatureDoesNotMatch',
    ossMessage: 'The request signature we calculated does not match',
    requestId: 'ABC',
    ec: '0002-00000040',
    operation: 'UploadPart',
    bucket: 'b',
    key: 'k',
    partNumber: 7,
  });
  assert.equal(
    e.message,
    'SignatureDoesNotMatch (403) on UploadPart b/k part 7: The request signature we calculated does not match (RequestId ABC, EC 0002-00000040)',
  );
});

test('backoff: full jitter below min(cap, base * 2^(n-1))', () => {
  assert.equal(
    backoffDelayMs(DEFAULT_RETRY, 1, () => 0.999999),
    199,
  );
  assert.equal(
    backoffDelayMs(DEFAULT_RETRY, 3, () => 0.5),
    400,
  );
  assert.equal(
    backoffDelayMs(DEFAULT_RETRY, 20, () => 0.999999),
    19999,
  );
  assert.equal(
    backoffDelayMs(DEFAULT_RETRY, 4, () => 0),
    0,
  );
});

test('sleep ends early with the abort reason', async () => {
  const c = new AbortController();
  const reason = new Error('cancelled');
  const p = sleep(60_000, c.signal);
  c.abort(reason);
  await assert.rejects(p, (e) => e === reason);
});

test('endpoints: region alone, internal, explicit host, CNAME, and local path-style', () => {
  const url = (opts: ConstructorParameters<typeof OssClient>[0]) =>
    new OssClient(opts).objectUrl('my-bucket', 'a b/ü.txt');
  const credentials = { accessKeyId: 'a', accessKeySecret: 'b' };
  assert.equal(
    url({ credentials, region: 'cn-hangzhou' }),
    'https://my-bucket.oss-cn-hangzhou.aliyuncs.com/a%20b/%C3%BC.txt',
  );
  assert.equal(
    url({ credentials, region: 'cn-hangzhou', internal: true }),
    'https://my-bucket.oss-cn-hangzhou-internal.aliyuncs.com/a%20b/%C3%BC.txt',
  );
  assert.equal(
    url({ credentials, endpoint: 'oss-ap-southeast-1.aliyuncs.com' }),
    'https://my-bucket.oss-ap-southeast-1.aliyuncs.com/a%20b/%C3%BC.txt',
  );
  assert.equal(
    url({ credentials, endpoint: 'https://static.example.com', cname: true }),
    'https://static.example.com/a%20b/%C3%BC.txt',
  );
  assert.equal(
    url({ credentials, endpoint: 'http://127.0.0.1:9000' }),
    'http://127.0.0.1:9000/my-bucket/a%20b/%C3%BC.txt',
  );
  assert.equal(
    resolveEndpoint({ endpoint: 'oss-eu-central-1-internal.aliyuncs.com' }).region,
    'eu-central-1',
  );
  assert.equal(resolveEndpoint({ region: 'oss-cn-beijing' }).region, 'cn-beijing');
  assert.equal(resolveEndpoint({ endpoint: 'http://localhost:9000' }).pathStyle, true);
});

test('bad endpoint, region and bucket values are refused with what is allowed', () => {
  assert.throws(
    () => resolveEndpoint({}),
    /^EndpointError: endpoint or region: neither given; set a region such as cn-hangzhou, or an endpoint$/,
  );
  assert.throws(
    () => resolveEndpoint({ region: 'Hangzhou!' }),
    /region: got `Hangzhou!`; allowed a region id such as cn-hangzhou/,
  );
  assert.throws(
    () => resolveEndpoint({ endpoint: 'ftp://x' }),
    /endpoint: got `ftp:\/\/x`; allowed an http\(s\) origin/,
  );
  assert.throws(
    () => resolveEndpoint({ endpoint: 'http://x/path' }),
    /allowed an http\(s\) origin without a path/,
  );
  // the URL parser would drop these without a word; port 0 would fail only at connect time
  for (const endpoint of [
    'http://127.0.0.1:9000#frag',
    'http://127.0.0.1:9000/?',
    'https://oss-cn-hangzhou.aliyuncs.com:0',
  ])
    assert.throws(() => resolveEndpoint({ endpoint }), /^EndpointError: endpoint: got /, endpoint);
  // V4 would sign for `cn-hangzhou-internal`, and every request would fail its signature
  assert.throws(
    () => resolveEndpoint({ region: 'cn-hangzhou-internal' }),
    /region: got `cn-hangzhou-internal`; allowed a region id such as cn-hangzhou; for the internal endpoint set internal: true/,
  );
  assert.throws(
    () => validateBucket('My_Bucket'),
    /bucket: got `My_Bucket`; allowed 3-63 lowercase letters, digits and hyphens/,
  );
});

test('isOssError and isUploadError tell the two error kinds apart', () => {
  const oss = new OssError({ status: 500, code: 'InternalError', operation: 'PutObject' });
  const upload = new UploadError({ file: 'f', bucket: 'b', key: 'k', resumable: false, cause: oss });
  assert.equal(isOssError(oss), true);
  assert.equal(isOssError(upload), false);
  assert.equal(isUploadError(upload), true);
  assert.equal(isUploadError(oss), false);
});
