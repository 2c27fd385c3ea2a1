/**
 * CRC-64/XZ (ECMA-182 polynomial, reflected, init and xorout all ones): the value OSS sends
 * in `x-oss-hash-crc64ecma` as an unsigned decimal string.
 *
 * Two kernels. The JavaScript one is slicing-by-8 over two 32-bit halves with 32-bit word loads (BigInt per
 * byte runs at ~20 MB/s, this at ~1.4 GB/s on Node 24); a hashing worker is built from its source text. The
 * WebAssembly one (crc64.wat) serves `Crc64` and `crc64` on the thread that loads this module, at ~2.4 GB/s
 * (see the hashing line of `npm run bench`).
 */
import { CRC64_WASM_BASE64 } from './crc64-wasm.ts';

const POLY = 0xc96c5795d7870f42n;
const MASK64 = 0xffffffffffffffffn;

// eight tables of 256 entries, split into low and high 32-bit halves
const TABLE_LO = new Uint32Array(8 * 256);
const TABLE_HI = new Uint32Array(8 * 256);

(function buildTables(): void {
  const polyLo = Number(POLY & 0xffffffffn);
  const polyHi = Number(POLY >> 32n);
  for (let n = 0; n < 256; n++) {
    let lo = n;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const carry = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (carry) {
        lo = (lo ^ polyLo) >>> 0;
        hi = (hi ^ polyHi) >>> 0;
      }
    }
    TABLE_LO[n] = lo;
    TABLE_HI[n] = hi;
  }
  for (let t = 1; t < 8; t++) {
    for (let n = 0; n < 256; n++) {
      const prevLo = TABLE_LO[(t - 1) * 256 + n]!;
      const prevHi = TABLE_HI[(t - 1) * 256 + n]!;
      const idx = prevLo & 0xff;
      TABLE_LO[t * 256 + n] = (((prevLo >>> 8) | (prevHi << 24)) ^ TABLE_LO[idx]!) >>> 0;
      TABLE_HI[t * 256 + n] = ((prevHi >>> 8) ^ TABLE_HI[idx]!) >>> 0;
    }
  }
})();

/**
 * Advance the inverted CRC register `state` ([low, high] 32-bit halves) over `data`.
 *
 * Self-contained on purpose (it touches nothing but its arguments) so that a hashing worker can be
 * built from its source text: see engine/range-hasher.ts.
 */
export function updateCrc64Register(
  state: Uint32Array,
  data: Uint8Array,
  tableLo: Uint32Array,
  tableHi: Uint32Array,
): void {
  let lo = state[0]!;
  let hi = state[1]!;
  const len = data.length;
  let i = 0;
  // byte steps until the next byte sits on a 4-byte boundary, so the word view below is legal
  const head = Math.min((4 - (data.byteOffset & 3)) & 3, len);
  for (; i < head; i++) {
    const idx = (lo ^ data[i]!) & 0xff;
    lo = ((lo >>> 8) | (hi << 24)) ^ tableLo[idx]!;
    hi = (hi >>> 8) ^ tableHi[idx]!;
  }
  const words = (len - i) >>> 3;
  // word loads read the host's byte order; every platform Node ships on is little-endian, but check
  const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  if (words > 0 && littleEndian) {
    const view = new Int32Array(data.buffer, data.byteOffset + i, words * 2);
    for (let w = 0; w < view.length; w += 2) {
      const a = lo ^ view[w]!;
      const b = hi ^ view[w + 1]!;
      lo =
        tableLo[1792 + (a & 0xff)]! ^
        tableLo[1536 + ((a >>> 8) & 0xff)]! ^
        tableLo[1280 + ((a >>> 16) & 0xff)]! ^
        tableLo[1024 + (a >>> 24)]! ^
        tableLo[768 + (b & 0xff)]! ^
        tableLo[512 + ((b >>> 8) & 0xff)]! ^
        tableLo[256 + ((b >>> 16) & 0xff)]! ^
        tableLo[b >>> 24]!;
      hi =
        tableHi[1792 + (a & 0xff)]! ^
        tableHi[1536 + ((a >>> 8) & 0xff)]! ^
        tableHi[1280 + ((a >>> 16) & 0xff)]! ^
        tableHi[1024 + (a >>> 24)]! ^
        tableHi[768 + (b & 0xff)]! ^
        tableHi[512 + ((b >>> 8) & 0xff)]! ^
        tableHi[256 + ((b >>> 16) & 0xff)]! ^
        tableHi[b >>> 24]!;
    }
    i += words * 8;
  }
  for (; i < len; i++) {
    const idx = (lo ^ data[i]!) & 0xff;
    lo = ((lo >>> 8) | (hi << 24)) ^ tableLo[idx]!;
    hi = (hi >>> 8) ^ tableHi[idx]!;
  }
  state[0] = lo;
  state[1] = hi;
}

