// Attacks on the destination's first page, asked for while the files are still searched (FirstPage and its use
// in listInRanges), on the checkpoint dir checked before the search, on the search that visits each entry as
// its stat comes in and compares wildcard-free patterns instead of glob-matching them, and on the loads done
// on the main thread a few at a time. Servers that lie about IsTruncated, duplicate or disorder keys, name keys
// outside the prefix, order keys by UTF-16 units, answer the page after the ranges or fail it after they
// succeeded, refuse the credentials; careless inputs (a bad checkpoint dir, patterns that match nothing, odd
// file names); a user who cancels while the page is on its way. Real HTTP on 127.0.0.1, real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { run } from '../../src/action/main.ts';
import { OUTPUT } from '../../src/deploy/constants.ts';
import { findFiles } from '../../src/deploy/files.ts';
import { FirstPage, listInRanges } from '../../src/deploy/listing.ts';
import { commonKeyPrefix } from '../../src/deploy/run.ts';
import { shardOf } from '../../src/deploy/shard.ts';
import { RangeHasher } from '../../src/engine/range-hasher.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { clientFor } from '../helpers/client.ts';
import { tempDir } from '../helpers/files.ts';
import {
  byBytes,
  byUnits,
  listAfterFirstPage,
  listingAnswer,
  startHoldingListing,
  startListingServer,
  startScriptedListing,
} from '../helpers/listing-server.ts';
import { capture, site, writeTree } from '../deploy/harness.ts';
import { errorXml, startHostile } from './hostile.ts';

const T = { timeout: 180_000 };
const signal = (): AbortSignal => AbortSignal.timeout(90_000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// every rejection nobody handled and every uncaught error, from any test: the last test requires none
const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => unhandled.push(e));
process.on('uncaughtException', (e) => unhandled.push(e));

/** Waits until `ok()` (polling), at most `ms`; then asserts it. */
async function until(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await sleep(10);
  assert.ok(ok(), what);
}

const isListing = (r: { method: string; query: URLSearchParams }): boolean =>
  r.method === 'GET' && r.query.get('list-type') === '2';

/** A ListBucketResult of the test's own making: `entries` as given (any order, duplicates kept), url-encoded. */
function pageXml(
  entries: ReadonlyArray<string | { key: string; size: number }>,
  o: { prefix?: string; truncated?: boolean; token?: string } = {},
): string {
  const e = encodeURIComponent;
  return (
    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><EncodingType>url</EncodingType>` +
    `<Prefix>${e(o.prefix ?? '')}</Prefix><MaxKeys>1000</MaxKeys><KeyCount>${entries.length}</KeyCount>` +
    `<IsTruncated>${o.truncated === true}</IsTruncated>` +
    (o.token === undefined ? '' : `<NextContinuationToken>${e(o.token)}</NextContinuationToken>`) +
    entries
      .map((x) => (typeof x === 'string' ? { key: x, size: 1 } : x))
      .map(
        (x) =>
          `<Contents><Key>${e(x.key)}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"A"</ETag><Size>${x.size}</Size></Contents>`,
      )
      .join('') +
    '</ListBucketResult>'
  );
}

const answerXml = (res: ServerResponse, xml: string): void => {
  res.writeHead(200, { 'content-type': 'application/xml', 'x-oss-request-id': 'hostile' }).end(xml);
};

/** A server whose first listing of `firstPrefix` (with no start-after) gets `first`, and any other the truth. */
async function lyingFirstPage(
  t: { after(fn: () => unknown): void },
  stored: readonly string[],
  firstPrefix: string,
  first: string,
) {
  let lied = 0;
  const { server, client } = await startScriptedListing(
    t,
    () => stored,
    (req, res) => {
      const lie =
        lied === 0 &&
        req.query.get('prefix') === firstPrefix &&
        !req.query.has('start-after') &&
        !req.query.has('continuation-token');
      if (!lie) return false;
      lied++;
      answerXml(res, first);
      return true;
    },
  );
  return { server, client, lied: () => lied };
}

/** A site of `count` scripts, `f0.js`…, over an empty destination. */
async function siteOf(t: Parameters<typeof site>[0], count: number) {
  const s = await site(t, 0);
  await writeTree(s.ws, Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${i}.js`, `${i}`])));
  return s;
}

/** A site of one file, `a.js`, over a destination that also holds `web/orphan.txt`; and a client of the server. */
async function siteWithOrphan(t: Parameters<typeof site>[0]) {
  const s = await site(t, 0);
  const client = clientFor(s.server);
  t.after(() => client.close());
  await writeTree(s.ws, { 'a.js': 'a' });
  await client.putObject({ bucket: 'test-bucket', key: 'web/orphan.txt', body: bufferBody('o') });
  return { ...s, client };
}

/** Stores each of `keys` (a byte each), `batch` at a time. */
async function putAll(
  client: ReturnType<typeof clientFor>,
  keys: readonly string[],
  batch: number,
): Promise<void> {
  for (let i = 0; i < keys.length; i += batch)
    await Promise.all(
      keys
        .slice(i, i + batch)
        .map((key) => client.putObject({ bucket: 'test-bucket', key, body: bufferBody('o') })),
    );
}

/** What reached `server`, by operation, once the requests a run left behind could have arrived. */
async function operationsSoon(server: {
  requests: ReadonlyArray<{ operation?: string }>;
}): Promise<string[]> {
  await sleep(300);
  return server.requests.map((r) => r.operation ?? '');
}

const keysOf = (listed: ReadonlyArray<{ key: string }>): string[] => listed.map((x) => x.key);

// --- the first page against the listing, on servers of the test's own --------------------------------------

