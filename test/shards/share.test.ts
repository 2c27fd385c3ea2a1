// The share function decides which matrix job uploads which key: it must give every key to exactly one shard,
// the same one on every runner and in every glob order, and spread the keys about evenly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shardOf, shareOf } from '../../src/deploy/shard.ts';

const keys = Array.from({ length: 10_000 }, (_, i) => `site/assets/${i % 97}/file-${i}.js`);

/** A fixed shuffle: another runner's glob may return the same files in any order. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

test('a key lands in the same shard on every run: the first 8 bytes of its SHA-256 mod n', () => {
  // pinned (computed independently: int.from_bytes(sha256(key)[:8], 'big') % n + 1): a change here would move keys between shards of runs already under way
  assert.equal(shardOf('index.html', 4), 3);
  assert.equal(shardOf('web/a.css', 4), 1);
  assert.equal(shardOf('web/ü/日本.txt', 7), 4);
  assert.equal(shardOf('', 3), 2);
  for (const k of keys.slice(0, 200)) assert.equal(shardOf(k, 1), 1);
});

test('the shares are disjoint, cover every key, and do not depend on the order of the files', () => {
  const some = keys.slice(0, 2000);
  for (const n of [1, 2, 4, 7, 256]) {
    const owner = new Map<string, number>();
    for (let i = 1; i <= n; i++)
      for (const k of shareOf(some, { index: i, count: n })) {
        assert.equal(owner.get(k), undefined, `${k} in shards ${owner.get(k)} and ${i} of ${n}`);
        owner.set(k, i);
      }
    assert.equal(owner.size, some.length, `every key has a shard of ${n}`);
    for (const seed of [1, 2, 3]) {
      const other = shuffled(some, seed);
      for (let i = 1; i <= Math.min(n, 8); i++)
        assert.deepEqual(
          new Set(shareOf(other, { index: i, count: n })),
          new Set(shareOf(some, { index: i, count: n })),
        );
    }
  }
});

test('the shares are about even, whatever the keys look like', () => {
  for (const n of [2, 4, 16]) {
    const sizes = Array.from({ length: n }, (_, i) => shareOf(keys, { index: i + 1, count: n }).length);
    const mean = keys.length / n;
    for (const size of sizes) assert.ok(Math.abs(size - mean) < mean * 0.1, `${sizes.join(', ')} for ${n}`);
  }
});
