/**
 * The command line: the action's validation and the same engine, for local machines and other CI systems.
 * Options carry the action's input names, so a workflow and a shell script read alike.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type UploadOutcome, uploadFiles } from '../engine/index.ts';
import { OssClient } from '../oss/index.ts';
import { INPUT } from '../action/constants.ts';
import { findFiles } from '../action/files.ts';
import { type InputSource, InputError, readInputs } from '../action/inputs.ts';
import { ProgressReporter, describeError, resultLine, resultTable, totals } from '../action/report.ts';
import { formatBytes } from '../action/size.ts';
import { clientOptions, uploadItems, uploadSettings } from '../action/upload-options.ts';
import { cleanUp } from '../action/cleanup.ts';
import { credentialsFor } from '../action/sign-in.ts';
import { FileLedger } from '../action/ledger.ts';
import { safeLine, safeLines } from '../action/log-line.ts';
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
  (OIDC sign-in with role-arn needs a GitHub Actions job; elsewhere pass an STS token)

How:
  --thread-num N              requests in flight, 1-64 (default 4)
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
  --abort-stale-uploads AGE   abort unfinished multipart uploads under --destination older than AGE (24h, 7d)
  --dry-run                   list what the cleanup would delete or abort; change nothing

Object headers:
  --content-type TYPE         for every object (default: from each file extension)
  --cache-control VALUE       e.g. "public, max-age=31536000, immutable"
  --acl ACL                   private, public-read, public-read-write or default
  --storage-class CLASS       Standard, IA, Archive, ColdArchive or DeepColdArchive
  --header "Name: value"      extra header (x-oss-meta-*, Content-Disposition, ...); repeatable, each
                              name once; values are visible ASCII (percent-encode the rest; a
                              Content-Disposition file name is encoded for you)

  -h, --help                  this text
  -v, --version               the version

Exit status: 0 all uploaded and verified, 1 an upload failed, 2 bad usage, 130 interrupted (resumable).
`;
}

/** `input \`thread-num\`` in the shared validation reads `--thread-num` here. */
function asCliMessage(message: string): string {
  return message
    .replace(/input `path`/g, 'paths')
    .replace(/input `headers`/g, '`--header`')
    .replace(/input `([a-z-]+)`/g, '`--$1`');
}

function defaultCheckpointDir(env: CliIo['env']): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'oss-resumable-upload', 'checkpoints');
}

/**
 * The command's output, line by line, made safe: inside a workflow the runner reads stdout and stderr for
 * workflow commands, and file names, keys and server messages end up in these lines.
 */
function safeIo(io: CliIo): CliIo {
  return {
    ...io,
    stdout: (text) => io.stdout(safeText(text)),
    stderr: (text) => io.stderr(safeText(text)),
  };
}

/** Escapes every line of `text` but keeps the line breaks (and a bar's `\r` redraw) the command itself writes. */
function safeText(text: string): string {
  const redraw = '\r\x1b[K';
  return text
    .split(redraw)
    .map((part) => safeLines(part.replace(/\n$/, '')) + (part.endsWith('\n') ? '\n' : ''))
    .join(redraw);
}

