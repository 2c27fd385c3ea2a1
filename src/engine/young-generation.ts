/**
 * V8 lets its young generation grow as a long run's objects outlive collections (each part's request state
 * does), and only a collection asked to reduce memory gives the space back: a 4 GiB upload peaked 14% above a
 * 1 GiB one, all of it the young generation doubling from 8 to 16 MB (v8.getHeapSpaceStatistics). V8's flags
 * would cap it (`--max-semi-space-size`), but an action cannot pass flags to its Node and they do not take
 * effect once the heap exists. What Node does offer is the gc() that `--expose-gc` installs in contexts made
 * after it is set (https://nodejs.org/api/v8.html#v8setflagsfromstringflags), whose "last-resort" collection
 * reduces memory. A long upload asks for one at most once a second and once per 512 MiB of parts: its peak then
 * stays flat in file size for a few per cent more CPU (README, Benchmarks).
 *
 * That collection is synchronous and marks the whole heap at least twice, so it takes as long as the process's
 * heap is big, not the upload's (30 MB: 25 ms; 1.25 GB: 0.8-1.2 s): once a second, a library user holding
 * such a heap had its event loop blocked 96% of the time, for a young generation of a few MB. The next one
 * therefore waits in proportion to how long the last took, and the flag is set only for as long as it takes
 * to make the one context, so other contexts the process makes later (node:vm sandboxes, worker threads) do
 * not gain a global gc().
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** At most one collection per this long; an upload shorter than it never pays for one. */
export const RELEASE_INTERVAL_MS = 1000;

/**
 * Nor before this many bytes of parts since the last: the growth comes with the work done, so a slow link's
 * upload (50 MiB/s) is not stopped once a second for the little it allocates.
 */
export const RELEASE_EVERY_BYTES = 512 * 1024 * 1024;

/**
 * Collections take at most 1/PAUSE_FACTOR of the time: the next waits this many times as long as the last took.
 * An upload's own heap (20-60 MB) collects in 20-50 ms, so it keeps the one-second cadence.
 */
export const PAUSE_FACTOR = 20;

/** How long after a collection that took `tookMs` the next may run. */
function releaseDelay(tookMs: number): number {
  return Math.max(RELEASE_INTERVAL_MS, tookMs * PAUSE_FACTOR);
}

let collect: Collect | null | undefined;
let next = performance.now() + RELEASE_INTERVAL_MS;
let bytesSince = 0;

/**
 * Count `bytes` of parts sent, and give the young generation's grown space back once enough were, unless the
 * last collection was too recent for its cost.
 */
export function releaseYoungGeneration(bytes: number): void {
  bytesSince += bytes;
  if (bytesSince < RELEASE_EVERY_BYTES) return;
  const start = performance.now();
  if (start < next) return;
  bytesSince = 0;
  collect ??= exposedCollector();
  if (collect === null) {
    next = Infinity;
    return;
  }
  collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  const end = performance.now();
  next = end + releaseDelay(end - start);
}

/** The gc() of a context made while `--expose-gc` is set, or null where the runtime refuses it. */
function exposedCollector(): Collect | null {
  // a process started with --expose-gc has gc() on its own global, and keeps the flag as it was given
  const givenAtStart = typeof (globalThis as { gc?: unknown }).gc === 'function';
  try {
    setFlagsFromString('--expose-gc');
    try {
      const gc: unknown = runInNewContext('gc');
      return typeof gc === 'function' ? (gc as Collect) : null;
    } finally {
      // V8 installs gc() when a context is made, so the one made above keeps it
      if (!givenAtStart) setFlagsFromString('--no-expose-gc');
    }
  } catch {
    // an embedder that refuses the flag keeps its young generation as V8 sizes it
    return null;
  }
}
