/**
 * The success gate. An object counts as uploaded only on a server statement that its bytes are the local
 * bytes: a CRC-64 equal to the local CRC-64, or, from a server that sends no CRC at all, an ETag equal to the
 * MD5 the local bytes give. That statement must come in a success answer (the upload's own, or a HEAD made
 * to check it). `UploadResult` is built only by `verifiedResult`, from a `Verification` that only the checks
 * in this module can make.
 */
import { createHash } from 'node:crypto';
import { type OssClient, isOssError } from '../oss/index.ts';
import { IntegrityError } from './errors.ts';

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
  /** The bucket already held these exact bytes and headers, so nothing was sent (`skipUnchanged`). */
  unchanged?: boolean;
  /** The bucket held these exact bytes with other headers: only the headers were replaced, no bytes sent. */
  headersUpdated?: true;
}

const PROOF: unique symbol = Symbol('verification');

/** Proof that the stored object is the local bytes; made only in this module. */
export interface Verification {
  readonly [PROOF]: true;
  readonly by: 'crc64' | 'md5';
  /** The ETag the proving answer carried. */
  readonly etag: string;
}

function proof(by: 'crc64' | 'md5', etag: string): Verification {
  return { [PROOF]: true, by, etag };
}

/** What the local bytes are, for a check. */
export interface Expected {
  size: number;
  crc64: bigint;
  /**
   * The ETag the local bytes give when the server computes it by MD5: the hex MD5 of a single PUT, or
   * `md5(part MD5s)-N` of a multipart upload. Called only when no CRC is there to compare.
   */
  etag?: () => Promise<string | undefined>;
}

export type Check =
  | { readonly kind: 'verified'; readonly verification: Verification; readonly stored: StoredFacts }
  /** The server states bytes other than the local ones. */
  | { readonly kind: 'mismatch'; readonly error: IntegrityError; readonly stored: StoredFacts }
  /** Nothing in the answer proves or disproves anything. */
  | { readonly kind: 'unproven' }
  | { readonly kind: 'absent' };

/** What a HEAD or an upload answer said the key holds. */
export interface StoredFacts {
  etag: string;
  crc64?: bigint | undefined;
  size?: number | undefined;
  /** Last-Modified of a HEAD: to the second, on the server's clock. */
  lastModified?: Date | undefined;
}

/**
 * Last-Modified is truncated to the second, and `since` (read from the server clock as learned from Date
 * headers, themselves to the second) may be up to a second late: an object written at or after `since`
 * always has a Last-Modified later than `since` minus this.
 */
const WRITE_TIME_SLACK_MS = 2000;

/** Whether the key's object was written at or after `since` (server clock, ms), as far as HEAD can tell. */
export function writtenSince(stored: StoredFacts, since: number): boolean {
  return stored.lastModified !== undefined && stored.lastModified.getTime() > since - WRITE_TIME_SLACK_MS;
}

/** Unquoted, lower-case ETag, to compare with a hex MD5. */
export function etagHex(etag: string): string {
  return etag.replace(/^W\//, '').replace(/"/g, '').toLowerCase();
}

/** The ETag of a multipart object as OSS (and S3) compute it: MD5 over the parts' binary MD5s, then `-N`. */
export function multipartEtag(partMd5s: readonly string[]): string | undefined {
  if (!partMd5s.every((m) => /^[0-9a-f]{32}$/.test(m))) return undefined;
  const md5 = createHash('md5').update(Buffer.concat(partMd5s.map((m) => Buffer.from(m, 'hex'))));
  return `${md5.digest('hex')}-${partMd5s.length}`;
}

/** Check an answer's CRC (or, from a server without CRCs, its ETag) against the local bytes. */
export async function checkStatement(stored: StoredFacts, expected: Expected, what: string): Promise<Check> {
  if (stored.size !== undefined && stored.size !== expected.size) {
    const error = new IntegrityError(`${what} size`, String(expected.size), String(stored.size), 'size');
    return { kind: 'mismatch', error, stored };
  }
  if (stored.crc64 !== undefined) {
    if (stored.crc64 === expected.crc64)
      return { kind: 'verified', verification: proof('crc64', stored.etag), stored };
    const error = new IntegrityError(what, expected.crc64.toString(), stored.crc64.toString(), 'crc64');
    return { kind: 'mismatch', error, stored };
  }
  const want = await expected.etag?.();
  const got = etagHex(stored.etag);
  if (want === undefined || !/^[0-9a-f]{32}(-\d+)?$/.test(got)) return { kind: 'unproven' };
  if (got === want) return { kind: 'verified', verification: proof('md5', stored.etag), stored };
  return { kind: 'mismatch', error: new IntegrityError(what, want, got, 'md5'), stored };
}

/**
 * HEAD the key and check what it holds. `absent` for no such key; a HEAD that fails otherwise is `unproven`
 * (nothing is known, so nothing may be reported or deleted on its word).
 */
export async function checkByHead(
  o: { client: OssClient; bucket: string; key: string; signal?: AbortSignal | undefined },
  expected: Expected,
): Promise<Check> {
  let head: Awaited<ReturnType<OssClient['headObject']>>;
  try {
    head = await o.client.headObject({
      bucket: o.bucket,
      key: o.key,
      signal: o.signal ?? AbortSignal.timeout(60_000),
    });
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason;
    return isOssError(e) && (e.code === 'NoSuchKey' || e.status === 404)
      ? { kind: 'absent' }
      : { kind: 'unproven' };
  }
  return checkStatement(
    { etag: head.etag, crc64: head.crc64, size: head.size, lastModified: head.lastModified },
    expected,
    'object',
  );
}

/** The only way to an UploadResult: the fields of the upload plus the proof that it is what was read. */
export function verifiedResult(
  fields: Omit<UploadResult, 'etag' | 'crc64' | 'verified'>,
  crc: bigint,
  v: Verification,
): UploadResult {
  if (v[PROOF] !== true) throw new Error('an upload result needs a verification');
  return { ...fields, etag: v.etag, crc64: crc.toString(), verified: v.by };
}

/** The error for a success answer that a HEAD did not confirm. */
export function unconfirmed(check: Check): Error {
  if (check.kind === 'mismatch') return check.error;
  return new Error(
    check.kind === 'absent'
      ? 'the server answered success, but the object does not exist (not confirmed by HEAD)'
      : 'the server answered success without a CRC-64, and a HEAD could not confirm the object',
  );
}
