// Proves that read buffers reused between chunks and parts never reach the wire while the socket still holds
// them: every byte stored is the file's, with parts in parallel, many chunks per part, and requests cut mid-body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readObject } from '../helpers/client.ts';
import { randomFile } from '../helpers/files.ts';
import { serverClientDir } from '../helpers/setup.ts';
import { RangeHasher, uploadFile } from '../../src/engine/index.ts';

const BUCKET = 'test-bucket';
const MIB = 1024 * 1024;

async function uploadAndCompare(
  t: Parameters<typeof serverClientDir>[0],
  opts: { size: number; partSize: number; threadNum: number; resets?: number },
): Promise<{ partsSent: number; notices: string[] }> {
  const env = await serverClientDir(t);
  const { path: file, data } = await randomFile(env.dir, 'big.bin', opts.size);
  if (opts.resets) {
    env.server.addFault({
      operation: 'UploadPart',
      times: opts.resets,
      action: { type: 'reset', afterBytes: Math.floor(1.5 * MIB) },
    });
  }
  const notices: string[] = [];
  const result = await uploadFile({
    client: env.client,
    bucket: BUCKET,
    key: 'big',
    file,
    partSize: opts.partSize,
    threadNum: opts.threadNum,
    onNotice: (m) => notices.push(m),
  });
  assert.ok(
    (await readObject(env.client, BUCKET, 'big')).equals(data),
    'the stored object differs from the file',
  );
  return { partsSent: result.partsSent, notices };
}

test('parts of many chunks sent in parallel arrive byte for byte, none sent twice', async (t) => {
  const { partsSent, notices } = await uploadAndCompare(t, {
    size: 14 * MIB + 12345,
    partSize: 3.5 * MIB,
    threadNum: 4,
  });
  assert.equal(partsSent, 5);
  assert.deepEqual(
    notices.filter((m) => /again/.test(m)),
    [],
  );
});

test('requests cut mid-body and sent again still store exactly the file', async (t) => {
  const { notices } = await uploadAndCompare(t, {
    size: 12 * MIB,
    partSize: 3 * MIB,
    threadNum: 4,
    resets: 3,
  });
  assert.deepEqual(
    notices.filter((m) => /CRC|differs|mismatch/i.test(m)),
    [],
  );
});

for (const crc of [true, false]) {
  test(`a small file is read once and verified from memory, without a hashing thread (server CRC ${crc ? 'on' : 'off'})`, async (t) => {
    const env = await serverClientDir(t, { crcHeaders: crc });
    const { path: file, data } = await randomFile(env.dir, 'small.txt', 4096);
    const hasher = new RangeHasher(1);
    await hasher.close();
    const result = await uploadFile({ client: env.client, bucket: BUCKET, key: 'small', file, hasher });
    assert.equal(result.verified, crc ? 'crc64' : 'md5');
    assert.equal(result.bytesSent, 4096);
    assert.ok((await readObject(env.client, BUCKET, 'small')).equals(data));
  });
}
