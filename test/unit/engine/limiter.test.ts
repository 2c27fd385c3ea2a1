// Proves the limiter never runs more than its limit, frees slots on failure and drops cancelled waiters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { createLimiter } from '../../../src/engine/limiter.ts';

test('never more than `limit` tasks at once, all tasks run', async () => {
  const limiter = createLimiter(3);
  let running = 0;
  let peak = 0;
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      limiter.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
        return i;
      }),
    ),
  );
  assert.equal(peak, 3);
  assert.deepEqual(
    results,
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.equal(limiter.active, 0);
});

test('a failing task frees its slot', async () => {
  const limiter = createLimiter(1);
  await assert.rejects(
    limiter.run(() => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(await limiter.run(() => Promise.resolve('next')), 'next');
});

test('an abort while queued rejects with the reason and the task never runs', async () => {
  const limiter = createLimiter(1);
  let release!: () => void;
  const first = limiter.run(() => new Promise<void>((r) => (release = r)));
  const controller = new AbortController();
  let ran = false;
  const queued = limiter.run(() => {
    ran = true;
    return Promise.resolve();
  }, controller.signal);
  const reason = new Error('stop');
  controller.abort(reason);
  await assert.rejects(queued, (e) => e === reason);
  release();
  await first;
  assert.equal(ran, false);
  assert.equal(limiter.active, 0);
});

test('limits outside 1..1000 are refused', () => {
  assert.throws(() => createLimiter(0), /threadNum: got 0; allowed a whole number from 1 to 1000/);
  assert.throws(() => createLimiter(2.5), /threadNum: got 2.5/);
});