/** The slicing-by-8 tables, for code that runs {@link updateCrc64Register} elsewhere. */
export const CRC64_TABLES: { readonly lo: Uint32Array; readonly hi: Uint32Array } = {
  lo: TABLE_LO,
  hi: TABLE_HI,
};

/** Turn an inverted register ([low, high]) into the finished CRC. */
export function crc64FromRegister(lo: number, hi: number): bigint {
  return (BigInt(~hi >>> 0) << 32n) | BigInt(~lo >>> 0);
}

/** The part of the WebAssembly API used here (its full types come with the DOM library, not Node's). */
declare const WebAssembly:
  | {
      Module: new (bytes: Uint8Array) => object;
      Instance: new (module: object) => { exports: Record<string, unknown> };
    }
  | undefined;

/** Bytes copied into the WebAssembly kernel's memory per call: its window (see crc64.wat). */
const WASM_WINDOW = 256 * 1024;
/** Where the window starts: after the kernel's 16 tables of 256 u64. */
const WASM_TABLES_BYTES = 16 * 256 * 8;

/**
 * The WebAssembly kernel (crc64.wat): a native 64-bit register and slicing-by-16, some 1.7x the JS kernel,
 * which stays the reference it is tested against and the fallback where WebAssembly is missing. Returns the
 * advanced register (as WebAssembly hands an i64 to JavaScript: signed).
 */
const wasmUpdate = ((): ((register: bigint, data: Uint8Array) => bigint) | undefined => {
  const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  if (typeof WebAssembly !== 'object' || !littleEndian) return undefined;
  let instance: { exports: Record<string, unknown> };
  try {
    instance = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(CRC64_WASM_BASE64, 'base64')));
  } catch {
    // an embedder may forbid compiling WebAssembly (a vm context without it): the JS kernel serves
    return undefined;
  }
  const memory = instance.exports.memory as { buffer: ArrayBuffer };
  const update = instance.exports.update as (register: bigint, at: number, length: number) => bigint;
  const tables = new BigUint64Array(memory.buffer, 0, 16 * 256);
  for (let n = 0; n < 256; n++) tables[n] = (BigInt(TABLE_HI[n]!) << 32n) | BigInt(TABLE_LO[n]!);
  for (let k = 1; k < 16; k++) {
    for (let n = 0; n < 256; n++) {
      const prev = tables[(k - 1) * 256 + n]!;
      tables[k * 256 + n] = (prev >> 8n) ^ tables[Number(prev & 0xffn)]!;
    }
  }
  const bytes = new Uint8Array(memory.buffer);
  const kernel = (register: bigint, data: Uint8Array): bigint => {
    for (let at = 0; at < data.length; at += WASM_WINDOW) {
      const slice = data.subarray(at, at + WASM_WINDOW);
      bytes.set(slice, WASM_TABLES_BYTES);
      register = update(register, WASM_TABLES_BYTES, slice.length);
    }
    return register;
  };
  // the catalogue's check value, once: a kernel that got it wrong would fail every upload, or pass a wrong one
  const check = ~BigInt.asUintN(64, kernel(MASK64, Buffer.from('123456789'))) & MASK64;
  return check === 0x995dc9bbdf1939fan ? kernel : undefined;
})();

