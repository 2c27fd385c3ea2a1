// Proves CRC-64/XZ matches the catalogue check value, streams in any chunking and combines without re-reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import {
  CRC64_TABLES,
  Crc64,
  crc64,
  crc64Combine,
  crc64FromRegister,
  parseCrc64,
  updateCrc64Register,
} from '../../../src/oss/crc64.ts';
import { textbookCrc64 } from '../../helpers/crc64-reference.ts';

test('check value of "123456789" is 0x995DC9BBDF1939FA', () => {
  assert.equal(crc64(Buffer.from('123456789')), 0x995dc9bbdf1939fan);
  assert.equal(new Crc64().update(Buffer.from('123456789')).toString(), 11051210869376104954n.toString());
});

test('empty input gives 0', () => {
  assert.equal(crc64(new Uint8Array(0)), 0n);
});

test('matches the bit-at-a-time reference at every alignment and length', () => {
  const buf = randomBytes(300);
  for (let start = 0; start < 9; start++) {
    for (const len of [0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 200]) {
      const slice = buf.subarray(start, start + len);
      assert.equal(crc64(slice), textbookCrc64(slice), `start=${start} len=${len}`);
    }
  }
});

test('streaming over arbitrary chunks equals one call', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 2000 }),
      fc.array(fc.nat(300), { maxLength: 20 }),
      (data, cuts) => {
        const c = new Crc64();
        let pos = 0;
        for (const cut of cuts) {
          c.update(data.subarray(pos, pos + cut));
          pos += cut;
        }
        c.update(data.subarray(pos));
        assert.equal(c.value, textbookCrc64(data));
      },
    ),
    { numRuns: 200 },
  );
});

test('combine(crc(A), crc(B), len(B)) equals crc(A+B)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 500 }), fc.uint8Array({ maxLength: 500 }), (a, b) => {
      const whole = Buffer.concat([a, b]);
      assert.equal(crc64Combine(crc64(a), crc64(b), b.length), crc64(whole));
    }),
    { numRuns: 200 },
  );
});

test('resume continues a finished CRC', () => {
  const a = randomBytes(1000);
  const b = randomBytes(777);
  assert.equal(crc64(b, crc64(a)), crc64(Buffer.concat([a, b])));
});

test('parseCrc64 accepts unsigned decimal 64-bit values only', () => {
  assert.equal(parseCrc64('18446744073709551615'), 0xffffffffffffffffn);
  assert.equal(parseCrc64('18446744073709551616'), undefined);
  assert.equal(parseCrc64('-1'), undefined);
  assert.equal(parseCrc64(''), undefined);
  assert.equal(parseCrc64(null), undefined);
  assert.equal(parseCrc64('12ab'), undefined);
});

/** The JavaScript kernel alone: the reference the WebAssembly one (behind Crc64 and crc64) must match. */
function jsKernel(data: Uint8Array): bigint {
  const state = new Uint32Array([0xffffffff, 0xffffffff]);
  updateCrc64Register(state, data, CRC64_TABLES.lo, CRC64_TABLES.hi);
  return crc64FromRegister(state[0]!, state[1]!);
}

test('the WebAssembly kernel matches the JavaScript one: random buffers, any offset, past its 256 KiB window', () => {
  const big = randomBytes(600 * 1024 + 13);
  for (const [start, end] of [
    [0, big.length],
    [1, 262_145],
    [5, 262_144 + 5],
    [262_143, 524_300],
    [7, 23],
  ] as const) {
    const slice = big.subarray(start, end);
    assert.equal(crc64(slice), jsKernel(slice), `${start}..${end}`);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4096 }), fc.nat(15), (bytes, skip) => {
      const data = bytes.subarray(Math.min(skip, bytes.length));
      assert.equal(crc64(data), jsKernel(data));
      // and in two calls, resumed, as the engine feeds it
      const cut = Math.floor(data.length / 3);
      assert.equal(
        new Crc64().update(data.subarray(0, cut)).update(data.subarray(cut)).value,
        jsKernel(data),
      );
    }),
  );
});

test('the committed WebAssembly module is what crc64.wat assembles to', async () => {
  const { GENERATED, generatedModule } = await import('../../../scripts/build-wasm.ts');
  assert.equal(await readFile(GENERATED, 'utf8'), await generatedModule(), 'run npm run build:wasm');
});
