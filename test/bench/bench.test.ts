// The benchmark is a command people run and wait on: it must print its figures and then end by itself.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

test('npm run bench prints its figures and exits by itself (no sink or client left holding it open)', async () => {
  const script = join(import.meta.dirname, '../../bench/index.ts');
  const child = spawn(
    process.execPath,
    [script, '--size', '8MiB', '--part-size', '1MiB', '--runs', '1', '--small', '10'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  clearTimeout(killer);
  assert.equal(signal, null, `the benchmark had to be killed; it printed:\n${stdout}\n${stderr}`);
  assert.equal(code, 0, stderr);
  const summary = stdout.split('\n').find((l) => l.startsWith('bench: '));
  assert.ok(summary, stdout);
  assert.match(summary, /cpu_s_per_gib=\d+\.\d+/);
  assert.match(summary, /ours\/limit=\d+\.\d+/);
  assert.match(stdout, /resume after a kill at ~50%: 8 parts planned/);
});
