// Proves the part plan stays within OSS's limits for every file size and part size, and covers the file exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_PART_SIZE_BYTES,
  MAX_PARTS,
  MAX_PART_SIZE_BYTES,
  MIN_PART_SIZE_BYTES,
  autoPartSize,
  partRange,
  planParts,
} from '../../../src/engine/plan.ts';
import { InvalidArgumentError } from '../../../src/engine/errors.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

test('every plan has 1..10,000 parts within 100 KB..5 GB that tile the file exactly', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: MAX_PARTS * MAX_PART_SIZE_BYTES }),
      fc.oneof(
        fc.integer({ min: MIN_PART_SIZE_BYTES, max: MAX_PART_SIZE_BYTES }),
        fc.constant('auto' as const),
      ),
      (size, partSize) => {
        const plan = planParts(size, partSize);
        assert.ok(plan.partCount >= 1 && plan.partCount <= MAX_PARTS);
        assert.ok(plan.partSize >= MIN_PART_SIZE_BYTES && plan.partSize <= MAX_PART_SIZE_BYTES);
        if (plan.single) {
          assert.equal(plan.partCount, 1);
          assert.ok(size <= plan.partSize);
          return;
        }
        const last = partRange(plan, size, plan.partCount);
        assert.equal(last.start + last.length, size);
        assert.ok(last.length >= 1 && last.length <= plan.partSize);
        assert.equal(partRange(plan, size, 1).length, plan.partSize);
        if (typeof partSize === 'number') {
          if (plan.partSizeAdjustedFrom === undefined) assert.equal(plan.partSize, partSize);
          else {
            assert.equal(plan.partSizeAdjustedFrom, partSize);
            assert.ok(plan.partSize > partSize);
            assert.ok(Math.ceil(size / partSize) > MAX_PARTS);
          }
        }
      },
    ),
    { numRuns: 2000 },
  );
});

test('a file needing more than 10,000 parts grows the part size to whole MiB and says so', () => {
  const plan = planParts(100 * GiB, 8 * MiB);
  assert.deepEqual(plan, {
    partSize: 11 * MiB,
    partCount: 9310,
    single: false,
    partSizeAdjustedFrom: 8 * MiB,
  });
});

test('exactly 10,000 parts keeps the requested size', () => {
  const plan = planParts(10_000 * MIN_PART_SIZE_BYTES, MIN_PART_SIZE_BYTES);
  assert.deepEqual(plan, { partSize: MIN_PART_SIZE_BYTES, partCount: 10_000, single: false });
});

test('files no larger than one part are a single PutObject, empty files included', () => {
  assert.deepEqual(planParts(0), { partSize: DEFAULT_PART_SIZE_BYTES, partCount: 1, single: true });
  assert.deepEqual(planParts(DEFAULT_PART_SIZE_BYTES), {
    partSize: DEFAULT_PART_SIZE_BYTES,
    partCount: 1,
    single: true,
  });
  assert.equal(planParts(DEFAULT_PART_SIZE_BYTES + 1).partCount, 2);
});

test('auto keeps 8 MiB for ordinary files and aims at about 1,000 parts for big ones', () => {
  assert.equal(autoPartSize(1 * GiB), 8 * MiB);
  assert.equal(autoPartSize(100 * GiB), 103 * MiB);
  assert.equal(planParts(100 * GiB, 'auto').partSizeAdjustedFrom, undefined);
});

test('part sizes outside 100 KB..5 GB are refused with the allowed range', () => {
  for (const bad of [MIN_PART_SIZE_BYTES - 1, MAX_PART_SIZE_BYTES + 1, 0, -1, 1.5, Number.NaN]) {
    assert.throws(
      () => planParts(1000, bad),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        e.field === 'partSize' &&
        e.message ===
          `partSize: got ${bad}; allowed a whole number of bytes from 102400 (100 KB) to 5368709120 (5 GB), or 'auto'`,
    );
  }
});

test('a file larger than 10,000 parts of 5 GB is refused', () => {
  assert.throws(() => planParts(MAX_PARTS * MAX_PART_SIZE_BYTES + 1), /file size: got 53687091200001/);
});
