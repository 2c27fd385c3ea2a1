/**
 * OssError: every failure of an OSS request, from the service (XML body, headers) or from the transport
 * (reset, timeout). Whether it may be retried is decided once, here, following the error codes of the
 * Alibaba Cloud OSS documentation ("Error codes" and "Error handling").
 */
import type { OssOperation } from './operations.ts';

const BRAND = Symbol.for('oss-resumable-upload.oss-error');

// codes that a retry can cure; everything else with a 4xx status is the caller's to fix
const RETRYABLE_CODES = new Set([
  'RequestTimeTooSkewed',
  'CrcMismatch',
  'InternalError',
  'ServiceUnavailable',
  'SlowDown',
  'RequestTimeout',
  // a 2xx missing what the operation must return (UploadPart's ETag); set only on operations safe to repeat
  'IncompleteAnswer',
]);
const TRANSPORT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  // the server sent fewer or more bytes than its Content-Length: a cut connection
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  // one attempt ran past its total deadline (a trickling server)
  'RequestDeadlineExceeded',
]);
// never cured by sending the same request again, whatever the status: an answer too large to read, a header
// the HTTP layer refuses (other undici codes, e.g. UND_ERR_INVALID_ARG, are argument errors too)
const NEVER_RETRYABLE_CODES = new Set(['AnswerTooLarge', 'InvalidHeaderValue']);

export interface OssErrorFields {
  status: number;
  code: string;
  ossMessage?: string | undefined;
  requestId?: string | undefined;
  ec?: string | undefined;
  hostId?: string | undefined;
  operation: OssOperation;
  bucket?: string | undefined;
  key?: string | undefined;
  partNumber?: number | undefined;
  serverTime?: Date | undefined;
  cause?: unknown;
}

/** Decide retryability from status and code, once. */
export function isRetryable(status: number, code: string): boolean {
  if (NEVER_RETRYABLE_CODES.has(code)) return false;
  if (status === 0) return TRANSPORT_CODES.has(code);
  if (RETRYABLE_CODES.has(code)) return true;
  return status === 408 || status === 429 || status >= 500;
}

export class OssError extends Error {
  readonly status: number;
  readonly code: string;
  readonly ossMessage: string | undefined;
  readonly requestId: string | undefined;
  readonly ec: string | undefined;
  readonly hostId: string | undefined;
  readonly operation: OssOperation;
  readonly bucket: string | undefined;
  readonly key: string | undefined;
  readonly partNumber: number | undefined;
  readonly retryable: boolean;
  readonly serverTime: Date | undefined;
  readonly [BRAND] = true;

  constructor(f: OssErrorFields) {
    super(describe(f), f.cause === undefined ? undefined : { cause: f.cause });
    this.name = 'OssError';
    this.status = f.status;
    this.code = f.code;
    this.ossMessage = f.ossMessage;
    this.requestId = f.requestId;
    this.ec = f.ec;
    this.hostId = f.hostId;
    this.operation = f.operation;
    this.bucket = f.bucket;
    this.key = f.key;
    this.partNumber = f.partNumber;
    this.serverTime = f.serverTime;
    this.retryable = isRetryable(f.status, f.code);
  }

  /** Safe to log: no credentials or signatures ever reach an OssError. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      status: this.status,
      code: this.code,
      requestId: this.requestId,
      ec: this.ec,
      operation: this.operation,
      bucket: this.bucket,
      key: this.key,
      partNumber: this.partNumber,
      retryable: this.retryable,
    };
  }
}

function describe(f: OssErrorFields): string {
  const where = [
    f.bucket && f.key !== undefined ? `${f.bucket}/${f.key}` : f.bucket,
    f.partNumber ? `part ${f.partNumber}` : undefined,
  ]
    .filter(Boolean)
    .join(' ');
  return failureText(f.code, f.status, `${f.operation}${where ? ` ${where}` : ''}`, f.ossMessage, [
    f.requestId ? `RequestId ${f.requestId}` : undefined,
    f.ec ? `EC ${f.ec}` : undefined,
  ]);
}

/**
 * `Code (status) on what: message (ids)`: how every failed request to a cloud service reads, OSS or RPC, so
 * that logs of either can be searched alike. Status 0 (no answer) reads as `network`.
 */
export function failureText(
  code: string,
  status: number,
  on: string,
  message: string | undefined,
  ids: ReadonlyArray<string | undefined>,
): string {
  const shownIds = ids.filter(Boolean).join(', ');
  return `${code} (${status === 0 ? 'network' : String(status)}) on ${on}${message ? `: ${message}` : ''}${shownIds ? ` (${shownIds})` : ''}`;
}

/** A request that got no answer (reset, refused, timed out): status 0, the socket's error code. */
export function transportError(
  e: unknown,
  where: Pick<OssErrorFields, 'operation' | 'bucket' | 'key' | 'partNumber'>,
): OssError {
  const err = e as NodeJS.ErrnoException;
  return new OssError({
    status: 0,
    code: err.code ?? 'ECONNRESET',
    ossMessage: err.message,
    ...where,
    cause: e,
  });
}

/** Works across bundled copies, where `instanceof` would not. */
export function isOssError(e: unknown): e is OssError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}
