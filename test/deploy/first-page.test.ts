// The destination's first page, asked for while the files are still searched: when it is the whole listing,
// when the listing walks on from it, when it is not trusted, and how it meets the ranges asked for later.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/action/main.ts';
import { OUTPUT } from '../../src/deploy/constants.ts';
import { FirstPage, listInRanges } from '../../src/deploy/listing.ts';
import { errorXml, startHostile } from '../adversarial/hostile.ts';
import { clientFor } from '../helpers/client.ts';
import {
  byBytes,
  byUnits,
  startHoldingListing,
  startListingServer,
  startScriptedListing,
  listAfterFirstPage,
  type ListingShape,
} from '../helpers/listing-server.ts';
import { capture, site, writeTree } from './harness.ts';

const T = { timeout: 60_000 };
const signal = (): AbortSignal => AbortSignal.timeout(30_000);
/** Enough planned keys for three ranges. */
const many = Array.from({ length: 2500 }, (_, i) => `p/${String(i).padStart(4, '0')}`);

test('a first page that holds every object is the listing: no range is asked for', T, async (t) => {
  const stored = ['p/a', 'p/b', 'pa', 'q/c'];
  const { client, stats } = await startListingServer(t, stored);
  // the page of the whole bucket, as for a destination of '' whose files all lie under p/
  assert.deepEqual(await listAfterFirstPage(client, many, { pagePrefix: '' }), ['p/a', 'p/b']);
  assert.equal(stats.requests, 1);
});

for (const [what, keys] of [
  ['one range', ['p/0000', 'p/1400']],
  ['three ranges', many],
] as const) {
  test(`a truncated first page: the listing walks on after its last key (${what})`, T, async (t) => {
    const stored = Array.from({ length: 1500 }, (_, i) => `p/${String(i).padStart(4, '0')}x`);
    const { client, stats } = await startListingServer(t, stored);
    assert.deepEqual(await listAfterFirstPage(client, keys), stored);
    // nothing the page held is asked for again
    assert.ok(
      stats.startAfters.every((k) => byBytes(k, 'p/0999x') >= 0),
      stats.startAfters.join(' '),
    );
    assert.ok(stats.startAfters.includes('p/0999x'), stats.startAfters.join(' '));
  });
}

test(
  'a plan of one range waits for the first page on its way rather than asking for it again',
  T,
  async (t) => {
    const stored = Array.from({ length: 1200 }, (_, i) => `p/${String(i).padStart(4, '0')}`);
    const { client, stats } = await startListingServer(t, stored, { delayMs: 100 });
    const first = new FirstPage(client, { bucket: 'bkt', prefix: 'p/', signal: signal() });
    const listed = await listInRanges(client, {
      bucket: 'bkt',
      prefix: 'p/',
      keys: ['p/0001', 'p/0002'],
      signal: signal(),
      first,
    });
    assert.equal(listed.length, 1200);
    assert.equal(stats.requests, 2, 'the page, then one more after its last key');
    assert.deepEqual(stats.startAfters, ['p/0999']);
  },
);

test(
  'a first page out of OSS order is not trusted: the prefix is listed as if it had not come',
  T,
  async (t) => {
    // by UTF-16 units the emoji sorts first; OSS (UTF-8 bytes) puts U+E000 first
    const stored = ['p/\u{1F600}', 'p/\uE000', 'p/z'];
    const shape: ListingShape = { order: byUnits, pageSize: 2 };
    const { client } = await startListingServer(t, stored, shape);
    assert.deepEqual(await listAfterFirstPage(client, ['p/z']), [...stored].sort(byBytes));
  },
);

test(
  'a first page still on its way when a plan of many ranges is ready: the ranges go beside it',
  T,
  async (t) => {
    const stored = ['d/p/0001', 'd/p/2000x'];
    // the first page (prefix d/) is held; the ranges (prefix d/p/) answer
    const s = await startHoldingListing(t, stored, (q) => q.get('prefix') === 'd/');
    const keys = many.map((k) => `d/${k}`);
    const first = new FirstPage(s.client, { bucket: 'bkt', prefix: 'd/', signal: signal() });
    const listed = await listInRanges(s.client, {
      bucket: 'bkt',
      prefix: 'd/p/',
      keys,
      signal: signal(),
      first,
    });
    assert.deepEqual(
      listed.map((x) => x.key),
      stored,
    );
    assert.equal(first.answered, false, 'the listing did not wait for the page');
    s.release();
    await first.settled;
  },
);

