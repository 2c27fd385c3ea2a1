/**
 * run(): inputs -> files -> restore checkpoints -> engine -> outputs and summary -> save what is unfinished.
 * Collaborators are parameters with the real ones as defaults, so tests drive it without module mocks.
 */
import { isAbsolute, resolve } from 'node:path';
import * as core from '@actions/core';
import { type UploadOutcome, uploadFiles } from '../engine/index.ts';
import { type Credentials, type CredentialsProvider, OssClient } from '../oss/index.ts';
import {
  type CacheApi,
  checkpointCacheKey,
  countCheckpoints,
  restoreCheckpoints,
  saveCheckpoints,
} from './checkpoint-cache.ts';
import { type CleanupResult, NO_CLEANUP, cleanUp } from './cleanup.ts';
import { STATE } from './constants.ts';
import { findFiles } from './files.ts';
import { type ActionInputs, type InputSource, describeInputs, readInputs, runnerInputs } from './inputs.ts';
import { FileLedger, headersUpdated } from './ledger.ts';
import { info, infoLines, log, startGroup } from './log.ts';
import {
  ProgressReporter,
  describeError,
  resultLine,
  resultTable,
  totals,
  writeOutputs,
  writeSummary,
} from './report.ts';
import { type SignInDeps, credentialsFor } from './sign-in.ts';
import { formatBytes } from './size.ts';
import { clientOptions, uploadItems, uploadSettings } from './upload-options.ts';

export interface RunDeps {
  inputs?: InputSource;
  cache?: CacheApi;
  /** Cancels the uploads (the entry wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
  /** GitHub ID token, masking and logs for OIDC sign-in. */
  signIn?: SignInDeps;
  /** Where the final state of every planned file is kept; the entry reads it when the work stops unsettled. */
  ledger?: FileLedger;
  /** The engine; the entry's pending-work guard is tested with one that never settles. */
  upload?: typeof uploadFiles;
}

/** The main step. Throws when any upload failed; the entry turns that into a failed step. */
export async function run(deps: RunDeps = {}): Promise<void> {
  const src = deps.inputs ?? runnerInputs;
  const inputs = readInputs(src);
  core.debug(`effective inputs: ${describeInputs(inputs)}`);
  const credentials = credentialsFor(inputs.auth, deps.signIn);
  // sign in before any other work, so a refused role fails the step at once
  if (typeof credentials === 'function') await credentials();
  const workspace = src.env.GITHUB_WORKSPACE ?? process.cwd();
  const checkpointDir = isAbsolute(inputs.checkpointDir)
    ? inputs.checkpointDir
    : resolve(workspace, inputs.checkpointDir);
  const files = await findFiles({
    patterns: inputs.patterns,
    destination: inputs.destination,
    includeHiddenFiles: inputs.includeHiddenFiles,
    contentType: inputs.contentType,
    workspace,
    checkpointDir,
    onNotice: info,
  });
  const ledger = deps.ledger ?? new FileLedger();
  ledger.plan(files.map((f) => f.key));
  if (files.length === 0) {
    const message = `No files were found with the provided path: ${inputs.patterns.join(', ')}. No objects will be uploaded.`;
    if (inputs.ifNoFilesFound === 'error') throw new Error(message);
    if (inputs.ifNoFilesFound === 'warn') log.warning(message);
    else info(message);
    const client = clientFor(inputs, credentials);
    const cleanup = await cleanUpAfter(client, inputs, [], checkpointDir, deps.signal).finally(() =>
      client.close(),
    );
    writeOutputs(
      totals([], () => ''),
      cleanup,
    );
    if (cleanup.error) throw cleanup.error;
    return;
  }
  info(
    `${files.length} file(s), ${formatBytes(files.reduce((s, f) => s + f.size, 0))}, to oss://${inputs.bucket}/${inputs.destination}`,
  );

  const useCache = inputs.enableCheckpoint && inputs.cacheCheckpoints;
  const cacheKey = checkpointCacheKey({
    bucket: inputs.bucket,
    destination: inputs.destination,
    files: files.map((f) => f.key),
    runId: src.env.GITHUB_RUN_ID ?? '0',
    runAttempt: src.env.GITHUB_RUN_ATTEMPT ?? '1',
  });
  if (useCache) {
    core.saveState(STATE.checkpointDir, checkpointDir);
    core.saveState(STATE.cacheKey, cacheKey.key);
    await restoreCheckpoints({
      dir: checkpointDir,
      ...cacheKey,
      ...(deps.cache ? { cache: deps.cache } : {}),
      log,
    });
  }

  const client = clientFor(inputs, credentials);
  const reporter = new ProgressReporter({ write: info });
  let outcomes: UploadOutcome[];
  try {
    outcomes = await (deps.upload ?? uploadFiles)(uploadItems(files), {
      client,
      ...uploadSettings(inputs, checkpointDir),
      signal: deps.signal,
      onProgress: reporter.onProgress,
      onNotice: info,
      onFileDone: (o) => {
        ledger.settle(o);
        reportFile(o, deps.signal);
      },
    });
  } catch (e) {
    // cancelled: the engine has flushed every checkpoint; post saves them to the cache
    await client.close();
    throw new Error(`${describeError(e)}; ${ledger.describeUnfinished()}`, { cause: e });
  }
  // the engine answers for every item; the ledger holds it to that before the step may pass
  outcomes.forEach((o) => ledger.settle(o));
  ledger.assertSettled();
  const t = totals(outcomes, (key) => client.objectUrl(inputs.bucket, key));
  infoLines(resultTable(outcomes));
  const deployed = t.failed === 0 ? files.map((f) => f.key) : undefined;
  const cleanup = await cleanUpAfter(client, inputs, deployed, checkpointDir, deps.signal).finally(() =>
    client.close(),
  );
  writeOutputs(t, cleanup);
  await writeSummary(outcomes, t, cleanup);

  if (useCache) {
    if (t.failed > 0 && (await countCheckpoints(checkpointDir)) > 0) {
      await saveCheckpoints({
        dir: checkpointDir,
        key: cacheKey.key,
        ...(deps.cache ? { cache: deps.cache } : {}),
        log,
      });
    }
    core.saveState(STATE.settled, 'true');
  }
  if (t.failed > 0) {
    const failures = outcomes.filter((o): o is Extract<UploadOutcome, { ok: false }> => !o.ok);
    throw new Error(
      `${t.failed} of ${outcomes.length} upload(s) failed:\n${failures.map((f) => describeError(f.error)).join('\n')}`,
    );
  }
  if (cleanup.error) throw cleanup.error;
}

