/**
 * uploadFile(): one file to one object, as a single verified PutObject or a resumable, parallel,
 * verified multipart upload.
 */
import { access, constants, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Stats, existsSync } from 'node:fs';
import { crc64Combine, isOssError } from '../oss/index.ts';
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
import { unchangedStoredCopy } from './unchanged.ts';
import { IntegrityError, InvalidArgumentError, UploadError } from './errors.ts';
import { type FailureFacts, abortUpload, keyStateAfterMismatch, settleFailure } from './failure-policy.ts';
import {
  type FileIdentity,
  assertFileUnchanged,
  asLocalChange,
  guardedFileBody,
  identityOf,
} from './local-file.ts';
import { type Limiter, createLimiter } from './limiter.ts';
import { abortRecorded, abortUnnamed, dropCheckpoint, reclaimUnrecorded } from './orphan-uploads.ts';
import { type PartPlan, partRange, planParts, validatePartSize } from './plan.ts';
import { type ProgressListener, ProgressTracker } from './progress.ts';
import { type RangeDigest, type RangeHasher, sharedRangeHasher } from './range-hasher.ts';
import { intentPathFor, removeIntent, writeIntent } from './upload-intent.ts';
import {
  type Check,
  type Expected,
  type UploadResult,
  type Verification,
  checkByHead,
  checkStatement,
  etagHex,
  multipartEtag,
  verifiedResult,
  writtenSince,
} from './verification.ts';

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
    identity: identityOf(fileStat),
    plan,
    threadNum: opts.threadNum ?? DEFAULT_THREAD_NUM,
    limiter: opts.limiter ?? createLimiter(opts.threadNum ?? DEFAULT_THREAD_NUM),
    checkpointPath: plan.single ? undefined : checkpointPath,
    checkpointNamedByKey: typeof opts.checkpoint === 'object' && 'dir' in opts.checkpoint,
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
    const stored = await unchangedStoredCopy({ ...ctx, size: fileStat.size }).catch((e: unknown) => {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw uploadError(ctx, e, { resumable: false });
    });
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
    if (checkpointPath) await dropCheckpoint(ctx, checkpointPath);
    return putSingle(ctx);
  }
  return uploadMultipart(ctx);
}

