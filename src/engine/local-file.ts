/**
 * The local file as this upload first saw it, and the ways it can stop being that file while it is read: grown,
 * truncated, deleted, replaced, or edited in place with its modification time put back (`touch -r`, `rsync
 * --inplace -t`: only the change time moves). Such a change fails the upload at once; sending it again cannot help.
 */
import { createHash } from 'node:crypto';
import { type Stats, close, constants, fstat, open, read, stat } from 'node:fs';
import { promisify } from 'node:util';
import { type Body, Crc64, crc64, fileRangeBody } from '../oss/index.ts';
import type { LoadedFile, RangeDigest } from './range-hasher.ts';

/** What must stay the same for the bytes read early and the bytes read late to be one file. */
export interface FileIdentity {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly dev: number;
}

export function identityOf(s: FileIdentity): FileIdentity {
  return { size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino, dev: s.dev };
}

export class LocalFileChangedError extends Error {
  readonly code = 'LocalFileChanged';
  readonly retryable = false;

  constructor(detail: string) {
    super(
      `the local file changed (or was deleted) during its upload (${detail}); upload it again once it is complete`,
    );
    this.name = 'LocalFileChangedError';
  }
}

export function isLocalFileChanged(e: unknown): e is LocalFileChangedError {
  return e instanceof LocalFileChangedError;
}

/** Read errors that mean the file is no longer the one being uploaded, as opposed to an unreadable disk. */
const CHANGED_CODES = new Set(['ENOENT', 'ESHORTREAD', 'ESTALE']);

/** The error to report for a failed read of the file: a vanished or shortened file is a local change. */
export function asLocalChange(e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && CHANGED_CODES.has(code)) {
    return new LocalFileChangedError(code === 'ENOENT' ? 'it was deleted' : 'it is shorter than it was');
  }
  return e;
}

// the callback forms: for small files these calls are a large share of the work, and the promise API (FileHandle
// objects, promise-returning bindings) costs about 1.5x their CPU
const statAsync = promisify(stat);
const openAsync = promisify(open);
const readAsync = promisify(read);
const closeAsync = promisify(close);
const fstatAsync = promisify(fstat);

/**
 * A FIFO opened for reading would wait for a writer; non-blocking, it opens at once and fstat says it is no
 * regular file (Windows has no such flag, nor such files).
 */
export const OPEN_NO_WAIT = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * RangeHasher.load on this thread, for when no hashing thread is running yet: waiting for one to start would
 * hold up the first file by the thread's start-up.
 */
export async function loadHere(path: string, maxBytes: number): Promise<LoadedFile> {
  const fd = await openAsync(path, OPEN_NO_WAIT);
  try {
    const s = await fstatAsync(fd);
    const stat = { ...identityOf(s), isFile: s.isFile() };
    if (!stat.isFile || s.size > maxBytes) return { stat };
    const bytes = Buffer.allocUnsafe(s.size);
    for (let got = 0; got < s.size;) {
      const { bytesRead: n } = await readAsync(fd, bytes, got, s.size - got, got);
      if (n === 0) throw Object.assign(new Error('file ended early'), { code: 'ESHORTREAD' });
      got += n;
    }
    return { stat, bytes, digest: { crc64: crc64(bytes) } };
  } finally {
    await closeAsync(fd);
  }
}

/** The file's metadata, by path. */
export function statFile(path: string): Promise<Stats> {
  return statAsync(path);
}

/** Exactly `size` bytes of the file from its start; a shorter or vanished file is a local change. */
export async function readWhole(path: string, size: number): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(size);
  try {
    const fd = await openAsync(path, 'r');
    try {
      for (let got = 0; got < size;) {
        const { bytesRead: n } = await readAsync(fd, bytes, got, size - got, got);
        if (n === 0) throw Object.assign(new Error('file ended early'), { code: 'ESHORTREAD' });
        got += n;
      }
    } finally {
      await closeAsync(fd);
    }
  } catch (e) {
    throw asLocalChange(e);
  }
  return bytes;
}

