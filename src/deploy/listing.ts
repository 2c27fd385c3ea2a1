/**
 * The destination listed in key ranges at once. ListObjectsV2 pages one after another (each page names the
 * next), so 4,000 keys took four round trips in a row; the planned keys are known before the listing, so the
 * key space is cut at every thousandth of them and the ranges are asked for together, each mostly one page.
 * The first page is asked for earlier still, while the files are searched (see FirstPage).
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
 * That holds only for a server that lists in OSS's order and honours start-after; one that does not (sorts by
 * UTF-16 units, ignores start-after) is found out by the ranges themselves, and the prefix is then listed in
 * one walk of pages, as before ranges, which does not depend on the order. The result is in listing order.
 * Ranges asked for beside the one that reached the end of the prefix may still be in flight when this returns:
 * they end with their answer, or when `signal` aborts. With a `first` page that held every object, no range is
 * asked for; with one still on its way, the ranges go beside it and the first whole answer is the listing.
 */
export async function listInRanges(
  client: OssClient,
  o: {
    bucket: string;
    prefix: string;
    keys: readonly string[];
    signal: AbortSignal;
    /** The first page of a prefix that holds `prefix`, asked for before the keys were known. */
    first?: FirstPage | undefined;
    /** A failure of that page every range would meet too (wrong credentials): the listing's, at once. */
    final?: (e: Error) => boolean;
  },
): Promise<ListedObject[]> {
  const first = o.first;
  if (!first) return listRanges(client, o);
  const under = (objects: readonly ListedObject[]): ListedObject[] =>
    objects.filter((x) => x.key.startsWith(o.prefix));
  const fromPage = async (page: Page | undefined): Promise<ListedObject[]> => {
    if (!page) {
      if (first.failure !== undefined && o.final?.(first.failure)) throw first.failure;
      return listRanges(client, o);
    }
    if (!page.truncated) return merged(under(page.objects));
    const last = page.objects.at(-1)?.key;
    // a page out of order does not tell what it left out: the ranges list the prefix as if it had not come.
    // One in order walks on from its last key, even one past the prefix in OSS's order: only the ranges'
    // own order checks can tell a server that orders keys otherwise (by UTF-16 units, say)
    if (!page.ordered || last === undefined) return listRanges(client, o);
    return merged(under(page.objects), await listRanges(client, { ...o, after: last }));
  };
  // a plan of one range would ask for what the first page already is: it waits for the page and walks on
  if (first.answered || !manyRanges(o)) return fromPage(await first.settled);
  // the first page is still on its way: the ranges start beside it, and the first whole answer wins
  const ranged = listRanges(client, o);
  return Promise.race([
    first.settled.then((page) => (page && !page.truncated ? fromPage(page) : ranged)),
    ranged,
  ]);
}

/** Every object of the lists once (a server may name one twice), in listing order. */
function merged(...lists: ReadonlyArray<readonly ListedObject[]>): ListedObject[] {
  const byKey = new Map<string, ListedObject>();
  for (const list of lists) for (const x of list) byKey.set(x.key, x);
  return inListingOrder([...byKey.values()]);
}

interface Page {
  objects: ListedObject[];
  /** More objects followed under the prefix. */
  truncated: boolean;
  /** Each key after the one before it, in OSS's order: what a truncated page left out comes after its last. */
  ordered: boolean;
}

/**
 * The first page under a destination, asked for as soon as the run has a file to send, before the plan (and so
 * the ranges' cuts) is known. A destination of up to 1,000 objects, such as the empty one of a first deploy or
 * most sites, is then listed while the files are still searched rather than a round trip after. Never rejects:
 * a page that failed is left to the ranges, asked for next, unless its failure is one every request would
 * meet (`final` in listInRanges), which is then the listing's.
 */
export class FirstPage {
  answered = false;
  /** Why the page failed, once it has: a refusal of the credentials is the run's answer, not the ranges'. */
  failure: Error | undefined;
  /** The page; undefined when it failed (or never went: `ready` rejected). */
  readonly settled: Promise<Page | undefined>;

  /** Asks once `ready` resolves; never when it rejects (a setting found wrong sends nothing). */
  constructor(
    client: OssClient,
    o: { bucket: string; prefix: string; signal: AbortSignal; ready?: Promise<unknown> },
  ) {
    const end = { truncated: true };
    this.settled = (o.ready ?? Promise.resolve())
      .then(() =>
        client.listObjects({
          bucket: o.bucket,
          prefix: o.prefix,
          maxPages: 1,
          onEnd: (e) => Object.assign(end, e),
          signal: o.signal,
        }),
      )
      .then(
        (objects): Page => ({
          objects,
          truncated: end.truncated,
          ordered: objects.every((x, i) => i === 0 || compareKeys(objects[i - 1]!.key, x.key) < 0),
        }),
        (e: unknown) => {
          this.failure = e instanceof Error ? e : new Error(String(e));
          return undefined;
        },
      )
      .finally(() => (this.answered = true));
  }
}

