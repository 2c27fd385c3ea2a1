/**
 * One deploy, plan first: files -> one listing of the destination -> a decision per file -> execute (or, with
 * dry-run, only report) -> cleanup from the same listing -> a report the front ends turn into outputs, a summary
 * and an exit code. Knows nothing of GitHub or of a terminal: the front ends bring the log and the credentials.
 */
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import {
  type Limiter,
  type ProgressEvent,
  type UploadItem,
  type UploadOutcome,
  createLimiter,
  planParts,
  uploadFiles,
} from '../engine/index.ts';
import { type Credentials, type CredentialsProvider, OssClient, isOssError } from '../oss/index.ts';
import { type CleanupResult, NO_CLEANUP, type ListedObject, cleanUp, destinationPrefix } from './cleanup.ts';
import { FirstPage, listInRanges } from './listing.ts';
import { decideOnly } from './compare.ts';
import { DEFAULTS, INPUT } from './constants.ts';
import { describeError } from './describe.ts';
import { type CdnRefreshReport, refreshCdn } from './cdn-refresh.ts';
import { type FoundFile, findFiles, matchesRelative } from './files.ts';
import { FileLedger, finalState } from './ledger.ts';
import { escapeText } from './log-line.ts';
import { clientOptions, uploadItems, uploadSettings } from './options.ts';
import { NOT_CHECKED, type SummaryRow, type Totals, resultLine, totals } from './report.ts';
import { SettingError, ref } from './setting-error.ts';
import type { DeploySettings } from './settings.ts';
import { inShare, shardLabel, shardOf } from './shard.ts';
import { formatBytes } from './size.ts';

/** Where the deploy writes; each line is made safe by the front end. */
export interface DeployLog {
  info(line: string): void;
  warning(line: string): void;
  /** An error a person must act on (an annotation in the action); at most a few per run. */
  error(line: string): void;
  /** Details shown only when asked for (the action's debug log). */
  debug(line: string): void;
}

export interface DeployOptions {
  settings: DeploySettings;
  credentials: Credentials | CredentialsProvider;
  /** Relative patterns start here; summary paths are shown relative to it. */
  cwd: string;
  /** Files must resolve inside this dir (the action's workspace). */
  workspace?: string | undefined;
  /** Absolute. */
  checkpointDir: string;
  log: DeployLog;
  signal?: AbortSignal | undefined;
  ledger?: FileLedger | undefined;
  /** The engine; the entries' pending-work guard is tested with one that never settles. */
  upload?: typeof uploadFiles | undefined;
  onProgress?: ((e: ProgressEvent) => void) | undefined;
  onFileDone?: ((o: UploadOutcome) => void) | undefined;
  /** Called with the files before anything is sent (the action restores checkpoints from its cache here). */
  onFiles?: ((files: readonly FoundFile[]) => Promise<void> | void) | undefined;
  /** Called when no file matched; may throw to fail the run. */
  onNoFiles: (patterns: readonly string[]) => void;
}

export interface DeployReport {
  files: FoundFile[];
  rows: SummaryRow[];
  totals: Totals;
  cleanup: CleanupResult;
  /** One line per failed file. */
  failures: string[];
  /** Set when an error no retry can fix stopped the run: what happened and what to check. */
  fatal?: string | undefined;
  dryRun: boolean;
  /** Requests were not sent for these files (the run stopped first, or they were held back). */
  notAttempted: number;
  /** `publish-last` files not sent because an earlier file failed. */
  heldBack: string[];
  /** The CDN refresh, when one was asked for and the deploy got that far. */
  cdn?: CdnRefreshReport | undefined;
}

/** Codes that will answer every request the same way: the run stops at the first one. */
const FATAL_HINTS: Record<string, string> = {
  SignatureDoesNotMatch:
    'check the AccessKey secret (and that `signature-version` and `region` match the bucket)',
  InvalidAccessKeyId: 'check the AccessKey id: it may be mistyped, deleted or disabled',
  InvalidSecurityToken: 'check the STS security token: it may be mistyped or expired',
  AccessDenied:
    'check the RAM policy of these credentials: it must allow oss:PutObject (and oss:ListObjects, oss:GetObject for skip-unchanged) on this bucket and destination, and the bucket must be in the region of the endpoint',
  NoSuchBucket: 'check the bucket name and the region or endpoint it lives in',
};

