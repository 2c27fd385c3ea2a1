// Proves CDN/DCDN cache refresh over real HTTP against a stand-in that verifies the RPC signature with its
// own code: a wrong secret is refused and not retried; 2,500 URLs go in three requests of at most 1,000,
// one domain each; throttling and 5xx are retried with a fresh nonce until they pass; the daily quota stops
// the run with the service's code; temporary credentials travel as SecurityToken; and the quota can be read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CloudApiError,
  type Credentials,
  describeRefreshQuota,
  isCloudApiError,
  planRefreshBatches,
  refreshCdnUrls,
  signRpcParams,
} from '../../src/oss/index.ts';
import { startCdnStandIn } from '../../src/server/index.ts';

type After = { after: (fn: () => Promise<void>) => void };
const KEYS: Credentials = { accessKeyId: 'test-ak', accessKeySecret: 'test-sk' };
const FAST = { baseDelayMs: 5, maxDelayMs: 20 };

async function standIn(t: After, o: Parameters<typeof startCdnStandIn>[0] = {}) {
  const cdn = await startCdnStandIn(o);
  t.after(() => cdn.close());
  return cdn;
}

const urls = (n: number, host = 'static.example.com'): string[] =>
  Array.from({ length: n }, (_, i) => `https://${host}/assets/file-${i}.js`);

async function refusal(p: Promise<unknown>): Promise<CloudApiError> {
  const e = await p.then(
    () => assert.fail('expected a refusal'),
    (err: unknown) => err,
  );
  assert.ok(isCloudApiError(e), String(e));
  return e;
}

test('a wrong secret is refused as SignatureDoesNotMatch, with the request id, and not retried', async (t) => {
  const cdn = await standIn(t);
  const e = await refusal(
    refreshCdnUrls({
      product: 'cdn',
      endpoint: cdn.url,
      credentials: { accessKeyId: 'test-ak', accessKeySecret: 'wrong' },
      urls: urls(3),
      retry: FAST,
    }),
  );
  assert.equal(e.code, 'SignatureDoesNotMatch');
  assert.equal(e.status, 400);
  assert.equal(e.action, 'RefreshObjectCaches');
  assert.match(e.message, /RequestId [0-9A-F]{32}/);
  assert.equal(e.retryable, false);
  assert.equal(cdn.requests.length, 1);

  const unknown = await refusal(
    refreshCdnUrls({
      product: 'cdn',
      endpoint: cdn.url,
      credentials: { accessKeyId: 'nobody', accessKeySecret: 'x' },
      urls: urls(1),
    }),
  );
  assert.equal(unknown.code, 'InvalidAccessKeyId.NotFound');
  assert.equal(cdn.used.urls, 0);
});

test('2,500 URLs go in 3 requests of at most 1,000, signed and accepted, each with its task id', async (t) => {
  const cdn = await standIn(t);
  const done: number[] = [];
  const result = await refreshCdnUrls({
    product: 'cdn',
    endpoint: cdn.url,
    credentials: KEYS,
    urls: urls(2500),
    onBatch: (b) => done.push(b.urls),
  });
  assert.equal(result.batches, 3);
  assert.equal(result.refreshed, 2500);
  assert.deepEqual(done, [1000, 1000, 500]);
  assert.deepEqual(
    cdn.requests.map((r) => [
      r.status,
      r.urls.length,
      r.params.Action,
      r.params.Version,
      r.params.ObjectType,
    ]),
    [
      [200, 1000, 'RefreshObjectCaches', '2018-05-10', 'File'],
      [200, 1000, 'RefreshObjectCaches', '2018-05-10', 'File'],
      [200, 500, 'RefreshObjectCaches', '2018-05-10', 'File'],
    ],
  );
  assert.deepEqual(
    cdn.requests.flatMap((r) => r.urls),
    urls(2500),
  );
  assert.equal(result.taskIds.length, 3);
  assert.equal(new Set(result.requestIds).size, 3);
  assert.equal(cdn.used.urls, 2500);
});