/** Whether the planned keys under the prefix are cut into more than one range. */
function manyRanges(o: { prefix: string; keys: readonly string[] }): boolean {
  let n = 0;
  for (const k of o.keys) if (k.startsWith(o.prefix) && ++n > KEYS_PER_RANGE) return true;
  return false;
}

/** {@link listInRanges} without a first page; `after` a key every object listed comes after. */
async function listRanges(
  client: OssClient,
  o: { bucket: string; prefix: string; keys: readonly string[]; signal: AbortSignal; after?: string },
): Promise<ListedObject[]> {
  const after = o.after;
  const sorted = [
    ...new Set(
      o.keys.filter((k) => k.startsWith(o.prefix) && (after === undefined || compareKeys(k, after) > 0)),
    ),
  ].sort(compareKeys);
  const cuts: string[] = [];
  for (let i = KEYS_PER_RANGE - 1; i < sorted.length - 1; i += KEYS_PER_RANGE) cuts.push(sorted[i]!);
  const ranges = [after, ...cuts].map((startAfter, i) => ({ startAfter, through: cuts[i] }));
  const stop = new AbortController();
  const signal = AbortSignal.any([o.signal, stop.signal]);
  const listed: Array<{ objects: ListedObject[]; at: string | undefined; ordered: boolean }> = [];
  let next = 0;
  let disordered = false;
  /** The range that ran to the end of the prefix with every range before it in, once there is one. */
  let reachedEnd = -1;
  let finish!: () => void;
  const ended = new Promise<void>((resolve) => (finish = resolve));
  const settle = (): void => {
    for (let i = 0; listed[i]?.ordered === true; i++)
      if (listed[i]!.at === undefined) {
        // the ranges after it can only list what it has already seen: a destination smaller than the plan,
        // such as the empty one of a first deploy, is listed in the time of one answer. Those in flight are
        // left to answer (into nothing) rather than aborted: an aborted request takes its connection with
        // it, and the uploads about to start would pay a handshake again
        reachedEnd = i;
        finish();
        return;
      }
  };
  const worker = async (): Promise<void> => {
    // once one range finds the server out of order, the others are of no use: none more is asked for
    while (next < ranges.length && !disordered && reachedEnd < 0) {
      const i = next++;
      const end = { at: undefined as string | undefined, ordered: true };
      let objects: ListedObject[];
      try {
        objects = await client.listObjects({
          bucket: o.bucket,
          prefix: o.prefix,
          ...ranges[i]!,
          onEnd: (e) => Object.assign(end, e),
          signal,
        });
      } catch (e) {
        // what a range left running after the end says no longer matters
        if (reachedEnd >= 0) return;
        throw e;
      }
      listed[i] = { objects, ...end };
      if (!end.ordered) disordered = true;
      else settle();
    }
  };
  const all = Promise.all(Array.from({ length: Math.min(RANGES_AT_ONCE, ranges.length) }, worker)).then(
    finish,
    (e: unknown) => {
      // the other ranges are of no use now: stop them rather than leave them running
      stop.abort(e);
      throw e;
    },
  );
  // the end of the prefix, or every range in (or the first failure)
  await Promise.race([ended, all]);
  const used = reachedEnd >= 0 ? listed.slice(0, reachedEnd + 1) : listed;
  if (disordered || !handedOn(used, cuts))
    return merged(await client.listObjects({ bucket: o.bucket, prefix: o.prefix, signal: o.signal }));
  return merged(...used.map((range) => range.objects));
}

/** `objects` sorted as OSS lists keys (by UTF-8 bytes), whatever order they came in. */
function inListingOrder(objects: ListedObject[]): ListedObject[] {
  return objects.sort((a, b) => compareKeys(a.key, b.key));
}

/**
 * Whether each range began where the one before it ended. A range that ended past its cut, at key K, saw every
 * key the server orders before K; the next, asked for what comes after the cut, must then begin with K. A
 * server whose order is not OSS's (where a key sorts after the cut for us but before it for the server) fails
 * this even when each range was in order on its own, e.g. when a page ended right at the key out of place.
 */
function handedOn(
  listed: ReadonlyArray<{ objects: readonly ListedObject[]; at: string | undefined }>,
  cuts: readonly string[],
): boolean {
  for (let i = 1; i < listed.length; i++) {
    const before = listed[i - 1]!;
    // ended at its cut, a key the server holds: the next range's own order check covers what follows
    if (before.at === cuts[i - 1]) continue;
    const range = listed[i]!;
    if ((range.objects[0]?.key ?? range.at) !== before.at) return false;
  }
  return true;
}
