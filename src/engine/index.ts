/** The resumable upload engine: the only surface the action and the CLI use. */
export {
  uploadFile,
  type UploadFileOptions,
  type UploadResult,
  type CheckpointOption,
} from './upload-file.ts';
export { uploadFiles, type UploadItem, type UploadOutcome, type UploadFilesOptions } from './upload-files.ts';
export { createLimiter, type Limiter } from './limiter.ts';
export { InvalidArgumentError, UploadError, IntegrityError, isUploadError } from './errors.ts';
export type { ProgressEvent, ProgressListener } from './progress.ts';
export {
  planParts,
  autoPartSize,
  MIN_PART_SIZE_BYTES,
  MAX_PART_SIZE_BYTES,
  MAX_PARTS,
  DEFAULT_PART_SIZE_BYTES,
  type PartPlan,
} from './plan.ts';
export {
  checkpointPathFor,
  CHECKPOINT_EXTENSION,
  encodeCheckpoint,
  decodeCheckpoint,
  type CheckpointState,
} from './checkpoint.ts';
export { RangeHasher } from './range-hasher.ts';
export { isCheckpointFileName } from './upload-intent.ts';
export { findOrphans, deleteOrphans, type OrphanSearch } from './orphans.ts';
export { checkpointedUploadIds, findStaleUploads, abortUploads, type StaleUpload } from './stale-uploads.ts';