/** Throws LocalFileChangedError when the file at `path` is no longer `before`. */
export async function assertFileUnchanged(path: string, before: FileIdentity): Promise<void> {
  let now: Stats;
  try {
    now = await statAsync(path);
  } catch {
    throw new LocalFileChangedError('it was deleted');
  }
  const changed = (['size', 'mtimeMs', 'ctimeMs', 'ino', 'dev'] as const).filter((f) => now[f] !== before[f]);
  if (changed.length > 0) {
    const what = changed.includes('size')
      ? `size ${before.size} -> ${now.size}`
      : `${changed.join(', ')} moved`;
    throw new LocalFileChangedError(what);
  }
}

/**
 * A file range as a request body that counts each byte once and notices a local change while it streams.
 * Each attempt of the client re-opens the body: the bytes of the abandoned attempt are taken back first, and an
 * abandoned attempt still being drained reports nothing more. A read that ends short or finds the file gone
 * aborts `signal` with a LocalFileChangedError, so the client stops without retrying.
 */
export interface GuardedBody extends Body {
  /** Bytes the current attempt has reported. */
  readonly counted: number;
  readonly signal: AbortSignal;
  /**
   * The digest of the current attempt's bytes (when asked for), once it has read the whole range; undefined
   * before, and for an attempt cut short.
   */
  readonly digest: RangeDigest | undefined;
}

/**
 * With `digest`, each attempt hashes the very chunks it hands to the client, as it hands them over: the range is
 * read once, not once to send and once more to hash, and no hashing thread is needed for it.
 */
export function guardedFileBody(
  path: string,
  start: number,
  length: number,
  onBytes: (delta: number) => void,
  opts: { digest?: { md5: boolean } } = {},
): GuardedBody {
  const controller = new AbortController();
  let attempt = 0;
  let counted = 0;
  let digest: RangeDigest | undefined;
  const fail = (e: unknown): never => {
    const changed = asLocalChange(e);
    if (isLocalFileChanged(changed)) controller.abort(changed);
    throw changed;
  };
  const inner = fileRangeBody(path, start, length);
  return {
    length,
    signal: controller.signal,
    get counted() {
      return counted;
    },
    get digest() {
      return digest;
    },
    open() {
      if (counted !== 0) onBytes(-counted);
      counted = 0;
      digest = undefined;
      const mine = ++attempt;
      const source = inner.open() as AsyncIterable<Uint8Array>;
      const crc = opts.digest ? new Crc64() : undefined;
      const md5 = opts.digest?.md5 ? createHash('md5') : undefined;
      return (async function* read() {
        let got = 0;
        try {
          for await (const chunk of source) {
            got += chunk.length;
            if (mine === attempt) {
              counted += chunk.length;
              onBytes(chunk.length);
              // before the yield: once handed over, a pooled chunk may be refilled
              crc?.update(chunk);
              md5?.update(chunk);
              // known before the last chunk goes: the answer may arrive before the client asks for more
              if (crc && got === length)
                digest = { crc64: crc.value, ...(md5 ? { md5: md5.digest('hex') } : {}) };
            }
            yield chunk;
          }
        } catch (e) {
          fail(e);
        }
        if (got < length) fail(Object.assign(new Error('file ended early'), { code: 'ESHORTREAD' }));
      })();
    },
  };
}

/**
 * Bytes already read into memory as a body: handed to the client whole (no stream to drive), and counted as
 * sent when an attempt begins. They were read once and cannot change, so nothing here can abort.
 */
export function guardedMemoryBody(bytes: Uint8Array, onBytes: (delta: number) => void): GuardedBody {
  let counted = 0;
  return {
    length: bytes.length,
    signal: new AbortController().signal,
    digest: undefined,
    get counted() {
      return counted;
    },
    open() {
      onBytes(bytes.length - counted);
      counted = bytes.length;
      return bytes;
    },
  };
}
