/**
 * CRC-64 (and MD5 when asked) of file ranges, computed on worker threads.
 *
 * Hashing on the event loop adds its cost serially to sending and roughly halves the loopback
 * throughput (measured with `npm run bench`; README, Benchmarks), so parts are hashed beside the upload instead of inside it.
 * The worker is built from source text so the same code runs from the TypeScript sources and from the
 * single-file bundle, where a separate worker file would not exist.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CRC64_TABLES, crc64FromRegister, updateCrc64Register } from '../oss/index.ts';
import { createLimiter } from './limiter.ts';
import { loadHere } from './local-file.ts';

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
  /** A `load` job (see RangeHasher.load) instead of a range to hash: the largest size read whole. */
  readonly loadMax?: number;
}

/** The metadata a `load` sends back: what FileIdentity holds, and whether it is a regular file. */
export interface LoadedStat {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly dev: number;
  readonly isFile: boolean;
}

type Reply =
  | { id: number; lo: number; hi: number; md5?: string }
  | { id: number; stat: LoadedStat; bytes?: Uint8Array; lo?: number; hi?: number }
  | { id: number; error: string; code?: string };

/** A file as `load` found it: its metadata, and for a small regular file its bytes and their digest. */
export interface LoadedFile {
  readonly stat: LoadedStat;
  readonly bytes?: Uint8Array;
  readonly digest?: RangeDigest;
}

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
  // a FIFO opened for reading would block this thread until a writer came; non-blocking, it opens at once and
  // fstat says it is no regular file (Windows has no such flag, nor such files)
  const openFlags = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);
  const load = (job: Job, fd: number): void => {
    const s = fs.fstatSync(fd);
    const stat = {
      size: s.size,
      mtimeMs: s.mtimeMs,
      ctimeMs: s.ctimeMs,
      ino: s.ino,
      dev: s.dev,
      isFile: s.isFile(),
    };
    if (!stat.isFile || s.size > job.loadMax!) {
      parentPort.postMessage({ id: job.id, stat });
      return;
    }
    // its own ArrayBuffer, so it moves to the main thread instead of being copied
    const bytes = new Uint8Array(s.size);
    for (let got = 0; got < s.size;) {
      const n = fs.readSync(fd, bytes, got, s.size - got, got);
      if (n === 0) throw Object.assign(new Error('file ended early'), { code: 'ESHORTREAD' });
      got += n;
    }
    const state = new Uint32Array([0xffffffff, 0xffffffff]);
    update(state, bytes, data.lo, data.hi);
    parentPort.postMessage({ id: job.id, stat, bytes, lo: state[0], hi: state[1] }, [bytes.buffer]);
  };
  parentPort.on('message', (job: Job) => {
    let fd: number | undefined;
    try {
      if (job.loadMax !== undefined) {
        fd = fs.openSync(job.path, openFlags);
        load(job, fd);
        return;
      }
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

/** libuv's default number of file-system threads (UV_THREADPOOL_SIZE). */
const LOADS_HERE_AT_ONCE = 4;

const WORKER_SOURCE = `(${workerMain.toString()})(${updateCrc64Register.toString()}, ${READ_CHUNK_BYTES});`;

/** A small pool of hashing threads. Idle workers do not keep the process alive. */
export class RangeHasher {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Array<{ job: Job; settle: (r: Reply) => void }> = [];
  private readonly busy = new Map<Worker, (r: Reply) => void>();
  private nextId = 1;
  /** Workers that have started running. */
  private online = 0;
  /** Files loaded on this thread while no worker was running. */
  private loadedHere = 0;
  /**
   * Loads on this thread, a few at a time: the file system's threads serve calls in the order they come, so a
   * window of files loaded all at once interleaves their opens, stats and reads, and the first is read only
   * once every file is nearly done; a few at a time, each file's request goes as soon as its own bytes are in.
   */
  private readonly here = createLimiter(LOADS_HERE_AT_ONCE);
  private closed = false;
  readonly size: number;

  constructor(size = defaultHasherThreads()) {
    this.size = size;
  }

  /** Hash `length` bytes of `path` from `start`. Rejects with a file error (e.g. ENOENT) when unreadable. */
  hash(path: string, start: number, length: number, opts: { md5?: boolean } = {}): Promise<RangeDigest> {
    if (this.closed) return Promise.reject(new Error('range hasher is closed'));
    const job: Job = { id: this.nextId++, path, start, length, md5: opts.md5 === true };
    return this.submit(job, path, (r) => {
      if ('stat' in r) throw new Error('a hash job answered as a load');
      return { crc64: crc64FromRegister(r.lo, r.hi), ...(r.md5 ? { md5: r.md5 } : {}) };
    });
  }

  /**
   * The file's metadata (by the descriptor it was read through), and when it is a regular file of at most
   * `maxBytes`, its bytes and their CRC-64: one round trip to a hashing thread instead of a stat, an open, a
   * read, a close and a CRC on the sending thread, whose time every other request waits for. Rejects with the
   * file error (e.g. ENOENT) when it cannot be opened.
   */
  load(path: string, maxBytes: number): Promise<LoadedFile> {
    // a closed pool still lets small files go up: they need no thread (see single-put.ts)
    if (this.closed) return this.here.run(() => loadHere(path, maxBytes));
    if (this.online === 0) {
      // the first files are not held up by a thread's start-up; the ones after them go to the thread. A lone
      // file (one large asset, whose parts are hashed as they are sent) never starts one: a thread costs some
      // 18 MB of memory
      if (this.workers.length === 0 && this.loadedHere++ > 0) this.idle.push(this.spawn());
      return this.here.run(() => loadHere(path, maxBytes));
    }
    const job: Job = { id: this.nextId++, path, start: 0, length: 0, md5: false, loadMax: maxBytes };
    return this.submit(job, path, (r) => {
      if (!('stat' in r)) throw new Error('a load job answered as a hash');
      const { stat, bytes, lo, hi } = r;
      if (bytes === undefined || lo === undefined || hi === undefined) return { stat };
      return { stat, bytes, digest: { crc64: crc64FromRegister(lo, hi) } };
    });
  }

  private submit<T>(job: Job, path: string, read: (r: Exclude<Reply, { error: string }>) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const settle = (r: Reply): void => {
        if ('error' in r) {
          reject(Object.assign(new Error(`cannot read ${path}: ${r.error}`), { code: r.code }));
          return;
        }
        try {
          resolve(read(r));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
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
    this.online = 0;
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
    worker.once('online', () => this.online++);
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
    if (i >= 0) {
      this.workers.splice(i, 1);
      this.online = Math.min(this.online, this.workers.length);
    }
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