/** The fields of a result other than the verified ones. */
function resultFields(
  ctx: Context,
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

/**
 * Check the server's answer for a part against the local bytes. Falls back to the MD5 ETag (hashing the
 * range again) when the server sends no CRC; an ETag that is no MD5 proves nothing and fails the part.
 */
async function checkPart(
  ctx: Context,
  answer: { etag: string; crc64?: bigint | undefined },
  digest: RangeDigest,
  range: { start: number; length: number },
  what: string,
): Promise<void> {
  noteMissingCrc(ctx, answer);
  const check = await checkStatement(answer, expectedRange(ctx, digest, range), what);
  if (check.kind === 'mismatch') throw check.error;
  if (check.kind !== 'verified')
    throw new Error(`${what}: the answer proves nothing (no CRC-64, ETag ${JSON.stringify(answer.etag)})`);
}

function noteMissingCrc(ctx: Context, answer: { crc64?: bigint | undefined }): void {
  if (answer.crc64 !== undefined || ctx.md5Mode) return;
  ctx.md5Mode = true;
  ctx.notice(
    `the server sent no x-oss-hash-crc64ecma header for ${ctx.key}; verifying by comparing ETags with the MD5 of the bytes sent`,
  );
}

/** The local bytes of a range, as a check wants them; the MD5 only when asked for. */
function expectedRange(
  ctx: Context,
  digest: RangeDigest,
  range: { start: number; length: number },
): Expected {
  return {
    size: range.length,
    crc64: digest.crc64,
    etag: async () =>
      digest.md5 ??
      (
        await ctx.hasher.hash(ctx.file, range.start, range.length, { md5: true }).catch((e: unknown) => {
          throw asLocalChange(e);
        })
      ).md5,
  };
}

function hashRange(ctx: Context, start: number, length: number): Promise<RangeDigest> {
  const p = ctx.hasher.hash(ctx.file, start, length, { md5: ctx.md5Mode }).catch((e: unknown) => {
    throw asLocalChange(e);
  });
  // the request may fail first; the digest's own failure is then of no interest
  p.catch(() => undefined);
  return p;
}

/** Send one range with a body that counts its bytes once and stops at a local change. */
async function sendRange<T>(
  ctx: Context,
  range: { start: number; length: number },
  send: (body: ReturnType<typeof guardedFileBody>, signal: AbortSignal) => Promise<T>,
): Promise<{ answer: T; body: ReturnType<typeof guardedFileBody> }> {
  const body = guardedFileBody(ctx.file, range.start, range.length, (n) => ctx.tracker.sent(n));
  const signal = AbortSignal.any([ctx.signal, body.signal]);
  try {
    return { answer: await ctx.limiter.run(() => send(body, signal), ctx.signal), body };
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (body.signal.aborted) throw body.signal.reason;
    throw e;
  }
}

async function putSingle(ctx: Context): Promise<UploadResult> {
  const size = ctx.fileStat.size;
  const range = { start: 0, length: size };
  const failed = (facts: Omit<FailureFacts, 'multipart'>): Promise<UploadError> => settleFailure(ctx, facts);
  const firstSince = ctx.client.serverNow();
  for (let attempt = 1; ; attempt++) {
    const since = ctx.client.serverNow();
    const digestPromise = hashRange(ctx, 0, size);
    let sent: Awaited<ReturnType<typeof sendRange<{ etag: string; crc64?: bigint | undefined }>>>;
    let digest: RangeDigest;
    try {
      sent = await sendRange(ctx, range, (body, signal) =>
        ctx.client.putObject({ bucket: ctx.bucket, key: ctx.key, body, headers: ctx.headers, signal }),
      );
      digest = await digestPromise;
    } catch (e) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const earlier = await storedByLostAttempt(ctx, e, digestPromise, range, firstSince);
      if (earlier) return singleResult(ctx, earlier.digest, earlier.verification, failed);
      // the PUT may have replaced the key before failing, but nothing is known of what it holds
      throw await failed({ cause: e, key: 'unknown' });
    }
    const { answer, body } = sent;
    noteMissingCrc(ctx, answer);
    const expected = expectedRange(ctx, digest, range);
    const check = await checkStatement(answer, expected, 'object');
    if (check.kind === 'mismatch') {
      if (attempt < INTEGRITY_ATTEMPTS) {
        ctx.notice(`${ctx.key}: ${check.error.message}; uploading it again (attempt ${attempt + 1})`);
        ctx.tracker.sent(-body.counted);
        continue;
      }
      const written = { answer, since, forbidOverwrite: forbidsOverwrite(ctx) };
      throw await failed({ cause: check.error, key: await keyStateAfterMismatch(ctx, expected, written) });
    }
    const proven = check.kind === 'verified' ? check : await checkByHead(ctx, expected);
    if (proven.kind !== 'verified') {
      throw await failed({ cause: unconfirmed(proven), key: 'unknown' });
    }
    return singleResult(ctx, digest, proven.verification, failed);
  }
}

/** A verified single PUT becomes a result once the file is shown unchanged since it was read. */
async function singleResult(
  ctx: Context,
  digest: RangeDigest,
  v: Verification,
  failed: (facts: Omit<FailureFacts, 'multipart'>) => Promise<UploadError>,
): Promise<UploadResult> {
  try {
    await assertFileUnchanged(ctx.file, ctx.identity);
  } catch (e) {
    // the stored bytes are what was read, but what was read may not be the whole, final file
    throw await failed({ cause: e, key: 'verified' });
  }
  ctx.tracker.partDone();
  return verifiedResult(resultFields(ctx, { multipart: false, partsSent: 1 }), digest.crc64, v);
}

/**
 * With x-oss-forbid-overwrite, a PUT whose answer was lost and that the client sent again meets
 * FileAlreadyExists from the object its first attempt stored. A HEAD that shows the file's bytes, written
 * since this upload began, proves the upload done; anything else leaves the refusal standing.
 */
async function storedByLostAttempt(
  ctx: Context,
  cause: unknown,
  digestPromise: Promise<RangeDigest>,
  range: { start: number; length: number },
  since: number,
): Promise<{ digest: RangeDigest; verification: Verification } | undefined> {
  if (!(isOssError(cause) && cause.code === 'FileAlreadyExists')) return undefined;
  const digest = await digestPromise.catch(() => undefined);
  if (digest === undefined) return undefined;
  const check = await checkByHead(ctx, expectedRange(ctx, digest, range));
  if (check.kind !== 'verified' || !writtenSince(check.stored, since)) return undefined;
  ctx.notice(
    `${ctx.key}: FileAlreadyExists after a PUT was sent again; a HEAD shows this file's bytes, stored by this upload's earlier attempt`,
  );
  return { digest, verification: check.verification };
}

