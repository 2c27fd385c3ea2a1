// The destination listed in key ranges at once: against a listing server of the test's own that orders keys
// by UTF-8 bytes as OSS does, that may ignore start-after, or that fails one range.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { listInRanges } from '../../src/deploy/listing.ts';
import { compareKeys } from '../../src/oss/index.ts';
import { byBytes, startListingServer } from '../helpers/listing-server.ts';

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
    const { client, stats } = await startListingServer(t, stored, { ignoreStartAfter, delayMs: 30 });
    const sorted = [...stored].sort(byBytes);
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

/** Waits, up to 10 s, for `ok`. */
async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), what);
}

// a first deploy (nothing stored) or a destination smaller than the plan: the range that runs to the end of the
// prefix has seen all there is, so the listing ends with its answer; the ranges after it are never answered here
for (const [stored, holdFrom] of [
  [[], 'p/0999'],
  [['p/', ...local.slice(0, 1500)], 'p/1999'],
] as const) {
  test(`a listing ends once a range reaches the end of the prefix; the ranges after it end with the caller's signal (${stored.length} key(s) stored)`, async (t) => {
    const { client, stats } = await startListingServer(t, stored, { holdFrom, delayMs: 30 });
    // 2,500 local keys make three ranges: those after the first are held when nothing is stored, the last
    // one otherwise
    const heldRanges = stored.length === 0 ? 2 : 1;
    const run = new AbortController();
    const listed = await listInRanges(client, {
      bucket: 'bkt',
      prefix: 'p/',
      keys: local,
      signal: AbortSignal.any([run.signal, AbortSignal.timeout(20_000)]),
    });
    assert.deepEqual(
      listed.map((x) => x.key),
      [...stored].sort(byBytes),
    );
    // the later ranges were asked for together with the first (on a busy machine they may reach the server
    // after the listing returned); they are left to answer, keeping their connections, until the run that
    // asked for them ends
    await until('the later ranges reached the server', () => stats.held === heldRanges);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(stats.abandoned, 0);
    run.abort();
    await until('every held range let go', () => stats.abandoned === stats.held);
  });
}

test('a range that fails fails the listing, and the other ranges are stopped', async (t) => {
  const { client } = await startListingServer(
    t,
    stored,
    { failAfter: 'p/0999' },
    { retry: { maxAttempts: 1 } },
  );
  await assert.rejects(
    listInRanges(client, { bucket: 'bkt', prefix: 'p/', keys: local, signal: AbortSignal.timeout(30_000) }),
    { code: 'InternalError' },
  );
});
