/** uploadFiles(): many files under one concurrency limit, each with its own outcome. */
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { checkpointPathFor } from './checkpoint.ts';
import { createLimiter } from './limiter.ts';
import { type UploadFileOptions, type UploadResult, uploadFileWith } from './upload-file.ts';
import { intentPathFor } from './upload-intent.ts';

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
 * Files being readied beyond the request limit: when a wave of answers frees many slots at once, the next
 * requests are ready to go (file read and hashed) instead of each waiting for its file's work in turn, which
 * over a long round trip stretched every wave by the whole batch's work. Bounded, since a readied small file
 * holds its bytes.
 */
const MAX_READIED_AHEAD = 64;

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
  const saved = checkpoint && items.length > 1 ? await checkpointNames(checkpoint.dir) : undefined;
  let next = 0;
  const work = async (): Promise<void> => {
    while (next < items.length && !opts.signal?.aborted) {
      const index = next++;
      const item = items[index]!;
      call(onFileStart, item);
      let outcome: UploadOutcome;
      try {
        const path = checkpoint ? checkpointPathFor(checkpoint.dir, opts.bucket, item.key) : undefined;
        const result = await uploadFileWith(
          {
            ...shared,
            limiter,
            file: item.file,
            key: item.key,
            headers: { ...headers, ...item.headers },
            checkpoint: path === undefined ? false : { path },
          },
          { noCheckpoint: path !== undefined && saved !== undefined && !hasCheckpoint(saved, path) },
        );
        outcome = { item, ok: true, result };
      } catch (error) {
        outcome = { item, ok: false, error };
      }
      outcomes[index] = outcome;
      call(onFileDone, outcome);
    }
  };
  // a file holds a slot only while one of its requests runs; the files beyond the limit wait, readied, for one
  const files = Math.min(limiter.limit + Math.min(limiter.limit, MAX_READIED_AHEAD), items.length);
  await Promise.all(Array.from({ length: files }, work));
  opts.signal?.throwIfAborted();
  return outcomes;
}

/**
 * The names in the checkpoint dir, read once instead of probing for each file's checkpoint and intent (two
 * calls per file that, for a thousand small files, were a large share of the work). Undefined when the dir
 * cannot be listed: each file then looks for itself. Only uploads of these keys write their names, and each
 * key is uploaded once per call.
 */
async function checkpointNames(dir: string): Promise<ReadonlySet<string> | undefined> {
  try {
    return new Set(await readdir(dir));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? new Set() : undefined;
  }
}

function hasCheckpoint(names: ReadonlySet<string>, path: string): boolean {
  return names.has(basename(path)) || names.has(basename(intentPathFor(path)));
}

function call<T>(fn: ((arg: T) => void) | undefined, arg: T): void {
  try {
    fn?.(arg);
  } catch {
    // callbacks report; they never steer the upload
  }
}
