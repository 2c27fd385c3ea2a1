// `npm run demo` is the README's first command: it must interrupt the action, resume it, and say so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

test('the demo interrupts the first attempt and the re-run resumes it', async () => {
  const started = performance.now();
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(import.meta.dirname, '../../scripts/demo.ts')],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const seconds = (performance.now() - started) / 1000;
  const last = stdout.trim().split('\n').at(-1)!;
  const m =
    /^demo: interrupted=true resumed_bytes=(\d+) parts_attempt1=(\d+) parts_attempt2=(\d+) objects=4 identical=4$/.exec(
      last,
    );
  assert.ok(m, last);
  const [resumed, first, second] = [Number(m[1]), Number(m[2]), Number(m[3])];
  assert.ok(resumed > 0 && resumed < 96 * 1024 * 1024, `resumed ${resumed}`);
  // every part went up once: what attempt 1 stored was not sent again
  assert.equal(first + second, 24, stdout);
  assert.match(stdout, />>> \d+ of 24 parts stored: interrupting attempt 1 now/);
  assert.match(
    stdout,
    /attempt 2 \| releases\/demo\/release\.tar\.gz: resumed [\d.]+ MiB of 96\.0 MiB from checkpoint/,
  );
  assert.ok(seconds < 60, `the demo took ${seconds.toFixed(1)} s`);
  // the cache library's tar commands and transfer counters are not shown
  assert.doesNotMatch(stdout, /\[command\]|Sent \d+ of \d+/);
});
