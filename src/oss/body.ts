/** Request bodies that can be opened again for each attempt: a file range, or bytes in memory. */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';

export interface Body {
  readonly length: number;
  /** A fresh stream of the whole body; called once per attempt. */
  open(): NodeJS.ReadableStream | AsyncIterable<Uint8Array>;
}

/** 1 MiB reads: 1.6-1.8x the throughput of the 64 KiB default (shared/reference/performance.md). */
export const READ_CHUNK_BYTES = 1024 * 1024;

/** `length` bytes of `path` from `start`, streamed; never the whole file in memory. */
export function fileRangeBody(
  path: string,
  start: number,
  length: number,
  opts: { highWaterMark?: number } = {},
): Body {
  return {
    length,
    open: () =>
      length === 0
        ? Readable.from([])
        : createReadStream(path, {
            start,
            end: start + length - 1,
            highWaterMark: opts.highWaterMark ?? READ_CHUNK_BYTES,
          }),
  };
}

export function bufferBody(data: Uint8Array | string): Body {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return { length: bytes.length, open: () => Readable.from([bytes]) };
}
