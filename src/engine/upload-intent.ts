/**
 * An intent file, written before InitiateMultipartUpload and removed once the checkpoint holds the new upload id.
 * A process killed between the two would leave an upload that no checkpoint records, billing its parts forever;
 * the intent lets the next run find such uploads of its key and abort them.
 */
import { readFile, rm } from 'node:fs/promises';
import { CHECKPOINT_EXTENSION, writeFileAtomic } from './checkpoint.ts';

export const INTENT_SUFFIX = '.intent';
/**
 * Uploads of the key initiated this long before the intent was written still count as unrecorded: the
 * server's clock and ours may differ.
 */
export const INTENT_CLOCK_MARGIN_MS = 5 * 60_000;

export function intentPathFor(checkpointPath: string): string {
  return `${checkpointPath}${INTENT_SUFFIX}`;
}

/** Whether a file in a checkpoint dir is state a later run needs (a checkpoint or an intent). */
export function isCheckpointFileName(name: string): boolean {
  return name.endsWith(CHECKPOINT_EXTENSION) || name.endsWith(`${CHECKPOINT_EXTENSION}${INTENT_SUFFIX}`);
}

export async function writeIntent(path: string, key: string, at: Date): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify({ key, at: at.toISOString() })}\n`);
}

/** When the intent at `path` was written, or undefined when there is none (or it is unreadable). */
export async function readIntent(path: string): Promise<Date | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as { at?: unknown };
    const at = typeof parsed.at === 'string' ? new Date(parsed.at) : undefined;
    return at && !Number.isNaN(at.getTime()) ? at : undefined;
  } catch {
    return undefined;
  }
}

export async function removeIntent(path: string): Promise<void> {
  await rm(path, { force: true });
}
