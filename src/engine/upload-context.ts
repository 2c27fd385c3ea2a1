/**
 * What every step of one file's upload shares: the options as resolved once (client, key, file, plan, limits),
 * and the few things learned on the way (whether the server sends CRCs). Per-call state of a multipart upload
 * lives in multipart-state.ts.
 */
import type { OssClient } from '../oss/index.ts';
import { UploadError } from './errors.ts';
import type { FileIdentity } from './local-file.ts';
import type { Limiter } from './limiter.ts';
import type { PartPlan } from './plan.ts';
import type { ProgressTracker } from './progress.ts';
import type { RangeDigest, RangeHasher } from './range-hasher.ts';
import type { UploadResult } from './verification.ts';

/** Attempts at a range whose stored CRC differs from the local one before the upload fails. */
export const INTEGRITY_ATTEMPTS = 3;

const FORBID_OVERWRITE = 'x-oss-forbid-overwrite';

export interface UploadContext {
  readonly client: OssClient;
  readonly bucket: string;
  readonly key: string;
  readonly file: string;
  readonly fileStat: FileIdentity;
  /** The file as first seen: a change to it during the upload fails the upload. */
  readonly identity: FileIdentity;
  readonly plan: PartPlan;
  readonly threadNum: number;
  readonly limiter: Limiter;
  readonly checkpointPath: string | undefined;
  /** The checkpoint's file name is derived from bucket and key (`{ dir }`), so it can only be for this key. */
  readonly checkpointNamedByKey: boolean;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal;
  readonly hasher: RangeHasher;
  /** A small file's bytes and digest, read with its metadata: sent and hashed from memory, never read again. */
  readonly loaded?: { readonly bytes: Uint8Array; readonly digest: RangeDigest } | undefined;
  readonly tracker: ProgressTracker;
  readonly notice: (message: string) => void;
  readonly started: number;
  /** Set once the server answers without a CRC header: parts are then checked by MD5 ETag. */
  md5Mode: boolean;
}

/** The fields of a result other than the verified ones. */
export function resultFields(
  ctx: UploadContext,
  o: { multipart: boolean; partsSent: number; uploadId?: string },
): Omit<UploadResult, 'etag' | 'crc64' | 'verified'> {
  return {
    file: ctx.file,
    key: ctx.key,
    size: ctx.fileStat.size,
    ...(o.uploadId !== undefined ? { uploadId: o.uploadId } : {}),
    multipart: o.multipart,
    parts: ctx.plan.partCount,
    partSize: ctx.plan.partSize,
    ...(ctx.plan.partSizeAdjustedFrom !== undefined
      ? { partSizeAdjustedFrom: ctx.plan.partSizeAdjustedFrom }
      : {}),
    bytesSent: ctx.tracker.sentBytes,
    bytesResumed: ctx.tracker.resumedBytes,
    partsSent: o.partsSent,
    seconds: (performance.now() - ctx.started) / 1000,
  };
}

export function uploadError(
  ctx: UploadContext,
  cause: unknown,
  extra: { uploadId?: string; resumable: boolean },
): UploadError {
  return new UploadError({ file: ctx.file, bucket: ctx.bucket, key: ctx.key, cause, ...extra });
}

/** The x-oss-forbid-overwrite header as the caller spelled it, if given. */
export function forbidOverwriteHeader(ctx: UploadContext): Record<string, string> | undefined {
  for (const [k, v] of Object.entries(ctx.headers)) {
    if (k.toLowerCase() === FORBID_OVERWRITE) return { [FORBID_OVERWRITE]: v };
  }
  return undefined;
}

/** x-oss-forbid-overwrite in effect: any value but `false` is taken as set, the side that deletes nothing. */
export function forbidsOverwrite(ctx: UploadContext): boolean {
  const v = forbidOverwriteHeader(ctx)?.[FORBID_OVERWRITE];
  return v !== undefined && v.trim().toLowerCase() !== 'false';
}
