/** Request bodies that can be opened again for each attempt: a file range, or bytes in memory. */
import { open } from 'node:fs/promises';
import { getDefaultHighWaterMark } from 'node:stream';

export interface Body {
  readonly length: number;
  /** The whole body afresh; called once per attempt. Bytes in memory are given as they are. */
  open(): NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Uint8Array;
}

/**
 * 512 KiB reads: as fast as 1 MiB reads and 1.6-1.8x the 64 KiB default, for half the memory of 1 MiB in every
 * body (measured with `npm run bench`; README, Benchmarks).
 */
export const READ_CHUNK_BYTES = 512 * 1024;

/**
 * Read buffers kept for the next body instead of left to the garbage collector: fresh 1 MiB buffers per chunk
 * live outside the JS heap, where the collector frees them late, so a fast upload's memory grew with its speed.
 * A body holds two (one on the wire, one being read), so the pool holds what the requests in flight use.
 */
class ReadBufferPool {
  private readonly free: Buffer[] = [];
  private readonly bytes: number;
  private readonly keep: number;

  constructor(bytes: number, keep: number) {
    this.bytes = bytes;
    this.keep = keep;
  }

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bytes);
  }

  give(buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf);
  }
}

/** Enough for 32 requests in flight at two buffers each; beyond that, spare buffers go to the collector. */
const pool = new ReadBufferPool(READ_CHUNK_BYTES, 64);

/**
 * Below this a write returns true and undici asks for the next chunk before the socket has written this one,
 * so resuming the reader proves nothing about that buffer: it is not reused.
 */
const DRAINED_PROOF_BYTES = 4 * getDefaultHighWaterMark(false);

/** `length` bytes of `path` from `start`, streamed; never the whole file in memory. */
export function fileRangeBody(path: string, start: number, length: number): Body {
  return { length, open: () => readRange(path, start, length) };
}

/**
 * The range in chunks read into pooled buffers, the next chunk read while the last one is on the wire.
 *
 * A buffer goes back to the pool only once the consumer has asked for the chunk after it: undici writes a chunk
 * larger than the socket's high-water mark, waits for 'drain' (the socket is done with the bytes), and only then
 * asks again. A buffer still out when the body is abandoned (request failed or aborted) is never reused, since
 * the socket may still hold it. A file shorter than the range ends the body early; the caller counts bytes.
 */
async function* readRange(path: string, start: number, length: number): AsyncGenerator<Uint8Array> {
  if (length === 0) return;
  const file = await open(path, 'r');
  const end = start + length;
  let pos = start;
  const read = (buf: Buffer): { buf: Buffer; n: Promise<number> } => {
    const want = Math.min(buf.length, end - pos);
    const at = pos;
    pos += want;
    return { buf, n: file.read(buf, 0, want, at).then((r) => r.bytesRead) };
  };
  let next: { buf: Buffer; n: Promise<number> } | undefined;
  // the chunk last handed out: free once the next one is asked for, held by the socket until then
  let out: Buffer | undefined;
  try {
    next = read(pool.take());
    while (next) {
      const { buf } = next;
      const n = await next.n;
      next = undefined;
      if (n === 0) {
        pool.give(buf);
        break;
      }
      if (n === buf.length && pos < end) {
        next = read(out ?? pool.take());
        out = undefined;
      }
      if (out) pool.give(out);
      out = buf;
      yield buf.subarray(0, n);
      if (n < DRAINED_PROOF_BYTES) out = undefined;
    }
    if (out) pool.give(out);
    out = undefined;
  } finally {
    // a read still running writes into its buffer: pooled only once it has ended. `out` is still set only when
    // the body was abandoned with a chunk handed out, which the socket may still hold: it is left to the collector
    if (next) {
      await next.n.catch(() => 0);
      pool.give(next.buf);
    }
    await file.close();
  }
}

export function bufferBody(data: Uint8Array | string): Body {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return { length: bytes.length, open: () => bytes };
}
