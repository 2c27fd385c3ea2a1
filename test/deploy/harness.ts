// The deploy as the action runs it, in-process: inputs from a map; log, outputs and summary captured.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActionIo } from '../../src/action/main.ts';
import type { ServerOptions } from '../../src/server/index.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { clientFor } from '../helpers/client.ts';
import { startTestServer } from '../helpers/server.ts';
import { tempDir } from '../helpers/files.ts';

export interface Captured {
  io: ActionIo;
  lines: string[];
  errors: string[];
  warnings: string[];
  outputs: Record<string, string>;
  summary: string[];
}

export function capture(inputs: Record<string, string>, env: Record<string, string>): Captured {
  const c: Captured = {
    lines: [],
    errors: [],
    warnings: [],
    outputs: {},
    summary: [],
    io: undefined as unknown as ActionIo,
  };
  c.io = {
    getInput: (n) => inputs[n] ?? '',
    env,
    setSecret: () => undefined,
    info: (l) => c.lines.push(l),
    warning: (l) => c.warnings.push(l),
    error: (l) => c.errors.push(l),
    debug: () => undefined,
    setOutput: (n, v) => (c.outputs[n] = v),
    appendSummary: (html) => {
      c.summary.push(html);
      return Promise.resolve();
    },
    saveState: () => undefined,
    getIdToken: () => Promise.reject(new Error('no token here')),
  };
  return c;
}

export async function site(
  t: Parameters<typeof tempDir>[0],
  count: number,
  serverOptions: Partial<ServerOptions> = {},
) {
  const server = await startTestServer(serverOptions);
  t.after(() => server.close());
  const dir = await tempDir(t);
  const ws = join(dir, 'ws');
  await mkdir(join(ws, 'site'), { recursive: true });
  for (let i = 0; i < count; i++) await writeFile(join(ws, 'site', `f${i}.html`), `<p>${i}</p>\n`);
  const inputs = {
    path: 'site',
    bucket: 'test-bucket',
    endpoint: server.url,
    destination: 'web',
    'access-key-id': 'test-ak',
    'access-key-secret': 'test-sk',
    'cache-checkpoints': 'false',
  };
  const env = { GITHUB_WORKSPACE: ws, RUNNER_TEMP: join(dir, 'tmp') };
  return { server, dir, ws, inputs, env };
}

/** Writes `files` (relative path -> content) under `dir/site`. */
export async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(dir, 'site', rel);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, content);
  }
}

/**
 * A site of one page whose destination already holds `web/fresh.js`, an orphan stored a moment ago: what
 * delete-orphans-min-age must keep. `client` reads the bucket directly.
 */
export async function siteWithFreshOrphan(t: Parameters<typeof tempDir>[0]) {
  const s = await site(t, 0);
  await writeTree(s.ws, { 'index.html': 'x' });
  const client = clientFor(s.server);
  t.after(() => client.close());
  await client.putObject({ bucket: 'test-bucket', key: 'web/fresh.js', body: bufferBody('fresh') });
  return { ...s, client };
}
