/** A counting semaphore shared by every request of one or many uploads. */
import { InvalidArgumentError } from './errors.ts';

export interface Limiter {
  /** Slots in total. */
  readonly limit: number;
  /** Slots in use now. */
  readonly active: number;
  /** Run `fn` once a slot is free; the wait ends early with `signal.reason` when the signal aborts. */
  run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
}

/** A limiter of `limit` slots. Only requests should hold a slot, never a whole file waiting on its parts. */
export function createLimiter(limit: number): Limiter {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
    throw new InvalidArgumentError('threadNum', limit, 'a whole number from 1 to 1000');
  }
  let active = 0;
  const waiting: Array<() => void> = [];

  const release = (): void => {
    active--;
    const next = waiting.shift();
    if (next) next();
  };

  const acquire = (signal?: AbortSignal): Promise<void> => {
    signal?.throwIfAborted();
    if (active < limit) {
      active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        active++;
        resolve();
      };
      const onAbort = (): void => {
        const i = waiting.indexOf(grant);
        if (i >= 0) waiting.splice(i, 1);
        reject(signal!.reason as Error);
      };
      waiting.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  };

  return {
    limit,
    get active() {
      return active;
    },
    async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
      await acquire(signal);
      try {
        return await fn();
      } finally {
        release();
      }
    },
  };
}
