// The README is a newcomer's first stop: its input and output tables must say what action.yml says, and its
// set-up commands must be the ones CI runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { README, readManifest, withTables } from '../../scripts/action-docs.ts';

const root = join(import.meta.dirname, '../..');

test('the README input and output tables match action.yml (run `npm run docs` after changing it)', async () => {
  const readme = await readFile(README, 'utf8');
  const manifest = await readManifest();
  assert.equal(readme, withTables(readme, manifest));
  for (const name of Object.keys(manifest.inputs)) assert.ok(readme.includes(`| \`${name}\` |`), name);
  for (const name of Object.keys(manifest.outputs)) assert.ok(readme.includes(`| \`${name}\` |`), name);
});

test('the README workflow example sets every input and reads every output', async () => {
  const readme = await readFile(README, 'utf8');
  const manifest = await readManifest();
  const section = readme.slice(readme.indexOf('### Every input and output'));
  const example = section.slice(section.indexOf('```yaml'), section.indexOf('```\n', 8));
  for (const name of Object.keys(manifest.inputs))
    assert.match(example, new RegExp(`^\\s+${name}:`, 'm'), name);
  for (const name of Object.keys(manifest.outputs)) assert.ok(example.includes(`outputs.${name}`), name);
});

test('the README set-up commands are the ones .ci/run and package.json provide', async () => {
  const readme = await readFile(README, 'utf8');
  const ci = await readFile(join(root, '.ci/run'), 'utf8');
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.match(readme, /^npm ci && npm run demo\b/m);
  assert.match(readme, /^npm ci && npm test\b/m);
  assert.match(ci, /npm ci && npm test/);
  assert.ok(pkg.scripts.demo && pkg.scripts.test);
});