test(
  'a server that orders keys by UTF-16 units: a first page that ends on a key past the listing prefix in UTF-8, ' +
    'but before it in the server order, does not hide the objects under that prefix',
  T,
  async (t) => {
    // by UTF-16 units U+1F600 (a surrogate pair, 0xD83D...) sorts before U+FF10; by UTF-8 bytes (0xF0 vs 0xEF) after
    const emoji = Array.from({ length: 1200 }, (_, i) => `web/\u{1F600}/${String(i).padStart(4, '0')}`);
    const mine = ['web/\uFF10/a.html', 'web/\uFF10/b.html'];
    const { client } = await startListingServer(t, [...emoji, ...mine], { order: byUnits });
    // without a first page, the ranges list the narrower prefix right
    const plain = await listInRanges(client, {
      bucket: 'bkt',
      prefix: 'web/\uFF10/',
      keys: mine,
      signal: signal(),
    });
    assert.deepEqual(keysOf(plain), mine);
    // with the destination's first page (web/): 1,000 emoji keys, truncated, in order by UTF-8 bytes too
    const first = new FirstPage(client, { bucket: 'bkt', prefix: 'web/', signal: signal() });
    const page = await first.settled;
    assert.ok(page?.truncated && page.ordered, 'a truncated page in order');
    const listed = await listInRanges(client, {
      bucket: 'bkt',
      prefix: 'web/\uFF10/',
      keys: mine,
      signal: signal(),
      first,
    });
    assert.deepEqual(keysOf(listed), mine, 'the objects under web/\uFF10/ are listed');
  },
);

test(
  'any stored keys, any planned keys, any page size, page awaited or not, start-after honoured or not: ' +
    'the listing with a first page is the stored keys under the listing prefix',
  T,
  async (t) => {
    const state: { stored: string[]; pageSize: number; ignoreStartAfter: boolean } = {
      stored: [],
      pageSize: 3,
      ignoreStartAfter: false,
    };
    const { client } = await startScriptedListing(t, () => state.stored, undefined, state);
    // short keys over an alphabet whose UTF-8 and UTF-16 orders differ, and `/` that prefixes are cut at
    const key = fc
      .array(fc.constantFrom('a', 'b', '/', '\uE000', '\u{1F600}', ' ', '\u0000'), {
        minLength: 1,
        maxLength: 4,
      })
      .map((a) => a.join(''));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('', 'd/', 'a', 'd/\u{1F600}/'),
        fc.uniqueArray(key, { maxLength: 25 }),
        fc.uniqueArray(key, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(),
        fc.boolean(),
        async (dest, rest, plannedRest, pageSize, awaitFirst, ignoreStartAfter) => {
          const planned = plannedRest.map((k) => dest + k);
          const stored = [...new Set([...rest.map((k) => dest + k), ...rest, ...planned.slice(1)])];
          state.stored = stored;
          state.pageSize = pageSize;
          state.ignoreStartAfter = ignoreStartAfter;
          const prefix = commonKeyPrefix(planned);
          const first = new FirstPage(client, { bucket: 'bkt', prefix: dest, signal: signal() });
          if (awaitFirst) await first.settled;
          const listed = await listInRanges(client, {
            bucket: 'bkt',
            prefix,
            keys: planned,
            signal: signal(),
            first,
          });
          assert.deepEqual(
            keysOf(listed),
            stored.filter((k) => k.startsWith(prefix)).sort(byBytes),
            JSON.stringify({ dest, prefix, pageSize, ignoreStartAfter }),
          );
        },
      ),
      { numRuns: 150 },
    );
  },
);

for (const [what, first, stored] of [
  [
    'IsTruncated=true without a NextContinuationToken',
    pageXml(['p/a', 'p/b'], { prefix: 'p/', truncated: true }),
    ['p/a', 'p/b', 'p/c', 'p/d'],
  ],
  [
    'IsTruncated=true with no key at all',
    pageXml([], { prefix: 'p/', truncated: true, token: 'x' }),
    ['p/a', 'p/b'],
  ],
  [
    'a truncated page whose last key sorts before the one ahead of it',
    pageXml(['p/a', 'p/c', 'p/b'], { prefix: 'p/', truncated: true, token: 'p/b' }),
    ['p/a', 'p/b', 'p/c', 'p/d', 'p/e'],
  ],
  [
    'a truncated page that names its last key twice',
    pageXml(['p/a', 'p/b', 'p/b'], { prefix: 'p/', truncated: true, token: 'p/b' }),
    ['p/a', 'p/b', 'p/c'],
  ],
  [
    'a page that names a key outside its prefix',
    pageXml(['p/a', 'q/evil'], { prefix: 'p/' }),
    ['p/a', 'p/b', 'q/evil'],
  ],
  [
    'a page whose key is not url-encoded as it says',
    pageXml(['p/a'], { prefix: 'p/' }).replace('p%2Fa', 'p%2Fa%E0%A4%A'),
    ['p/a', 'p/b'],
  ],
] as const) {
  test(`a first page with ${what}: the listing is still every stored key under the prefix`, T, async (t) => {
    const { client, lied } = await lyingFirstPage(t, stored, 'p/', first);
    const page = new FirstPage(client, { bucket: 'bkt', prefix: 'p/', signal: signal() });
    await page.settled;
    assert.equal(lied(), 1);
    const listed = await listInRanges(client, {
      bucket: 'bkt',
      prefix: 'p/',
      keys: ['p/a', 'p/d'],
      signal: signal(),
      first: page,
    });
    assert.deepEqual(
      keysOf(listed),
      stored.filter((k) => k.startsWith('p/')),
    );
  });
}

test(
  'a first page that names a key twice (IsTruncated=false): the listing names each object once',
  T,
  async (t) => {
    const stored = ['p/a', 'p/b'];
    const { client } = await lyingFirstPage(
      t,
      stored,
      'p/',
      pageXml(['p/a', 'p/a', 'p/b'], { prefix: 'p/' }),
    );
    assert.deepEqual(await listAfterFirstPage(client, ['p/a']), stored);
  },
);

for (const closed of [false, true])
  test(
    `a first page whose run ended before its checkpoint check did sends nothing (client ${closed ? 'closed' : 'left open'})`,
    T,
    async (t) => {
      let requests = 0;
      const server = await startHostile((req, res) => {
        requests++;
        answerXml(res, listingAnswer(['p/a'], req.query));
        return true;
      });
      t.after(() => server.close());
      // the run's client: closed by the run itself, as deploy's `finally` does, or by the test
      const client = clientFor(server);
      if (!closed) t.after(() => client.close());
      const run = new AbortController();
      let go!: () => void;
      const ready = new Promise<void>((r) => (go = r));
      const first = new FirstPage(client, { bucket: 'bkt', prefix: 'p/', signal: run.signal, ready });
      // the run throws (a setting found wrong by the search); the dir check comes in after
      run.abort(new Error('the run is over'));
      if (closed) await client.close();
      go();
      assert.equal(await first.settled, undefined);
      await sleep(200);
      assert.equal(requests, 0);
    },
  );