/** The OSS code of an error, or of the error it wraps. */
function codeOf(e: unknown): string | undefined {
  if (isOssError(e)) return e.code;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The one message of a stopped run (the front end shows it once): what was refused and what to check. */
function fatalText(e: unknown): string {
  return `${describeError(e)}; stopped at the first such answer (every other request would get it too): ${fatalHint(e)!}`;
}

export function fatalHint(e: unknown): string | undefined {
  const code = codeOf(e);
  return code === undefined ? undefined : FATAL_HINTS[code];
}

/** Why a checkpoint dir cannot be used, checked before anything is sent; undefined when it can. */
async function checkCheckpointDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
    await access(dir, constants.W_OK);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new SettingError(
      INPUT.checkpointDir,
      `${ref(INPUT.checkpointDir, true)}: got \`${escapeText(dir)}\`, which cannot be used as a directory (${reason}); allowed a writable directory (created when missing), or turn checkpoints off with ${ref(INPUT.enableCheckpoint)}`,
      { value: dir, allowed: 'a writable directory' },
    );
  }
}

/** The longest prefix every key shares: the narrowest listing that still sees each of them. */
export function commonKeyPrefix(keys: readonly string[]): string {
  if (keys.length === 0) return '';
  let prefix = keys[0]!;
  for (const k of keys) {
    let i = 0;
    while (i < prefix.length && i < k.length && prefix[i] === k[i]) i++;
    prefix = prefix.slice(0, i);
  }
  // keys that share only the first half of a character (😀, 😁) share no more than what precedes it: half a
  // surrogate pair is no prefix a server can be asked for
  const last = prefix.charCodeAt(prefix.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? prefix.slice(0, -1) : prefix;
}

/**
 * A limiter that lets one request through alone until one is answered with anything but a refusal of the
 * credentials or the bucket (`refused`, by default the codes that stop a run): a run with wrong credentials
 * then learns so from one answer instead of a full window of them. Opening on the first answer, whatever it
 * was, is not enough: the requests waiting behind a refused one would be written before the refusal stops the
 * run, and on connections opened ahead of time they are written at once. Any other answer opens the window,
 * a failure too (a 404 to a HEAD, a 503): it proves the credentials, or at least proves nothing against them,
 * and keeping the window shut would send every file alone.
 */
export function probingLimiter(
  inner: Limiter,
  refused: (e: unknown) => boolean = (e) => fatalHint(e) !== undefined,
): Limiter {
  let open = false;
  /** The request in flight alone; settles (never rejects) once it has been answered. */
  let probe: Promise<void> | undefined;
  return {
    limit: inner.limit,
    get active() {
      return inner.active;
    },
    async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
      while (!open) {
        if (!probe) {
          const first = inner.run(fn, signal);
          probe = first.then(
            () => {
              open = true;
            },
            (e: unknown) => {
              if (refused(e)) probe = undefined;
              else open = true;
            },
          );
          return first;
        }
        await probe;
        signal?.throwIfAborted();
      }
      return inner.run(fn, signal);
    },
  };
}

type Plan = 'new' | 'changed' | 'same size' | 'unknown';

