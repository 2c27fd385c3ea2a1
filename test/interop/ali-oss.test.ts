// Proves an SDK written by others against real OSS (ali-oss) round-trips objects through our server, V1 and V4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { aliOssFor } from '../helpers/ali-oss.ts';
import { randomFile, tempDir } from '../helpers/files.ts';

for (const v4 of [false, true]) {
  const sig = v4 ? 'V4' : 'V1';

  test(`ali-oss ${sig}: put, head, get of a small object with an awkward key`, async (t) => {
    const server = await startTestServer();
    t.after(() => server.close());
    const oss = aliOssFor(server.url, { v4 });
    const body = Buffer.from('hello, ünïcode + spaces');
    await oss.put('dir/a b+c%d.txt', body, {
      headers: { 'Content-Type': 'text/plain', 'x-oss-meta-who': 'ali' },
    });
    const head = await oss.head('dir/a b+c%d.txt');
    assert.equal((head.res.headers as Record<string, string>)['content-length'], String(body.length));
    assert.equal((head.res.headers as Record<string, string>)['x-oss-meta-who'], 'ali');
    const got = await oss.get('dir/a b+c%d.txt');
    assert.deepEqual(got.content, body);
  });

  test(`ali-oss ${sig}: multipartUpload of several parts in parallel, then listParts`, async (t) => {
    const server = await startTestServer();
    t.after(() => server.close());
    const dir = await tempDir(t);
    const { path, data } = await randomFile(dir, 'big.bin', 3 * 1024 * 1024 + 4321);
    const oss = aliOssFor(server.url, { v4 });
    await oss.multipartUpload('big.bin', path, { parallel: 4, partSize: 512 * 1024 });
    const parts = server.requests.filter((r) => r.operation === 'UploadPart' && r.status === 200);
    assert.equal(parts.length, 7);
    const got = await oss.get('big.bin');
    assert.deepEqual(got.content, data);

    const init = await oss.initMultipartUpload('partial.bin');
    await oss.uploadPart('partial.bin', init.uploadId, 1, path, 0, 200 * 1024);
    await oss.uploadPart('partial.bin', init.uploadId, 2, path, 200 * 1024, 400 * 1024);
    const listed = await oss.listParts('partial.bin', init.uploadId, {
      'max-parts': 1000,
      'part-number-marker': 0,
      'encoding-type': 'url',
    });
    assert.deepEqual(
      (listed.parts as unknown as Array<{ PartNumber: string; Size: string }>).map((p) => [
        p.PartNumber,
        p.Size,
      ]),
      [
        ['1', String(200 * 1024)],
        ['2', String(200 * 1024)],
      ],
    );
  });
}

test('the standalone server prints its URL and serves ali-oss from another process', async (t) => {
  const dir = await tempDir(t);
  const child = spawn(
    process.execPath,
    [
      join(import.meta.dirname, '../../src/server/main.ts'),
      '--port',
      '0',
      '--data',
      join(dir, 'data'),
      '--bucket',
      'test-bucket',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => child.kill('SIGTERM'));
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve) => lines.once('line', resolve));
  const url = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(first)?.[1];
  assert.ok(url, `first line: ${first}`);
  const oss = aliOssFor(url, { v4: true });
  await oss.put('from-another-process.txt', Buffer.from('across processes'));
  assert.equal(String((await oss.get('from-another-process.txt')).content), 'across processes');
});
