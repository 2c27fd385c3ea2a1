/**
 * The README's input and output tables are generated from `action.yml`, so the two cannot drift:
 * `npm run docs` rewrites them, and a test fails when the README differs from what this would write.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';

interface ActionInput {
  description: string;
  required?: boolean;
  default?: string;
}

interface ActionManifest {
  inputs: Record<string, ActionInput>;
  outputs: Record<string, { description: string }>;
}

const ROOT = join(import.meta.dirname, '..');
export const README = join(ROOT, 'README.md');
const START = '<!-- action-docs:start (generated from action.yml by `npm run docs`) -->';
const END = '<!-- action-docs:end -->';

export async function readManifest(): Promise<ActionManifest> {
  return parse(await readFile(join(ROOT, 'action.yml'), 'utf8')) as ActionManifest;
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function actionTables(m: ActionManifest): string {
  const inputs = Object.entries(m.inputs).map(([name, i]) => {
    const dflt = i.required ? '**required**' : i.default ? `\`${i.default}\`` : '(empty)';
    return `| \`${name}\` | ${cell(dflt)} | ${cell(i.description)} |`;
  });
  const outputs = Object.entries(m.outputs).map(([name, o]) => `| \`${name}\` | ${cell(o.description)} |`);
  return [
    START,
    // prettier would realign the tables and the check would fight it
    '<!-- prettier-ignore-start -->',
    '',
    '### Inputs',
    '',
    '| input | default | what it does, allowed values |',
    '| --- | --- | --- |',
    ...inputs,
    '',
    '### Outputs',
    '',
    '| output | value |',
    '| --- | --- |',
    ...outputs,
    '',
    '<!-- prettier-ignore-end -->',
    END,
  ].join('\n');
}

/** The README with its generated block replaced by the tables for `manifest`. */
export function withTables(readme: string, manifest: ActionManifest): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md must contain the markers ${START} and ${END}`);
  return readme.slice(0, a) + actionTables(manifest) + readme.slice(b + END.length);
}

if (import.meta.main) {
  const readme = await readFile(README, 'utf8');
  const next = withTables(readme, await readManifest());
  if (next !== readme) await writeFile(README, next);
  process.stdout.write(
    next === readme ? 'README.md tables already match action.yml\n' : 'README.md tables updated\n',
  );
}
