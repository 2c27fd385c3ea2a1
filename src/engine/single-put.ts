/**
 * A file no larger than one part goes up in one PutObject: sent, hashed beside the request, checked against the
 * answer's CRC (or a HEAD), sent again on a mismatch up to a limit, and settled by the failure policy otherwise.
 */
import { isOssError } from '../oss/index.ts';
import type { UploadError } from './errors.ts';
import { type FailureFacts, keyStateAfterMismatch, settleFailure } from './failure-policy.ts';
import { assertFileUnchanged, readWhole } from './local-file.ts';
import type { RangeDigest } from './range-hasher.ts';
import { type ByteRange, expectedRange, hashRange, noteMissingCrc, sendRange } from './range-transfer.ts';
import { INTEGRITY_ATTEMPTS, type UploadContext, forbidsOverwrite, resultFields } from './upload-context.ts';
import {
  type UploadResult,
  type Verification,
  checkByHead,
  checkStatement,
  unconfirmed,
  verifiedResult,
  writtenSince,
} from './verification.ts';

type Failed = (facts: Omit<FailureFacts, 'multipart'>) => Promise<UploadError>;

/**
 * Files up to this size are read once into memory, hashed there and sent from there: for small files the fixed
 * costs (a read stream, a hashing-thread round trip, a second read) outweigh the bytes.
 */
export const IN_MEMORY_MAX_BYTES = 256 * 1024;

export async function putSingle(ctx: UploadContext): Promise<UploadResult> {
  const failed: Failed = (facts) => settleFailure(ctx, facts);
  const size = ctx.fileStat.size;
  let range: ByteRange = { start: 0, length: size };
  if (ctx.loaded) range = { ...range, bytes: ctx.loaded.bytes };
  else if (size <= IN_MEMORY_MAX_BYTES) {
    try {
      range = { ...range, bytes: await readWhole(ctx.file, size) };
    } catch (e) {
      throw await failed({ cause: e, key: 'unknown' });
    }
  }
  const firstSince = ctx.client.serverNow();
  for (let attempt = 1; ; attempt++) {
    const since = ctx.client.serverNow();
    // bytes in memory give the same digest every attempt; the one computed as they were read is theirs
    const digestPromise =
      ctx.loaded && !ctx.md5Mode ? Promise.resolve(ctx.loaded.digest) : hashRange(ctx, range);
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
  ctx: UploadContext,
  digest: RangeDigest,
  v: Verification,
  failed: Failed,
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
  ctx: UploadContext,
  cause: unknown,
  digestPromise: Promise<RangeDigest>,
  range: ByteRange,
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
