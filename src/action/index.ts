/** Entry of the main step: the only place that turns errors into a failed step and wires the runner's signals. */
import * as core from '@actions/core';
import { run } from './main.ts';

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    core.info(`${signal} received: stopping uploads and keeping their checkpoints`);
    controller.abort(new DOMException(`cancelled by ${signal}`, 'AbortError'));
  });
}

run({ signal: controller.signal }).catch((e: unknown) => {
  core.setFailed(e instanceof Error ? e.message : String(e));
});
