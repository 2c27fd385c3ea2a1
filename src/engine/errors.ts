/** Errors of the upload engine; each names what failed and whether the upload can continue later. */

const BRAND = Symbol.for('oss-resumable-upload.upload-error');

/** A caller's option is out of range; thrown before any file handle or request. */
export class InvalidArgumentError extends Error {
  readonly field: string;
  readonly value: unknown;
  readonly code = 'InvalidArgument';

  constructor(field: string, value: unknown, allowed: string) {
    super(`${field}: got ${describe(value)}; allowed ${allowed}`);
    this.name = 'InvalidArgumentError';
    this.field = field;
    this.value = value;
  }
}

/** An upload failed; `resumable` says whether a checkpoint was kept so a later run continues it. */
export class UploadError extends Error {
  readonly file: string;
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string | undefined;
  readonly resumable: boolean;
  /** The OSS code (or transport code) of the cause, when there is one. */
  readonly code: string | undefined;
  readonly [BRAND] = true;

  constructor(opts: {
    file: string;
    bucket: string;
    key: string;
    uploadId?: string | undefined;
    resumable: boolean;
    cause: unknown;
    message?: string;
  }) {
    const cause = opts.cause;
    const reason = opts.message ?? (cause instanceof Error ? cause.message : String(cause));
    const keep = opts.resumable ? '; the checkpoint is kept, so a re-run continues this upload' : '';
    super(`upload of ${opts.file} to oss://${opts.bucket}/${opts.key} failed: ${reason}${keep}`, { cause });
    this.name = 'UploadError';
    this.file = opts.file;
    this.bucket = opts.bucket;
    this.key = opts.key;
    this.uploadId = opts.uploadId;
    this.resumable = opts.resumable;
    this.code =
      typeof cause === 'object' && cause !== null && typeof (cause as { code?: unknown }).code === 'string'
        ? (cause as { code: string }).code
        : undefined;
  }
}

/** Works across bundled copies of the engine, where `instanceof` would not. */
export function isUploadError(e: unknown): e is UploadError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `\`${value}\``;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  return JSON.stringify(value) ?? String(value);
}

/** The bytes the server holds are not the bytes that were read: retried a few times, then reported. */
export class IntegrityError extends Error {
  readonly code = 'CrcMismatch';
  readonly retryable = true;

  constructor(what: string, expected: string, got: string, check: 'crc64' | 'md5' | 'size') {
    const name = { crc64: 'CRC64', md5: 'MD5 ETag', size: 'size' }[check];
    super(`${what}: the server's ${name} ${got} differs from the local ${expected}`);
    this.name = 'IntegrityError';
  }
}
