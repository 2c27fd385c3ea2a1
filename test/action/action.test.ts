// Proves the bundled action, run as the runner runs it, resumes a re-run from cached checkpoints, reports clearly and never prints secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { startCacheService } from '../helpers/cache-service.ts';
import { clientFor, readObject } from '../helpers/client.ts';
import { randomFile, tempDir } from '../helpers/files.ts';
import {
  type JobFiles,
  inputEnv,
  mainOnly,
  newJob,
  oneFileStep,
  parseCommandFile,
  runJob,
  runStep,
} from '../helpers/action-runner.ts';
import { run } from '../../src/action/main.ts';
import { capture } from '../deploy/harness.ts';

const ID = 'LTAI5tTestAccessKeyId';
const SECRET = 'S3cr3t-Do-Not-Print-9f8e7d';
const TOKEN = 'STS-T0ken-Do-Not-Print-1a2b';
const MiB = 1024 * 1024;
const ROLE_ARN = 'acs:ram::1234567890123456:role/deploy';
const PROVIDER_ARN = 'acs:ram::1234567890123456:oidc-provider/github';
const OIDC_ONLY = {
  'role-arn': ROLE_ARN,
  'oidc-provider-arn': PROVIDER_ARN,
  'access-key-id': '',
  'access-key-secret': '',
};

async function workspaceWithFiles(dir: string) {
  const ws = join(dir, 'ws');
  await mkdir(join(ws, 'out/small'), { recursive: true });
  const big = await randomFile(join(ws, 'out'), 'big.bin', 64 * MiB);
  const small = [
    await randomFile(join(ws, 'out/small'), 'a.txt', 10),
    await randomFile(join(ws, 'out/small'), 'ünï code.json', 2000),
    await randomFile(join(ws, 'out/small'), 'c.html', 0),
  ];
  return { ws, big, small };
}

function inputsFor(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    path: 'out/**',
    bucket: 'test-bucket',
    endpoint: url,
    destination: 'releases/v1',
    'part-size': '1MiB',
    'thread-num': '4',
    'access-key-id': ID,
    'access-key-secret': SECRET,
    'security-token': TOKEN,
    ...extra,
  };
}

async function allText(job: JobFiles, results: Array<{ stdout: string; stderr: string }>): Promise<string> {
  const files = await Promise.all([job.output, job.state, job.summary].map((f) => readFile(f, 'utf8')));
  return [...results.flatMap((r) => [r.stdout, r.stderr]), ...files].join('\n');
}

