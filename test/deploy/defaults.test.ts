// One place holds the defaults: action.yml must state the same ones, and the deploy layer must not reach the
// Actions toolkit (the command line bundles it otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEFAULTS } from '../../src/deploy/constants.ts';

const ROOT = join(import.meta.dirname, '../..');

test('action.yml states the defaults the settings use', async () => {
  const action = parse(await readFile(join(ROOT, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { default?: string }>;
  };
  for (const [name, value] of Object.entries(DEFAULTS))
    assert.equal(action.inputs[name]?.default ?? '', value, `default of ${name}`);
  const without = Object.keys(action.inputs).filter(
    (n) => !(n in DEFAULTS) && !['path', 'bucket', 'checkpoint-dir'].includes(n),
  );
  assert.deepEqual(without, [], 'every input with a default is in DEFAULTS');
});

/** Every module `entry` reaches through relative imports, and the packages they import. */
async function importGraph(entry: string): Promise<{ files: Set<string>; packages: Set<string> }> {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = async (file: string): Promise<void> => {
    if (files.has(file)) return;
    files.add(file);
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)[^'"]*?from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) await visit(join(file, '..', spec));
      else packages.add(spec);
    }
  };
  await visit(entry);
  return { files, packages };
}

test('the command line and the deploy layer reach no @actions/* package and nothing of src/action', async () => {
  const entries = [
    join(ROOT, 'src/cli/index.ts'),
    ...(await readdir(join(ROOT, 'src/deploy'))).map((f) => join(ROOT, 'src/deploy', f)),
  ];
  for (const entry of entries) {
    const { files, packages } = await importGraph(entry);
    assert.deepEqual(
      [...packages].filter((p) => p.startsWith('@actions/')),
      [],
      `${entry} reaches the Actions toolkit`,
    );
    assert.deepEqual(
      [...files].filter((f) => f.includes('/src/action/')),
      [],
      `${entry} reaches src/action`,
    );
  }
});

test('the action description fits the Marketplace limit of 125 characters', async () => {
  const action = parse(await readFile(join(ROOT, 'action.yml'), 'utf8')) as { description: string };
  assert.ok(action.description.length <= 125, `${action.description.length} characters`);
});
