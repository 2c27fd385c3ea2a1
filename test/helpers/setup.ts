// The set-up most engine and protocol tests share: our server, a client for it and a temp dir, all closed or
// removed when the test ends.
import type { ServerOptions } from '../../src/server/index.ts';
import { clientFor } from './client.ts';
import { tempDir } from './files.ts';
import { startTestServer } from './server.ts';

export async function serverClientDir(
  t: Parameters<typeof tempDir>[0],
  serverOpts: Partial<ServerOptions> = {},
) {
  const server = await startTestServer(serverOpts);
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  const dir = await tempDir(t);
  return { server, client, dir };
}
