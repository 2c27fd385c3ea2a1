/**
 * A discard sink that speaks just enough of the OSS object and multipart API for the benchmark: bodies are
 * dropped, and answered with their CRC-64 (as OSS does, so clients that verify can). No signature checks: it
 * measures clients, not security. Runs as its own process so its CPU is not charged to the client being
 * measured — but it shares the machine's cores, so hashing every body in JS would make the sink, not the
 * clients, the bound. Given the benchmark file (`--known FILE`), it hashes that file once before any timing and
 * answers a range's CRC-64 from the table, after checking the body's first bytes against the file.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Crc64, crc64, crc64Combine } from '../src/oss/crc64.ts';
import { closeServer, listen } from '../src/server/http.ts';

/** Block CRCs of a file the clients will send: any block-aligned range's CRC is a few combines away. */
export interface KnownFile {
  path: string;
  size: number;
  blockSize: number;
  blocks: bigint[];
}

const KNOWN_BLOCK = 1024 * 1024;
/** Bytes compared against the file before a table answer stands in for hashing the body. */
const PROBE = 64;

export function indexKnownFile(path: string, size: number): KnownFile {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(KNOWN_BLOCK);
  const blocks: bigint[] = [];
  try {
    for (let at = 0; at < size; at += KNOWN_BLOCK) {
      const n = readSync(fd, buf, 0, Math.min(KNOWN_BLOCK, size - at), at);
      blocks.push(crc64(buf.subarray(0, n)));
    }
  } finally {
    closeSync(fd);
  }
  return { path, size, blockSize: KNOWN_BLOCK, blocks };
}

/** The CRC of `length` bytes at `offset` when the body starts like the file there and the range is block-aligned. */
function knownCrc(known: KnownFile, offset: number, length: number, head: Buffer): bigint | undefined {
  const end = offset + length;
  if (offset < 0 || end > known.size || offset % known.blockSize !== 0) return undefined;
  if (length % known.blockSize !== 0 && end !== known.size) return undefined;
  const probe = Math.min(PROBE, length, head.length);
  const fd = openSync(known.path, 'r');
  const expected = Buffer.alloc(probe);
  try {
    readSync(fd, expected, 0, probe, offset);
  } finally {
    closeSync(fd);
  }
  if (!expected.equals(head.subarray(0, probe))) return undefined;
  let crc = 0n;
  for (let at = offset; at < end; at += known.blockSize) {
    crc = crc64Combine(crc, known.blocks[at / known.blockSize]!, Math.min(known.blockSize, end - at));
  }
  return crc;
}

interface SinkPart {
  size: number;
  crc: bigint;
  etag: string;
}

export interface SinkStats {
  partsReceived: number;
  bytesReceived: number;
  /** Bodies the table could not answer for, hashed in full. */
  partsHashed: number;
}

