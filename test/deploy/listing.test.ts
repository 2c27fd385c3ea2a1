// The destination listed in key ranges at once: against a listing server of the test's own that orders keys
// by UTF-8 bytes as OSS does, that may ignore start-after, or that fails one range.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { listInRanges } from '../../src/deploy/listing.ts';
import { compareKeys } from '../../src/oss/index.ts';
import { clientFor } from '../helpers/client.ts';
import { errorXml, startHostile } from '../adversarial/hostile.ts';

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

test('keys compare in the order OSS lists them: by UTF-8 bytes, not UTF-16 units', () => {
  assert.deepEqual(['\u{1F600}', '\uE000', 'a', 'a\u{10000}', 'a\uFFFF'].sort(compareKeys), [
    'a',
    'a\uFFFF',
    'a\u{10000}',
    '\uE000',
    '\u{1F600}',
  ]);
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
      assert.equal(Math.sign(compareKeys(a, b)), Math.sign(byBytes(a, b)));
    }),
  );
});

/** A ListObjectsV2 server over `stored`, 1,000 keys a page, url-encoded; counts the requests in flight. */
async function listingServer(
  stored: readonly string[],
  o: { ignoreStartAfter?: boolean; failAfter?: string } = {},
) {
  const sorted = [...stored].sort(byBytes);
  const stats = { requests: 0, inFlight: 0, most: 0 };
  const server = await startHostile(async (req, res) => {
    stats.requests++;
    stats.most = Math.max(stats.most, ++stats.inFlight);
    // every range asks before any is answered, when they are asked together
    await new Promise((r) => setTimeout(r, 30));
    stats.inFlight--;
    const token = req.query.get('continuation-token');
    const after = token ?? (o.ignoreStartAfter ? null : req.query.get('start-after')) ?? '';
    if (o.failAfter !== undefined && after === o.failAfter) {
      res.writeHead(500, { 'content-type': 'application/xml' }).end(errorXml('InternalError'));
      return true;
    }
    const prefix = req.query.get('prefix') ?? '';
    const rest = sorted.filter((k) => k.startsWith(prefix) && byBytes(k, after) > 0);
    const page = rest.slice(0, 1000);
    const truncated = rest.length > page.length;
    const e = encodeURIComponent;
    res
      .writeHead(200, { 'content-type': 'application/xml', 'x-oss-request-id': 'listing' })
      .end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><EncodingType>url</EncodingType>` +
          `<Prefix>${e(prefix)}</Prefix><MaxKeys>1000</MaxKeys><KeyCount>${page.length}</KeyCount>` +
          `<IsTruncated>${truncated}</IsTruncated>` +
          (truncated ? `<NextContinuationToken>${e(page.at(-1)!)}</NextContinuationToken>` : '') +
          page
            .map(
              (k) =>
                `<Contents><Key>${e(k)}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"A"</ETag><Size>1</Size></Contents>`,
            )
            .join('') +
          '</ListBucketResult>',
      );
    return true;
  });
  return { server, stats, sorted };
}

// 2,500 local keys; the bucket also holds keys no local file has, between and around them, and keys whose
// UTF-16 and UTF-8 orders differ
const local = Array.from({ length: 2500 }, (_, i) => `p/${String(i).padStart(4, '0')}`);
const stored = [
  ...local,
  'p/',
  'p/0999a',
  'p/1999\u{1F600}',
  'p/1999\uE000',
  'p/\u{1F600}',
  'p/\uE000',
  'q/outside',
];

for (const ignoreStartAfter of [false, true]) {
  test(`a listing in ranges sees every key under the prefix once${ignoreStartAfter ? ', from a server that ignores start-after' : ', in one round of requests'}`, async (t) => {
    const { server, stats, sorted } = await listingServer(stored, { ignoreStartAfter });
    t.after(() => server.close());
    const client = clientFor(server);
    t.after(() => client.close());
    const listed = await listInRanges(client, {
      bucket: 'bkt',
      prefix: 'p/',
      keys: [...local].reverse(),
      signal: AbortSignal.timeout(30_000),
    });
    assert.deepEqual(
      listed.map((x) => x.key),
      sorted.filter((k) => k.startsWith('p/')),
    );
    if (!ignoreStartAfter) {
      assert.equal(stats.most, 3, 'the three ranges are asked for together');
      // the first two ranges hold 1,001 keys each ('p/' and 'p/0999a' are no local file's): a page more each
      assert.equal(stats.requests, 5);
    }
  });
}

test('a range that fails fails the listing, and the other ranges are stopped', async (t) => {
  const { server } = await listingServer(stored, { failAfter: 'p/0999' });
  t.after(() => server.close());
  const client = clientFor(server, { retry: { maxAttempts: 1 } });
  t.after(() => client.close());
  await assert.rejects(
    listInRanges(client, { bucket: 'bkt', prefix: 'p/', keys: local, signal: AbortSignal.timeout(30_000) }),
    { code: 'InternalError' },
  );
});
