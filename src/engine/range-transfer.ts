/**
 * One byte range of the file on its way up: hashed beside the request, sent with a body that counts its bytes
 * once and stops at a local change, and its answer checked against the local bytes.
 */
import { createHash } from 'node:crypto';
import { crc64 } from '../oss/index.ts';
import { type GuardedBody, asLocalChange, guardedFileBody, guardedMemoryBody } from './local-file.ts';
import type { RangeDigest } from './range-hasher.ts';
import type { UploadContext } from './upload-context.ts';
import { type Expected, checkStatement } from './verification.ts';

export interface ByteRange {
  readonly start: number;
  readonly length: number;
  /** The range's bytes, when already read into memory: sent and hashed from there, the file not read again. */
  readonly bytes?: Uint8Array;
}

export type RangeBody = GuardedBody;

/**
 * The digest of a range, read apart from the request; a read failure is reported as a local change. Bytes in
 * memory are small (see single-put.ts) and hashed at once: a worker round trip would cost more than the hash.
 */
export function hashRange(ctx: UploadContext, range: ByteRange): Promise<RangeDigest> {
  if (range.bytes) return Promise.resolve(memoryDigest(range.bytes, ctx.md5Mode));
  const p = ctx.hasher.hash(ctx.file, range.start, range.length, { md5: ctx.md5Mode }).catch((e: unknown) => {
    throw asLocalChange(e);
  });
  // the request may fail first; the digest's own failure is then of no interest
  p.catch(() => undefined);
  return p;
}

/**
 * Send one range with a body that counts its bytes once and stops at a local change. With `hashSent`, a range
 * read from the file is hashed as it is sent (see the body's `digest`).
 */
export async function sendRange<T>(
  ctx: UploadContext,
  range: ByteRange,
  send: (body: RangeBody, signal: AbortSignal) => Promise<T>,
  opts: { hashSent?: boolean } = {},
): Promise<{ answer: T; body: RangeBody }> {
  const count = (n: number): void => ctx.tracker.sent(n);
  const body = range.bytes
    ? guardedMemoryBody(range.bytes, count)
    : guardedFileBody(
        ctx.file,
        range.start,
        range.length,
        count,
        opts.hashSent ? { digest: { md5: ctx.md5Mode } } : {},
      );
  // bytes in memory cannot change under the request, so their body never aborts: no signal to join
  const joined = range.bytes ? undefined : eitherSignal(ctx.signal, body.signal);
  try {
    return {
      answer: await ctx.limiter.run(() => send(body, joined?.signal ?? ctx.signal), ctx.signal),
      body,
    };
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (body.signal.aborted) throw body.signal.reason;
    throw e;
  } finally {
    joined?.release();
  }
}

/**
 * A signal that aborts when either does, with its listeners removed once the request is over. Not
 * AbortSignal.any: each composite it makes, once listened to, keeps weak references and a finalization record
 * until a full collection; a fast upload held a few hundred KB of them at any time (sampled heap profile).
 */
function eitherSignal(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const fromA = (): void => controller.abort(a.reason);
  const fromB = (): void => controller.abort(b.reason);
  if (a.aborted) fromA();
  else if (b.aborted) fromB();
  else {
    a.addEventListener('abort', fromA, { once: true });
    b.addEventListener('abort', fromB, { once: true });
  }
  return {
    signal: controller.signal,
    release: () => {
      a.removeEventListener('abort', fromA);
      b.removeEventListener('abort', fromB);
    },
  };
}

/** The local bytes of a range, as a check wants them; the MD5 only when asked for. */
export function expectedRange(ctx: UploadContext, digest: RangeDigest, range: ByteRange): Expected {
  return {
    size: range.length,
    crc64: digest.crc64,
    etag: async () =>
      digest.md5 ??
      (range.bytes ? memoryDigest(range.bytes, true).md5 : undefined) ??
      (
        await ctx.hasher.hash(ctx.file, range.start, range.length, { md5: true }).catch((e: unknown) => {
          throw asLocalChange(e);
        })
      ).md5,
  };
}

/** The first answer without a CRC header switches the upload to MD5 ETags, and says so once. */
export function noteMissingCrc(ctx: UploadContext, answer: { crc64?: bigint | undefined }): void {
  if (answer.crc64 !== undefined || ctx.md5Mode) return;
  ctx.md5Mode = true;
  ctx.notice(
    `the server sent no x-oss-hash-crc64ecma header for ${ctx.key}; verifying by comparing ETags with the MD5 of the bytes sent`,
  );
}

/**
 * Check the server's answer for a part against the local bytes. Falls back to the MD5 ETag (hashing the
 * range again) when the server sends no CRC; an ETag that is no MD5 proves nothing and fails the part.
 */
export async function checkPart(
  ctx: UploadContext,
  answer: { etag: string; crc64?: bigint | undefined },
  digest: RangeDigest,
  range: ByteRange,
  what: string,
): Promise<void> {
  noteMissingCrc(ctx, answer);
  const check = await checkStatement(answer, expectedRange(ctx, digest, range), what);
  if (check.kind === 'mismatch') throw check.error;
  if (check.kind !== 'verified')
    throw new Error(`${what}: the answer proves nothing (no CRC-64, ETag ${JSON.stringify(answer.etag)})`);
}

function memoryDigest(bytes: Uint8Array, md5: boolean): RangeDigest {
  return { crc64: crc64(bytes), ...(md5 ? { md5: createHash('md5').update(bytes).digest('hex') } : {}) };
}
