/**
 * The order OSS lists keys in: by their UTF-8 bytes, which is the order of their code points. JavaScript
 * compares UTF-16 code units instead, and the two disagree where a character beyond U+FFFF (a surrogate pair,
 * units D800-DFFF) meets one from U+E000-U+FFFF: the pair sorts first in UTF-16 and last in UTF-8.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** A code unit's place in code point order: surrogates lifted above every other unit. */
function codePointRank(unit: number): number {
  return unit >= 0xd800 && unit <= 0xdfff ? unit + 0x2800 : unit;
}
