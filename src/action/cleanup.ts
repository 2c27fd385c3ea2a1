/**
 * After the uploads: delete orphans (objects under `destination` this deploy does not contain) and abort stale
 * multipart uploads. Shared by the action and the command line; `dry-run` lists and changes nothing.
 */
import {
  type StaleUpload,
  abortUploads,
  checkpointedUploadIds,
  deleteOrphans,
  findOrphans,
  findStaleUploads,
} from '../engine/index.ts';
import type { OssClient } from '../oss/index.ts';
import { formatDuration } from './duration.ts';
import { describeError } from './report.ts';
import type { ActionInputs } from './inputs.ts';

export interface CleanupResult {
  /** Orphans found: deleted, or with dry-run only listed. */
  orphans: string[];
  deleted: number;
  /** Stale uploads found: aborted (but for `abortFailures`), or with dry-run only listed. */
  stale: StaleUpload[];
  aborted: number;
  abortFailures: Array<{ upload: StaleUpload; error: unknown }>;
  dryRun: boolean;
  /** Why orphans were not looked for, when delete-orphans is on. */
  orphansSkipped?: string;
}

export const NO_CLEANUP: CleanupResult = {
  orphans: [],
  deleted: 0,
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

export async function cleanUp(o: {
  client: OssClient;
  inputs: ActionInputs;
  /** Every key of this deploy, uploaded now or unchanged; undefined when an upload failed. */
  deployed: readonly string[] | undefined;
  checkpointDir: string;
  log: CleanupLog;
  signal?: AbortSignal | undefined;
}): Promise<CleanupResult> {
  const { client, inputs, log } = o;
  const prefix = destinationPrefix(inputs.destination);
  const where = `oss://${inputs.bucket}/${prefix}`;
  const result: CleanupResult = { ...NO_CLEANUP, dryRun: inputs.dryRun };
  const would = inputs.dryRun ? 'dry run: would ' : '';

  if (inputs.abortStaleUploadsMs !== undefined) {
    const owned = inputs.enableCheckpoint
      ? await checkpointedUploadIds(o.checkpointDir, inputs.bucket)
      : new Set<string>();
    result.stale = await findStaleUploads({
      client,
      bucket: inputs.bucket,
      prefix,
      olderThanMs: inputs.abortStaleUploadsMs,
      owned,
      signal: o.signal,
    });
    const age = formatDuration(inputs.abortStaleUploadsMs);
    for (const u of result.stale)
      log.info(`${would}abort stale upload ${u.key} (${u.uploadId}, started ${u.initiated.toISOString()})`);
    if (!inputs.dryRun && result.stale.length > 0) {
      result.abortFailures = await abortUploads({
        client,
        bucket: inputs.bucket,
        uploads: result.stale,
        threadNum: inputs.threadNum,
        signal: o.signal,
      });
      result.aborted = result.stale.length - result.abortFailures.length;
      for (const f of result.abortFailures)
        log.warning(
          `could not abort stale upload ${f.upload.key} (${f.upload.uploadId}): ${describeError(f.error)}`,
        );
    }
    log.info(
      `${result.stale.length} unfinished upload(s) under ${where} older than ${age}${inputs.dryRun ? ' (dry run: none aborted)' : `, ${result.aborted} aborted`}`,
    );
  }

  if (inputs.deleteOrphans) {
    if (o.deployed === undefined) {
      result.orphansSkipped = 'an upload failed, so the deploy is incomplete';
    } else if (o.deployed.length === 0) {
      result.orphansSkipped = 'no files were found, and an empty deploy would delete everything';
    }
    if (result.orphansSkipped) {
      log.warning(`delete-orphans: nothing deleted under ${where}: ${result.orphansSkipped}`);
      return result;
    }
    result.orphans = await findOrphans({
      client,
      bucket: inputs.bucket,
      prefix,
      keep: new Set(o.deployed),
      signal: o.signal,
    });
    for (const key of result.orphans) log.info(`${would}delete orphan ${key}`);
    if (!inputs.dryRun) {
      result.deleted = (
        await deleteOrphans({ client, bucket: inputs.bucket, keys: result.orphans, signal: o.signal })
      ).length;
    }
    log.info(
      `${result.orphans.length} orphan(s) under ${where}${inputs.dryRun ? ' (dry run: none deleted)' : `, ${result.deleted} deleted`}`,
    );
  }
  return result;
}
