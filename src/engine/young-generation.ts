/**
 * V8 lets its young generation grow as a long run's objects outlive collections (each part's request state
 * does), and only a collection asked to reduce memory gives the space back: a 4 GiB upload peaked 14% above a
 * 1 GiB one, all of it the young generation doubling from 8 to 16 MB (v8.getHeapSpaceStatistics). V8's flags
 * would cap it (`--max-semi-space-size`), but an action cannot pass flags to its Node and they do not take
 * effect once the heap exists. What Node does offer is the gc() that `--expose-gc` installs in contexts made
 * after it is set (https://nodejs.org/api/v8.html#v8setflagsfromstringflags), whose "last-resort" collection
 * reduces memory. A long upload asks for one at most once a second: its peak then stays flat in file size for
 * a few per cent more CPU (README, Benchmarks).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** At most one collection per this long; an upload shorter than it never pays for one. */
export const RELEASE_INTERVAL_MS = 1000;

let collect: Collect | null | undefined;
let last = performance.now();

/** Give the young generation's grown space back, unless that was done less than a second ago. */
export function releaseYoungGeneration(): void {
  const now = performance.now();
  if (now - last < RELEASE_INTERVAL_MS) return;
  last = now;
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as Collect;
    } catch {
      // an embedder that refuses the flag keeps its young generation as V8 sizes it
      collect = null;
    }
  }
  collect?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
