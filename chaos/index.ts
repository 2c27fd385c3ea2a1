/**
 * `npm run chaos -- --rounds N --seed S [--minutes M] [--big 100MiB] [--small 300]`
 *
 * Randomised fault injection with crash loops, seeded and reproducible: each round uploads a mix of files to our
 * OSS-compatible server while it injects faults and while the uploader process is SIGKILLed and started again
 * as a re-run would be. After each round every object is read back and compared with its file (CRC-64 and MD5),
 * no multipart upload may be left on the server, no checkpoint may be left behind, and no part may have been
 * stored more often than the faults and kills explain. Last line:
 *   chaos: rounds=N faults=F kills=K objects=O verified=V failures=X orphans=Y
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { OssClient, crc64 } from '../src/oss/index.ts';
import { type FaultAction, type FaultRule, type RequestRecord, startServer } from '../src/server/index.ts';
import { parseSize } from '../src/deploy/size.ts';
import { Random } from './random.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    minutes: { type: 'string' },
    big: { type: 'string', default: '100MiB' },
    small: { type: 'string', default: '300' },
    verbose: { type: 'boolean', default: false },
  },
});

const ROUNDS = Number(values.rounds);
const SEED = Number(values.seed);
const DEADLINE = values.minutes ? Date.now() + Number(values.minutes) * 60_000 : Infinity;
const BIG = parseSize(values.big) ?? 0;
const SMALL = Number(values.small);
const PART = 1024 * 1024;
const THREADS = 4;
const TIMEOUT_MS = 1500;
const MAX_ATTEMPTS = 12;
const BUCKET = 'chaos';

interface LocalFile {
  file: string;
  name: string;
  size: number;
  crc: bigint;
  md5: string;
}

function digest(data: Buffer): { crc: bigint; md5: string } {
  return { crc: crc64(data), md5: createHash('md5').update(data).digest('hex') };
}

async function makeFiles(dir: string, random: Random): Promise<LocalFile[]> {
  const sizes: Array<[string, number]> = [
    ['empty.bin', 0],
    ['one-byte.bin', 1],
    ['under-one-part.bin', PART - 1],
    ['one-part-and-a-byte.bin', PART + 1],
    ['big.bin', BIG],
  ];
  for (let i = 0; i < SMALL; i++)
    sizes.push([`small/f${String(i).padStart(4, '0')}.txt`, random.int(1, 20_000)]);
  await mkdir(join(dir, 'small'), { recursive: true });
  const files: LocalFile[] = [];
  for (const [name, size] of sizes) {
    // seeded bytes, so a seed reproduces the same files
    const words = new Uint32Array(Math.ceil(size / 4));
    for (let i = 0; i < words.length; i++) words[i] = (random.next() * 2 ** 32) >>> 0;
    const data = Buffer.from(words.buffer, 0, size);
    const file = join(dir, name);
    await writeFile(file, data);
    files.push({ file, name, size, ...digest(data) });
  }
  return files;
}

type FaultKind =
  'http5xx' | 'http429' | 'reset' | 'timeout' | 'skew' | 'forgetUpload' | 'completeThen500' | 'badCrc';
const KINDS: readonly FaultKind[] = [
  'http5xx',
  'http429',
  'reset',
  'timeout',
  'skew',
  'forgetUpload',
  'completeThen500',
  'badCrc',
];
const DATA_OPS = ['UploadPart', 'PutObject'] as const;

function randomFault(random: Random): { kind: FaultKind; rule: FaultRule } {
  const kind = random.pick(KINDS);
  const nth = random.int(1, 40);
  const times = random.int(1, 3);
  const anyOp = random.pick([
    'UploadPart',
    'PutObject',
    'InitiateMultipartUpload',
    'CompleteMultipartUpload',
    'ListParts',
  ] as const);
  const make = (
    action: FaultAction,
    operation: FaultRule['operation'],
    n = nth,
    t = times,
  ): { kind: FaultKind; rule: FaultRule } => ({
    kind,
    rule: { operation, nth: n, times: t, action },
  });
  switch (kind) {
    case 'http5xx':
      return make(
        random.pick([
          { type: 'error', status: 500, code: 'InternalError' },
          { type: 'error', status: 503, code: 'ServiceUnavailable' },
        ] as const),
        anyOp,
      );
    case 'http429':
      return make({ type: 'error', status: 429, code: 'TooManyRequests' }, anyOp);
    case 'reset':
      return make({ type: 'reset', afterBytes: random.int(0, 300_000) }, random.pick(DATA_OPS));
    case 'timeout':
      return make(
        { type: 'delay', ms: TIMEOUT_MS + 700 },
        random.pick([...DATA_OPS, 'CompleteMultipartUpload'] as const),
        nth,
        1,
      );
    case 'skew':
      return make({ type: 'skew' }, anyOp);
    case 'forgetUpload':
      return make({ type: 'forgetUpload' }, 'UploadPart', nth, 1);
    case 'completeThen500':
      return make({ type: 'completeThen500' }, 'CompleteMultipartUpload', 1, 1);
    case 'badCrc':
      return make({ type: 'badCrc' }, random.pick([...DATA_OPS, 'CompleteMultipartUpload'] as const), nth, 1);
  }
}

/**
 * Run the uploader once. `killAtRequest` SIGKILLs it once the server has answered that many of its requests, so
 * kills land mid-upload whatever the machine's speed.
 */
