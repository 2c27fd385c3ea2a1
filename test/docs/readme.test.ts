// The README is a newcomer's first stop: its input and output tables must say what action.yml says, its
// example must state the defaults, and its set-up commands must be the ones CI runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { README, readManifest, withTables } from '../../scripts/action-docs.ts';

const root = join(import.meta.dirname, '../..');

test('the README input and output tables match action.yml (run `npm run docs` after changing it)', async () => {
  const readme = await readFile(README, 'utf8');
  const manifest = await readManifest();
  assert.equal(readme, withTables(readme, manifest));
  for (const name of Object.keys(manifest.inputs)) assert.ok(readme.includes(`| \`${name}\` |`), name);
  for (const name of Object.keys(manifest.outputs)) assert.ok(readme.includes(`| \`${name}\` |`), name);
});

/** The YAML of the "Every input and output" example. */
function everyInputExample(readme: string): string {
  const section = readme.slice(readme.indexOf('### Every input and output'));
  const start = section.indexOf('```yaml\n') + '```yaml\n'.length;
  return section.slice(start, section.indexOf('```\n', start));
}

test('the README workflow example sets every input and reads every output', async () => {
  const example = everyInputExample(await readFile(README, 'utf8'));
  const manifest = await readManifest();
  for (const name of Object.keys(manifest.inputs))
    assert.match(example, new RegExp(`^\\s+${name}:`, 'm'), name);
  for (const name of Object.keys(manifest.outputs)) assert.ok(example.includes(`outputs.${name}`), name);
});

test('the README example states each input at its action.yml default', async () => {
  const example = everyInputExample(await readFile(README, 'utf8'));
  const manifest = await readManifest();
  const steps = parse(example) as Array<{ with?: Record<string, unknown> }>;
  const given = steps[0]!.with!;
  // the credentials come from secrets there; their default (empty) falls back to the environment
  const fromSecrets = ['access-key-id', 'access-key-secret'];
  for (const [name, input] of Object.entries(manifest.inputs)) {
    if (input.required || fromSecrets.includes(name)) continue;
    assert.equal(String(given[name]), input.default ?? '', `${name} in the README example`);
  }
});

test('the README set-up installs once, runs on the Node that engines names, and CI runs the same', async () => {
  const readme = await readFile(README, 'utf8');
  const ci = await readFile(join(root, '.ci/run'), 'utf8');
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
    engines: { node: string };
  };
  const setup = readme.slice(
    readme.indexOf('## Set-up'),
    readme.indexOf('\n## ', readme.indexOf('## Set-up') + 1),
  );
  const commands = setup.slice(setup.indexOf('```sh\n'), setup.indexOf('```\n', setup.indexOf('```sh\n')));
  assert.equal(commands.match(/npm (ci|install)\b/g)?.length, 1, 'one install');
  assert.match(commands, /^npm run demo\b/m);
  assert.match(commands, /^npm test\b/m);
  const major = /(\d+)/.exec(pkg.engines.node)![1]!;
  assert.match(setup, new RegExp(`Node ${major} or newer`));
  assert.match(setup, /v2\.327\.1\]\([^)]*\) or later/, 'the runner version that runs node24');
  assert.match(ci, /npm ci && npm test/);
  assert.ok(pkg.scripts.demo && pkg.scripts.test);
});

test('the README starts the local server with a bucket, so uploads to it do not answer NoSuchBucket', async () => {
  const readme = await readFile(README, 'utf8');
  const lines = readme.split('\n').filter((l) => l.includes('npm run server'));
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l, /--bucket \S+|--auto-create-buckets/, l);
});
