// The limiter of a run that has no listing to prove its credentials: one request alone until one is answered
// with anything but a refusal of the credentials, then the whole window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLimiter } from '../../src/engine/index.ts';
import { probingLimiter } from '../../src/deploy/run.ts';

type Outcome = 'ok' | 'refused' | 'failed';

/**
 * Runs `outcomes.length` tasks at once; each resolves, is refused (SignatureDoesNotMatch: the credentials) or
 * fails otherwise (InternalError) as told, after a turn of the event loop.
 */
async function runAll(outcomes: readonly Outcome[], limit = 8) {
  const limiter = probingLimiter(createLimiter(limit));
  let inFlight = 0;
  const most: number[] = [];
  const settled = await Promise.allSettled(
    outcomes.map((ok, i) =>
      limiter.run(async () => {
        most[i] = ++inFlight;
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        if (ok === 'refused') throw Object.assign(new Error(`task ${i}`), { code: 'SignatureDoesNotMatch' });
        if (ok === 'failed') throw Object.assign(new Error(`task ${i}`), { code: 'InternalError' });
        return i;
      }),
    ),
  );
  return { most, settled };
}

test('one request goes alone while the credentials are refused; an answer that proves them opens the window', async () => {
  const { most, settled } = await runAll(['refused', 'refused', 'ok', ...Array<Outcome>(7).fill('ok')]);
  // the two refused ones and the one that succeeded each went alone
  assert.deepEqual(most.slice(0, 3), [1, 1, 1]);
  assert.ok(Math.max(...most.slice(3)) > 1, `the rest went together: ${most.join(',')}`);
  assert.deepEqual(
    settled.map((s) => s.status),
    ['rejected', 'rejected', ...Array<string>(8).fill('fulfilled')],
  );
});

test('a run whose every request is refused never has two in flight', async () => {
  const { most, settled } = await runAll(Array<Outcome>(6).fill('refused'));
  assert.deepEqual(most, [1, 1, 1, 1, 1, 1]);
  assert.ok(settled.every((s) => s.status === 'rejected'));
});

test('a failure that is no refusal of the credentials (a 404, a 5xx) opens the window too', async () => {
  const { most } = await runAll(Array<Outcome>(8).fill('failed'));
  assert.equal(most[0], 1);
  assert.ok(Math.max(...most.slice(1)) > 1, `the rest went together: ${most.join(',')}`);
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
