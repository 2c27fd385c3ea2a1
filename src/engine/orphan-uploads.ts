/**
 * Multipart uploads that would otherwise be left billing with nothing to resume or abort them: the upload a
 * dropped checkpoint recorded, uploads a corrupt checkpoint can no longer name, and uploads a run killed before
 * its first checkpoint began (found through its intent file).
 */
import { readFile, stat } from 'node:fs/promises';
import type { OssClient } from '../oss/index.ts';
import { type CheckpointState, decodeCheckpoint, deleteCheckpoint } from './checkpoint.ts';
import { abortUpload } from './failure-policy.ts';
import { toServerTime } from './server-clock.ts';
import { INTENT_CLOCK_MARGIN_MS, readIntent, removeIntent } from './upload-intent.ts';

export interface OrphanContext {
  readonly client: OssClient;
  readonly bucket: string;
  readonly key: string;
  readonly signal: AbortSignal;
  readonly notice: (message: string) => void;
}

/**
 * The upload `state` records is of no use any more: abort it where it lives. An upload on another endpoint
 * cannot be reached by this client (its signature and host are for this endpoint), so the run says so.
 */
export async function abortRecorded(ctx: OrphanContext, state: CheckpointState): Promise<void> {
  const here = ctx.client.objectUrl(state.bucket, state.key);
  if (state.endpoint !== here) {
    ctx.notice(
      `cannot abort upload ${state.uploadId} on ${state.endpoint} (this run uploads to ${here}); abort it there with abort-stale-uploads, or let a bucket lifecycle rule remove it`,
    );
    return;
  }
  await abortUpload({ ...ctx, bucket: state.bucket, key: state.key }, state.uploadId);
}

/**
 * A checkpoint without a readable upload id was last written at its mtime. Uploads of exactly this key begun
 * before then (on the server's clock) are the ones it could have recorded; a later one is another run's, live or
 * not, and stays. Another job uploading the same key to the same bucket at the same time is not told apart.
 */
export async function abortUnnamed(ctx: OrphanContext, path: string): Promise<void> {
  const written = await stat(path).then(
    (s) => s.mtimeMs,
    () => undefined,
  );
  if (written === undefined) return;
  const before = toServerTime(ctx.client, written);
  try {
    const uploads = await ctx.client.listMultipartUploads({
      bucket: ctx.bucket,
      prefix: ctx.key,
      signal: ctx.signal,
    });
    for (const u of uploads) {
      if (u.key !== ctx.key || u.initiated.getTime() > before) continue;
      ctx.notice(`${ctx.key}: aborting upload ${u.uploadId}, recorded by the unreadable checkpoint ${path}`);
      await abortUpload(ctx, u.uploadId);
    }
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    ctx.notice(
      `${ctx.key}: could not look for the upload of the unreadable checkpoint ${path}: ${String(e)}`,
    );
  }
}

/** Drop the checkpoint at `path`, aborting the upload it records (or could have recorded) first. */
export async function dropCheckpoint(ctx: OrphanContext, path: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    text = '';
  }
  const state = decodeCheckpoint(text);
  if ('error' in state) await abortUnnamed(ctx, path);
  else await abortRecorded(ctx, state);
  await deleteCheckpoint(path);
}

/**
 * An intent left by a run that stopped between InitiateMultipartUpload and its first checkpoint: uploads of this
 * key initiated since then are recorded nowhere, so nothing would ever resume or abort them. Abort them now.
 */
export async function reclaimUnrecorded(
  ctx: OrphanContext,
  intentPath: string,
  keep: string | undefined,
): Promise<void> {
  const at = await readIntent(intentPath);
  if (at === undefined) return;
  const since = at.getTime() - INTENT_CLOCK_MARGIN_MS;
  try {
    const uploads = await ctx.client.listMultipartUploads({
      bucket: ctx.bucket,
      prefix: ctx.key,
      signal: ctx.signal,
    });
    for (const u of uploads) {
      if (u.key !== ctx.key || u.uploadId === keep || u.initiated.getTime() < since) continue;
      ctx.notice(
        `${ctx.key}: aborting upload ${u.uploadId}, started by a run that stopped before recording it`,
      );
      await abortUpload(ctx, u.uploadId);
    }
    await removeIntent(intentPath);
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    // the intent stays for the next run; this upload can go ahead
    ctx.notice(`${ctx.key}: could not look for unrecorded uploads: ${String(e)}`);
  }
}
