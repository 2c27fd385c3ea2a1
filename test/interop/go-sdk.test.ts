// Alibaba's own Go SDK (v1, Debian's golang-github-aliyun-aliyun-oss-go-sdk-dev) against our server: its
// UploadFile writes CompleteMultipartUpload with Go's encoding/xml (`&#34;` around ETags) and checks CRC-64.
// Skipped, saying why, where Go or the SDK is not installed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { buildGoPeer } from '../../bench/go-peer.ts';
import { crc64 } from '../../src/oss/index.ts';
import { clientFor, readObject } from '../helpers/client.ts';
import { randomFile, tempDir } from '../helpers/files.ts';
import { startTestServer } from '../helpers/server.ts';

test('Go SDK UploadFile (4 x 1 MiB parts, CRC-64 on) stores the exact bytes through our server', async (t) => {
  const dir = await tempDir(t);
  const peer = buildGoPeer(dir);
  if (!peer.binary) return t.skip(`Go SDK peer not available: ${peer.why ?? ''}`);
  const server = await startTestServer({ buckets: ['bench'] });
  t.after(() => server.close());
  const { path, data } = await randomFile(dir, 'asset.bin', 5 * 1024 * 1024 + 123);
  const run = await promisify(execFile)(
    peer.binary,
    ['-url', server.url, '-file', path, '-part-size', String(1024 * 1024), '-threads', '4'],
    { timeout: 60_000 },
  );
  assert.match(run.stdout, /"client":"go-sdk"/);
  const client = clientFor(server);
  t.after(() => client.close());
  const stored = await readObject(client, 'bench', 'go-sdk');
  assert.equal(
    createHash('sha256').update(stored).digest('hex'),
    createHash('sha256').update(data).digest('hex'),
  );
  const head = await client.headObject({ bucket: 'bench', key: 'go-sdk' });
  assert.equal(head.crc64, crc64(data));
});
