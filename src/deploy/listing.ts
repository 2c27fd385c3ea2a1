/**
 * The destination listed in key ranges at once. ListObjectsV2 pages one after another (each page names the
 * next), so 4,000 keys took four round trips in a row; the planned keys are known before the listing, so the
 * key space is cut at every thousandth of them and the ranges are asked for together, each mostly one page.
 */
import { type OssClient, compareKeys } from '../oss/index.ts';
import type { ListedObject } from './cleanup.ts';

/** Planned keys per range: one page's worth (ListObjectsV2 answers at most 1,000 keys). */
const KEYS_PER_RANGE = 1000;
/** Ranges asked for at once: a listing of 16,000 planned keys in one round trip, not a burst without end. */
const RANGES_AT_ONCE = 16;

/**
 * Every object under `prefix`, listed in ranges cut at the local `keys` under it: a range ends at (and includes) a
 * planned key and the next begins after it, so together they cover the prefix once, whatever else it holds.
 * A key a server lists twice (one that ignores `start-after`) is kept once; the result is in listing order.
 */
export async function listInRanges(
  client: OssClient,
  o: { bucket: string; prefix: string; keys: readonly string[]; signal: AbortSignal },
): Promise<ListedObject[]> {
  const sorted = [...new Set(o.keys.filter((k) => k.startsWith(o.prefix)))].sort(compareKeys);
  const cuts: string[] = [];
  for (let i = KEYS_PER_RANGE - 1; i < sorted.length - 1; i += KEYS_PER_RANGE) cuts.push(sorted[i]!);
  const ranges = [undefined, ...cuts].map((startAfter, i) => ({ startAfter, through: cuts[i] }));
  const stop = new AbortController();
  const signal = AbortSignal.any([o.signal, stop.signal]);
  const pages: ListedObject[][] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ranges.length) {
      const range = ranges[next++]!;
      pages.push(await client.listObjects({ bucket: o.bucket, prefix: o.prefix, ...range, signal }));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(RANGES_AT_ONCE, ranges.length) }, worker));
  } catch (e) {
    // the other ranges are of no use now: stop them rather than leave them running
    stop.abort(e);
    throw e;
  }
  const byKey = new Map<string, ListedObject>();
  for (const page of pages) for (const x of page) byKey.set(x.key, x);
  return [...byKey.values()].sort((a, b) => compareKeys(a.key, b.key));
}
