/**
 * `npm run demo`: the action's main job against the embedded OSS-compatible server, as a runner runs it.
 * Attempt 1 is interrupted midway (SIGTERM, as a cancelled job); post saves its checkpoints to a local
 * Actions cache; attempt 2 (a re-run) restores them and sends only what is missing. No credentials,
 * network or setup beyond `npm ci`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RequestRecord, startServer } from '../src/server/index.ts';
import { OssClient } from '../src/oss/index.ts';
import { startCacheService } from '../test/helpers/cache-service.ts';
import { inputEnv, newJob, runJob } from '../test/helpers/action-runner.ts';

const MiB = 1024 * 1024;
const say = (line: string): void => void process.stdout.write(`${line}\n`);
/** The Actions cache library's own chatter (tar commands, transfer counters): not what the demo is about. */
const CACHE_NOISE =
  /^(\[command\]|Sent \d+ of|Received \d+ of|Cache Size:|Cache hit for|Cache restored successfully|Cache saved successfully)/;
const relay = (prefix: string) => (line: string) => {
  // the runner turns these commands into log features; show the text only
  if (/^::(add-mask|debug|endgroup)::/.test(line) || CACHE_NOISE.test(line)) return;
  say(`  ${prefix} | ${line.replace(/^::group::/, '')}`);
};

const work = await mkdtemp(join(tmpdir(), 'oss-demo-'));
const server = await startServer({ dataDir: join(work, 'oss-data'), buckets: ['demo-bucket'] });
const cache = await startCacheService();
try {
  say(
    `1/4 embedded OSS-compatible server listening on ${server.url} (bucket demo-bucket, data in ${join(work, 'oss-data')})`,
  );
  const ws = join(work, 'workspace');
  await mkdir(join(ws, 'site/assets'), { recursive: true });
  await writeFile(join(ws, 'site/release.tar.gz'), randomBytes(96 * MiB));
  await writeFile(join(ws, 'site/index.html'), '<!doctype html><title>demo</title><h1>Hello from OSS</h1>\n');
  await writeFile(join(ws, 'site/assets/app.js'), 'console.log("hello");\n');
  await writeFile(join(ws, 'site/assets/logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>\n');
  say('    sample set: site/release.tar.gz (96 MiB) and 3 small files');

  const inputs = {
    path: 'site/**',
    bucket: 'demo-bucket',
    endpoint: server.url,
    destination: 'releases/demo',
    'part-size': '4MiB',
    'thread-num': '4',
    'access-key-id': 'test-ak',
    'access-key-secret': 'test-sk',
  };
  const env = { ...inputEnv(inputs), ...cache.env };
  // slow the server down so the interruption lands midway on any machine
  server.addFault({ operation: 'UploadPart', times: Infinity, action: { type: 'delay', ms: 300 } });
  // attempt 1's parts carry the delay fault, attempt 2's none
  const partsStored = (which: (r: RequestRecord) => boolean = () => true): number =>
    server.requests.filter((r) => r.operation === 'UploadPart' && r.status === 200 && which(r)).length;

  say('2/4 attempt 1: node dist/index.js, interrupted with SIGTERM once the big file is under way');
  say('    (the server holds every UploadPart for 300 ms in this attempt, so the interruption lands midway)');
  let interrupted = false;
  let stopFirst: ((signal: NodeJS.Signals) => void) | undefined;
  const watch = setInterval(() => {
    if (interrupted || !stopFirst || partsStored() < 10) return;
    interrupted = true;
    say(
      `  >>> ${partsStored()} of 24 parts stored: interrupting attempt 1 now (SIGTERM, as when a job is cancelled)`,
    );
    stopFirst('SIGTERM');
  }, 20);
  const first = await runJob(await newJob(work, ws), env, (line, stop) => {
    stopFirst = stop;
    relay('attempt 1')(line);
  });
  clearInterval(watch);
  first.post.stdout.split('\n').filter(Boolean).forEach(relay('post 1'));
  say(`    attempt 1 ended with exit code ${first.main.code}; ${partsStored()} parts of 24 stored so far`);

  say('3/4 attempt 2 (re-run of the job): restores the checkpoints from the cache and resumes');
  server.clearFaults();
  const second = await runJob(
    await newJob(work, ws),
    { ...env, GITHUB_RUN_ATTEMPT: '2' },
    relay('attempt 2'),
  );
  if (second.main.code !== 0) throw new Error(`attempt 2 failed: ${second.main.stdout}${second.main.stderr}`);
  const sentNow = partsStored((r) => r.fault === undefined);

  const client = new OssClient({
    credentials: { accessKeyId: 'test-ak', accessKeySecret: 'test-sk' },
    endpoint: server.url,
  });
  const objects = await client.listObjects({ bucket: 'demo-bucket', prefix: 'releases/demo/' });
  // read every object back and compare it with the file it came from, byte for byte
  let identical = 0;
  for (const o of objects) {
    const { body } = await client.getObject({ bucket: 'demo-bucket', key: o.key });
    const stored = createHash('sha256');
    for await (const chunk of body) stored.update(chunk as Buffer);
    const local = createHash('sha256').update(
      await readFile(join(ws, 'site', o.key.slice('releases/demo/'.length))),
    );
    if (stored.digest('hex') === local.digest('hex')) identical++;
    else say(`    MISMATCH: ${o.key} differs from its file`);
  }
  await client.close();
  const resumed = Number(second.outputs['bytes-resumed']);
  // counted now: parts whose bodies were already in flight when attempt 1 stopped may still have been stored
  const sentBefore = partsStored((r) => r.fault === 'delay');
  say('4/4 result');
  say(
    `    bytes resumed from attempt 1: ${(resumed / MiB).toFixed(1)} MiB; parts sent by attempt 2: ${sentNow} (of 24)`,
  );
  say(
    `    uploaded-count=${second.outputs['uploaded-count']} bytes-uploaded=${second.outputs['bytes-uploaded']} bytes-resumed=${resumed}`,
  );
  for (const o of objects) say(`    ${server.url}/demo-bucket/${o.key}  (${o.size} bytes)`);
  say(`    read back: ${identical} of ${objects.length} objects are byte for byte their files (SHA-256)`);
  say(
    `demo: interrupted=${interrupted} resumed_bytes=${resumed} parts_attempt1=${sentBefore} parts_attempt2=${sentNow} objects=${objects.length} identical=${identical}`,
  );
} finally {
  await cache.close();
  await server.close();
  await rm(work, { recursive: true, force: true });
}
