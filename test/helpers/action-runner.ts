// Runs the bundled action the way the GitHub runner does: `node dist/index.js`, then `node dist/post.js`, in child
// processes with INPUT_* variables, the runner's command files, and the saved state handed to post as STATE_*.
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startTestServer } from './server.ts';
import { tempDir } from './files.ts';

const DIST = join(import.meta.dirname, '../../dist');
const SOURCE = join(import.meta.dirname, '../../src/action');

/** Which build a step runs: the committed bundle (as the runner does) or the TypeScript sources directly. */
export type StepBuild = 'dist' | 'source';

export interface StepResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface JobFiles {
  dir: string;
  workspace: string;
  runnerTemp: string;
  output: string;
  state: string;
  summary: string;
}

/** A fresh job directory: workspace, RUNNER_TEMP and the runner's command files. */
export async function newJob(dir: string, workspace: string): Promise<JobFiles> {
  const runnerTemp = join(dir, 'runner-temp');
  await rm(runnerTemp, { recursive: true, force: true });
  await mkdir(runnerTemp, { recursive: true });
  const files = {
    dir,
    workspace,
    runnerTemp,
    output: join(dir, 'github-output'),
    state: join(dir, 'github-state'),
    summary: join(dir, 'step-summary'),
  };
  for (const f of [files.output, files.state, files.summary]) await writeFile(f, '');
  return files;
}

/** Parse a runner command file (GITHUB_OUTPUT / GITHUB_STATE): `name<<DELIM\nvalue\nDELIM` blocks. */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i]!);
    if (m) {
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]!);
      out[m[1]!] = value.join('\n');
    } else if (lines[i]!.includes('=')) {
      const [k, ...v] = lines[i]!.split('=');
      out[k!] = v.join('=');
    }
  }
  return out;
}

export function inputEnv(inputs: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => [`INPUT_${k.replace(/ /g, '_').toUpperCase()}`, v]),
  );
}

function baseEnv(job: JobFiles, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: job.workspace,
    RUNNER_TEMP: job.runnerTemp,
    GITHUB_OUTPUT: job.output,
    GITHUB_STATE: job.state,
    GITHUB_STEP_SUMMARY: job.summary,
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '1',
    ...extra,
  };
  return env;
}

/** Run one step. `onLine` sees stdout lines and may stop the step (as a cancel would). */
export function runStep(
  step: 'main' | 'post',
  job: JobFiles,
  env: Record<string, string>,
  onLine?: (line: string, stop: (signal: NodeJS.Signals) => void, pid: number | undefined) => void,
  build: StepBuild = 'dist',
): Promise<StepResult> {
  const entry =
    build === 'dist'
      ? join(DIST, step === 'main' ? 'index.js' : 'post.js')
      : join(SOURCE, step === 'main' ? 'index.ts' : 'post-entry.ts');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry], {
      cwd: job.workspace,
      env: baseEnv(job, env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      partial += b.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) onLine?.(line, (signal) => child.kill(signal), child.pid);
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Main, then post with the state main saved: one job attempt as the runner runs it. */
export async function runJob(
  job: JobFiles,
  env: Record<string, string>,
  onLine?: (line: string, stop: (signal: NodeJS.Signals) => void) => void,
  build: StepBuild = 'dist',
): Promise<{
  main: StepResult;
  post: StepResult;
  outputs: Record<string, string>;
  state: Record<string, string>;
}> {
  const main = await runStep('main', job, env, onLine, build);
  const state = parseCommandFile(await readFile(job.state, 'utf8'));
  const stateEnv = Object.fromEntries(Object.entries(state).map(([k, v]) => [`STATE_${k}`, v]));
  const post = await runStep('post', job, { ...env, ...stateEnv }, undefined, build);
  const outputs = parseCommandFile(await readFile(job.output, 'utf8'));
  return { main, post, outputs, state };
}

/** Only the main step, in a fresh job. */
export async function mainOnly(
  dir: string,
  ws: string,
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  build: StepBuild = 'dist',
) {
  const job = await newJob(dir, ws);
  return runStep('main', job, { ...inputEnv(inputs), ...env }, undefined, build);
}

/**
 * A server and a workspace holding one file `x` at `file`, with the inputs that upload it through `path`
 * (the file itself unless a pattern is given).
 */
export async function oneFileStep(t: Parameters<typeof tempDir>[0], file: string, path = file) {
  const server = await startTestServer();
  t.after(() => server.close());
  const dir = await tempDir(t);
  const ws = join(dir, 'ws');
  await mkdir(dirname(join(ws, file)), { recursive: true });
  await writeFile(join(ws, file), 'x');
  const base = {
    path,
    bucket: 'test-bucket',
    endpoint: server.url,
    'access-key-id': 'test-ak',
    'access-key-secret': 'test-sk',
    'cache-checkpoints': 'false',
  };
  return { server, dir, ws, base };
}
