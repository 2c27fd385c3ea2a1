// Attacks on matrix shards (`shard: i/n`, `shard: cleanup`): each test asserts what the README promises and
// fails today. Bounded: in-process action runs against the test server on 127.0.0.1, 30 s each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/action/main.ts';
import { shardOf } from '../../src/deploy/shard.ts';
import { startCdnStandIn } from '../../src/server/index.ts';
import { capture, site, writeTree } from '../deploy/harness.ts';
import { startHostile } from './hostile.ts';

const T = { timeout: 30_000 };

/** `n` assets and two pages under `site/`, uploaded to `web/`. */
async function matrixSite(t: Parameters<typeof site>[0], n = 20) {
  const s = await site(t, 0);
  const tree: Record<string, string> = { 'index.html': '<p>home</p>', 'b/page.html': '<p>b</p>' };
  for (let i = 0; i < n; i++) tree[`assets/a${i}.css`] = `.a${i}{}`;
  await writeTree(s.ws, tree);
  const assets = Object.keys(tree)
    .filter((k) => !k.endsWith('.html'))
    .map((k) => `web/${k}`);
  return { ...s, assets, pages: ['web/b/page.html', 'web/index.html'] };
}

const outcome = (p: Promise<void>): Promise<Error | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );

// Finding 1. The documented recovery for a failed shard is "re-run the failed shard". A shard that fails
// skips its CDN refresh ("the deploy is incomplete"), but the files it did store in that attempt are already
// the new bytes; the re-run finds them unchanged (skip-unchanged) and refreshes only what it sends now. Those
// URLs are never refreshed: every step ends green while the CDN keeps serving the old asset. The promise
// (README "What changed, and CDN refresh"): every changed key is refreshed once the deploy is complete.
test(
  'cdn-domain: a key a failed shard stored is refreshed once the re-run of that shard completes',
  T,
  async (t) => {
    const s = await matrixSite(t);
    const cdn = await startCdnStandIn({});
    t.after(() => cdn.close());
    const inputs = { ...s.inputs, 'cdn-domain': 'static.example.com', 'cdn-endpoint': cdn.url };
    // a first, complete deploy: everything stored and cached on the CDN
    for (const i of [1, 2]) await run({ io: capture({ ...inputs, shard: `${i}/2` }, s.env).io });
    await run({ io: capture({ ...inputs, shard: 'cleanup/2' }, s.env).io });

    // the next build changes two assets of shard 1; the upload of the second one fails in attempt 1
    const mine = s.assets.filter((k) => shardOf(k, 2) === 1);
    const [stored, broken] = [mine[0]!, mine[1]!];
    for (const k of [stored, broken])
      await writeFile(join(s.ws, 'site', k.slice('web/'.length)), `/* ${k} v2 */`);
    cdn.requests.length = 0;
    s.server.clearRequests();
    s.server.addFault({
      operation: ['PutObject', 'InitiateMultipartUpload'],
      key: broken,
      times: Infinity,
      action: { type: 'error', status: 400, code: 'InvalidArgument', message: 'injected' },
    });
    const first = await outcome(run({ io: capture({ ...inputs, shard: '1/2' }, s.env).io }));
    assert.ok(first, 'attempt 1 of shard 1 fails');
    assert.ok(
      s.server.requests.some((r) => r.operation === 'PutObject' && r.key === stored && r.status === 200),
      `attempt 1 stored the new ${stored}`,
    );

    // re-run the failed shard (as the README says), then the cleanup job: all green
    s.server.clearFaults();
    await run({ io: capture({ ...inputs, shard: '1/2' }, s.env).io });
    await run({ io: capture({ ...inputs, shard: 'cleanup/2' }, s.env).io });

    const refreshed = cdn.requests.flatMap((r) => r.urls);
    assert.ok(
      refreshed.includes(`https://static.example.com/${broken}`),
      `the key sent by the re-run is refreshed: ${JSON.stringify(refreshed)}`,
    );
    assert.ok(
      refreshed.includes(`https://static.example.com/${stored}`),
      `${stored} changed on OSS in attempt 1 but was never refreshed on the CDN; refreshed: ${JSON.stringify(refreshed)}`,
    );
  },
);

// Finding 2. The cleanup step checks each key by HEAD; an object whose HEAD shows no x-oss-hash-crc64ecma
// (an OSS-compatible gateway, a proxy that strips x-oss-* headers, an object stored by a tool that did not
// compute it) is reported as "different bytes, shard k/n" with the advice "a shard did not finish (re-run
// it, then this job)". The bytes are the same; re-running the shard re-uploads and the cleanup step fails
// the same way again, forever. The promise: bad state gets an error naming what is wrong: here, that the
// stored object has no CRC-64 to compare, not that its bytes differ.
test(
  'cleanup step: a stored object whose HEAD has no CRC-64 is reported as unverifiable, not as different bytes',
  T,
  async (t) => {
    const s = await matrixSite(t, 4);
    for (const i of [1, 2]) await run({ io: capture({ ...s.inputs, shard: `${i}/2` }, s.env).io });
    const h = await startHostile(async (req, res, ctx) => {
      if (req.method !== 'HEAD') return false;
      const f = await ctx.forward();
      const headers = { ...f.headers };
      delete headers['x-oss-hash-crc64ecma'];
      res.writeHead(f.status, headers as Record<string, string>);
      res.end();
      return true;
    }, s.server.url);
    t.after(() => h.close());
    const c = capture({ ...s.inputs, endpoint: h.url, shard: 'cleanup/2', 'delete-orphans': 'true' }, s.env);
    const e = await outcome(run({ io: c.io }));
    assert.ok(e, 'the cleanup step fails (it cannot verify)');
    assert.doesNotMatch(
      e.message,
      /different bytes/,
      `the bytes are the same as the local files; the message should say the CRC-64 is missing: ${e.message}`,
    );
    assert.match(e.message, /CRC-64/, e.message);
  },
);
