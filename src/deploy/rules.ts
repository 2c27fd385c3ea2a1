/**
 * Per-file headers in one step: ordered rules, each a pattern (written like a line of `path`, matched against
 * the file's path relative to the common root, i.e. its key without `destination`) and the fields it sets.
 * For each field the last matching rule wins, as with `!` lines in `path`, so a broad rule comes first and
 * exceptions follow. Two spellings, told apart by the first line:
 *
 *   - glob: '**\/*.html'               # a YAML list of mappings
 *     cache-control: no-cache
 *
 *   **\/*.html: cache-control=no-cache  # or one rule per line: `pattern: field=value, field=value`
 *
 * In the line form a field starts after a comma only where a field name and `=` follow, so values keep their
 * own commas (`cache-control=public, max-age=31536000, immutable`) and semicolons (`content-type=text/html;
 * charset=utf-8`).
 */
import { parse } from 'yaml';
import { ACLS, ALLOWED_EXTRA_HEADERS, INPUT, STORAGE_CLASSES } from './constants.ts';
import { matchesRelative } from './files.ts';
import { encodeContentDisposition, headerValueProblem, isToken } from './header-values.ts';
import { escapeText } from './log-line.ts';
import { SettingError, ref } from './setting-error.ts';

export interface HeaderRule {
  /** 1-based, as errors and the docs count. */
  index: number;
  glob: string;
  /** Request headers this rule sets, lower case. */
  headers: Record<string, string>;
}

/** Fields with a header of another name. */
const RENAMED: Record<string, string> = { acl: 'x-oss-object-acl', 'storage-class': 'x-oss-storage-class' };
const FIELDS = ['cache-control', 'content-type', 'acl', 'storage-class', ...ALLOWED_EXTRA_HEADERS] as const;
const FIELD_LIST = `${FIELDS.join(', ')} or x-oss-meta-*`;
const META = /^x-oss-meta-[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const CONTENT_TYPE = /^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/;

function ruleError(
  index: number,
  glob: string | undefined,
  text: string,
  allowed: string,
  value?: string,
): never {
  const where = `rule ${index}${glob === undefined ? '' : ` (\`${escapeText(glob)}\`)`}`;
  throw new SettingError(INPUT.rules, `${ref(INPUT.rules, true)}: ${where}: ${text}; allowed ${allowed}`, {
    ...(value === undefined ? {} : { value }),
    allowed,
  });
}

function headerOf(index: number, glob: string, rawField: string, rawValue: string): [string, string] {
  const field = rawField.trim().toLowerCase();
  const value = rawValue.trim();
  const known = (FIELDS as readonly string[]).includes(field);
  if (!known && !(META.test(field) && isToken(rawField.trim())))
    ruleError(index, glob, `unknown field \`${escapeText(rawField.trim())}\``, FIELD_LIST, rawField);
  const got = `\`${field}\` got \`${escapeText(value)}\``;
  if (value === '') ruleError(index, glob, `\`${field}\` has no value`, 'a value after `=` (or `:` in YAML)');
  if (field === 'acl' || field === 'storage-class') {
    const allowed: readonly string[] = field === 'acl' ? ACLS : STORAGE_CLASSES;
    const hit = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
    if (!hit) ruleError(index, glob, got, allowed.map((a) => `\`${a}\``).join(', '), value);
    return [RENAMED[field]!, hit];
  }
  if (field === 'content-type' && !CONTENT_TYPE.test(value))
    ruleError(index, glob, got, 'a MIME type such as `text/html; charset=utf-8`', value);
  const sent = field === 'content-disposition' ? encodeContentDisposition(value) : value;
  const problem = headerValueProblem(field, sent);
  if (problem)
    ruleError(index, glob, problem.replace(/; allowed .*$/, ''), 'visible ASCII, spaces and tabs', value);
  return [field, sent];
}

/** Why a `rules` or `publish-last` pattern can never match a relative path, or undefined when it can. */
export function relativePatternProblem(pattern: string): string | undefined {
  if (pattern === '') return 'is empty';
  if (pattern.startsWith('!')) return 'starts with `!`';
  // relative paths never start with `/`: such a pattern (a web path, `/assets/**`) would silently match nothing
  if (pattern.startsWith('/'))
    return `starts with \`/\`, and paths are matched relative to the common root (write \`${escapeText(pattern.replace(/^\/+/, ''))}\`)`;
  if (pattern.split('/').some((s) => s === '..' || s === '.')) return 'has a `.` or `..` segment';
  return undefined;
}

