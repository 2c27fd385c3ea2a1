/**
 * After the uploads: delete orphans (objects under `destination` this deploy does not contain) and abort stale
 * multipart uploads. Shared by the action and the command line; `dry-run` lists and changes nothing.
 */
import {
  type StaleUpload,
  abortUploads,
  checkpointedUploadIds,
  deleteOrphans,
  findStaleUploads,
} from '../engine/index.ts';
import type { OssClient } from '../oss/index.ts';
import { formatDuration } from './duration.ts';
import { describeError } from './describe.ts';
import type { DeploySettings } from './settings.ts';

export interface CleanupResult {
  /** Orphans found old enough to go: deleted, or with dry-run only listed. */
  orphans: string[];
  deleted: number;
  /** The keys deleted now; with dry-run, the ones that would be. */
  deletedKeys: string[];
  /** Orphans kept because they are younger than `delete-orphans-min-age`, or their age is not known. */
  keptForAge: string[];
  /** Stale uploads found: aborted (but for `abortFailures`), or with dry-run only listed. */
  stale: StaleUpload[];
  aborted: number;
  abortFailures: Array<{ upload: StaleUpload; error: unknown }>;
  dryRun: boolean;
  /** Why orphans were not looked for, when delete-orphans is on. */
  orphansSkipped?: string;
  /** What failed; the rest of the result is what was done before or beside it. */
  error?: Error;
}

export const NO_CLEANUP: CleanupResult = {
  orphans: [],
  deleted: 0,
  deletedKeys: [],
  keptForAge: [],
  stale: [],
  aborted: 0,
  abortFailures: [],
  dryRun: false,
};

/** `site` and `site/` both mean the keys under `site/`; '' is the whole bucket. */
export function destinationPrefix(destination: string): string {
  const trimmed = destination.replace(/\/+$/, '');
  return trimmed ? `${trimmed}/` : '';
}

export interface CleanupLog {
  info: (m: string) => void;
  warning: (m: string) => void;
}

/** An object of the destination's listing. */
export interface ListedObject {
  key: string;
  size: number;
  /** On the server's clock; undefined when the listing gave no valid date (the age is then unknown). */
  lastModified: Date | undefined;
}

interface CleanupRun {
  client: OssClient;
  /**
   * The destination as listed before the uploads. Without a grace period orphans are found in it without a
   * second listing; with one, ages are read from a listing taken now, since an object rewritten during the
   * deploy is young whatever the first listing said.
   */
  listing?: readonly ListedObject[] | undefined;
  inputs: DeploySettings;
  /** Every key of this deploy, uploaded now or unchanged; undefined when an upload failed. */
  deployed: readonly string[] | undefined;
  checkpointDir: string;
  log: CleanupLog;
  signal?: AbortSignal | undefined;
}

/**
 * Both cleanups, each on its own: a refused listing of uploads does not stop the orphans, and what was done
 * before a failure is still reported. Failures land in `result.error`; a cancel throws.
 */
export async function cleanUp(o: CleanupRun): Promise<CleanupResult> {
  const result: CleanupResult = { ...NO_CLEANUP, dryRun: o.inputs.dryRun };
  const errors: string[] = [];
  const attempt = async (what: string, step: () => Promise<void>): Promise<void> => {
    try {
      await step();
    } catch (e) {
      if (o.signal?.aborted) throw e;
      errors.push(`${what}: ${describeError(e)}`);
    }
  };
  if (o.inputs.abortStaleUploadsMs !== undefined)
    await attempt('abort-stale-uploads', () => abortStale(o, o.inputs.abortStaleUploadsMs!, result));
  if (o.inputs.deleteOrphans) await attempt('delete-orphans', () => removeOrphans(o, result));
  if (errors.length > 0) result.error = new Error(`cleanup after the upload failed: ${errors.join('; ')}`);
  return result;
}

function where(inputs: DeploySettings): string {
  return `oss://${inputs.bucket}/${destinationPrefix(inputs.destination)}`;
}

function would(inputs: DeploySettings): string {
  return inputs.dryRun ? 'dry run: would ' : '';
}

