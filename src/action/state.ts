/** Handed from main to post through the runner's state file. */
export const STATE = {
  checkpointDir: 'checkpoint-dir',
  cacheKey: 'cache-key',
  /** 'true' once main knows whether anything is left to save (it saved, or nothing was unfinished). */
  settled: 'settled',
} as const;
