/**
 * The checkpoint file: what a later run needs to continue a multipart upload. Versioned, carrying a
 * checksum of its own content, written atomically (temp file, fsync, rename) and never holding credentials.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export const CHECKPOINT_FORMAT = 'oss-resumable-upload/checkpoint';
export const CHECKPOINT_VERSION = 1;
/** Extension of checkpoint files inside a checkpoint dir. */
export const CHECKPOINT_EXTENSION = '.cp';

export interface CheckpointPart {
  /** Part number, 1-based. */
  readonly n: number;
  readonly etag: string;
  readonly size: number;
  /** CRC-64/XZ of the part as a decimal string (as OSS writes it). */
  readonly crc64: string;
}

export interface CheckpointState {
  readonly bucket: string;
  readonly key: string;
  /** Where the upload lives (endpoint, bucket and key as a URL), so a checkpoint is not reused elsewhere. */
  readonly endpoint: string;
  readonly file: string;
  readonly fileSize: number;
  readonly partSize: number;
  readonly uploadId: string;
  readonly parts: readonly CheckpointPart[];
}

/** What a checkpoint must match to be used. */
export type CheckpointIdentity = Pick<
  CheckpointState,
  'bucket' | 'key' | 'endpoint' | 'fileSize' | 'partSize'
>;

/** Why a checkpoint file was not used; `missing` is the ordinary first run. */
export type CheckpointRejection =
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid'; readonly reason: string; readonly state?: CheckpointState };

/** Serialise with a checksum over the exact body, so any edit or truncation is caught on load. */
export function encodeCheckpoint(state: CheckpointState): string {
  const body = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    bucket: state.bucket,
    key: state.key,
    endpoint: state.endpoint,
    file: state.file,
    fileSize: state.fileSize,
    partSize: state.partSize,
    uploadId: state.uploadId,
    parts: [...state.parts]
      .sort((a, b) => a.n - b.n)
      .map((p) => ({ n: p.n, etag: p.etag, size: p.size, crc64: p.crc64 })),
  };
  const json = JSON.stringify(body);
  return `${JSON.stringify({ checksum: sha256(json), body })}\n`;
}

/** Parse and validate; anything unexpected is a rejection with a reason a person can read. */
export function decodeCheckpoint(text: string): CheckpointState | { error: string } {
  let outer: unknown;
  try {
    outer = JSON.parse(text);
  } catch {
    return { error: 'not valid JSON (corrupt or truncated)' };
  }
  if (!isRecord(outer) || typeof outer.checksum !== 'string' || !isRecord(outer.body)) {
    return { error: 'not a checkpoint file' };
  }
  const body = outer.body;
  if (body.format !== CHECKPOINT_FORMAT) return { error: 'not a checkpoint file' };
  if (body.version !== CHECKPOINT_VERSION) {
    return { error: `format version ${JSON.stringify(body.version)}, expected ${CHECKPOINT_VERSION}` };
  }
  if (sha256(JSON.stringify(body)) !== outer.checksum)
    return { error: 'checksum mismatch (edited or corrupt)' };
  const { bucket, key, endpoint, file, fileSize, partSize, uploadId, parts } = body;
  if (
    typeof bucket !== 'string' ||
    typeof key !== 'string' ||
    typeof endpoint !== 'string' ||
    typeof file !== 'string' ||
    !isCount(fileSize) ||
    !isCount(partSize) ||
    typeof uploadId !== 'string' ||
    uploadId === '' ||
    !Array.isArray(parts)
  ) {
    return { error: 'fields missing or of the wrong type' };
  }
  const seen = new Set<number>();
  const checked: CheckpointPart[] = [];
  for (const p of parts as unknown[]) {
    if (
      !isRecord(p) ||
      !isCount(p.n) ||
      p.n < 1 ||
      typeof p.etag !== 'string' ||
      !isCount(p.size) ||
      typeof p.crc64 !== 'string' ||
      !/^\d{1,20}$/.test(p.crc64) ||
      seen.has(p.n)
    ) {
      return { error: 'a part entry is malformed' };
    }
    seen.add(p.n);
    checked.push({ n: p.n, etag: p.etag, size: p.size, crc64: p.crc64 });
  }
  return { bucket, key, endpoint, file, fileSize, partSize, uploadId, parts: checked };
}

/** Load the checkpoint at `path` and check it belongs to `identity`. */
export async function loadCheckpoint(
  path: string,
  identity: CheckpointIdentity,
): Promise<CheckpointState | CheckpointRejection> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    return { kind: 'invalid', reason: `unreadable (${(e as Error).message})` };
  }
  const decoded = decodeCheckpoint(text);
  if ('error' in decoded) return { kind: 'invalid', reason: decoded.error };
  for (const field of ['bucket', 'key', 'endpoint', 'fileSize', 'partSize'] as const) {
    if (decoded[field] !== identity[field]) {
      return {
        kind: 'invalid',
        reason: `written for another ${field} (${String(decoded[field])}, now ${String(identity[field])})`,
        state: decoded,
      };
    }
  }
  return decoded;
}

export function isCheckpointState(v: CheckpointState | CheckpointRejection): v is CheckpointState {
  return !('kind' in v);
}

/** Replace the file at `path` atomically: a crash leaves the old or the new checkpoint, never a torn one. */
export async function writeCheckpoint(path: string, state: CheckpointState): Promise<void> {
  await writeFileAtomic(path, encodeCheckpoint(state));
}

/** Temp file, fsync, rename: a crash leaves the old content or the new, never a mix. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (e) {
    // a full disk fails the write or the sync: the half-written temp file must not stay behind
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** Remove the checkpoint and any temp file a killed writer left beside it. */
export async function deleteCheckpoint(path: string): Promise<void> {
  await rm(path, { force: true });
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith(prefix) && name.endsWith('.tmp')) await rm(join(dir, name), { force: true });
  }
}

/** The checkpoint file for `bucket`/`key` inside a checkpoint dir. */
export function checkpointPathFor(dir: string, bucket: string, key: string): string {
  return join(dir, `${sha256(`${bucket}\n${key}`).slice(0, 32)}${CHECKPOINT_EXTENSION}`);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
