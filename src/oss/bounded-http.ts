/**
 * One HTTP exchange with a deadline on the whole of it and a cap on the answer, for the small JSON/text
 * services beside OSS (instance metadata, CDN). A hung or flooding peer costs at most `timeoutMs` and
 * `maxBytes`, never a stuck job or a full heap.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { request, sharedAgent } from './undici.ts';

export interface BoundedRequest {
  method: 'GET' | 'PUT' | 'POST';
  headers?: Record<string, string> | undefined;
  body?: string | undefined;
  /** Connect, headers and body together. */
  timeoutMs: number;
  /** A longer answer is an error (code AnswerTooLarge). */
  maxBytes: number;
  signal?: AbortSignal | undefined;
}

export interface BoundedAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** When the headers arrived, for reading the peer's Date against our clock. */
  receivedAt: number;
}

/** No answer: `code` is the socket's (ECONNREFUSED, ...), RequestDeadlineExceeded or AnswerTooLarge. */
export class NoAnswerError extends Error {
  readonly code: string;
  constructor(code: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'NoAnswerError';
    this.code = code;
  }
}

/** Resolves with any HTTP status; rejects with the caller's abort reason or a NoAnswerError. */
export async function boundedRequest(url: URL, r: BoundedRequest): Promise<BoundedAnswer> {
  r.signal?.throwIfAborted();
  const deadline = AbortSignal.timeout(r.timeoutMs);
  const signal = r.signal ? AbortSignal.any([r.signal, deadline]) : deadline;
  try {
    const res = await request(sharedAgent(), {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: r.method,
      headers: r.headers ?? {},
      body: r.body ?? null,
      signal,
      headersTimeout: r.timeoutMs,
      bodyTimeout: r.timeoutMs,
    });
    const receivedAt = Date.now();
    const text = await readAtMost(res.body, r.maxBytes);
    if (text === undefined)
      throw new NoAnswerError('AnswerTooLarge', `the answer is larger than ${r.maxBytes} bytes`);
    return { status: res.statusCode, headers: res.headers, text, receivedAt };
  } catch (e) {
    if (r.signal?.aborted) throw r.signal.reason;
    if (e instanceof NoAnswerError) throw e;
    if (deadline.aborted)
      throw new NoAnswerError('RequestDeadlineExceeded', `no complete answer within ${r.timeoutMs} ms`, e);
    const err = e as NodeJS.ErrnoException;
    throw new NoAnswerError(err.code ?? 'ECONNRESET', err.message, e);
  }
}

/** The whole body as text, or undefined (the rest unread, the body destroyed) once it passes `cap` bytes. */
export async function readAtMost(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  cap: number,
): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > cap) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