const many = Array.from({ length: 2500 }, (_, i) => `d/p/${String(i).padStart(4, '0')}`);

test(
  'the first page answers after the ranges did, and fails: the ranges are the listing, nothing is left unhandled',
  T,
  async (t) => {
    const stored = ['d/p/0001', 'd/p/2000x', 'd/q'];
    const s = await startHoldingListing(
      t,
      stored,
      (q) => q.get('prefix') === 'd/',
      (res) => res.writeHead(500, { 'content-type': 'application/xml' }).end(errorXml('InternalError')),
    );
    const first = new FirstPage(s.client, { bucket: 'bkt', prefix: 'd/', signal: signal() });
    const listed = await listInRanges(s.client, {
      bucket: 'bkt',
      prefix: 'd/p/',
      keys: many,
      signal: signal(),
      first,
    });
    assert.deepEqual(keysOf(listed), ['d/p/0001', 'd/p/2000x']);
    s.release();
    assert.equal(await first.settled, undefined);
  },
);

test(
  'the first page wins the race, then the ranges are refused: no rejection is left unhandled',
  T,
  async (t) => {
    const stored = ['d/p/0001', 'd/p/2000x'];
    const s = await startHoldingListing(
      t,
      stored,
      (q) => q.get('prefix') === 'd/p/',
      (res) => res.writeHead(403, { 'content-type': 'application/xml' }).end(errorXml('AccessDenied')),
    );
    const before = unhandled.length;
    const first = new FirstPage(s.client, { bucket: 'bkt', prefix: 'd/', signal: signal() });
    const listed = await listInRanges(s.client, {
      bucket: 'bkt',
      prefix: 'd/p/',
      keys: many,
      signal: signal(),
      first,
    });
    assert.deepEqual(keysOf(listed), stored);
    await until('the ranges were asked for', () => s.waiting.length > 0);
    s.release();
    await until('every range answered', () => s.open.n === 0);
    await sleep(100);
    assert.deepEqual(unhandled.slice(before), []);
  },
);

// --- whole deploys -------------------------------------------------------------------------------------------

/** A front over `upstream` that records what it forwards; `handler` may answer a request itself. */
async function front(
  t: { after(fn: () => unknown): void },
  upstream: { url: string },
  handler: Parameters<typeof startHostile>[0] = () => false,
) {
  const f = await startHostile(handler, upstream.url);
  t.after(() => f.close());
  return f;
}

/**
 * A front over our server that lists its objects (real sizes and ETags) in `order` rather than OSS's: pages of
 * up to 1,000 keys, start-after and continuation tokens read in that order, as a server that sorts keys by
 * UTF-16 units would. Everything else is forwarded.
 */
async function reorderingFront(
  t: { after(fn: () => unknown): void },
  server: { url: string },
  order: (a: string, b: string) => number,
) {
  const reader = clientFor(server);
  t.after(() => reader.close());
  return front(t, server, async (req, res) => {
    if (!isListing(req)) return false;
    const prefix = req.query.get('prefix') ?? '';
    const all = (await reader.listObjects({ bucket: 'test-bucket', prefix })).sort((a, b) =>
      order(a.key, b.key),
    );
    const after = req.query.get('continuation-token') ?? req.query.get('start-after');
    const rest = after === null ? all : all.filter((x) => order(x.key, after) > 0);
    const page = rest.slice(0, 1000);
    const truncated = rest.length > page.length;
    answerXml(res, pageXml(page, { prefix, truncated, ...(truncated ? { token: page.at(-1)!.key } : {}) }));
    return true;
  });
}

/** 1,200 objects under web/ whose keys sort before web/\uFF10/ by UTF-16 units, after it by UTF-8 bytes. */
async function storeEmoji(server: { url: string }): Promise<void> {
  const client = clientFor(server);
  try {
    for (let i = 0; i < 1200; i += 100)
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          client.putObject({
            bucket: 'test-bucket',
            key: `web/\u{1F600}/${String(i + j).padStart(4, '0')}`,
            body: bufferBody('e'),
          }),
        ),
      );
  } finally {
    await client.close();
  }
}

test(
  'a server that orders keys by UTF-16 units: the cleanup step of two shards that both finished verifies them',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(
      ws,
      Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`\uFF10/a${i}.js`, `/* ${i} */`])),
    );
    await storeEmoji(server);
    for (const i of [1, 2]) await run({ io: capture({ ...inputs, shard: `${i}/2` }, env).io });
    const f = await reorderingFront(t, server, byUnits);
    const c = capture({ ...inputs, endpoint: f.url, shard: 'cleanup/2' }, env);
    await run({ io: c.io }).catch((e: Error) => c.errors.push(e.message));
    assert.deepEqual(c.errors, []);
    assert.equal(c.outputs[OUTPUT.verifiedCount], '12');
  },
);

test(
  'the cleanup step of two shards of which one never ran, over a first page that names every key with its ' +
    'size: the verification still fails and nothing is deleted',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    const tree = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`a${i}.js`, `/* ${i} */`]));
    await writeTree(ws, tree);
    await run({ io: capture({ ...inputs, shard: '1/2' }, env).io });
    const missing = Object.keys(tree).filter((n) => shardOf(`web/${n}`, 2) === 2);
    assert.ok(missing.length > 0);
    const forged = Object.entries(tree).map(([n, body]) => ({
      key: `web/${n}`,
      size: Buffer.byteLength(body),
    }));
    let lied = 0;
    const f = await front(t, server, (req, res) => {
      if (!isListing(req) || lied > 0) return false;
      lied++;
      answerXml(res, pageXml(forged, { prefix: req.query.get('prefix') ?? '' }));
      return true;
    });
    const c = capture({ ...inputs, endpoint: f.url, shard: 'cleanup/2', 'delete-orphans': 'true' }, env);
    await assert.rejects(run({ io: c.io }), /verification before cleanup/);
    assert.equal(lied, 1);
    assert.equal(f.requests.filter((r) => r.method === 'DELETE' || r.query.has('delete')).length, 0);
    assert.equal(f.requests.filter((r) => r.method === 'HEAD').length >= missing.length, true);
  },
);

