// A careless (or malicious) user and an odd runner against the action and the command line. Each test asserts the
// promised behaviour and FAILS today: the comment above it says what it shows. Everything is bounded: tests carry
// a timeout and every child process a kill timer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { clientFor, readObject } from '../helpers/client.ts';
import { tempDir } from '../helpers/files.ts';
import {
  type StepResult,
  inputEnv,
  mainOnly,
  newJob,
  oneFileStep,
  runStep,
} from '../helpers/action-runner.ts';
import { errorXml, startHostile } from './hostile.ts';
import { type InputSource, readSettings as readInputs } from '../../src/deploy/settings.ts';
import { bufferBody } from '../../src/oss/index.ts';

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'src/cli/index.ts');
const CREDS = { OSS_ACCESS_KEY_ID: 'test-ak', OSS_ACCESS_KEY_SECRET: 'test-sk' };
const SOURCE = 'source';
const T = { timeout: 30_000 };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The command line from the sources, killed after 20 s so that no test can hang. */
function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: cwd, ...CREDS, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Inputs as a plain map, for the validation alone. */
function inputs(over: Record<string, string>): InputSource {
  const all: Record<string, string> = {
    path: 'out',
    bucket: 'test-bucket',
    endpoint: 'http://127.0.0.1:9000',
    'access-key-id': 'test-ak',
    'access-key-secret': 'test-sk',
    ...over,
  };
  return { get: (n) => all[n] ?? '', env: {}, mask: () => undefined };
}

/** readInputs throws an error naming `input` (as every bad input must). */
function assertRefused(over: Record<string, string>, input: string, what?: RegExp): void {
  assert.throws(
    () => readInputs(inputs(over)),
    (e: Error) => {
      assert.match(e.message, new RegExp(`input \`${input}\``), e.message);
      if (what) assert.match(e.message, what);
      return true;
    },
    `${JSON.stringify(over)} was accepted`,
  );
}

// DATA LOSS. `--overwrite false` (the natural way to write it; the flag is boolean, the right form is
// `--no-overwrite`) leaves `--overwrite` on and turns `false` into one more path. A path that matches nothing is
// dropped without a word when another path matches, and `false` also moves the common root up, so the keys change
// too: the run replaces the object the user asked to keep and exits 0.
test(
  'CLI: `--overwrite false` never replaces an existing object (a path that matches nothing is an error)',
  T,
  async (t) => {
    const server = await startTestServer();
    t.after(() => server.close());
    const dir = await tempDir(t);
    await mkdir(join(dir, 'out'));
    await writeFile(join(dir, 'out/a.txt'), 'new bytes');
    const client = clientFor(server);
    t.after(() => client.close());
    // what the user already has, under both keys this run could pick
    for (const key of ['a.txt', 'out/a.txt'])
      await client.putObject({ bucket: 'test-bucket', key, body: bufferBody('keep me') });
    const r = await cli(
      [
        'out',
        '--bucket',
        'test-bucket',
        '--endpoint',
        server.url,
        '--progress',
        'none',
        '--overwrite',
        'false',
      ],
      dir,
    );
    for (const key of ['a.txt', 'out/a.txt'])
      assert.equal(
        (await readObject(client, 'test-bucket', key)).toString(),
        'keep me',
        `${key} was replaced although the user said --overwrite false (exit ${r.code}):\n${r.stdout}${r.stderr}`,
      );
    assert.notEqual(r.code, 0, 'a command whose path `false` matched nothing does not exit 0');
  },
);

