/**
 * `npm run bench:wan [-- --rtt 100 --bandwidth 50MiB --files 1000 --asset 256MiB --shards 4 --shard-files 4000 --shard-assets 4000]`
 *
 * The deploy scenarios of a runner far from its region: our OSS-compatible server in its own process, reached
 * through the link emulator (bench/link.ts). Each scenario runs as a whole process (start-up included, as a
 * workflow step pays it; ours is the bundled command users run), with default inputs, beside a naive ali-oss `put` loop at 4 and at 64 in flight,
 * Alibaba's Go SDK for the large asset when it is installed, and what the link allows (bytes over the
 * bandwidth, plus a few round trips). Then a matrix of `--shards` runners, each behind a link of its own,
 * against one runner: over `--shard-files` small files (round trips fill the time), with the cleanup job, and
 * over `--shard-assets` files of 16-512 KiB (bytes fill it, as with the release assets sharding is for).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { parseSize } from '../src/deploy/size.ts';
import { buildGoPeer, goArgs } from './go-peer.ts';
import { startLink } from './link.ts';

const { values } = parseArgs({
  options: {
    rtt: { type: 'string', default: '100' },
    bandwidth: { type: 'string', default: '50MiB' },
    files: { type: 'string', default: '1000' },
    asset: { type: 'string', default: '256MiB' },
    changed: { type: 'string', default: '10' },
    shards: { type: 'string', default: '4' },
    'shard-files': { type: 'string', default: '4000' },
    'shard-assets': { type: 'string', default: '4000' },
  },
});

function sizeFlag(flag: string, text: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined || bytes <= 0) throw new Error(`--${flag}: got \`${text}\`; allowed e.g. 50MiB`);
  return bytes;
}
const rttMs = Number(values.rtt);
if (!Number.isFinite(rttMs) || rttMs < 0)
  throw new Error(`--rtt: got \`${values.rtt}\`; allowed milliseconds`);
const bandwidth = sizeFlag('bandwidth', values.bandwidth);
const fileCount = Number(values.files);
const assetSize = sizeFlag('asset', values.asset);
const changedCount = Math.min(Number(values.changed), fileCount);
const shardCount = Number(values.shards);
const shardFiles = Number(values['shard-files']);
const shardAssets = Number(values['shard-assets']);
const node = process.execPath;
const root = join(import.meta.dirname, '..');
const CREDENTIALS = { OSS_ACCESS_KEY_ID: 'test-ak', OSS_ACCESS_KEY_SECRET: 'test-sk' };

interface Timed {
  seconds: number;
  code: number | null;
  output: string;
}

/** Run a whole process and time it from spawn to exit. */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Timed> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, ...CREDENTIALS, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ seconds: (performance.now() - started) / 1000, code, output }));
  });
}

function mustSucceed(what: string, t: Timed): number {
  if (t.code !== 0) throw new Error(`${what} exited with ${t.code}:\n${t.output.slice(-4000)}`);
  return t.seconds;
}