test('URLs of several domains go in separate requests; duplicates are sent once; DCDN uses its own action', async (t) => {
  const cdn = await standIn(t);
  // characters encodeURIComponent leaves alone but the signature must encode
  const odd = "https://a.example.com/it's (1)*!~.js?q=a b";
  const list = [...urls(2, 'a.example.com'), odd, ...urls(2, 'b.example.com'), urls(1, 'a.example.com')[0]!];
  const result = await refreshCdnUrls({ product: 'dcdn', endpoint: cdn.url, credentials: KEYS, urls: list });
  assert.equal(result.batches, 2);
  assert.equal(result.refreshed, 5);
  assert.deepEqual(
    cdn.requests.map((r) => [r.params.Action, r.params.Version, r.urls.map((u) => new URL(u).hostname)]),
    [
      ['RefreshDcdnObjectCaches', '2018-01-15', ['a.example.com', 'a.example.com', 'a.example.com']],
      ['RefreshDcdnObjectCaches', '2018-01-15', ['b.example.com', 'b.example.com']],
    ],
  );
});

test('throttling (documented with HTTP 400) and a 503 are retried with a new nonce, then the refresh succeeds', async (t) => {
  const cdn = await standIn(t);
  cdn.throttleNext(2);
  const retries: string[] = [];
  const result = await refreshCdnUrls({
    product: 'cdn',
    endpoint: cdn.url,
    credentials: KEYS,
    urls: urls(10),
    retry: FAST,
    onRetry: (r) => retries.push(r.error.code),
  });
  assert.equal(result.refreshed, 10);
  assert.deepEqual(retries, ['Throttling.User', 'Throttling.User']);
  assert.deepEqual(
    cdn.requests.map((r) => r.code ?? r.status),
    ['Throttling.User', 'Throttling.User', 200],
  );
  assert.equal(new Set(cdn.requests.map((r) => r.params.SignatureNonce)).size, 3);

  cdn.failNext(1, 503);
  cdn.throttleNext(1, 'Throttling', 429);
  await refreshCdnUrls({ product: 'cdn', endpoint: cdn.url, credentials: KEYS, urls: urls(1), retry: FAST });
  assert.deepEqual(
    cdn.requests.slice(3).map((r) => r.code ?? r.status),
    ['Throttling', 'ServiceUnavailable', 200],
  );
});

test('retries are bounded: throttled on every attempt, the error comes after maxAttempts', async (t) => {
  const cdn = await standIn(t);
  cdn.throttleNext(100);
  const e = await refusal(
    refreshCdnUrls({
      product: 'cdn',
      endpoint: cdn.url,
      credentials: KEYS,
      urls: urls(1),
      retry: { ...FAST, maxAttempts: 3 },
    }),
  );
  assert.equal(e.code, 'Throttling.User');
  assert.equal(cdn.requests.length, 3);
});

test('the daily quota: the request past it fails with QuotaExceeded.Refresh, not retried, earlier batches stand', async (t) => {
  const cdn = await standIn(t, { dailyUrlQuota: 1500 });
  const accepted: number[] = [];
  const e = await refusal(
    refreshCdnUrls({
      product: 'cdn',
      endpoint: cdn.url,
      credentials: KEYS,
      urls: urls(2500),
      retry: FAST,
      onBatch: (b) => accepted.push(b.urls),
    }),
  );
  assert.equal(e.code, 'QuotaExceeded.Refresh');
  assert.equal(e.retryable, false);
  assert.deepEqual(accepted, [1000]);
  assert.equal(cdn.requests.length, 2);
  assert.equal(cdn.used.urls, 1000);

  const quota = await describeRefreshQuota({ product: 'cdn', endpoint: cdn.url, credentials: KEYS });
  assert.deepEqual(
    { ...quota, requestId: typeof quota.requestId },
    { urlQuota: 1500, urlRemain: 500, dirQuota: 100, dirRemain: 100, requestId: 'string' },
  );
  assert.equal(cdn.requests.at(-1)!.params.Action, 'DescribeRefreshQuota');
  await describeRefreshQuota({ product: 'dcdn', endpoint: cdn.url, credentials: KEYS });
  assert.equal(cdn.requests.at(-1)!.params.Action, 'DescribeDcdnRefreshQuota');
});