// SECRET LEAK. The command line has no log masking (`mask: () => undefined` in src/cli/main.ts) and prints a server
// error Message as it came. A server (or a proxy, or a misconfigured endpoint) that echoes the request headers puts
// the STS security token on stdout: in a CI log outside GitHub, or a GitHub job whose token is not a repo secret
// (e.g. fetched by a previous step), it is there in clear.
test('CLI: an STS token echoed by the server in an error Message is never printed', T, async (t) => {
  const token = 'CAIS-attack-user-sts-token-0123456789abcdef';
  const hostile = await startHostile((req, res) => {
    res.writeHead(403, { 'content-type': 'application/xml', 'x-oss-request-id': 'hostile' });
    res.end(
      errorXml(
        'AccessDenied',
        `denied; token ${String(req.headers['x-oss-security-token'])}; ${String(req.headers.authorization)}`,
      ),
    );
    return true;
  });
  t.after(() => hostile.close());
  const dir = await tempDir(t);
  await mkdir(join(dir, 'out'));
  await writeFile(join(dir, 'out/a.txt'), 'a');
  const r = await cli(
    ['out', '--bucket', 'test-bucket', '--endpoint', hostile.url, '--progress', 'lines'],
    dir,
    { OSS_SESSION_TOKEN: token },
  );
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.ok(hostile.requests.length > 0, 'the server was asked');
  assert.ok(!(r.stdout + r.stderr).includes(token), `the token was printed:\n${r.stdout}${r.stderr}`);
});

// BAD MESSAGE / silent wrong headers. `headers` as JSON: JSON.parse keeps the last of two identical member names,
// so `{"x-oss-meta-a":"1","x-oss-meta-a":"2"}` loses a value silently, while the same two as lines (or with
// different case) are refused as "each header once". src/action/inputs.ts headerLines (JSON branch).
test('headers JSON with the same member twice is refused like the line form', T, () => {
  assertRefused({ headers: 'x-oss-meta-a: 1\nx-oss-meta-a: 2' }, 'headers', /both set/); // holds today
  assertRefused({ headers: '{"x-oss-meta-a":"1","x-oss-meta-a":"2"}' }, 'headers', /x-oss-meta-a/);
});

// BAD MESSAGE / silent wrong headers. JSON members that are not strings are stringified: `null` becomes the
// header value "null", an object becomes `{"c":1}`, an array `[1,2]`. The error text elsewhere promises "a JSON
// object of strings"; a templated `${{ toJSON(...) }}` gone wrong is stored as metadata instead of refused.
// src/action/inputs.ts headerLines: `typeof v === 'string' ? v : JSON.stringify(v)`.
test('headers JSON members that are null, objects or arrays are refused, naming the member', T, () => {
  for (const value of ['null', '{"c":1}', '[1,2]']) {
    assertRefused({ headers: `{"x-oss-meta-a":${value}}` }, 'headers', /x-oss-meta-a/);
  }
});

// BAD MESSAGE. `endpoint` says "an http(s) origin without a path or query", but a fragment, an empty query (`?`)
// and port 0 pass: the fragment and `?` are dropped without a word and port 0 fails later at connect time.
// src/oss/endpoint.ts parseEndpoint checks pathname and `search` only (`url.search` is '' for a bare `?`).
test('an endpoint with a fragment, an empty query or port 0 is refused naming `endpoint`', T, () => {
  for (const endpoint of [
    'http://127.0.0.1:9000#frag',
    'http://127.0.0.1:9000/?',
    'https://oss-cn-hangzhou.aliyuncs.com:0',
  ])
    assertRefused({ endpoint }, 'endpoint');
});

// BAD MESSAGE. `region: cn-hangzhou-internal` (a natural guess for the internal endpoint) passes the region check;
// the host happens to come out right but V4 signs with the region `cn-hangzhou-internal`, so every request fails
// with SignatureDoesNotMatch far from the cause. src/oss/endpoint.ts REGION accepts any `xx-...` suffix.
test('a region ending in -internal is refused, pointing at `internal: true`', T, () => {
  assertRefused({ endpoint: '', region: 'cn-hangzhou-internal' }, 'region', /internal/);
});

