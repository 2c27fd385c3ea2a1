/**
 * CRC-64 (and MD5 when asked) of file ranges, computed on worker threads.
 *
 * Hashing on the event loop adds its cost serially to sending and roughly halves the loopback
 * throughput (shared/reference/performance.md), so parts are hashed beside the upload instead of inside it.
 * The worker is built from source text so the same code runs from the TypeScript sources and from the
 * single-file bundle, where a separate worker file would not exist.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CRC64_TABLES, crc64FromRegister, updateCrc64Register } from '../oss/index.ts';

export interface RangeDigest {
  readonly crc64: bigint;
  /** Lower-case hex MD5, when requested. */
  readonly md5?: string;
}

interface Job {
  readonly id: number;
  readonly path: string;
  readonly start: number;
  readonly length: number;
  readonly md5: boolean;
}

type Reply =
  { id: number; lo: number; hi: number; md5?: string } | { id: number; error: string; code?: string };

const READ_CHUNK_BYTES = 1024 * 1024;

// Runs inside the worker; receives the CRC kernel's source so the two never drift apart.
function workerMain(update: typeof updateCrc64Register, chunkBytes: number): void {
  // builtins by name, not `require`, so a bundler leaves this source text alone
  const threads = process.getBuiltinModule('worker_threads');
  const fs = process.getBuiltinModule('fs');
  const crypto = process.getBuiltinModule('crypto');
  const parentPort = threads.parentPort!;
  const data = threads.workerData as { lo: Uint32Array; hi: Uint32Array };
  const buf = Buffer.allocUnsafe(chunkBytes);
  parentPort.on('message', (job: Job) => {
    let fd: number | undefined;
    try {
      fd = fs.openSync(job.path, 'r');
      const state = new Uint32Array([0xffffffff, 0xffffffff]);
      const md5 = job.md5 ? crypto.createHash('md5') : undefined;
      let pos = job.start;
      let left = job.length;
      while (left > 0) {
        const n = fs.readSync(fd, buf, 0, Math.min(chunkBytes, left), pos);
        if (n === 0) throw Object.assign(new Error('file ended early'), { code: 'ESHORTREAD' });
        const chunk = buf.subarray(0, n);
        update(state, chunk, data.lo, data.hi);
        md5?.update(chunk);
        pos += n;
        left -= n;
      }
      parentPort.postMessage({ id: job.id, lo: state[0], hi: state[1], md5: md5?.digest('hex') });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      parentPort.postMessage({ id: job.id, error: err.message, code: err.code });
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  });
}

const WORKER_SOURCE = `(${workerMain.toString()})(${updateCrc64Register.toString()}, ${READ_CHUNK_BYTES});`;

/** A small pool of hashing threads. Idle workers do not keep the process alive. */
export class RangeHasher {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Array<{ job: Job; settle: (r: Reply) => void }> = [];
  private readonly busy = new Map<Worker, (r: Reply) => void>();
  private nextId = 1;
  private closed = false;
  readonly size: number;

  constructor(size = defaultHasherThreads()) {
    this.size = size;
  }

  /** Hash `length` bytes of `path` from `start`. Rejects with a file error (e.g. ENOENT) when unreadable. */
  hash(path: string, start: number, length: number, opts: { md5?: boolean } = {}): Promise<RangeDigest> {
    if (this.closed) return Promise.reject(new Error('range hasher is closed'));
    const job: Job = { id: this.nextId++, path, start, length, md5: opts.md5 === true };
    return new Promise<RangeDigest>((resolve, reject) => {
      const settle = (r: Reply): void => {
        if ('error' in r) {
          reject(Object.assign(new Error(`cannot read ${path}: ${r.error}`), { code: r.code }));
        } else {
          resolve({ crc64: crc64FromRegister(r.lo, r.hi), ...(r.md5 ? { md5: r.md5 } : {}) });
        }
      };
      this.queue.push({ job, settle });
      this.dispatch();
    });
  }

  /** Stop every worker; jobs still queued reject. */
  async close(): Promise<void> {
    this.closed = true;
    for (const { job, settle } of this.queue.splice(0)) settle({ id: job.id, error: 'range hasher closed' });
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    this.idle.length = 0;
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const worker = this.idle.pop() ?? (this.workers.length < this.size ? this.spawn() : undefined);
      if (!worker) return;
      const { job, settle } = this.queue.shift()!;
      this.busy.set(worker, settle);
      worker.ref();
      worker.postMessage(job);
    }
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: CRC64_TABLES });
    worker.on('message', (r: Reply) => {
      const settle = this.busy.get(worker);
      this.busy.delete(worker);
      worker.unref();
      this.idle.push(worker);
      settle?.(r);
      this.dispatch();
    });
    worker.on('error', (e: Error) => {
      // a crashed worker fails its own job and is replaced on demand
      this.forget(worker);
      const settle = this.busy.get(worker);
      this.busy.delete(worker);
      settle?.({ id: 0, error: e.message });
      this.dispatch();
    });
    worker.unref();
    this.workers.push(worker);
    return worker;
  }

  private forget(worker: Worker): void {
    const i = this.workers.indexOf(worker);
    if (i >= 0) this.workers.splice(i, 1);
    const j = this.idle.indexOf(worker);
    if (j >= 0) this.idle.splice(j, 1);
  }
}

/** One hashing thread per core beyond the one sending, at least one. */
export function defaultHasherThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

let shared: RangeHasher | undefined;

/** The process-wide hasher used when a caller brings none. */
export function sharedRangeHasher(): RangeHasher {
  shared ??= new RangeHasher();
  return shared;
}
