// Proves temporary credentials are reused while fresh, refreshed once (not per request) before they expire,
// and that a failed refresh falls back to the set that still works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Credentials, refreshingCredentials } from '../../../src/oss/index.ts';

const MIN = 60_000;

function issuer(lifetimeMs: number, clock: { t: number }) {
  const sets: Credentials[] = [];
  let fail = false;
  const fetch = async (): Promise<Credentials> => {
    await new Promise((r) => setImmediate(r));
    if (fail) throw new Error('STS unavailable');
    const n = sets.length + 1;
    const c = {
      accessKeyId: `STS.id${n}`,
      accessKeySecret: `secret${n}`,
      securityToken: `token${n}`,
      expiration: new Date(clock.t + lifetimeMs),
    };
    sets.push(c);
    return c;
  };
  return { fetch, sets, setFail: (v: boolean) => (fail = v) };
}

test('one fetch for many requests while fresh; one refresh, shared, within 5 minutes of expiry', async () => {
  const clock = { t: 1_000_000 };
  const sts = issuer(60 * MIN, clock);
  const provider = refreshingCredentials(sts.fetch, { now: () => clock.t });
  const first = await Promise.all(Array.from({ length: 20 }, () => provider()));
  assert.equal(sts.sets.length, 1);
  assert.ok(first.every((c) => c.securityToken === 'token1'));

  clock.t += 54 * MIN; // 6 minutes left: still fresh
  assert.equal((await provider()).securityToken, 'token1');
  assert.equal(sts.sets.length, 1);

  clock.t += 2 * MIN; // 4 minutes left: refresh, once for all concurrent callers
  const second = await Promise.all(Array.from({ length: 20 }, () => provider()));
  assert.equal(sts.sets.length, 2);
  assert.ok(second.every((c) => c.securityToken === 'token2'));
});

test('a set that lives shorter than the margin is refreshed at half its life, not on every request', async () => {
  const clock = { t: 0 };
  const sts = issuer(4000, clock);
  const provider = refreshingCredentials(sts.fetch, { now: () => clock.t });
  await provider();
  clock.t = 1999;
  await provider();
  assert.equal(sts.sets.length, 1);
  clock.t = 2000;
  assert.equal((await provider()).securityToken, 'token2');
});

test('a failed refresh keeps the working set, retries after a pause, and an expired set is never handed out', async () => {
  const clock = { t: 0 };
  const sts = issuer(10 * MIN, clock);
  const errors: unknown[] = [];
  const provider = refreshingCredentials(sts.fetch, {
    now: () => clock.t,
    retryAfterMs: 30_000,
    onRefreshError: (e) => errors.push(e),
  });
  await provider();
  sts.setFail(true);
  clock.t = 6 * MIN; // within the margin
  assert.equal((await provider()).securityToken, 'token1');
  assert.equal(errors.length, 1);
  clock.t += 10_000; // inside the pause: no new attempt
  assert.equal((await provider()).securityToken, 'token1');
  assert.equal(errors.length, 1);
  clock.t += 30_000;
  await provider();
  assert.equal(errors.length, 2);

  clock.t = 10 * MIN; // expired, and STS still down: fail rather than sign with a dead token
  await assert.rejects(provider(), /STS unavailable/);
  sts.setFail(false);
  assert.equal((await provider()).securityToken, 'token2');
});

test('a set the service refused is replaced at once, by one fetch however many requests report it', async () => {
  const clock = { t: 0 };
  const sts = issuer(60 * MIN, clock);
  const provider = refreshingCredentials(sts.fetch, { now: () => clock.t });
  const first = await provider();
  const next = await Promise.all(Array.from({ length: 10 }, () => provider({ rejected: first })));
  assert.equal(sts.sets.length, 2);
  assert.ok(next.every((c) => c.securityToken === 'token2'));
  // a late report about the old set changes nothing
  assert.equal((await provider({ rejected: first })).securityToken, 'token2');
  assert.equal(sts.sets.length, 2);
});
