/**
 * The post step (runs even when the job failed or was cancelled): if main did not get to settle the
 * checkpoints, save them to the cache as the last resort, so a re-run continues the uploads.
 */
import * as core from '@actions/core';
import { type CacheApi, saveCheckpoints } from './checkpoint-cache.ts';
import { STATE } from './state.ts';
import { log } from './log.ts';

export async function runPost(deps: { cache?: CacheApi } = {}): Promise<void> {
  const dir = core.getState(STATE.checkpointDir);
  const key = core.getState(STATE.cacheKey);
  if (!dir || !key || core.getState(STATE.settled) === 'true') return;
  await saveCheckpoints({
    dir,
    key,
    ...(deps.cache ? { cache: deps.cache } : {}),
    log,
  });
}