/** Cleanup never hides the upload's own outcome: its failure is in the result and thrown last. */
async function cleanUpAfter(
  client: OssClient,
  inputs: ActionInputs,
  deployed: readonly string[] | undefined,
  checkpointDir: string,
  signal: AbortSignal | undefined,
): Promise<CleanupResult> {
  if (!inputs.deleteOrphans && inputs.abortStaleUploadsMs === undefined) return NO_CLEANUP;
  return cleanUp({ client, inputs, deployed, checkpointDir, log, signal });
}

function clientFor(inputs: ActionInputs, credentials: Credentials | CredentialsProvider): OssClient {
  return new OssClient({
    ...clientOptions(inputs, credentials),
    onRetry: ({ operation, attempt, delayMs, error }) =>
      info(`retrying ${operation} (attempt ${attempt + 1}) in ${delayMs} ms after ${error.code}`),
  });
}

/**
 * A log group per file, written when the file ends: parts of many files go up at once, so a group opened at the
 * start would swallow other files' lines.
 */
function reportFile(o: UploadOutcome, signal: AbortSignal | undefined): void {
  if (!o.ok) {
    // a cancel fails the step once, with its reason; repeating it per file adds nothing
    if (signal?.aborted) return;
    startGroup(`failed ${o.item.key}`);
    core.error(describeError(o.error));
    core.endGroup();
    return;
  }
  const r = o.result;
  if (r.unchanged || headersUpdated(r)) {
    info(resultLine(r));
    return;
  }
  startGroup(resultLine(r));
  info(`file: ${r.file}`);
  if (r.multipart) {
    const grown = r.partSizeAdjustedFrom
      ? ` (grown from ${formatBytes(r.partSizeAdjustedFrom)} to stay within 10,000 parts)`
      : '';
    info(`multipart upload ${r.uploadId ?? ''}: ${r.parts} parts of ${formatBytes(r.partSize)}${grown}`);
    info(`parts sent now: ${r.partsSent}; already on the server: ${r.parts - r.partsSent}`);
  } else {
    info('single PutObject');
  }
  info(`bytes sent now: ${formatBytes(r.bytesSent)}; resumed: ${formatBytes(r.bytesResumed)}`);
  info(`ETag ${r.etag}, CRC-64 ${r.crc64}`);
  core.endGroup();
}
