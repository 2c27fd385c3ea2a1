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
  /** The checkpoint's file name is derived from bucket and key: a checkpoint there names this key or was forged. */
  readonly checkpointNamedByKey: boolean;
  readonly signal: AbortSignal;
  readonly notice: (message: string) => void;
}

/**
 * The upload `state` records is of no use any more: abort it where it lives. An upload on another endpoint
 * cannot be reached by this client (its signature and host are for this endpoint), so the run says so. A
 * checkpoint whose name was derived from this bucket and key but that records another was not written by an
 * upload of it (edited by hand, or restored from a tampered cache): the upload it names may be another job's
 * live one, so it is left alone.
 */
export async function abortRecorded(ctx: OrphanContext, state: CheckpointState): Promise<void> {
  if (ctx.checkpointNamedByKey && (state.bucket !== ctx.bucket || state.key !== ctx.key)) {
    ctx.notice(
      `the checkpoint for ${ctx.bucket}/${ctx.key} records upload ${state.uploadId} of ${state.bucket}/${state.key}, which no upload of this key wrote; it is dropped and that upload left alone`,
    );
    return;
  }
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
 * Abort the uploads of exactly this key that `pick` chooses (with the reason to log). Returns false when they
 * could not be listed: the caller keeps whatever file would let a later run try again.
 */
async function abortKeyUploads(
  ctx: OrphanContext,
  pick: (u: { uploadId: string; initiated: Date | undefined }) => string | undefined,
  what: string,
): Promise<boolean> {
  try {
    const uploads = await ctx.client.listMultipartUploads({
      bucket: ctx.bucket,
      prefix: ctx.key,
      signal: ctx.signal,
    });
    for (const u of uploads) {
      const why = u.key === ctx.key ? pick(u) : undefined;
      if (why === undefined) continue;
      ctx.notice(`${ctx.key}: aborting upload ${u.uploadId}, ${why}`);
      await abortUpload(ctx, u.uploadId);
    }
    return true;
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    ctx.notice(`${ctx.key}: could not look for ${what}: ${String(e)}`);
    return false;
  }
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
  await abortKeyUploads(
    ctx,
    // an upload listed without a start time may be anyone's: it stays
    (u) =>
      u.initiated === undefined || u.initiated.getTime() > before
        ? undefined
        : `recorded by the unreadable checkpoint ${path}`,
    `the upload of the unreadable checkpoint ${path}`,
  );
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
  const listed = await abortKeyUploads(
    ctx,
    (u) =>
      u.uploadId === keep || u.initiated === undefined || u.initiated.getTime() < since
        ? undefined
        : 'started by a run that stopped before recording it',
    'unrecorded uploads',
  );
  // otherwise the intent stays for the next run; this upload can go ahead
  if (listed) await removeIntent(intentPath);
}