test('temporary credentials send their token as SecurityToken; a provider is asked before each request', async (t) => {
  const sts = {
    accessKeyId: 'STS.temp',
    accessKeySecret: 'temp-secret',
    securityToken: 'CAIS-token/with+chars=',
    expiration: new Date(Date.now() + 3600_000),
  };
  const cdn = await standIn(t, { credentials: [sts] });
  let asked = 0;
  const provider = (): Promise<Credentials> => {
    asked++;
    return Promise.resolve(sts);
  };
  await refreshCdnUrls({ product: 'cdn', endpoint: cdn.url, credentials: provider, urls: urls(1200) });
  assert.equal(asked, 2);
  assert.ok(cdn.requests.every((r) => r.status === 200 && r.params.SecurityToken === sts.securityToken));

  const e = await refusal(
    refreshCdnUrls({
      product: 'cdn',
      endpoint: cdn.url,
      credentials: { ...sts, securityToken: undefined },
      urls: urls(1),
    }),
  );
  assert.equal(e.code, 'MissingSecurityToken');
  const wrong = await refusal(
    refreshCdnUrls({
      product: 'cdn',
      endpoint: cdn.url,
      credentials: { ...sts, securityToken: 'other' },
      urls: urls(1),
    }),
  );
  assert.equal(wrong.code, 'InvalidSecurityToken.Mismatch');
});

test('the stand-in refuses a replayed nonce, a stale timestamp and an over-long batch', async (t) => {
  const cdn = await standIn(t);
  const post = (params: Record<string, string>) =>
    fetch(`${cdn.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { Code?: string } }));
  const sign = (params: Record<string, string>, now?: Date) =>
    signRpcParams({
      method: 'POST',
      action: 'RefreshObjectCaches',
      version: '2018-05-10',
      params,
      credentials: KEYS,
      now,
    });
  const once = sign({ ObjectPath: urls(1)[0]! });
  assert.equal((await post(once)).status, 200);
  const replay = await post(once);
  assert.deepEqual([replay.status, replay.body.Code], [400, 'SignatureNonceUsed']);
  const stale = await post(sign({ ObjectPath: urls(1)[0]! }, new Date(Date.now() - 16 * 60_000)));
  assert.equal(stale.body.Code, 'InvalidTimeStamp.Expired');
  const tooMany = await post(sign({ ObjectPath: urls(1001).join('\n') }));
  assert.equal(tooMany.body.Code, 'SingleRequest.OverLimit');
  const twoDomains = await post(sign({ ObjectPath: [urls(1, 'a.x')[0], urls(1, 'b.x')[0]].join('\n') }));
  assert.equal(twoDomains.body.Code, 'InvalidObjectPath.Malformed');
  assert.equal(cdn.used.urls, 1);
});

test('bad input is refused before any request, naming the input, the value and what is allowed', () => {
  assert.throws(
    () => planRefreshBatches(['https://e.com/a', 'ftp://e.com/b']),
    /urls\[1\]: "ftp:\/\/e.com\/b" is not an absolute http\(s\) URL/,
  );
  assert.throws(() => planRefreshBatches(['/relative']), /urls\[0\]/);
  assert.throws(
    () => planRefreshBatches(['https://e.com/a'], 'Regex' as 'File'),
    /objectType: "Regex" is not one of File, Directory/,
  );
  assert.equal(planRefreshBatches(urls(250, 'd.com'), 'Directory').length, 3);
  assert.deepEqual(planRefreshBatches([]), []);
});

test('bad product or endpoint is refused naming it', async () => {
  await assert.rejects(
    refreshCdnUrls({ product: 'cloudfront' as 'cdn', credentials: KEYS, urls: [] }),
    /product: "cloudfront" is not one of cdn, dcdn/,
  );
  await assert.rejects(
    refreshCdnUrls({
      product: 'cdn',
      endpoint: 'https://cdn.aliyuncs.com/path',
      credentials: KEYS,
      urls: [],
    }),
    /endpoint: "https:\/\/cdn.aliyuncs.com\/path" must be/,
  );
});
