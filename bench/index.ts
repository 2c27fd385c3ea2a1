/**
 * `npm run bench [-- --size 1GiB --threads 4 --part-size 8MiB --runs 3 --small 2000]`
 *
 * Measures, in one run on this machine: CRC-64 and MD5 hashing speed; a large-file upload by our engine,
 * by ali-oss at its defaults and at our settings, and by a raw undici PUT of the same ranges (the loopback
 * limit), all to one discard sink in its own process; many small files; and the cost of a resume after a
 * kill at about 50%. Figures vary between runs on a shared machine, so only ratios within one run compare.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { crc64 } from '../src/oss/crc64.ts';
import { parseSize } from '../src/deploy/size.ts';
import { buildGoPeer, goArgs } from './go-peer.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    threads: { type: 'string', default: '4' },
    'part-size': { type: 'string', default: '8MiB' },
    runs: { type: 'string', default: '3' },
    small: { type: 'string', default: '2000' },
    'small-threads': { type: 'string', default: '16' },
  },
});

/** Sizes as everywhere in the project (`parseSize`: 1024-based units); a bad one names the flag. */
function bytesOf(flag: string, text: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined) throw new Error(`--${flag}: got \`${text}\`; allowed e.g. 256MiB, 1GiB, 1048576`);
  return bytes;
}

const size = bytesOf('size', values.size);
const partSize = bytesOf('part-size', values['part-size']);
const threads = Number(values.threads);
const runs = Number(values.runs);
const smallCount = Number(values.small);
const smallThreads = Number(values['small-threads']);
const node = process.execPath;
const here = import.meta.dirname;

interface ClientReport {
  client: string;
  mibPerSec: number;
  cpuSeconds: number;
  bytes: number;
  rssMb: number;
  seconds: number;
  filesPerSec?: number;
  partsSent?: number;
  bytesResumed?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function hashSpeeds(): { crc: number; md5: number } {
  const buf = randomBytes(256 * 1024 * 1024);
  const time = (fn: () => void): number => {
    const speeds: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      fn();
      speeds.push(256 / ((performance.now() - t) / 1000));
    }
    return median(speeds);
  };
  return { crc: time(() => crc64(buf)), md5: time(() => createHash('md5').update(buf).digest()) };
}

async function makeFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = randomBytes(4 * 1024 * 1024);
  for (let left = bytes; left > 0; left -= chunk.length) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    if (!out.write(piece)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

async function startSinkProcess(known: string): Promise<{
  url: string;
  stats: () => Promise<{ partsReceived: number; partsHashed: number }>;
  stop: () => Promise<void>;
}> {
  const child = spawn(node, [join(here, 'sink.ts'), '--known', known], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout });
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = (): Promise<string> => new Promise((r) => waiting.push(r));
  const first = await nextLine();
  const url = /listening on (\S+)/.exec(first)?.[1];
  if (!url) throw new Error(`sink did not start: ${first}`);
  return {
    url,
    stats: async () => {
      const line = nextLine();
      child.stdin.write('\n');
      return JSON.parse((await line).replace(/^stats /, '')) as {
        partsReceived: number;
        partsHashed: number;
      };
    },
    // the end of its stdin stops the sink; then nothing of it keeps this process alive
    stop: async () => {
      child.stdin.end();
      await exited;
      lines.close();
    },
  };
}

/**
 * The clients run bundled, as the action and the command line ship: from TypeScript sources a process pays
 * the type stripper's memory and CPU, which would be charged to whichever client it runs.
 */
function bundleClients(into: string): string {
  const ncc = join(here, '../node_modules/@vercel/ncc/dist/ncc/cli.js');
  execFileSync(node, [ncc, 'build', join(here, 'client.ts'), '-o', into, '--quiet', '--target', 'es2023'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return join(into, 'index.js');
}
let clientEntry = join(here, 'client.ts');

function runClient(
  args: string[],
  onLine?: (line: string, kill: () => void) => void,
  command: string[] = [node, clientEntry],
): Promise<ClientReport | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, [...command.slice(1), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let report: ClientReport | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('{')) report = JSON.parse(line) as ClientReport;
      else onLine?.(line, () => child.kill('SIGKILL'));
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0 || signal === 'SIGKILL') resolve(report);
      else reject(new Error(`bench client ${args.join(' ')} exited with ${code ?? signal}`));
    });
  });
}