test(
  'a server that orders keys by UTF-16 units: a second deploy with skip-unchanged finds every file unchanged ' +
    'and sends none',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { '\uFF10/a.js': 'aaa', '\uFF10/b.js': 'bbbb' });
    await storeEmoji(server);
    await run({ io: capture(inputs, env).io });
    // our server orders as OSS does: the same second deploy through a front that only passes it on
    const same = await reorderingFront(t, server, byBytes);
    const c1 = capture({ ...inputs, endpoint: same.url }, env);
    await run({ io: c1.io });
    assert.equal(c1.outputs[OUTPUT.skippedCount], '2');
    const f = await reorderingFront(t, server, byUnits);
    const c2 = capture({ ...inputs, endpoint: f.url }, env);
    await run({ io: c2.io });
    assert.equal(c2.outputs[OUTPUT.uploadedCount], '0', c2.lines.join('\n'));
    assert.equal(c2.outputs[OUTPUT.skippedCount], '2');
  },
);

test(
  'destination "" (the bucket root) holding 1,500 other objects, files under a sub-directory: a second deploy skips them all',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    const client = clientFor(server);
    t.after(() => client.close());
    // 1,500 objects at the root, sorting before, around and after site keys
    for (let i = 0; i < 1500; i += 50)
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          client.putObject({
            bucket: 'test-bucket',
            key: `${['a', 'sub', 'sub0', 'zz'][(i + j) % 4]}/${i + j}`,
            body: bufferBody('x'),
          }),
        ),
      );
    await writeTree(ws, { 'sub/a.js': 'a', 'sub/b/c.js': 'c', 'sub/b/d.js': 'd' });
    const c1 = capture({ ...inputs, destination: '' }, env);
    await run({ io: c1.io });
    assert.equal(c1.outputs[OUTPUT.uploadedCount], '3');
    const f = await front(t, server);
    const c2 = capture({ ...inputs, destination: '', endpoint: f.url }, env);
    await run({ io: c2.io });
    assert.equal(c2.outputs[OUTPUT.uploadedCount], '0');
    assert.equal(c2.outputs[OUTPUT.skippedCount], '3');
    assert.equal(f.requests.filter((r) => r.method === 'PUT').length, 0);
  },
);

test(
  'a plan of 1,200 files over a destination of 2,100 objects with delete-orphans: the listing walks on from the ' +
    'first page, every orphan goes, no planned key does',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    const client = clientFor(server);
    t.after(() => client.close());
    const names = Array.from({ length: 1200 }, (_, i) => `k${String(i).padStart(4, '0')}.js`);
    await writeTree(ws, Object.fromEntries(names.map((n) => [n, 'x'])));
    await run({ io: capture(inputs, env).io });
    // orphans before, between and after the planned keys, and on both sides of the first page's end
    const orphans = Array.from(
      { length: 900 },
      (_, i) => `web/${['a', 'k0', 'k0999', 'k1', 'z'][i % 5]}-${i}.txt`,
    );
    await putAll(client, orphans, 100);
    const f = await front(t, server);
    const c = capture({ ...inputs, endpoint: f.url, 'delete-orphans': 'true' }, env);
    await run({ io: c.io });
    assert.equal(c.outputs[OUTPUT.deletedCount], '900');
    assert.equal(c.outputs[OUTPUT.skippedCount], '1200');
    const left = keysOf(await client.listObjects({ bucket: 'test-bucket', prefix: 'web/' }));
    assert.deepEqual(
      left,
      names.map((n) => `web/${n}`),
    );
    // the page, then the ranges after its last key: nothing the page held is asked for again
    const listings = f.requests.filter((r) => isListing(r) && r.query.get('prefix') === 'web/');
    const first = listings.find((r) => !r.query.has('start-after') && !r.query.has('continuation-token'));
    assert.ok(first, 'a first page was asked for');
    assert.ok(listings.length <= 4, listings.map((r) => r.url).join('\n'));
  },
);

// Not brought by the first page (the parent commit fails it too): the narrowest listing prefix is cut in UTF-16
// units, so keys that share only the first half of a surrogate pair get a prefix ending in a lone surrogate,
// which goes out as U+FFFD and lists nothing. The first page hides it for a destination of up to 1,000 objects.
test(
  'files whose keys share only half of a surrogate pair, over a destination of 1,100 objects: a second deploy ' +
    'finds them unchanged',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { '\u{1F600}a.js': 'a', '\u{1F601}b.js': 'b' });
    const client = clientFor(server);
    t.after(() => client.close());
    for (let i = 0; i < 1100; i += 100)
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          client.putObject({ bucket: 'test-bucket', key: `web/a${i + j}`, body: bufferBody('x') }),
        ),
      );
    await run({ io: capture(inputs, env).io });
    const c = capture(inputs, env);
    await run({ io: c.io });
    assert.equal(c.outputs[OUTPUT.skippedCount], '2', c.lines.join('\n'));
    assert.equal(c.outputs[OUTPUT.uploadedCount], '0');
  },
);

for (const total of [1000, 1001, 2001]) {
  test(
    `delete-orphans over a destination of exactly ${total} object(s): every orphan goes, no planned key does`,
    T,
    async (t) => {
      const { server, ws, inputs, env } = await site(t, 0);
      const client = clientFor(server);
      t.after(() => client.close());
      const planned = 300;
      await writeTree(
        ws,
        Object.fromEntries(
          Array.from({ length: planned }, (_, i) => [`k${String(i).padStart(4, '0')}.js`, 'x']),
        ),
      );
      const c1 = capture(inputs, env);
      await run({ io: c1.io });
      const orphans = Array.from(
        { length: total - planned },
        (_, i) => `web/${['j', 'k0', 'k1', 'z'][i % 4]}${i}.txt`,
      );
      await putAll(client, orphans, 50);
      const f = await front(t, server);
      const c2 = capture({ ...inputs, endpoint: f.url, 'delete-orphans': 'true' }, env);
      await run({ io: c2.io });
      assert.equal(c2.outputs[OUTPUT.deletedCount], String(orphans.length));
      assert.equal(c2.outputs[OUTPUT.skippedCount], String(planned));
      const left = await client.listObjects({ bucket: 'test-bucket', prefix: 'web/' });
      assert.equal(left.length, planned);
      assert.ok(left.every((x) => /^web\/k\d{4}\.js$/.test(x.key)));
    },
  );
}

