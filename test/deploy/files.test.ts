// A pattern without wildcards (`dist`, `!dist/drafts`) is matched by comparing paths, not by the glob matcher:
// it must select exactly what the same pattern written as a glob (`dist/**`) selects, on a tree of names that
// share its prefix, hold glob characters, or are hidden.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { findFiles } from '../../src/deploy/files.ts';
import { tempDir } from '../helpers/files.ts';

const TREE = [
  'dist/a.js',
  'dist/[x].js',
  'dist/*.js',
  'dist/{a,b}.css',
  'dist/.hidden/h.js',
  'dist/.env',
  'dist/drafts/d.html',
  'dist/drafts2/e.html',
  'dist/sub/dist/f.js',
  'dist2/b.js',
  'dist-old/c.js',
  'distx.js',
  'other/dist/g.js',
];

for (const [literal, glob] of [
  ['dist', 'dist/**'],
  ['dist/', 'dist/**'],
  ['./dist', 'dist/**'],
  ['dist\n!dist/drafts', 'dist/**\n!dist/drafts/**'],
  ['dist/sub', 'dist/sub/**'],
  ['dist/a.js', 'dist/a.j?'],
  ['dist\ndist2', 'dist/**\ndist2/**'],
] as const) {
  for (const includeHiddenFiles of [false, true]) {
    test(`\`${literal.replace('\n', '⏎')}\` selects what \`${glob.replace('\n', '⏎')}\` does (hidden files ${includeHiddenFiles ? 'in' : 'out'})`, async (t) => {
      const dir = await tempDir(t);
      for (const rel of TREE) {
        await mkdir(dirname(join(dir, rel)), { recursive: true });
        await writeFile(join(dir, rel), rel);
      }
      const find = async (patterns: string) =>
        (
          await findFiles({
            patterns: patterns.split('\n'),
            destination: 'web',
            includeHiddenFiles,
            contentType: undefined,
            cwd: dir,
          })
        ).map((f) => f.key);
      const byLiteral = await find(literal);
      assert.ok(byLiteral.length > 0);
      assert.deepEqual(byLiteral, await find(glob));
      assert.ok(
        byLiteral.every((k) => !/dist2\/|dist-old|distx|other/.test(k) || literal.includes('dist2')),
        byLiteral.join(' '),
      );
    });
  }
}
