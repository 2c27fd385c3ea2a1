// The action at its edges, run from the sources as the runner runs it: careless input, odd file names, log
// injection, and no green step unless every planned file reached a final state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { clientFor } from '../helpers/client.ts';
import { randomFile, tempDir } from '../helpers/files.ts';
import {
  type StepResult,
  inputEnv,
  mainOnly,
  newJob,
  oneFileStep,
  parseCommandFile,
  runStep,
} from '../helpers/action-runner.ts';
import { errorXml, startHostile } from './hostile.ts';
import { ProgressReporter, outputValues, resultLine, resultTable, totals } from '../../src/deploy/report.ts';
import { NO_CLEANUP } from '../../src/deploy/cleanup.ts';
import type { ProgressEvent, UploadOutcome, UploadResult } from '../../src/engine/index.ts';

const ROOT = join(import.meta.dirname, '../..');
const SOURCE = 'source';

/** Every object key the server holds. */
async function storedKeys(server: { url: string }): Promise<string[]> {
  const client = clientFor(server);
  try {
    return (await client.listObjects({ bucket: 'test-bucket' })).map((o) => o.key);
  } finally {
    await client.close();
  }
}

const errorLines = (r: StepResult): string[] => r.stdout.split('\n').filter((l) => l.startsWith('::error::'));

/** The step failed with an annotation that names `input` (and, when given, says what is wrong). */
function assertInputError(r: StepResult, input: string, what?: RegExp): void {
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const errors = errorLines(r);
  assert.ok(
    errors.some((l) => l.includes(`\`${input}\``) && (what === undefined || what.test(l))),
    `no ::error:: naming \`${input}\`${what ? ` and ${what}` : ''}:\n${r.stdout}`,
  );
}

test('header values and credentials the HTTP layer would refuse fail the step up front, naming the input; nothing is stored', async (t) => {
  const { server, dir, ws, base } = await oneFileStep(t, 'out/a.txt', 'out');
  const zeroWidthKey = 'test\u200b-ak';
  const cases: Array<{ inputs: Record<string, string>; input: string; what: RegExp }> = [
    {
      inputs: { headers: 'x-oss-meta-author: 日本' },
      input: 'headers',
      what: /x-oss-meta-author.*percent-encode/i,
    },
    { inputs: { 'cache-control': 'public, max-age=60 — forever' }, input: 'cache-control', what: /U\+2014/ },
    { inputs: { 'cache-control': 'public,\nmax-age=60' }, input: 'cache-control', what: /visible ASCII/ },
    { inputs: { 'content-type': 'text/plain; charset=ü' }, input: 'content-type', what: /U\+00FC/ },
    { inputs: { 'access-key-id': zeroWidthKey }, input: 'access-key-id', what: /character 5.*U\+200B/ },
    { inputs: { 'access-key-secret': 'test-\u00a0sk' }, input: 'access-key-secret', what: /U\+00A0/ },
  ];
  for (const c of cases) {
    const r = await mainOnly(dir, ws, { ...base, ...c.inputs }, {}, SOURCE);
    assertInputError(r, c.input, c.what);
    // the runner's mask command carries the secret by design; nothing else may
    const printed = r.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::'));
    assert.ok(!printed.some((l) => l.includes('test-\u00a0sk')), 'the secret is never echoed');
    assert.ok(!printed.some((l) => l.includes(zeroWidthKey)), 'the key id is never echoed');
  }
  assert.equal(server.requests.length, 0);
  assert.deepEqual(await storedKeys(server), []);
});