test('re-run of a failed job: checkpoints come back from the cache and only missing parts are sent', async (t) => {
  const server = await startTestServer({
    credentials: [{ accessKeyId: ID, accessKeySecret: SECRET, securityToken: TOKEN }],
  });
  t.after(() => server.close());
  const cache = await startCacheService();
  t.after(() => cache.close());
  const dir = await tempDir(t);
  const { ws, big, small } = await workspaceWithFiles(dir);
  const env = { ...inputEnv(inputsFor(server.url)), ...cache.env };

  // attempt 1: the big file's parts start failing after 20 went through
  server.addFault({
    operation: 'UploadPart',
    key: 'releases/v1/big.bin',
    nth: 21,
    times: Infinity,
    action: { type: 'error', status: 403, code: 'AccessDenied' },
  });
  const job1 = await newJob(dir, ws);
  const first = await runJob(job1, env);
  assert.equal(first.main.code, 1, first.main.stdout);
  assert.match(
    first.main.stdout,
    /::error::.*AccessDenied \(403\) on UploadPart test-bucket\/releases\/v1\/big\.bin part \d+: .*RequestId [0-9A-F]{24}, EC 0002-00000403/,
  );
  assert.match(
    first.main.stdout,
    /saved 1 checkpoint\(s\) to the Actions cache as oss-resumable-upload-cp-v1-[0-9a-f]{16}-4242-1/,
  );
  assert.deepEqual(
    cache.entries().map((e) => e.key.replace(/-[0-9a-f]{16}-/, '-H-')),
    ['oss-resumable-upload-cp-v1-H-4242-1'],
  );
  const cpDir = join(job1.runnerTemp, 'oss-resumable-upload/checkpoints');
  const checkpointText = (
    await Promise.all((await readdir(cpDir)).map((f) => readFile(join(cpDir, f), 'utf8')))
  ).join('\n');
  const sentFirst = server.requests
    .filter((r) => r.operation === 'UploadPart' && r.status === 200 && r.key === 'releases/v1/big.bin')
    .map((r) => r.partNumber!);
  assert.equal(sentFirst.length, 20);
  const archive = execFileSync('tar', ['--use-compress-program', 'unzstd', '-P', '-xOf', '-'], {
    input: await cache.archiveBytes(cache.entries()[0]!.key),
  }).toString('latin1');

  // attempt 2: a fresh runner temp dir, the next attempt number
  server.clearFaults();
  server.clearRequests();
  const job2 = await newJob(dir, ws);
  const second = await runJob(job2, { ...env, GITHUB_RUN_ATTEMPT: '2' });
  assert.equal(second.main.code, 0, second.main.stdout + second.main.stderr);
  assert.match(
    second.main.stdout,
    /restored checkpoints from the cache entry oss-resumable-upload-cp-v1-[0-9a-f]{16}-4242-1/,
  );
  assert.match(second.main.stdout, /releases\/v1\/big\.bin: resumed 20\.0 MiB of 64\.0 MiB from checkpoint/);
  const sentSecond = server.requests
    .filter((r) => r.operation === 'UploadPart' && r.status === 200 && r.key === 'releases/v1/big.bin')
    .map((r) => r.partNumber!);
  assert.equal(sentSecond.length, 44);
  assert.deepEqual(
    sentSecond.filter((n) => sentFirst.includes(n)),
    [],
    'no part sent twice',
  );
  assert.deepEqual(
    [...sentFirst, ...sentSecond].sort((a, b) => a - b),
    Array.from({ length: 64 }, (_, i) => i + 1),
  );
  // a.txt and the JSON went up in attempt 1 and are found unchanged: HEADs, no PutObject. c.html is published
  // last (publish-last's default `**/*.html`), so attempt 1 held it back when big.bin failed; it goes up now,
  // after big.bin is stored
  assert.doesNotMatch(first.main.stdout, /uploaded releases\/v1\/small\/c\.html/);
  assert.equal(second.outputs['uploaded-count'], '2');
  assert.equal(second.outputs['skipped-count'], '2');
  assert.deepEqual(JSON.parse(second.outputs['changed-keys']!), [
    'releases/v1/big.bin',
    'releases/v1/small/c.html',
  ]);
  assert.deepEqual(
    server.requests.filter((r) => r.operation === 'PutObject').map((r) => r.key),
    ['releases/v1/small/c.html'],
  );
  assert.equal(second.outputs['bytes-resumed'], String(20 * MiB));
  assert.deepEqual(JSON.parse(second.outputs.keys!), [
    'releases/v1/big.bin',
    'releases/v1/small/a.txt',
    'releases/v1/small/c.html',
    'releases/v1/small/ünï code.json',
  ]);
  assert.equal(
    (JSON.parse(second.outputs.urls!) as string[])[0],
    `${server.url}/test-bucket/releases/v1/big.bin`,
  );
  assert.equal(cache.entries().length, 1, 'nothing saved after success');
  assert.deepEqual(await readdir(join(job2.runnerTemp, 'oss-resumable-upload/checkpoints')), []);
  const summary = await readFile(job2.summary, 'utf8');
  assert.match(
    summary,
    /<td>out\/big\.bin<\/td><td>releases\/v1\/big\.bin<\/td><td>64\.0 MiB<\/td><td>uploaded \(crc64\)<\/td><td>[\d.]+s<\/td><td>20\.0 MiB<\/td>/,
  );

  const client = clientFor(server, {
    credentials: { accessKeyId: ID, accessKeySecret: SECRET, securityToken: TOKEN },
  });
  t.after(() => client.close());
  assert.ok((await readObject(client, 'test-bucket', 'releases/v1/big.bin')).equals(big.data));
  for (const [i, name] of ['a.txt', 'ünï code.json', 'c.html'].entries()) {
    assert.ok((await readObject(client, 'test-bucket', `releases/v1/small/${name}`)).equals(small[i]!.data));
  }
  const head = await client.headObject({ bucket: 'test-bucket', key: 'releases/v1/small/c.html' });
  assert.equal(head.headers['content-type'], 'text/html; charset=utf-8');

  // the secret and the token appear nowhere the action writes
  // `::add-mask::` is the command that tells the runner to mask a value; the runner consumes it and never shows it
  assert.match(first.main.stdout, new RegExp(`^::add-mask::${SECRET}$`, 'm'));
  assert.match(first.main.stdout, new RegExp(`^::add-mask::${TOKEN}$`, 'm'));
  const everything = [
    await allText(job1, [first.main, first.post]),
    await allText(job2, [second.main, second.post]),
    checkpointText,
    archive,
  ]
    .join('\n')
    .replace(/^::add-mask::.*$/gm, '');
  assert.ok(checkpointText.includes('"uploadId"'), 'the scan did read the checkpoint');
  assert.ok(archive.includes('"uploadId"'), 'the scan did read the cache archive');
  const at = everything.indexOf(SECRET);
  assert.equal(at, -1, `secret printed: ${everything.slice(Math.max(0, at - 300), at + 100)}`);
  assert.equal(everything.includes(TOKEN), false, 'token printed');
  assert.ok(server.requests.every((r) => r.securityToken === TOKEN));
});

