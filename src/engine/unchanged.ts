/**
 * Skip-unchanged: a re-run or a redeploy should not send bytes the bucket already holds. One HEAD per file; only
 * when the stored size equals the local size is the file read, and the object counts as unchanged only when its
 * CRC-64 equals the local bytes' CRC-64 (a size match alone proves nothing).
 */
import { type OssClient, isOssError } from '../oss/index.ts';
import type { Limiter } from './limiter.ts';
import type { RangeHasher } from './range-hasher.ts';

export interface StoredCopy {
  etag: string;
  crc64: bigint;
}

export async function unchangedStoredCopy(o: {
  client: OssClient;
  limiter: Limiter;
  hasher: RangeHasher;
  bucket: string;
  key: string;
  file: string;
  size: number;
  signal: AbortSignal;
  notice: (message: string) => void;
}): Promise<StoredCopy | undefined> {
  let head: Awaited<ReturnType<OssClient['headObject']>>;
  try {
    head = await o.limiter.run(
      () => o.client.headObject({ bucket: o.bucket, key: o.key, signal: o.signal }),
      o.signal,
    );
  } catch (e) {
    if (o.signal.aborted) throw o.signal.reason;
    // no object yet is the common case; any other answer just means the file is uploaded as usual
    if (!(isOssError(e) && (e.code === 'NoSuchKey' || e.status === 404))) {
      o.notice(
        `${o.key}: cannot check the stored copy (${isOssError(e) ? e.code : String(e)}); uploading it`,
      );
    }
    return undefined;
  }
  if (head.size !== o.size || head.crc64 === undefined) return undefined;
  const local = await o.hasher.hash(o.file, 0, o.size);
  return local.crc64 === head.crc64 ? { etag: head.etag, crc64: head.crc64 } : undefined;
}
