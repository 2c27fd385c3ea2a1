// Attacks on the listing in key ranges (`listInRanges`): servers that order keys otherwise than OSS does (by
// UTF-16 units, as a JavaScript sort does), that ignore start-after, that answer slowly; and the deploy on top
// of it, end to end against our own server with more than 1,000 files. Bounded: 127.0.0.1, 60 s each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { listInRanges } from '../../src/deploy/listing.ts';
import { run } from '../../src/action/main.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { clientFor } from '../helpers/client.ts';
import { startTestServer } from '../helpers/server.ts';
import { capture, site, writeTree } from '../deploy/harness.ts';
import {
  assertListsStored,
  byBytes,
  byUnits,
  startListingServer,
  startStateListing,
} from '../helpers/listing-server.ts';

const T = { timeout: 60_000 };
// 999 plain keys, then one in U+E000-U+FFFF and one beyond U+FFFF: in OSS's order (UTF-8 bytes) the first
// cut falls on the U+E000 key; a server sorting by UTF-16 units puts the astral key before it.
const plain = Array.from({ length: 999 }, (_, i) => `p/a${String(i).padStart(4, '0')}`);
const odd = ['p/\uE000.html', 'p/\u{1F600}.html'];

test('a server that orders keys by UTF-16 units: no key is lost at a cut', T, async (t) => {
  for (const pageSize of [1000, 7]) {
    const { client } = await startListingServer(
      t,
      [...plain, ...odd, 'p/\uFFFF-orphan', 'p/\u{10000}-orphan'],
      {
        order: byUnits,
        pageSize,
      },
    );
    await assertListsStored(
      client,
      [...plain, ...odd],
      [...plain, ...odd, 'p/\uFFFF-orphan', 'p/\u{10000}-orphan'],
      { message: `pages of ${pageSize}` },
    );
  }
});

test('the same, against our own server', T, async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  const keys = [...plain, ...odd];
  for (const key of keys) await client.putObject({ bucket: 'test-bucket', key, body: bufferBody('x') });
  await assertListsStored(client, keys, keys, { bucket: 'test-bucket' });
});

test(
  'a server that ignores start-after: requests and keys held stay in proportion to the listing',
  T,
  async (t) => {
    const local = Array.from({ length: 40_000 }, (_, i) => `p/${String(i).padStart(6, '0')}`);
    const { client, stats } = await startListingServer(t, local, { ignoreStartAfter: true, delayMs: 0 });
    const listed = await listInRanges(client, {
      bucket: 'bkt',
      prefix: 'p/',
      keys: local,
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(listed.length, local.length);
    // 40 pages hold the listing; a walk from the start for each of the 40 ranges is 820
    assert.ok(stats.requests <= 40 + 40 + 16, `${stats.requests} requests`);
  },
);

test('an abort stops every range: no request goes out after it', T, async (t) => {
  const local = Array.from({ length: 50_000 }, (_, i) => `p/${String(i).padStart(6, '0')}`);
  const { client, stats } = await startListingServer(t, local, { delayMs: 200 });
  const abort = new AbortController();
  setTimeout(() => abort.abort(new Error('cancelled')), 50);
  const started = Date.now();
  await assert.rejects(
    listInRanges(client, { bucket: 'bkt', prefix: 'p/', keys: local, signal: abort.signal }),
    /cancelled|abort/i,
  );
  assert.ok(Date.now() - started < 1000, 'the listing ends at once');
  const after = stats.requests;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(stats.requests, after, 'no request after the abort');
  assert.equal(after, 16, 'only the first 16 ranges were asked for');
});

/** A site of 999 plain assets (not published last) and two whose names sort differently by UTF-8 bytes and by UTF-16 units. */
async function oddSite(t: Parameters<typeof site>[0]) {
  const s = await site(t, 0);
  const tree: Record<string, string> = {};
  for (let i = 0; i < 999; i++) tree[`a${String(i).padStart(4, '0')}.css`] = `.a${i}{}`;
  tree['\uE000.css'] = '.private-use{}';
  tree['\u{1F600}.css'] = '.smile{}';
  await writeTree(s.ws, tree);
  const client = clientFor(s.server);
  t.after(() => client.close());
  return { ...s, client, keys: Object.keys(tree).map((k) => `web/${k}`) };
}

test('shards of a tree of 1,001 files with such names: the cleanup step verifies them all', T, async (t) => {
  const s = await oddSite(t);
  for (const i of [1, 2]) await run({ io: capture({ ...s.inputs, shard: `${i}/2` }, s.env).io });
  const c = capture({ ...s.inputs, shard: 'cleanup/2', 'delete-orphans': 'true' }, s.env);
  await run({ io: c.io });
  assert.deepEqual(c.errors, []);
  const stored = (await s.client.listObjects({ bucket: 'test-bucket', prefix: 'web/' })).map((x) => x.key);
  assert.deepEqual(stored.sort(), [...s.keys].sort());
});

test('delete-orphans over 1,001 files: every orphan goes, no planned key does', T, async (t) => {
  const s = await oddSite(t);
  const orphans = ['web/\uFFFF-old.html', 'web/\u{10000}-old.html', 'web/a0500x.html', 'web/zz.html'];
  const outside = ['web2/a.html', 'we', 'other/x'];
  for (const key of [...orphans, ...outside])
    await s.client.putObject({ bucket: 'test-bucket', key, body: bufferBody('old') });
  const c = capture({ ...s.inputs, 'delete-orphans': 'true' }, s.env);
  await run({ io: c.io });
  assert.deepEqual(c.errors, []);
  const stored = (await s.client.listObjects({ bucket: 'test-bucket' })).map((x) => x.key);
  assert.deepEqual(stored.sort(), [...s.keys, ...outside].sort());
  // and a second run finds every file unchanged
  const again = capture({ ...s.inputs, 'delete-orphans': 'true' }, s.env);
  s.server.clearRequests();
  await run({ io: again.io });
  assert.deepEqual(again.errors, []);
  assert.equal(
    s.server.requests.filter((r) => r.operation === 'PutObject').length,
    0,
    'nothing is uploaded again',
  );
});

test(
  'any keys, any page size, either order: the listing is the stored keys under the prefix',
  T,
  async (t) => {
    const state = { stored: [] as string[], order: byBytes, pageSize: 3 };
    const client = await startStateListing(t, state);
    // few distinct characters, so that keys share prefixes and meet at the cuts
    const unit = fc.constantFrom('a', 'b', '\uE000', '\uFFFF', '\u{10000}', '\u{1F600}', '/');
    const key = fc.array(unit, { maxLength: 4 }).map((u) => `p/${u.join('')}`);
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(key, { minLength: 1000, maxLength: 2600 }),
        fc.array(fc.oneof(key, fc.constant('q/x')), { maxLength: 40 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 1000 }),
        async (local, extra, utf16, pageSize) => {
          // some local keys are not stored yet; the bucket holds others no local file has
          state.stored = [...new Set([...local.filter((_, i) => i % 3 !== 0), ...extra])];
          state.order = utf16 ? byUnits : byBytes;
          state.pageSize = pageSize;
          await assertListsStored(client, local, state.stored);
        },
      ),
      { numRuns: 25 },
    );
  },
);