test(
  'delete-orphans with a first page that names an orphan twice: it is deleted once and counted once',
  T,
  async (t) => {
    const { server, inputs, env } = await siteWithOrphan(t);
    const deletes: string[] = [];
    const f = await front(t, server, async (req, res, ctx) => {
      if (req.query.has('delete')) deletes.push((await ctx.body()).toString());
      if (!isListing(req) || req.query.get('prefix') !== 'web/') return false;
      const real = await ctx.forward();
      const xml = real.body.toString();
      const orphan = /<Contents>(?:(?!<\/Contents>).)*orphan(?:(?!<\/Contents>).)*<\/Contents>/.exec(xml)![0];
      res.writeHead(real.status, real.headers).end(xml.replace(orphan, orphan + orphan));
      return true;
    });
    const c = capture(
      { ...inputs, endpoint: f.url, 'delete-orphans': 'true', 'skip-unchanged': 'false' },
      env,
    );
    await run({ io: c.io });
    assert.equal(c.outputs[OUTPUT.deletedCount], '1', c.lines.join('\n'));
    assert.equal(deletes.length, 1);
    assert.equal(deletes[0]!.split('<Key>').length - 1, 1, deletes[0]);
  },
);

test(
  'delete-orphans with a first page that names a key outside the destination: that key is never deleted',
  T,
  async (t) => {
    const { server, inputs, env, client } = await siteWithOrphan(t);
    await client.putObject({ bucket: 'test-bucket', key: 'webx/keep.txt', body: bufferBody('k') });
    let lied = 0;
    const f = await front(t, server, (req, res) => {
      if (!isListing(req) || lied > 0) return false;
      lied++;
      answerXml(res, pageXml(['web/orphan.txt', 'webx/keep.txt'], { prefix: 'web/' }));
      return true;
    });
    const c = capture({ ...inputs, endpoint: f.url, 'delete-orphans': 'true' }, env);
    await run({ io: c.io }).catch((e: Error) => c.errors.push(e.message));
    assert.equal(lied, 1);
    const left = keysOf(await client.listObjects({ bucket: 'test-bucket', prefix: '' }));
    assert.ok(left.includes('webx/keep.txt'), left.join(' '));
    assert.ok(left.includes('web/a.js'), left.join(' '));
  },
);

test(
  'a first page that says it is whole but leaves out stored objects: they are sent again, never claimed stored, ' +
    'and no planned key is deleted',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'a.js': 'a', 'b.js': 'b', 'c.js': 'c' });
    const c1 = capture(inputs, env);
    await run({ io: c1.io });
    // the local b.js changes; its stored object keeps its size
    await writeTree(ws, { 'b.js': 'B' });
    let lied = 0;
    const f = await front(t, server, async (req, res, ctx) => {
      if (!isListing(req) || lied > 0) return false;
      lied++;
      const real = (await ctx.forward()).body.toString();
      // leaves out web/a.js, says IsTruncated=false
      answerXml(res, real.replace(/<Contents><Key>web%2Fa\.js<\/Key>(?:(?!<\/Contents>).)*<\/Contents>/, ''));
      return true;
    });
    const c2 = capture({ ...inputs, endpoint: f.url, 'delete-orphans': 'true' }, env);
    await run({ io: c2.io });
    assert.equal(lied, 1);
    // a.js: sent again (the page said nothing of it); b.js: same size, compared, sent; c.js: skipped
    assert.equal(c2.outputs[OUTPUT.uploadedCount], '2', c2.lines.join('\n'));
    assert.equal(c2.outputs[OUTPUT.deletedCount], '0');
    const client = clientFor(server);
    t.after(() => client.close());
    assert.deepEqual(keysOf(await client.listObjects({ bucket: 'test-bucket', prefix: 'web/' })), [
      'web/a.js',
      'web/b.js',
      'web/c.js',
    ]);
  },
);

for (const [what, extra, files] of [
  ['300 files', {}, 300],
  ['300 files and delete-orphans', { 'delete-orphans': 'true' }, 300],
  ['300 files, dry run', { 'dry-run': 'true' }, 300],
] as const) {
  test(`a wrong secret with ${what}: at most 2 requests before the run stops`, T, async (t) => {
    const { server, inputs, env } = await site(t, files);
    const f = await front(t, server);
    const c = capture({ ...inputs, ...extra, endpoint: f.url, 'access-key-secret': 'wrong-secret' }, env);
    await assert.rejects(run({ io: c.io }), /SignatureDoesNotMatch/);
    await sleep(300);
    assert.ok(
      f.requests.length <= 2,
      `${f.requests.length} requests: ${f.requests.map((r) => r.method + ' ' + r.url).join(', ')}`,
    );
  });
}

test(
  'a wrong access key id with 2,500 files: the refused page and at most one round of ranges (4 requests)',
  T,
  async (t) => {
    const { server, inputs, env } = await siteOf(t, 2500);
    const f = await front(t, server);
    const c = capture({ ...inputs, endpoint: f.url, 'access-key-id': 'no-such-key' }, env);
    await assert.rejects(run({ io: c.io }), /InvalidAccessKeyId/);
    await sleep(300);
    t.diagnostic(`${f.requests.length} requests`);
    // the page (refused) and at most the ranges of the plan (3): never more than one round of refusals
    assert.ok(f.requests.length <= 4, `${f.requests.length} requests`);
  },
);

test(
  'an upload shard with nothing of its own to send: nothing but the first page of its destination',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    // names whose keys all fall to shard 1 of 2
    const names: string[] = [];
    for (let i = 0; names.length < 5; i++) if (shardOf(`web/n${i}.js`, 2) === 1) names.push(`n${i}.js`);
    await writeTree(ws, Object.fromEntries(names.map((n) => [n, n])));
    for (const extra of [{}, { 'dry-run': 'true' }] as Array<Record<string, string>>) {
      const c = capture({ ...inputs, ...extra, shard: '2/2' }, env);
      await run({ io: c.io });
      assert.equal(c.outputs[OUTPUT.uploadedCount], '0');
    }
    await sleep(300);
    // the page goes at the first file found, before the shard knows its share: a read, at most one a run
    const ops = server.requests.map((r) => r.operation);
    assert.ok(ops.length <= 2, ops.join(' '));
    assert.ok(
      ops.every((op) => op === 'ListObjects'),
      ops.join(' '),
    );
  },
);

