// The command line at its edges, run from the sources: careless input, odd file names, log injection when it
// runs inside a workflow, and no exit 0 unless every planned file reached a final state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { clientFor } from '../helpers/client.ts';
import { randomFile, tempDir } from '../helpers/files.ts';
import { errorXml, startHostile } from './hostile.ts';
import { ProgressBar } from '../../src/cli/progress-bar.ts';
import type { ProgressEvent } from '../../src/engine/index.ts';

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'src/cli/index.ts');
const CREDS = { OSS_ACCESS_KEY_ID: 'test-ak', OSS_ACCESS_KEY_SECRET: 'test-sk' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function node(
  args: string[],
  opts: { cwd: string; env?: Record<string, string> },
  onStdout?: (text: string, kill: (s: NodeJS.Signals) => void) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH, HOME: opts.cwd, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      onStdout?.(stdout, (s) => child.kill(s));
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const cli = (args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> =>
  node([CLI, ...args, '--progress', 'lines'], { cwd, env: { ...CREDS, ...env } });

/** A server and a directory `out` holding `a.txt`; `args` upload it there. */
async function setUp(t: Parameters<typeof tempDir>[0]) {
  const server = await startTestServer();
  t.after(() => server.close());
  const dir = await tempDir(t);
  await mkdir(join(dir, 'out'));
  await writeFile(join(dir, 'out/a.txt'), 'a');
  const args = ['out', '--bucket', 'test-bucket', '--endpoint', server.url];
  const keys = async (): Promise<string[]> => {
    const client = clientFor(server);
    try {
      return (await client.listObjects({ bucket: 'test-bucket' })).map((o) => o.key);
    } finally {
      await client.close();
    }
  };
  return { server, dir, args, keys };
}

test('header values and credentials the HTTP layer would refuse exit 2 up front, naming the option; nothing is stored', async (t) => {
  const { server, dir, args, keys } = await setUp(t);
  const cases: Array<{ extra: string[]; env?: Record<string, string>; what: RegExp }> = [
    { extra: ['--header', 'x-oss-meta-author: 日本'], what: /`--header`.*percent-encode/i },
    { extra: ['--cache-control', 'public — forever'], what: /`--cache-control`.*U\+2014/ },
    { extra: ['--content-type', 'text/plain; charset=ü'], what: /`--content-type`.*U\+00FC/ },
    {
      extra: [],
      env: { OSS_ACCESS_KEY_ID: 'test\u200b-ak' },
      what: /OSS_ACCESS_KEY_ID.*character 5.*U\+200B/,
    },
  ];
  for (const c of cases) {
    const r = await cli([...args, ...c.extra], dir, c.env);
    assert.equal(r.code, 2, `${c.extra.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, c.what);
    assert.ok(!r.stderr.includes('test\u200b-ak'), 'the key id is never echoed');
  }
  assert.equal(server.requests.length, 0);
  assert.deepEqual(await keys(), []);
});

test('a Chinese Content-Disposition file name is sent per RFC 6266/5987', async (t) => {
  const { server, dir, args } = await setUp(t);
  const r = await cli([...args, '--header', 'Content-Disposition: attachment; filename="报告.pdf"'], dir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const client = clientFor(server);
  t.after(() => client.close());
  const stored = (await client.headObject({ bucket: 'test-bucket', key: 'a.txt' })).headers[
    'content-disposition'
  ];
  assert.match(
    stored ?? '',
    /^attachment; filename="[\x20-\x7e]+\.pdf"; filename\*=UTF-8''%E6%8A%A5%E5%91%8A\.pdf$/,
  );
});

test('a run that stops with files still pending exits non-zero naming how many never finished (beforeExit guard)', async (t) => {
  const { dir, args } = await setUp(t);
  await writeFile(join(dir, 'out/b.txt'), 'b');
  // the real entry and guard, with an engine that never settles and holds no handle: the event loop empties
  const script = `import { startCli } from ${JSON.stringify(join(ROOT, 'src/cli/entry.ts'))};
startCli(${JSON.stringify(args)}, { upload: () => new Promise(() => {}) });`;
  const r = await node(['--input-type=module', '--eval', script], { cwd: dir, env: CREDS });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /stopped without finishing: 2 file\(s\) never reached a final state/);
});

test('file names that are not UTF-8 are named in an error and nothing is uploaded', async (t) => {
  const { server, dir, args, keys } = await setUp(t);
  await writeFile(
    Buffer.concat([Buffer.from(`${dir}/out/bad`), Buffer.from([0xff]), Buffer.from('byte.txt')]),
    'x',
  );
  const r = await cli(args, dir);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes('bad\\xffbyte.txt'), r.stderr);
  assert.equal(server.requests.length, 0);
  assert.deepEqual(await keys(), []);
});

test('inside a workflow, file names and server messages cannot inject workflow commands', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const hostile = await startHostile((req, res) => {
    if (req.method !== 'PUT' || !req.path.endsWith('/refused.txt')) return false;
    res
      .writeHead(403, { 'content-type': 'application/xml' })
      .end(errorXml('InvalidArgument', 'refused\n::warning::SERVER'));
    return true;
  }, server.url);
  t.after(() => hostile.close());
  const dir = await tempDir(t);
  await mkdir(join(dir, 'out'));
  for (const name of ['x\n::warning::INJECTED', '::add-mask::evil', 'refused.txt'])
    await writeFile(join(dir, 'out', name), 'x');
  const r = await cli(['out', '--bucket', 'test-bucket', '--endpoint', hostile.url], dir, {
    GITHUB_ACTIONS: 'true',
  });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  // nothing the command prints is a workflow command
  for (const line of `${r.stdout}\n${r.stderr}`.split(/\r\n|\r|\n/)) {
    const text = line.trimStart();
    assert.ok(!text.includes('##['), `a v1 workflow command: ${line}`);
    assert.ok(!text.startsWith('::'), `a workflow command: ${line}`);
  }
  assert.match(r.stdout, /x\\n::warning::INJECTED/, 'the name is shown, escaped');
});

test('destination, header names, duplicate headers and endpoint user info exit 2 before any request', async (t) => {
  const { server, dir, args } = await setUp(t);
  const cases: string[][] = [
    ['--destination', 'web/a\nb'],
    ['--header', 'x-oss-meta-: 1'],
    ['--header', 'x-oss-meta-ü: 1'],
    ['--header', 'x-oss-meta-team: a', '--header', 'X-OSS-META-TEAM: b'],
    ['--endpoint', server.url.replace('//', '//deploy:hunter2@')],
  ];
  for (const extra of cases) {
    const r = await cli([...args, ...extra], dir);
    assert.equal(r.code, 2, `${extra.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /`--(destination|header|endpoint)`/);
    assert.ok(!r.stderr.includes('hunter2'), 'the endpoint password is never printed');
  }
  assert.equal(server.requests.length, 0);
});

test('a --checkpoint-dir inside the uploaded tree is left out of the files', async (t) => {
  const { dir, args, keys } = await setUp(t);
  await mkdir(join(dir, 'out/cp'));
  await writeFile(join(dir, 'out/cp/left-over.json'), '{}');
  const r = await cli([...args, '--checkpoint-dir', 'out/cp'], dir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(await keys(), ['a.txt']);
});

test('the progress bar never shows a negative rate when a retry takes bytes back', () => {
  let now = 0;
  const bar = new ProgressBar({ totalBytes: 100e6, totalFiles: 1, write: () => undefined, now: () => now });
  const event: ProgressEvent = {
    file: '/w/big.bin',
    key: 'big.bin',
    bytesDone: 0,
    bytesResumed: 50e6,
    bytesTotal: 100e6,
    partsDone: 0,
    partsTotal: 10,
  };
  // resumed bytes found, then a retry takes back what this run had sent
  bar.onProgress({ ...event, bytesDone: 40e6 });
  now = 1000;
  assert.doesNotMatch(bar.line(now), /-\d/, bar.line(now));
});

test('an interrupted run exits 130; a run whose sending fails exits 1', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  server.addFault({ operation: 'UploadPart', times: Infinity, action: { type: 'delay', ms: 1000 } });
  const dir = await tempDir(t);
  await randomFile(dir, 'big.bin', 8 * 1024 * 1024);
  const args = [CLI, 'big.bin', '--bucket', 'test-bucket', '--endpoint', server.url, '--part-size', '1MiB'];
  let killed = false;
  const interrupted = await node([...args, '--progress', 'lines'], { cwd: dir, env: CREDS }, (text, kill) => {
    if (!killed && text.includes('file(s)')) {
      killed = true;
      setTimeout(() => kill('SIGINT'), 300);
    }
  });
  assert.equal(interrupted.code, 130, interrupted.stderr);
  server.clearFaults();
  server.addFault({
    operation: 'UploadPart',
    times: Infinity,
    action: { type: 'error', status: 403, code: 'AccessDenied' },
  });
  const failed = await cli(
    ['big.bin', '--bucket', 'test-bucket', '--endpoint', server.url, '--part-size', '1MiB'],
    dir,
  );
  assert.equal(failed.code, 1, failed.stdout + failed.stderr);
});