// BAD MESSAGE. A checkpoint-dir that is a file is not checked up front: the step goes on to upload, every file
// fails with a bare `ENOTDIR: not a directory, lstat '.../afile/<hash>.cp'` (even a 1-byte file that needs no
// checkpoint), and nothing names the input `checkpoint-dir`.
test(
  'a checkpoint-dir that is a file fails the step naming `checkpoint-dir`, before any request',
  T,
  async (t) => {
    const { server, dir, ws, base } = await oneFileStep(t, 'out/a.txt', 'out');
    await writeFile(join(dir, 'afile'), 'not a dir');
    const r = await mainOnly(dir, ws, { ...base, 'checkpoint-dir': join(dir, 'afile') }, {}, SOURCE);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok(
      r.stdout.split('\n').some((l) => l.startsWith('::error::') && l.includes('`checkpoint-dir`')),
      `no error names checkpoint-dir:\n${r.stdout}`,
    );
    // not even the listing, which otherwise starts as soon as the plan is made
    assert.deepEqual(
      server.requests.map((q) => q.operation),
      [],
      'nothing is sent',
    );
  },
);

// MINOR / odd runner. GITHUB_STEP_SUMMARY that cannot be written (a directory here; a full disk or a read-only
// mount on a self-hosted runner) fails a step whose uploads all verified, with a bare
// `EISDIR: illegal operation on a directory, open '...'` naming neither the summary nor that the objects are
// stored. The summary is a report, not a deliverable: src/action/main.ts `await writeSummary(...)` is not guarded.
test(
  'an unwritable step summary is a warning, not a failed step, when every object is stored and verified',
  T,
  async (t) => {
    const { dir, ws, base } = await oneFileStep(t, 'out/a.txt', 'out');
    const job = await newJob(dir, ws);
    const r: StepResult = await runStep(
      'main',
      job,
      { ...inputEnv(base), GITHUB_STEP_SUMMARY: dir },
      undefined,
      SOURCE,
    );
    assert.match(await readFile(job.output, 'utf8'), /uploaded-count/, 'outputs were written');
    assert.equal(r.code, 0, `the step failed after a verified upload:\n${r.stdout}`);
    assert.match(r.stdout, /::warning::.*summary/i);
  },
);

// MINOR (log spoofing). Control characters in file names are escaped in every line, but the Unicode bidi
// controls (U+202A-U+202E, U+2066-U+2069) are not: `invoice\u202Etxt.exe` shows as `invoiceexe.txt` in a log, so
// the key the reader sees is not the key that was stored (Trojan Source). src/action/log-line.ts UNPRINTABLE.
test('bidi control characters in file names are shown escaped in the command line output', T, async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const dir = await tempDir(t);
  await mkdir(join(dir, 'out'));
  const name = 'invoice\u202etxt.exe';
  await writeFile(join(dir, 'out', name), 'x');
  const r = await cli(
    ['out', '--bucket', 'test-bucket', '--endpoint', server.url, '--progress', 'lines'],
    dir,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(
    !/[\u202a-\u202e\u2066-\u2069]/.test(r.stdout + r.stderr),
    `raw bidi control printed:\n${r.stdout}`,
  );
});

// BAD MESSAGE. A path with a `..` segment (`out/../out/a.txt`, a common way to reach a sibling of the workspace
// directory a job runs in) is refused by @actions/glob with a plain Error: the action fails with
// `Invalid pattern ... Relative pathing '.' and '..' is not allowed.` without naming the input `path` or what is
// allowed, and the command line exits 1 (an upload failed) instead of 2 (bad usage). src/action/files.ts findFiles
// lets glob.create's error through; src/cli/main.ts catches only InputError.
test(
  'a path with a `..` segment is bad usage naming the paths: exit 2 on the command line, `path` in the action',
  T,
  async (t) => {
    const { dir, ws, base } = await oneFileStep(t, 'out/a.txt', 'out');
    const r = await cli(
      ['./out/../out/a.txt', '--bucket', 'test-bucket', '--endpoint', 'http://127.0.0.1:9'],
      ws,
    );
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const a = await mainOnly(dir, ws, { ...base, path: 'out/../out/a.txt' }, {}, SOURCE);
    assert.equal(a.code, 1);
    assert.ok(
      a.stdout.split('\n').some((l) => l.startsWith('::error::') && l.includes('input `path`')),
      `no error names input \`path\`:\n${a.stdout}`,
    );
  },
);