test('a run cancelled before it starts: no request at all', T, async (t) => {
  const { server, inputs, env } = await site(t, 30);
  for (const extra of [{}, { 'delete-orphans': 'true' }, { 'dry-run': 'true' }] as Array<
    Record<string, string>
  >) {
    const c = capture({ ...inputs, ...extra }, env);
    await assert.rejects(run({ io: c.io, signal: AbortSignal.abort(new Error('cancelled')) }));
  }
  await sleep(300);
  // the page goes at the first file found, before the shard knows its share: a read, at most one a run
  const ops = server.requests.map((r) => r.operation);
  assert.ok(ops.length <= 2, ops.join(' '));
  assert.ok(
    ops.every((op) => op === 'ListObjects'),
    ops.join(' '),
  );
});

test(
  'a checkpoint dir that cannot be made, with files to send: no request reaches the server',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 20);
    await writeFile(join(ws, 'not-a-dir'), 'x');
    for (const extra of [{}, { 'delete-orphans': 'true' }, { 'skip-unchanged': 'false' }] as Array<
      Record<string, string>
    >) {
      const c = capture({ ...inputs, ...extra, 'checkpoint-dir': join(ws, 'not-a-dir', 'ckpt') }, env);
      await assert.rejects(run({ io: c.io }), /checkpoint-dir/);
    }
    assert.deepEqual(await operationsSoon(server), []);
  },
);

test(
  'if-no-files-found: warn and nothing matches: no request at all, whatever needs a listing',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await mkdir(join(ws, 'site', 'empty', 'dir'), { recursive: true });
    for (const extra of [{}, { 'delete-orphans': 'true' }, { 'dry-run': 'true' }] as Array<
      Record<string, string>
    >) {
      const c = capture({ ...inputs, ...extra, 'if-no-files-found': 'warn' }, env);
      await run({ io: c.io });
      assert.ok(c.warnings.some((w) => /No files were found/.test(w)));
    }
    assert.deepEqual(await operationsSoon(server), []);
  },
);

test(
  'if-no-files-found: warn and every file that matches lies under the checkpoint dir: no request at all',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    // the checkpoint dir (inside the searched tree) holds the only files the pattern reaches
    await writeTree(ws, { 'ckpt/a.json': '{}', 'ckpt/b.json': '{}' });
    const c = capture({ ...inputs, 'checkpoint-dir': 'site/ckpt', 'if-no-files-found': 'warn' }, env);
    await run({ io: c.io });
    assert.ok(
      c.warnings.some((w) => /No files were found/.test(w)),
      c.warnings.join('\n'),
    );
    assert.deepEqual(await operationsSoon(server), []);
  },
);

test(
  'a setting found wrong after the first match: nothing is sent once the run has thrown, and no connection stays open',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 30);
    await writeTree(ws, { 'deep/a.js': 'a' });
    const open = new Set<ServerResponse>();
    const f = await front(t, server, (_req, res) => {
      open.add(res);
      res.once('close', () => open.delete(res));
      return false;
    });
    // `site/nothing-here` matches no file while `site` does: refused after the walk found files
    const c = capture(
      { ...inputs, endpoint: f.url, path: 'site\nsite/nothing-here', 'delete-orphans': 'true' },
      env,
    );
    await assert.rejects(run({ io: c.io }), /nothing-here/);
    const after = f.requests.length;
    await sleep(500);
    assert.equal(f.requests.length, after, 'a request went after the run had thrown');
    assert.deepEqual(
      f.requests.filter((r) => !isListing(r)).map((r) => r.method),
      [],
    );
    await until('every answer closed', () => open.size === 0, 5_000);
  },
);