function runUploader(
  job: object,
  killAtRequest: number | undefined,
  answered: () => number,
): Promise<'ok' | 'failed' | 'killed'> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'uploader.ts'), JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const start = answered();
    const watch =
      killAtRequest === undefined
        ? undefined
        : setInterval(() => {
            if (answered() - start >= killAtRequest) child.kill('SIGKILL');
          }, 2);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearInterval(watch);
      if (signal === 'SIGKILL') return resolve('killed');
      if (values.verbose && code !== 0) process.stdout.write(`    attempt failed: ${out.trim()}\n`);
      resolve(code === 0 ? 'ok' : 'failed');
    });
  });
}

const work = await mkdtemp(join(tmpdir(), 'oss-chaos-'));
const random = new Random(SEED);
const server = await startServer({ dataDir: join(work, 'data'), buckets: [BUCKET] });
const client = new OssClient({
  credentials: { accessKeyId: 'test-ak', accessKeySecret: 'test-sk' },
  endpoint: server.url,
});
const totals = { rounds: 0, faults: 0, kills: 0, objects: 0, verified: 0, failures: 0, orphans: 0 };
const faultsByKind = new Map<string, number>();
let bytesNeeded = 0;
let bytesStored = 0;
let partsResent = 0;
const problems: string[] = [];

