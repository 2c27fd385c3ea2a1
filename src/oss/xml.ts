/** XML in and out: fast-xml-parser configured so ETags, upload ids and keys stay strings. */
import { XMLParser } from 'fast-xml-parser';

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  isArray: (name) => ['Part', 'Upload', 'Contents', 'Deleted', 'CommonPrefixes'].includes(name),
});

/** Parse an OSS answer; the root element's children, or undefined when the text is not XML. */
export function parseXml(text: string): Record<string, unknown> | undefined {
  if (!text.trim().startsWith('<')) return undefined;
  try {
    const doc = parser.parse(text) as Record<string, unknown>;
    const root = Object.entries(doc).find(([k]) => k !== '?xml');
    return root && typeof root[1] === 'object' && root[1] !== null
      ? (root[1] as Record<string, unknown>)
      : {};
  } catch {
    return undefined;
  }
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function list(v: unknown): Array<Record<string, unknown>> {
  return Array.isArray(v) ? (v as Array<Record<string, unknown>>) : [];
}

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

export function completeBody(parts: ReadonlyArray<{ partNumber: number; etag: string }>): string {
  const items = parts
    .map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escapeXml(p.etag)}</ETag></Part>`)
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload>${items}</CompleteMultipartUpload>`;
}

export function deleteBody(keys: readonly string[], quiet: boolean): string {
  const items = keys.map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Delete><Quiet>${quiet}</Quiet>${items}</Delete>`;
}