export const RELATIVE_PATTERN_ALLOWED =
  'a pattern like a line of `path`, relative to the common root (no leading `/`), without `!`, `.` or `..` segments';

function checkGlob(index: number, glob: string): string {
  const g = glob.trim();
  const problem = relativePatternProblem(g);
  if (problem !== undefined)
    ruleError(index, undefined, `the pattern \`${escapeText(g)}\` ${problem}`, RELATIVE_PATTERN_ALLOWED, g);
  return g;
}

function fieldsOf(index: number, glob: string, pairs: Array<[string, string]>): HeaderRule {
  const headers: Record<string, string> = {};
  for (const [f, v] of pairs) {
    const [name, value] = headerOf(index, glob, f, v);
    if (name in headers)
      ruleError(index, glob, `\`${f.trim().toLowerCase()}\` is set twice`, 'each field once per rule');
    headers[name] = value;
  }
  if (pairs.length === 0) ruleError(index, glob, 'no field is set', `one or more of ${FIELD_LIST}`);
  return { index, glob, headers };
}

const FIELD_START = new RegExp(`,\\s*(?=(?:${FIELDS.join('|')}|x-oss-meta-[^=,\\s]+)\\s*=)`, 'i');

function fromLines(text: string): HeaderRule[] {
  const rules: HeaderRule[] = [];
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const index = rules.length + 1;
    const colon = /:\s/.exec(t);
    if (!colon)
      ruleError(
        index,
        undefined,
        `\`${escapeText(t)}\` has no \`: \` after its pattern`,
        '`pattern: field=value, field=value` lines or a YAML list',
        t,
      );
    const glob = checkGlob(index, t.slice(0, colon.index));
    const pairs = t
      .slice(colon.index + colon[0].length)
      .split(FIELD_START)
      .map((part): [string, string] => {
        const eq = part.indexOf('=');
        if (eq <= 0)
          ruleError(
            index,
            glob,
            `\`${escapeText(part.trim())}\` is not \`field=value\``,
            `\`field=value\` pairs of ${FIELD_LIST}`,
            part,
          );
        return [part.slice(0, eq), part.slice(eq + 1)];
      });
    rules.push(fieldsOf(index, glob, pairs));
  }
  return rules;
}

function fromYaml(text: string): HeaderRule[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new SettingError(
      INPUT.rules,
      `${ref(INPUT.rules, true)}: not valid YAML (${(e as Error).message.split('\n')[0]}); allowed a YAML list of mappings with \`glob\` and fields`,
      { allowed: 'a YAML list of mappings' },
    );
  }
  if (!Array.isArray(doc))
    return ruleError(0, undefined, 'the YAML is not a list', 'a YAML list of mappings');
  return doc.map((item: unknown, i) => {
    const index = i + 1;
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      ruleError(index, undefined, 'is not a mapping', 'a mapping with `glob` and fields');
    const { glob, ...rest } = item as Record<string, unknown>;
    if (typeof glob !== 'string')
      ruleError(index, undefined, '`glob` is missing or not text', 'a `glob` pattern in every rule');
    const g = checkGlob(index, glob);
    const pairs = Object.entries(rest).map(([k, v]): [string, string] => {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
        ruleError(
          index,
          g,
          `\`${escapeText(k)}\` is ${v === null ? 'empty' : 'not text'}`,
          'text values (numbers are read as text)',
        );
      return [k, String(v)];
    });
    return fieldsOf(index, g, pairs);
  });
}

/** The rules of the `rules` setting, in order; empty when none are given. */
export function parseRules(raw: string): HeaderRule[] {
  const text = raw.replace(/^\uFEFF/, '');
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  if (first === undefined) return [];
  return /^\s*-(\s|$)/.test(first) ? fromYaml(text) : fromLines(text);
}

/** The headers the rules give a file: for each field, the last rule that matches its relative path. */
export function ruleHeaders(rel: string, rules: readonly HeaderRule[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of rules) if (matchesRelative(rel, r.glob)) Object.assign(out, r.headers);
  return out;
}
