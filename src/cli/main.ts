/**
 * The command line: argv, a terminal bar, exit codes; the same settings and deploy as the action, for local
 * machines and other CI systems. Options carry the action's input names, so a workflow and a shell script read
 * alike. Nothing here knows of GitHub's toolkit: inside a workflow, lines are only made unable to run commands.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { uploadFiles } from '../engine/index.ts';
import { DEFAULTS, INPUT } from '../deploy/constants.ts';
import { describeError } from '../deploy/describe.ts';
import { FileLedger } from '../deploy/ledger.ts';
import { safeLine, safeLines } from '../deploy/log-line.ts';
import { ProgressReporter, cdnFailure, failureText, totalsText } from '../deploy/report.ts';
import { deploy } from '../deploy/run.ts';
import { type SettingNames, isSettingError } from '../deploy/setting-error.ts';
import { type InputSource, readSettings } from '../deploy/settings.ts';
import { shardLabel } from '../deploy/shard.ts';
import { credentialsFor } from '../deploy/sign-in.ts';
import { ProgressBar } from './progress-bar.ts';

export interface CliIo {
  argv: readonly string[];
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal: a live bar there, plain lines otherwise. */
  isTty: boolean;
  signal?: AbortSignal;
  version: string;
}

export interface CliDeps {
  /** Where the final state of every planned file is kept; the entry reads it when the work stops unsettled. */
  ledger?: FileLedger;
  /** The engine; the entry's pending-work guard is tested with one that never settles. */
  upload?: typeof uploadFiles;
}

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const STRING_OPTIONS = [
  INPUT.bucket,
  INPUT.destination,
  INPUT.region,
  INPUT.endpoint,
  INPUT.threadNum,
  INPUT.maxInFlight,
  INPUT.partSize,
  INPUT.checkpointDir,
  INPUT.signatureVersion,
  INPUT.accessKeyId,
  INPUT.accessKeySecret,
  INPUT.securityToken,
  INPUT.ifNoFilesFound,
  INPUT.contentType,
  INPUT.cacheControl,
  INPUT.acl,
  INPUT.storageClass,
  INPUT.abortStaleUploads,
  INPUT.publishLast,
  INPUT.deleteOrphansMinAge,
  INPUT.cdnDomain,
  INPUT.cdnProduct,
  INPUT.cdnEndpoint,
  INPUT.ecsRamRole,
  INPUT.shard,
] as const;
const BOOLEAN_OPTIONS = [
  INPUT.cname,
  INPUT.internal,
  INPUT.enableCheckpoint,
  INPUT.overwrite,
  INPUT.includeHiddenFiles,
  INPUT.skipUnchanged,
  INPUT.deleteOrphans,
  INPUT.deleteOrphansForce,
  INPUT.dryRun,
] as const;

const OPTIONS = {
  ...Object.fromEntries(STRING_OPTIONS.map((name) => [name, { type: 'string' }])),
  ...Object.fromEntries(BOOLEAN_OPTIONS.map((name) => [name, { type: 'boolean' }])),
  header: { type: 'string', multiple: true },
  rules: { type: 'string' },
  rule: { type: 'string', multiple: true },
  progress: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} satisfies ParseArgsConfig['options'];