export async function deploy(o: DeployOptions): Promise<DeployReport> {
  const s = o.settings;
  const stopper = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stopper.signal]) : stopper.signal;
  /** Stops a listing no one will wait for, when the step ends before it (a failed cache restore, say). */
  const listingStop = new AbortController();
  const client = new OssClient({
    ...clientOptions(s, o.credentials),
    onRetry: ({ operation, attempt, delayMs, error }) =>
      o.log.info(`retrying ${operation} (attempt ${attempt + 1}) in ${delayMs} ms after ${error.code}`),
  });
  // connections open while the files are searched, in proportion to the files this step will send: their
  // handshakes (a round trip each, more with TLS) overlap the search and the listing, not the first requests
  const share = s.shard?.kind === 'upload' ? s.shard.count : 1;
  let warmed = 0;
  // a dry run sends its listing, and only then a HEAD for each file of the same size as its object
  const most = s.dryRun ? 1 : s.maxInFlight;
  const warm = (requests: number): void => {
    const want = Math.min(most, requests);
    if (want <= warmed) return;
    warmed = want;
    client.preconnect(s.bucket, want);
  };
  warm(1);
  const listingSignal = AbortSignal.any([signal, listingStop.signal]);
  // checked before the search queues its thousands of stat calls ahead of it; a dir found wrong stops the run
  // only when there are files to send, below
  const dirChecked =
    s.enableCheckpoint && !s.dryRun ? checkCheckpointDir(o.checkpointDir) : Promise.resolve();
  dirChecked.catch(() => undefined);
  let firstPage: FirstPage | undefined;
  const onFirstMatch = (): void => {
    // the destination's first page goes while the search runs on, once a file is found and no setting is
    // wrong: up to 1,000 objects are then listed a round trip before the plan could ask for ranges
    if (mayNeedListing(s))
      firstPage = new FirstPage(client, {
        bucket: s.bucket,
        prefix: destinationPrefix(s.destination),
        signal: listingSignal,
        ready: dirChecked,
      });
  };
  try {
    const found = await findFiles({
      patterns: s.patterns,
      destination: s.destination,
      includeHiddenFiles: s.includeHiddenFiles,
      contentType: s.contentType,
      cwd: o.cwd,
      workspace: o.workspace,
      checkpointDir: o.checkpointDir,
      onNotice: (m) => o.log.info(m),
      onMatched: (matched) => {
        if (matched === 1) onFirstMatch();
        warm(Math.ceil(matched / share));
      },
    });
    const { send: files, verify, last } = stepFiles(found, s);
    // a large file starts with `thread-num` parts at once: their connections open during the listing too
    warm(verify.length + files.reduce((n, f) => n + openingRequests(f.size, s), 0));
    const planned = [...verify, ...files];
    const ledger = o.ledger ?? new FileLedger();
    ledger.plan(files.map((f) => f.key));
    // a setting found wrong here stops the run before it sends anything
    if (files.length > 0) await dirChecked;
    // the listing runs while the plan is logged and checkpoints are restored (from the Actions cache, in the
    // action): neither needs it, and a cache restore alone can take longer than the listing
    const listed = needsListing(s, planned, verify)
      ? listDestination(o, client, planned, found, listingSignal, firstPage)
      : undefined;
    const empty: DeployReport = {
      files,
      rows: [],
      totals: totals([], () => ''),
      cleanup: NO_CLEANUP,
      failures: [],
      dryRun: s.dryRun,
      notAttempted: 0,
      heldBack: [],
    };
    if (found.length === 0) o.onNoFiles(s.patterns);
    else {
      o.log.info(
        `${s.dryRun ? 'dry run: nothing is changed; ' : ''}${planLine(found.length, files, verify, last.size, s)}`,
      );
      for (const line of idlePatterns(found, s)) o.log.warning(line);
      if (files.length > 0) await o.onFiles?.(files);
    }

    const answer = await listed;
    if (answer && 'error' in answer) throw answer.error;
    if (answer?.fatal !== undefined) return { ...empty, fatal: answer.fatal, notAttempted: files.length };
    if (answer?.warning !== undefined) o.log.warning(answer.warning);
    const listing = answer?.listing;
    const stored = new Map(listing?.map((x) => [x.key, x.size]));
    const planOf = (f: FoundFile): Plan => {
      if (!listing) return 'unknown';
      const size = stored.get(f.key);
      return size === undefined ? 'new' : size === f.size ? 'same size' : 'changed';
    };
    const inner = createLimiter(s.maxInFlight);
    const limiter = listing ? inner : probingLimiter(inner);

    const checked =
      verify.length > 0 ? await verifyStored(o, client, limiter, verify, planOf, signal) : undefined;
    if (checked && checked.problems.length > 0) {
      const text = unverifiedText(checked.problems, verify.length, files.length, s.dryRun);
      if (!s.dryRun) {
        // a shard that did not finish may still be resumed: nothing it needs is deleted or aborted
        ledger.holdBack(files.map((f) => f.key));
        return {
          ...withVerified(empty, checked, client, s.bucket),
          files: planned,
          fatal: text,
          notAttempted: files.length,
          heldBack: files.map((f) => f.key),
        };
      }
      o.log.warning(text);
    }
    // the rules make each file's headers; the engine compares them for skip-unchanged
    const items = uploadItems(files, s.rules);
    const sent = s.dryRun
      ? await dryRun(o, client, limiter, files, items, planOf, signal)
      : await execute(o, client, limiter, files, items, last, planOf, signal, stopper, ledger);
    const report = checked ? { ...withVerified(sent, checked, client, s.bucket), files: planned } : sent;
    if (report.fatal) return report;
    const deployed = report.totals.failed === 0 ? planned.map((f) => f.key) : undefined;
    const cleanup =
      s.deleteOrphans || s.abortStaleUploadsMs !== undefined
        ? await cleanUp({
            client,
            inputs: s,
            deployed,
            listing: s.deleteOrphans ? listing : undefined,
            checkpointDir: o.checkpointDir,
            log: o.log,
            signal: o.signal,
          })
        : NO_CLEANUP;
    const complete = report.totals.failed === 0 && report.heldBack.length === 0 && planned.length > 0;
    // what this attempt changed at the origin is refreshed even when other files failed: a re-run finds those
    // objects unchanged and would never refresh them (re-running one failed shard is the usual recovery)
    const refreshKeys = [...report.totals.changedKeys, ...cleanup.deletedKeys];
    const cdn =
      s.cdn && refreshKeys.length > 0
        ? await refreshCdn({
            cdn: s.cdn,
            keys: refreshKeys,
            credentials: o.credentials,
            dryRun: s.dryRun,
            log: o.log,
            signal: o.signal,
          })
        : undefined;
    if (s.cdn && !complete && planned.length > 0)
      o.log.warning(
        `${s.cdn.product.toUpperCase()} refresh: only the ${report.totals.changedKeys.length} object(s) changed before the failure were refreshed; the deploy is incomplete`,
      );
    return { ...report, cleanup, cdn };
  } finally {
    listingStop.abort();
    await client.close();
  }
}

