// A matrix deploy as GitHub Actions runs it: four shard processes of the command line at once on the same
// tree, each signed with its own key so the server's request log tells who sent what; then the cleanup job.
// No key is sent twice, the shares cover every key, the cleanup step deletes exactly the orphans and sends the
// pages last; with one shard failed, the cleanup step fails and deletes nothing, and a re-run of that shard
// sends only what it lacked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { clientFor } from '../helpers/client.ts';
import { tempDir } from '../helpers/files.ts';
import { bufferBody } from '../../src/oss/index.ts';
import type { RequestRecord } from '../../src/server/index.ts';
import { shardOf } from '../../src/deploy/shard.ts';

const ROOT = join(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const CLI = join(ROOT, 'src/cli/index.ts');
const B = 'test-bucket';
const N = 4;
const DAY = 86_400_000;
const T = { timeout: 240_000 };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The command line from source in its own process, signed as `ak`; killed if it outlives `ms`. */
function cli(args: string[], cwd: string, ak: string, ms = 90_000): Promise<Run> {
  const child = spawn(NODE, [CLI, ...args], {
    cwd,
    env: { PATH: process.env.PATH, HOME: cwd, OSS_ACCESS_KEY_ID: ak, OSS_ACCESS_KEY_SECRET: `${ak}-secret` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const shardKey = (i: number): string => `shard-${i}`;
const CLEANUP_KEY = 'cleanup-ak';

/** 60 assets (three of them multipart), two pages, orphans inside and outside the destination, a stale upload. */
async function setup(t: Parameters<typeof tempDir>[0]) {
  const server = await startTestServer({
    credentials: [shardKey(1), shardKey(2), shardKey(3), shardKey(4), CLEANUP_KEY, 'test-ak'].map((ak) => ({
      accessKeyId: ak,
      accessKeySecret: ak === 'test-ak' ? 'test-sk' : `${ak}-secret`,
    })),
  });
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  const dir = await tempDir(t);
  const files: Record<string, string | Buffer> = {
    'index.html': '<p>home</p>',
    'docs/guide.html': '<p>g</p>',
  };
  for (let i = 0; i < 57; i++) files[`assets/${i % 5}/a${i}.js`] = `console.log(${i});\n`;
  for (let i = 0; i < 3; i++) files[`media/v${i}.bin`] = Buffer.alloc(250 * 1024, i + 1);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, 'site', rel)), { recursive: true });
    await writeFile(join(dir, 'site', rel), content);
  }
  const planned = Object.keys(files).map((rel) => `web/${rel}`);
  const orphans = ['web/old.js', 'web/gone/x.css'];
  const outside = ['other/keep.txt', 'web-v1/keep.txt'];
  for (const key of [...orphans, ...outside])
    await client.putObject({ bucket: B, key, body: bufferBody(key) });
  const stale = await client.initiateMultipartUpload({ bucket: B, key: 'web/died.bin' });
  await server.ageUploads(2 * DAY);
  server.clearRequests();
  const common = [
    'site',
    '--bucket',
    B,
    '--endpoint',
    server.url,
    '--destination',
    'web',
    '--part-size',
    '100KB',
  ];
  const shard = (i: number) =>
    cli(
      [...common, '--shard', `${i}/${N}`, '--checkpoint-dir', join(dir, `cp-${i}`), '--progress', 'none'],
      dir,
      shardKey(i),
    );
  const cleanup = () =>
    cli(
      [
        ...common,
        '--shard',
        `cleanup/${N}`,
        '--delete-orphans',
        '--abort-stale-uploads',
        '24h',
        '--checkpoint-dir',
        join(dir, 'cp-cleanup'),
      ],
      dir,
      CLEANUP_KEY,
    );
  const stored = async () => (await client.listObjects({ bucket: B })).map((o) => o.key).sort();
  const pages = planned.filter((k) => k.endsWith('.html'));
  const assets = planned.filter((k) => !k.endsWith('.html'));
  return { server, client, dir, planned, pages, assets, orphans, outside, stale, shard, cleanup, stored };
}

const UPLOADS = new Set(['PutObject', 'InitiateMultipartUpload']);
/** Who started an upload of each key, from the server's request log: one entry per PutObject or Initiate. */
function senders(requests: readonly RequestRecord[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of requests)
    if (UPLOADS.has(r.operation) && r.status === 200 && r.key !== undefined)
      out.set(r.key, [...(out.get(r.key) ?? []), r.accessKeyId ?? '?']);
  return out;
}

const DELETES = new Set(['DeleteObject', 'DeleteMultipleObjects', 'AbortMultipartUpload']);

test(
  '4 shards at once send each key once, by its hashed shard; the cleanup step verifies, publishes last and deletes exactly the orphans',
  T,
  async (t) => {
    const s = await setup(t);
    const runs = await Promise.all([1, 2, 3, 4].map((i) => s.shard(i)));
    runs.forEach((r, i) => assert.equal(r.code, 0, `shard ${i + 1}: ${r.stdout}\n${r.stderr}`));

    const sent = senders(s.server.requests);
    for (const [key, who] of sent) assert.equal(who.length, 1, `${key} sent by ${who.join(', ')}`);
    assert.deepEqual(
      [...sent.keys()].sort(),
      [...s.assets].sort(),
      'the shards together sent every asset and no page',
    );
    for (const key of s.assets) assert.equal(sent.get(key)![0], shardKey(shardOf(key, N)), key);
    runs.forEach((r, i) => {
      const mine = s.assets.filter((k) => shardOf(k, N) === i + 1);
      assert.match(
        r.stdout,
        new RegExp(`^shard ${i + 1}/${N}: ${mine.length} uploaded, 0 unchanged, 0 failed`, 'm'),
        r.stdout,
      );
    });
    assert.ok(
      !s.server.requests.some((r) => DELETES.has(r.operation)),
      'no shard deleted or aborted anything',
    );
    assert.deepEqual(await s.stored(), [...s.assets, ...s.orphans, ...s.outside].sort());

    s.server.clearRequests();
    const c = await s.cleanup();
    assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}`);
    assert.deepEqual(await s.stored(), [...s.planned, ...s.outside].sort(), 'exactly the orphans are gone');
    const log = s.server.requests;
    assert.deepEqual(
      [...senders(log).keys()].sort(),
      [...s.pages].sort(),
      'the cleanup step sends only the pages',
    );
    const lastCheck = Math.max(...log.filter((r) => r.operation === 'HeadObject').map((r) => r.time));
    const firstPage = Math.min(...log.filter((r) => UPLOADS.has(r.operation)).map((r) => r.time));
    assert.ok(lastCheck <= firstPage, 'every asset is verified before the first page goes up');
    assert.equal(
      log.filter((r) => r.operation === 'HeadObject').length,
      s.assets.length,
      'one check per asset',
    );
    assert.ok(log.some((r) => r.operation === 'AbortMultipartUpload' && r.uploadId === s.stale.uploadId));
    assert.match(c.stdout, /cleanup step of 4 shards: 60 verified, 2 uploaded/);
  },
);

test(
  'a failed shard: the cleanup step names the missing keys and their shard, deletes and aborts nothing; a re-run of that shard sends only what it lacked',
  T,
  async (t) => {
    const s = await setup(t);
    const third = s.assets.filter((k) => shardOf(k, N) === 3);
    const broken = third[0]!;
    s.server.addFault({
      operation: ['PutObject', 'InitiateMultipartUpload'],
      key: broken,
      times: Infinity,
      action: { type: 'error', status: 400, code: 'InvalidArgument', message: 'injected' },
    });
    const runs = await Promise.all([1, 2, 3, 4].map((i) => s.shard(i)));
    runs.forEach((r, i) => assert.equal(r.code, i === 2 ? 1 : 0, `shard ${i + 1}: ${r.stdout}\n${r.stderr}`));

    const c = await s.cleanup();
    assert.equal(c.code, 1, `${c.stdout}\n${c.stderr}`);
    assert.ok(c.stderr.includes(`1 of ${s.assets.length} key(s)`), c.stderr);
    assert.ok(c.stderr.includes(`${broken} (missing, shard 3/4)`), c.stderr);
    assert.match(
      c.stderr,
      /nothing was deleted or aborted, and the 2 file\(s\) published last were not sent/,
    );
    assert.ok(!s.server.requests.some((r) => DELETES.has(r.operation)), 'nothing deleted or aborted');
    assert.deepEqual(
      await s.stored(),
      [...s.assets.filter((k) => k !== broken), ...s.orphans, ...s.outside].sort(),
    );

    s.server.clearFaults();
    s.server.clearRequests();
    const again = await s.shard(3);
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
    assert.deepEqual(
      [...senders(s.server.requests).keys()],
      [broken],
      'the re-run sends only the missing key',
    );
    assert.match(
      again.stdout,
      new RegExp(`^shard 3/4: 1 uploaded, ${third.length - 1} unchanged, 0 failed`, 'm'),
    );

    const done = await s.cleanup();
    assert.equal(done.code, 0, `${done.stdout}\n${done.stderr}`);
    assert.deepEqual(await s.stored(), [...s.planned, ...s.outside].sort());
  },
);