async function startServerProcess(data: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(
    node,
    [
      join(root, 'src/server/main.ts'),
      '--port',
      '0',
      '--data',
      data,
      '--bucket',
      'bench',
      '--auto-create-buckets',
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout }).once('line', resolve),
  );
  const port = Number(/:(\d+)$/.exec(line)?.[1]);
  if (!port) throw new Error(`server did not start: ${line}`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** `count` files of 2-40 KB (a static site) or as given, sizes spread evenly so every run has the same total. */
async function makeSite(
  dir: string,
  count: number,
  name = 'page',
  ext = 'html',
  least = 2048,
  most = 40 * 1024,
): Promise<number> {
  await mkdir(dir, { recursive: true });
  let total = 0;
  for (let i = 0; i < count; i++) {
    const size = least + Math.floor((((i * 7919) % count) / count) * (most - least));
    total += size;
    await writeFile(join(dir, `${name}-${String(i).padStart(5, '0')}.${ext}`), randomBytes(size));
  }
  return total;
}

async function makeFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = randomBytes(4 * 1024 * 1024);
  for (let left = bytes; left > 0; left -= chunk.length) {
    if (!out.write(left >= chunk.length ? chunk : chunk.subarray(0, left)))
      await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;

const work = await mkdtemp(join(tmpdir(), 'oss-bench-wan-'));
// the command as users run it is a bundle: built here from the sources, so the figures are of this tree
const cli = join(work, 'cli', 'index.js');
execFileSync(
  node,
  [
    join(root, 'node_modules/@vercel/ncc/dist/ncc/cli.js'),
    'build',
    join(root, 'src/cli/index.ts'),
    '-o',
    join(work, 'cli'),
    '--quiet',
    '--target',
    'es2023',
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
const server = await startServerProcess(join(work, 'data'));
const link = await startLink({
  target: { host: '127.0.0.1', port: server.port },
  rttMs,
  upBytesPerSec: bandwidth,
});
try {
  const site = join(work, 'site');
  const siteBytes = await makeSite(site, fileCount);
  const asset = join(work, 'asset.bin');
  await makeFile(asset, assetSize);
  const goPeer = buildGoPeer(work);

  const ours = (
    path: string,
    destination: string,
    extra: string[] = [],
    via = link.url,
    bucket = 'bench',
  ): Promise<Timed> =>
    timed(node, [
      cli,
      path,
      '--bucket',
      bucket,
      '--endpoint',
      via,
      '--destination',
      destination,
      '--checkpoint-dir',
      join(work, 'checkpoints', bucket, destination, extra.join('-')),
      '--progress',
      'none',
      ...extra,
    ]);
  const aliLoop = (threads: number): Promise<Timed> =>
    timed(node, [
      join(root, 'bench/client.ts'),
      '--client',
      'ali-oss-files',
      '--url',
      link.url,
      '--dir',
      site,
      '--threads',
      String(threads),
    ]);
  const linkSeconds = (bytes: number, roundTrips: number): number =>
    bytes / bandwidth + (roundTrips * rttMs) / 1000;

  // the server's own code warms up on its first thousand requests (0.7 s slower through this link): a deploy
  // elsewhere first, so that no scenario, ours or a peer's, pays for it
  mustSucceed('warm-up deploy', await ours(site, 'warm-up'));
  const first = mustSucceed('ours, first deploy', await ours(site, 'site'));
  const ali4 = mustSucceed('ali-oss loop at 4', await aliLoop(4));
  const ali64 = mustSucceed('ali-oss loop at 64', await aliLoop(64));
  const unchanged = mustSucceed('ours, unchanged redeploy', await ours(site, 'site'));
  const names = (await readdir(site)).sort();
  for (const name of names.slice(0, changedCount)) {
    const path = join(site, name);
    await writeFile(path, randomBytes((await stat(path)).size));
  }
  const changed = mustSucceed(`ours, ${changedCount} changed files`, await ours(site, 'site'));
  const assetOurs = mustSucceed('ours, one large asset', await ours(asset, 'assets'));
  const assetGo = goPeer.binary
    ? mustSucceed(
        'Go SDK UploadFile',
        await timed(
          goPeer.binary,
          goArgs([
            '--url',
            link.url,
            '--file',
            asset,
            '--part-size',
            String(8 * 1024 * 1024),
            '--threads',
            '4',
          ]),
        ),
      )
    : undefined;

  // a matrix: one runner against n runners, each behind a link of its own, then the cleanup job
  const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  interface Matrix {
    tree: string;
    name: string;
    count: number;
    rounds: number;
    withCleanup: boolean;
  }
  const matrix = async (m: Matrix): Promise<string> => {
    // a server of its own, so that nothing the scenarios above left in the other one weighs on either side
    const own = await startServerProcess(join(work, `data-${m.name}`));
    try {
      return await timeMatrix(own.port, m);
    } finally {
      await own.stop();
    }
  };
  const timeMatrix = async (
    port: number,
    { tree, name, count, rounds, withCleanup }: Matrix,
  ): Promise<string> => {
    // each timed run deploys into a bucket of its own, empty as a first deploy finds it: the one runner, and
    // each shard, since the shards of a matrix start together and none sees what the others store
    const bucket = (who: string): string => `${name}-${who}`;
    // every run behind a fresh link of its own, after the server's disk has written back what came before, so
    // that no run pays for the one before it
    const through = async (work: (url: string) => Promise<Timed>, what: string): Promise<number> => {
      execFileSync('sync');
      const l = await startLink({ target: { host: '127.0.0.1', port }, rttMs, upBytesPerSec: bandwidth });
      try {
        return mustSucceed(what, await work(l.url));
      } finally {
        await l.close();
      }
    };
    const shard = (i: number, into: string) => (url: string) =>
      ours(tree, 'deploy', ['--shard', `${i + 1}/${shardCount}`], url, into);
    // the server's code warms up on its first thousands of requests: on this tree, before anything is timed
    await through((url) => ours(tree, 'deploy', [], url, bucket('warm-up')), 'warm-up deploy');
    // a round times the one runner, then each shard, every runner behind a link of its own; the medians of the
    // rounds are compared, so that a stall of this shared machine lands on neither side alone. The runners of
    // a matrix each have their own cores: here the shards run one after another, and the matrix takes as long
    // as its slowest shard
    const ones: number[] = [];
    const times: number[][] = Array.from({ length: shardCount }, () => []);
    for (let r = 0; r < rounds; r++) {
      ones.push(
        await through(
          (url) => ours(tree, 'deploy', [], url, bucket(`one${r}`)),
          `${count} files on one runner`,
        ),
      );
      for (let i = 0; i < shardCount; i++)
        times[i]!.push(await through(shard(i, bucket(`shard${i + 1}-${r}`)), `shard ${i + 1}/${shardCount}`));
    }
    const one = median(ones);
    const each = times.map(median);
    const sharded = Math.max(...each);
    let cleanup = '';
    if (withCleanup) {
      // then every shard stores its share in one bucket, untimed, and the cleanup step checks them all
      for (let i = 0; i < shardCount; i++)
        await through(shard(i, bucket('matrix')), `shard ${i + 1}, into one bucket`);
      const took = await through(
        (url) => ours(tree, 'deploy', ['--shard', 'cleanup'], url, bucket('matrix')),
        'cleanup step',
      );
      cleanup = ` cleanup_s=${took.toFixed(1)} with_cleanup_ratio=${((sharded + took) / one).toFixed(2)}`;
    }
    const list = (xs: readonly number[]): string => xs.map((x) => x.toFixed(2)).join(',');
    return `shards, ${name}: files=${count} rounds=${rounds} one_runner_s=${one.toFixed(2)} slowest_of_${shardCount}_shards_s=${sharded.toFixed(2)} ratio=${(sharded / one).toFixed(2)} each_s=${list(each)} one_runner_runs_s=${list(ones)}${cleanup}`;
  };
  const shardLines: string[] = [];
  if (shardCount > 1 && shardFiles > 0) {
    const tree = join(work, 'pages-tree');
    const bytes = await makeSite(tree, shardFiles, 'asset', 'js');
    shardLines.push(
      `${await matrix({ tree, name: 'pages', count: shardFiles, rounds: 3, withCleanup: true })} total=${mib(bytes)}`,
    );
  }
  // the work sharding is for: release assets, whose bytes rather than round trips fill a runner's link
  if (shardCount > 1 && shardAssets > 0) {
    const tree = join(work, 'release-tree');
    const bytes = await makeSite(tree, shardAssets, 'asset', 'bin', 16 * 1024, 512 * 1024);
    shardLines.push(
      `${await matrix({ tree, name: 'assets', count: shardAssets, rounds: 1, withCleanup: false })} total=${mib(bytes)}`,
    );
  }

  const s = (x: number | undefined): string => (x === undefined ? '—' : `${x.toFixed(1)} s`);
  const siteLimit = linkSeconds(siteBytes, 3);
  const assetLimit = linkSeconds(assetSize, 3);
  console.log(
    `settings: RTT ${rttMs} ms, upstream ${mib(bandwidth)}/s shared, ${fileCount} files of 2-40 KB (${mib(siteBytes)}), asset ${mib(assetSize)}, Node ${process.version}; whole processes, start-up included`,
  );
  console.log('work                                   ours    ali-oss x4  ali-oss x64  Go SDK   link allows');
  const row = (what: string, o: number, a4?: number, a64?: number, go?: number, limit?: number): void =>
    console.log(
      `${what.padEnd(36)} ${s(o).padStart(7)} ${s(a4).padStart(11)} ${s(a64).padStart(12)} ${s(go).padStart(7)} ${s(limit).padStart(12)}`,
    );
  row(`first deploy, ${fileCount} files`, first, ali4, ali64, undefined, siteLimit);
  row('unchanged redeploy', unchanged, undefined, undefined, undefined, linkSeconds(0, 2));
  row(`redeploy, ${changedCount} changed files`, changed, undefined, undefined, undefined, undefined);
  row(`one ${mib(assetSize)} asset`, assetOurs, undefined, undefined, assetGo, assetLimit);
  if (!goPeer.binary) console.log(`Go SDK peer skipped: ${goPeer.why}`);
  for (const line of shardLines) console.log(line);
  const r = (a: number, b: number): string => (a / b).toFixed(2);
  console.log(
    `wan: first_deploy_s=${first.toFixed(1)} ours/ali64=${r(first, ali64)} ours/ali4=${r(first, ali4)} unchanged_s=${unchanged.toFixed(1)} changed_s=${changed.toFixed(1)} asset_link_share=${r(assetLimit, assetOurs)}${assetGo ? ` go_link_share=${r(assetLimit, assetGo)}` : ''}`,
  );
} finally {
  await link.close();
  await server.stop();
  await rm(work, { recursive: true, force: true });
}