/** The requests a file has in flight at first: one PutObject, or its first `thread-num` parts. */
function openingRequests(size: number, s: Pick<DeploySettings, 'partSize' | 'threadNum'>): number {
  try {
    const plan = planParts(size, s.partSize);
    return plan.single ? 1 : Math.min(s.threadNum, plan.partCount);
  } catch {
    // a size no plan can take is the engine's to report, with the file's name
    return 1;
  }
}

/** Whether these settings list the destination whatever the files: to compare, to clean up, to show a dry run. */
function listsAlways(s: DeploySettings): boolean {
  return s.skipUnchanged || s.deleteOrphans || s.dryRun;
}

/** Whether a run of these settings lists its destination once it has files: known before the files are. */
function mayNeedListing(s: DeploySettings): boolean {
  return listsAlways(s) || s.shard?.kind === 'cleanup';
}

/** Whether the plan needs the destination's listing: for the settings, or to check what shards sent. */
function needsListing(
  s: DeploySettings,
  planned: readonly FoundFile[],
  verify: readonly FoundFile[],
): boolean {
  return planned.length > 0 && (listsAlways(s) || verify.length > 0);
}

/**
 * A refusal of the credentials or the bucket, which every request would meet: the run stops. A listing refused
 * as AccessDenied is not one: a policy may allow uploads but not listings, and each same-size question is then
 * asked by HEAD.
 */
function stopsListing(e: unknown): boolean {
  return codeOf(e) !== 'AccessDenied' && fatalHint(e) !== undefined;
}

type ListingAnswer =
  | { listing: ListedObject[]; fatal?: undefined; warning?: undefined }
  /** No listing: every file is checked on its own (`warning`), or the run stops (`fatal`). */
  | { listing?: undefined; fatal?: string; warning?: string }
  /** The run was cancelled: rethrown where the answer is awaited. */
  | { error: unknown };

/**
 * The destination listed under the narrowest prefix that holds every planned key. Never rejects: it runs
 * while other work is awaited, and a rejection no one awaits yet would end the process.
 */
