// The limiter of a run that has no listing to prove its credentials: one request alone until one succeeds,
// then the whole window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLimiter } from '../../src/engine/index.ts';
import { probingLimiter } from '../../src/deploy/run.ts';

/** Runs `outcomes.length` tasks at once; each resolves or rejects as told after a turn of the event loop. */
async function runAll(outcomes: readonly boolean[], limit = 8) {
  const limiter = probingLimiter(createLimiter(limit));
  let inFlight = 0;
  const most: number[] = [];
  const settled = await Promise.allSettled(
    outcomes.map((ok, i) =>
      limiter.run(async () => {
        most[i] = ++inFlight;
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        if (!ok) throw new Error(`task ${i} refused`);
        return i;
      }),
    ),
  );
  return { most, settled };
}

test('one request goes alone until one succeeds; then the window opens', async () => {
  const { most, settled } = await runAll([false, false, true, true, true, true, true, true, true, true]);
  // the two refused ones and the one that succeeded each went alone
  assert.deepEqual(most.slice(0, 3), [1, 1, 1]);
  assert.ok(Math.max(...most.slice(3)) > 1, `the rest went together: ${most.join(',')}`);
  assert.deepEqual(
    settled.map((s) => s.status),
    ['rejected', 'rejected', ...Array<string>(8).fill('fulfilled')],
  );
});

test('a run whose every request is refused never has two in flight', async () => {
  const { most, settled } = await runAll(Array<boolean>(6).fill(false));
  assert.deepEqual(most, [1, 1, 1, 1, 1, 1]);
  assert.ok(settled.every((s) => s.status === 'rejected'));
});

test('a cancelled request waiting behind the probe is not sent', async () => {
  const limiter = probingLimiter(createLimiter(4));
  const stop = new AbortController();
  let sent = 0;
  const probe = limiter.run(async () => {
    sent++;
    stop.abort(new Error('stopped'));
    await new Promise((r) => setTimeout(r, 5));
    throw new Error('refused');
  });
  const waiting = limiter.run(() => {
    sent++;
    return Promise.resolve();
  }, stop.signal);
  await assert.rejects(probe, /refused/);
  await assert.rejects(waiting, /stopped/);
  assert.equal(sent, 1);
});