test('cancel (SIGTERM): checkpoints are flushed, post saves them, and the next attempt resumes', async (t) => {
  const server = await startTestServer({ credentials: [{ accessKeyId: ID, accessKeySecret: SECRET }] });
  t.after(() => server.close());
  const cache = await startCacheService();
  t.after(() => cache.close());
  const dir = await tempDir(t);
  const { ws } = await workspaceWithFiles(dir);
  const env = { ...inputEnv(inputsFor(server.url, { 'security-token': '' })), ...cache.env };
  server.addFault({ operation: 'UploadPart', nth: 8, times: Infinity, action: { type: 'delay', ms: 300 } });
  const job1 = await newJob(dir, ws);
  let stopped = false;
  let stopMain: ((signal: NodeJS.Signals) => void) | undefined;
  // cancel once the big file is under way: 8 of its parts stored, the rest slowed down by the fault
  const watch = setInterval(() => {
    const stored = server.requests.filter((r) => r.operation === 'UploadPart' && r.status === 200).length;
    if (stopped || !stopMain || stored < 8) return;
    stopped = true;
    stopMain('SIGTERM');
  }, 10);
  const first = await runJob(job1, env, (_line, stop) => (stopMain = stop));
  clearInterval(watch);
  assert.equal(stopped, true, first.main.stdout);
  assert.equal(first.main.code, 1);
  assert.match(first.main.stdout, /SIGTERM received: stopping uploads and keeping their checkpoints/);
  assert.match(first.post.stdout, /saved 1 checkpoint\(s\) to the Actions cache/);

  server.clearFaults();
  const job2 = await newJob(dir, ws);
  const second = await runJob(job2, { ...env, GITHUB_RUN_ATTEMPT: '2' });
  assert.equal(second.main.code, 0, second.main.stdout);
  const resumed = Number(second.outputs['bytes-resumed']);
  assert.ok(resumed >= 8 * MiB, `resumed ${resumed}`);
  // attempt 2 sent exactly the parts that were missing (the small files go up again: 2,010 bytes)
  // plus the small files (2,010 bytes) unless attempt 1 stored them before the cancel, when they are unchanged
  const sent = Number(second.outputs['bytes-uploaded']);
  assert.ok(
    sent === 64 * MiB - resumed ||
      sent === 64 * MiB - resumed + 2010 ||
      sent === 64 * MiB - resumed + 10 ||
      sent === 64 * MiB - resumed + 2000,
    `sent ${sent}`,
  );
  // bodies in flight at the cancel may land after it; still, across both attempts no part was stored twice
  const stored = server.requests
    .filter((r) => r.operation === 'UploadPart' && r.status === 200 && r.key === 'releases/v1/big.bin')
    .map((r) => r.partNumber!)
    .sort((x, y) => x - y);
  assert.deepEqual(
    stored,
    Array.from({ length: 64 }, (_, i) => i + 1),
  );
});