async function listDestination(
  o: DeployOptions,
  client: OssClient,
  planned: readonly FoundFile[],
  found: readonly FoundFile[],
  signal: AbortSignal,
  first: FirstPage | undefined,
): Promise<ListingAnswer> {
  const s = o.settings;
  const prefix = s.deleteOrphans
    ? destinationPrefix(s.destination)
    : commonKeyPrefix(planned.map((f) => f.key));
  try {
    const listing = await listInRanges(client, {
      bucket: s.bucket,
      prefix,
      // a shard's own keys are spread over the whole tree's: cut at those of the whole tree
      keys: found.map((f) => f.key),
      signal,
      first,
      // no range asks again to be refused; the first page's AccessDenied may be of its wider prefix only
      final: stopsListing,
    });
    o.log.debug(`listed ${listing.length} object(s) under oss://${s.bucket}/${prefix}`);
    return { listing };
  } catch (e) {
    if (o.signal?.aborted) return { error: o.signal.reason };
    if (stopsListing(e)) return { fatal: fatalText(e) };
    return {
      warning: `could not list oss://${s.bucket}/${prefix} (${describeError(e)}); checking each file on its own instead`,
    };
  }
}

/**
 * A warning for each `rules` pattern and each `publish-last` line (but for the default) that matches none of
 * the files found: a typo, or a pattern written for another tree, would otherwise do nothing in silence. Not
 * refused, since one set of rules often serves builds that do not all hold every kind of file.
 */
export function idlePatterns(
  found: readonly FoundFile[],
  s: Pick<DeploySettings, 'rules' | 'publishLast'>,
): string[] {
  const idle = (pattern: string): boolean => !found.some((f) => matchesRelative(f.rel, pattern));
  const lines = s.rules
    .filter((r) => idle(r.glob))
    .map(
      (r) =>
        `${INPUT.rules}: rule ${r.index} (\`${escapeText(r.glob)}\`) matched no file, so it sets no header this run; patterns match the path relative to the common root, such as \`${escapeText(found[0]!.rel)}\``,
    );
  const byDefault = s.publishLast.join('\n') === DEFAULTS[INPUT.publishLast];
  if (!byDefault)
    s.publishLast.forEach((p, i) => {
      if (idle(p))
        lines.push(
          `${INPUT.publishLast}: line ${i + 1} (\`${escapeText(p)}\`) matched no file; patterns match the path relative to the common root, such as \`${escapeText(found[0]!.rel)}\``,
        );
    });
  return lines;
}

/**
 * Which of the files found this step sends, and which it only checks. Without sharding it sends them all; an
 * upload shard sends its share but for the files published last; the cleanup step checks what the shards sent,
 * then sends the files published last. `last` holds the files found that are published last, for the run to
 * order its sending by without matching the patterns again.
 */
export function stepFiles(
  found: readonly FoundFile[],
  s: Pick<DeploySettings, 'shard' | 'publishLast'>,
): { send: FoundFile[]; verify: FoundFile[]; last: ReadonlySet<FoundFile> } {
  const shard = s.shard;
  // each file is matched once: the patterns are globs, and a tree holds thousands of files
  const last: ReadonlySet<FoundFile> = new Set(found.filter((f) => publishedLast(f, s.publishLast)));
  if (!shard) return { send: [...found], verify: [], last };
  if (shard.kind === 'upload')
    return { send: found.filter((f) => !last.has(f) && inShare(f.key, shard)), verify: [], last };
  return { send: found.filter((f) => last.has(f)), verify: found.filter((f) => !last.has(f)), last };
}

const bytesOf = (files: readonly FoundFile[]): string => formatBytes(files.reduce((n, f) => n + f.size, 0));

/** The first line of a run: how many files, how big, where; for a shard, its share of the plan. */
function planLine(
  foundCount: number,
  send: readonly FoundFile[],
  verify: readonly FoundFile[],
  lastCount: number,
  s: DeploySettings,
): string {
  const where = `to oss://${s.bucket}/${s.destination}`;
  const shard = s.shard;
  if (!shard) return `${send.length} file(s), ${bytesOf(send)}, ${where}`;
  const label = shardLabel(shard);
  if (shard.kind === 'cleanup')
    return `${label}: verifying the ${verify.length} file(s) the shards upload, then sending the ${send.length} file(s) published last (${bytesOf(send)}), ${where}`;
  return `${label}: ${send.length} of ${foundCount} file(s), ${bytesOf(send)}, ${where}${lastCount > 0 ? `; the ${lastCount} file(s) published last are sent by the cleanup step` : ''}`;
}

