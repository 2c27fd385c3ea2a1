// A tag is released with its CHANGELOG section: the notes script finds it, and refuses a version without one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { CHANGELOG, releaseNotes } from '../../scripts/release-notes.ts';

const root = join(import.meta.dirname, '../..');

test('release notes are the CHANGELOG section of the version, up to the next section', () => {
  const text = '# Changelog\n\n## 1.1.0 - 2026-12-01\n\n- new\n\n### Fixes\n- fixed\n\n## 1.0.0\n\n- first\n';
  assert.equal(releaseNotes(text, '1.1.0'), '- new\n\n### Fixes\n- fixed');
  assert.equal(releaseNotes(text, '1.0.0'), '- first');
  assert.equal(releaseNotes(text, '1.0'), undefined);
  assert.equal(releaseNotes(text, '2.0.0'), undefined);
});

test('the notes script prints the package version section, and fails naming a version the CHANGELOG lacks', async () => {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  const script = join(root, 'scripts/release-notes.ts');
  const ok = await promisify(execFile)(process.execPath, [script, `v${pkg.version}`]);
  assert.equal(ok.stdout.trim(), releaseNotes(await readFile(CHANGELOG, 'utf8'), pkg.version));
  await assert.rejects(promisify(execFile)(process.execPath, [script, 'v9.9.9']), /no section `## 9\.9\.9`/);
});

test('the release workflow tests the tag, writes the notes and moves the major tag only for releases', async () => {
  const wf = parse(await readFile(join(root, '.github/workflows/release.yml'), 'utf8')) as {
    on: { push: { tags: string[] } };
    jobs: { release: { steps: Array<{ run?: string; if?: string; name?: string }> } };
  };
  assert.deepEqual(wf.on.push.tags, ['v*']);
  const steps = wf.jobs.release.steps;
  const runs = steps.map((s) => s.run ?? '').join('\n');
  assert.match(runs, /npm ci && npm test/);
  assert.match(runs, /scripts\/release-notes\.ts/);
  const move = steps.find((s) => s.name === 'Move the major tag');
  assert.ok(move?.if?.includes("contains(github.ref_name, '-')"));
});
