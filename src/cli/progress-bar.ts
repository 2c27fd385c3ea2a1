/** One live status line on a terminal for all files together, redrawn in place at most every `intervalMs`. */
import type { ProgressEvent } from '../engine/index.ts';
import { formatBytes } from '../deploy/size.ts';

const WIDTH = 24;

export class ProgressBar {
  private readonly files = new Map<string, ProgressEvent>();
  private readonly started: number;
  private readonly write: (text: string) => void;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly totalBytes: number;
  private readonly totalFiles: number;
  private filesDone = 0;
  private drawnAt = 0;

  constructor(opts: {
    totalBytes: number;
    totalFiles: number;
    write: (text: string) => void;
    now?: () => number;
    intervalMs?: number;
  }) {
    this.totalBytes = opts.totalBytes;
    this.totalFiles = opts.totalFiles;
    this.write = opts.write;
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? 100;
    this.started = this.now();
  }

  readonly onProgress = (e: ProgressEvent): void => {
    this.files.set(e.key, e);
    const t = this.now();
    if (t - this.drawnAt >= this.intervalMs) this.draw(t);
  };

  fileDone(): void {
    this.filesDone++;
    this.draw(this.now());
  }

  /** Print a line above the bar (a result or an error) without tearing it. */
  log(line: string): void {
    this.write(`\r\x1b[K${line}\n`);
    this.draw(this.now());
  }

  /** Leave the last state on screen and move below it. */
  finish(): void {
    this.draw(this.now());
    this.write('\n');
  }

  line(t: number): string {
    let done = 0;
    let resumed = 0;
    for (const e of this.files.values()) {
      done += e.bytesDone;
      resumed += e.bytesResumed;
    }
    const fraction = this.totalBytes === 0 ? 1 : Math.min(1, done / this.totalBytes);
    const filled = Math.round(fraction * WIDTH);
    const seconds = (t - this.started) / 1000;
    // a retried request takes its bytes back, so the bytes sent can dip below the resumed ones for a while
    const rate = seconds > 0 ? Math.max(0, done - resumed) / seconds : 0;
    const eta = rate > 0 && fraction < 1 ? ` ETA ${Math.ceil((this.totalBytes - done) / rate)}s` : '';
    const resumedText = resumed > 0 ? `, ${formatBytes(resumed)} resumed` : '';
    return (
      `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(1)}% ` +
      `${formatBytes(done)} / ${formatBytes(this.totalBytes)} ${(rate / 1e6).toFixed(1)} MB/s${eta} ` +
      `· ${this.filesDone}/${this.totalFiles} files${resumedText}`
    );
  }

  private draw(t: number): void {
    this.drawnAt = t;
    this.write(`\r\x1b[K${this.line(t)}`);
  }
}
