/** uploadFiles(): many files under one concurrency limit, each with its own outcome. */
import { checkpointPathFor } from './checkpoint.ts';
import { createLimiter } from './limiter.ts';
import { type UploadFileOptions, type UploadResult, uploadFile } from './upload-file.ts';

export interface UploadItem {
  file: string;
  key: string;
  /** Headers for this object only, added to the shared ones. */
  headers?: Record<string, string>;
}

export type UploadOutcome =
  { item: UploadItem; ok: true; result: UploadResult } | { item: UploadItem; ok: false; error: unknown };

export interface UploadFilesOptions extends Omit<UploadFileOptions, 'file' | 'key' | 'checkpoint'> {
  /** A dir for the files' checkpoints (one file per object), or off. @default false */
  checkpoint?: false | { readonly dir: string };
  onFileStart?: (item: UploadItem) => void;
  onFileDone?: (outcome: UploadOutcome) => void;
}

/**
 * Upload every item; requests of all files share one limit of `threadNum` (or the given limiter), so
 * thousands of small files go up in parallel and one huge file can use every slot. One file failing does not
 * stop the others; a cancelled signal stops them all.
 */
export async function uploadFiles(
  items: readonly UploadItem[],
  opts: UploadFilesOptions,
): Promise<UploadOutcome[]> {
  const limiter = opts.limiter ?? createLimiter(opts.threadNum ?? 4);
  const outcomes: UploadOutcome[] = new Array<UploadOutcome>(items.length);
  const { onFileStart, onFileDone, checkpoint, headers, ...shared } = opts;
  let next = 0;
  const work = async (): Promise<void> => {
    while (next < items.length && !opts.signal?.aborted) {
      const index = next++;
      const item = items[index]!;
      call(onFileStart, item);
      let outcome: UploadOutcome;
      try {
        const result = await uploadFile({
          ...shared,
          limiter,
          file: item.file,
          key: item.key,
          headers: { ...headers, ...item.headers },
          checkpoint: checkpoint ? { path: checkpointPathFor(checkpoint.dir, opts.bucket, item.key) } : false,
        });
        outcome = { item, ok: true, result };
      } catch (error) {
        outcome = { item, ok: false, error };
      }
      outcomes[index] = outcome;
      call(onFileDone, outcome);
    }
  };
  // files in flight follow the request limit: every file holds a slot only while one of its requests runs
  await Promise.all(Array.from({ length: Math.min(limiter.limit, items.length) }, work));
  opts.signal?.throwIfAborted();
  return outcomes;
}

function call<T>(fn: ((arg: T) => void) | undefined, arg: T): void {
  try {
    fn?.(arg);
  } catch {
    // callbacks report; they never steer the upload
  }
}
