/**
 * Skip-unchanged: a re-run or a redeploy should not send bytes the bucket already holds. One HEAD per file; only
 * when the stored size equals the local size is the file read, and the bytes count as the same only when the
 * stored CRC-64 equals the local bytes' CRC-64 (a size match alone proves nothing). Same bytes are not enough to
 * skip: the headers the run asks for must be the stored ones too, or a new Cache-Control or ACL would never reach
 * the bucket. Same bytes with other headers get new headers without the bytes being sent again, and count as
 * updated only once a HEAD (and, for an ACL, GetObjectAcl) shows the new headers on the same bytes: a 200 from
 * CopyObject or PutObjectAcl alone may come from a gateway that ignored what it was asked.
 */
import { type OssClient, isOssError } from '../oss/index.ts';
import { abortUpload } from './failure-policy.ts';
import type { Limiter } from './limiter.ts';
import type { PartPlan } from './plan.ts';
import { partRange } from './plan.ts';
import type { RangeHasher } from './range-hasher.ts';
import { type Verification, checkStatement } from './verification.ts';

/**
 * Headers HEAD returns that the run sets: compared both ways (one the run no longer sets is a change). Every
 * header a run may set is here or in WHEN_SET, but for x-oss-tagging, which HEAD does not show (only a count):
 * the settings refuse tags with skip-unchanged rather than leave old tags on a skipped object.
 */
const BOTH_WAYS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];
/**
 * Headers the server fills in when the run sets none (a default type, storage class, or the bucket's default
 * encryption): compared only when the run sets them.
 */
const WHEN_SET = [
  'content-type',
  'x-oss-storage-class',
  'x-oss-server-side-encryption',
  'x-oss-server-side-encryption-key-id',
  'x-oss-server-side-data-encryption',
];
/** Values OSS may spell in another case than the request did (`Standard`, `AES256`, `SM4`). */
const ANY_CASE = new Set([
  'x-oss-storage-class',
  'x-oss-server-side-encryption',
  'x-oss-server-side-data-encryption',
]);
const META = 'x-oss-meta-';
const ACL = 'x-oss-object-acl';
/** CopyObject takes objects under 1 GiB; larger ones are copied part by part. */
export const COPY_OBJECT_LIMIT_BYTES = 1024 ** 3;

export interface UnchangedContext {
  readonly client: OssClient;
  readonly limiter: Limiter;
  readonly hasher: RangeHasher;
  readonly bucket: string;
  readonly key: string;
  readonly file: string;
  readonly size: number;
  /** The file's CRC-64 when already known (a small file read whole): the file is then not hashed again. */
  readonly localCrc64?: bigint | undefined;
  readonly plan: PartPlan;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal;
  readonly notice: (message: string) => void;
}

export interface StoredCopy {
  crc64: bigint;
  verification: Verification;
  /** The headers were replaced to match the run's (no bytes sent). */
  headersUpdated: boolean;
}

/** The stored copy when it holds the file's bytes, its headers brought up to date; undefined to upload. */
export async function unchangedStoredCopy(ctx: UnchangedContext): Promise<StoredCopy | undefined> {
  let head: StoredHead;
  try {
    head = await headStored(ctx);
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    // no object yet is the common case; any other answer just means the file is uploaded as usual
    if (!(isOssError(e) && (e.code === 'NoSuchKey' || e.status === 404))) {
      ctx.notice(
        `${ctx.key}: cannot check the stored copy (${isOssError(e) ? e.code : String(e)}); uploading it`,
      );
    }
    return undefined;
  }
  // a HEAD without Content-Length (size unknown) is not the same size: the file is uploaded as usual
  if (head.size !== ctx.size || head.crc64 === undefined) return undefined;
  const local =
    ctx.localCrc64 !== undefined ? { crc64: ctx.localCrc64 } : await ctx.hasher.hash(ctx.file, 0, ctx.size);
  const expected = { size: ctx.size, crc64: local.crc64 };
  const same = await checkStatement(
    { etag: head.etag, crc64: head.crc64, size: head.size },
    expected,
    'object',
  );
  if (same.kind !== 'verified') return undefined;
  const wanted = lowerCased(ctx.headers);
  const differing = differingHeaders(wanted, head.headers);
  const aclDiffers = wanted[ACL] !== undefined && (await storedAcl(ctx)) !== wanted[ACL];
  if (differing.length === 0 && !aclDiffers) {
    return { crc64: local.crc64, verification: same.verification, headersUpdated: false };
  }
  ctx.notice(
    `${ctx.key}: same bytes, other headers (${[...differing, ...(aclDiffers ? [ACL] : [])].join(', ')}); replacing the headers only`,
  );
  if (differing.length === 0) {
    await run(ctx, () =>
      ctx.client.putObjectAcl({ bucket: ctx.bucket, key: ctx.key, acl: wanted[ACL]!, signal: ctx.signal }),
    );
  } else {
    const copied =
      ctx.size < COPY_OBJECT_LIMIT_BYTES ? await copyOntoItself(ctx, wanted) : await copyByParts(ctx, wanted);
    const stated = await checkStatement(copied, expected, 'object');
    if (stated.kind === 'mismatch') throw stated.error;
  }
  return {
    crc64: local.crc64,
    verification: await confirmUpdate(ctx, wanted, expected),
    headersUpdated: true,
  };
}