test(
  'a user cancel while the first page is held: the run ends at once, nothing is sent after the cancel',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}.js`, `${i}`])));
    const controller = new AbortController();
    const held = { n: 0, let: 0 };
    let cancelledAt = Infinity;
    const late: string[] = [];
    const f = await front(t, server, async (req, res) => {
      if (Date.now() > cancelledAt) late.push(`${req.method} ${req.url}`);
      if (!isListing(req)) return false;
      held.n++;
      if (held.n === 1)
        setTimeout(() => {
          cancelledAt = Date.now();
          controller.abort(new Error('cancelled by the user'));
        }, 100);
      await new Promise<void>((r) => res.once('close', r));
      held.let++;
      return true;
    });
    const c = capture({ ...inputs, endpoint: f.url }, env);
    const started = Date.now();
    await assert.rejects(run({ io: c.io, signal: controller.signal }));
    assert.ok(Date.now() - started < 20_000, `the cancel took ${Date.now() - started} ms`);
    await sleep(300);
    assert.deepEqual(late, []);
    assert.equal(server.requests.filter((r) => r.operation === 'PutObject').length, 0);
    await until('every held listing let go', () => held.let === held.n, 5_000);
  },
);

test(
  'a plan of 2,500 files whose first page answers after the ranges, with a 500: the deploy succeeds and leaves ' +
    'no request open',
  T,
  async (t) => {
    const { server, inputs, env } = await siteOf(t, 2500);
    let rangeAnswered!: () => void;
    const ranged = new Promise<void>((r) => (rangeAnswered = r));
    const open = new Set<ServerResponse>();
    const pages = { asked: 0, refused: 0, ranges: 0 };
    const before = unhandled.length;
    const f = await front(t, server, async (req, res, ctx) => {
      open.add(res);
      res.once('close', () => open.delete(res));
      if (!isListing(req)) return false;
      if (req.query.get('prefix') === 'web/' && !req.query.has('start-after')) {
        // the first page (and each retry of it): held until a range has been answered, then refused
        pages.asked++;
        await ranged;
        await sleep(50);
        if (!res.destroyed) {
          pages.refused++;
          res.writeHead(500, { 'content-type': 'application/xml' }).end(errorXml('InternalError'));
        }
        return true;
      }
      pages.ranges++;
      await ctx.pass();
      rangeAnswered();
      return true;
    });
    const c = capture({ ...inputs, endpoint: f.url }, env);
    await run({ io: c.io });
    assert.equal(c.outputs[OUTPUT.uploadedCount], '2500');
    assert.ok(pages.asked >= 1 && pages.ranges >= 1, JSON.stringify(pages));
    await until('every request answered or let go', () => open.size === 0, 10_000);
    await sleep(100);
    assert.deepEqual(unhandled.slice(before), []);
  },
);

test(
  'a plan of 2,500 files whose first page wins the race against ranges that are never answered: the deploy ' +
    'succeeds, and once it has returned no range is open and nothing more is sent',
  T,
  async (t) => {
    const { server, inputs, env } = await siteOf(t, 2500);
    let rangeAsked!: () => void;
    const ranges = new Promise<void>((r) => (rangeAsked = r));
    const held = { n: 0, closed: 0 };
    let returned = false;
    const late: string[] = [];
    const f = await front(t, server, async (req, res) => {
      if (returned) late.push(`${req.method} ${req.url}`);
      if (!isListing(req)) return false;
      if (req.query.get('prefix') === 'web/' && !req.query.has('start-after')) {
        // the first page: answered (empty destination, whole) only once a range has been asked for
        await ranges;
        return false;
      }
      held.n++;
      rangeAsked();
      await new Promise<void>((r) => res.once('close', r));
      held.closed++;
      return true;
    });
    const c = capture({ ...inputs, endpoint: f.url }, env);
    await run({ io: c.io });
    returned = true;
    assert.equal(c.outputs[OUTPUT.uploadedCount], '2500');
    assert.ok(held.n >= 1, 'the ranges went beside the page');
    await until('every held range let go', () => held.closed === held.n, 5_000);
    await sleep(300);
    assert.deepEqual(late, []);
  },
);

// --- the search ----------------------------------------------------------------------------------------------

/** Odd names a tree can hold: spaces, Unicode in both normal forms, URL and shell characters, backslashes. */
const ODD = [
  'a b/c d.txt',
  'a b/.hidden/x.txt',
  'a b/.env',
  'caf\u00e9/x.txt',
  'cafe\u0301/y.txt',
  'pct%20/x.txt',
  'hash#/x.txt',
  'tilde~/x.txt',
  'dollar$x/y.txt',
  'comma,x/y.txt',
  'semi;x/y.txt',
  "quote'x/y.txt",
  'back\\slash/y.txt',
  'trail /y.txt',
  'emoji\u{1F600}/y.txt',
  'pua\uE000/y.txt',
  'a b c/z.txt',
  'a/b.txt',
  'ab/c.txt',
  'a b.txt',
  'deep/er/est/f.txt',
  'deep/er/g.txt',
];

/** `line` written as a glob that must select the same (a directory's `/**`, or a file's last letter as a class). */
function asGlob(line: string, isDir: boolean): string {
  const negate = line.startsWith('!') ? '!' : '';
  const body = negate ? line.slice(1) : line;
  if (isDir) return `${negate}${body.replace(/\/$/, '')}/**`;
  return `${negate}${body.slice(0, -1)}[${body.at(-1)}]`;
}

test(
  'a pattern without wildcards selects what the same pattern written as a glob does, over odd names',
  T,
  async (t) => {
    const dir = await tempDir(t);
    for (const rel of ODD) {
      await mkdir(dirname(join(dir, 'site', rel)), { recursive: true });
      await writeFile(join(dir, 'site', rel), rel);
    }
    // a link into the tree, and one out of it
    await mkdir(join(dir, 'outside'), { recursive: true });
    await writeFile(join(dir, 'outside', 'o.txt'), 'o');
    await symlink(join(dir, 'site', 'a b'), join(dir, 'site', 'link to a b'));
    await symlink(join(dir, 'outside'), join(dir, 'site', 'out link'));
    const cases: Array<[string[], boolean[]]> = [
      [['site/a b'], [true]],
      [['site/a b/'], [true]],
      [['site/a b/c d.txt'], [false]],
      [['site/a b.txt'], [false]],
      [['site/caf\u00e9'], [true]],
      [['site/cafe\u0301'], [true]],
      [['site/pct%20'], [true]],
      [['site/hash#'], [true]],
      [['site/tilde~'], [true]],
      [['site/dollar$x'], [true]],
      [['site/comma,x'], [true]],
      [["site/quote'x"], [true]],
      [['site/trail '], [true]],
      [['site/emoji\u{1F600}'], [true]],
      [['site/pua\uE000'], [true]],
      [['site/link to a b'], [true]],
      [['site/out link'], [true]],
      [['site/a'], [true]],
      [
        ['site/a b', 'site/a b c'],
        [true, true],
      ],
      [
        ['site', '!site/a b'],
        [true, true],
      ],
      [
        ['site', '!site/a'],
        [true, true],
      ],
      [
        ['site', '!site/a b.txt'],
        [true, false],
      ],
      [
        ['site', '!site/a b/c d.txt'],
        [true, false],
      ],
      [
        ['site', '!site/link to a b', 'site/link to a b/c d.txt'],
        [true, true, false],
      ],
      [['site/a b/.env'], [false]],
      [['site/a b/.hidden'], [true]],
      [['site/deep/er'], [true]],
      [
        ['site/deep/er', '!site/deep/er/est'],
        [true, true],
      ],
    ];
    const find = async (patterns: string[], includeHiddenFiles: boolean) => {
      try {
        return (
          await findFiles({
            patterns,
            destination: 'web',
            includeHiddenFiles,
            contentType: undefined,
            cwd: dir,
          })
        ).map((f) => f.key);
      } catch (e) {
        return `throws: ${(e as Error).message}`;
      }
    };
    const differ: string[] = [];
    for (const [lines, dirs] of cases)
      for (const hidden of [false, true]) {
        // a hidden file named as it is is its own search root, and found as it always was (a glob naming it is
        // not: its root is the directory, whose hidden entries the walk leaves out)
        if (!hidden && lines.some((l) => l.endsWith('/.env'))) continue;
        const literal = await find(lines, hidden);
        const glob = await find(
          lines.map((l, i) => asGlob(l, dirs[i]!)),
          hidden,
        );
        if (JSON.stringify(literal) !== JSON.stringify(glob))
          differ.push(
            `${JSON.stringify(lines)} hidden=${hidden}: ${JSON.stringify(literal)} vs ${JSON.stringify(glob)}`,
          );
        else if (Array.isArray(literal) && literal.length === 0 && !lines.some((l) => l.includes('.env')))
          differ.push(`${JSON.stringify(lines)} hidden=${hidden}: selects nothing`);
      }
    assert.deepEqual(differ, []);
  },
);

