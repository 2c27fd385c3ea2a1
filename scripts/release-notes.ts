/**
 * `node scripts/release-notes.ts 1.2.3`: prints the CHANGELOG section of that version (without its heading), the
 * body of the GitHub release the release workflow creates. Fails when the CHANGELOG has no such section, so a
 * tag cannot be released without notes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const CHANGELOG = join(import.meta.dirname, '..', 'CHANGELOG.md');

/** The text under `## {version}` up to the next `## ` heading, trimmed; undefined when there is none. */
export function releaseNotes(changelog: string, version: string): string | undefined {
  const lines = changelog.split('\n');
  const heading = (l: string): boolean => /^## /.test(l);
  const start = lines.findIndex((l) => heading(l) && l.slice(3).split(/\s+/)[0] === version);
  if (start < 0) return undefined;
  const next = lines.findIndex((l, i) => i > start && heading(l));
  const body = lines
    .slice(start + 1, next < 0 ? undefined : next)
    .join('\n')
    .trim();
  return body === '' ? undefined : body;
}

if (import.meta.main) {
  const version = (process.argv[2] ?? '').replace(/^v/, '');
  const notes = releaseNotes(await readFile(CHANGELOG, 'utf8'), version);
  if (notes === undefined) {
    process.stderr.write(
      `CHANGELOG.md has no section \`## ${version}\`; add one before tagging v${version}\n`,
    );
    process.exit(1);
  }
  process.stdout.write(`${notes}\n`);
}