/**
 * After new headers were sent: the stored object must be the file's bytes (a HEAD's CRC) with exactly the
 * wanted headers, and the wanted ACL when one is set (read back). Anything else fails the file, naming what
 * still differs.
 */
async function confirmUpdate(
  ctx: UnchangedContext,
  wanted: Record<string, string>,
  expected: { size: number; crc64: bigint },
): Promise<Verification> {
  let head: StoredHead;
  try {
    head = await headStored(ctx);
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    throw new Error(`${ctx.key}: new headers were sent, but a HEAD to check them failed: ${String(e)}`, {
      cause: e,
    });
  }
  const check = await checkStatement(
    { etag: head.etag, crc64: head.crc64, size: head.size },
    expected,
    'object',
  );
  if (check.kind === 'mismatch') throw check.error;
  if (check.kind !== 'verified')
    throw new Error(
      `${ctx.key}: new headers were sent, but a HEAD shows no CRC-64 to prove the bytes unchanged`,
    );
  const still = differingHeaders(wanted, head.headers).map(
    (h) =>
      `${h} (wanted ${JSON.stringify(wanted[h] ?? null)}, stored ${JSON.stringify(head.headers[h] ?? null)})`,
  );
  if (wanted[ACL] !== undefined) {
    const acl = await run(ctx, () =>
      ctx.client.getObjectAcl({ bucket: ctx.bucket, key: ctx.key, signal: ctx.signal }),
    ).catch((e: unknown) => {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw new Error(`${ctx.key}: the ACL was sent, but reading it back failed: ${String(e)}`, { cause: e });
    });
    if (acl !== wanted[ACL])
      still.push(`${ACL} (wanted ${JSON.stringify(wanted[ACL])}, stored ${JSON.stringify(acl)})`);
  }
  if (still.length > 0) {
    throw new Error(
      `${ctx.key}: the server answered success to the header update, but the stored object still differs: ${still.join(', ')}`,
    );
  }
  return check.verification;
}

type StoredHead = Awaited<ReturnType<OssClient['headObject']>>;

function headStored(ctx: UnchangedContext): Promise<StoredHead> {
  return run(ctx, () => ctx.client.headObject({ bucket: ctx.bucket, key: ctx.key, signal: ctx.signal }));
}

function run<T>(ctx: UnchangedContext, fn: () => Promise<T>): Promise<T> {
  return ctx.limiter.run(fn, ctx.signal);
}

function lowerCased(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

/** Names of the headers whose stored value is not the wanted one. */
export function differingHeaders(wanted: Record<string, string>, stored: Record<string, string>): string[] {
  const names = new Set([...BOTH_WAYS, ...WHEN_SET.filter((h) => wanted[h] !== undefined)]);
  for (const h of [...Object.keys(wanted), ...Object.keys(stored)]) if (h.startsWith(META)) names.add(h);
  return [...names].filter((h) => {
    const a = wanted[h];
    // OSS may leave out the storage class of a Standard object
    const b = h === 'x-oss-storage-class' ? (stored[h] ?? 'Standard') : stored[h];
    return ANY_CASE.has(h) ? a?.toLowerCase() !== b?.toLowerCase() : a !== b;
  });
}

async function storedAcl(ctx: UnchangedContext): Promise<string | undefined> {
  try {
    return await run(ctx, () =>
      ctx.client.getObjectAcl({ bucket: ctx.bucket, key: ctx.key, signal: ctx.signal }),
    );
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    ctx.notice(`${ctx.key}: cannot read the stored ACL (${isOssError(e) ? e.code : String(e)}); setting it`);
    return undefined;
  }
}

function copyOntoItself(
  ctx: UnchangedContext,
  wanted: Record<string, string>,
): Promise<{ etag: string; crc64?: bigint | undefined }> {
  return run(ctx, () =>
    ctx.client.copyObject({ bucket: ctx.bucket, key: ctx.key, headers: wanted, signal: ctx.signal }),
  );
}

/** Initiate with the new headers, copy every part from the object itself, complete; aborted on failure. */
async function copyByParts(
  ctx: UnchangedContext,
  wanted: Record<string, string>,
): Promise<{ etag: string; crc64?: bigint | undefined }> {
  const { uploadId } = await run(ctx, () =>
    ctx.client.initiateMultipartUpload({
      bucket: ctx.bucket,
      key: ctx.key,
      headers: wanted,
      signal: ctx.signal,
    }),
  );
  try {
    const parts = await Promise.all(
      Array.from({ length: ctx.plan.partCount }, (_, i) => {
        const partNumber = i + 1;
        const range = partRange(ctx.plan, ctx.size, partNumber);
        return run(ctx, () =>
          ctx.client.uploadPartCopy({
            bucket: ctx.bucket,
            key: ctx.key,
            uploadId,
            partNumber,
            sourceKey: ctx.key,
            range,
            signal: ctx.signal,
          }),
        ).then((p) => ({ partNumber, etag: p.etag }));
      }),
    );
    return await run(ctx, () =>
      ctx.client.completeMultipartUpload({
        bucket: ctx.bucket,
        key: ctx.key,
        uploadId,
        parts,
        signal: ctx.signal,
      }),
    );
  } catch (e) {
    await abortUpload(ctx, uploadId);
    throw e;
  }
}
