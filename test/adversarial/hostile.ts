// A toolkit for misbehaving servers on 127.0.0.1: each test writes the one lie it needs (a 200 with an
// <Error> body, an answer that never ends, a trickle, a pagination loop, a redirect, Go-style XML) and
// forwards everything else to our real OSS server, so the rest of the protocol stays honest.
import { type IncomingMessage, type ServerResponse, createServer, request } from 'node:http';
import { closeServer, collectBody, listen } from '../../src/server/http.ts';
import type { OssClient } from '../../src/oss/index.ts';
import { clientFor } from '../helpers/client.ts';

export interface HostileRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
}

export interface Forwarded {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface HostileContext {
  /** The request body (read once, on first call). */
  body(): Promise<Buffer>;
  /** Send the request (with `body` in place of the original, if given) to the real server and return its answer. */
  forward(body?: Buffer): Promise<Forwarded>;
  /** Forward and relay the real answer unchanged. */
  pass(): Promise<void>;
}

/** Return true when the handler answered; false passes the request to the real server unchanged. */
export type HostileHandler = (
  req: HostileRequest,
  res: ServerResponse,
  ctx: HostileContext,
) => boolean | Promise<boolean>;

export interface HostileServer {
  url: string;
  /** Every request seen, in order. */
  requests: HostileRequest[];
  close(): Promise<void>;
}

/** A server that answers with `handler` and forwards what it declines to `upstream` (our OSS server's URL). */
export async function startHostile(handler: HostileHandler, upstream?: string): Promise<HostileServer> {
  const requests: HostileRequest[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const seen: HostileRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
    };
    requests.push(seen);
    let body: Promise<Buffer> | undefined;
    const readBody = (): Promise<Buffer> =>
      (body ??= collectBody(req, 1 << 30).then((b) => b ?? Buffer.alloc(0)));
    const forward = async (replacement?: Buffer): Promise<Forwarded> => {
      if (!upstream) throw new Error('no upstream to forward to');
      const data = replacement ?? (await readBody());
      return send(upstream, req, data);
    };
    const ctx: HostileContext = {
      body: readBody,
      forward,
      pass: async () => {
        const f = await forward();
        res.writeHead(f.status, f.headers).end(f.body);
      },
    };
    Promise.resolve(handler(seen, res, ctx))
      .then(async (answered) => {
        if (!answered) await ctx.pass();
      })
      .catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(599).end(String(e));
        else res.destroy();
      });
  });
  // trickling and endless answers must not be cut short by the server's own timeouts
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 1000;
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, requests, close: () => closeServer(server) };
}

function send(upstream: string, req: IncomingMessage, body: Buffer): Promise<Forwarded> {
  const target = new URL(req.url ?? '/', upstream);
  const headers = { ...req.headers, host: target.host, 'content-length': String(body.length) };
  delete headers['transfer-encoding'];
  return new Promise((resolve, reject) => {
    const out = request(target, { method: req.method, headers }, (answer) => {
      collectBody(answer, 1 << 30).then(
        (b) =>
          resolve({ status: answer.statusCode ?? 0, headers: answer.headers, body: b ?? Buffer.alloc(0) }),
        reject,
      );
    });
    out.on('error', reject);
    out.end(body);
  });
}

/** An OSS error document, as the service writes it. */
export function errorXml(code: string, message = code, requestId = 'hostile-request'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId><HostId>hostile</HostId></Error>`;
}

/** Write `chunk` every `intervalMs` until the client goes away or `max` chunks were written. */
export function trickle(res: ServerResponse, chunk: string | Buffer, intervalMs: number, max = 10_000): void {
  let n = 0;
  const timer = setInterval(() => {
    if (res.destroyed || n++ >= max) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(chunk);
  }, intervalMs);
  res.on('close', () => clearInterval(timer));
}

/** An answer body that never ends: 64 KiB blocks as fast as the client reads, until it goes away (or 4 GiB). */
export function endless(res: ServerResponse, block: string | Buffer = 'x'.repeat(65536)): void {
  let written = 0;
  const pump = (): void => {
    while (!res.destroyed && written < 4 * 2 ** 30) {
      written += Buffer.byteLength(block);
      if (!res.write(block)) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
}

/** A hostile server in front of `upstream` (our OSS server) and a client that talks to it, both closed after the test. */
export async function hostileClient(
  t: { after(fn: () => unknown): void },
  upstream: { url: string },
  handler: HostileHandler,
  opts: Parameters<typeof clientFor>[1] = {},
): Promise<{ hostile: HostileServer; client: OssClient }> {
  const hostile = await startHostile(handler, upstream.url);
  t.after(() => hostile.close());
  const client = clientFor(hostile, opts);
  t.after(() => client.close());
  return { hostile, client };
}

/** An UploadPart request (of part `n`, when given). */
export function isPart(req: { method: string; query: URLSearchParams }, n?: number): boolean {
  return (
    req.method === 'PUT' &&
    req.query.has('uploadId') &&
    (n === undefined || req.query.get('partNumber') === String(n))
  );
}