const work = await mkdtemp(join(tmpdir(), 'oss-bench-'));
try {
  clientEntry = bundleClients(join(work, 'clients'));
  const file = join(work, 'big.bin');
  await makeFile(file, size);
  const smallDir = join(work, 'small');
  await mkdir(smallDir);
  for (let i = 0; i < smallCount; i++)
    await writeFile(join(smallDir, `f${String(i).padStart(5, '0')}`), randomBytes(4096));

  const hashing = hashSpeeds();
  const goPeer = buildGoPeer(work);
  const sink = await startSinkProcess(file);
  const common = [
    '--url',
    sink.url,
    '--file',
    file,
    '--part-size',
    String(partSize),
    '--threads',
    String(threads),
  ];
  const clients = [
    'limit',
    'ours',
    'ali-oss',
    'ali-oss-equal',
    'node-http',
    'node-http-crc',
    ...(goPeer.binary ? ['go-sdk'] : []),
  ];
  const results = new Map<string, ClientReport[]>(clients.map((c) => [c, []]));
  // ours as the action runs it: checkpoints on (each finished upload removes its own, so runs start fresh)
  const oursCheckpoints = ['--checkpoint', join(work, 'cp-ours')];
  const run = (c: string): Promise<ClientReport | undefined> =>
    c === 'go-sdk'
      ? runClient(goArgs(common), undefined, [goPeer.binary!])
      : runClient(['--client', c, ...common, ...(c === 'ours' ? oursCheckpoints : [])]);
  // interleave clients run by run, so drift in machine load spreads over all of them
  for (let r = 0; r < runs; r++) {
    for (const c of clients) results.get(c)!.push((await run(c))!);
  }
  const speed = (c: string): number => median(results.get(c)!.map((x) => x.mibPerSec));
  const rss = (c: string): number => Math.max(...results.get(c)!.map((x) => x.rssMb));
  const cpuPerGib = (c: string): number =>
    median(results.get(c)!.map((x) => x.cpuSeconds / (x.bytes / 2 ** 30)));

  const smallArgs = ['--url', sink.url, '--dir', smallDir, '--threads', String(smallThreads)];
  const oursSmall = (await runClient(['--client', 'ours-files', ...smallArgs]))!;
  const aliSmall = (await runClient(['--client', 'ali-oss-files', ...smallArgs]))!;

  // memory against file size: the same upload of a file 4x larger
  const bigger = join(work, 'bigger.bin');
  await makeFile(bigger, size * 4);
  const biggerSink = await startSinkProcess(bigger);
  const biggerArgs = [
    ...oursCheckpoints,
    '--client',
    'ours',
    ...common.map((a) => (a === file ? bigger : a === sink.url ? biggerSink.url : a)),
  ];
  const oursBigRuns: ClientReport[] = [];
  for (let r = 0; r < runs; r++) oursBigRuns.push((await runClient(biggerArgs))!);
  await biggerSink.stop();
  const oursBig = {
    mibPerSec: median(oursBigRuns.map((x) => x.mibPerSec)),
    rssMb: Math.max(...oursBigRuns.map((x) => x.rssMb)),
  };
  await rm(bigger);

  // resume cost: kill at ~50%, run again, count parts the sink received beyond the plan
  const cpDir = join(work, 'cp');
  const before = (await sink.stats()).partsReceived;
  await runClient(['--client', 'ours', ...common, '--checkpoint', cpDir, '--progress'], (line, kill) => {
    if (/^progress (\d+)/.test(line) && Number(line.slice(9)) >= 50) kill();
  });
  const resumed = (await runClient(['--client', 'ours', ...common, '--checkpoint', cpDir]))!;
  const received = (await sink.stats()).partsReceived - before;
  const planned = Math.ceil(size / partSize);
  const resent = received - planned;
  const hashedBySink = (await sink.stats()).partsHashed;
  await sink.stop();

  const mib = (n: number): string => n.toFixed(0).padStart(6);
  console.log(
    `settings: file ${values.size} (${size} B), part size ${partSize} B, ${threads} parallel, ${runs} runs, Node ${process.version}, clients bundled; the sink answers CRC-64 from a table of the file made before timing (${hashedBySink} bodies it had to hash)`,
  );
  console.log(
    `hashing (256 MiB buffer): CRC-64 ${hashing.crc.toFixed(0)} MiB/s, crypto MD5 ${hashing.md5.toFixed(0)} MiB/s, ratio ${(hashing.crc / hashing.md5).toFixed(2)}`,
  );
  console.log('client                               MiB/s  CPU s/GiB  peak RSS MiB');
  const label: Record<string, string> = {
    limit: 'raw undici PUT (loopback limit)',
    ours: 'ours (CRC-64, checkpoints)',
    'ali-oss': 'ali-oss defaults (5 x 1 MiB)',
    'ali-oss-equal': `ali-oss ${threads} x ${partSize / 1024 / 1024} MiB`,
    'node-http': 'node:http PUT, no hashing',
    'node-http-crc': 'node:http PUT + CRC-64 inline',
    'go-sdk': 'Go SDK v1 UploadFile (CRC on)',
  };
  for (const c of clients)
    console.log(
      `${label[c]!.padEnd(34)} ${mib(speed(c))}  ${cpuPerGib(c).toFixed(2).padStart(9)}  ${mib(rss(c))}`,
    );
  if (!goPeer.binary) console.log(`Go SDK peer skipped: ${goPeer.why}`);
  const growth = ((oursBig.rssMb - rss('ours')) / rss('ours')) * 100;
  console.log(`ours, file 4x larger                ${mib(oursBig.mibPerSec)}  ${mib(oursBig.rssMb)}`);
  console.log(
    `memory: ours peaks at ${rss('ours').toFixed(0)} MiB (target at most 100; the raw client ${rss('limit').toFixed(0)} MiB); a 4x larger file changes our peak by ${growth.toFixed(1)}% (target under 10); CPU ${cpuPerGib('ours').toFixed(2)} s/GiB (target at most 3.0)`,
  );
  console.log(
    `small files (${smallCount} x 4 KiB, ${smallThreads} concurrent): ours ${oursSmall.filesPerSec!.toFixed(0)} files/s, ali-oss put ${aliSmall.filesPerSec!.toFixed(0)} files/s, ratio ${(oursSmall.filesPerSec! / aliSmall.filesPerSec!).toFixed(2)}`,
  );
  console.log(
    `resume after a kill at ~50%: ${planned} parts planned, ${received} received in both runs, ${resent} sent twice (limit ${threads}); second run resumed ${((resumed.bytesResumed ?? 0) / 1024 / 1024).toFixed(0)} MiB`,
  );
  const r = (a: number, b: number): string => (a / b).toFixed(2);
  const goRatios = goPeer.binary
    ? ` ours/go=${r(speed('ours'), speed('go-sdk'))} cpu_go_s_per_gib=${cpuPerGib('go-sdk').toFixed(2)} rss_go_mb=${rss('go-sdk').toFixed(0)}`
    : '';
  console.log(
    `bench: cpu_s_per_gib=${cpuPerGib('ours').toFixed(2)} cpu_limit_s_per_gib=${cpuPerGib('limit').toFixed(2)}${goRatios} ours/limit=${r(speed('ours'), speed('limit'))} ours/ali-oss=${r(speed('ours'), speed('ali-oss'))} ours/ali-oss-equal=${r(speed('ours'), speed('ali-oss-equal'))} rss_mb=${rss('ours').toFixed(0)} rss_limit_mb=${rss('limit').toFixed(0)} rss_4x_pct=${growth.toFixed(1)} resent_parts=${resent}`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
