/**
 * One benchmark client in its own process, so its peak RSS and its CPU time are its own. Prints one JSON line:
 * { client, bytes, seconds, mibPerSec, cpuSeconds, rssMb, files?, filesPerSec?, extra? }.
 *
 *   node bench/client.ts --client ours|ali-oss|ali-oss-equal|limit|node-http|node-http-crc|ours-files|ali-oss-files
 *        --url URL --file PATH | --dir DIR  --part-size BYTES --threads N [--checkpoint DIR] [--progress]
 */
import { createReadStream, readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LookupFunction } from 'node:net';
import { parseArgs } from 'node:util';
import type OSS from 'ali-oss';
import { Crc64, OssClient } from '../src/oss/index.ts';
import { uploadFile, uploadFiles } from '../src/engine/index.ts';

const { values } = parseArgs({
  options: {
    client: { type: 'string' },
    url: { type: 'string' },
    file: { type: 'string' },
    dir: { type: 'string' },
    'part-size': { type: 'string', default: String(8 * 1024 * 1024) },
    threads: { type: 'string', default: '4' },
    checkpoint: { type: 'string' },
    progress: { type: 'boolean', default: false },
  },
});
const url = values.url!;
const partSize = Number(values['part-size']);
const threads = Number(values.threads);
const BUCKET = 'bench';
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * ali-oss as its users run it: virtual-host style (`bench.localhost`), every host resolved to 127.0.0.1, so
 * its signatures are the ones a signature-checking server expects.
 */
async function aliClient(parallel: number): Promise<OSS> {
  // loaded only by the peers that use it, so the other clients' memory is their own
  const { default: AliOss } = await import('ali-oss');
  const toLoopback = ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) =>
    opts.all
      ? cb(null, [{ address: '127.0.0.1', family: 4 }])
      : cb(null, '127.0.0.1', 4)) as unknown as LookupFunction;
  return new AliOss({
    accessKeyId: 'test-ak',
    accessKeySecret: 'test-sk',
    bucket: BUCKET,
    endpoint: `http://localhost:${new URL(url).port}`,
    region: 'oss-cn-hangzhou',
    agent: new HttpAgent({ keepAlive: true, lookup: toLoopback }),
    timeout: 600_000,
    parallel,
  } as OSS.Options);
}

function ourClient(): OssClient {
  return new OssClient({
    credentials: { accessKeyId: 'test-ak', accessKeySecret: 'test-sk' },
    endpoint: url,
    connections: threads,
  });
}

async function rawLimit(file: string, size: number): Promise<void> {
  // loaded only here, like ali-oss: the whole of undici is more than our client loads (src/oss/undici.ts)
  const { Pool } = await import('undici');
  const pool = new Pool(url, { connections: threads, pipelining: 1, keepAliveTimeout: 60_000 });
  const parts = Math.ceil(size / partSize);
  let next = 0;
  const work = async (): Promise<void> => {
    while (next < parts) {
      const n = next++;
      const start = n * partSize;
      const end = Math.min(size, start + partSize) - 1;
      const res = await pool.request({
        method: 'PUT',
        path: `/${BUCKET}/limit?partNumber=${n + 1}&uploadId=raw`,
        headers: { 'content-length': String(end - start + 1) },
        body: createReadStream(file, { start, end, highWaterMark: READ_CHUNK_BYTES }),
      });
      await res.body.dump();
    }
  };
  await Promise.all(Array.from({ length: threads }, work));
  await pool.close();
}

/**
 * The same ranges through node:http with 1 MiB reads: the cheapest a Node client can send them, and with `crc`
 * the project's CRC-64 computed inline over the very chunks sent (what verification costs on top).
 */