export function helpText(defaultCheckpointDir: string): string {
  return `Usage: oss-resumable-upload <paths...> --bucket BUCKET [options]

Uploads files to Alibaba Cloud OSS with resumable, parallel, CRC-64 verified multipart uploads.
Paths are files, directories or glob patterns (quote them; a leading ! excludes). Keys are
--destination + each file's path relative to the common root of the matches.
Interrupt with Ctrl-C at any time: the same command continues where it stopped.

Where to:
  --bucket NAME               bucket (required)
  --destination PREFIX        key prefix, e.g. releases/v1.2.3 (default: the bucket root)
  --region ID                 e.g. cn-hangzhou; alone it builds oss-{region}.aliyuncs.com
  --endpoint HOST|URL         endpoint host, CNAME, or URL; http://127.0.0.1:9000 style URLs use path-style
  --cname                     the endpoint is a custom domain bound to the bucket
  --internal                  with --region alone, use the -internal endpoint

Credentials (prefer the environment; command lines can be seen by other users):
  --access-key-id ID          or OSS_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_ID
  --access-key-secret SECRET  or OSS_ACCESS_KEY_SECRET / ALIBABA_CLOUD_ACCESS_KEY_SECRET
  --security-token TOKEN      STS token, or OSS_SESSION_TOKEN / ALIBABA_CLOUD_SECURITY_TOKEN
  --signature-version v4|v1   request signing (default v4)
  --ecs-ram-role NAME|auto     on an ECS instance: sign in as its RAM role (auto: the attached one),
                              credentials refreshed before they expire; not with the keys above
  (OIDC sign-in with role-arn needs a GitHub Actions job; elsewhere pass an STS token)

How:
  --thread-num N              parts of one big file in flight, 1-64 (default 4)
  --max-in-flight N           requests in flight across all files, 1-256 (default ${DEFAULTS[INPUT.maxInFlight]}): small
                              files, checks and deletes wait on the round trip, not the bandwidth
  --part-size SIZE            100KB-5GB, e.g. 8MiB (1024-based units), or auto (default)
  --no-enable-checkpoint      no checkpoints: an interrupted upload is aborted on the server
  --checkpoint-dir DIR        where checkpoints live (default ${defaultCheckpointDir});
                              never uploaded, even inside the uploaded tree
  --no-overwrite              fail instead of replacing an existing object
  --no-skip-unchanged         upload even when the stored object has the same size and CRC-64
  --include-hidden-files      also upload dot files and dot directories
  --if-no-files-found MODE    error (default), warn or ignore
  --progress MODE             bar (default on a terminal), lines (default otherwise) or none

Cleanup (after the upload):
  --delete-orphans            delete objects under --destination that the upload does not contain
  --delete-orphans-force      allow --delete-orphans without --destination (the whole bucket)
  --delete-orphans-min-age AGE  keep orphans younger than AGE (7d, 36h; default 0): visitors with
                              older pages still fetch them
  --abort-stale-uploads AGE   abort unfinished multipart uploads under --destination older than AGE (24h, 7d)
  --dry-run                   show what would be uploaded, updated, left, deleted and aborted;
                              change nothing

Object headers:
  --content-type TYPE         for every object (default: from each file extension)
  --cache-control VALUE       e.g. "public, max-age=31536000, immutable"
  --acl ACL                   private, public-read, public-read-write or default
  --storage-class CLASS       Standard, IA, Archive, ColdArchive or DeepColdArchive
  --header "Name: value"      extra header (x-oss-meta-*, Content-Disposition, ...); repeatable, each
                              name once; values are visible ASCII (percent-encode the rest; a
                              Content-Disposition file name is encoded for you)

  --rules FILE                per-file headers: a YAML list or \`pattern: field=value, ...\` lines;
                              for each field the last matching rule wins
  --rule "PATTERN: F=V, ..."  one rule, e.g. "**/*.html: cache-control=no-cache"; repeatable
                              (fields: cache-control, content-type, content-encoding,
                              content-disposition, acl, storage-class, x-oss-meta-*, ...)

Publishing order and CDN:
  --publish-last PATTERN      files sent only after every other file is stored (default **/*.html;
                              false for any order); not sent at all when an earlier file failed
  --cdn-domain HOST           refresh https://HOST/KEY on the CDN for every changed or deleted key
  --cdn-product cdn|dcdn      which service (default cdn)
  --cdn-endpoint URL          the CDN API address, for tests and self-hosted gateways

Matrix shards (one runner is not enough: split the upload over jobs that run at once):
  --shard I/N                 upload only this job's share of the files (1 <= I <= N <= 256), picked
                              by a hash of each key; every job globs the same tree. Files published
                              last wait for the cleanup step; --delete-orphans is refused here
  --shard cleanup[/N]         the final job, after every shard: verify every key (size, CRC-64,
                              headers), then send the files published last and clean up; fails and
                              deletes nothing when a shard did not finish

  -h, --help                  this text
  -v, --version               the version

Exit status: 0 all done and verified, 1 an upload, cleanup or CDN refresh failed, 2 bad usage, 130 interrupted (resumable).
`;
}

