// Starts our OSS-compatible server on 127.0.0.1 with a temp data dir and the bucket 'test-bucket'.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OssTestServer, type ServerOptions, startServer } from '../../src/server/index.ts';

export async function startTestServer(
  opts: Partial<ServerOptions> = {},
): Promise<OssTestServer & { dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'oss-server-'));
  const server = await startServer({ buckets: ['test-bucket'], ...opts, dataDir });
  const closeServer = server.close.bind(server);
  return Object.assign(server, {
    dataDir,
    close: async () => {
      await closeServer();
      // a request cut by a reset fault may still be writing its temp file while the tree is removed
      await rm(dataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    },
  });
}