/** x-oss-forbid-overwrite in effect: any value but `false` is taken as set, the side that deletes nothing. */
function forbidsOverwrite(ctx: Context): boolean {
  const v = findHeader(ctx.headers, FORBID_OVERWRITE);
  return v !== undefined && v.trim().toLowerCase() !== 'false';
}

/** The error for a success answer that a HEAD did not confirm. */
function unconfirmed(check: Check): Error {
  if (check.kind === 'mismatch') return check.error;
  return new Error(
    check.kind === 'absent'
      ? 'the server answered success, but the object does not exist (not confirmed by HEAD)'
      : 'the server answered success without a CRC-64, and a HEAD could not confirm the object',
  );
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
      message: `the checkpoint directory ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? String(e)}); choose a writable checkpoint-dir or turn checkpoints off`,
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
  try {
    await Promise.all(checks);
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

/**
 * A checkpoint that lists every part but whose upload id is gone: an earlier Complete may have succeeded
 * without its answer arriving. The object counts as done only if a HEAD shows the local size and CRC.
 */
async function completedEarlier(ctx: Context, cp: CheckpointState): Promise<UploadResult | undefined> {
  if (cp.parts.length !== ctx.plan.partCount) return undefined;
  const expected = await localObjectCrc(ctx, cp.parts);
  if (expected === undefined) return undefined;
  const check = await checkByHead(ctx, objectExpected(ctx, expected, cp.parts));
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

/** The whole object as a check wants it: size, CRC, and the multipart ETag the parts' MD5s give. */
function objectExpected(ctx: Context, crc: bigint, parts: readonly CheckpointPart[]): Expected {
  const sorted = [...parts].sort((a, b) => a.n - b.n);
  return {
    size: ctx.fileStat.size,
    crc64: crc,
    etag: () => Promise.resolve(multipartEtag(sorted.map((p) => etagHex(p.etag)))),
  };
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

/**
 * Runs `threadNum` workers over the parts still missing; resolves with the first failure, if any. A checkpoint
 * that cannot be written stops the file at once: parts sent after it would be recorded nowhere.
 */
async function uploadParts(
  ctx: Context,
  state: MultipartState,
  writer: CheckpointWriter | undefined,
): Promise<unknown> {
  const todo: number[] = [];
  for (let n = 1; n <= ctx.plan.partCount; n++) if (!state.done.has(n)) todo.push(n);
  let next = 0;
  let failure: unknown;
  const stop = (): boolean => failure !== undefined || writer?.error !== undefined || ctx.signal.aborted;
  const work = async (): Promise<void> => {
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
  await Promise.all(Array.from({ length: Math.min(ctx.threadNum, todo.length) }, work));
  return failure ?? writer?.error;
}

async function uploadPart(ctx: Context, state: MultipartState, n: number): Promise<void> {
  const range = partRange(ctx.plan, ctx.fileStat.size, n);
  for (let attempt = 1; ; attempt++) {
    const digestPromise = hashRange(ctx, range.start, range.length);
    const { answer, body } = await sendRange(ctx, range, (b, signal) =>
      ctx.client.uploadPart({
        bucket: ctx.bucket,
        key: ctx.key,
        uploadId: state.uploadId,
        partNumber: n,
        body: b,
        signal,
      }),
    );
    const digest = await digestPromise;
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
    return;
  }
}

async function complete(ctx: Context, state: MultipartState): Promise<UploadResult> {
  const parts = [...state.done.values()].sort((a, b) => a.n - b.n);
  let crc = 0n;
  for (const p of parts) crc = crc64Combine(crc, BigInt(p.crc64), p.size);
  const expected = objectExpected(ctx, crc, parts);
  const failed = (
    cause: unknown,
    upload: 'open' | 'gone' | 'completed',
    key: FailureFacts['key'] = 'unknown',
  ) => settleFailure(ctx, { cause, key, multipart: { uploadId: state.uploadId, upload } });
  const forbid = findHeader(ctx.headers, FORBID_OVERWRITE);
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
          ...(forbid !== undefined ? { headers: { [FORBID_OVERWRITE]: forbid } } : {}),
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
  ctx: Context,
  state: MultipartState,
  crc: bigint,
  v: Verification,
): Promise<UploadResult> {
  if (ctx.checkpointPath) await deleteCheckpoint(ctx.checkpointPath);
  return multipartResult(ctx, state, crc, v);
}

function multipartResult(ctx: Context, state: MultipartState, crc: bigint, v: Verification): UploadResult {
  return verifiedResult(
    resultFields(ctx, { multipart: true, partsSent: state.partsSent, uploadId: state.uploadId }),
    crc,
    v,
  );
}

function findHeader(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}
