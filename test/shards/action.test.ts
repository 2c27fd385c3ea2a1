// The action in a matrix, in-process over real HTTP: a shard's outputs, summary and checkpoint cache key are
// its own; the cleanup step reports what it verified; a dry-run cleanup step before the shards ran warns
// instead of failing; an upload shard refuses to clean up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/action/main.ts';
import { checkpointCacheKey } from '../../src/action/checkpoint-cache.ts';
import { shardOf } from '../../src/deploy/shard.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { clientFor } from '../helpers/client.ts';
import { capture, site, writeTree } from '../deploy/harness.ts';

const list = (json: string | undefined): string[] => JSON.parse(json ?? 'null') as string[];

const T = { timeout: 120_000 };

/** 20 assets and two pages under `site/`, uploaded to `web/`. */
async function matrixSite(t: Parameters<typeof site>[0]) {
  const s = await site(t, 0);
  const tree: Record<string, string> = { 'index.html': '<p>home</p>', 'b/page.html': '<p>b</p>' };
  for (let i = 0; i < 20; i++) tree[`assets/a${i}.css`] = `.a${i}{}`;
  await writeTree(s.ws, tree);
  const assets = Object.keys(tree)
    .filter((k) => !k.endsWith('.html'))
    .map((k) => `web/${k}`);
  return { ...s, assets, pages: ['web/b/page.html', 'web/index.html'] };
}

test('a shard: outputs, summary and checkpoint cache key are its own share', T, async (t) => {
  const s = await matrixSite(t);
  const restored: Array<{ key: string; restoreKeys: string[] }> = [];
  const cache = {
    restoreCache: (_paths: string[], key: string, restoreKeys: string[] = []) => {
      restored.push({ key, restoreKeys });
      return Promise.resolve(undefined);
    },
    saveCache: () => Promise.resolve(1),
  };
  const c = capture(
    { ...s.inputs, shard: '2/4', 'cache-checkpoints': 'true' },
    { ...s.env, GITHUB_RUN_ID: '77', GITHUB_RUN_ATTEMPT: '1' },
  );
  await run({ io: c.io, cache });
  const mine = s.assets.filter((k) => shardOf(k, 4) === 2);
  assert.ok(mine.length > 0 && mine.length < s.assets.length);
  assert.deepEqual(list(c.outputs.keys).sort(), [...mine].sort());
  assert.equal(c.outputs['uploaded-count'], String(mine.length));
  assert.equal(c.outputs['verified-count'], '0');
  assert.match(c.summary.join(''), /<h3>OSS upload, shard 2\/4<\/h3>/);
  assert.match(c.summary.join(''), /To oss:\/\/test-bucket\/web \(shard 2\/4\): \d+ uploaded/);
  assert.ok(
    c.lines.some((l) => l.startsWith(`shard 2/4: ${mine.length} of 22 file(s)`)),
    c.lines.join('\n'),
  );
  assert.equal(restored.length, 1);
  assert.match(restored[0]!.key, /^oss-resumable-upload-cp-v1-shard-2of4-[0-9a-f]{16}-77-1$/);
  assert.deepEqual(restored[0]!.restoreKeys, [restored[0]!.key.replace(/1$/, '')]);
});

test('checkpoint cache keys differ per shard and keep their form without one', () => {
  const base = { bucket: 'b', destination: 'd', files: ['d/a', 'd/b'], runId: '9', runAttempt: '2' };
  const plain = checkpointCacheKey(base);
  const one = checkpointCacheKey({ ...base, shard: { index: 1, count: 4 } });
  const two = checkpointCacheKey({ ...base, shard: { index: 2, count: 4 } });
  assert.match(plain.key, /^oss-resumable-upload-cp-v1-[0-9a-f]{16}-9-2$/);
  assert.notEqual(one.key, two.key);
  assert.ok(!one.restoreKeys.some((k) => two.key.startsWith(k)), 'shard 1 never restores shard 2');
  assert.ok(!plain.restoreKeys.some((k) => one.key.startsWith(k)), 'an unsharded run never restores a shard');
});

test('an upload shard refuses delete-orphans before any request', T, async (t) => {
  const s = await matrixSite(t);
  const c = capture({ ...s.inputs, shard: '1/2', 'delete-orphans': 'true' }, s.env);
  await assert.rejects(
    run({ io: c.io }),
    /`delete-orphans` and `abort-stale-uploads` are refused in an upload shard \(`shard` is `1\/2`\)/,
  );
  assert.equal(s.server.requests.length, 0);
});

test(
  'the cleanup step: a dry run before the shards warns and lists; after them it verifies, publishes and deletes',
  T,
  async (t) => {
    const s = await matrixSite(t);
    const client = clientFor(s.server);
    t.after(() => client.close());
    await client.putObject({ bucket: 'test-bucket', key: 'web/old.css', body: bufferBody('old') });
    const cleanupInputs = { ...s.inputs, shard: 'cleanup/2', 'delete-orphans': 'true' };

    const dry = capture({ ...cleanupInputs, 'dry-run': 'true' }, s.env);
    await run({ io: dry.io });
    assert.ok(
      dry.warnings.some((w) =>
        w.includes(
          `verification before cleanup: ${s.assets.length} of ${s.assets.length} key(s) are not stored as planned`,
        ),
      ),
      dry.warnings.join('\n'),
    );
    assert.ok(
      dry.warnings.some((w) => w.includes('the real cleanup step would stop here, deleting nothing')),
    );
    assert.deepEqual(JSON.parse(dry.outputs.orphans!), ['web/old.css']);
    assert.equal(dry.outputs['deleted-count'], '0');

    for (const i of [1, 2]) await run({ io: capture({ ...s.inputs, shard: `${i}/2` }, s.env).io });
    const c = capture(cleanupInputs, s.env);
    await run({ io: c.io });
    assert.equal(c.outputs['verified-count'], String(s.assets.length));
    assert.equal(c.outputs['uploaded-count'], '2');
    assert.deepEqual(list(c.outputs['changed-keys']).sort(), s.pages);
    assert.deepEqual(JSON.parse(c.outputs['deleted-keys']!), ['web/old.css']);
    assert.equal(list(c.outputs.keys).length, s.assets.length + 2);
    assert.match(c.summary.join(''), /<h3>OSS upload, cleanup step of 2 shards<\/h3>/);
    assert.match(c.summary.join(''), new RegExp(`: ${s.assets.length} verified, 2 uploaded`));
  },
);