interface Verified {
  rows: SummaryRow[];
  keys: string[];
  /** `key (missing, shard 3/4)`, one per file not stored as planned. */
  problems: string[];
}

/** Runs `work` on each of `items` with at most `limit` at once: local hashing is bounded as requests are. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, i: number) => Promise<void>,
) {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * What a real run would do with one file, by the same comparison the upload makes: the dry run reports it,
 * the cleanup step's check requires it to be nothing.
 */
function compareWithStored(
  s: DeploySettings,
  client: OssClient,
  limiter: Limiter,
  f: FoundFile,
  item: UploadItem,
  signal: AbortSignal,
): ReturnType<typeof decideOnly> {
  return decideOnly({
    client,
    limiter,
    bucket: s.bucket,
    key: f.key,
    file: f.file,
    size: f.size,
    headers: { ...s.headers, ...item.headers },
    signal,
  });
}

/**
 * The cleanup step's check that every shard finished: each key stored with its size, CRC-64 and headers, by
 * the same comparison as the dry run. Read only; the listing answers for missing and resized keys.
 */
async function verifyStored(
  o: DeployOptions,
  client: OssClient,
  limiter: Limiter,
  files: readonly FoundFile[],
  planOf: (f: FoundFile) => Plan,
  signal: AbortSignal,
): Promise<Verified> {
  const s = o.settings;
  const items = uploadItems(files, s.rules);
  const rows = new Array<SummaryRow>(files.length);
  const problems: string[] = [];
  const ok = new Array<boolean>(files.length).fill(false);
  const count = s.shard?.count;
  await eachLimited(files, s.maxInFlight, async (f, i) => {
    let problem: string | undefined;
    const p = planOf(f);
    if (p === 'new') problem = 'missing';
    else if (p === 'changed') problem = 'different size';
    else {
      try {
        const d = await compareWithStored(s, client, limiter, f, items[i]!, signal);
        if (d === 'upload') problem = p === 'unknown' ? 'missing or different bytes' : 'different bytes';
        else if (d === 'update headers') problem = 'different headers';
        else if (d === 'unverifiable')
          problem =
            'stored without a CRC-64, so it cannot be verified; re-running the shard will not help: check for a gateway or proxy that drops x-oss-hash-crc64ecma';
      } catch (e) {
        signal.throwIfAborted();
        problem = `not checked: ${describeError(e)}`;
      }
    }
    if (problem === undefined) ok[i] = true;
    else
      problems.push(
        `${f.key} (${problem}${count === undefined ? '' : `, shard ${shardOf(f.key, count)}/${count}`})`,
      );
    rows[i] = {
      file: f.file,
      key: f.key,
      size: f.size,
      result: problem === undefined ? 'verified' : `not verified: ${problem}`,
    };
  });
  if (problems.length === 0)
    o.log.info(`verified ${files.length} file(s): stored with their size, CRC-64 and headers`);
  // in plan order, whatever order the checks answered in
  return { rows, keys: files.filter((_, i) => ok[i]).map((f) => f.key), problems: problems.sort() };
}

/** Why the cleanup step stops before changing anything. */
function unverifiedText(problems: readonly string[], total: number, last: number, dryRun: boolean): string {
  const shown = problems.slice(0, 10).join(', ');
  const more = problems.length > 10 ? `, and ${problems.length - 10} more` : '';
  const outcome = dryRun
    ? 'the real cleanup step would stop here, deleting nothing'
    : `nothing was deleted or aborted, and the ${last} file(s) published last were not sent`;
  return `verification before cleanup: ${problems.length} of ${total} key(s) are not stored as planned: ${shown}${more}; a shard did not finish (re-run it, then this job) or the shards saw a different tree; ${outcome}`;
}

