/**
 * CompleteMultipartUpload and the check of what it made: the object counts as uploaded only through the gate in
 * verification.ts. Complete is sent only for the full plan: a list short of a part would make a shorter object
 * that the server accepts.
 */
import { isOssError } from '../oss/index.ts';
import type { CheckpointPart } from './checkpoint.ts';
import { deleteCheckpoint } from './checkpoint.ts';
import { type FailureFacts, keyStateAfterMismatch, settleFailure } from './failure-policy.ts';
import { type MultipartState, combinedCrc, objectExpected, sortedParts } from './multipart-state.ts';
import {
  type UploadContext,
  forbidOverwriteHeader,
  forbidsOverwrite,
  resultFields,
} from './upload-context.ts';
import {
  type UploadResult,
  type Verification,
  checkByHead,
  checkStatement,
  unconfirmed,
  verifiedResult,
} from './verification.ts';

/**
 * The parts to name in Complete: exactly 1..`partCount`, in order. Anything else is a defect upstream, and is
 * refused here rather than completed into an object that is not the file.
 */
export function partsForComplete(
  done: ReadonlyMap<number, CheckpointPart>,
  partCount: number,
): CheckpointPart[] {
  const parts = sortedParts(done.values());
  const missing: number[] = [];
  for (let n = 1; n <= partCount && missing.length < 5; n++) if (!done.has(n)) missing.push(n);
  if (parts.length !== partCount || missing.length > 0) {
    throw new Error(
      `the upload holds ${parts.length} verified parts where the plan has ${partCount}${missing.length > 0 ? ` (missing part ${missing.join(', ')})` : ''}; not completing it`,
    );
  }
  return parts;
}

export async function complete(ctx: UploadContext, state: MultipartState): Promise<UploadResult> {
  const failed = (
    cause: unknown,
    upload: 'open' | 'gone' | 'completed',
    key: FailureFacts['key'] = 'unknown',
  ) => settleFailure(ctx, { cause, key, multipart: { uploadId: state.uploadId, upload } });
  let parts: CheckpointPart[];
  try {
    parts = partsForComplete(state.done, ctx.plan.partCount);
  } catch (e) {
    throw await failed(e, 'open');
  }
  const crc = combinedCrc(parts);
  const expected = objectExpected(ctx, crc, parts);
  const forbid = forbidOverwriteHeader(ctx);
  const since = ctx.client.serverNow();
  let answer: { etag: string; crc64?: bigint | undefined };
  try {
    answer = await ctx.limiter.run(
      () =>
        ctx.client.completeMultipartUpload({
          bucket: ctx.bucket,
          key: ctx.key,
          uploadId: state.uploadId,
          parts: parts.map((p) => ({ partNumber: p.n, etag: p.etag })),
          ...(forbid !== undefined ? { headers: forbid } : {}),
          signal: ctx.signal,
        }),
      ctx.signal,
    );
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    // a Complete whose answer was lost may still have succeeded: the object then matches size and CRC
    const lost = isOssError(e) && (e.retryable || e.code === 'NoSuchUpload');
    const head = lost ? await checkByHead(ctx, expected) : undefined;
    if (head?.kind === 'verified') return finish(ctx, state, crc, head.verification);
    throw await failed(e, isOssError(e) && e.code === 'NoSuchUpload' ? 'gone' : 'open');
  }
  // only a stated CRC (or, from a server without CRCs, the ETag the parts give) counts; an answer without
  // one is checked by HEAD, since a 200 alone does not prove the object exists
  let check = await checkStatement({ etag: answer.etag, crc64: answer.crc64 }, expected, 'object');
  if (check.kind === 'mismatch') {
    const written = { answer, since, forbidOverwrite: forbidsOverwrite(ctx) };
    throw await failed(check.error, 'completed', await keyStateAfterMismatch(ctx, expected, written));
  }
  if (check.kind !== 'verified' || answer.crc64 === undefined) {
    if (answer.crc64 === undefined && !ctx.md5Mode) {
      ctx.notice(`${ctx.key}: the Complete answer carried no CRC-64; checking the object with a HEAD`);
    }
    check = await checkByHead(ctx, expected);
    if (check.kind !== 'verified') {
      // the upload may still be open (a 200 that completed nothing): keep it and its checkpoint for a re-run
      throw await failed(unconfirmed(check), check.kind === 'mismatch' ? 'completed' : 'open');
    }
  }
  return finish(ctx, state, crc, check.verification);
}

/** The object is verified: only now may the checkpoint go. */
async function finish(
  ctx: UploadContext,
  state: MultipartState,
  crc: bigint,
  v: Verification,
): Promise<UploadResult> {
  if (ctx.checkpointPath) await deleteCheckpoint(ctx.checkpointPath);
  return multipartResult(ctx, state, crc, v);
}

export function multipartResult(
  ctx: UploadContext,
  state: MultipartState,
  crc: bigint,
  v: Verification,
): UploadResult {
  return verifiedResult(
    resultFields(ctx, { multipart: true, partsSent: state.partsSent, uploadId: state.uploadId }),
    crc,
    v,
  );
}
