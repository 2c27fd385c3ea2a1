/**
 * The main step's process wiring: the only place that turns errors into a failed step, wires the runner's
 * signals, and fails the step when the work stops without settling.
 */
import * as core from '@actions/core';
import { FileLedger, guardPendingWork } from '../deploy/ledger.ts';
import { type RunDeps, run } from './main.ts';

export function startMain(deps: Omit<RunDeps, 'signal' | 'ledger'> = {}): void {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      core.info(`${signal} received: stopping uploads and keeping their checkpoints`);
      controller.abort(new DOMException(`cancelled by ${signal}`, 'AbortError'));
    });
  }
  const ledger = new FileLedger();
  const work = run({ ...deps, signal: controller.signal, ledger });
  work.catch((e: unknown) => {
    core.setFailed(e instanceof Error ? e.message : String(e));
  });
  guardPendingWork(work, ledger, (message) => core.setFailed(message));
}
