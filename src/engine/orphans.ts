/**
 * Orphans: objects under a prefix that the current deploy does not contain (pages removed from a static
 * site, files dropped from a release). Found with ListObjectsV2, removed with DeleteMultipleObjects.
 */
import type { OssClient } from '../oss/index.ts';

export interface OrphanSearch {
  client: OssClient;
  bucket: string;
  /** Only keys starting with this are candidates; '' is the whole bucket. */
  prefix: string;
  /** Keys the deploy contains: never orphans. */
  keep: ReadonlySet<string>;
  signal?: AbortSignal | undefined;
}

/**
 * Keys under `prefix` not in `keep`. Zero-byte keys ending in `/` are folder placeholders (the console makes
 * them) and hold nothing a deploy could have replaced, so they are left alone. A listing that names a key
 * outside `prefix` is refused by the client (MalformedAnswer), so nothing outside the destination is ever
 * returned here to be deleted.
 */
export async function findOrphans(s: OrphanSearch): Promise<string[]> {
  const objects = await s.client.listObjects({
    bucket: s.bucket,
    prefix: s.prefix,
    signal: s.signal,
  });
  return objects
    .filter((o) => !s.keep.has(o.key) && !(o.key.endsWith('/') && o.size === 0))
    .map((o) => o.key)
    .sort();
}

/** Delete `keys` in batches; throws when the service did not confirm every one. */
export async function deleteOrphans(o: {
  client: OssClient;
  bucket: string;
  keys: readonly string[];
  signal?: AbortSignal | undefined;
}): Promise<string[]> {
  if (o.keys.length === 0) return [];
  const { deleted } = await o.client.deleteObjects({
    bucket: o.bucket,
    keys: [...o.keys],
    signal: o.signal,
  });
  const confirmed = new Set(deleted);
  const missing = o.keys.filter((k) => !confirmed.has(k));
  if (missing.length > 0) {
    throw new Error(
      `DeleteMultipleObjects did not confirm ${missing.length} of ${o.keys.length} key(s) in ${o.bucket}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
    );
  }
  return [...o.keys];
}
