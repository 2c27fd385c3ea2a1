// How many connections a deploy opens: those it opens ahead of its requests (while it searches files) follow
// the files this step sends, up to max-in-flight, and the requests use them rather than opening their own.
// Counted by a pass-through link in front of our server on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/action/main.ts';
import { startLink } from '../../bench/link.ts';
import { startHostile } from '../adversarial/hostile.ts';
import { OUTPUT } from '../../src/deploy/constants.ts';
import { capture, site, writeTree } from './harness.ts';

const T = { timeout: 120_000 };

for (const [files, extra, most] of [
  [10, {}, 10],
  [300, { 'max-in-flight': '16' }, 16],
  [40, { shard: '2/4' }, 15],
] as const) {
  test(`${files} files with ${JSON.stringify(extra)} open at most ${most} connections`, T, async (t) => {
    // scripts, not pages: pages are published last, by the cleanup step of a sharded run
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, Object.fromEntries(Array.from({ length: files }, (_, i) => [`f${i}.js`, `${i}`])));
    const link = await startLink({ target: { host: '127.0.0.1', port: server.port }, rttMs: 20 });
    t.after(() => link.close());
    const c = capture({ ...inputs, ...extra, endpoint: link.url }, env);
    await run({ io: c.io });
    const sent = Number(c.outputs[OUTPUT.uploadedCount]);
    assert.ok(sent > 0, JSON.stringify(c.outputs));
    assert.ok(link.connections <= most, `${link.connections} connections for ${sent} uploads`);
    // and they were used: a window's worth of uploads did not go one after another over one connection
    assert.ok(link.connections >= Math.min(sent, most) / 2, `${link.connections} connections`);
  });
}

test(
  'a large file has the connections of its first parts open before its upload is initiated',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'asset.bin': 'x'.repeat(3 * 1024 * 1024) });
    let atInitiate: number | undefined;
    const front = await startHostile((req) => {
      if (req.method === 'POST' && req.query.has('uploads')) atInitiate ??= link.connections;
      return false;
    }, server.url);
    t.after(() => front.close());
    const link = await startLink({
      target: { host: '127.0.0.1', port: Number(new URL(front.url).port) },
      rttMs: 20,
    });
    t.after(() => link.close());
    const c = capture({ ...inputs, endpoint: link.url, 'part-size': '512KiB', 'thread-num': '4' }, env);
    await run({ io: c.io });
    assert.equal(c.outputs[OUTPUT.uploadedCount], '1');
    assert.equal(atInitiate, 4, `${atInitiate} connection(s) when the upload was initiated`);
    assert.ok(link.connections <= 4, `${link.connections} connections`);
  },
);
