/** The process wiring of the `oss-resumable-upload` command: argv, streams, signals and the exit code. */
import { FileLedger, guardPendingWork } from '../deploy/ledger.ts';
import { type CliDeps, EXIT, runCli } from './main.ts';
import { VERSION } from './version.ts';

export function startCli(argv: readonly string[], deps: Omit<CliDeps, 'ledger'> = {}): void {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // a second Ctrl-C takes the default action and leaves at once: finished parts are already in the checkpoint
      controller.abort(new DOMException(`interrupted by ${signal}`, 'AbortError'));
    });
  }

  const ledger = new FileLedger();
  const work = runCli(
    {
      argv,
      env: process.env,
      stdout: (t) => void process.stdout.write(t),
      stderr: (t) => void process.stderr.write(t),
      isTty: process.stderr.isTTY === true,
      signal: controller.signal,
      version: VERSION,
    },
    { ...deps, ledger },
  );
  work.then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
  guardPendingWork(work, ledger, (message) => void process.stderr.write(`${message}\n`));
}
