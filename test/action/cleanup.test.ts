// Proves delete-orphans, dry-run and abort-stale-uploads through the bundled action: dry-run changes nothing,
// the real run removes exactly the stale keys under the destination, a failed upload deletes nothing, and an
// old upload that a checkpoint of the run records survives the stale-upload cleanup to be resumed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { clientFor } from '../helpers/client.ts';
import { randomFile, tempDir } from '../helpers/files.ts';
import { inputEnv, newJob, parseCommandFile, runStep } from '../helpers/action-runner.ts';
import { bufferBody } from '../../src/oss/index.ts';

const B = 'test-bucket';
const DAY = 86_400_000;

/** A server, a client on it, and a workspace with `files` (path -> content) under `ws`. */
async function siteSetup(t: Parameters<typeof tempDir>[0], files: Record<string, string>) {
  const server = await startTestServer();
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  const dir = await tempDir(t);
  const ws = join(dir, 'ws');
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(ws, path)), { recursive: true });
    await writeFile(join(ws, path), content);
  }
  return { server, client, dir, ws };
}

test('delete-orphans and abort-stale-uploads: dry run lists, real run removes exactly the stale, failures delete nothing', async (t) => {
  const { server, client, dir, ws } = await siteSetup(t, {
    'site/a.html': '<p>a</p>',
    'site/b/c.css': 'p{}',
  });

  const put = (key: string) => client.putObject({ bucket: B, key, body: bufferBody(key) });
  for (const k of ['docs/old.html', 'docs/b/gone.css', 'docs-v1/keep.html', 'other/x']) await put(k);
  const init = async (key: string) => (await client.initiateMultipartUpload({ bucket: B, key })).uploadId;
  const diedHere = await init('docs/died.bin');
  const diedElsewhere = await init('other/died.bin');
  await server.ageUploads(2 * DAY);
  const running = await init('docs/running.bin');

  const cpDir = join(dir, 'checkpoints'); // kept between runs, as the Actions cache would
  const inputs = {
    path: 'site/**',
    bucket: B,
    endpoint: server.url,
    destination: 'docs',
    'part-size': '100KB',
    'access-key-id': 'test-ak',
    'access-key-secret': 'test-sk',
    'cache-checkpoints': 'false',
    'checkpoint-dir': cpDir,
    'delete-orphans': 'true',
    'abort-stale-uploads': '24h',
  };
  const deploy = async (extra: Record<string, string> = {}) => {
    const job = await newJob(dir, ws);
    const r = await runStep('main', job, inputEnv({ ...inputs, ...extra }));
    return {
      ...r,
      outputs: parseCommandFile(await readFile(job.output, 'utf8')),
      summary: await readFile(job.summary, 'utf8'),
    };
  };
  const keys = async () => (await client.listObjects({ bucket: B })).map((o) => o.key).sort();
  const uploads = async () =>
    (await client.listMultipartUploads({ bucket: B })).map((u) => u.uploadId).sort();

  const dry = await deploy({ 'dry-run': 'true' });
  assert.equal(dry.code, 0, dry.stdout);
  assert.equal(dry.outputs['deleted-count'], '0');
  assert.equal(dry.outputs['aborted-uploads'], '0');
  assert.deepEqual(JSON.parse(dry.outputs.orphans!), ['docs/b/gone.css', 'docs/old.html']);
  assert.match(dry.stdout, /dry run: would delete orphan docs\/old\.html/);
  assert.match(dry.stdout, /dry run: would abort stale upload docs\/died\.bin/);
  assert.match(dry.summary, /2 orphan\(s\) would be deleted/);
  assert.match(dry.summary, /1 stale upload\(s\) would be aborted/);
  assert.ok((await keys()).includes('docs/old.html'), 'dry run deleted nothing');
  assert.equal((await uploads()).length, 3, 'dry run aborted nothing');

  const real = await deploy();
  assert.equal(real.code, 0, real.stdout);
  assert.equal(real.outputs['deleted-count'], '2');
  assert.equal(real.outputs['aborted-uploads'], '1');
  assert.deepEqual(await keys(), ['docs-v1/keep.html', 'docs/a.html', 'docs/b/c.css', 'other/x']);
  assert.deepEqual(await uploads(), [diedElsewhere, running].sort());
  assert.ok(!(await uploads()).includes(diedHere));

  // a failed upload: the deploy is incomplete, so nothing is deleted; its upload stays with its checkpoint
  await put('docs/late.html');
  await randomFile(join(ws, 'site'), 'big.bin', 600 * 1024);
  server.addFault({
    operation: 'UploadPart',
    key: 'docs/big.bin',
    partNumber: 4,
    times: Infinity,
    // a refusal of this one part only (a refusal of the credentials would stop the run before any cleanup)
    action: { type: 'error', status: 400, code: 'InvalidArgument' },
  });
  const failed = await deploy();
  assert.equal(failed.code, 1);
  assert.equal(failed.outputs['deleted-count'], '0');
  assert.match(
    failed.stdout,
    /::warning::delete-orphans: nothing deleted under oss:\/\/test-bucket\/docs\/: an upload failed/,
  );
  assert.ok((await keys()).includes('docs/late.html'));
  const big = (await client.listMultipartUploads({ bucket: B, prefix: 'docs/big.bin' }))[0]!.uploadId;

  // days later the re-run fails again: its upload is old but a checkpoint records it, so it is kept
  await server.ageUploads(2 * DAY);
  const again = await deploy();
  assert.equal(again.code, 1);
  assert.equal(again.outputs['aborted-uploads'], '1', 'only docs/running.bin, now old too');
  assert.deepEqual(await uploads(), [diedElsewhere, big].sort());

  // the fault is gone: the re-run resumes that upload, and the deploy is complete at last
  server.clearFaults();
  server.clearRequests();
  const done = await deploy();
  assert.equal(done.code, 0, done.stdout);
  assert.equal(done.outputs['deleted-count'], '1');
  assert.deepEqual(JSON.parse(done.outputs.orphans!), ['docs/late.html']);
  assert.ok(server.requests.some((r) => r.operation === 'CompleteMultipartUpload' && r.uploadId === big));
  assert.deepEqual(await keys(), [
    'docs-v1/keep.html',
    'docs/a.html',
    'docs/b/c.css',
    'docs/big.bin',
    'other/x',
  ]);
  assert.deepEqual(await uploads(), [diedElsewhere]);
});