test('bad inputs fail before any request with the input, the value and what is allowed', async (t) => {
  const { server, dir, ws, base } = await oneFileStep(t, 'f.txt');
  const cases: Array<[Record<string, string>, string]> = [
    [
      { 'part-size': '50KB' },
      'input `part-size`: got `50KB`; allowed 100KB to 5GB as bytes or with a unit (e.g. `8MiB`), or `auto`',
    ],
    [
      { 'part-size': '6GB' },
      'input `part-size`: got `6GB`; allowed 100KB to 5GB as bytes or with a unit (e.g. `8MiB`), or `auto`',
    ],
    [{ 'thread-num': '0' }, 'input `thread-num`: got `0`; allowed a whole number from 1 to 64'],
    [
      { bucket: 'Bad_Bucket' },
      'input `bucket`: got `Bad_Bucket`; allowed 3-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit',
    ],
    [
      { 'if-no-files-found': 'maybe' },
      'input `if-no-files-found`: got `maybe`; allowed `warn`, `error`, `ignore`',
    ],
    [{ 'signature-version': 'v3' }, 'input `signature-version`: got `v3`; allowed `v4`, `v1`'],
    [{ overwrite: 'sometimes' }, 'input `overwrite`: got `sometimes`; allowed `true` or `false`'],
    [{ 'skip-unchanged': 'perhaps' }, 'input `skip-unchanged`: got `perhaps`; allowed `true` or `false`'],
    [
      { acl: 'world' },
      'input `acl`: got `world`; allowed `private`, `public-read`, `public-read-write`, `default`',
    ],
    [
      { 'storage-class': 'Cold' },
      'input `storage-class`: got `Cold`; allowed `Standard`, `IA`, `Archive`, `ColdArchive`, `DeepColdArchive`',
    ],
    [
      { 'content-type': 'html' },
      'input `content-type`: got `html`; allowed a MIME type such as `text/html; charset=utf-8`, or empty to pick one per file',
    ],
    [
      { destination: 'a/../b' },
      'input `destination`: got `a/../b`; allowed a key prefix without `.` or `..` segments',
    ],
    [
      { headers: 'Host: evil' },
      'input `headers`: got `Host`; allowed x-oss-meta-* or one of content-disposition, content-encoding, content-language, expires, x-oss-server-side-encryption, x-oss-server-side-encryption-key-id, x-oss-server-side-data-encryption, x-oss-tagging (other headers have their own inputs)',
    ],
    [{ endpoint: 'ftp://x' }, 'input `endpoint`: got `ftp://x`; allowed an http(s) origin without a path'],
    [
      { region: 'Mars!', endpoint: '' },
      'input `region`: got `Mars!`; allowed a region id such as cn-hangzhou or ap-southeast-1',
    ],
    [
      { 'delete-orphans': 'true' },
      'input `delete-orphans`: refusing to delete across the whole bucket `test-bucket`: `destination` is empty; allowed with a `destination` prefix (only keys under it are candidates), or add `delete-orphans-force: true` to delete every object in the bucket that this deploy does not contain',
    ],
    [{ 'delete-orphans': 'true', destination: '/' }, 'input `delete-orphans`: refusing to delete across'],
    [{ 'dry-run': 'maybe' }, 'input `dry-run`: got `maybe`; allowed `true` or `false`'],
    [
      { 'abort-stale-uploads': '10m' },
      'input `abort-stale-uploads`: got `10m`; allowed an age of at least 1h such as `24h`, `90m` or `7d`, or empty to leave unfinished uploads alone',
    ],
    [{ 'abort-stale-uploads': 'daily' }, 'input `abort-stale-uploads`: got `daily`; allowed an age of'],
    [
      { 'role-arn': 'arn:aws:iam::1:role/x' },
      'input `role-arn`: got `arn:aws:iam::1:role/x`; allowed a RAM role ARN such as `acs:ram::123456789012:role/deploy`',
    ],
    [
      { 'role-arn': ROLE_ARN },
      'input `oidc-provider-arn`: missing; `role-arn` is set, and OIDC sign-in also needs the OIDC identity provider',
    ],
    [
      { 'oidc-provider-arn': PROVIDER_ARN },
      'input `role-arn`: missing; `oidc-provider-arn` is set, and OIDC sign-in also needs the RAM role to assume',
    ],
    [
      { 'role-arn': ROLE_ARN, 'oidc-provider-arn': PROVIDER_ARN },
      'input `access-key-id`: set, and so is `role-arn`; allowed one way to sign in: remove the AccessKey inputs to use OIDC, or `role-arn` and `oidc-provider-arn` to use the keys',
    ],
    [
      { ...OIDC_ONLY, 'role-duration': '5m' },
      "input `role-duration`: got `5m`; allowed 900 to 43200 seconds (`15m` to `12h`); the role's maximum session duration must allow it",
    ],
    [
      { ...OIDC_ONLY, 'role-session-name': 'my session' },
      'input `role-session-name`: got `my session`; allowed 2-64 letters, digits and `.@-_`',
    ],
    [
      { 'access-key-secret': '' },
      'access key secret missing (the id came from input `access-key-id`): set input `access-key-secret` or OSS_ACCESS_KEY_SECRET / ALIBABA_CLOUD_ACCESS_KEY_SECRET',
    ],
  ];
  // validation is pure: the step's run() in-process, as the entry calls it (the entry turns the error into ::error::)
  const env = { GITHUB_WORKSPACE: ws, RUNNER_TEMP: join(dir, 'runner-temp') };
  for (const [override, message] of cases) {
    const c = capture({ ...base, ...override }, env);
    await assert.rejects(run({ io: c.io }), (e: Error) => {
      assert.ok(e.message.includes(message), `${JSON.stringify(override)}\n${e.message}`);
      return true;
    });
  }
  assert.equal(server.requests.length, 0, 'no request was made');

  // credentials from the environment, as aliyun/configure-aliyun-credentials-action exports them; through the
  // bundle, as the runner runs it
  const fromEnv = await mainOnly(
    dir,
    ws,
    { ...base, 'access-key-id': '', 'access-key-secret': '' },
    { ALIBABA_CLOUD_ACCESS_KEY_ID: 'test-ak', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'test-sk' },
  );
  assert.equal(fromEnv.code, 0, fromEnv.stdout);
});

