/**
 * Attacks on the CRC-64/XZ kernels behind every verified upload: the WebAssembly one that `Crc64` and `crc64`
 * run, checked against a bit-at-a-time reference that shares nothing with either kernel's tables, and the
 * JavaScript fallback, forced by loading the module where WebAssembly is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { Crc64, crc64, crc64Combine, parseCrc64 } from '../../src/oss/crc64.ts';
import { bitwiseCrc64, textbookCrc64 } from '../helpers/crc64-reference.ts';

const WINDOW = 256 * 1024;

test('the reference agrees with the CRC-64/XZ check value and the textbook form', () => {
  assert.equal(bitwiseCrc64(Buffer.from('123456789')), 0x995dc9bbdf1939fan);
  const data = randomBytes(300);
  for (let n = 0; n <= data.length; n += 7)
    assert.equal(bitwiseCrc64(data.subarray(0, n)), textbookCrc64(data.subarray(0, n)));
});

test('every length 0..1100 at every alignment 0..15, and random lengths up to 100 000+', () => {
  const big = randomBytes(140_000);
  for (let off = 0; off < 16; off++) {
    for (let n = 0; n <= 1100; n++) {
      const view = big.subarray(off, off + n);
      assert.equal(crc64(view), bitwiseCrc64(view), `offset ${off} length ${n}`);
    }
  }
  fc.assert(
    fc.property(fc.nat(31), fc.integer({ min: 0, max: 120_000 }), (off, n) => {
      const view = big.subarray(off, off + n);
      assert.equal(crc64(view), bitwiseCrc64(view));
    }),
    { numRuns: 40 },
  );
});

test('at, around and across the 256 KiB window and its multiples', () => {
  const big = randomBytes(3 * WINDOW + 64);
  const lengths = [WINDOW, 2 * WINDOW, 3 * WINDOW];
  for (const base of lengths) {
    for (const d of [-17, -16, -15, -8, -1, 0, 1, 8, 15, 16, 17]) {
      for (const off of [0, 3]) {
        const view = big.subarray(off, off + base + d);
        if (view.length !== base + d) continue;
        assert.equal(crc64(view), bitwiseCrc64(view), `offset ${off} length ${base}${d >= 0 ? '+' : ''}${d}`);
      }
    }
  }
});

test('views that are not a whole ArrayBuffer: subarrays, SharedArrayBuffer, pooled Buffers with odd offsets', () => {
  const shared = new Uint8Array(new SharedArrayBuffer(WINDOW + 4099));
  shared.set(randomBytes(shared.length));
  for (const [a, b] of [
    [0, shared.length],
    [1, WINDOW + 2],
    [5, 5 + 4093],
    [WINDOW - 3, WINDOW + 4099],
  ] as const) {
    const view = shared.subarray(a, b);
    assert.equal(crc64(view), bitwiseCrc64(view), `shared ${a}..${b}`);
  }
  for (let i = 0; i < 64; i++) {
    const n = 1 + ((i * 37) % 500);
    const pooled = Buffer.allocUnsafe(n);
    randomBytes(n).copy(pooled);
    assert.equal(crc64(pooled), bitwiseCrc64(pooled), `pooled offset ${pooled.byteOffset} length ${n}`);
  }
  // a typed view over a larger ArrayBuffer whose bytes before and after must not leak in
  const ab = new ArrayBuffer(10_000);
  const all = new Uint8Array(ab);
  all.fill(0xaa);
  const mid = new Uint8Array(ab, 1234, 5001);
  mid.set(randomBytes(mid.length));
  assert.equal(crc64(mid), bitwiseCrc64(mid));
});

test('instances interleaved, empty updates chained, value read repeatedly', () => {
  const a = randomBytes(WINDOW + 999);
  const b = randomBytes(3 * 1024 + 5);
  const ca = new Crc64();
  const cb = new Crc64();
  let ia = 0;
  let ib = 0;
  let step = 1;
  while (ia < a.length || ib < b.length) {
    const na = Math.min(a.length - ia, step * 131);
    ca.update(a.subarray(ia, ia + na)).update(new Uint8Array(0));
    ia += na;
    const first = ca.value;
    assert.equal(ca.value, first);
    assert.equal(ca.value, first);
    const nb = Math.min(b.length - ib, step);
    cb.update(new Uint8Array(0)).update(b.subarray(ib, ib + nb));
    ib += nb;
    step++;
  }
  assert.equal(ca.value, bitwiseCrc64(a));
  assert.equal(cb.value, bitwiseCrc64(b));
  assert.equal(ca.value, ca.value);
  assert.equal(new Crc64().update(new Uint8Array(0)).value, 0n);
  assert.equal(new Crc64().value, 0n);
});

test('resume from CRCs with the top bit set, and from the extremes', () => {
  const tail = randomBytes(777);
  const starts = [
    0n,
    1n,
    1n << 63n,
    (1n << 63n) - 1n,
    (1n << 63n) + 1n,
    0xffffffffffffffffn,
    0xfffffffffffffffen,
  ];
  for (let i = 0; i < 40; i++)
    starts.push((1n << 63n) | (BigInt(`0x${randomBytes(8).toString('hex')}`) >> 1n));
  for (const start of starts) {
    for (const n of [0, 1, 15, 16, 17, 777]) {
      const data = tail.subarray(0, n);
      const want = bitwiseCrc64(data, start);
      assert.equal(crc64(data, start), want, `from ${start} over ${n}`);
      assert.equal(new Crc64().resume(start).update(data).value, want);
      assert.equal(new Crc64().resume(start).update(data).toString(), want.toString(10));
    }
  }
  // a prefix whose CRC has the top bit set, resumed in a second instance
  let prefix = randomBytes(33);
  while (crc64(prefix) < 1n << 63n) prefix = randomBytes(33);
  const rest = randomBytes(WINDOW + 1);
  assert.equal(
    new Crc64().resume(crc64(prefix)).update(rest).value,
    bitwiseCrc64(Buffer.concat([prefix, rest])),
  );
});

test('combine, toString and parseCrc64 on kernel values', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.uint8Array({ maxLength: 3000 }), (a, b) => {
      const whole = bitwiseCrc64(Buffer.concat([a, b]));
      assert.equal(crc64Combine(crc64(a), crc64(b), b.length), whole);
      assert.equal(crc64Combine(crc64(a), crc64(b), BigInt(b.length)), whole);
      const text = new Crc64().update(a).update(b).toString();
      assert.match(text, /^\d{1,20}$/);
      assert.equal(parseCrc64(text), whole);
      assert.equal(parseCrc64(` ${text} `), whole);
    }),
    { numRuns: 60 },
  );
  let top = randomBytes(40);
  while (crc64(top) < 1n << 63n) top = randomBytes(40);
  const s = new Crc64().update(top).toString();
  assert.ok(!s.startsWith('-') && BigInt(s) >= 1n << 63n, s);
  assert.equal(parseCrc64('18446744073709551615'), 0xffffffffffffffffn);
  assert.equal(parseCrc64('18446744073709551616'), undefined);
  assert.equal(parseCrc64('-1'), undefined);
});

/** Load crc64.ts in a worker with WebAssembly deleted (after Node's own TypeScript loader is up). */
function inWorkerWithout(script: string): Promise<unknown> {
  const crcUrl = new URL('../../src/oss/crc64.ts', import.meta.url).href;
  const warmUrl = new URL('../../src/oss/crc64-wasm.ts', import.meta.url).href;
  const code = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  await import(${JSON.stringify(warmUrl)});
  delete globalThis.WebAssembly;
  const m = await import(${JSON.stringify(crcUrl)});
  ${script}
})().then((r) => parentPort.postMessage({ ok: r }), (e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.once('message', (m: { ok?: unknown; error?: string }) => {
      void w.terminate();
      if (m.error) reject(new Error(m.error));
      else resolve(m.ok);
    });
    w.once('error', reject);
  });
}