/** Incremental CRC-64/XZ. `update` as often as needed, then read `value` (or `toString()`). */
export class Crc64 {
  // the running register, already inverted (init all ones)
  private register = MASK64;

  /** Feed more bytes. Returns `this` so calls chain. */
  update(data: Uint8Array): this {
    if (wasmUpdate) {
      this.register = wasmUpdate(this.register, data);
      return this;
    }
    const reg = BigInt.asUintN(64, this.register);
    const state = new Uint32Array([Number(reg & 0xffffffffn), Number(reg >> 32n)]);
    updateCrc64Register(state, data, TABLE_LO, TABLE_HI);
    this.register = (BigInt(state[1]!) << 32n) | BigInt(state[0]!);
    return this;
  }

  /** The CRC of everything fed so far. */
  get value(): bigint {
    return ~BigInt.asUintN(64, this.register) & MASK64;
  }

  /** The CRC as OSS writes it: an unsigned decimal string. */
  toString(): string {
    return this.value.toString(10);
  }

  /** Start from a finished CRC, so `new Crc64().resume(crc(a)).update(b)` equals `crc(a + b)`. */
  resume(crc: bigint): this {
    this.register = ~crc & MASK64;
    return this;
  }
}

/** CRC-64/XZ of `data`, optionally continuing from the CRC of the bytes before it. */
export function crc64(data: Uint8Array, previous?: bigint): bigint {
  const c = new Crc64();
  if (previous !== undefined) c.resume(previous);
  return c.update(data).value;
}

// --- combine: zlib's x2nmodp/multmodp method, carried to 64 bits ---------------------------

const TOP_BIT = 1n << 63n; // x^0 in the reflected representation

/** a(x) * b(x) mod P(x), reflected. */
function multModP(a: bigint, b: bigint): bigint {
  let m = TOP_BIT;
  let p = 0n;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1n)) === 0n) break;
    }
    m >>= 1n;
    b = b & 1n ? (b >> 1n) ^ POLY : b >> 1n;
  }
  return p;
}

// X2N[k] = x^(2^k) mod P(x)
const X2N: bigint[] = (() => {
  const table: bigint[] = [];
  let p = 1n << 62n; // x^1
  table.push(p);
  for (let k = 1; k < 64; k++) {
    p = multModP(p, p);
    table.push(p);
  }
  return table;
})();

/** x^(len * 8) mod P(x): the operator that shifts a CRC over `len` zero bytes. */
function shiftOperator(len: bigint): bigint {
  let p = TOP_BIT;
  let k = 3; // bytes to bits
  let n = len;
  while (n > 0n) {
    if (n & 1n) p = multModP(X2N[k % 64]!, p);
    n >>= 1n;
    k++;
  }
  return p;
}

// parts of a multipart upload share one length, so the operator is worth keeping
const operatorCache = new Map<bigint, bigint>();

/** CRC of `A + B` given `crc(A)`, `crc(B)` and the length of B in bytes; no data is re-read. */
export function crc64Combine(crcA: bigint, crcB: bigint, lengthB: number | bigint): bigint {
  const len = BigInt(lengthB);
  if (len === 0n) return crcA;
  let op = operatorCache.get(len);
  if (op === undefined) {
    op = shiftOperator(len);
    if (operatorCache.size > 64) operatorCache.clear();
    operatorCache.set(len, op);
  }
  return (multModP(op, crcA) ^ crcB) & MASK64;
}

/** Parse the decimal `x-oss-hash-crc64ecma` form; undefined when absent or malformed. */
export function parseCrc64(value: string | null | undefined): bigint | undefined {
  if (value === undefined || value === null || !/^\d{1,20}$/.test(value.trim())) return undefined;
  const n = BigInt(value.trim());
  return n <= MASK64 ? n : undefined;
}