test('…and the first page, when it answers first and holds everything, is the listing', T, async (t) => {
  const stored = ['d/p/0001', 'd/p/2000x', 'd/q'];
  // the ranges (prefix d/p/) are held; the first page answers
  const s = await startHoldingListing(t, stored, (q) => q.get('prefix') === 'd/p/');
  const keys = many.map((k) => `d/${k}`);
  const first = new FirstPage(s.client, { bucket: 'bkt', prefix: 'd/', signal: signal() });
  const run = new AbortController();
  const listed = await listInRanges(s.client, {
    bucket: 'bkt',
    prefix: 'd/p/',
    keys,
    signal: AbortSignal.any([run.signal, signal()]),
    first,
  });
  assert.deepEqual(
    listed.map((x) => x.key),
    ['d/p/0001', 'd/p/2000x'],
  );
  // the ranges were asked for, and are let go with the run
  assert.ok(s.seen.some((r) => r.query.get('prefix') === 'd/p/'));
  run.abort();
  s.release();
});

test('a first page that failed leaves the listing to the ranges', T, async (t) => {
  const stored = ['p/a', 'p/b'];
  const { client } = await startScriptedListing(
    t,
    () => stored,
    (req, res) => {
      if (req.query.get('prefix') !== '') return false;
      res.writeHead(403, { 'content-type': 'application/xml' }).end(errorXml('AccessDenied'));
      return true;
    },
  );
  const first = new FirstPage(client, { bucket: 'bkt', prefix: '', signal: signal() });
  assert.equal(await first.settled, undefined);
  const listed = await listInRanges(client, {
    bucket: 'bkt',
    prefix: 'p/',
    keys: ['p/a'],
    signal: signal(),
    first,
  });
  assert.deepEqual(
    listed.map((x) => x.key),
    stored,
  );
});

test('a first page whose run found a setting wrong is never asked for', T, async (t) => {
  const { client, stats } = await startListingServer(t, ['p/a']);
  const wrong = Promise.reject(new Error('checkpoint-dir cannot be written'));
  const first = new FirstPage(client, { bucket: 'bkt', prefix: 'p/', signal: signal(), ready: wrong });
  assert.equal(await first.settled, undefined);
  assert.equal(stats.requests, 0);
});

test("a deploy asks for its destination's first page while its files are still searched", T, async (t) => {
  const { server, ws, inputs, env } = await site(t, 0);
  // a tree whose search takes many times what sending one request does
  await writeTree(
    ws,
    Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`d${i % 3}/f${i}.js`, `${i}`])),
  );
  let planned: boolean | undefined;
  const front = await startHostile((req) => {
    if (req.method === 'GET' && req.query.get('prefix') === 'web/')
      planned ??= c.lines.some((l) => l.includes('file(s)'));
    return false;
  }, server.url);
  t.after(() => front.close());
  const c = capture({ ...inputs, endpoint: front.url }, env);
  await run({ io: c.io });
  assert.equal(c.outputs[OUTPUT.uploadedCount], '3000');
  assert.equal(planned, false, 'the page of web/ came before the plan was logged');
});

test(
  "a first page refused for its credentials is the listing's answer: no range asks to be refused again",
  T,
  async (t) => {
    const { client, stats } = await startListingServer(t, ['p/a']);
    const refused = await startHostile((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/xml' }).end(errorXml('InvalidAccessKeyId'));
      return true;
    });
    t.after(() => refused.close());
    const wrong = clientFor(refused);
    t.after(() => wrong.close());
    const final = (e: Error) => (e as { code?: string }).code === 'InvalidAccessKeyId';
    const first = new FirstPage(wrong, { bucket: 'bkt', prefix: 'p/', signal: signal() });
    await assert.rejects(
      listInRanges(wrong, { bucket: 'bkt', prefix: 'p/', keys: ['p/a'], signal: signal(), first, final }),
      { code: 'InvalidAccessKeyId' },
    );
    assert.equal(refused.requests.length, 1);
    // any other failure of the page leaves the listing to the ranges
    const failing = new FirstPage(wrong, { bucket: 'bkt', prefix: 'p/', signal: signal() });
    await failing.settled;
    const listed = await listInRanges(client, {
      bucket: 'bkt',
      prefix: 'p/',
      keys: ['p/a'],
      signal: signal(),
      first: failing,
      final: () => false,
    });
    assert.deepEqual(
      listed.map((x) => x.key),
      ['p/a'],
    );
    assert.equal(stats.requests, 1);
  },
);
