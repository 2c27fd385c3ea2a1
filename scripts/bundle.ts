/**
 * Builds dist/ with @vercel/ncc: dist/index.js (main step), dist/post.js (post step) and dist/cli.js (the
 * `oss-resumable-upload` command), plus the
 * package.json that marks them ESM and the licenses of what they bundle.
 *   node scripts/bundle.ts          rebuild dist/
 *   node scripts/bundle.ts --check  fail when the committed dist/ differs from a fresh build
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, mkdir, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const ncc = join(root, 'node_modules/@vercel/ncc/dist/ncc/cli.js');
const entries = [
  { source: 'src/action/index.ts', output: 'index.js', licenses: 'licenses.txt' },
  { source: 'src/action/post-entry.ts', output: 'post.js', licenses: undefined },
  { source: 'src/cli/index.ts', output: 'cli.js', licenses: undefined },
];

async function build(into: string): Promise<void> {
  await mkdir(into, { recursive: true });
  for (const entry of entries) {
    const out = await mkdtemp(join(tmpdir(), 'ncc-'));
    try {
      const args = [ncc, 'build', join(root, entry.source), '-o', out, '--quiet', '--target', 'es2023'];
      if (entry.licenses) args.push('--license', entry.licenses);
      execFileSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
      const made = await readdir(out);
      const extra = made.filter((f) => !['index.js', 'package.json', 'licenses.txt'].includes(f));
      if (extra.length > 0)
        throw new Error(`ncc emitted files the action would not ship: ${extra.join(', ')}`);
      await copyFile(join(out, 'index.js'), join(into, entry.output));
      await copyFile(join(out, 'package.json'), join(into, 'package.json'));
      if (entry.licenses) await copyFile(join(out, entry.licenses), join(into, entry.licenses));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }
}

if (process.argv.includes('--check')) {
  const fresh = await mkdtemp(join(tmpdir(), 'dist-'));
  try {
    await build(fresh);
    const names = (await readdir(fresh)).sort();
    const committed = (await readdir(join(root, 'dist')).catch(() => [] as string[])).sort();
    const differ: string[] = [];
    if (names.join() !== committed.join())
      differ.push(`files: [${committed.join(', ')}] vs fresh [${names.join(', ')}]`);
    for (const n of names) {
      const a = await readFile(join(fresh, n)).catch(() => Buffer.alloc(0));
      const b = await readFile(join(root, 'dist', n)).catch(() => Buffer.alloc(0));
      if (!a.equals(b)) differ.push(n);
    }
    if (differ.length > 0) {
      process.stderr.write(
        `dist/ differs from a fresh build of the sources (${differ.join('; ')}): run \`npm run bundle\` and commit dist/\n`,
      );
      process.exitCode = 1;
    } else {
      process.stdout.write('dist/ matches a fresh build\n');
    }
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
} else {
  await rm(join(root, 'dist'), { recursive: true, force: true });
  await build(join(root, 'dist'));
  process.stdout.write(`built dist/: ${(await readdir(join(root, 'dist'))).join(', ')}\n`);
}