export async function startSink(
  port = 0,
  known?: KnownFile,
): Promise<{ url: string; close: () => Promise<void>; stats: SinkStats }> {
  const uploads = new Map<string, Map<number, SinkPart>>();
  const stats: SinkStats = { partsReceived: 0, bytesReceived: 0, partsHashed: 0 };

  /**
   * Drop the body and find its CRC: from the table when it is a range of the known file (part n of a plan whose
   * parts have this size, or the file's tail), else by hashing it.
   */
  const consume = async (req: IncomingMessage, partNumber: number): Promise<SinkPart> => {
    const length = Number(req.headers['content-length'] ?? -1);
    const fromTable = (head: Buffer): bigint | undefined => {
      if (!known || length < 0) return undefined;
      for (const offset of [(partNumber - 1) * length, known.size - length]) {
        const crc = knownCrc(known, offset, length, head);
        if (crc !== undefined) return crc;
      }
      return undefined;
    };
    let head = Buffer.alloc(0);
    let decided = false;
    let value: bigint | undefined;
    const crc = new Crc64();
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (!decided) {
        head = Buffer.concat([head, chunk]);
        if (head.length < Math.min(PROBE, length)) continue;
        decided = true;
        value = fromTable(head);
        if (value === undefined) crc.update(head);
      } else if (value === undefined) crc.update(chunk);
    }
    stats.bytesReceived += size;
    if (!decided) value = fromTable(head);
    if (value === undefined || size !== length) {
      stats.partsHashed++;
      value = decided ? crc.value : crc64(head);
    }
    return { size, crc: value, etag: `"${value.toString(16).padStart(32, '0').toUpperCase()}"` };
  };

  const xml = (res: ServerResponse, body: string, headers: Record<string, string> = {}): void => {
    res.writeHead(200, { 'content-type': 'application/xml', 'x-oss-request-id': rid(), ...headers });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://sink');
    const q = url.searchParams;
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const uploadId = q.get('uploadId');
    if (req.method === 'POST' && q.has('uploads')) {
      const id = randomBytes(16).toString('hex').toUpperCase();
      uploads.set(id, new Map());
      return xml(
        res,
        `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${esc(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
      );
    }
    if (req.method === 'PUT' && uploadId !== null) {
      const parts = uploads.get(uploadId);
      const part = await consume(req, Number(q.get('partNumber')));
      // raw peers send parts of no initiated upload: answered all the same, counted only for real uploads
      if (parts) {
        parts.set(Number(q.get('partNumber')), part);
        stats.partsReceived++;
      }
      res.writeHead(200, {
        etag: part.etag,
        'x-oss-hash-crc64ecma': part.crc.toString(),
        'x-oss-request-id': rid(),
      });
      return void res.end();
    }
    if (req.method === 'GET' && uploadId !== null) {
      const parts = uploads.get(uploadId);
      if (!parts) return notFound(res, 'NoSuchUpload');
      const list = [...parts.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(
          ([n, p]) =>
            `<Part><PartNumber>${n}</PartNumber><LastModified>${new Date().toISOString()}</LastModified><ETag>${p.etag}</ETag><HashCrc64ecma>${p.crc}</HashCrc64ecma><Size>${p.size}</Size></Part>`,
        )
        .join('');
      return xml(
        res,
        `<ListPartsResult><Bucket>${bucket}</Bucket><Key>${esc(key)}</Key><UploadId>${uploadId}</UploadId><IsTruncated>false</IsTruncated><MaxParts>1000</MaxParts>${list}</ListPartsResult>`,
      );
    }
    if (req.method === 'POST' && uploadId !== null) {
      for await (const _ of req as AsyncIterable<Buffer>) void _;
      const parts = uploads.get(uploadId);
      if (!parts) return notFound(res, 'NoSuchUpload');
      let crc = 0n;
      for (const [, p] of [...parts.entries()].sort((a, b) => a[0] - b[0]))
        crc = crc64Combine(crc, p.crc, p.size);
      uploads.delete(uploadId);
      return xml(
        res,
        `<CompleteMultipartUploadResult><Location>x</Location><Bucket>${bucket}</Bucket><Key>${esc(key)}</Key><ETag>"SINK-${parts.size}"</ETag></CompleteMultipartUploadResult>`,
        { 'x-oss-hash-crc64ecma': crc.toString() },
      );
    }
    if (req.method === 'DELETE') {
      if (uploadId !== null) uploads.delete(uploadId);
      res.writeHead(204, { 'x-oss-request-id': rid() });
      return void res.end();
    }
    if (req.method === 'PUT') {
      const part = await consume(req, 1);
      res.writeHead(200, {
        etag: part.etag,
        'x-oss-hash-crc64ecma': part.crc.toString(),
        'x-oss-request-id': rid(),
      });
      return void res.end();
    }
    return notFound(res, 'NoSuchKey');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      res.writeHead(500);
      res.end(String(e));
    });
  });
  server.keepAliveTimeout = 60_000;
  const actual = await listen(server, port);
  return { url: `http://127.0.0.1:${actual}`, stats, close: () => closeServer(server) };
}

function notFound(res: ServerResponse, code: string): void {
  res.writeHead(404, { 'content-type': 'application/xml', 'x-oss-request-id': rid() });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${code}</Message></Error>`,
  );
}

function rid(): string {
  return randomBytes(12).toString('hex').toUpperCase();
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * `node bench/sink.ts [--port N] [--known FILE]`: prints `listening on URL`; each line on stdin asks for a `stats`
 * line; the end of stdin (the parent closing it or going away) stops the sink.
 */
if (import.meta.main) {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '0' }, known: { type: 'string' } },
  });
  const known = values.known ? indexKnownFile(values.known, statSync(values.known).size) : undefined;
  const sink = await startSink(Number(values.port), known);
  process.stdout.write(`listening on ${sink.url}\n`);
  const stop = (): void => {
    process.stdin.destroy();
    void sink.close();
  };
  process.on('SIGTERM', stop);
  process.stdin.on('data', () => process.stdout.write(`stats ${JSON.stringify(sink.stats)}\n`));
  process.stdin.on('end', stop);
}
