/** Byte-level progress facts of one file; display and throttling belong to the caller. */

export interface ProgressEvent {
  readonly file: string;
  readonly key: string;
  /** Bytes the object has so far: sent in this run plus found on the server. */
  readonly bytesDone: number;
  /** Bytes found already uploaded by an earlier run (counted in bytesDone too). */
  readonly bytesResumed: number;
  readonly bytesTotal: number;
  readonly partsDone: number;
  readonly partsTotal: number;
}

export type ProgressListener = (event: ProgressEvent) => void;

/** Keeps the counts; `onProgress` is called synchronously and its exceptions are ignored. */
export class ProgressTracker {
  private bytesSent = 0;
  private bytesResumed = 0;
  private partsDone = 0;
  private readonly file: string;
  private readonly key: string;
  private readonly bytesTotal: number;
  private readonly partsTotal: number;
  private readonly listener: ProgressListener | undefined;

  constructor(opts: {
    file: string;
    key: string;
    bytesTotal: number;
    partsTotal: number;
    onProgress?: ProgressListener | undefined;
  }) {
    this.file = opts.file;
    this.key = opts.key;
    this.bytesTotal = opts.bytesTotal;
    this.partsTotal = opts.partsTotal;
    this.listener = opts.onProgress;
  }

  /** Bytes that went over the wire in this run (negative to take back an attempt that is sent again). */
  sent(bytes: number): void {
    this.bytesSent += bytes;
    this.emit();
  }

  /** Parts found complete on the server. */
  resumed(bytes: number, parts: number): void {
    this.bytesResumed += bytes;
    this.partsDone += parts;
    this.emit();
  }

  partDone(): void {
    this.partsDone++;
    this.emit();
  }

  get sentBytes(): number {
    return this.bytesSent;
  }

  get resumedBytes(): number {
    return this.bytesResumed;
  }

  private emit(): void {
    if (!this.listener) return;
    try {
      this.listener({
        file: this.file,
        key: this.key,
        bytesDone: this.bytesSent + this.bytesResumed,
        bytesResumed: this.bytesResumed,
        bytesTotal: this.bytesTotal,
        partsDone: this.partsDone,
        partsTotal: this.partsTotal,
      });
    } catch {
      // a display callback must never break an upload
    }
  }
}
