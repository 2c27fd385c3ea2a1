/**
 * A file larger than one part: resume or initiate the upload, run `threadNum` workers over the parts still
 * missing, and only once every worker has settled make the one keep-or-abort decision (failure-policy.ts) or
 * complete it (complete.ts).
 */
import { access, constants, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isOssError, sleep } from '../oss/index.ts';
import { CheckpointWriter } from './checkpoint-writer.ts';
import { IntegrityError, UploadError } from './errors.ts';
import { abortUpload, settleFailure } from './failure-policy.ts';
import { complete } from './complete.ts';
import { assertFileUnchanged } from './local-file.ts';
import { type MultipartState, checkpointState } from './multipart-state.ts';
import { reclaimUnrecorded } from './orphan-uploads.ts';
import { partRange } from './plan.ts';
import { checkPart, hashRange, sendRange } from './range-transfer.ts';
import { resume } from './resume.ts';
import { releaseYoungGeneration } from './young-generation.ts';
import { INTEGRITY_ATTEMPTS, type UploadContext, uploadError } from './upload-context.ts';
import { intentPathFor, removeIntent, writeIntent } from './upload-intent.ts';
import type { UploadResult } from './verification.ts';

export async function uploadMultipart(ctx: UploadContext): Promise<UploadResult> {
  if (ctx.checkpointPath) await ensureWritableDir(ctx, dirname(ctx.checkpointPath));
  const resumed = ctx.checkpointPath ? await resume(ctx, ctx.checkpointPath) : undefined;
  if (resumed && 'result' in resumed) return resumed.result;
  const intentPath = ctx.checkpointPath ? intentPathFor(ctx.checkpointPath) : undefined;
  if (intentPath) await reclaimUnrecorded(ctx, intentPath, resumed?.uploadId);
  const state = resumed ?? (await initiate(ctx, intentPath));

  const writer = ctx.checkpointPath
    ? new CheckpointWriter(ctx.checkpointPath, () => checkpointState(ctx, state))
    : undefined;
  if (writer && !resumed) {
    try {
      await writer.flush(true);
    } catch (e) {
      await abortUpload(ctx, state.uploadId);
      throw uploadError(ctx, e, { resumable: false });
    }
    // the checkpoint now records the upload id: the intent has done its job
    if (intentPath) await removeIntent(intentPath);
  }

  let failure = await uploadParts(ctx, state, writer);
  if (writer) {
    await writer.flush().catch((e: unknown) => {
      failure ??= e;
    });
  }
  if (failure === undefined && !ctx.signal.aborted) {
    failure = await assertFileUnchanged(ctx.file, ctx.identity).catch((e: unknown) => e);
  }
  if (ctx.signal.aborted || failure !== undefined) {
    if (ctx.signal.aborted) {
      if (!writer) await abortUpload(ctx, state.uploadId);
      throw ctx.signal.reason;
    }
    const gone = isOssError(failure) && failure.code === 'NoSuchUpload';
    throw await settleFailure(ctx, {
      cause: failure,
      key: 'unknown',
      multipart: { uploadId: state.uploadId, upload: gone ? 'gone' : 'open' },
    });
  }
  return complete(ctx, state);
}

/** A new upload; its intent is written first, so a run killed before its first checkpoint can still reclaim it. */
async function initiate(ctx: UploadContext, intentPath: string | undefined): Promise<MultipartState> {
  if (intentPath) await writeIntent(intentPath, ctx.key, new Date());
  const asked = performance.now();
  const { uploadId } = await ctx.limiter
    .run(
      () =>
        ctx.client.initiateMultipartUpload({
          bucket: ctx.bucket,
          key: ctx.key,
          headers: ctx.headers,
          signal: ctx.signal,
        }),
      ctx.signal,
    )
    .catch((e: unknown) => {
      throw ctx.signal.aborted ? ctx.signal.reason : uploadError(ctx, e, { resumable: false });
    });
  return { uploadId, done: new Map(), partsSent: 0, initiateMs: performance.now() - asked };
}