try {
  const files = await makeFiles(join(work, 'files'), random);
  const totalSize = files.reduce((s, f) => s + f.size, 0);
  process.stdout.write(
    `chaos: seed ${SEED}, ${files.length} files (${(totalSize / 1024 / 1024).toFixed(1)} MiB) per round, part size ${PART} B, ${THREADS} parallel, request timeout ${TIMEOUT_MS} ms\n`,
  );
  // one request per small file, and Initiate, parts and Complete for each multipart one
  const requestsPerRun = files.reduce((n, f) => n + (f.size <= PART ? 1 : Math.ceil(f.size / PART) + 2), 0);
  for (let round = 1; round <= ROUNDS && Date.now() < DEADLINE; round++) {
    const prefix = `r${round}/`;
    const checkpointDir = join(work, `cp-${round}`);
    const job = {
      url: server.url,
      bucket: BUCKET,
      files: files.map((f) => ({ file: f.file, key: prefix + f.name })),
      checkpointDir,
      partSize: PART,
      threadNum: THREADS,
      timeoutMs: TIMEOUT_MS,
    };
    const planned = Array.from({ length: random.int(1, 4) }, () => randomFault(random));
    for (const f of planned) server.addFault(f.rule);

    let kills = 0;
    let outcome: 'ok' | 'failed' | 'killed' = 'failed';
    for (let attempt = 1; attempt <= MAX_ATTEMPTS && outcome !== 'ok'; attempt++) {
      // a crash loop: up to two kills per round at random moments, then runs that may finish
      const killAt = kills < 2 && random.chance(0.45) ? random.int(1, requestsPerRun) : undefined;
      if (attempt === MAX_ATTEMPTS / 2) server.clearFaults();
      outcome = await runUploader(job, killAt, () => server.requests.length);
      if (outcome === 'killed') kills++;
    }

    const requests: RequestRecord[] = [...server.requests];
    const injected = requests.filter((r) => r.fault !== undefined);
    for (const r of injected) {
      const kind =
        r.fault === 'error'
          ? r.status === 429
            ? 'http429'
            : 'http5xx'
          : r.fault === 'delay'
            ? 'timeout'
            : r.fault!;
      faultsByKind.set(kind, (faultsByKind.get(kind) ?? 0) + 1);
    }
    const roundProblems: string[] = [];
    if (outcome !== 'ok') roundProblems.push(`uploads still failing after ${MAX_ATTEMPTS} attempts`);

    // every object byte-identical to its file
    let verified = 0;
    for (const f of files) {
      const key = prefix + f.name;
      try {
        const { body } = await client.getObject({ bucket: BUCKET, key });
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        const got = digest(Buffer.concat(chunks));
        if (got.crc === f.crc && got.md5 === f.md5) verified++;
        else roundProblems.push(`${key}: stored bytes differ from the file`);
      } catch (e) {
        roundProblems.push(`${key}: ${(e as Error).message}`);
      }
    }
    // nothing left behind: no multipart upload (success deletes every checkpoint), no checkpoint
    const uploads = await client.listMultipartUploads({ bucket: BUCKET, prefix });
    for (const u of uploads)
      await client.abortMultipartUpload({ bucket: BUCKET, key: u.key, uploadId: u.uploadId });
    if (uploads.length > 0)
      roundProblems.push(
        `${uploads.length} multipart upload(s) left on the server: ${uploads.map((u) => u.key).join(', ')}`,
      );
    const leftCheckpoints = await readdir(checkpointDir).catch(() => [] as string[]);
    if (outcome === 'ok' && leftCheckpoints.length > 0)
      roundProblems.push(
        `${leftCheckpoints.length} checkpoint file(s) left after success: ${leftCheckpoints.join(', ')}`,
      );

    // no part stored more often than the faults and kills explain
    const stored = new Map<string, number>();
    for (const r of requests) {
      if (r.operation === 'UploadPart' && r.status === 200) {
        const id = `${r.uploadId}:${r.partNumber}`;
        stored.set(id, (stored.get(id) ?? 0) + 1);
      }
      if ((r.operation === 'UploadPart' || r.operation === 'PutObject') && r.status === 200)
        bytesStored += r.bytesReceived;
    }
    const resent = [...stored.values()].reduce((s, n) => s + n - 1, 0);
    const explained =
      injected.filter((r) => r.operation === 'UploadPart' && (r.fault === 'badCrc' || r.fault === 'delay'))
        .length +
      kills * THREADS;
    if (resent > explained)
      roundProblems.push(`${resent} part(s) stored twice, only ${explained} explained by faults and kills`);
    partsResent += resent;
    bytesNeeded += totalSize;

    totals.rounds++;
    totals.faults += injected.length;
    totals.kills += kills;
    totals.objects += files.length;
    totals.verified += verified;
    totals.orphans += uploads.length;
    if (roundProblems.length > 0) {
      totals.failures++;
      problems.push(...roundProblems.map((p) => `round ${round}: ${p}`));
    }
    process.stdout.write(
      `round ${round}: faults ${injected.length} (${planned.map((p) => p.kind).join(', ')}), kills ${kills}, verified ${verified}/${files.length}${roundProblems.length ? `, PROBLEMS: ${roundProblems.join('; ')}` : ''}\n`,
    );

    server.clearFaults();
    server.clearRequests();
    await client
      .deleteObjects({ bucket: BUCKET, keys: files.map((f) => prefix + f.name) })
      .catch(() => undefined);
    await rm(checkpointDir, { recursive: true, force: true });
  }

  process.stdout.write(
    `faults by kind: ${[...faultsByKind].map(([k, n]) => `${k}=${n}`).join(' ') || 'none'}\n`,
  );
  process.stdout.write(
    `bytes stored ${(bytesStored / 1024 / 1024).toFixed(1)} MiB for ${(bytesNeeded / 1024 / 1024).toFixed(1)} MiB needed (x${(bytesStored / Math.max(1, bytesNeeded)).toFixed(2)}); parts stored twice ${partsResent}\n`,
  );
  for (const p of problems) process.stdout.write(`FAILURE ${p}\n`);
  process.stdout.write(
    `chaos: rounds=${totals.rounds} faults=${totals.faults} kills=${totals.kills} objects=${totals.objects} verified=${totals.verified} failures=${totals.failures} orphans=${totals.orphans}\n`,
  );
  process.exitCode = totals.failures === 0 && totals.orphans === 0 ? 0 : 1;
} finally {
  await client.close();
  await server.close();
  await rm(work, { recursive: true, force: true });
}
