/**
 * uploadFile(): one file to one object, as a single verified PutObject or a resumable, parallel,
 * verified multipart upload.
 */
import { access, constants, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Stats, existsSync } from 'node:fs';
import { crc64Combine, fileRangeBody, isOssError } from '../oss/index.ts';
import type { OssClient } from '../oss/index.ts';
import {
  type CheckpointPart,
  type CheckpointState,
  checkpointPathFor,
  deleteCheckpoint,
  isCheckpointState,
  loadCheckpoint,
} from './checkpoint.ts';
import { CheckpointWriter } from './checkpoint-writer.ts';
import { type StoredCopy, unchangedStoredCopy } from './unchanged.ts';
import { countingBody } from './counting-body.ts';
import { IntegrityError, InvalidArgumentError, UploadError } from './errors.ts';
import { type Limiter, createLimiter } from './limiter.ts';
import { type PartPlan, partRange, planParts, validatePartSize } from './plan.ts';
import { type ProgressListener, ProgressTracker } from './progress.ts';
import { type RangeDigest, type RangeHasher, sharedRangeHasher } from './range-hasher.ts';
import {
  INTENT_CLOCK_MARGIN_MS,
  intentPathFor,
  readIntent,
  removeIntent,
  writeIntent,
} from './upload-intent.ts';

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

export interface UploadResult {
  file: string;
  key: string;
  size: number;
  /** ETag as the server sent it. */
  etag: string;
  /** CRC-64/XZ of the object as a decimal string. */
  crc64: string;
  uploadId?: string;
  multipart: boolean;
  parts: number;
  partSize: number;
  /** The requested part size, when it had to grow to fit 10,000 parts. */
  partSizeAdjustedFrom?: number;
  /** Bytes sent in this run (a retried attempt counts once). */
  bytesSent: number;
  /** Bytes an earlier run had already uploaded. */
  bytesResumed: number;
  /** Parts sent in this run. */
  partsSent: number;
  seconds: number;
  /** How the stored bytes were checked against the local file: never absent, an unverified upload fails. */
  verified: 'crc64' | 'md5';
  /** The bucket already held these exact bytes (size and CRC-64), so nothing was sent (`skipUnchanged`). */
  unchanged?: boolean;
}

/** Attempts at a part whose stored CRC differs from the local one before the upload fails. */
const INTEGRITY_ATTEMPTS = 3;
const DEFAULT_THREAD_NUM = 4;
const FORBID_OVERWRITE = 'x-oss-forbid-overwrite';

interface Context {
  readonly client: OssClient;
  readonly bucket: string;
  readonly key: string;
  readonly file: string;
  readonly fileStat: Stats;
  readonly plan: PartPlan;
  readonly threadNum: number;
  readonly limiter: Limiter;
  readonly checkpointPath: string | undefined;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal;
  readonly hasher: RangeHasher;
  readonly tracker: ProgressTracker;
  readonly notice: (message: string) => void;
  readonly started: number;
  /** Set once the server answers without a CRC header: parts are then checked by MD5 ETag. */
  md5Mode: boolean;
}

/**
 * Upload one file. Resolves only when the stored object is verified against the local bytes.
 * @throws {InvalidArgumentError} for options out of range, before any request.
 * @throws {UploadError} when the upload fails; `resumable` says whether a checkpoint was kept.
 * @throws the signal's reason when cancelled.
 */
