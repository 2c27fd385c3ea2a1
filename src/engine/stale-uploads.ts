/**
 * Stale multipart uploads: started long ago, never completed or aborted (a job that died, a run never re-run).
 * Their parts are billed until someone aborts them. An upload that a checkpoint in this run's checkpoint dir
 * records is still wanted, however old: a re-run continues it. An upload counts as old only when it is old
 * both on the server's clock (the one that dated the uploads; a runner's clock may be hours off) and on the
 * runner's (a server or proxy may send a wrong Date), since aborting a live upload cannot be undone and
 * keeping a dead one a day longer costs little. An upload whose newest part is recent is still being sent by
 * someone, however long ago it began. Uploads outside the prefix are never listed (the client refuses such
 * an answer).
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type OssClient, isOssError } from '../oss/index.ts';
import { CHECKPOINT_EXTENSION, decodeCheckpoint } from './checkpoint.ts';
import { createLimiter } from './limiter.ts';

export interface StaleUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/** Upload ids the checkpoints in `dir` record for `bucket`; unreadable or damaged files record none. */
export async function checkpointedUploadIds(dir: string, bucket: string): Promise<Set<string>> {
  const ids = new Set<string>();
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith(CHECKPOINT_EXTENSION))) {
    const text = await readFile(join(dir, name), 'utf8').catch(() => '');
    const state = decodeCheckpoint(text);
    if (!('error' in state) && state.bucket === bucket) ids.add(state.uploadId);
  }
  return ids;
}

/**
 * Unfinished uploads under `prefix`, not in `owned`, whose Initiated time and newest part are both more than
 * `olderThanMs` old on the server's clock and on the local one. An upload or part of unknown age (no date, or
 * a server clock too far off to believe) may be seconds old: it is kept, and `onNotice` says so.
 */
export async function findStaleUploads(o: {
  client: OssClient;
  bucket: string;
  prefix: string;
  olderThanMs: number;
  owned: ReadonlySet<string>;
  signal?: AbortSignal | undefined;
  onNotice?: ((message: string) => void) | undefined;
}): Promise<StaleUpload[]> {
  const uploads = await o.client.listMultipartUploads({
    bucket: o.bucket,
    prefix: o.prefix,
    signal: o.signal,
  });
  const doubt = o.client.serverClockDoubt();
  if (doubt !== undefined) {
    if (uploads.length > 0) o.onNotice?.(`kept all ${uploads.length} unfinished upload(s): ${doubt}`);
    return [];
  }
  const undated = uploads.filter((u) => u.initiated === undefined);
  if (undated.length > 0)
    o.onNotice?.(
      `kept ${undated.length} unfinished upload(s) listed without a valid Initiated time (their age is not known): ${undated
        .slice(0, 5)
        .map((u) => `${u.key} (${u.uploadId})`)
        .join(', ')}${undated.length > 5 ? ', …' : ''}`,
    );
  // read after the listing, so the clock is the one of the answer that dated these uploads
  const cutoff = Math.min(o.client.serverNow(), Date.now()) - o.olderThanMs;
  const candidates = uploads.filter(
    (u): u is StaleUpload =>
      u.initiated !== undefined && u.initiated.getTime() < cutoff && !o.owned.has(u.uploadId),
  );
  const limiter = createLimiter(4);
  const idle = await Promise.all(
    candidates.map((u) =>
      limiter.run(async () => {
        let parts: Awaited<ReturnType<OssClient['listParts']>>;
        try {
          parts = await o.client.listParts(uploadRequest(o, u));
        } catch (e) {
          if (o.signal?.aborted) throw e;
          // gone since the listing: nothing to abort; any other failure: not known to be idle, so kept
          return false;
        }
        // a part without a date may have been sent a moment ago
        const newest = Math.max(0, ...parts.map((p) => p.lastModified?.getTime() ?? Infinity));
        return newest < cutoff;
      }, o.signal),
    ),
  );
  return candidates.filter((_, i) => idle[i]);
}

/**
 * Abort each upload, `threadNum` at a time; an upload already gone (NoSuchUpload) counts as aborted.
 * Returns the failures.
 */
export async function abortUploads(o: {
  client: OssClient;
  bucket: string;
  uploads: readonly StaleUpload[];
  threadNum?: number;
  signal?: AbortSignal | undefined;
}): Promise<Array<{ upload: StaleUpload; error: unknown }>> {
  const limiter = createLimiter(o.threadNum ?? 4);
  const failures: Array<{ upload: StaleUpload; error: unknown }> = [];
  await Promise.all(
    o.uploads.map((u) =>
      limiter.run(async () => {
        try {
          await o.client.abortMultipartUpload(uploadRequest(o, u));
        } catch (error) {
          if (o.signal?.aborted) throw error;
          if (!isOssError(error) || error.code !== 'NoSuchUpload') failures.push({ upload: u, error });
        }
      }, o.signal),
    ),
  );
  return failures;
}

/** What names one upload to ListParts and AbortMultipartUpload. */
function uploadRequest(
  o: { bucket: string; signal?: AbortSignal | undefined },
  u: StaleUpload,
): { bucket: string; key: string; uploadId: string; signal: AbortSignal | undefined } {
  return { bucket: o.bucket, key: u.key, uploadId: u.uploadId, signal: o.signal };
}
