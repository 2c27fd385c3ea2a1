/** Entry of the post step. */
import * as core from '@actions/core';
import { runPost } from './post.ts';

runPost().catch((e: unknown) => {
  // saving checkpoints is best effort: never fail the job from post
  core.warning(e instanceof Error ? e.message : String(e));
});