/** The report with the verified keys in it: they are what this step stands behind, beside what it sent. */
function withVerified(report: DeployReport, v: Verified, client: OssClient, bucket: string): DeployReport {
  const t = report.totals;
  return {
    ...report,
    rows: [...v.rows, ...report.rows],
    totals: {
      ...t,
      verified: v.keys.length,
      keys: [...v.keys, ...t.keys],
      urls: [...v.keys.map((k) => client.objectUrl(bucket, k)), ...t.urls],
    },
  };
}

/** Whether `f` is one of the files sent only after every other one is stored. */
function publishedLast(f: FoundFile, patterns: readonly string[]): boolean {
  return patterns.some((p) => matchesRelative(f.rel, p));
}

async function execute(
  o: DeployOptions,
  client: OssClient,
  limiter: Limiter,
  files: readonly FoundFile[],
  items: readonly UploadItem[],
  /** The files found that go up only after every other one is stored (from stepFiles). */
  publishLast: ReadonlySet<FoundFile>,
  planOf: (f: FoundFile) => Plan,
  signal: AbortSignal,
  stopper: AbortController,
  ledger: FileLedger,
): Promise<DeployReport> {
  const s = o.settings;
  const done = new Map<string, UploadOutcome>();
  let fatal: string | undefined;
  let failed = 0;
  let annotated = 0;
  const ANNOTATIONS = 10;
  const onFileDone = (out: UploadOutcome): void => {
    done.set(out.item.key, out);
    ledger.settle(out);
    o.onFileDone?.(out);
    if (out.ok) {
      o.log.info(resultLine(out.result));
      o.log.debug(detailsOf(out));
      return;
    }
    failed++;
    // after a cancel or a stop, every file fails with the same reason; it is said once
    if (signal.aborted) return;
    if (fatalHint(out.error)) {
      fatal = fatalText(out.error);
      stopper.abort(new Error(fatal));
      return;
    }
    const line = `failed ${out.item.key}: ${describeError(out.error)}`;
    if (annotated++ < ANNOTATIONS) o.log.error(line);
    else o.log.info(line);
  };
  const shared = {
    client,
    ...uploadSettings(s, o.checkpointDir),
    limiter,
    signal,
    onProgress: o.onProgress,
    onNotice: (m: string) => o.log.info(m),
    onFileDone,
  };
  const upload = o.upload ?? uploadFiles;
  /** One phase: new and resized files are sent at once, same-size ones checked first. */
  const send = async (indexes: readonly number[]): Promise<void> => {
    const check: UploadItem[] = [];
    const direct: UploadItem[] = [];
    for (const i of indexes) {
      const p = planOf(files[i]!);
      (s.skipUnchanged && (p === 'same size' || p === 'unknown') ? check : direct).push(items[i]!);
    }
    const answered = await Promise.all([
      direct.length > 0 ? upload(direct, { ...shared, skipUnchanged: false }) : [],
      check.length > 0 ? upload(check, { ...shared, skipUnchanged: true }) : [],
    ]);
    // the engine answers for every item, reported or not
    for (const out of answered.flat()) if (!done.has(out.item.key)) onFileDone(out);
  };
  const all = files.map((_, i) => i);
  const last = all.filter((i) => publishLast.has(files[i]!));
  const first = all.filter((i) => !publishLast.has(files[i]!));
  let heldBack: string[] = [];
  try {
    await send(first);
    if (last.length > 0) {
      if (failed === 0 && fatal === undefined) {
        if (first.length > 0)
          o.log.info(`every other file is stored; now the ${last.length} file(s) published last`);
        await send(last);
      } else {
        // the stored pages keep pointing at assets that are still there
        heldBack = last.map((i) => files[i]!.key);
        ledger.holdBack(heldBack);
        o.log.warning(
          `publish-last: ${heldBack.length} file(s) not sent because an earlier file failed; the pages already stored still point at assets that exist`,
        );
      }
    }
  } catch (e) {
    // a cancel by the user ends the run here; a stop for a fatal error is reported below
    if (fatal === undefined) throw e;
  }
  const outcomes = files.map((f) => done.get(f.key)).filter((x): x is UploadOutcome => x !== undefined);
  if (fatal === undefined) ledger.assertSettled();
  const t = totals(outcomes, (key) => client.objectUrl(s.bucket, key));
  const held = new Set(heldBack);
  return {
    files: [...files],
    rows: [
      ...outcomes.map((out) => rowOf(out)),
      ...files
        .filter((f) => held.has(f.key))
        .map((f) => ({
          file: f.file,
          key: f.key,
          size: f.size,
          result: 'held back (an earlier file failed)',
        })),
    ],
    totals: t,
    cleanup: NO_CLEANUP,
    failures: outcomes.filter((x) => !x.ok).map((x) => describeError((x as { error: unknown }).error)),
    fatal,
    dryRun: false,
    notAttempted: files.length - outcomes.length,
    heldBack,
  };
}