async function nodeHttp(file: string, size: number, crc: boolean): Promise<void> {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: threads });
  const parts = Math.ceil(size / partSize);
  let next = 0;
  const put = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const start = n * partSize;
      const end = Math.min(size, start + partSize) - 1;
      const hash = crc ? new Crc64() : undefined;
      const req = httpRequest(
        `${url}/${BUCKET}/node?partNumber=${n + 1}&uploadId=raw`,
        { method: 'PUT', agent, headers: { 'content-length': String(end - start + 1) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (hash && BigInt(String(res.headers['x-oss-hash-crc64ecma'])) !== hash.value)
              reject(new Error(`part ${n + 1}: CRC-64 differs`));
            else resolve();
          });
        },
      );
      req.on('error', reject);
      const source = createReadStream(file, { start, end, highWaterMark: READ_CHUNK_BYTES });
      if (hash) source.on('data', (chunk) => hash.update(chunk as Buffer));
      source.pipe(req);
    });
  const work = async (): Promise<void> => {
    while (next < parts) await put(next++);
  };
  await Promise.all(Array.from({ length: threads }, work));
  agent.destroy();
}

async function listFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort().map((f) => join(dir, f));
}

const started = performance.now();
let bytes = 0;
let files: number | undefined;
const extra: Record<string, unknown> = {};
switch (values.client) {
  case 'ours': {
    const file = values.file!;
    bytes = (await stat(file)).size;
    const client = ourClient();
    let last = 0;
    const result = await uploadFile({
      client,
      bucket: BUCKET,
      key: 'ours',
      file,
      partSize,
      threadNum: threads,
      checkpoint: values.checkpoint ? { dir: values.checkpoint } : false,
      onProgress: values.progress
        ? (e) => {
            const pct = Math.floor((e.bytesDone / e.bytesTotal) * 100);
            if (pct !== last) process.stdout.write(`progress ${pct}\n`);
            last = pct;
          }
        : undefined,
    });
    Object.assign(extra, {
      verified: result.verified,
      partsSent: result.partsSent,
      bytesResumed: result.bytesResumed,
    });
    await client.close();
    break;
  }
  case 'ali-oss':
  case 'ali-oss-equal': {
    const file = values.file!;
    bytes = (await stat(file)).size;
    const equal = values.client === 'ali-oss-equal';
    const oss = await aliClient(equal ? threads : 5);
    await oss.multipartUpload('ali', file, equal ? { parallel: threads, partSize } : {});
    break;
  }
  case 'limit': {
    const file = values.file!;
    bytes = (await stat(file)).size;
    await rawLimit(file, bytes);
    break;
  }
  case 'node-http':
  case 'node-http-crc': {
    const file = values.file!;
    bytes = (await stat(file)).size;
    await nodeHttp(file, bytes, values.client === 'node-http-crc');
    break;
  }
  case 'ours-files': {
    const list = await listFiles(values.dir!);
    files = list.length;
    const client = ourClient();
    const outcomes = await uploadFiles(
      list.map((file, i) => ({ file, key: `small/${i}` })),
      { client, bucket: BUCKET, threadNum: threads },
    );
    const failed = outcomes.filter((o) => !o.ok).length;
    if (failed) throw new Error(`${failed} small files failed`);
    await client.close();
    break;
  }
  case 'ali-oss-files': {
    const list = await listFiles(values.dir!);
    files = list.length;
    const oss = await aliClient(threads);
    let next = 0;
    const work = async (): Promise<void> => {
      while (next < list.length) {
        const i = next++;
        await oss.put(`small/${i}`, list[i]!);
      }
    };
    await Promise.all(Array.from({ length: threads }, work));
    break;
  }
  case undefined:
  default:
    throw new Error(`--client: got ${String(values.client)}`);
}
const seconds = (performance.now() - started) / 1000;

/**
 * Peak RSS of this process image. Not `resourceUsage().maxRSS`: Linux carries that across fork and exec, so a
 * child spawned by a large parent reports the parent's peak.
 */
function peakRssMb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS / 1024;
}
/** User + system CPU of this process since it started, in seconds. */
function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}
process.stdout.write(
  `${JSON.stringify({
    client: values.client,
    bytes,
    seconds,
    mibPerSec: bytes / 1024 / 1024 / seconds,
    cpuSeconds: cpuSeconds(),
    rssMb: peakRssMb(),
    ...(files !== undefined ? { files, filesPerSec: files / seconds } : {}),
    ...extra,
  })}\n`,
);
