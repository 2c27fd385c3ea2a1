/**
 * XML in and out. fast-xml-parser keeps ETags, upload ids and keys as strings; entities are decoded here, after
 * parsing, because the parser's own decoding drops references it deems invalid (`&#x1;`) and knows numeric
 * ones only in its HTML mode. Keys that XML 1.0 cannot carry travel URL-encoded (`encoding-type=url`).
 */
import { XMLParser } from 'fast-xml-parser';
import { uriEncode } from './uri.ts';

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  isArray: (name) => ['Part', 'Upload', 'Contents', 'Deleted', 'CommonPrefixes'].includes(name),
});

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const REFERENCE = /&(?:#(\d{1,7})|#x([0-9a-fA-F]{1,6})|(amp|lt|gt|quot|apos));/g;

/** Decode the five named entities and every numeric character reference (`&#34;`, `&#x22;`, `&#13;`). */
export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(REFERENCE, (whole, dec?: string, hex?: string, named?: string) => {
    if (named) return NAMED[named]!;
    const code = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
    return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

function decodeTree(v: unknown): unknown {
  if (typeof v === 'string') return decodeXmlText(v);
  if (Array.isArray(v)) return v.map(decodeTree);
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decodeTree(x)]));
  return v;
}

/** An answer's root element name and children, or undefined when the text is not XML. */
export function parseXmlDocument(text: string): { root: string; body: Record<string, unknown> } | undefined {
  if (!text.trim().startsWith('<')) return undefined;
  try {
    const doc = parser.parse(text) as Record<string, unknown>;
    const root = Object.entries(doc).find(([k]) => k !== '?xml');
    if (!root) return undefined;
    const body = decodeTree(root[1]);
    return {
      root: root[0],
      body: typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {},
    };
  } catch {
    return undefined;
  }
}

/** Parse an OSS answer; the root element's children, or undefined when the text is not XML. */
export function parseXml(text: string): Record<string, unknown> | undefined {
  return parseXmlDocument(text)?.body;
}

/** A body meant to be empty that holds an OSS error document (what some gateways send with a 2xx). */
export function looksLikeErrorDocument(text: string): boolean {
  // nearly every such answer is empty: skip the pattern for those
  return text.length > 0 && /^\s*(<\?xml[^>]*\?>\s*)?<Error[\s>]/.test(text);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function list(v: unknown): Array<Record<string, unknown>> {
  return Array.isArray(v) ? (v as Array<Record<string, unknown>>) : [];
}

/** Text content: markup characters and the whitespace a parser would normalise (\r, \n, \t) as references. */
export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/[\r\n\t]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function completeBody(parts: ReadonlyArray<{ partNumber: number; etag: string }>): string {
  const items = parts
    .map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escapeXml(p.etag)}</ETag></Part>`)
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload>${items}</CompleteMultipartUpload>`;
}

/** Keys URL-encoded, as OSS reads them with `encoding-type=url`: control characters XML 1.0 forbids pass too. */
export function deleteBody(keys: readonly string[], quiet: boolean): string {
  const items = keys.map((k) => `<Object><Key>${uriEncode(k, true)}</Key></Object>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Delete><Quiet>${quiet}</Quiet>${items}</Delete>`;
}
