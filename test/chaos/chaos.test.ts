// The short chaos run: seeded faults and SIGKILLs against real processes; nothing may be lost or left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

test('a short seeded chaos run verifies every object and leaves no orphan upload or checkpoint', async () => {
  const args = ['--rounds', '8', '--seed', '8', '--big', '6MiB', '--small', '25'];
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(import.meta.dirname, '../../chaos/index.ts'), ...args],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const last = stdout.trim().split('\n').at(-1)!;
  const m =
    /^chaos: rounds=(\d+) faults=(\d+) kills=(\d+) objects=(\d+) verified=(\d+) failures=(\d+) orphans=(\d+)$/.exec(
      last,
    );
  assert.ok(m, stdout);
  const [rounds, faults, kills, objects, verified, failures, orphans] = m.slice(1).map(Number);
  assert.equal(rounds, 8);
  assert.ok(faults! > 0, 'faults were injected');
  assert.ok(kills! > 0, 'the uploader was killed mid-upload');
  assert.equal(objects, 8 * 30);
  assert.equal(verified, objects, stdout);
  assert.equal(failures, 0, stdout);
  assert.equal(orphans, 0, stdout);
  assert.match(stdout, /^faults by kind: /m);
});
