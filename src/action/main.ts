/**
 * The action's main step: runner inputs -> the deploy -> outputs, job summary and annotations; checkpoints in the
 * Actions cache; OIDC sign-in with the job's ID token. Everything the runner provides comes through `ActionIo`, so
 * tests drive run() in-process with maps and capturing sinks.
 */
import { appendFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import * as core from '@actions/core';
import type { uploadFiles } from '../engine/index.ts';
import {
  type CacheApi,
  checkpointCacheKey,
  countCheckpoints,
  restoreCheckpoints,
  saveCheckpoints,
} from './checkpoint-cache.ts';
import { describeError } from '../deploy/describe.ts';
import { FileLedger } from '../deploy/ledger.ts';
import { safeLine } from '../deploy/log-line.ts';
import { ProgressReporter, cdnFailure, failureText, outputValues, summaryHtml } from '../deploy/report.ts';
import { deploy } from '../deploy/run.ts';
import { type InputSource, describeSettings, readSettings } from '../deploy/settings.ts';
import { shardLabel } from '../deploy/shard.ts';
import { type SignInDeps, credentialsFor } from '../deploy/sign-in.ts';
import { STATE } from './state.ts';

/** What the runner gives the step; the real one by default, maps and sinks in tests. */
export interface ActionIo {
  getInput(name: string): string;
  env: Record<string, string | undefined>;
  setSecret(secret: string): void;
  info(line: string): void;
  warning(line: string): void;
  error(line: string): void;
  debug(line: string): void;
  setOutput(name: string, value: string): void;
  /** Appends to the job summary; may throw (an unwritable summary file). */
  appendSummary(html: string): Promise<void>;
  saveState(name: string, value: string): void;
  getIdToken(audience: string): Promise<string>;
}

export const runnerIo: ActionIo = {
  getInput: (name) => core.getInput(name),
  env: process.env,
  setSecret: (s) => core.setSecret(s),
  info: (l) => core.info(safeLine(l)),
  warning: (l) => core.warning(safeLine(l)),
  error: (l) => core.error(safeLine(l)),
  debug: (l) => core.debug(safeLine(l)),
  setOutput: (name, value) => {
    try {
      core.setOutput(name, value);
    } catch (e) {
      throw new Error(`could not write the output \`${name}\` to GITHUB_OUTPUT (${describeError(e)})`, {
        cause: e,
      });
    }
  },
  appendSummary: async (html) => {
    const path = process.env.GITHUB_STEP_SUMMARY;
    if (path) await appendFile(path, html);
  },
  saveState: (name, value) => core.saveState(name, value),
  getIdToken: (audience) => core.getIDToken(audience),
};

export interface RunDeps {
  io?: ActionIo;
  cache?: CacheApi;
  /** Cancels the uploads (the entry wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
  /** GitHub ID token, masking and logs for OIDC sign-in; from `io` unless given. */
  signIn?: Partial<SignInDeps>;
  /** Where the final state of every planned file is kept; the entry reads it when the work stops unsettled. */
  ledger?: FileLedger;
  /** The engine; the entry's pending-work guard is tested with one that never settles. */
  upload?: typeof uploadFiles;
}

/** The main step. Throws when the deploy failed; the entry turns that into a failed step. */
export async function run(deps: RunDeps = {}): Promise<void> {
  const io = deps.io ?? runnerIo;
  const src: InputSource = { get: (n) => io.getInput(n), env: io.env, mask: (s) => io.setSecret(s) };
  const settings = readSettings(src);
  io.debug(`effective inputs: ${describeSettings(settings)}`);
  const credentials = credentialsFor(settings.auth, {
    getIdToken: (a) => io.getIdToken(a),
    mask: (s) => io.setSecret(s),
    info: (l) => io.info(l),
    warning: (l) => io.warning(l),
    ...deps.signIn,
  });
  // sign in before any other work, so a refused role fails the step at once
  if (typeof credentials === 'function') await credentials();
  const workspace = io.env.GITHUB_WORKSPACE ?? process.cwd();
  const checkpointDir = resolve(workspace, settings.checkpointDir);
  const useCache = settings.enableCheckpoint && settings.cacheCheckpoints && !settings.dryRun;
  const cacheLog = { info: (l: string) => io.info(l), warning: (l: string) => io.warning(l) };
  let cacheKey: string | undefined;
  const ledger = deps.ledger ?? new FileLedger();
  const reporter = new ProgressReporter({ write: (l) => io.info(l) });
  let report: Awaited<ReturnType<typeof deploy>>;
  try {
    report = await deploy({
      settings,
      credentials,
      cwd: workspace,
      workspace,
      checkpointDir,
      log: io,
      signal: deps.signal,
      ledger,
      upload: deps.upload,
      onProgress: reporter.onProgress,
      onNoFiles: (patterns) => {
        const message = `No files were found with the provided path: ${patterns.join(', ')}. No objects will be uploaded.`;
        if (settings.ifNoFilesFound === 'error') throw new Error(message);
        if (settings.ifNoFilesFound === 'warn') io.warning(message);
        else io.info(message);
      },
      onFiles: async (files) => {
        if (!useCache) return;
        const key = checkpointCacheKey({
          bucket: settings.bucket,
          destination: settings.destination,
          files: files.map((f) => f.key),
          runId: io.env.GITHUB_RUN_ID ?? '0',
          runAttempt: io.env.GITHUB_RUN_ATTEMPT ?? '1',
          shard: settings.shard?.kind === 'upload' ? settings.shard : undefined,
        });
        cacheKey = key.key;
        io.saveState(STATE.checkpointDir, checkpointDir);
        io.saveState(STATE.cacheKey, key.key);
        await restoreCheckpoints({ dir: checkpointDir, ...key, ...cacheOf(deps), log: cacheLog });
      },
    });
  } catch (e) {
    if (!deps.signal?.aborted) throw e;
    // cancelled: the engine has flushed every checkpoint; post saves them to the cache
    throw new Error(`${describeError(e)}; ${ledger.describeUnfinished()}`, { cause: e });
  }
  for (const [name, value] of Object.entries(
    outputValues(report.totals, report.cleanup, report.cdn?.refreshed ?? 0),
  ))
    io.setOutput(name, value);
  const html = summaryHtml({
    bucket: settings.bucket,
    destination: settings.destination,
    cwd: workspace,
    dryRun: settings.dryRun,
    rows: report.rows,
    totals: report.totals,
    cleanup: report.cleanup,
    stopped: report.fatal,
    heldBack: report.heldBack,
    cdn: report.cdn,
    shard: settings.shard && shardLabel(settings.shard),
  });
  try {
    await io.appendSummary(html);
  } catch (e) {
    // the summary reports; it is not what the step delivers
    io.warning(
      `could not write the job summary to GITHUB_STEP_SUMMARY (${describeError(e)}); the outputs and this log have the results`,
    );
  }
  const failed = report.totals.failed > 0 || report.fatal !== undefined;
  if (useCache && cacheKey !== undefined) {
    if (failed && (await countCheckpoints(checkpointDir)) > 0)
      await saveCheckpoints({ dir: checkpointDir, key: cacheKey, ...cacheOf(deps), log: cacheLog });
    io.saveState(STATE.settled, 'true');
  }
  if (report.fatal) throw new Error(report.fatal);
  if (report.totals.failed > 0) throw new Error(failureText(report));
  if (report.cleanup.error) throw report.cleanup.error;
  if (report.cdn?.error) throw new Error(cdnFailure(report.cdn.error));
}

function cacheOf(deps: RunDeps): { cache?: CacheApi } {
  return deps.cache ? { cache: deps.cache } : {};
}