export async function runCli(rawIo: CliIo, deps: CliDeps = {}): Promise<number> {
  const io = safeIo(rawIo);
  const checkpointDirDefault = defaultCheckpointDir(io.env);
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; allowNegative: true }>
  >;
  try {
    parsed = parseArgs({ args: [...io.argv], options: OPTIONS, allowPositionals: true, allowNegative: true });
  } catch (e) {
    io.stderr(`${(e as Error).message}\nRun oss-resumable-upload --help for the options.\n`);
    return EXIT.usage;
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
  const progress = values.progress ?? (io.isTty ? 'bar' : 'lines');
  if (!['bar', 'lines', 'none'].includes(progress)) {
    io.stderr(`\`--progress\`: got \`${progress}\`; allowed \`bar\`, \`lines\` or \`none\`\n`);
    return EXIT.usage;
  }

  const given = values as Record<string, string | boolean | string[] | undefined>;
  const source: InputSource = {
    get: (name) => {
      if (name === INPUT.path) return positionals.join('\n');
      if (name === INPUT.headers) return (values.header ?? []).join('\n');
      if (name === INPUT.cacheCheckpoints) return 'false';
      const v = given[name];
      if (name === INPUT.ifNoFilesFound && v === undefined) return 'error';
      if (name === INPUT.checkpointDir && v === undefined) return checkpointDirDefault;
      return typeof v === 'boolean' ? String(v) : typeof v === 'string' ? v : '';
    },
    env: io.env,
    // nothing here prints a secret; there is no log to mask
    mask: () => undefined,
  };

  let inputs: ReturnType<typeof readInputs>;
  let files: Awaited<ReturnType<typeof findFiles>>;
  try {
    inputs = readInputs(source);
    files = await findFiles({
      patterns: inputs.patterns,
      destination: inputs.destination,
      includeHiddenFiles: inputs.includeHiddenFiles,
      contentType: inputs.contentType,
      checkpointDir: resolve(inputs.checkpointDir),
      onNotice: (m) => io.stdout(`${safeLine(m)}\n`),
    });
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    io.stderr(`${asCliMessage(e.message)}\nRun oss-resumable-upload --help for the options.\n`);
    return EXIT.usage;
  }
  const ledger = deps.ledger ?? new FileLedger();
  ledger.plan(files.map((f) => f.key));
  if (files.length === 0) {
    const message = `no files match ${inputs.patterns.join(', ')}`;
    if (inputs.ifNoFilesFound === 'error') {
      io.stderr(`${message}\n`);
      return EXIT.failed;
    }
    if (inputs.ifNoFilesFound === 'warn') io.stderr(`warning: ${message}\n`);
    return EXIT.ok;
  }

  const totalBytes = files.reduce((s, f) => s + f.size, 0);
  io.stdout(
    `${files.length} file(s), ${formatBytes(totalBytes)}, to oss://${inputs.bucket}/${inputs.destination}\n`,
  );
  const bar =
    progress === 'bar'
      ? new ProgressBar({ totalBytes, totalFiles: files.length, write: io.stderr })
      : undefined;
  const lines =
    progress === 'lines' ? new ProgressReporter({ write: (l) => io.stdout(`${safeLine(l)}\n`) }) : undefined;
  const say = (text: string): void => {
    const line = safeLine(text);
    if (bar) bar.log(line);
    else io.stdout(`${line}\n`);
  };

  const client = new OssClient(clientOptions(inputs, credentialsFor(inputs.auth)));
  let outcomes: UploadOutcome[];
  try {
    outcomes = await (deps.upload ?? uploadFiles)(uploadItems(files), {
      client,
      ...uploadSettings(inputs, inputs.checkpointDir),
      signal: io.signal,
      onProgress: (e) => {
        bar?.onProgress(e);
        lines?.onProgress(e);
      },
      onNotice: say,
      onFileDone: (o) => {
        ledger.settle(o);
        bar?.fileDone();
        if (io.signal?.aborted) return;
        if (o.ok) {
          say(resultLine(o.result));
        } else {
          say(`failed ${o.item.key}: ${describeError(o.error)}`);
        }
      },
    });
  } catch (e) {
    bar?.finish();
    if (io.signal?.aborted) {
      const where = inputs.enableCheckpoint ? ` checkpoints are in ${inputs.checkpointDir};` : '';
      io.stderr(
        `interrupted:${where} run the same command again to continue (${ledger.describeUnfinished()})\n`,
      );
      return EXIT.interrupted;
    }
    await client.close();
    io.stderr(`${describeError(e)}; ${ledger.describeUnfinished()}\n`);
    return EXIT.failed;
  }
  bar?.finish();
  outcomes.forEach((o) => ledger.settle(o));
  if (ledger.pending().length > 0) {
    await client.close();
    io.stderr(`the upload ended without an outcome for every file: ${ledger.describePending()}\n`);
    return EXIT.failed;
  }
  const t = totals(outcomes, (key) => client.objectUrl(inputs.bucket, key));
  io.stdout(`${resultTable(outcomes)}\n`);
  io.stdout(
    `${t.uploaded} uploaded, ${t.skipped} unchanged, ${t.updated ? `${t.updated} with headers updated, ` : ''}${t.failed} failed; ${formatBytes(t.bytesUploaded)} sent, ${formatBytes(t.bytesResumed)} resumed\n`,
  );
  let cleanupFailed = false;
  if (inputs.deleteOrphans || inputs.abortStaleUploadsMs !== undefined) {
    const cleanup = await cleanUp({
      client,
      inputs,
      deployed: t.failed === 0 ? files.map((f) => f.key) : undefined,
      checkpointDir: inputs.checkpointDir,
      log: {
        info: (m) => io.stdout(`${safeLine(m)}\n`),
        warning: (m) => io.stderr(`warning: ${safeLine(m)}\n`),
      },
      signal: io.signal,
    });
    if (cleanup.error) {
      io.stderr(`${cleanup.error.message}\n`);
      cleanupFailed = true;
    }
  }
  await client.close();
  return t.failed > 0 || cleanupFailed ? EXIT.failed : EXIT.ok;
}
