/**
 * What may go into a request header, checked before any request: undici refuses other characters, and a value
 * it refuses would only surface deep inside the upload. Field values are visible ASCII, spaces and tabs
 * (RFC 9110 §5.5 allows obs-text too, but its bytes are read as Latin-1, never as the UTF-8 a user typed);
 * names are tokens (RFC 9110 §5.6.2).
 */
import { escapeText } from './log-line.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE_CHAR = /[\t\x20-\x7e]/;
const VISIBLE_ASCII = /[\x21-\x7e]/;

/** `U+00E9` */
function codePoint(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The first character not matching `allowed`, with its 1-based position in characters. */
function firstOutside(value: string, allowed: RegExp): { char: string; position: number } | undefined {
  let position = 0;
  for (const char of value) {
    position++;
    if (!allowed.test(char)) return { char, position };
  }
  return undefined;
}

export function isToken(name: string): boolean {
  return TOKEN.test(name);
}

/** UTF-8 bytes of everything but RFC 3986 unreserved characters as `%XX`. */
export function percentEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * Why `value` of header `name` cannot be sent, or undefined when it can. Says which character, where, and what
 * is allowed; x-oss-meta-* values get the percent-encoded form to use instead (OSS stores user metadata as the
 * bytes it receives, so whoever reads it decides how to decode; the action does not guess).
 */
export function headerValueProblem(name: string, value: string): string | undefined {
  const bad = firstOutside(value, FIELD_VALUE_CHAR);
  if (!bad) return undefined;
  const shown = bad.char.length === 1 && bad.char < ' ' ? escapeText(bad.char) : bad.char;
  const where = `\`${name}: ${escapeText(value)}\` has \`${shown}\` (${codePoint(bad.char)}) at character ${bad.position} of the value`;
  const allowed = 'allowed visible ASCII, spaces and tabs in header values';
  if (name.toLowerCase().startsWith('x-oss-meta-'))
    return `${where}; ${allowed}: percent-encode the rest, e.g. \`${name}: ${percentEncode(value)}\``;
  return `${where}; ${allowed}`;
}

/**
 * Why a credential cannot be used, without echoing it: only which character, where, and what is allowed.
 * Access key ids, secrets and STS tokens are visible ASCII; anything else came with a paste.
 */
export function credentialProblem(value: string): string | undefined {
  const bad = firstOutside(value, VISIBLE_ASCII);
  if (!bad) return undefined;
  return `character ${bad.position} is ${codePoint(bad.char)}, not visible ASCII; allowed visible ASCII only (a pasted value often carries an invisible character: type or copy it again)`;
}

/** RFC 5987 attr-char: what may stand unencoded in `filename*`. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

function extValue(text: string): string {
  let out = '';
  for (const char of text) {
    out += ATTR_CHAR.test(char)
      ? char
      : [...Buffer.from(char)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

/**
 * An ASCII stand-in for a file name, for clients that ignore `filename*`: accents dropped (`café` → `cafe`),
 * other runs of non-ASCII become `-`, quotes, backslashes and `%` become `_` (RFC 6266 appendix D), and a name
 * left without a stem becomes `download` with its extension.
 */
export function asciiFallback(name: string): string {
  const ascii = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]+/g, '-')
    .replace(/["\\%]/g, '_');
  const dot = ascii.lastIndexOf('.');
  const hasExt = dot > 0 && /^\.[A-Za-z0-9]+$/.test(ascii.slice(dot));
  const stem = (hasExt ? ascii.slice(0, dot) : ascii).replace(/^[-.\s]+|[-.\s]+$/g, '');
  return `${stem || 'download'}${hasExt ? ascii.slice(dot) : ''}`;
}

/** Split `a; b="x;y"; c` at the semicolons outside quoted strings. */
function splitParams(value: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted && c === '\\' && i + 1 < value.length) {
      current += c + value[++i]!;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ';' && !quoted) {
      parts.push(current.trim());
      current = '';
    } else current += c;
  }
  parts.push(current.trim());
  return parts.filter((p) => p !== '');
}

function unquote(text: string): string {
  return /^".*"$/s.test(text) ? text.slice(1, -1).replace(/\\(.)/g, '$1') : text;
}

/**
 * Content-Disposition with a non-ASCII `filename` as browsers read it (RFC 6266 §4.3, RFC 5987):
 * `attachment; filename="报告.pdf"` is sent as
 * `attachment; filename="download.pdf"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf`, and a `filename*` given with
 * raw UTF-8 gets it percent-encoded. A value that is already ASCII is left as given; non-ASCII anywhere else
 * is left for the value check to refuse.
 */
export function encodeContentDisposition(value: string): string {
  if (!firstOutside(value, FIELD_VALUE_CHAR)) return value;
  const [type, ...params] = splitParams(value);
  if (type === undefined) return value;
  const hasExt = params.some((p) => /^filename\*\s*=/i.test(p));
  const out = [type];
  for (const param of params) {
    const ext = /^filename\*\s*=\s*UTF-8'([^']*)'(.*)$/is.exec(param);
    if (ext) {
      out.push(`filename*=UTF-8'${ext[1]!}'${ext[2]!.replace(/[^\x20-\x7e]/gu, extValue)}`);
      continue;
    }
    const m = /^filename\s*=\s*(.*)$/is.exec(param);
    if (!m) {
      out.push(param);
      continue;
    }
    const name = unquote(m[1]!.trim());
    if (!firstOutside(name, FIELD_VALUE_CHAR)) {
      out.push(param);
      continue;
    }
    out.push(`filename="${asciiFallback(name)}"`);
    if (!hasExt) out.push(`filename*=UTF-8''${extValue(name)}`);
  }
  return out.join('; ');
}
