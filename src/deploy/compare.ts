/**
 * What the engine's skip-unchanged would decide for a file whose stored object has its size, without doing it:
 * the dry run's answer. Same bytes means the stored CRC-64 equals the local bytes' CRC-64; same headers uses the
 * engine's own comparison, so the plan and the real run cannot disagree.
 */
import { type Limiter } from '../engine/index.ts';
import { sharedRangeHasher } from '../engine/range-hasher.ts';
import { differingHeaders } from '../engine/unchanged.ts';
import { type OssClient, isOssError } from '../oss/index.ts';

/** `unverifiable`: the stored object carries no CRC-64, so its bytes cannot be compared (a real run re-sends). */
export type Decision = 'upload' | 'update headers' | 'unchanged' | 'unverifiable';

const ACL = 'x-oss-object-acl';

export async function decideOnly(o: {
  client: OssClient;
  limiter: Limiter;
  bucket: string;
  key: string;
  file: string;
  size: number;
  headers: Record<string, string>;
  signal: AbortSignal;
}): Promise<Decision> {
  let head: Awaited<ReturnType<OssClient['headObject']>>;
  try {
    head = await o.limiter.run(
      () => o.client.headObject({ bucket: o.bucket, key: o.key, signal: o.signal }),
      o.signal,
    );
  } catch (e) {
    if (isOssError(e) && (e.code === 'NoSuchKey' || e.status === 404)) return 'upload';
    throw e;
  }
  if (head.size !== o.size) return 'upload';
  if (head.crc64 === undefined) return 'unverifiable';
  const local = await sharedRangeHasher().hash(o.file, 0, o.size);
  if (local.crc64 !== head.crc64) return 'upload';
  const wanted: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.headers)) wanted[k.toLowerCase()] = v;
  if (differingHeaders(wanted, head.headers).length > 0) return 'update headers';
  if (wanted[ACL] === undefined) return 'unchanged';
  const acl = await o.limiter.run(
    () => o.client.getObjectAcl({ bucket: o.bucket, key: o.key, signal: o.signal }),
    o.signal,
  );
  return acl === wanted[ACL] ? 'unchanged' : 'update headers';
}
