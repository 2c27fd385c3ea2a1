/**
 * Continuing from a checkpoint. The server's part list is the truth, and every part it holds is checked against
 * the local bytes by content (CI checkouts change mtimes, so times prove nothing). A checkpoint whose upload the
 * server no longer knows may record an upload an earlier Complete finished without its answer arriving.
 */
import { type OssClient, crc64Combine, isOssError } from '../oss/index.ts';
import {
  type CheckpointPart,
  type CheckpointState,
  deleteCheckpoint,
  isCheckpointState,
  loadCheckpoint,
} from './checkpoint.ts';
import { multipartResult } from './complete.ts';
import { asLocalChange } from './local-file.ts';
import { type MultipartState, objectExpected, sortedParts } from './multipart-state.ts';
import { abortRecorded, abortUnnamed } from './orphan-uploads.ts';
import { partRange } from './plan.ts';
import { type UploadContext, uploadError } from './upload-context.ts';
import { type UploadResult, checkByHead, etagHex } from './verification.ts';

/**
 * The upload the checkpoint at `path` records, with the parts the server holds that match the local bytes; the
 * finished result when an earlier run completed it; undefined when there is nothing to continue.
 */
export async function resume(
  ctx: UploadContext,
  path: string,
): Promise<MultipartState | { result: UploadResult } | undefined> {
  const identity = {
    bucket: ctx.bucket,
    key: ctx.key,
    endpoint: ctx.client.objectUrl(ctx.bucket, ctx.key),
    fileSize: ctx.fileStat.size,
    partSize: ctx.plan.partSize,
  };
  const loaded = await loadCheckpoint(path, identity);
  if (!isCheckpointState(loaded)) {
    if (loaded.kind === 'invalid') {
      ctx.notice(`checkpoint ${path} for ${ctx.file} not used: ${loaded.reason}; starting a fresh upload`);
      // the upload it records (or, unreadable, could have recorded) would be left billing: abort it first
      if (loaded.state) await abortRecorded(ctx, loaded.state);
      else await abortUnnamed(ctx, path);
    }
    return undefined;
  }
  let serverParts: Awaited<ReturnType<OssClient['listParts']>>;
  try {
    serverParts = await ctx.limiter.run(
      () =>
        ctx.client.listParts({
          bucket: ctx.bucket,
          key: ctx.key,
          uploadId: loaded.uploadId,
          signal: ctx.signal,
        }),
      ctx.signal,
    );
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (isOssError(e) && e.code === 'NoSuchUpload') {
      const finished = await completedEarlier(ctx, loaded);
      if (finished) return { result: finished };
      ctx.notice(
        `the server no longer knows upload ${loaded.uploadId} of ${ctx.key} (aborted or expired); starting a fresh upload`,
      );
      return undefined;
    }
    throw uploadError(ctx, e, { uploadId: loaded.uploadId, resumable: true });
  }

  let done: Map<number, CheckpointPart>;
  try {
    done = await matchingParts(ctx, serverParts);
  } catch (e) {
    throw uploadError(ctx, asLocalChange(e), { uploadId: loaded.uploadId, resumable: true });
  }
  const bytes = [...done.values()].reduce((sum, p) => sum + p.size, 0);
  ctx.tracker.resumed(bytes, done.size);
  ctx.notice(
    `${ctx.file}: resuming upload ${loaded.uploadId}: ${done.size} of ${ctx.plan.partCount} parts (${bytes} bytes) already on the server`,
  );
  return { uploadId: loaded.uploadId, done, partsSent: 0 };
}

/** The listed parts of this plan whose stored CRC (or MD5 ETag) equals the local bytes of their range. */
async function matchingParts(
  ctx: UploadContext,
  serverParts: Awaited<ReturnType<OssClient['listParts']>>,
): Promise<Map<number, CheckpointPart>> {
  const done = new Map<number, CheckpointPart>();
  const checks = serverParts
    .filter((p) => p.partNumber >= 1 && p.partNumber <= ctx.plan.partCount)
    .map(async (p) => {
      const range = partRange(ctx.plan, ctx.fileStat.size, p.partNumber);
      // a part listed without an ETag cannot be named in Complete: sent again
      if (p.size !== range.length || p.etag === '') return;
      const digest = await ctx.hasher.hash(ctx.file, range.start, range.length, {
        md5: p.crc64 === undefined,
      });
      const same = p.crc64 !== undefined ? p.crc64 === digest.crc64 : etagHex(p.etag) === digest.md5;
      if (same) {
        done.set(p.partNumber, {
          n: p.partNumber,
          etag: p.etag,
          size: p.size,
          crc64: digest.crc64.toString(),
        });
      } else {
        ctx.notice(`${ctx.file}: part ${p.partNumber} changed since it was uploaded; sending it again`);
      }
    });
  await Promise.all(checks);
  return done;
}

/**
 * A checkpoint that lists every part but whose upload id is gone: an earlier Complete may have succeeded
 * without its answer arriving. The object counts as done only if a HEAD shows the local size and CRC.
 */
async function completedEarlier(ctx: UploadContext, cp: CheckpointState): Promise<UploadResult | undefined> {
  if (cp.parts.length !== ctx.plan.partCount) return undefined;
  const sorted = sortedParts(cp.parts);
  const expected = await localObjectCrc(ctx, sorted);
  if (expected === undefined) return undefined;
  const check = await checkByHead(ctx, objectExpected(ctx, expected, sorted));
  if (check.kind !== 'verified') return undefined;
  ctx.notice(`${ctx.key} was already completed by an earlier run; nothing left to send`);
  if (ctx.checkpointPath) await deleteCheckpoint(ctx.checkpointPath);
  ctx.tracker.resumed(ctx.fileStat.size, ctx.plan.partCount);
  return multipartResult(
    ctx,
    { uploadId: cp.uploadId, done: new Map(), partsSent: 0 },
    expected,
    check.verification,
  );
}

/** Whole-file CRC from the local bytes of the listed parts; undefined when any part no longer matches. */
async function localObjectCrc(
  ctx: UploadContext,
  sorted: readonly CheckpointPart[],
): Promise<bigint | undefined> {
  const digests = await Promise.all(
    sorted.map((p) => {
      const range = partRange(ctx.plan, ctx.fileStat.size, p.n);
      return ctx.hasher.hash(ctx.file, range.start, range.length);
    }),
  );
  let crc = 0n;
  for (const [i, p] of sorted.entries()) {
    if (digests[i]!.crc64.toString() !== p.crc64) return undefined;
    crc = crc64Combine(crc, digests[i]!.crc64, p.size);
  }
  return crc;
}
