import { test } from 'node:test';
import assert from 'node:assert/strict';
import { partsForComplete } from '../../../src/engine/complete.ts';
import type { CheckpointPart } from '../../../src/engine/checkpoint.ts';

const part = (n: number): CheckpointPart => ({ n, etag: `"e${n}"`, size: 100, crc64: String(n) });
const done = (...ns: number[]): Map<number, CheckpointPart> => new Map(ns.map((n) => [n, part(n)]));

test('partsForComplete names every planned part in order', () => {
  assert.deepEqual(
    partsForComplete(done(3, 1, 2), 3).map((p) => p.n),
    [1, 2, 3],
  );
});

test('partsForComplete refuses a list short of a planned part, naming it', () => {
  assert.throws(
    () => partsForComplete(done(1, 3), 3),
    /2 verified parts where the plan has 3 \(missing part 2\)/,
  );
});

test('partsForComplete refuses parts beyond the plan', () => {
  assert.throws(() => partsForComplete(done(1, 2, 3, 4), 3), /4 verified parts where the plan has 3/);
});
