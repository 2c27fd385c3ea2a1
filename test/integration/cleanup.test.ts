// Proves orphan deletion and stale-upload cleanup over real HTTP: exactly the stale keys go, across pages,
// and an old upload that a checkpoint still records is kept for the re-run that will continue it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomFile } from '../helpers/files.ts';
import { bufferBody } from '../../src/oss/index.ts';
import {
  abortUploads,
  checkpointedUploadIds,
  deleteOrphans,
  findOrphans,
  findStaleUploads,
  isUploadError,
  uploadFile,
} from '../../src/engine/index.ts';
import { serverClientDir } from '../helpers/setup.ts';

const B = 'test-bucket';
const DAY = 86_400_000;

// pages of 3 so every listing crosses pages
const setup = (t: Parameters<typeof serverClientDir>[0]) => serverClientDir(t, { pageLimit: 3 });

test('orphans are the keys under the prefix the deploy lacks; folder markers and neighbours stay', async (t) => {
  const { server, client } = await setup(t);
  const put = (key: string, body = 'x') => client.putObject({ bucket: B, key, body: bufferBody(body) });
  const deployed = ['site/index.html', 'site/a/b.css', 'site/new.js'];
  for (const k of [
    ...deployed,
    'site/old.html',
    'site/a/gone.css',
    'site/z/1',
    'site/z/2',
    'site-2/x',
    'sitemap.xml',
  ])
    await put(k);
  await put('site/empty-folder/', '');

  const orphans = await findOrphans({ client, bucket: B, prefix: 'site/', keep: new Set(deployed) });
  assert.deepEqual(orphans, ['site/a/gone.css', 'site/old.html', 'site/z/1', 'site/z/2']);
  assert.equal(
    server.requests.filter((r) => r.operation === 'ListObjects').length,
    3,
    '8 keys in pages of 3',
  );

  server.clearRequests();
  assert.deepEqual(await deleteOrphans({ client, bucket: B, keys: orphans }), orphans);
  const deletes = server.requests.filter((r) => r.operation === 'DeleteMultipleObjects');
  assert.equal(deletes.length, 1, 'one batch');
  const left = (await client.listObjects({ bucket: B })).map((o) => o.key).sort();
  assert.deepEqual(left, [
    'site-2/x',
    'site/a/b.css',
    'site/empty-folder/',
    'site/index.html',
    'site/new.js',
    'sitemap.xml',
  ]);
  assert.deepEqual(
    await deleteOrphans({ client, bucket: B, keys: [] }),
    [],
    'nothing to delete sends nothing',
  );
});

test('stale uploads: old and unowned are aborted; old with a checkpoint, fresh, and outside the prefix are kept', async (t) => {
  const { server, client, dir } = await setup(t);
  const cpDir = join(dir, 'cp');
  // a real interrupted upload whose checkpoint this run holds
  const { path } = await randomFile(dir, 'big.bin', 500 * 1024);
  server.addFault({
    operation: 'UploadPart',
    nth: 3,
    action: { type: 'error', status: 403, code: 'AccessDenied' },
  });
  const err = await uploadFile({
    client,
    bucket: B,
    key: 'rel/big.bin',
    file: path,
    partSize: 100 * 1024,
    threadNum: 1,
    checkpoint: { dir: cpDir },
  }).catch((e: unknown) => e);
  assert.ok(isUploadError(err) && err.uploadId, String(err));
  const owned = err.uploadId;
  const unowned = [
    (await client.initiateMultipartUpload({ bucket: B, key: 'rel/died.bin' })).uploadId,
    (await client.initiateMultipartUpload({ bucket: B, key: 'rel/died.bin' })).uploadId,
    (await client.initiateMultipartUpload({ bucket: B, key: 'rel/x/other.bin' })).uploadId,
  ];
  const outside = (await client.initiateMultipartUpload({ bucket: B, key: 'elsewhere/old.bin' })).uploadId;
  await server.ageUploads(2 * DAY);
  const fresh = (await client.initiateMultipartUpload({ bucket: B, key: 'rel/running.bin' })).uploadId;

  const ids = await checkpointedUploadIds(cpDir, B);
  assert.deepEqual([...ids], [owned]);
  assert.deepEqual([...(await checkpointedUploadIds(cpDir, 'other-bucket'))], []);

  const stale = await findStaleUploads({ client, bucket: B, prefix: 'rel/', olderThanMs: DAY, owned: ids });
  assert.deepEqual(stale.map((u) => u.uploadId).sort(), [...unowned].sort());
  assert.ok(stale.every((u) => Date.now() - u.initiated.getTime() > 2 * DAY - 60_000));

  assert.deepEqual(await abortUploads({ client, bucket: B, uploads: stale }), []);
  const remaining = (await client.listMultipartUploads({ bucket: B })).map((u) => u.uploadId).sort();
  assert.deepEqual(remaining, [owned, outside, fresh].sort());

  // aborting again (another job got there first) is not a failure
  assert.deepEqual(await abortUploads({ client, bucket: B, uploads: stale }), []);
});