test('a Chinese Content-Disposition file name is sent per RFC 6266/5987 and read back from the stored object', async (t) => {
  const { server, dir, ws, base } = await oneFileStep(t, 'out/report.pdf', 'out');
  const r = await mainOnly(
    dir,
    ws,
    { ...base, headers: 'Content-Disposition: attachment; filename="报告 2024.pdf"' },
    {},
    SOURCE,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const client = clientFor(server);
  t.after(() => client.close());
  const stored = (await client.headObject({ bucket: 'test-bucket', key: 'report.pdf' })).headers[
    'content-disposition'
  ];
  assert.ok(stored, 'Content-Disposition stored');
  assert.match(stored, /^attachment; filename="[\x20-\x7e]+\.pdf"; filename\*=UTF-8''/);
  const encoded = /filename\*=UTF-8''([^;]+)/.exec(stored)![1]!;
  assert.match(encoded, /^[A-Za-z0-9!#$&+\-.^_`|~%]+$/, 'only attr-chars and percent escapes');
  assert.equal(decodeURIComponent(encoded), '报告 2024.pdf');
});

test('a run that stops with files still pending fails the step naming how many never finished (beforeExit guard)', async (t) => {
  const { dir, ws, base } = await oneFileStep(t, 'out/a.txt', 'out');
  await writeFile(join(ws, 'out/b.txt'), 'b');
  const job = await newJob(dir, ws);
  // the real entry and guard, with an engine that never settles and holds no handle: the event loop empties
  const script = `import { startMain } from ${JSON.stringify(join(ROOT, 'src/action/entry.ts'))};
startMain({ upload: () => new Promise(() => {}) });`;
  const r = await new Promise<StepResult>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '--eval', script], {
      cwd: ws,
      env: {
        PATH: process.env.PATH,
        GITHUB_ACTIONS: 'true',
        GITHUB_WORKSPACE: ws,
        RUNNER_TEMP: job.runnerTemp,
        GITHUB_OUTPUT: job.output,
        GITHUB_STATE: job.state,
        ...inputEnv(base),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(
    errorLines(r).join('\n'),
    /stopped without finishing: 2 file\(s\) never reached a final state/,
  );
  assert.equal(parseCommandFile(await readFile(job.output, 'utf8'))['uploaded-count'], undefined);
});

test('file names that are not UTF-8 fail the step by name before any upload', async (t) => {
  const { server, dir, ws, base } = await oneFileStep(t, 'out/good.txt', 'out');
  const out = join(ws, 'out');
  await writeFile(
    Buffer.concat([Buffer.from(`${out}/bad`), Buffer.from([0xff]), Buffer.from('byte.txt')]),
    'x',
  );
  await mkdir(join(out, 'sub'));
  await writeFile(
    Buffer.concat([Buffer.from(`${out}/sub/caf`), Buffer.from([0xe9]), Buffer.from('.txt')]),
    'x',
  );
  const r = await mainOnly(dir, ws, { ...base, 'if-no-files-found': 'ignore' }, {}, SOURCE);
  assertInputError(r, 'path');
  const errors = errorLines(r).join('\n');
  assert.ok(errors.includes('bad\\xffbyte.txt'), errors);
  assert.ok(errors.includes('caf\\xe9.txt'), errors);
  assert.deepEqual(await storedKeys(server), []);
});

/** Every line the runner would read as a workflow command is one the action itself issues, with its own text. */
function assertNoInjectedCommands(stdout: string): void {
  for (const raw of stdout.split(/\r\n|\r|\n/)) {
    const line = raw.trimStart();
    assert.ok(!line.includes('##['), `a v1 workflow command: ${raw}`);
    if (!line.startsWith('::')) continue;
    const command = /^::([a-z-]+)(?: [^:]*)?::/.exec(line)?.[1];
    assert.ok(
      ['error', 'add-mask', 'group', 'endgroup', 'debug', 'warning', 'notice'].includes(command ?? ''),
      `unexpected command: ${raw}`,
    );
    assert.doesNotMatch(line, /^::[a-z-]+(?: [^:]*)?::(INJECTED|SERVER|x$|evil)/, `injected: ${raw}`);
    if (command === 'add-mask') assert.equal(line, '::add-mask::test-sk', `injected mask: ${raw}`);
  }
}

test('file names, keys and server messages cannot inject workflow commands into the log', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  // a refusal whose message carries a line break and a command, for one key only
  const hostile = await startHostile((req, res) => {
    if (req.method !== 'PUT' || !req.path.endsWith('/refused.txt')) return false;
    res
      .writeHead(403, { 'content-type': 'application/xml', 'x-oss-request-id': 'hostile' })
      .end(errorXml('InvalidArgument', 'refused\n::warning::SERVER\r::add-mask::evil'));
    return true;
  }, server.url);
  t.after(() => hostile.close());
  const dir = await tempDir(t);
  const ws = join(dir, 'ws');
  await mkdir(join(ws, 'out'), { recursive: true });
  for (const name of [
    'x\n::warning::INJECTED',
    'y\r::add-mask::x',
    '::warning::evil',
    'refused.txt',
    '##[add-mask]x',
  ])
    await writeFile(join(ws, 'out', name), 'x');
  const inputs = {
    path: 'out',
    bucket: 'test-bucket',
    endpoint: hostile.url,
    'access-key-id': 'test-ak',
    'access-key-secret': 'test-sk',
    'cache-checkpoints': 'false',
  };
  const first = await mainOnly(dir, ws, inputs, {}, SOURCE);
  assert.equal(first.code, 1, first.stdout + first.stderr);
  assertNoInjectedCommands(first.stdout);
  // the second run finds the stored ones unchanged: another set of lines
  const second = await mainOnly(dir, ws, inputs, {}, SOURCE);
  assert.match(second.stdout, /unchanged /);
  assertNoInjectedCommands(second.stdout);
});

test('destination, header names, duplicate headers and endpoint user info are refused before any request', async (t) => {
  const { server, dir, ws, base } = await oneFileStep(t, 'out/a.txt', 'out');
  const cases: Array<{ inputs: Record<string, string>; input: string; what?: RegExp }> = [
    { inputs: { destination: 'web/\u0007bell' }, input: 'destination', what: /control/ },
    { inputs: { destination: 'web/a\nb' }, input: 'destination', what: /control/ },
    { inputs: { headers: 'x-oss-meta-: 1' }, input: 'headers', what: /x-oss-meta-/ },
    { inputs: { headers: 'x-oss-meta-ü: 1' }, input: 'headers', what: /x-oss-meta-ü/ },
    {
      inputs: { headers: 'X-Oss-Meta-Team: a\nContent-Language: en\nx-oss-meta-team: b' },
      input: 'headers',
      what: /X-Oss-Meta-Team: a.*x-oss-meta-team: b/,
    },
    { inputs: { endpoint: server.url.replace('//', '//deploy:hunter2@') }, input: 'endpoint' },
  ];
  for (const c of cases) {
    const r = await mainOnly(dir, ws, { ...base, ...c.inputs }, {}, SOURCE);
    assertInputError(r, c.input, c.what);
    // the runner's mask command carries it by design, so the runner hides it everywhere else
    const printed = r.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::'));
    assert.ok(!printed.some((l) => l.includes('hunter2')), 'the endpoint password is never printed');
  }
  assert.equal(server.requests.length, 0);
});

test('a checkpoint-dir inside the uploaded tree is left out of the files; one holding the files is refused', async (t) => {
  const { server, dir, ws, base } = await oneFileStep(t, 'out/a.txt', 'out');
  // a leftover of an earlier run on a persistent workspace
  await mkdir(join(ws, 'out/checkpoints'), { recursive: true });
  await writeFile(join(ws, 'out/checkpoints/old.json'), '{}');
  const r = await mainOnly(dir, ws, { ...base, 'checkpoint-dir': 'out/checkpoints' }, {}, SOURCE);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(await storedKeys(server), ['a.txt']);
  const holding = await mainOnly(dir, ws, { ...base, 'checkpoint-dir': ws }, {}, SOURCE);
  assertInputError(holding, 'checkpoint-dir');
});

test('progress never shows a negative rate when a retry takes bytes back', () => {
  const lines: string[] = [];
  let now = 0;
  const reporter = new ProgressReporter({ intervalMs: 1, now: () => now, write: (l) => lines.push(l) });
  const event = (bytesDone: number): ProgressEvent => ({
    file: '/w/big.bin',
    key: 'big.bin',
    bytesDone,
    bytesTotal: 100 * 1024 * 1024,
    bytesResumed: 0,
    partsDone: 0,
    partsTotal: 100,
  });
  reporter.onProgress(event(10 * 1024 * 1024));
  now = 1000;
  reporter.onProgress(event(1024 * 1024));
  assert.equal(lines.length, 1);
  assert.doesNotMatch(lines[0]!, /-\d/, lines[0]);
});

test('an object whose headers were updated in place is reported as such and counted in updated-count', () => {
  const result = {
    file: '/w/a.txt',
    key: 'a.txt',
    size: 10,
    etag: '"e"',
    crc64: '1',
    multipart: false,
    parts: 1,
    partSize: 10,
    bytesSent: 0,
    bytesResumed: 0,
    partsSent: 0,
    seconds: 0.1,
    verified: 'crc64',
    unchanged: true,
    headersUpdated: true,
  } as UploadResult;
  assert.match(resultLine(result), /^headers updated a\.txt \(.*same bytes, new headers; nothing re-sent\)/);
  const outcomes: UploadOutcome[] = [{ item: { file: result.file, key: result.key }, ok: true, result }];
  assert.match(resultTable(outcomes), /a\.txt .*headers updated/);
  const t1 = totals(outcomes, (k) => k);
  assert.deepEqual([t1.uploaded, t1.skipped, t1.updated], [0, 0, 1]);
  // and through the step's outputs
  const outputs = outputValues(t1, NO_CLEANUP);
  assert.equal(outputs['updated-count'], '1');
  assert.equal(outputs['skipped-count'], '0');
});

test('a cancelled run fails the step with an error and says which files did not finish', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  server.addFault({ operation: 'UploadPart', times: Infinity, action: { type: 'delay', ms: 200 } });
  const dir = await tempDir(t);
  const ws = join(dir, 'ws');
  await mkdir(join(ws, 'out'), { recursive: true });
  await randomFile(join(ws, 'out'), 'big.bin', 8 * 1024 * 1024);
  const job = await newJob(dir, ws);
  const env = inputEnv({
    path: 'out',
    bucket: 'test-bucket',
    endpoint: server.url,
    'part-size': '1MiB',
    'access-key-id': 'test-ak',
    'access-key-secret': 'test-sk',
    'cache-checkpoints': 'false',
  });
  let stopped = false;
  const r = await runStep(
    'main',
    job,
    env,
    (line, stop) => {
      if (!stopped && line.includes('file(s)')) {
        stopped = true;
        setTimeout(() => stop('SIGTERM'), 300);
      }
    },
    SOURCE,
  );
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(errorLines(r).join('\n'), /cancelled by SIGTERM.*big\.bin/);
});

test('a re-run with new headers and the same bytes reports "headers updated" and counts it in updated-count', async (t) => {
  const { server, dir, ws, base } = await oneFileStep(t, 'out/a.txt', 'out');
  const first = await mainOnly(dir, ws, { ...base, 'cache-control': 'no-cache' }, {}, SOURCE);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  server.clearRequests();
  const job = await newJob(dir, ws);
  const second = await runStep(
    'main',
    job,
    inputEnv({ ...base, 'cache-control': 'public, max-age=60' }),
    undefined,
    SOURCE,
  );
  assert.equal(second.code, 0, second.stdout + second.stderr);
  assert.match(second.stdout, /^headers updated a\.txt \(.*nothing re-sent\)$/m);
  const outputs = parseCommandFile(await readFile(job.output, 'utf8'));
  assert.deepEqual(
    [outputs['uploaded-count'], outputs['skipped-count'], outputs['updated-count']],
    ['0', '0', '1'],
  );
  assert.equal(server.requests.filter((r) => r.operation === 'PutObject').length, 0, 'no bytes re-sent');
  const client = clientFor(server);
  t.after(() => client.close());
  const stored = await client.headObject({ bucket: 'test-bucket', key: 'a.txt' });
  assert.equal(stored.headers['cache-control'], 'public, max-age=60');
});
