/**
 * Checkpoints in the Actions cache: restored before the uploads so a re-run continues them, saved only when
 * something is left unfinished. A cache that fails is a warning, never a failed upload.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import * as actionsCache from '@actions/cache';
import { isCheckpointFileName } from '../engine/index.ts';

export const CACHE_KEY_PREFIX = 'oss-resumable-upload-cp-v1';

/** The cache functions used; the real @actions/cache unless a caller brings others. */
export interface CacheApi {
  restoreCache(paths: string[], primaryKey: string, restoreKeys?: string[]): Promise<string | undefined>;
  saveCache(paths: string[], key: string): Promise<number>;
}

export interface CacheLog {
  info(message: string): void;
  warning(message: string): void;
}

/**
 * Key for this run attempt, and restore keys that find earlier attempts of the same run with the same
 * bucket, destination and file list (a different file set never picks up foreign checkpoints). A matrix shard
 * (`2of4`) has keys of its own: a re-run of one failed shard restores only that shard's checkpoints.
 */
export function checkpointCacheKey(o: {
  bucket: string;
  destination: string;
  files: readonly string[];
  runId: string;
  runAttempt: string;
  shard?: { index: number; count: number } | undefined;
}): { key: string; restoreKeys: string[] } {
  const hash = createHash('sha256')
    .update([o.bucket, o.destination, ...[...o.files].sort()].join('\n'))
    .digest('hex')
    .slice(0, 16);
  const shard = o.shard ? `-shard-${o.shard.index}of${o.shard.count}` : '';
  const runPrefix = `${CACHE_KEY_PREFIX}${shard}-${hash}-${o.runId}-`;
  return { key: `${runPrefix}${o.runAttempt}`, restoreKeys: [runPrefix] };
}

/** Restore the checkpoint dir; resolves with the matched key, or undefined on a miss or any failure. */
export async function restoreCheckpoints(o: {
  dir: string;
  key: string;
  restoreKeys: string[];
  cache?: CacheApi;
  log: CacheLog;
}): Promise<string | undefined> {
  await mkdir(o.dir, { recursive: true });
  try {
    const hit = await (o.cache ?? actionsCache).restoreCache([o.dir], o.key, o.restoreKeys);
    if (hit) o.log.info(`restored checkpoints from the cache entry ${hit}`);
    return hit;
  } catch (e) {
    o.log.warning(
      `could not restore checkpoints from the Actions cache (${(e as Error).message}); uploads start from scratch`,
    );
    return undefined;
  }
}

/** Number of files in `dir` a later run needs (checkpoints and upload intents). */
export async function countCheckpoints(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter(isCheckpointFileName).length;
}

/** Save the checkpoint dir when it holds a checkpoint; resolves with whether it was saved. */
export async function saveCheckpoints(o: {
  dir: string;
  key: string;
  cache?: CacheApi;
  log: CacheLog;
}): Promise<boolean> {
  const count = await countCheckpoints(o.dir);
  if (count === 0) return false;
  try {
    const id = await (o.cache ?? actionsCache).saveCache([o.dir], o.key);
    if (id === -1) {
      o.log.warning(
        `the Actions cache did not store the checkpoints (key ${o.key}); a re-run starts those uploads again`,
      );
      return false;
    }
    o.log.info(`saved ${count} checkpoint(s) to the Actions cache as ${o.key}; re-run the job to continue`);
    return true;
  } catch (e) {
    o.log.warning(
      `could not save checkpoints to the Actions cache (${(e as Error).message}); a re-run starts those uploads again`,
    );
    return false;
  }
}
