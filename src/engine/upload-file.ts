/**
 * uploadFile(): one file to one object, as a single verified PutObject (single-put.ts) or a resumable, parallel,
 * verified multipart upload (multipart.ts). This file holds the options, their validation, and the order of the
 * steps: stat, plan, skip when unchanged, then one of the two.
 */
import { existsSync } from 'node:fs';
import type { OssClient } from '../oss/index.ts';
import { checkpointPathFor } from './checkpoint.ts';
import { unchangedStoredCopy } from './unchanged.ts';
import { InvalidArgumentError, UploadError } from './errors.ts';
import { identityOf } from './local-file.ts';
import { type Limiter, createLimiter } from './limiter.ts';
import { uploadMultipart } from './multipart.ts';
import { dropCheckpoint } from './orphan-uploads.ts';
import { planParts, validatePartSize } from './plan.ts';
import { type ProgressListener, ProgressTracker } from './progress.ts';
import { type LoadedFile, type LoadedStat, type RangeHasher, sharedRangeHasher } from './range-hasher.ts';
import { IN_MEMORY_MAX_BYTES, putSingle } from './single-put.ts';
import { type UploadContext, resultFields, uploadError } from './upload-context.ts';
import { intentPathFor } from './upload-intent.ts';
import { type UploadResult, verifiedResult } from './verification.ts';

export type { UploadResult } from './verification.ts';

/** Where checkpoints go: off, a dir (file name derived from bucket and key), or an exact path. */
export type CheckpointOption = false | { readonly dir: string } | { readonly path: string };

export interface UploadFileOptions {
  client: OssClient;
  bucket: string;
  /** Object key. */
  key: string;
  /** Local file path. */
  file: string;
  /**
   * Bytes per part, 102,400 (100 KB) to 5 GB; grows to fit 10,000 parts. `auto` picks 8 MiB or more for big files.
   * @default 8 MiB
   */
  partSize?: number | 'auto';
  /**
   * Parts in flight at once for this file.
   * @default 4
   */
  threadNum?: number;
  /** A limiter shared with other uploads; when given it, not `threadNum`, bounds the requests in flight. */
  limiter?: Limiter;
  /**
   * Keep a checkpoint so a failed or cancelled upload continues where it stopped.
   * @default false
   */
  checkpoint?: CheckpointOption;
  /**
   * Before uploading, HEAD the key; when the stored object has the file's size and CRC-64, send nothing and
   * report it unchanged. Not consulted while a checkpoint for the key exists (that upload is resumed instead).
   * @default false
   */
  skipUnchanged?: boolean;
  /** Object headers: Content-Type, Cache-Control, x-oss-meta-*, x-oss-forbid-overwrite, ... */
  headers?: Record<string, string>;
  /** Cancels the upload: no new parts, in-flight requests aborted, checkpoint flushed. */
  signal?: AbortSignal | undefined;
  /** Byte-level progress, called synchronously and often; throttle in the caller. */
  onProgress?: ProgressListener;
  /** Things worth telling a person: a discarded checkpoint, a part sent again, a missing CRC header. */
  onNotice?: (message: string) => void;
  /** Hashing threads; a shared pool by default. */
  hasher?: RangeHasher;
}

const DEFAULT_THREAD_NUM = 4;

/**
 * Upload one file. Resolves only when the stored object is verified against the local bytes.
 * @throws {InvalidArgumentError} for options out of range, before any request.
 * @throws {UploadError} when the upload fails; `resumable` says whether a checkpoint was kept.
 * @throws the signal's reason when cancelled.
 */
export function uploadFile(opts: UploadFileOptions): Promise<UploadResult> {
  return uploadFileWith(opts, {});
}

/** What a caller of many files knows for each of them, saving a file-system call per file. */
export interface KnownState {
  /**
   * Neither a checkpoint nor an intent exists for this key: the caller listed the checkpoint dir and saw
   * neither name, and nothing but this upload writes them.
   */
  readonly noCheckpoint?: boolean;
}

