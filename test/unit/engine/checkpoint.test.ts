// Proves the checkpoint codec round-trips, rejects every corruption, and writes atomically.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  type CheckpointState,
  checkpointPathFor,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  writeCheckpoint,
} from '../../../src/engine/checkpoint.ts';

const hex = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: min, maxLength: max });

const stateArb: fc.Arbitrary<CheckpointState> = fc.record(
  {
    bucket: fc.string({ minLength: 1 }),
    key: fc.string({ minLength: 1 }),
    endpoint: fc.webUrl(),
    file: fc.string({ minLength: 1 }),
    fileSize: fc.nat(),
    partSize: fc.integer({ min: 102400, max: 5 * 1024 ** 3 }),
    uploadId: hex(1, 32),
    parts: fc
      .uniqueArray(fc.integer({ min: 1, max: 10000 }), { maxLength: 30 })
      .chain((ns) =>
        fc.tuple(
          ...ns.map((n) =>
            fc.record(
              {
                n: fc.constant(n),
                etag: hex(32, 32).map((h) => `"${h.toUpperCase()}"`),
                size: fc.nat(),
                crc64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
              },
              { noNullPrototype: true },
            ),
          ),
        ),
      )
      .map((parts) => [...parts].sort((a, b) => a.n - b.n)),
  },
  { noNullPrototype: true },
);

test('encode then decode gives the same state', () => {
  fc.assert(
    fc.property(stateArb, (state) => {
      assert.deepEqual(decodeCheckpoint(encodeCheckpoint(state)), state);
    }),
    { numRuns: 300 },
  );
});

test('every truncation and every single changed character is rejected', () => {
  fc.assert(
    fc.property(stateArb, fc.nat(), fc.integer({ min: 32, max: 126 }), (state, at, code) => {
      const text = encodeCheckpoint(state).trimEnd();
      const cut = at % text.length;
      assert.ok('error' in decodeCheckpoint(text.slice(0, cut)), 'truncated');
      const ch = String.fromCharCode(code);
      if (text[cut] === ch) return;
      const changed = text.slice(0, cut) + ch + text.slice(cut + 1);
      const decoded = decodeCheckpoint(changed);
      assert.ok('error' in decoded, `changed at ${cut}: ${changed}`);
    }),
    { numRuns: 300 },
  );
});

test('an older format version is rejected with a reason', () => {
  const body = { format: 'oss-resumable-upload/checkpoint', version: 0 };
  assert.deepEqual(decodeCheckpoint(JSON.stringify({ checksum: 'x', body })), {
    error: 'format version 0, expected 1',
  });
  assert.deepEqual(decodeCheckpoint('{"uploadId":"x"}'), { error: 'not a checkpoint file' });
});

test('the file never holds credentials: only the listed fields are written', () => {
  const state = { ...sample(), accessKeySecret: 'secret-value' } as CheckpointState;
  assert.doesNotMatch(encodeCheckpoint(state), /secret-value/);
});

test('load accepts a matching checkpoint and names the field of a foreign one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = checkpointPathFor(dir, 'b', 'k');
  const state = sample();
  await writeCheckpoint(path, state);
  const identity = { bucket: 'b', key: 'k', endpoint: state.endpoint, fileSize: 1000000, partSize: 204800 };
  assert.deepEqual(await loadCheckpoint(path, identity), state);
  const foreign = await loadCheckpoint(path, { ...identity, partSize: 409600 });
  assert.equal(
    'kind' in foreign && foreign.kind === 'invalid' && foreign.reason,
    'written for another partSize (204800, now 409600)',
  );
  assert.deepEqual(await loadCheckpoint(join(dir, 'none.cp'), identity), { kind: 'missing' });
  await writeFile(path, '{"checksum":"');
  const torn = await loadCheckpoint(path, identity);
  assert.equal(
    'kind' in torn && torn.kind === 'invalid' && torn.reason,
    'not valid JSON (corrupt or truncated)',
  );
});

test('write replaces the file atomically and leaves no temp files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'x.cp');
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => writeCheckpoint(path, { ...sample(), uploadId: `u${i}` })),
  );
  assert.deepEqual(await readdir(dir), ['x.cp']);
  const decoded = decodeCheckpoint(await readFile(path, 'utf8'));
  assert.ok(!('error' in decoded) && /^u\d+$/.test(decoded.uploadId));
});

test('checkpoint file names depend on bucket and key only', () => {
  assert.equal(checkpointPathFor('/d', 'b', 'k'), checkpointPathFor('/d', 'b', 'k'));
  assert.notEqual(checkpointPathFor('/d', 'b', 'k'), checkpointPathFor('/d', 'b', 'k2'));
  assert.match(checkpointPathFor('/d', 'b', 'k'), /^\/d\/[0-9a-f]{32}\.cp$/);
});

function sample(): CheckpointState {
  return {
    bucket: 'b',
    key: 'k',
    endpoint: 'http://127.0.0.1:9000/b/k',
    file: '/tmp/f',
    fileSize: 1000000,
    partSize: 204800,
    uploadId: 'UPLOAD1',
    parts: [{ n: 1, etag: '"0CC175B9C0F1B6A831C399E269772661"', size: 204800, crc64: '123' }],
  };
}