/** The command line's names for the settings: paths are the arguments, headers are `--header`. */
export const CLI_NAMES: SettingNames = {
  subject: (input) => (input === INPUT.path ? 'paths' : CLI_NAMES.mention(input)),
  mention: (input) =>
    input === INPUT.path
      ? 'the paths'
      : input === INPUT.headers
        ? '`--header`'
        : input === INPUT.rules
          ? '`--rules`/`--rule`'
          : `\`--${input}\``,
};

function defaultCheckpointDir(env: CliIo['env']): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'oss-resumable-upload', 'checkpoints');
}

/**
 * The command's output, line by line, made safe: inside a workflow the runner reads stdout and stderr for
 * workflow commands, and file names, keys and server messages end up in these lines. Every secret read (and
 * every one a credential refresh brings) is replaced by `***`, as the runner masks the action's log.
 */
function safeIo(io: CliIo, secrets: ReadonlySet<string>): CliIo {
  const clean = (text: string): string => {
    let out = text;
    for (const s of secrets) out = out.split(s).join('***');
    return safeText(out);
  };
  return { ...io, stdout: (text) => io.stdout(clean(text)), stderr: (text) => io.stderr(clean(text)) };
}

/** Escapes every line of `text` but keeps the line breaks (and a bar's `\r` redraw) the command itself writes. */
function safeText(text: string): string {
  const redraw = '\r\x1b[K';
  return text
    .split(redraw)
    .map((part) => safeLines(part.replace(/\n$/, '')) + (part.endsWith('\n') ? '\n' : ''))
    .join(redraw);
}

type Parsed = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; allowNegative: true; tokens: true }>
>;

/**
 * `--overwrite false` reads as the flag and one more path `false`: said before anything else, since the path
 * would match nothing and the object would be replaced.
 */
function strayBoolean(parsed: Parsed): string | undefined {
  const tokens = parsed.tokens;
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    const before = tokens[i - 1]!;
    if (
      t.kind === 'positional' &&
      /^(true|false)$/i.test(t.value) &&
      before.kind === 'option' &&
      (BOOLEAN_OPTIONS as readonly string[]).includes(before.name)
    ) {
      const yes = t.value.toLowerCase() === 'true';
      return `\`--${before.name} ${t.value}\`: \`--${before.name}\` is a switch and takes no value, so \`${t.value}\` was read as a path; allowed \`--${yes ? '' : 'no-'}${before.name}\``;
    }
  }
  return undefined;
}