test(
  'the search over a directory of 5,000 entries beside links that loop, dangle or point at themselves: each file once',
  T,
  async (t) => {
    const dir = await tempDir(t);
    const root = join(dir, 'site');
    await mkdir(join(root, 'big'), { recursive: true });
    for (let i = 0; i < 5000; i += 250)
      await Promise.all(
        Array.from({ length: 250 }, (_, j) =>
          writeFile(join(root, 'big', `f${String(i + j).padStart(4, '0')}.txt`), 'x'),
        ),
      );
    await mkdir(join(root, 'loop', 'in'), { recursive: true });
    await writeFile(join(root, 'loop', 'in', 'z.txt'), 'z');
    await symlink(join(root, 'loop'), join(root, 'loop', 'in', 'back'));
    await symlink(join(root, 'nowhere'), join(root, 'dangling'));
    await symlink(join(root, 'self'), join(root, 'self'));
    const found = await findFiles({
      patterns: ['site'],
      destination: '',
      includeHiddenFiles: false,
      contentType: undefined,
      cwd: dir,
    });
    const keys = found.map((f) => f.key);
    assert.equal(new Set(keys).size, keys.length);
    assert.equal(keys.filter((k) => k.startsWith('big/')).length, 5000);
    assert.ok(keys.includes('loop/in/z.txt'));
    assert.ok(keys.every((k) => !k.includes('dangling') && !k.startsWith('self')));
    assert.ok(keys.length <= 5002, keys.filter((k) => !k.startsWith('big/')).join(' '));
  },
);

test(
  'entries deleted, or replaced by directories, while the search runs: the search ends, and every file it names ' +
    'was a file when it was stat-ed',
  T,
  async (t) => {
    const dir = await tempDir(t);
    const root = join(dir, 'site');
    await mkdir(root, { recursive: true });
    const names = Array.from({ length: 2000 }, (_, i) => `f${String(i).padStart(4, '0')}.txt`);
    for (let i = 0; i < names.length; i += 250)
      await Promise.all(names.slice(i, i + 250).map((n) => writeFile(join(root, n), n)));
    let churn: Promise<void> | undefined;
    const found = await findFiles({
      patterns: ['site'],
      destination: '',
      includeHiddenFiles: false,
      contentType: undefined,
      cwd: dir,
      onMatched: (n) => {
        // on the first match, the second half of the tree changes under the search
        if (n !== 1) return;
        churn = (async () => {
          for (const name of names.slice(1000)) {
            const p = join(root, name);
            await rm(p, { force: true });
            if (name.endsWith('0.txt')) {
              await mkdir(p, { recursive: true });
              await writeFile(join(p, 'inner.txt'), 'i');
            }
          }
        })();
      },
    });
    await churn;
    const keys = found.map((f) => f.key);
    assert.equal(new Set(keys).size, keys.length);
    assert.ok(keys.filter((k) => !k.includes('/')).length >= 1000, `${keys.length} keys`);
    // a file the walk met as a file keeps its size; none is listed both as a file and as a directory
    for (const f of found) assert.ok(!keys.includes(`${f.key}/inner.txt`) || !keys.includes(f.key), f.key);
    for (const f of found) assert.equal(f.size, f.key.endsWith('inner.txt') ? 1 : 9, f.key);
  },
);

test(
  "a search whose callback throws mid-walk: the error is the search's, and no stat is left unhandled",
  T,
  async (t) => {
    const dir = await tempDir(t);
    await mkdir(join(dir, 'site', 'sub'), { recursive: true });
    for (let i = 0; i < 1500; i += 250)
      await Promise.all(
        Array.from({ length: 250 }, (_, j) => writeFile(join(dir, 'site', `f${i + j}.txt`), 'x')),
      );
    const before = unhandled.length;
    let calls = 0;
    await assert.rejects(
      findFiles({
        patterns: ['site'],
        destination: '',
        includeHiddenFiles: false,
        contentType: undefined,
        cwd: dir,
        onMatched: () => {
          calls++;
          throw new Error('the callback failed');
        },
      }),
      /the callback failed/,
    );
    assert.equal(calls, 1);
    // the directory's other entries, stat-ed together, settle into nothing
    await rm(join(dir, 'site'), { recursive: true, force: true });
    await sleep(300);
    assert.deepEqual(unhandled.slice(before), []);
  },
);

// --- the loads on the main thread ----------------------------------------------------------------------------

test(
  'loads before a hashing thread is online, many of them failing: each settles, and the limiter is let go',
  T,
  async (t) => {
    const dir = await tempDir(t);
    const good = Array.from({ length: 12 }, (_, i) => join(dir, `g${i}`));
    for (const p of good) await writeFile(p, p);
    const hasher = new RangeHasher(1);
    t.after(() => hasher.close());
    const missing = Array.from({ length: 12 }, (_, i) => join(dir, `missing${i}`));
    const all = await Promise.allSettled([...missing, ...good].map((p) => hasher.load(p, 1 << 20)));
    assert.ok(all.slice(0, 12).every((r) => r.status === 'rejected'));
    const loaded = all.slice(12);
    assert.ok(loaded.every((r) => r.status === 'fulfilled'));
    for (const [i, r] of loaded.entries())
      assert.equal(
        Buffer.from((r as PromiseFulfilledResult<{ bytes?: Uint8Array }>).value.bytes!).toString(),
        good[i],
      );
    await hasher.close();
    // a closed pool still loads small files here, through the same limiter
    const after = await Promise.all(good.map((p) => hasher.load(p, 1 << 20)));
    assert.equal(after.length, 12);
  },
);

test('none of the above left a rejection unhandled or an error uncaught', async () => {
  await sleep(300);
  assert.deepEqual(unhandled, []);
});
