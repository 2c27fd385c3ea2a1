/** The state of one multipart upload while it runs: its id, the parts the server holds, and its checkpoint form. */
import { crc64Combine } from '../oss/index.ts';
import type { CheckpointPart, CheckpointState } from './checkpoint.ts';
import type { UploadContext } from './upload-context.ts';
import { type Expected, etagHex, multipartEtag } from './verification.ts';

export interface MultipartState {
  uploadId: string;
  /** Parts verified on the server, by part number. */
  readonly done: Map<number, CheckpointPart>;
  /** Parts sent in this run. */
  partsSent: number;
  /** How long InitiateMultipartUpload took, when this run began the upload: a measure of the round trip. */
  initiateMs?: number;
}

/** What a checkpoint records of the upload now. */
export function checkpointState(ctx: UploadContext, state: MultipartState): CheckpointState {
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

/** The parts in part-number order. */
export function sortedParts(parts: Iterable<CheckpointPart>): CheckpointPart[] {
  return [...parts].sort((a, b) => a.n - b.n);
}

/** The whole object's CRC from its parts' CRCs, without reading a byte again. */
export function combinedCrc(sorted: readonly CheckpointPart[]): bigint {
  let crc = 0n;
  for (const p of sorted) crc = crc64Combine(crc, BigInt(p.crc64), p.size);
  return crc;
}

/** The whole object as a check wants it: size, CRC, and the multipart ETag the parts' MD5s give. */
export function objectExpected(ctx: UploadContext, crc: bigint, sorted: readonly CheckpointPart[]): Expected {
  return {
    size: ctx.fileStat.size,
    crc64: crc,
    etag: () => Promise.resolve(multipartEtag(sorted.map((p) => etagHex(p.etag)))),
  };
}
