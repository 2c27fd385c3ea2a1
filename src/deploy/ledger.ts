/**
 * The account of every planned file: a run may report success only when each one reached a final state, and
 * an entry whose work stopped without settling can say how many never did.
 */
import type { UploadOutcome, UploadResult } from '../engine/index.ts';
import { escapeText } from './log-line.ts';

export type FinalState = 'uploaded' | 'unchanged' | 'headers updated' | 'failed' | 'held back';

/** Set by an engine that rewrote only the stored object's headers; optional until every engine reports it. */
export function headersUpdated(r: UploadResult): boolean {
  return (r as UploadResult & { headersUpdated?: unknown }).headersUpdated === true;
}

export function finalState(o: UploadOutcome): FinalState {
  if (!o.ok) return 'failed';
  if (headersUpdated(o.result)) return 'headers updated';
  return o.result.unchanged ? 'unchanged' : 'uploaded';
}

const LISTED = 10;

export class FileLedger {
  private readonly states = new Map<string, FinalState | undefined>();

  /** The files this run means to upload, by key. */
  plan(keys: readonly string[]): void {
    for (const key of keys) if (!this.states.has(key)) this.states.set(key, undefined);
  }

  settle(outcome: UploadOutcome): void {
    this.states.set(outcome.item.key, finalState(outcome));
  }

  /** Files deliberately not sent (publish-last after an earlier failure): final, but not stored. */
  holdBack(keys: readonly string[]): void {
    for (const key of keys) this.states.set(key, 'held back');
  }

  get planned(): number {
    return this.states.size;
  }

  /** Keys without a final state, in plan order. */
  pending(): string[] {
    return this.keys((s) => s === undefined);
  }

  /** `2 file(s) never reached a final state (of 5 planned): a, b` */
  describePending(): string {
    return this.describe(this.pending(), 'never reached a final state');
  }

  /** For a run that stopped early: the files not stored, failed or never finished. */
  describeUnfinished(): string {
    return this.describe(
      this.keys((s) => s === undefined || s === 'failed' || s === 'held back'),
      'did not finish',
    );
  }

  private keys(test: (s: FinalState | undefined) => boolean): string[] {
    return [...this.states].filter(([, s]) => test(s)).map(([key]) => key);
  }

  private describe(keys: readonly string[], what: string): string {
    const listed = keys.slice(0, LISTED).map((k) => escapeText(k));
    const more = keys.length > LISTED ? `, and ${keys.length - LISTED} more` : '';
    const names = keys.length ? `: ${listed.join(', ')}${more}` : '';
    return `${keys.length} file(s) ${what} (of ${this.planned} planned)${names}`;
  }

  /** Throws unless every planned file reached a final state: a success exit stands behind every file. */
  assertSettled(): void {
    if (this.pending().length > 0)
      throw new Error(`the upload ended without an outcome for every file: ${this.describePending()}`);
  }
}

/**
 * Fails the process when the event loop empties while `work` has not settled: nothing can settle it any more,
 * and without this the process would end with exit code 0 and no word. Node emits `beforeExit` only then.
 */
export function guardPendingWork(
  work: Promise<unknown>,
  ledger: FileLedger,
  fail: (message: string) => void,
): void {
  let settled = false;
  const done = (): void => {
    settled = true;
  };
  work.then(done, done);
  const onBeforeExit = (): void => {
    process.off('beforeExit', onBeforeExit);
    if (!settled) {
      process.exitCode = 1;
      fail(`the upload stopped without finishing: ${ledger.describePending()}`);
    }
  };
  process.on('beforeExit', onBeforeExit);
}
