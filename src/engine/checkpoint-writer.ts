/** Serialises checkpoint writes: parts finish concurrently, the file is rewritten one write at a time. */
import { type CheckpointState, writeCheckpoint } from './checkpoint.ts';

/** A checkpoint that cannot be written (disk full, read-only, directory gone), named with what to do about it. */
export class CheckpointWriteError extends Error {
  readonly code: string | undefined;
  readonly path: string;

  constructor(path: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    super(
      `cannot write the checkpoint ${path} (${code ?? String(cause)}): free space on that disk, choose another checkpoint-dir, or turn checkpoints off`,
      { cause },
    );
    this.name = 'CheckpointWriteError';
    this.code = code;
    this.path = path;
  }
}

export class CheckpointWriter {
  private readonly path: string;
  private readonly snapshot: () => CheckpointState;
  private running: Promise<void> | undefined;
  private dirty = false;
  /** The first write failure; the upload reports it rather than claim a resumability it does not have. */
  error: Error | undefined;

  constructor(path: string, snapshot: () => CheckpointState) {
    this.path = path;
    this.snapshot = snapshot;
  }

  /** Ask for the current state to be written soon; requests made during a write coalesce into one more. */
  request(): void {
    this.dirty = true;
    this.running ??= this.drain();
  }

  /** Wait until everything requested so far is on disk; `force` writes even when nothing changed. */
  async flush(force = false): Promise<void> {
    if (force) this.dirty = true;
    if (this.dirty) this.running ??= this.drain();
    await this.running;
    if (this.error !== undefined) throw this.error;
  }

  private async drain(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        await writeCheckpoint(this.path, this.snapshot());
      }
    } catch (e) {
      this.error ??= new CheckpointWriteError(this.path, e);
    } finally {
      this.running = undefined;
    }
  }
}