async function abortStale(o: CleanupRun, olderThanMs: number, result: CleanupResult): Promise<void> {
  const { client, inputs, log } = o;
  const owned = inputs.enableCheckpoint
    ? await checkpointedUploadIds(o.checkpointDir, inputs.bucket)
    : new Set<string>();
  result.stale = await findStaleUploads({
    client,
    bucket: inputs.bucket,
    prefix: destinationPrefix(inputs.destination),
    olderThanMs,
    owned,
    signal: o.signal,
    onNotice: (m) => log.warning(`abort-stale-uploads: ${m}`),
  });
  for (const u of result.stale)
    log.info(
      `${would(inputs)}abort stale upload ${u.key} (${u.uploadId}, started ${u.initiated.toISOString()})`,
    );
  if (!inputs.dryRun && result.stale.length > 0) {
    result.abortFailures = await abortUploads({
      client,
      bucket: inputs.bucket,
      uploads: result.stale,
      threadNum: inputs.maxInFlight,
      signal: o.signal,
    });
    result.aborted = result.stale.length - result.abortFailures.length;
    for (const f of result.abortFailures)
      log.warning(
        `could not abort stale upload ${f.upload.key} (${f.upload.uploadId}): ${describeError(f.error)}`,
      );
  }
  log.info(
    `${result.stale.length} unfinished upload(s) under ${where(inputs)} older than ${formatDuration(olderThanMs)}${inputs.dryRun ? ' (dry run: none aborted)' : `, ${result.aborted} aborted`}`,
  );
}

async function removeOrphans(o: CleanupRun, result: CleanupResult): Promise<void> {
  const { client, inputs, log, deployed } = o;
  if (!deployed || deployed.length === 0) {
    result.orphansSkipped = deployed
      ? 'no files were found, and an empty deploy would delete everything'
      : 'an upload failed, so the deploy is incomplete';
    log.warning(`delete-orphans: nothing deleted under ${where(inputs)}: ${result.orphansSkipped}`);
    return;
  }
  const keep = new Set(deployed);
  const prefix = destinationPrefix(inputs.destination);
  const minAge = inputs.deleteOrphansMinAgeMs;
  const listing =
    minAge === 0 && o.listing
      ? o.listing
      : await client.listObjects({ bucket: inputs.bucket, prefix, signal: o.signal });
  const candidates = listing
    // zero-byte keys ending in `/` are folder placeholders: nothing a deploy could have replaced
    .filter((x) => x.key.startsWith(prefix) && !keep.has(x.key) && !(x.key.endsWith('/') && x.size === 0))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const { kept, unknown, why } = byAge(candidates, minAge, client);
  result.keptForAge = [...kept, ...unknown];
  const held = new Set(result.keptForAge);
  result.orphans = candidates.map((x) => x.key).filter((k) => !held.has(k));
  for (const key of result.orphans) log.info(`${would(inputs)}delete orphan ${key}`);
  if (kept.length > 0)
    log.info(
      `kept ${kept.length} orphan(s) younger than ${formatDuration(minAge)} (delete-orphans-min-age): visitors holding older pages may still fetch them`,
    );
  if (unknown.length > 0)
    log.warning(
      `delete-orphans: kept ${unknown.length} orphan(s) whose age is not known (${why}), since they may be younger than ${formatDuration(minAge)} (delete-orphans-min-age): ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? `, and ${unknown.length - 10} more` : ''}`,
    );
  if (inputs.dryRun) result.deletedKeys = [...result.orphans];
  else {
    result.deletedKeys = await deleteOrphans({
      client,
      bucket: inputs.bucket,
      keys: result.orphans,
      signal: o.signal,
    });
    result.deleted = result.deletedKeys.length;
  }
  log.info(
    `${result.orphans.length} orphan(s) under ${where(inputs)}${inputs.dryRun ? ' (dry run: none deleted)' : `, ${result.deleted} deleted`}`,
  );
}

/**
 * The orphans a grace period keeps: `kept` are younger than it, `unknown` have no age to compare (no valid
 * LastModified, or a server clock not believed), and `why` says which. Ages are on the server's clock:
 * LastModified is its time, and the runner's clock may be off.
 */
function byAge(
  candidates: readonly ListedObject[],
  minAge: number,
  client: OssClient,
): { kept: string[]; unknown: string[]; why: string } {
  if (minAge === 0) return { kept: [], unknown: [], why: '' };
  const doubt = client.serverClockDoubt();
  if (doubt !== undefined) return { kept: [], unknown: candidates.map((x) => x.key), why: doubt };
  const now = client.serverNow();
  const kept: string[] = [];
  const unknown: string[] = [];
  for (const x of candidates) {
    if (x.lastModified === undefined) unknown.push(x.key);
    else if (now - x.lastModified.getTime() < minAge) kept.push(x.key);
  }
  return { kept, unknown, why: 'listed without a valid LastModified' };
}
