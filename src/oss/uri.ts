/** URI encoding as OSS signs it (RFC 3986 unreserved characters kept, everything else %XX). */

/** Encode one string; `/` is kept when `keepSlash`, as in an object key's path. */
export function uriEncode(value: string, keepSlash = false): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
