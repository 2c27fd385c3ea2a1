// A ListObjectsV2 server of the tests' own: keys from memory in a chosen order, pages of a chosen size,
// url-encoded, optionally ignoring start-after, slow, or failing one range; it counts what it is asked.
import type { ServerResponse } from 'node:http';
import { errorXml, startHostile, type HostileRequest, type HostileServer } from '../adversarial/hostile.ts';
import assert from 'node:assert/strict';
import { FirstPage, listInRanges } from '../../src/deploy/listing.ts';
import type { OssClient } from '../../src/oss/index.ts';
import { clientFor } from './client.ts';

/** OSS's order: by UTF-8 bytes. */
export const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
/** A JavaScript sort's order: by UTF-16 units. */
export const byUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export interface ListingShape {
  order?: (a: string, b: string) => number;
  pageSize?: number;
  ignoreStartAfter?: boolean;
}

/** The ListBucketResult a server holding `stored` gives for a request with `query`. */
export function listingAnswer(
  stored: readonly string[],
  query: URLSearchParams,
  o: ListingShape = {},
): string {
  const order = o.order ?? byBytes;
  const token = query.get('continuation-token');
  const after = token ?? (o.ignoreStartAfter ? null : query.get('start-after'));
  const prefix = query.get('prefix') ?? '';
  const under = [...stored].sort(order).filter((k) => k.startsWith(prefix));
  const from = after === null ? 0 : under.findIndex((k) => order(k, after) > 0);
  const rest = from < 0 ? [] : under.slice(from);
  const page = rest.slice(0, o.pageSize ?? 1000);
  const truncated = rest.length > page.length;
  const e = encodeURIComponent;
  return (
    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><EncodingType>url</EncodingType>` +
    `<Prefix>${e(prefix)}</Prefix><MaxKeys>1000</MaxKeys><KeyCount>${page.length}</KeyCount>` +
    `<IsTruncated>${truncated}</IsTruncated>` +
    (truncated ? `<NextContinuationToken>${e(page.at(-1)!)}</NextContinuationToken>` : '') +
    page
      .map(
        (k) =>
          `<Contents><Key>${e(k)}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"A"</ETag><Size>1</Size></Contents>`,
      )
      .join('') +
    '</ListBucketResult>'
  );
}

export interface ListingStats {
  requests: number;
  inFlight: number;
  most: number;
  startAfters: string[];
  /** Requests held unanswered (see `holdFrom`), and how many of them the client gave up on. */
  held: number;
  abandoned: number;
}

/**
 * A server over `stored`, and a client of it (both closed after the test), that delays each answer by `delayMs` (so ranges asked together overlap) and answers
 * 500 to the range that starts after `failAfter`. With `holdFrom`, a range that starts after that key or a later one is never
 * answered: only a client that stops asking for it gets on.
 */
export async function startListingServer(
  t: { after(fn: () => unknown): void },
  stored: readonly string[],
  o: ListingShape & { delayMs?: number; failAfter?: string; holdFrom?: string } = {},
  clientOptions: Parameters<typeof clientFor>[1] = {},
): Promise<{ server: HostileServer; stats: ListingStats; client: OssClient }> {
  const stats: ListingStats = { requests: 0, inFlight: 0, most: 0, startAfters: [], held: 0, abandoned: 0 };
  const server = await startHostile(async (req, res) => {
    stats.requests++;
    stats.most = Math.max(stats.most, ++stats.inFlight);
    await new Promise((r) => setTimeout(r, o.delayMs ?? 5));
    stats.inFlight--;
    const startAfter = req.query.get('start-after');
    if (startAfter !== null) stats.startAfters.push(startAfter);
    if (o.holdFrom !== undefined && startAfter !== null && byBytes(startAfter, o.holdFrom) >= 0) {
      stats.held++;
      await new Promise<void>((resolve) => res.once('close', resolve));
      stats.abandoned++;
      return true;
    }
    if (o.failAfter !== undefined && startAfter === o.failAfter && !req.query.has('continuation-token')) {
      res.writeHead(500, { 'content-type': 'application/xml' }).end(errorXml('InternalError'));
      return true;
    }
    res
      .writeHead(200, { 'content-type': 'application/xml', 'x-oss-request-id': 'listing' })
      .end(listingAnswer(stored, req.query, o));
    return true;
  });
  t.after(() => server.close());
  const client = clientFor(server, clientOptions);
  t.after(() => client.close());
  return { server, stats, client };
}

/**
 * A listing server over `stored` (read at each request, so that a test may change it) and a client of it, both
 * closed after the test. `handle` sees each request first: it may answer it itself (true), hold it, or leave
 * it to the truth (false).
 */
export async function startScriptedListing(
  t: { after(fn: () => unknown): void },
  stored: () => readonly string[],
  handle: (req: HostileRequest, res: ServerResponse) => boolean | Promise<boolean> = () => false,
  shape: ListingShape = {},
): Promise<{ server: HostileServer; client: OssClient }> {
  const server = await startHostile(async (req, res) => {
    if (await handle(req, res)) return true;
    if (!res.destroyed)
      res
        .writeHead(200, { 'content-type': 'application/xml', 'x-oss-request-id': 'listing' })
        .end(listingAnswer(stored(), req.query, shape));
    return true;
  });
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  return { server, client };
}

/**
 * A server that answers every listing from `state` as it is when the request comes (a property test changes it
 * between runs), after `before` (a delay, say); and a client of it, both closed after the test.
 */
export async function startStateListing(
  t: { after(fn: () => unknown): void },
  state: ListingShape & { stored: readonly string[] },
  before?: () => Promise<void>,
): Promise<OssClient> {
  const { client } = await startScriptedListing(
    t,
    () => state.stored,
    async () => {
      await before?.();
      return false;
    },
    state,
  );
  return client;
}

/**
 * A server over `stored` whose listings `held(query)` holds until `release`, then answers (them and any asked
 * for later) with `late` (an error status, say) or the truth; the others are answered at once. Counts what is
 * open.
 */
export async function startHoldingListing(
  t: { after(fn: () => unknown): void },
  stored: readonly string[],
  held: (q: URLSearchParams) => boolean,
  late?: (res: ServerResponse) => void,
) {
  const waiting: Array<() => void> = [];
  const seen: HostileRequest[] = [];
  const open = { n: 0 };
  let released = false;
  const { client } = await startScriptedListing(
    t,
    () => stored,
    async (req, res) => {
      seen.push(req);
      open.n++;
      res.once('close', () => open.n--);
      if (!held(req.query)) return false;
      if (!released) await new Promise<void>((resolve) => waiting.push(resolve));
      if (res.destroyed) return true;
      if (!late) return false;
      late(res);
      return true;
    },
  );
  const release = (): void => {
    released = true;
    for (const go of waiting.splice(0)) go();
  };
  return { client, seen, open, release, waiting };
}

/** Lists `p/` of the bucket in ranges cut at `keys`, and checks it holds the `stored` keys under `p/`, in OSS's order. */
export async function assertListsStored(
  client: OssClient,
  keys: readonly string[],
  stored: readonly string[],
  o: { bucket?: string; message?: string } = {},
): Promise<void> {
  const listed = await listInRanges(client, {
    bucket: o.bucket ?? 'bkt',
    prefix: 'p/',
    keys,
    signal: AbortSignal.timeout(30_000),
  });
  assert.deepEqual(
    listed.map((x) => x.key),
    stored.filter((k) => k.startsWith('p/')).sort(byBytes),
    o.message,
  );
}

/**
 * The keys listed under `prefix` (default `p/`) in ranges cut at `keys`, with the first page of `pagePrefix`
 * (default `prefix`) answered before the plan was made, as after a long search.
 */
export async function listAfterFirstPage(
  client: OssClient,
  keys: readonly string[],
  o: { prefix?: string; pagePrefix?: string } = {},
): Promise<string[]> {
  const prefix = o.prefix ?? 'p/';
  const signal = AbortSignal.timeout(30_000);
  const first = new FirstPage(client, { bucket: 'bkt', prefix: o.pagePrefix ?? prefix, signal });
  await first.settled;
  const listed = await listInRanges(client, { bucket: 'bkt', prefix, keys, signal, first });
  return listed.map((x) => x.key);
}
