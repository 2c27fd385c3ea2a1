/**
 * Matrix shards: every job globs the same tree and plans the same keys, and uploads only its share, picked by
 * a hash of each key. A hash (not the glob order, not sizes) lets each job decide alone, with no coordinator,
 * and gives the same answer on every runner: the shares are disjoint and together hold every key.
 */
import { createHash } from 'node:crypto';
import { INPUT } from './constants.ts';
import { escapeText } from './log-line.ts';
import { SettingError, ref } from './setting-error.ts';

/** GitHub caps a matrix at 256 jobs; more shards could never all run. */
export const MAX_SHARDS = 256;

/** The keyword of the final job that verifies every shard's keys, then publishes last and cleans up. */
export const CLEANUP_SHARD = 'cleanup';

/** One upload job of `count`, 1-based. */
export interface UploadShard {
  kind: 'upload';
  index: number;
  count: number;
}

/** The job that runs after every shard (`needs:`): uploads nothing but the publish-last files. */
export interface CleanupShard {
  kind: 'cleanup';
  /** When given (`cleanup/4`), a key that is missing is reported with the shard that should have stored it. */
  count: number | undefined;
}

export type Shard = UploadShard | CleanupShard;

/** The 1-based shard of `count` that uploads `key`: the first 8 bytes of the SHA-256 of its UTF-8, mod count. */
export function shardOf(key: string, count: number): number {
  const digest = createHash('sha256').update(key, 'utf8').digest();
  return Number(digest.readBigUInt64BE(0) % BigInt(count)) + 1;
}

export function inShare(key: string, shard: Pick<UploadShard, 'index' | 'count'>): boolean {
  return shardOf(key, shard.count) === shard.index;
}

/** The keys of `keys` that `shard` uploads, in their given order. */
export function shareOf(keys: readonly string[], shard: Pick<UploadShard, 'index' | 'count'>): string[] {
  return keys.filter((k) => inShare(k, shard));
}

/** `shard 2/4` or `cleanup step`, for log lines and the summary. */
export function shardLabel(shard: Shard): string {
  return shard.kind === 'upload'
    ? `shard ${shard.index}/${shard.count}`
    : `cleanup step${shard.count === undefined ? '' : ` of ${shard.count} shards`}`;
}

const ALLOWED = `\`i/n\` with whole numbers 1 ≤ i ≤ n ≤ ${MAX_SHARDS} (e.g. \`2/4\`, from \`\${{ matrix.shard }}/4\`), \`${CLEANUP_SHARD}\` or \`${CLEANUP_SHARD}/n\` for the final job, or empty for no sharding`;

/** The `shard` setting; undefined when empty. */
export function parseShard(raw: string): Shard | undefined {
  const text = raw.trim();
  if (text === '') return undefined;
  const fail = (): never => {
    throw new SettingError(
      INPUT.shard,
      `${ref(INPUT.shard, true)}: got \`${escapeText(text)}\`; allowed ${ALLOWED}`,
      { value: text, allowed: ALLOWED },
    );
  };
  const cleanup = new RegExp(`^${CLEANUP_SHARD}(?:\\s*/\\s*(\\d+))?$`, 'i').exec(text);
  if (cleanup) {
    const count = cleanup[1] === undefined ? undefined : Number(cleanup[1]);
    if (count !== undefined && (count < 1 || count > MAX_SHARDS)) fail();
    return { kind: 'cleanup', count };
  }
  const m = /^(\d+)\s*\/\s*(\d+)$/.exec(text);
  if (!m) return fail();
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (index < 1 || count > MAX_SHARDS || index > count) fail();
  return { kind: 'upload', index, count };
}