export async function uploadFile(opts: UploadFileOptions): Promise<UploadResult> {
  const started = performance.now();
  validate(opts);
  opts.signal?.throwIfAborted();
  const fileStat = await statFile(opts);
  const plan = planParts(fileStat.size, opts.partSize);
  const checkpointPath = resolveCheckpointPath(opts);
  const notice = (message: string): void => {
    try {
      opts.onNotice?.(message);
    } catch {
      // a log callback must never break an upload
    }
  };
  const ctx: Context = {
    client: opts.client,
    bucket: opts.bucket,
    key: opts.key,
    file: opts.file,
    fileStat,
    plan,
    threadNum: opts.threadNum ?? DEFAULT_THREAD_NUM,
    limiter: opts.limiter ?? createLimiter(opts.threadNum ?? DEFAULT_THREAD_NUM),
    checkpointPath: plan.single ? undefined : checkpointPath,
    headers: { ...opts.headers },
    signal: opts.signal ?? new AbortController().signal,
    hasher: opts.hasher ?? sharedRangeHasher(),
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
    checkpointPath !== undefined && (existsSync(checkpointPath) || existsSync(intentPathFor(checkpointPath)));
  if (opts.skipUnchanged && !unfinished) {
    const stored = await unchangedStoredCopy({ ...ctx, size: fileStat.size });
    if (stored) return unchangedResult(ctx, stored);
  }
  if (plan.single) {
    // a checkpoint left by an earlier run with a larger part plan is of no use any more
    if (checkpointPath) await deleteCheckpoint(checkpointPath);
    return putSingle(ctx);
  }
  return uploadMultipart(ctx);
}

function unchangedResult(ctx: Context, stored: StoredCopy): UploadResult {
  return {
    file: ctx.file,
    key: ctx.key,
    size: ctx.fileStat.size,
    etag: stored.etag,
    crc64: stored.crc64.toString(),
    multipart: !ctx.plan.single,
    parts: ctx.plan.partCount,
    partSize: ctx.plan.partSize,
    bytesSent: 0,
    bytesResumed: 0,
    partsSent: 0,
    seconds: (performance.now() - ctx.started) / 1000,
    verified: 'crc64',
    unchanged: true,
  };
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

async function statFile(opts: UploadFileOptions): Promise<Stats> {
  let s: Stats;
  try {
    s = await stat(opts.file);
  } catch (e) {
    throw new UploadError({
      file: opts.file,
      bucket: opts.bucket,
      key: opts.key,
      resumable: false,
      cause: e,
      message: `cannot read the local file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    });
  }
  if (!s.isFile()) {
    throw new InvalidArgumentError('file', opts.file, 'a regular file (not a directory or device)');
  }
  return s;
}

function resolveCheckpointPath(opts: UploadFileOptions): string | undefined {
  const cp = opts.checkpoint;
  if (cp === undefined || cp === false) return undefined;
  return 'path' in cp ? cp.path : checkpointPathFor(cp.dir, opts.bucket, opts.key);
}

function uploadError(
  ctx: Context,
  cause: unknown,
  extra: { uploadId?: string; resumable: boolean },
): UploadError {
  return new UploadError({ file: ctx.file, bucket: ctx.bucket, key: ctx.key, cause, ...extra });
}

/** Fails when the file's size or modification time moved while it was being read. */
async function assertFileUnchanged(ctx: Context): Promise<void> {
  let now: Stats | undefined;
  try {
    now = await stat(ctx.file);
  } catch {
    now = undefined;
  }
  const before = ctx.fileStat;
  if (!now || now.size !== before.size || now.mtimeMs !== before.mtimeMs || now.ino !== before.ino) {
    const what = now ? 'changed' : 'was deleted';
    throw new Error(`the local file ${what} during its upload; upload it again once it is complete`);
  }
}

/** Unquoted, lower-case ETag, to compare with a hex MD5. */
function etagHex(etag: string): string {
  return etag.replace(/^W\//, '').replace(/"/g, '').toLowerCase();
}

/**
 * Check the server's answer for a range against the local bytes. Falls back to the MD5 ETag (hashing the
 * range again) when the server sends no CRC.
 */
async function checkRange(
  ctx: Context,
  answer: { etag: string; crc64?: bigint | undefined },
  digest: RangeDigest,
  range: { start: number; length: number },
  what: string,
): Promise<void> {
  if (answer.crc64 !== undefined) {
    if (answer.crc64 !== digest.crc64) {
      throw new IntegrityError(what, digest.crc64.toString(), answer.crc64.toString(), 'crc64');
    }
    return;
  }
  if (!ctx.md5Mode) {
    ctx.md5Mode = true;
    ctx.notice(
      `the server sent no x-oss-hash-crc64ecma header for ${ctx.key}; verifying by comparing ETags with the MD5 of the bytes sent`,
    );
  }
  const md5 = digest.md5 ?? (await ctx.hasher.hash(ctx.file, range.start, range.length, { md5: true })).md5;
  if (etagHex(answer.etag) !== md5) {
    throw new IntegrityError(what, md5 ?? '', etagHex(answer.etag), 'md5');
  }
}

function hashRange(ctx: Context, start: number, length: number): Promise<RangeDigest> {
  const p = ctx.hasher.hash(ctx.file, start, length, { md5: ctx.md5Mode });
  // the request may fail first; the digest's own failure is then of no interest
  p.catch(() => undefined);
  return p;
}

async function putSingle(ctx: Context): Promise<UploadResult> {
  const size = ctx.fileStat.size;
  const range = { start: 0, length: size };
  for (let attempt = 1; ; attempt++) {
    const digestPromise = hashRange(ctx, 0, size);
    const body = countingBody(fileRangeBody(ctx.file, 0, size), (n) => ctx.tracker.sent(n));
    let answer: { etag: string; crc64?: bigint | undefined };
    try {
      answer = await ctx.limiter.run(
        () =>
          ctx.client.putObject({
            bucket: ctx.bucket,
            key: ctx.key,
            body,
            headers: ctx.headers,
            signal: ctx.signal,
          }),
        ctx.signal,
      );
    } catch (e) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw uploadError(ctx, e, { resumable: false });
    }
    try {
      await checkRange(ctx, answer, await digestPromise, range, 'object');
      await assertFileUnchanged(ctx);
    } catch (e) {
      // never leave bytes on the server that do not match the file
      await ctx.client.deleteObject({ bucket: ctx.bucket, key: ctx.key }).catch(() => undefined);
      if (e instanceof IntegrityError && attempt < INTEGRITY_ATTEMPTS) {
        ctx.notice(`${ctx.key}: ${e.message}; uploading it again (attempt ${attempt + 1})`);
        continue;
      }
      throw uploadError(ctx, e, { resumable: false });
    }
    const digest = await digestPromise;
    ctx.tracker.partDone();
    return {
      file: ctx.file,
      key: ctx.key,
      size,
      etag: answer.etag,
      crc64: digest.crc64.toString(),
      multipart: false,
      parts: 1,
      partSize: ctx.plan.partSize,
      ...(ctx.plan.partSizeAdjustedFrom !== undefined
        ? { partSizeAdjustedFrom: ctx.plan.partSizeAdjustedFrom }
        : {}),
      bytesSent: ctx.tracker.sentBytes,
      bytesResumed: 0,
      partsSent: 1,
      seconds: (performance.now() - ctx.started) / 1000,
      verified: ctx.md5Mode ? 'md5' : 'crc64',
    };
  }
}

interface MultipartState {
  uploadId: string;
  readonly done: Map<number, CheckpointPart>;
  partsSent: number;
}

async function uploadMultipart(ctx: Context): Promise<UploadResult> {
  if (ctx.checkpointPath) await ensureWritableDir(ctx, dirname(ctx.checkpointPath));
  const resumed = ctx.checkpointPath ? await resume(ctx, ctx.checkpointPath) : undefined;
  if (resumed && 'result' in resumed) return resumed.result;
  const intentPath = ctx.checkpointPath ? intentPathFor(ctx.checkpointPath) : undefined;
  if (intentPath) await reclaimUnrecorded(ctx, intentPath, resumed?.uploadId);
  let state: MultipartState;
  if (resumed) {
    state = resumed;
  } else {
    if (intentPath) await writeIntent(intentPath, ctx.key, new Date());
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
    state = { uploadId, done: new Map(), partsSent: 0 };
  }

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

  const failure = await uploadParts(ctx, state, writer);
  if (writer) await writer.flush().catch((e: unknown) => ctx.notice(`cannot write checkpoint: ${String(e)}`));
  if (ctx.signal.aborted || failure !== undefined) {
    const keep = writer !== undefined;
    if (!keep) await abortUpload(ctx, state.uploadId);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    throw uploadError(ctx, failure, { uploadId: state.uploadId, resumable: keep });
  }
  return complete(ctx, state);
}

async function ensureWritableDir(ctx: Context, dir: string): Promise<void> {
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
      message: `the checkpoint directory ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? String(e)}); choose a writable directory or turn checkpoints off`,
    });
  }
}

function checkpointState(ctx: Context, state: MultipartState): CheckpointState {
  return {
    bucket: ctx.bucket,
    key: ctx.key,
    endpoint: ctx.client.objectUrl(ctx.bucket, ctx.key),
    file: ctx.file,
    fileSize: ctx.fileStat.size,
    partSize: ctx.plan.partSize,
    uploadId: state.uploadId,
    parts: [...state.done.values()],
  };
}

/**
 * Continue from a checkpoint. The server's part list is the truth, and every part it holds is checked
 * against the local bytes by content (CI checkouts change mtimes, so times prove nothing).
 */
async function resume(
  ctx: Context,
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
      const stale = loaded.state;
      if (stale && stale.endpoint === identity.endpoint) await abortUpload(ctx, stale.uploadId);
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

  const done = new Map<number, CheckpointPart>();
  const checks = serverParts
    .filter((p) => p.partNumber >= 1 && p.partNumber <= ctx.plan.partCount)
    .map(async (p) => {
      const range = partRange(ctx.plan, ctx.fileStat.size, p.partNumber);
      if (p.size !== range.length) return;
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
  try {
    await Promise.all(checks);
  } catch (e) {
    throw uploadError(ctx, e, { uploadId: loaded.uploadId, resumable: true });
  }
  const bytes = [...done.values()].reduce((sum, p) => sum + p.size, 0);
  ctx.tracker.resumed(bytes, done.size);
  ctx.notice(
    `${ctx.file}: resuming upload ${loaded.uploadId}: ${done.size} of ${ctx.plan.partCount} parts (${bytes} bytes) already on the server`,
  );
  return { uploadId: loaded.uploadId, done, partsSent: 0 };
}

/**
 * A checkpoint that lists every part but whose upload id is gone: an earlier Complete may have succeeded
 * without its answer arriving. The object counts as done only if its size and CRC match the local file.
 */
async function completedEarlier(ctx: Context, cp: CheckpointState): Promise<UploadResult | undefined> {
  if (cp.parts.length !== ctx.plan.partCount) return undefined;
  const expected = await localObjectCrc(ctx, cp.parts);
  if (expected === undefined) return undefined;
  const head = await ctx.client
    .headObject({ bucket: ctx.bucket, key: ctx.key, signal: ctx.signal })
    .catch(() => undefined);
  if (!head || head.size !== ctx.fileStat.size || head.crc64 !== expected) return undefined;
  ctx.notice(`${ctx.key} was already completed by an earlier run; nothing left to send`);
  if (ctx.checkpointPath) await deleteCheckpoint(ctx.checkpointPath);
  ctx.tracker.resumed(ctx.fileStat.size, ctx.plan.partCount);
  return result(ctx, { uploadId: cp.uploadId, done: new Map(), partsSent: 0 }, head.etag, expected, 'crc64');
}

/** Whole-file CRC from the local bytes of the listed parts; undefined when any part no longer matches. */
async function localObjectCrc(ctx: Context, parts: readonly CheckpointPart[]): Promise<bigint | undefined> {
  const sorted = [...parts].sort((a, b) => a.n - b.n);
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

/** Runs `threadNum` workers over the parts still missing; resolves with the first failure, if any. */
async function uploadParts(
  ctx: Context,
  state: MultipartState,
  writer: CheckpointWriter | undefined,
): Promise<unknown> {
  const todo: number[] = [];
  for (let n = 1; n <= ctx.plan.partCount; n++) if (!state.done.has(n)) todo.push(n);
  let next = 0;
  let failure: unknown;
  let failed = false;
  const work = async (): Promise<void> => {
    while (!failed && !ctx.signal.aborted && next < todo.length) {
      const n = todo[next++]!;
      try {
        await uploadPart(ctx, state, n);
        writer?.request();
      } catch (e) {
        if (!failed && !ctx.signal.aborted) {
          failed = true;
          failure = e;
        }
      }
    }
  };
  // in-flight parts settle before anyone decides to keep or abort the upload, or parts would be stranded
  await Promise.all(Array.from({ length: Math.min(ctx.threadNum, todo.length) }, work));
  if (!failed && writer?.error !== undefined) return writer.error;
  return failure;
}

async function uploadPart(ctx: Context, state: MultipartState, n: number): Promise<void> {
  const range = partRange(ctx.plan, ctx.fileStat.size, n);
  for (let attempt = 1; ; attempt++) {
    const digestPromise = hashRange(ctx, range.start, range.length);
    const body = countingBody(fileRangeBody(ctx.file, range.start, range.length), (k) => ctx.tracker.sent(k));
    const answer = await ctx.limiter.run(
      () =>
        ctx.client.uploadPart({
          bucket: ctx.bucket,
          key: ctx.key,
          uploadId: state.uploadId,
          partNumber: n,
          body,
          signal: ctx.signal,
        }),
      ctx.signal,
    );
    const digest = await digestPromise;
    try {
      await checkRange(ctx, answer, digest, range, `part ${n}`);
    } catch (e) {
      if (e instanceof IntegrityError && attempt < INTEGRITY_ATTEMPTS) {
        ctx.notice(`${ctx.key}: ${e.message}; sending part ${n} again`);
        ctx.tracker.sent(-body.counted);
        continue;
      }
      throw e;
    }
    state.done.set(n, { n, etag: answer.etag, size: range.length, crc64: digest.crc64.toString() });
    state.partsSent++;
    ctx.tracker.partDone();
    return;
  }
}

async function complete(ctx: Context, state: MultipartState): Promise<UploadResult> {
  const parts = [...state.done.values()].sort((a, b) => a.n - b.n);
  let expected = 0n;
  for (const p of parts) expected = crc64Combine(expected, BigInt(p.crc64), p.size);
  const keep = ctx.checkpointPath !== undefined;
  try {
    await assertFileUnchanged(ctx);
  } catch (e) {
    if (!keep) await abortUpload(ctx, state.uploadId);
    throw uploadError(ctx, e, { uploadId: state.uploadId, resumable: keep });
  }
  const forbid = findHeader(ctx.headers, FORBID_OVERWRITE);
  let answer: { etag: string; crc64?: bigint | undefined };
  try {
    answer = await ctx.limiter.run(
      () =>
        ctx.client.completeMultipartUpload({
          bucket: ctx.bucket,
          key: ctx.key,
          uploadId: state.uploadId,
          parts: parts.map((p) => ({ partNumber: p.n, etag: p.etag })),
          ...(forbid !== undefined ? { headers: { [FORBID_OVERWRITE]: forbid } } : {}),
          signal: ctx.signal,
        }),
      ctx.signal,
    );
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    // a Complete whose answer was lost may still have succeeded: the object then matches size and CRC
    const head =
      isOssError(e) && (e.retryable || e.code === 'NoSuchUpload')
        ? await ctx.client.headObject({ bucket: ctx.bucket, key: ctx.key }).catch(() => undefined)
        : undefined;
    if (head && head.size === ctx.fileStat.size && head.crc64 === expected) {
      answer = { etag: head.etag, crc64: head.crc64 };
    } else if (isOssError(e) && e.code === 'FileAlreadyExists') {
      // this upload can never complete: free its parts and its checkpoint
      await abortUpload(ctx, state.uploadId);
      if (ctx.checkpointPath) await deleteCheckpoint(ctx.checkpointPath);
      throw uploadError(ctx, e, { uploadId: state.uploadId, resumable: false });
    } else {
      if (!keep) await abortUpload(ctx, state.uploadId);
      throw uploadError(ctx, e, { uploadId: state.uploadId, resumable: keep });
    }
  }
  if (answer.crc64 !== undefined && answer.crc64 !== expected) {
    // the stored object is not the file: it must not stay behind looking complete
    await ctx.client.deleteObject({ bucket: ctx.bucket, key: ctx.key }).catch(() => undefined);
    if (ctx.checkpointPath) await deleteCheckpoint(ctx.checkpointPath);
    const err = new IntegrityError('object', expected.toString(), answer.crc64.toString(), 'crc64');
    throw uploadError(ctx, err, { uploadId: state.uploadId, resumable: false });
  }
  const verified = answer.crc64 !== undefined ? 'crc64' : 'md5';
  // only now, with the object verified, may the checkpoint go
  if (ctx.checkpointPath) await deleteCheckpoint(ctx.checkpointPath);
  return result(ctx, state, answer.etag, expected, verified);
}

function result(
  ctx: Context,
  state: MultipartState,
  etag: string,
  crc: bigint,
  verified: 'crc64' | 'md5',
): UploadResult {
  return {
    file: ctx.file,
    key: ctx.key,
    size: ctx.fileStat.size,
    etag,
    crc64: crc.toString(),
    uploadId: state.uploadId,
    multipart: true,
    parts: ctx.plan.partCount,
    partSize: ctx.plan.partSize,
    ...(ctx.plan.partSizeAdjustedFrom !== undefined
      ? { partSizeAdjustedFrom: ctx.plan.partSizeAdjustedFrom }
      : {}),
    bytesSent: ctx.tracker.sentBytes,
    bytesResumed: ctx.tracker.resumedBytes,
    partsSent: state.partsSent,
    seconds: (performance.now() - ctx.started) / 1000,
    verified,
  };
}

/**
 * An intent left by a run that stopped between InitiateMultipartUpload and its first checkpoint: uploads of this
 * key initiated since then are recorded nowhere, so nothing would ever resume or abort them. Abort them now.
 */
async function reclaimUnrecorded(ctx: Context, intentPath: string, keep: string | undefined): Promise<void> {
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

/** Best effort: a failed abort leaves parts that a bucket lifecycle rule cleans later. */
async function abortUpload(ctx: Context, uploadId: string): Promise<void> {
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

function findHeader(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}
