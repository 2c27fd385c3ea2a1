// Proves a process killed with SIGKILL mid-upload is resumed by the next run with only the missing parts sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { clientFor, readObject } from '../helpers/client.ts';
import { randomFile, tempDir } from '../helpers/files.ts';
import { uploadFile } from '../../src/engine/index.ts';

const PART = 100 * 1024;

test('SIGKILL mid-upload, then resume: byte-identical object, no confirmed part sent twice', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  const dir = await tempDir(t);
  const { path, data } = await randomFile(dir, 'big.bin', PART * 12 + 777);
  const cpDir = join(dir, 'cp');
  // from the fifth part on, answers are slow, so the kill lands while parts are in flight
  server.addFault({ operation: 'UploadPart', nth: 5, times: Infinity, action: { type: 'delay', ms: 400 } });

  const child = spawn(
    process.execPath,
    [
      join(import.meta.dirname, '../fixtures/upload-child.ts'),
      server.url,
      path,
      'big.bin',
      String(PART),
      cpDir,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === 'parts 5') {
      child.kill('SIGKILL');
      break;
    }
  }
  assert.equal(await exited, 'SIGKILL');
  server.clearFaults();

  const [upload] = await client.listMultipartUploads({ bucket: 'test-bucket' });
  assert.ok(upload, 'the killed run left its upload to resume');
  const onServer = (
    await client.listParts({ bucket: 'test-bucket', key: 'big.bin', uploadId: upload.uploadId })
  ).map((p) => p.partNumber);
  assert.ok(onServer.length >= 5 && onServer.length < 13, `parts on server: ${onServer.join(',')}`);

  server.clearRequests();
  const result = await uploadFile({
    client,
    bucket: 'test-bucket',
    key: 'big.bin',
    file: path,
    partSize: PART,
    checkpoint: { dir: cpDir },
  });
  const sentNow = server.requests.filter((r) => r.operation === 'UploadPart').map((r) => r.partNumber!);
  const all = Array.from({ length: 13 }, (_, i) => i + 1);
  assert.deepEqual(
    sentNow.sort((a, b) => a - b),
    all.filter((n) => !onServer.includes(n)),
  );
  assert.equal(result.uploadId, upload.uploadId);
  assert.equal(
    result.bytesResumed,
    onServer.reduce((s, n) => s + (n === 13 ? 777 : PART), 0),
  );
  assert.deepEqual(await readObject(client, 'test-bucket', 'big.bin'), data);
});
