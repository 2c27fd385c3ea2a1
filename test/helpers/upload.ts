// Uploads that stop midway, for the engine tests of resuming and of what a stopped run leaves behind.
import { uploadFile } from '../../src/engine/index.ts';
import type { clientFor } from './client.ts';
import type { startTestServer } from './server.ts';

/** The part size of these uploads: small, so a file of a few parts is quick to write and send. */
export const PART = 100 * 1024;

/**
 * A run of `file` to `test-bucket/f.bin` that stops midway: UploadPart number `nth` fails with an error that
 * is not retried, one part at a time so the parts before it are done. Resolves with what the upload threw.
 */
export async function uploadStoppedAt(
  env: { server: Awaited<ReturnType<typeof startTestServer>>; client: ReturnType<typeof clientFor> },
  file: string,
  nth: number,
  opts: { cpDir?: string; status?: number; code?: string } = {},
): Promise<unknown> {
  env.server.addFault({
    operation: 'UploadPart',
    nth,
    action: { type: 'error', status: opts.status ?? 403, code: opts.code ?? 'AccessDenied' },
  });
  return uploadFile({
    client: env.client,
    bucket: 'test-bucket',
    key: 'f.bin',
    file,
    partSize: PART,
    threadNum: 1,
    ...(opts.cpDir ? { checkpoint: { dir: opts.cpDir } } : {}),
  }).catch((e: unknown) => e);
}
