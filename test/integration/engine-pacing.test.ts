// How the engine paces requests over a long round trip: the next files are ready when slots free, and a
// multipart upload's workers do not all wait for their answers at the same moment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clientFor, readObject } from '../helpers/client.ts';
import { randomFile } from '../helpers/files.ts';
import { serverClientDir } from '../helpers/setup.ts';
import { startHostile } from '../adversarial/hostile.ts';
import { createLimiter, uploadFile, uploadFiles } from '../../src/engine/index.ts';

const BUCKET = 'test-bucket';
const PART = 100 * 1024;

test('while every slot waits on an answer, the next files are already read and waiting for a slot', async (t) => {
  const { server, client: direct, dir } = await serverClientDir(t);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let puts = 0;
  const hostile = await startHostile(async (req) => {
    if (req.method !== 'PUT') return false;
    puts++;
    await held;
    return false;
  }, server.url);
  t.after(() => hostile.close());
  const client = clientFor(hostile);
  t.after(() => client.close());
  const items = [];
  for (let i = 0; i < 8; i++) {
    const file = join(dir, `f${i}.txt`);
    await writeFile(file, `file ${i}`);
    items.push({ file, key: `k/${i}.txt` });
  }
  const started: string[] = [];
  const run = uploadFiles(items, {
    client,
    bucket: BUCKET,
    limiter: createLimiter(2),
    onFileStart: (item) => started.push(item.key),
  });
  for (let waited = 0; puts < 2 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(puts, 2, 'the limit holds: two requests in flight');
  assert.equal(started.length, 4, 'two more files are readied while both slots are held');
  release();
  const outcomes = await run;
  assert.ok(outcomes.every((o) => o.ok));
  assert.equal((await readObject(direct, BUCKET, 'k/7.txt')).toString(), 'file 7');
});

test('the first parts of a multipart upload start apart when each worker has more to send', async (t) => {
  const { server, client: direct, dir } = await serverClientDir(t);
  const ROUND_TRIP_MS = 120;
  const partStarts: number[] = [];
  const hostile = await startHostile(async (req) => {
    if (req.method === 'POST' && req.query.has('uploads')) {
      // a long round trip, as the Initiate measures it
      await new Promise((r) => setTimeout(r, ROUND_TRIP_MS));
    } else if (req.method === 'PUT' && req.query.has('uploadId')) {
      partStarts.push(performance.now());
      // each part answered a round trip later, so a worker's next part cannot fill the gap
      await new Promise((r) => setTimeout(r, ROUND_TRIP_MS));
    }
    return false;
  }, server.url);
  t.after(() => hostile.close());
  const client = clientFor(hostile);
  t.after(() => client.close());
  const { path, data } = await randomFile(dir, 'big.bin', PART * 8);
  const result = await uploadFile({
    client,
    bucket: BUCKET,
    key: 'big.bin',
    file: path,
    partSize: PART,
    threadNum: 4,
  });
  assert.equal(result.parts, 8);
  assert.deepEqual(await readObject(direct, BUCKET, 'big.bin'), data);
  // the second worker waits half a round trip (as the Initiate measured it) before its first part
  const gap = partStarts[1]! - partStarts[0]!;
  assert.ok(gap >= ROUND_TRIP_MS / 2 - 20, `the first two parts started ${gap.toFixed(0)} ms apart`);

  // one round (no more parts than workers): nothing to keep apart, no wait
  partStarts.length = 0;
  const small = await randomFile(dir, 'small.bin', PART * 4);
  await uploadFile({
    client,
    bucket: BUCKET,
    key: 'small.bin',
    file: small.path,
    partSize: PART,
    threadNum: 4,
  });
  const spreadOne = Math.max(...partStarts) - Math.min(...partStarts);
  assert.ok(spreadOne < ROUND_TRIP_MS / 2, `one round started within ${spreadOne.toFixed(0)} ms`);
});