/** The longest a part worker waits before its first part (see uploadParts). */
export const MAX_STAGGER_MS = 250;

/**
 * How long worker `i` waits before its first part. Parts that start together share the link evenly, end
 * together and wait for their answers together: for a round trip after each round nothing is sent, a tenth of
 * the time over a 100 ms link. Started half a round trip apart they stay apart, and while one waits for its
 * answer the others keep the link busy. Only worth it when each worker has more than one part to send.
 */
export function staggerMs(
  i: number,
  parts: number,
  threads: number,
  roundTripMs: number | undefined,
): number {
  if (roundTripMs === undefined || parts <= threads) return 0;
  return Math.min(MAX_STAGGER_MS, (i * roundTripMs) / 2);
}

async function ensureWritableDir(ctx: UploadContext, dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (e) {
    throw new UploadError({
      file: ctx.file,
      bucket: ctx.bucket,
      key: ctx.key,
      resumable: false,
      cause: e,
      message: `the checkpoint directory ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? String(e)}); choose a writable checkpoint-dir or turn checkpoints off`,
    });
  }
}

/**
 * Runs `threadNum` workers over the parts still missing; resolves with the first failure, if any. A checkpoint
 * that cannot be written stops the file at once: parts sent after it would be recorded nowhere.
 */
async function uploadParts(
  ctx: UploadContext,
  state: MultipartState,
  writer: CheckpointWriter | undefined,
): Promise<unknown> {
  const todo: number[] = [];
  for (let n = 1; n <= ctx.plan.partCount; n++) if (!state.done.has(n)) todo.push(n);
  let next = 0;
  let failure: unknown;
  const stop = (): boolean => failure !== undefined || writer?.error !== undefined || ctx.signal.aborted;
  const workers = Math.min(ctx.threadNum, todo.length);
  const work = async (_: unknown, i: number): Promise<void> => {
    const wait = staggerMs(i, todo.length, workers, state.initiateMs);
    if (wait > 0) await sleep(wait, ctx.signal).catch(() => undefined);
    while (!stop() && next < todo.length) {
      const n = todo[next++]!;
      try {
        await uploadPart(ctx, state, n);
        writer?.request();
      } catch (e) {
        if (failure === undefined && !ctx.signal.aborted) failure = e;
      }
    }
  };
  // in-flight parts settle before anyone decides to keep or abort the upload, or parts would be stranded
  await Promise.all(Array.from({ length: workers }, work));
  return failure ?? writer?.error;
}

async function uploadPart(ctx: UploadContext, state: MultipartState, n: number): Promise<void> {
  const range = partRange(ctx.plan, ctx.fileStat.size, n);
  for (let attempt = 1; ; attempt++) {
    const { answer, body } = await sendRange(
      ctx,
      range,
      (b, signal) =>
        ctx.client.uploadPart({
          bucket: ctx.bucket,
          key: ctx.key,
          uploadId: state.uploadId,
          partNumber: n,
          body: b,
          signal,
        }),
      { hashSent: true },
    );
    // an answer that came before the last byte went out (a server that did not wait for the body) is checked
    // against the whole range, read again
    const digest = body.digest ?? (await hashRange(ctx, range));
    try {
      await checkPart(ctx, answer, digest, range, `part ${n}`);
    } catch (e) {
      if (e instanceof IntegrityError && attempt < INTEGRITY_ATTEMPTS) {
        ctx.notice(`${ctx.key}: ${e.message}; sending part ${n} again`);
        ctx.tracker.sent(-body.counted);
        continue;
      }
      throw e;
    }
    // a file edited in place between parts would make the object a mix of old and new bytes
    await assertFileUnchanged(ctx.file, ctx.identity);
    state.done.set(n, { n, etag: answer.etag, size: range.length, crc64: digest.crc64.toString() });
    state.partsSent++;
    ctx.tracker.partDone();
    releaseYoungGeneration(range.length);
    return;
  }
}