test('the JavaScript fallback (no WebAssembly) gives the same CRCs as the WebAssembly kernel', async () => {
  const seed = randomBytes(2 * WINDOW + 100);
  const cases: Array<[number, number]> = [
    [0, 0],
    [0, 9],
    [1, 16],
    [3, 1000],
    [7, WINDOW],
    [5, WINDOW + 17],
    [0, 2 * WINDOW + 100],
  ];
  const got = (await inWorkerWithout(`
    const data = Buffer.from(${JSON.stringify(seed.toString('base64'))}, 'base64');
    const cases = ${JSON.stringify(cases)};
    const out = { wasm: typeof WebAssembly, check: m.crc64(Buffer.from('123456789')).toString(16), crcs: [] };
    for (const [off, n] of cases) {
      const view = data.subarray(off, off + n);
      const c = new m.Crc64().resume(0xfedcba9876543210n);
      c.update(view.subarray(0, n >> 1)).update(new Uint8Array(0)).update(view.subarray(n >> 1));
      out.crcs.push([m.crc64(view).toString(), c.toString()]);
    }
    return out;
  `)) as { wasm: string; check: string; crcs: Array<[string, string]> };
  assert.equal(got.wasm, 'undefined', 'the worker ran without WebAssembly');
  assert.equal(got.check, '995dc9bbdf1939fa');
  cases.forEach(([off, n], i) => {
    const view = seed.subarray(off, off + n);
    assert.equal(got.crcs[i]![0], crc64(view).toString(), `plain ${off}+${n}`);
    assert.equal(got.crcs[i]![1], bitwiseCrc64(view, 0xfedcba9876543210n).toString(), `resumed ${off}+${n}`);
  });
});
