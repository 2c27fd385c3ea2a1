// Drives the shipped command (`dist/cli.js`, the package's bin) in child processes: help, validation, a
// verified upload with live progress, and Ctrl-C followed by a second run that resumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { readFile } from 'node:fs/promises';
import { startTestServer } from '../helpers/server.ts';
import { clientFor, readObject } from '../helpers/client.ts';
import { randomFile, tempDir } from '../helpers/files.ts';
import { bufferBody } from '../../src/oss/index.ts';

const CLI = join(import.meta.dirname, '../../dist/cli.js');
const MiB = 1024 * 1024;
// the bar redraws in place: carriage return, then erase to the end of the line
const REDRAW = '\r\u001b[K';
const esc = (text: string): string => text.replace(/[[\]()|.*+?^$\\]/g, '\\$&');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): {
  child: ChildProcess;
  done: Promise<Run>;
} {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? process.cwd(),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

const cli = (args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> =>
  start(args, opts).done;

const CREDS = { OSS_ACCESS_KEY_ID: 'test-ak', OSS_ACCESS_KEY_SECRET: 'test-sk' };

test('--help lists every option the action has, and the exit codes', async () => {
  const r = await cli(['--help']);
  assert.equal(r.code, 0);
  const action = parse(await readFile(join(import.meta.dirname, '../../action.yml'), 'utf8')) as {
    inputs: Record<string, unknown>;
  };
  // path is the positional arguments, headers is --header; the Actions cache and the job's GitHub ID token
  // (OIDC sign-in) exist only inside Actions
  const actionsOnly = [
    'cache-checkpoints',
    'role-arn',
    'oidc-provider-arn',
    'role-session-name',
    'role-duration',
  ];
  const expected = Object.keys(action.inputs).filter(
    (n) => !['path', 'headers', ...actionsOnly, 'oidc-audience', 'sts-endpoint'].includes(n),
  );
  for (const name of expected)
    assert.match(r.stdout, new RegExp(`--(no-)?${name}\\b`), `--${name} missing from --help`);
  assert.match(r.stdout, /--header "Name: value"/);
  assert.match(r.stdout, /Exit status: 0 .* 130 interrupted/);
});

test('bad values name the option, the value and what is allowed, and exit 2', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string[], string]> = [
    [['--thread-num', '0'], '`--thread-num`: got `0`; allowed a whole number from 1 to 64'],
    [
      ['--part-size', '50KB'],
      '`--part-size`: got `50KB`; allowed 100KB to 5GB as bytes or with a unit (e.g. `8MiB`), or `auto`',
    ],
    [['--bucket', 'Bad_Bucket'], '`--bucket`: got `Bad_Bucket`; allowed 3-63 lowercase letters'],
    [['--progress', 'fancy'], '`--progress`: got `fancy`; allowed `bar`, `lines` or `none`'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
  ];
  for (const [extra, message] of cases) {
    const r = await cli([dir, '--bucket', 'test-bucket', '--endpoint', 'http://127.0.0.1:9', ...extra], {
      env: CREDS,
    });
    assert.equal(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(message), `${extra.join(' ')}: ${r.stderr}`);
  }
  const noCreds = await cli([dir, '--bucket', 'test-bucket', '--endpoint', 'http://127.0.0.1:9']);
  assert.equal(noCreds.code, 2);
  assert.match(noCreds.stderr, /credentials missing: set `--access-key-id` or OSS_ACCESS_KEY_ID/);
  const nothing = await cli(
    [join(dir, 'none/**'), '--bucket', 'test-bucket', '--endpoint', 'http://127.0.0.1:9'],
    {
      env: CREDS,
    },
  );
  assert.equal(nothing.code, 1);
  assert.match(nothing.stderr, /no files match/);
});

test('uploads a directory with a live progress bar and verified objects', async (t) => {
  const dir = await tempDir(t);
  const server = await startTestServer();
  t.after(() => server.close());
  await mkdir(join(dir, 'out/sub'), { recursive: true });
  const big = await randomFile(join(dir, 'out'), 'big.bin', 6 * MiB);
  const small = await randomFile(join(dir, 'out/sub'), 'ünï code +#%.txt', 1000);
  const r = await cli(
    [
      'out',
      '--bucket',
      'test-bucket',
      '--endpoint',
      server.url,
      '--destination',
      'v1',
      '--part-size',
      '1MiB',
      '--progress',
      'bar',
    ],
    { cwd: dir, env: CREDS },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`${esc(REDRAW)}\\[#{24}\\] 100\\.0% 6\\.0 MiB / 6\\.0 MiB .* · 2/2 files`),
  );
  // on a terminal the result lines share stderr with the bar; stdout keeps the table for scripts
  assert.match(
    r.stderr,
    new RegExp(`${esc(REDRAW)}uploaded v1/big\\.bin \\(6\\.0 MiB in [\\d.]+s, verified by crc64\\)\n`),
  );
  assert.doesNotMatch(r.stdout, /::debug::/);
  assert.match(r.stdout, /2 uploaded, 0 unchanged, 0 failed; 6\.0 MiB sent, 0 B resumed/);
  const client = clientFor(server);
  t.after(() => client.close());
  assert.ok((await readObject(client, 'test-bucket', 'v1/big.bin')).equals(big.data));
  assert.ok((await readObject(client, 'test-bucket', 'v1/sub/ünï code +#%.txt')).equals(small.data));
});

