/** Part planning: how a file of a given size is cut into multipart-upload parts. */
import { InvalidArgumentError } from './errors.ts';

/** OSS's smallest part (all but the last): 100 KB, counted as 102,400 bytes. */
export const MIN_PART_SIZE_BYTES = 100 * 1024;
/** OSS's largest part: 5 GB. */
export const MAX_PART_SIZE_BYTES = 5 * 1024 ** 3;
/** OSS's highest part number. */
export const MAX_PARTS = 10_000;
/** Part size when the caller gives none. */
export const DEFAULT_PART_SIZE_BYTES = 8 * 1024 * 1024;
/** Largest object a multipart upload can hold: 10,000 parts of 5 GB. */
export const MAX_OBJECT_SIZE_BYTES = MAX_PARTS * MAX_PART_SIZE_BYTES;

export interface PartPlan {
  /** Bytes per part (the last part may be shorter). */
  readonly partSize: number;
  readonly partCount: number;
  /** The requested part size, when it had to grow to stay within 10,000 parts. */
  readonly partSizeAdjustedFrom?: number;
  /** True when the file goes up in one PutObject. */
  readonly single: boolean;
}

/** Throws {@link InvalidArgumentError} unless `partSize` is a whole number of bytes within OSS's limits. */
export function validatePartSize(partSize: number | 'auto' | undefined, field = 'partSize'): void {
  if (partSize === undefined || partSize === 'auto') return;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE_BYTES || partSize > MAX_PART_SIZE_BYTES) {
    throw new InvalidArgumentError(
      field,
      partSize,
      `a whole number of bytes from ${MIN_PART_SIZE_BYTES} (100 KB) to ${MAX_PART_SIZE_BYTES} (5 GB), or 'auto'`,
    );
  }
}

/**
 * Cut `fileSize` bytes into parts of `partSize`, growing the part size when the file would need more than
 * 10,000 parts. `auto` picks the default size, grown the same way. A file no larger than one part is a single
 * PutObject.
 */
export function planParts(fileSize: number, partSize: number | 'auto' = DEFAULT_PART_SIZE_BYTES): PartPlan {
  validatePartSize(partSize);
  if (!Number.isSafeInteger(fileSize) || fileSize < 0 || fileSize > MAX_OBJECT_SIZE_BYTES) {
    throw new InvalidArgumentError(
      'file size',
      fileSize,
      `0 to ${MAX_OBJECT_SIZE_BYTES} bytes (10,000 parts of 5 GB)`,
    );
  }
  const requested = partSize === 'auto' ? autoPartSize(fileSize) : partSize;
  let size = requested;
  if (Math.ceil(fileSize / size) > MAX_PARTS) size = wholeMiB(fileSize / MAX_PARTS);
  const single = fileSize <= size;
  const partCount = single ? 1 : Math.ceil(fileSize / size);
  const adjusted = size !== requested && partSize !== 'auto' ? { partSizeAdjustedFrom: requested } : {};
  return { partSize: size, partCount, single, ...adjusted };
}

/** Whole MiB at least `bytes`, so a computed size reads well in logs and stays stable between runs. */
function wholeMiB(bytes: number): number {
  const mib = 1024 * 1024;
  return Math.min(MAX_PART_SIZE_BYTES, Math.max(MIN_PART_SIZE_BYTES, Math.ceil(bytes / mib) * mib));
}

/** `auto`: the default size, or larger so that a big file needs at most about 1,000 requests. */
export function autoPartSize(fileSize: number): number {
  return Math.max(DEFAULT_PART_SIZE_BYTES, wholeMiB(fileSize / 1000));
}

/** Byte range of part `partNumber` (1-based). */
export function partRange(
  plan: PartPlan,
  fileSize: number,
  partNumber: number,
): { start: number; length: number } {
  const start = (partNumber - 1) * plan.partSize;
  return { start, length: Math.min(plan.partSize, fileSize - start) };
}