export async function uploadFileWith(opts: UploadFileOptions, known: KnownState): Promise<UploadResult> {
  const started = performance.now();
  validate(opts);
  opts.signal?.throwIfAborted();
  const hasher = opts.hasher ?? sharedRangeHasher();
  const loaded = await loadFile(opts, hasher);
  const fileStat = loaded.stat;
  const plan = planParts(fileStat.size, opts.partSize);
  const checkpointPath = resolveCheckpointPath(opts);
  const notice = (message: string): void => {
    try {
      opts.onNotice?.(message);
    } catch {
      // a log callback must never break an upload
    }
  };
  const ctx: UploadContext = {
    client: opts.client,
    bucket: opts.bucket,
    key: opts.key,
    file: opts.file,
    fileStat,
    identity: identityOf(fileStat),
    plan,
    threadNum: opts.threadNum ?? DEFAULT_THREAD_NUM,
    limiter: opts.limiter ?? createLimiter(opts.threadNum ?? DEFAULT_THREAD_NUM),
    checkpointPath: plan.single ? undefined : checkpointPath,
    checkpointNamedByKey: typeof opts.checkpoint === 'object' && 'dir' in opts.checkpoint,
    headers: { ...opts.headers },
    signal: opts.signal ?? new AbortController().signal,
    hasher,
    loaded:
      plan.single && loaded.bytes && loaded.digest
        ? { bytes: loaded.bytes, digest: loaded.digest }
        : undefined,
    tracker: new ProgressTracker({
      file: opts.file,
      key: opts.key,
      bytesTotal: fileStat.size,
      partsTotal: plan.partCount,
      onProgress: opts.onProgress,
    }),
    notice,
    started,
    md5Mode: false,
  };
  if (plan.partSizeAdjustedFrom !== undefined) {
    notice(
      `${opts.file}: part size raised from ${plan.partSizeAdjustedFrom} to ${plan.partSize} bytes to stay within 10,000 parts`,
    );
  }
  // an unfinished upload of this key (a checkpoint, or an intent that may hide one) is resumed or reclaimed first
  const unfinished =
    checkpointPath !== undefined &&
    known.noCheckpoint !== true &&
    (existsSync(checkpointPath) || existsSync(intentPathFor(checkpointPath)));
  if (opts.skipUnchanged && !unfinished) {
    const localCrc64 = ctx.loaded?.digest.crc64;
    const stored = await unchangedStoredCopy({ ...ctx, size: fileStat.size, localCrc64 }).catch(
      (e: unknown) => {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        throw uploadError(ctx, e, { resumable: false });
      },
    );
    if (stored) {
      return verifiedResult(
        {
          ...resultFields(ctx, { multipart: !plan.single, partsSent: 0 }),
          ...(stored.headersUpdated ? { headersUpdated: true as const } : { unchanged: true }),
        },
        stored.crc64,
        stored.verification,
      );
    }
  }
  if (plan.single) {
    // a checkpoint left by an earlier run with a larger part plan is of no use any more, nor is its upload
    if (checkpointPath && known.noCheckpoint !== true) await dropCheckpoint(ctx, checkpointPath);
    return putSingle(ctx);
  }
  return uploadMultipart(ctx);
}

function validate(opts: UploadFileOptions): void {
  if (typeof opts.bucket !== 'string' || opts.bucket === '') {
    throw new InvalidArgumentError('bucket', opts.bucket, 'a bucket name');
  }
  if (typeof opts.key !== 'string' || opts.key === '' || Buffer.byteLength(opts.key) > 1023) {
    throw new InvalidArgumentError('key', opts.key, 'an object key of 1 to 1023 bytes');
  }
  if (typeof opts.file !== 'string' || opts.file === '') {
    throw new InvalidArgumentError('file', opts.file, 'a path to a local file');
  }
  validatePartSize(opts.partSize);
  const t = opts.threadNum;
  if (t !== undefined && (!Number.isSafeInteger(t) || t < 1 || t > 1000)) {
    throw new InvalidArgumentError('threadNum', t, 'a whole number from 1 to 1000');
  }
  const cp = opts.checkpoint;
  if (cp !== undefined && cp !== false) {
    const value = 'dir' in cp ? cp.dir : cp.path;
    if (typeof value !== 'string' || value === '') {
      throw new InvalidArgumentError('checkpoint', cp, 'false, { dir: string } or { path: string }');
    }
  }
}

/** The file's metadata; a small file that will be one PutObject is read whole at the same time. */
async function loadFile(
  opts: UploadFileOptions,
  hasher: RangeHasher,
): Promise<LoadedFile & { stat: LoadedStat }> {
  const partSize = typeof opts.partSize === 'number' ? opts.partSize : IN_MEMORY_MAX_BYTES;
  let loaded: LoadedFile;
  try {
    loaded = await hasher.load(opts.file, Math.min(IN_MEMORY_MAX_BYTES, partSize));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EISDIR')
      throw new InvalidArgumentError('file', opts.file, 'a regular file (not a directory or device)');
    throw new UploadError({
      file: opts.file,
      bucket: opts.bucket,
      key: opts.key,
      resumable: false,
      cause: e,
      message: `cannot read the local file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    });
  }
  if (!loaded.stat.isFile) {
    throw new InvalidArgumentError('file', opts.file, 'a regular file (not a directory or device)');
  }
  return loaded;
}

function resolveCheckpointPath(opts: UploadFileOptions): string | undefined {
  const cp = opts.checkpoint;
  if (cp === undefined || cp === false) return undefined;
  return 'path' in cp ? cp.path : checkpointPathFor(cp.dir, opts.bucket, opts.key);
}