test('Ctrl-C leaves the upload resumable and the same command continues it', async (t) => {
  const dir = await tempDir(t);
  const server = await startTestServer();
  t.after(() => server.close());
  const big = await randomFile(dir, 'release.tar.gz', 32 * MiB);
  server.addFault({ operation: 'UploadPart', times: Infinity, action: { type: 'delay', ms: 100 } });
  const args = [
    'release.tar.gz',
    '--bucket',
    'test-bucket',
    '--endpoint',
    server.url,
    '--part-size',
    '1MiB',
    '--checkpoint-dir',
    join(dir, 'cp'),
    '--progress',
    'lines',
  ];
  const stored = (): number =>
    server.requests.filter((r) => r.operation === 'UploadPart' && r.status === 200).length;

  const first = start(args, { cwd: dir, env: CREDS });
  while (stored() < 8) await new Promise((r) => setTimeout(r, 10));
  first.child.kill('SIGINT');
  const r1 = await first.done;
  assert.equal(r1.code, 130, r1.stderr);
  assert.match(r1.stderr, /interrupted: checkpoints are in .*cp; run the same command again to continue/);
  // bodies already in flight may still land; wait for the server to settle before counting
  await new Promise((r) => setTimeout(r, 500));
  const before = stored();
  assert.ok(before >= 8 && before < 32, `stored ${before}`);

  server.clearFaults();
  const r2 = await cli(args, { cwd: dir, env: CREDS });
  assert.equal(r2.code, 0, r2.stderr);
  const resumedParts = Number(/resuming upload \w+: (\d+) of 32 parts/.exec(r2.stdout)?.[1]);
  assert.ok(resumedParts >= 8, r2.stdout);
  assert.match(
    r2.stdout,
    /uploaded release\.tar\.gz \(32\.0 MiB in [\d.]+s, [\d.]+ MiB resumed, verified by crc64\)/,
  );
  const sentAgain = stored() - before;
  assert.equal(sentAgain, 32 - resumedParts, 'only the missing parts are sent');
  const client = clientFor(server);
  t.after(() => client.close());
  assert.ok((await readObject(client, 'test-bucket', 'release.tar.gz')).equals(big.data));
});

test('--delete-orphans --dry-run uploads and deletes nothing and says what would happen; without --dry-run it happens', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const client = clientFor(server);
  t.after(() => client.close());
  const dir = await tempDir(t);
  await mkdir(join(dir, 'site'));
  await randomFile(join(dir, 'site'), 'index.html', 10);
  await client.putObject({ bucket: 'test-bucket', key: 'web/old.html', body: bufferBody('old') });
  const args = ['site', '--bucket', 'test-bucket', '--endpoint', server.url, '--destination', 'web'];
  const opts = { cwd: dir, env: { ...CREDS, XDG_CACHE_HOME: join(dir, 'cache') } };
  const keys = async () => (await client.listObjects({ bucket: 'test-bucket' })).map((o) => o.key);

  const dry = await cli([...args, '--delete-orphans', '--dry-run', '--progress', 'none'], opts);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /dry run: would delete orphan web\/old\.html/);
  assert.match(dry.stdout, /dry run: would upload \(new\) web\/index\.html/);
  assert.deepEqual(await keys(), ['web/old.html'], 'a dry run changes nothing');

  const real = await cli([...args, '--delete-orphans', '--progress', 'none'], opts);
  assert.equal(real.code, 0, real.stderr);
  assert.match(real.stdout, /1 orphan\(s\) under oss:\/\/test-bucket\/web\/, 1 deleted/);
  assert.deepEqual(await keys(), ['web/index.html']);
});
