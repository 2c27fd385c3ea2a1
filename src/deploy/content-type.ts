/**
 * A Content-Type per file name from mime-db, the database the Node ecosystem maintains from IANA, Apache and
 * nginx (https://github.com/jshttp/mime-db), with `charset=utf-8` on text types so that browsers never guess
 * an encoding, and checksum lists shown as text rather than downloaded.
 */
import { basename } from 'node:path';
import { charset, lookup } from 'mime-types';

const FALLBACK = 'application/octet-stream';
const PLAIN_TEXT = 'text/plain; charset=utf-8';

/**
 * Checksum lists and ASCII-armored signatures: release pages link them for people to read, and mime-db has
 * no entry for `SHA256SUMS` (and calls `.asc` a key, `application/pgp-keys`).
 */
const CHECKSUM_NAME = /^(?:SHA(?:1|224|256|384|512)SUMS|MD5SUMS|B2SUMS)(?:\.txt)?$/i;
const CHECKSUM_EXT = /\.(?:sha1|sha224|sha256|sha384|sha512|md5|b2|asc)$/i;

/** Structured syntaxes of text (RFC 6839): JSON and XML are UTF-8 unless they say otherwise. */
const TEXT_SUFFIX = /\+(?:json|xml)$/;
const TEXT_TYPES = new Set(['application/xml', 'application/javascript', 'application/json']);

function isText(type: string): boolean {
  return charset(type) !== false || TEXT_SUFFIX.test(type) || TEXT_TYPES.has(type);
}

/** `text/html; charset=utf-8` for `index.html`; `application/octet-stream` when the name says nothing. */
export function contentTypeFor(path: string): string {
  const name = basename(path);
  if (CHECKSUM_NAME.test(name) || CHECKSUM_EXT.test(name)) return PLAIN_TEXT;
  const type = lookup(name);
  if (type === false) return FALLBACK;
  return isText(type) ? `${type}; charset=utf-8` : type;
}
