// A local stand-in for the Actions cache service (Twirp API v2) backed by a real Azurite blob store, so the real
// @actions/cache runs unchanged in tests, in-process or in a child process started with `env`.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeServer, listen } from '../../src/server/http.ts';
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';

// Azurite's published development account
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONTAINER = 'actions-cache';
const SERVICE = '/twirp/github.actions.results.api.v1.CacheService/';

export interface CacheEntry {
  id: number;
  key: string;
  version: string;
  size: number;
  finalized: boolean;
  created: number;
}

export type CacheFailure = 'http500' | 'full' | 'unreachable';

export interface CacheService {
  /** Environment a process needs for @actions/cache to use this service (RUNNER_TEMP is the caller's). */
  readonly env: Record<string, string>;
  readonly calls: string[];
  entries(): CacheEntry[];
  /** The stored archive of an entry, raw. */
  archiveBytes(key: string): Promise<Buffer>;
  /** Make every call fail this way until cleared with `undefined`. */
  fail(kind: CacheFailure | undefined): void;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function startAzurite(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const bin = join(import.meta.dirname, '../../node_modules/azurite/dist/src/blob/main.js');
  const child = spawn(
    process.execPath,
    [
      bin,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--location',
      dir,
      '--silent',
      '--loose',
      '--skipApiVersionCheck',
      '--disableTelemetry',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (out.includes('successfully listens')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => reject(new Error(`azurite exited with ${String(code)}: ${out}`)));
  });
  child.stdout.resume();
  child.stderr.resume();
  return { url: `http://127.0.0.1:${port}/${ACCOUNT}`, child };
}

export async function startCacheService(): Promise<CacheService> {
  const dir = await mkdtemp(join(tmpdir(), 'azurite-'));
  const azurite = await startAzurite(dir);
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);
  const blobs = new BlobServiceClient(azurite.url, credential);
  const container = blobs.getContainerClient(CONTAINER);
  await container.createIfNotExists();
  const entries: CacheEntry[] = [];
  const calls: string[] = [];
  let failure: CacheFailure | undefined;
  let nextId = 1;

  const signed = (id: number, perms: string): string => {
    const sas = generateBlobSASQueryParameters(
      {
        containerName: CONTAINER,
        blobName: `entry-${id}`,
        permissions: BlobSASPermissions.parse(perms),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      credential,
    ).toString();
    return `${container.getBlockBlobClient(`entry-${id}`).url}?${sas}`;
  };

  const answer = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const method = (req.url ?? '').startsWith(SERVICE) ? (req.url ?? '').slice(SERVICE.length) : '';
    calls.push(method);
    if (failure === 'unreachable') return void req.socket.destroy();
    if (failure === 'http500') return answer(res, 500, { code: 'internal', msg: 'cache service failed' });
    const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as {
      key?: string;
      version?: string;
      restore_keys?: string[];
      size_bytes?: string;
    };
    const key = body.key ?? '';
    const version = body.version ?? '';
    switch (method) {
      case 'CreateCacheEntry': {
        if (failure === 'full')
          return answer(res, 200, { ok: false, message: 'Cache storage quota exceeded' });
        if (entries.some((e) => e.key === key && e.version === version)) {
          return answer(res, 200, { ok: false, message: 'cache entry already exists' });
        }
        const entry: CacheEntry = {
          id: nextId++,
          key,
          version,
          size: 0,
          finalized: false,
          created: Date.now(),
        };
        entries.push(entry);
        return answer(res, 200, { ok: true, signed_upload_url: signed(entry.id, 'cw') });
      }
      case 'FinalizeCacheEntryUpload': {
        const entry = entries.find((e) => e.key === key && e.version === version && !e.finalized);
        if (!entry) return answer(res, 200, { ok: false, message: 'no such pending entry' });
        entry.finalized = true;
        entry.size = Number(body.size_bytes ?? 0);
        return answer(res, 200, { ok: true, entry_id: String(entry.id) });
      }
      case 'GetCacheEntryDownloadURL': {
        const usable = entries.filter((e) => e.finalized && e.version === version);
        const restoreKeys = body.restore_keys ?? [];
        // GitHub's order: the exact key, then each restore key as a prefix, newest first
        let hit = usable.find((e) => e.key === key);
        for (const prefix of restoreKeys) {
          hit ??= usable
            .filter((e) => e.key.startsWith(prefix))
            .sort((a, b) => b.created - a.created || b.id - a.id)[0];
        }
        if (!hit) return answer(res, 200, { ok: false, signed_download_url: '', matched_key: '' });
        return answer(res, 200, { ok: true, signed_download_url: signed(hit.id, 'r'), matched_key: hit.key });
      }
      default:
        return answer(res, 404, { code: 'bad_route', msg: `no method ${method}` });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => answer(res, 500, { code: 'internal', msg: String(e) }));
  });
  const port = await listen(server);

  return {
    env: {
      ACTIONS_CACHE_SERVICE_V2: 'true',
      ACTIONS_RESULTS_URL: `http://127.0.0.1:${port}/`,
      ACTIONS_RUNTIME_TOKEN: 'local-test-token',
      GITHUB_SERVER_URL: 'https://github.com',
    },
    calls,
    entries: () => entries.map((e) => ({ ...e })),
    archiveBytes: async (key) => {
      const entry = entries.find((e) => e.key === key && e.finalized);
      if (!entry) throw new Error(`no cache entry ${key}`);
      return container.getBlockBlobClient(`entry-${entry.id}`).downloadToBuffer();
    },
    fail: (kind) => {
      failure = kind;
    },
    close: async () => {
      await closeServer(server);
      azurite.child.kill('SIGTERM');
      await new Promise((r) => azurite.child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
