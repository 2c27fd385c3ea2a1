// CRC-64/XZ references for the kernels' tests: bit at a time, no tables, so they share nothing with the
// slicing kernels (src/oss/crc64.ts, crc64.wat) they check.

/** Bit at a time over two 32-bit halves: no BigInt per bit, fast enough for megabytes. */
export function bitwiseCrc64(data: Uint8Array, previous = 0n): bigint {
  const reg = ~previous & 0xffffffffffffffffn;
  let lo = Number(reg & 0xffffffffn);
  let hi = Number(reg >> 32n);
  for (let i = 0; i < data.length; i++) {
    lo = (lo ^ data[i]!) >>> 0;
    for (let k = 0; k < 8; k++) {
      const carry = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (carry) {
        lo = (lo ^ 0xd7870f42) >>> 0;
        hi = (hi ^ 0xc96c5795) >>> 0;
      }
    }
  }
  return (BigInt(~hi >>> 0) << 32n) | BigInt(~lo >>> 0);
}

/** The textbook form, BigInt per bit: the check on the reference itself, for short inputs. */
export function textbookCrc64(data: Uint8Array): bigint {
  let crc = 0xffffffffffffffffn;
  for (const byte of data) {
    crc ^= BigInt(byte);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ 0xc96c5795d7870f42n : crc >> 1n;
  }
  return crc ^ 0xffffffffffffffffn;
}
