// A long upload gives V8's grown young generation back: one memory-reducing collection at most once a second
// and once per RELEASE_EVERY_BYTES of parts, less often when the collection takes long, without leaving gc() in contexts the process makes afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import {
  PAUSE_FACTOR,
  RELEASE_EVERY_BYTES,
  RELEASE_INTERVAL_MS,
  releaseYoungGeneration,
} from '../../../src/engine/young-generation.ts';

/**
 * Past the interval, with room for a collection that took longer than usual on a busy machine: the next waits
 * PAUSE_FACTOR times as long as the last took, so up to 150 ms here (this process's heap takes 5-10 ms idle).
 */
const PAST_INTERVAL_MS = Math.max(RELEASE_INTERVAL_MS * 1.5, 150 * PAUSE_FACTOR);

/** Parts enough for a release, as far as bytes go. */
const fullShare = (): void => releaseYoungGeneration(RELEASE_EVERY_BYTES);

/** Major collections seen while `fn` runs (and the observer drains). */
async function majorCollections(fn: () => void): Promise<number> {
  let seen = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as { detail?: { kind?: number } }).detail;
      if (detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) seen++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    fn();
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    observer.disconnect();
  }
  return seen;
}

test('a release collects, and calls within the next second do not', async () => {
  await new Promise((r) => setTimeout(r, RELEASE_INTERVAL_MS));
  const first = await majorCollections(() => {
    releaseYoungGeneration(RELEASE_EVERY_BYTES);
    for (let i = 0; i < 50; i++) releaseYoungGeneration(RELEASE_EVERY_BYTES);
  });
  assert.ok(first >= 1, 'the first call collects');
  const within = await majorCollections(() => {
    for (let i = 0; i < 50; i++) releaseYoungGeneration(RELEASE_EVERY_BYTES);
  });
  assert.equal(within, 0, 'none within the interval');
  await new Promise((r) => setTimeout(r, PAST_INTERVAL_MS));
  const after = await majorCollections(() => releaseYoungGeneration(RELEASE_EVERY_BYTES));
  assert.ok(after >= 1, 'a second later it collects again');
});

test('a slow upload is not stopped for it: past the interval, a collection still waits for its bytes', async () => {
  await new Promise((r) => setTimeout(r, PAST_INTERVAL_MS));
  assert.equal(
    await majorCollections(() => releaseYoungGeneration(RELEASE_EVERY_BYTES / 2)),
    0,
    'half the bytes: none',
  );
  assert.ok(
    (await majorCollections(() => releaseYoungGeneration(RELEASE_EVERY_BYTES / 2))) >= 1,
    'the other half: one',
  );
});

test('contexts and workers made after a release have no gc() of their own', async () => {
  // this file runs without --expose-gc, as the action and the CLI do
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
  await new Promise((r) => setTimeout(r, PAST_INTERVAL_MS));
  assert.ok((await majorCollections(fullShare)) >= 1, 'the release collected');
  assert.equal(runInNewContext('typeof gc'), 'undefined');
  const worker = new Worker("require('node:worker_threads').parentPort.postMessage(typeof gc)", {
    eval: true,
  });
  const seen = await new Promise<unknown>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.equal(seen, 'undefined');
});

test('a collection that took long holds the next one back in proportion, counted from its end', async (t) => {
  // the clock says the collection took 2 s, as one of a heap of a few GB does
  const base = performance.now() + 10 * 60_000;
  const took = 2000;
  let clock = base;
  let reads = 0;
  t.mock.method(performance, 'now', () => (reads++ === 1 ? base + took : clock));
  assert.ok((await majorCollections(fullShare)) >= 1, 'the release collected');
  assert.equal(reads, 2, 'read the clock before and after the collection');
  const next = base + took + took * PAUSE_FACTOR;
  clock = next - 1;
  assert.equal(await majorCollections(fullShare), 0, 'not while 1/PAUSE_FACTOR of the time would go to it');
  clock = next;
  assert.ok((await majorCollections(fullShare)) >= 1, 'collects once that share is back');
});
