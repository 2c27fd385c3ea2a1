/**
 * After a failure, the one decision of what to keep: the object under the key, the multipart upload and its
 * checkpoint. The rules:
 * - An object whose stored bytes were verified to be the local bytes is never deleted, whatever failed after
 *   (the file was touched, an answer lied about its CRC): deleting it would take down bytes known good.
 * - An object is deleted only when a HEAD shows that the key holds what this upload wrote (same ETag as its
 *   answer, and last modified since the write began: an answer that merely echoes the object already there
 *   proves nothing) and that those bytes are not the file. A wrong object that looks complete is served and
 *   cached as if right, while a missing one fails where it is read; the version the upload replaced is gone
 *   either way. When the key cannot be checked, or holds another writer's object, it is left alone. With
 *   x-oss-forbid-overwrite nothing is ever deleted: the header is there to protect the object the key holds.
 * - A multipart upload stays (for a re-run to continue) only while a checkpoint on disk records it; otherwise it
 *   is aborted so its parts are not billed. One that can never complete (overwrite forbidden) is aborted with its
 *   checkpoint. The error says "a re-run continues" only when that is true.
 */
import { type OssClient, isOssError } from '../oss/index.ts';
import { existsSync } from 'node:fs';
import { deleteCheckpoint } from './checkpoint.ts';
import { UploadError } from './errors.ts';
import { type Expected, type StoredFacts, checkByHead, writtenSince } from './verification.ts';

/** What the key holds after the failed attempt, as far as checks went. */
export type KeyState = 'verified' | 'wrong' | 'unknown';

export interface FailureFacts {
  cause: unknown;
  key: KeyState;
  multipart?: {
    uploadId: string;
    /** `open`: the upload still exists; `gone`: the server forgot it; `completed`: a Complete consumed it. */
    upload: 'open' | 'gone' | 'completed';
  };
}

export interface FailureDecision {
  deleteObject: boolean;
  abortUpload: boolean;
  deleteCheckpoint: boolean;
  resumable: boolean;
  note: string | undefined;
}

export interface FailureContext {
  readonly client: OssClient;
  readonly bucket: string;
  readonly key: string;
  readonly file: string;
  readonly checkpointPath: string | undefined;
  readonly notice: (message: string) => void;
}

export function decide(f: FailureFacts, checkpointOnDisk: boolean): FailureDecision {
  const deleteObject = f.key === 'wrong';
  const note =
    f.key === 'verified'
      ? 'the stored object matches the bytes read and is left in place'
      : f.key === 'wrong'
        ? 'the stored object was not the file and has been deleted'
        : undefined;
  const mp = f.multipart;
  if (!mp) return { deleteObject, abortUpload: false, deleteCheckpoint: false, resumable: false, note };
  if (mp.upload === 'completed') {
    return { deleteObject, abortUpload: false, deleteCheckpoint: true, resumable: false, note };
  }
  if (mp.upload === 'gone') {
    // the checkpoint stays: a next run learns from it whether an earlier Complete made the object after all
    return { deleteObject, abortUpload: false, deleteCheckpoint: false, resumable: false, note };
  }
  const neverCompletes = isOssError(f.cause) && f.cause.code === 'FileAlreadyExists';
  if (neverCompletes)
    return { deleteObject, abortUpload: true, deleteCheckpoint: true, resumable: false, note };
  return {
    deleteObject,
    abortUpload: !checkpointOnDisk,
    deleteCheckpoint: false,
    resumable: checkpointOnDisk,
    note,
  };
}

/** Carry out the decision for this failure and return the error to throw. */
export async function settleFailure(ctx: FailureContext, f: FailureFacts): Promise<UploadError> {
  const onDisk = ctx.checkpointPath !== undefined && existsSync(ctx.checkpointPath);
  const d = decide(f, onDisk);
  if (d.deleteObject) {
    await ctx.client
      .deleteObject({ bucket: ctx.bucket, key: ctx.key, signal: AbortSignal.timeout(30_000) })
      .catch((e: unknown) => ctx.notice(`could not delete the wrong object ${ctx.key}: ${String(e)}`));
  }
  if (d.abortUpload && f.multipart) await abortUpload(ctx, f.multipart.uploadId);
  if (d.deleteCheckpoint && ctx.checkpointPath) await deleteCheckpoint(ctx.checkpointPath);
  const cause = f.cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new UploadError({
    file: ctx.file,
    bucket: ctx.bucket,
    key: ctx.key,
    uploadId: f.multipart?.uploadId,
    resumable: d.resumable,
    cause,
    message: d.note ? `${reason}; ${d.note}` : reason,
  });
}

/** The write whose answer stated other bytes: what it answered, and when it began on the server's clock. */
export interface WriteAttempt {
  answer: StoredFacts;
  since: number;
  forbidOverwrite: boolean;
}

/**
 * After an answer stated bytes other than the local ones: HEAD the key to learn whether it holds this upload's
 * object and whether that is the file after all.
 */
export async function keyStateAfterMismatch(
  ctx: FailureContext,
  expected: Expected,
  written: WriteAttempt,
): Promise<KeyState> {
  const check = await checkByHead(ctx, expected);
  if (check.kind === 'verified') return 'verified';
  if (check.kind !== 'mismatch' || written.forbidOverwrite) return 'unknown';
  const etag = written.answer.etag;
  const ours = etag !== '' && check.stored.etag === etag && writtenSince(check.stored, written.since);
  return ours ? 'wrong' : 'unknown';
}

/** Best effort: a failed abort leaves parts that a bucket lifecycle rule cleans later. */
export async function abortUpload(
  ctx: Pick<FailureContext, 'client' | 'notice'> & { bucket: string; key: string },
  uploadId: string,
): Promise<void> {
  try {
    await ctx.client.abortMultipartUpload({
      bucket: ctx.bucket,
      key: ctx.key,
      uploadId,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    if (!(isOssError(e) && e.code === 'NoSuchUpload')) {
      ctx.notice(`could not abort upload ${uploadId} of ${ctx.key}: ${String(e)}`);
    }
  }
}