function rowOf(out: UploadOutcome): SummaryRow {
  if (!out.ok) return { file: out.item.file, key: out.item.key, size: 0, result: 'failed' };
  const r = out.result;
  const state = finalState(out);
  return {
    file: out.item.file,
    key: r.key,
    size: r.size,
    result: state === 'uploaded' ? `uploaded (${r.verified})` : state,
    seconds: r.seconds,
    resumed: r.bytesResumed,
  };
}

/** The per-file details a person needs only when something is being investigated. */
function detailsOf(out: Extract<UploadOutcome, { ok: true }>): string {
  const r = out.result;
  const how = r.multipart
    ? `multipart upload ${r.uploadId ?? ''}: ${r.parts} parts of ${formatBytes(r.partSize)}, ${r.partsSent} sent now${r.partSizeAdjustedFrom ? ` (grown from ${formatBytes(r.partSizeAdjustedFrom)})` : ''}`
    : 'single PutObject';
  return `${r.key}: file ${r.file}; ${how}; ${formatBytes(r.bytesSent)} sent, ${formatBytes(r.bytesResumed)} resumed; ETag ${r.etag}, CRC-64 ${r.crc64}`;
}

/** The plan without its action: what a real run would send, update, leave and delete. */
async function dryRun(
  o: DeployOptions,
  client: OssClient,
  limiter: Limiter,
  files: readonly FoundFile[],
  items: readonly UploadItem[],
  planOf: (f: FoundFile) => Plan,
  signal: AbortSignal,
): Promise<DeployReport> {
  const s = o.settings;
  const rows: SummaryRow[] = new Array<SummaryRow>(files.length);
  const failures: string[] = [];
  await eachLimited(files, s.maxInFlight, async (f, i) => {
    const p = planOf(f);
    let result: string;
    let problem: string | undefined;
    if (!s.skipUnchanged) result = 'would upload';
    else if (p === 'new') result = 'would upload (new)';
    else if (p === 'changed') result = 'would upload (changed size)';
    else {
      try {
        const d = await compareWithStored(s, client, limiter, f, items[i]!, signal);
        result =
          d === 'upload'
            ? 'would upload (changed bytes)'
            : d === 'unverifiable'
              ? 'would upload (the stored object has no CRC-64 to compare)'
              : d === 'update headers'
                ? 'would update headers'
                : 'unchanged';
      } catch (e) {
        signal.throwIfAborted();
        result = NOT_CHECKED;
        problem = describeError(e);
        failures.push(`${f.key}: ${problem}`);
      }
    }
    rows[i] = { file: f.file, key: f.key, size: f.size, result };
    if (problem !== undefined) o.log.warning(`dry run: ${f.key} ${result}: ${problem}`);
    else
      o.log.info(
        `${result === 'unchanged' ? 'unchanged' : `dry run: ${result}`} ${f.key} (${formatBytes(f.size)})`,
      );
  });
  const count = (test: (r: string) => boolean): number => rows.filter((r) => test(r.result)).length;
  const keys = files.map((f) => f.key);
  return {
    files: [...files],
    rows,
    totals: {
      uploaded: count((r) => r.startsWith('would upload')),
      skipped: count((r) => r === 'unchanged'),
      updated: count((r) => r === 'would update headers'),
      verified: 0,
      failed: failures.length,
      bytesUploaded: 0,
      bytesResumed: 0,
      keys,
      urls: keys.map((k) => client.objectUrl(s.bucket, k)),
      changedKeys: rows.filter((r) => r.result.startsWith('would')).map((r) => r.key),
    },
    cleanup: NO_CLEANUP,
    failures,
    dryRun: true,
    notAttempted: 0,
    heldBack: [],
  };
}