test('delete-orphans at the bucket root needs delete-orphans-force; no matching file deletes nothing', async (t) => {
  const { server, client, dir, ws } = await siteSetup(t, { 'public/index.html': 'hi' });
  await client.putObject({ bucket: B, key: 'stale.html', body: bufferBody('old') });
  const base = {
    path: 'public/**',
    bucket: B,
    endpoint: server.url,
    'access-key-id': 'test-ak',
    'access-key-secret': 'test-sk',
    'cache-checkpoints': 'false',
    'delete-orphans': 'true',
  };
  const run = async (extra: Record<string, string>) => {
    const job = await newJob(dir, ws);
    const r = await runStep('main', job, inputEnv({ ...base, ...extra }));
    return { ...r, outputs: parseCommandFile(await readFile(job.output, 'utf8')) };
  };
  const refused = await run({});
  assert.equal(refused.code, 1);
  assert.match(refused.stdout, /::error::input `delete-orphans`: refusing to delete across the whole bucket/);
  assert.equal(server.requests.filter((r) => r.operation !== 'PutObject').length, 0, 'nothing was sent');

  const nothing = await run({ path: 'no-such-dir/**', 'delete-orphans-force': 'true' });
  assert.equal(nothing.code, 0);
  assert.match(nothing.stdout, /::warning::delete-orphans: nothing deleted .*no files were found/);
  assert.equal(nothing.outputs['deleted-count'], '0');

  const forced = await run({ 'delete-orphans-force': 'true' });
  assert.equal(forced.code, 0, forced.stdout);
  assert.equal(forced.outputs['deleted-count'], '1');
  assert.deepEqual(
    (await client.listObjects({ bucket: B })).map((o) => o.key),
    ['index.html'],
  );

  // one cleanup refused (no permission to list uploads): the other still runs, and the step says why it failed
  await client.putObject({ bucket: B, key: 'stale-2.html', body: bufferBody('old') });
  server.addFault({
    operation: 'ListMultipartUploads',
    action: { type: 'error', status: 403, code: 'AccessDenied' },
  });
  const partial = await run({ 'delete-orphans-force': 'true', 'abort-stale-uploads': '24h' });
  assert.equal(partial.code, 1);
  assert.match(
    partial.stdout,
    /::error::cleanup after the upload failed: abort-stale-uploads: AccessDenied \(403\) on ListMultipartUploads test-bucket/,
  );
  assert.equal(partial.outputs['deleted-count'], '1');
  assert.deepEqual(
    (await client.listObjects({ bucket: B })).map((o) => o.key),
    ['index.html'],
  );
});