test('if-no-files-found: warn succeeds with a warning, error fails, ignore succeeds quietly', async (t) => {
  const dir = await tempDir(t);
  const ws = join(dir, 'ws');
  await mkdir(ws);
  const base = {
    path: 'nothing/**',
    bucket: 'test-bucket',
    endpoint: 'http://127.0.0.1:9',
    'access-key-id': 'a',
    'access-key-secret': 'b',
  };
  const warn = await mainOnly(dir, ws, base);
  assert.equal(warn.code, 0);
  assert.match(
    warn.stdout,
    /::warning::No files were found with the provided path: nothing\/\*\*\. No objects will be uploaded\./,
  );
  const error = await mainOnly(dir, ws, { ...base, 'if-no-files-found': 'error' });
  assert.equal(error.code, 1);
  assert.match(error.stdout, /::error::No files were found with the provided path: nothing\/\*\*/);
  const ignore = await mainOnly(dir, ws, { ...base, 'if-no-files-found': 'ignore' });
  assert.equal(ignore.code, 0);
  assert.doesNotMatch(ignore.stdout, /::warning::|::error::/);
});

test('overwrite: false refuses an existing key with FileAlreadyExists', async (t) => {
  const { dir, ws, base } = await oneFileStep(t, 'f.txt');
  assert.equal((await mainOnly(dir, ws, base)).code, 0);
  // the same bytes again: nothing to overwrite, so a re-run of a release step succeeds
  const same = await mainOnly(dir, ws, { ...base, overwrite: 'false' });
  assert.equal(same.code, 0, same.stdout);
  assert.match(
    same.stdout,
    /unchanged f\.txt \(1 B: same size and CRC-64 as the stored object; nothing sent\)/,
  );
  await writeFile(join(ws, 'f.txt'), 'y');
  const again = await mainOnly(dir, ws, { ...base, overwrite: 'false' });
  assert.equal(again.code, 1);
  assert.match(again.stdout, /::error::.*FileAlreadyExists \(409\) on PutObject test-bucket\/f\.txt/);
});

test('skip-unchanged: a second deploy of the same tree sends nothing; one changed byte sends only that file', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const dir = await tempDir(t);
  const ws = join(dir, 'ws');
  await mkdir(join(ws, 'site/css'), { recursive: true });
  const names = ['site/index.html', 'site/about.html', 'site/css/a.css', 'site/empty.txt'];
  for (const [i, n] of names.entries())
    await writeFile(join(ws, n), i === 3 ? '' : `<p>${n}</p>`.repeat(100 * i + 1));
  await randomFile(join(ws, 'site'), 'video.bin', 3 * MiB);
  const inputs = {
    path: 'site/**',
    bucket: 'test-bucket',
    endpoint: server.url,
    'part-size': '1MiB',
    'access-key-id': 'test-ak',
    'access-key-secret': 'test-sk',
    'cache-checkpoints': 'false',
  };
  const deploy = async () => {
    server.clearRequests();
    const job = await newJob(dir, ws);
    const r = await runStep('main', job, inputEnv(inputs));
    assert.equal(r.code, 0, r.stdout);
    const sent = server.requests.filter((q) => ['PutObject', 'UploadPart'].includes(q.operation));
    return { stdout: r.stdout, outputs: parseCommandFile(await readFile(job.output, 'utf8')), sent };
  };
  const first = await deploy();
  assert.equal(first.outputs['uploaded-count'], '5');
  assert.equal(first.outputs['skipped-count'], '0');

  const second = await deploy();
  assert.equal(second.outputs['uploaded-count'], '0');
  assert.equal(second.outputs['skipped-count'], '5');
  assert.equal(second.outputs['bytes-uploaded'], '0');
  assert.deepEqual(second.sent, [], 'nothing sent');
  assert.equal((JSON.parse(second.outputs.keys!) as string[]).length, 5, 'keys still name every object');
  assert.equal(server.requests.filter((q) => q.operation === 'HeadObject').length, 5);

  // same size, one byte different: only a CRC comparison can tell
  const file = join(ws, 'site/about.html');
  const bytes = await readFile(file);
  bytes[7] = bytes[7]! ^ 1;
  await writeFile(file, bytes);
  const third = await deploy();
  assert.equal(third.outputs['uploaded-count'], '1');
  assert.equal(third.outputs['skipped-count'], '4');
  assert.deepEqual(
    third.sent.map((q) => q.key),
    ['about.html'],
  );
  const client = clientFor(server);
  t.after(() => client.close());
  assert.ok((await readObject(client, 'test-bucket', 'about.html')).equals(bytes));
});