export async function runCli(rawIo: CliIo, deps: CliDeps = {}): Promise<number> {
  const secrets = new Set<string>();
  const io = safeIo(rawIo, secrets);
  const checkpointDirDefault = defaultCheckpointDir(io.env);
  const usage = (message: string): number => {
    io.stderr(`${message}\nRun oss-resumable-upload --help for the options.\n`);
    return EXIT.usage;
  };
  let parsed: Parsed;
  try {
    parsed = parseArgs({
      args: [...io.argv],
      options: OPTIONS,
      allowPositionals: true,
      allowNegative: true,
      tokens: true,
    });
  } catch (e) {
    return usage((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(helpText(checkpointDirDefault));
    return EXIT.ok;
  }
  if (values.version) {
    io.stdout(`${io.version}\n`);
    return EXIT.ok;
  }
  const stray = strayBoolean(parsed);
  if (stray) return usage(stray);
  const progress = values.progress ?? (io.isTty ? 'bar' : 'lines');
  if (!['bar', 'lines', 'none'].includes(progress))
    return usage(`\`--progress\`: got \`${progress}\`; allowed \`bar\`, \`lines\` or \`none\``);

  if (values.rules !== undefined && values.rule !== undefined)
    return usage('`--rules FILE` and `--rule`: give the rules one way; allowed one of them');
  let rulesText = (values.rule ?? []).join('\n');
  if (values.rules !== undefined) {
    try {
      rulesText = await readFile(values.rules, 'utf8');
    } catch (e) {
      return usage(
        `\`--rules\`: got \`${values.rules}\`, which cannot be read (${(e as NodeJS.ErrnoException).code ?? describeError(e)}); allowed a readable YAML or text file`,
      );
    }
  }
  const given = values as Record<string, string | boolean | string[] | undefined>;
  const source: InputSource = {
    get: (name) => {
      if (name === INPUT.path) return positionals.join('\n');
      if (name === INPUT.headers) return (values.header ?? []).join('\n');
      if (name === INPUT.rules) return rulesText;
      if (name === INPUT.cacheCheckpoints) return 'false';
      const v = given[name];
      if (name === INPUT.ifNoFilesFound && v === undefined) return 'error';
      if (name === INPUT.checkpointDir && v === undefined) return checkpointDirDefault;
      return typeof v === 'boolean' ? String(v) : typeof v === 'string' ? v : '';
    },
    env: io.env,
    mask: (secret) => {
      if (secret.length >= 4) secrets.add(secret);
    },
  };

  let bar: ProgressBar | undefined;
  const lines =
    progress === 'lines' ? new ProgressReporter({ write: (l) => io.stdout(`${safeLine(l)}\n`) }) : undefined;
  const say = (text: string): void => {
    const line = safeLine(text);
    if (bar) bar.log(line);
    else io.stdout(`${line}\n`);
  };
  const warn = (text: string): void => {
    if (bar) bar.log(`warning: ${safeLine(text)}`);
    else io.stderr(`warning: ${safeLine(text)}\n`);
  };
  const ledger = deps.ledger ?? new FileLedger();
  let noFiles = false;
  let report: Awaited<ReturnType<typeof deploy>>;
  let settings: ReturnType<typeof readSettings> | undefined;
  try {
    settings = readSettings(source);
    const s = settings;
    report = await deploy({
      settings: s,
      credentials: credentialsFor(s.auth, {
        getIdToken: () => Promise.reject(new Error('OIDC sign-in needs a GitHub Actions job')),
        mask: (secret) => source.mask(secret),
        info: say,
        warning: warn,
      }),
      cwd: process.cwd(),
      checkpointDir: resolve(s.checkpointDir),
      log: { info: say, warning: warn, error: say, debug: () => undefined },
      signal: io.signal,
      ledger,
      upload: deps.upload,
      onProgress: (e) => {
        bar?.onProgress(e);
        lines?.onProgress(e);
      },
      onFileDone: () => bar?.fileDone(),
      onFiles: (files) => {
        if (progress === 'bar')
          bar = new ProgressBar({
            totalBytes: files.reduce((n, f) => n + f.size, 0),
            totalFiles: files.length,
            write: io.stderr,
          });
      },
      onNoFiles: (patterns) => {
        const message = `no files match ${patterns.join(', ')}`;
        if (s.ifNoFilesFound === 'error') {
          noFiles = true;
          throw new Error(message);
        }
        if (s.ifNoFilesFound === 'warn') io.stderr(`warning: ${message}\n`);
      },
    });
  } catch (e) {
    bar?.finish();
    if (isSettingError(e)) return usage(e.phrase(CLI_NAMES));
    if (io.signal?.aborted) {
      const where = settings?.enableCheckpoint
        ? ` checkpoints are in ${resolve(settings.checkpointDir)};`
        : '';
      io.stderr(
        `interrupted:${where} run the same command again to continue (${ledger.describeUnfinished()})\n`,
      );
      return EXIT.interrupted;
    }
    io.stderr(`${describeError(e)}${noFiles ? '' : `; ${ledger.describeUnfinished()}`}\n`);
    return EXIT.failed;
  }
  bar?.finish();
  const t = report.totals;
  if (report.fatal) {
    io.stderr(`${report.fatal}\n`);
    return EXIT.failed;
  }
  const shard = settings.shard ? `${shardLabel(settings.shard)}: ` : '';
  if (report.files.length > 0 || shard) io.stdout(`${shard}${totalsText(t, report.dryRun)}\n`);
  if (t.failed > 0) io.stderr(`${failureText(report)}\n`);
  if (report.cleanup.error) io.stderr(`${report.cleanup.error.message}\n`);
  if (report.cdn?.error) io.stderr(`${cdnFailure(report.cdn.error)}\n`);
  return t.failed > 0 || report.heldBack.length > 0 || report.cleanup.error || report.cdn?.error
    ? EXIT.failed
    : EXIT.ok;
}
