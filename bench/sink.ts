/**
 * A discard sink that speaks just enough of the OSS object and multipart API for the benchmark: bodies are
 * hashed (CRC-64, as OSS does, so clients that verify can) and dropped. No signature checks: it measures
 * clients, not security. Runs as its own process so its CPU is not charged to the client being measured.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Crc64, crc64Combine } from '../src/oss/crc64.ts';
import { closeServer, listen } from '../src/server/http.ts';

interface SinkPart {
  size: number;
  crc: bigint;
  etag: string;
}

export interface SinkStats {
  partsReceived: number;
  bytesReceived: number;
}

export async function startSink(
  port = 0,
): Promise<{ url: string; close: () => Promise<void>; stats: SinkStats }> {
  const uploads = new Map<string, Map<number, SinkPart>>();
  const stats: SinkStats = { partsReceived: 0, bytesReceived: 0 };

  const consume = async (req: IncomingMessage): Promise<SinkPart> => {
    const crc = new Crc64();
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      crc.update(chunk);
      size += chunk.length;
    }
    stats.bytesReceived += size;
    const value = crc.value;
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
      const part = await consume(req);
      if (!parts) return notFound(res, 'NoSuchUpload');
      parts.set(Number(q.get('partNumber')), part);
      stats.partsReceived++;
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
      const part = await consume(req);
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

if (import.meta.main) {
  const sink = await startSink(Number(process.argv[2] ?? 0));
  process.stdout.write(`listening on ${sink.url}\n`);
  process.on('SIGTERM', () => void sink.close());
  setInterval(() => process.stdout.write(`${JSON.stringify(sink.stats)}\n`), 60_000).unref();
  process.stdin.on('data', () => process.stdout.write(`stats ${JSON.stringify(sink.stats)}\n`));
}