test('runtime failures name the cause: wrong secret, missing bucket, unreachable endpoint, a path escaping the workspace', async (t) => {
  const { server, dir, ws, base } = await oneFileStep(t, 'out/f.txt', 'out/**');
  const cases: Array<[Record<string, string>, RegExp]> = [
    [
      { 'access-key-secret': 'wrong-secret-123' },
      /::error::.*SignatureDoesNotMatch \(403\) on (PutObject|HeadObject|ListObjects) test-bucket.*RequestId [0-9A-F]+.*check the AccessKey secret/,
    ],
    [
      { bucket: 'no-such-bucket' },
      /::error::.*NoSuchBucket \(404\) on (PutObject|HeadObject|ListObjects) no-such-bucket.*check the bucket name/,
    ],
    [{ endpoint: 'http://127.0.0.1:9' }, /::error::.*ECONNREFUSED/],
  ];
  for (const [override, pattern] of cases) {
    const r = await mainOnly(dir, ws, { ...base, ...override });
    assert.equal(r.code, 1, JSON.stringify(override));
    assert.match(r.stdout, pattern, `${JSON.stringify(override)}\n${r.stdout}`);
    // `::add-mask::` is consumed by the runner; nothing else may carry the secret, right or wrong
    assert.doesNotMatch(r.stdout.replace(/^::add-mask::.*$/gm, ''), /wrong-secret-123/);
  }

  // a symlink inside the workspace that points outside it is refused before any upload
  const outside = join(dir, 'outside.txt');
  await writeFile(outside, 'secret file');
  await symlink(outside, join(ws, 'out/link.txt'));
  server.clearRequests();
  const escaped = await mainOnly(dir, ws, base);
  assert.equal(escaped.code, 1);
  assert.match(
    escaped.stdout,
    /::error::input `path`: .*link\.txt resolves to .*outside\.txt, outside the workspace/,
  );
  // the destination's first page may go while the search runs on: a read, and nothing else
  assert.deepEqual(
    server.requests.map((r) => r.operation).filter((op) => op !== 'ListObjects'),
    [],
  );
});

test('keys keep Unicode, spaces and the characters URLs treat specially (+ ? # %)', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const dir = await tempDir(t);
  const ws = join(dir, 'ws');
  await mkdir(join(ws, 'out/文档 dir'), { recursive: true });
  const names = ['a+b.txt', 'what?.txt', 'hash#tag.txt', '100%.txt', '文档 dir/ünï code.txt'];
  for (const n of names) await writeFile(join(ws, 'out', n), `content of ${n}`);
  const job = await newJob(dir, ws);
  const r = await runStep(
    'main',
    job,
    inputEnv({
      path: 'out/**',
      bucket: 'test-bucket',
      endpoint: server.url,
      destination: 'd e/',
      'access-key-id': 'test-ak',
      'access-key-secret': 'test-sk',
      'cache-checkpoints': 'false',
    }),
  );
  assert.equal(r.code, 0, r.stdout);
  const client = clientFor(server);
  t.after(() => client.close());
  for (const n of names) {
    assert.equal((await readObject(client, 'test-bucket', `d e/${n}`)).toString(), `content of ${n}`, n);
  }
});
