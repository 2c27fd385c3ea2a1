// A long upload gives V8's grown young generation back: one memory-reducing collection at most once a second.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { RELEASE_INTERVAL_MS, releaseYoungGeneration } from '../../../src/engine/young-generation.ts';

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
    releaseYoungGeneration();
    for (let i = 0; i < 50; i++) releaseYoungGeneration();
  });
  assert.ok(first >= 1, 'the first call collects');
  const within = await majorCollections(() => {
    for (let i = 0; i < 50; i++) releaseYoungGeneration();
  });
  assert.equal(within, 0, 'none within the interval');
  await new Promise((r) => setTimeout(r, RELEASE_INTERVAL_MS));
  const after = await majorCollections(() => releaseYoungGeneration());
  assert.ok(after >= 1, 'a second later it collects again');
});
