/**
 * Which files go up and under which keys, with upload-artifact's semantics: one pattern per line, `!` excludes
 * (the last matching pattern wins), a pattern naming a directory stands for everything under it, hidden files and
 * directories only with include-hidden-files, symlinks followed (a loop is walked once), the common root of the
 * search paths, and `destination` + the path relative to that root.
 * https://github.com/actions/upload-artifact#upload-an-entire-directory
 */
import { isUtf8 } from 'node:buffer';
import type { Dirent, Stats } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { dirname, matchesGlob, posix, relative, resolve, sep } from 'node:path';
import { contentTypeFor } from './content-type.ts';
import { INPUT } from './constants.ts';
import { describeBytes, escapeText } from './log-line.ts';
import { SettingError, ref } from './setting-error.ts';

export interface FoundFile {
  file: string;
  key: string;
  /** The path relative to the common root, `/`-separated: what `rules` and `publish-last` match. */
  rel: string;
  size: number;
  contentType: string;
}

export interface FileSearch {
  patterns: string[];
  destination: string;
  includeHiddenFiles: boolean;
  contentType: string | undefined;
  /** Relative patterns start here. @default process.cwd() */
  cwd?: string;
  /** Files must resolve inside this dir (symlinks included); the command line passes none. */
  workspace?: string;
  /**
   * The checkpoint dir: files under it are never uploaded (they would be listed again on a persistent
   * workspace and break the next run's keys); a dir that holds the files themselves is refused.
   */
  checkpointDir?: string;
  /** Told how many files were left out for being under `checkpointDir`. */
  onNotice?: (message: string) => void;
  /**
   * Told how many files match so far, as the walk goes: the deploy opens connections in proportion while
   * the search still runs.
   */
  onMatched?: (count: number) => void;
}

/** The deepest directory containing every path (upload-artifact's least common ancestor). */
export function commonRoot(paths: readonly string[]): string {
  const split = paths.map((p) => resolve(p).split(sep));
  const first = split[0] ?? [];
  let n = first.length;
  for (const parts of split) {
    let i = 0;
    while (i < n && i < parts.length && parts[i] === first[i]) i++;
    n = i;
  }
  return first.slice(0, n).join(sep) || sep;
}

/** The path of `file` below `root` with `/` separators. */
function relativePath(root: string, file: string): string {
  return relative(root, file).split(sep).join('/');
}

/** `destination` + relative path, `/` separators, exactly one `/` between them. */
export function objectKey(destination: string, root: string, file: string): string {
  const rel = relativePath(root, file);
  if (!destination) return rel;
  return `${destination.replace(/\/+$/, '')}/${rel}`;
}

const isInside = (path: string, dir: string): boolean => path === dir || path.startsWith(dir + sep);

/** One line of `path`, resolved: where its search starts and what it matches. */
interface Pattern {
  given: string;
  negate: boolean;
  /** Absolute, with every segment's leading dot mapped (see {@link dotless}). */
  glob: string;
  /** The literal directory (or file) the search starts from. */
  root: string;
  /** No wildcard at all: the pattern is `root`, and matches it and what lies under it. */
  literal: boolean;
}

const MAGIC = /[*?[\]{}()!+@]/;
/** Stands for a leading dot: `matchesGlob` never lets a wildcard match a dot-name, and hidden ones are wanted. */
const DOT = '\uE000';

/** Each segment's leading `.` mapped to a private-use character, so `*` and `**` match dot-names too. */
function dotless(path: string, separator: string = sep): string {
  return path
    .split(separator)
    .map((s) => (s.startsWith('.') && s !== '.' && s !== '..' ? DOT + s.slice(1) : s))
    .join(separator);
}

/**
 * Whether a `/`-separated relative path matches a pattern written like a line of `path` (`**`, `*`, `{a,b}`;
 * a pattern naming a directory stands for everything under it; wildcards match dot-names too).
 */
export function matchesRelative(rel: string, pattern: string): boolean {
  const path = dotless(rel, '/');
  const glob = dotless(pattern.replace(/^(\.\/)+/, '').replace(/\/+$/, ''), '/');
  return posix.matchesGlob(path, glob) || posix.matchesGlob(path, `${glob}/**`);
}

function parsePattern(line: string, cwd: string): Pattern {
  const negate = line.startsWith('!');
  const given = negate ? line.slice(1).trim() : line;
  const body = given.replace(/^(\.\/)+/, '');
  if (body.split('/').some((s) => s === '.' || s === '..') || body === '' || body === '.') {
    throw new SettingError(
      INPUT.path,
      `${ref(INPUT.path, true)}: got \`${escapeText(line)}\`; allowed patterns without \`.\` or \`..\` segments, written from the ${cwd === process.cwd() ? 'current directory' : 'workspace'} down (e.g. \`out/**\`)`,
      { value: line, allowed: 'patterns without `.` or `..` segments' },
    );
  }
  const absolute = resolve(cwd, body);
  const segments = absolute.split(sep);
  const firstMagic = segments.findIndex((s) => MAGIC.test(s));
  const root = firstMagic < 0 ? absolute : segments.slice(0, firstMagic).join(sep) || sep;
  // the glob matcher reads a backslash as a separator, while a POSIX name may hold one: such a pattern is
  // left to the matcher, as it always was
  const literal = firstMagic < 0 && (sep === '\\' || !absolute.includes('\\'));
  return { given: line, negate, glob: dotless(absolute), root, literal };
}

/** Whether `pattern` (or, naming a directory, everything under it) matches the dot-mapped `path`. */
function matches(path: string, pattern: Pattern): boolean {
  // a directory named as it is (the usual `dist`): a comparison instead of two glob matches for each file of
  // what can be a tree of a hundred thousand
  if (pattern.literal)
    return (
      path === pattern.glob || path.startsWith(pattern.glob.endsWith(sep) ? pattern.glob : pattern.glob + sep)
    );
  return matchesGlob(path, pattern.glob) || matchesGlob(path, `${pattern.glob}${sep}**`);
}

/** The last matching pattern decides, as in @actions/glob; undefined when no pattern matches. */
function decide(path: string, patterns: readonly Pattern[]): Pattern | undefined {
  let last: Pattern | undefined;
  for (const p of patterns) if (matches(path, p)) last = p;
  return last;
}

interface Walk {
  /** The files the patterns select (the last matching pattern decides), in walk order. */
  matched: string[];
  /** The include patterns that matched some file. */
  hits: Set<Pattern>;
  undecodable: string[];
  /** What the walk learned of each file, so no file is stat'ed or resolved twice. */
  meta: Map<string, { stats: Stats; real: string }>;
}

/**
 * Every file under the roots: hidden names left out unless asked for, symlinks followed (a directory already
 * on the way down is not entered again), names that are not UTF-8 collected by their bytes. A directory's
 * entries are stat'ed together: one at a time, a 10,000-file tree waits on 10,000 round trips to the
 * file-system threads before the first request can go out.
 */
async function walk(
  roots: readonly string[],
  includeHidden: boolean,
  patterns: readonly Pattern[],
  onMatched: ((count: number) => void) | undefined,
  /** Directories whose files match but are left out later (the checkpoint dir): not counted for `onMatched`. */
  leftOut: readonly string[],
): Promise<Walk> {
  const out: Walk = { matched: [], hits: new Set(), undecodable: [], meta: new Map() };
  const includes = patterns.filter((p) => !p.negate);
  let counted = 0;
  const select = (file: string, real: string): void => {
    const mapped = dotless(file);
    for (const p of includes) if (!out.hits.has(p) && matches(mapped, p)) out.hits.add(p);
    if (decide(mapped, patterns)?.negate === false) {
      out.matched.push(file);
      if (!underAny(file, real, leftOut)) onMatched?.(++counted);
    }
  };
  const visit = async (
    path: string,
    ancestors: ReadonlySet<string>,
    known?: { stats: Stats | undefined; real: string | undefined },
  ): Promise<void> => {
    const info = known ? known.stats : await stat(path).catch(() => undefined);
    if (!info) return;
    if (info.isFile()) {
      if (!out.meta.has(path)) {
        const real = known?.real ?? (await realpath(path).catch(() => path));
        out.meta.set(path, { stats: info, real });
        select(path, real);
      }
      return;
    }
    if (!info.isDirectory()) return;
    const real = known?.real ?? (await realpath(path).catch(() => path));
    if (ancestors.has(real)) return;
    const below = new Set(ancestors).add(real);
    let entries: Dirent<Buffer>[];
    try {
      entries = await readdir(Buffer.from(path), { withFileTypes: true, encoding: 'buffer' });
    } catch {
      return;
    }
    entries.sort((a, b) => Buffer.compare(a.name, b.name));
    const kids: Array<{ path: string; link: boolean; name: string }> = [];
    for (const entry of entries) {
      const name = entry.name;
      if (!includeHidden && name[0] === 0x2e) continue;
      if (!isUtf8(name)) {
        const bytes = Buffer.concat([Buffer.from(path + sep), name]);
        const shown = bytes.toString();
        if (decide(dotless(shown), patterns)?.negate === false) out.undecodable.push(describeBytes(bytes));
        continue;
      }
      kids.push({ path: path + sep + name.toString(), link: entry.isSymbolicLink(), name: name.toString() });
    }
    // each entry is visited as soon as its stat is in: the first files match (and the deploy's first requests
    // go) while the rest of a large directory is still being stat'ed
    const stats = kids.map((k) => stat(k.path).catch(() => undefined));
    // an entry that is no link resolves to its directory's real path plus its name
    for (const [i, k] of kids.entries())
      await visit(k.path, below, { stats: await stats[i], real: k.link ? undefined : real + sep + k.name });
  };
  for (const root of roots) await visit(root, new Set());
  return out;
}

/** Search roots without those inside another one (each file is walked once). */
function outermost(roots: readonly string[]): string[] {
  const sorted = [...new Set(roots)].sort();
  return sorted.filter((r) => !sorted.some((o) => o !== r && isInside(r, o)));
}

/** Find the files; empty when nothing matches (the caller applies `if-no-files-found`). */
export async function findFiles(search: FileSearch): Promise<FoundFile[]> {
  const cwd = search.cwd ?? process.cwd();
  const patterns = search.patterns.map((p) => parsePattern(p, cwd));
  const includes = patterns.filter((p) => !p.negate);
  const searchPaths = outermost(includes.map((p) => p.root));
  const dirs = search.checkpointDir === undefined ? [] : await checkpointDirs(search.checkpointDir, cwd);
  const found = await walk(searchPaths, search.includeHiddenFiles, patterns, search.onMatched, dirs);
  if (found.undecodable.length > 0) {
    const bad = found.undecodable;
    throw new SettingError(
      INPUT.path,
      `${ref(INPUT.path, true)}: ${bad.length} file name(s) are not valid UTF-8 and cannot become object keys: ${bad.slice(0, 20).join(', ')}${bad.length > 20 ? `, and ${bad.length - 20} more` : ''}; allowed UTF-8 names: rename them (e.g. \`convmv -f latin1 -t utf8\`) or exclude them with a \`!\` pattern`,
      { allowed: 'UTF-8 names' },
    );
  }
  let matched = found.matched.sort();
  const idle = includes.filter((p) => !found.hits.has(p));
  // a line that matches nothing beside lines that do is a typo or a stray word (`--overwrite false`), and it
  // moves the common root: refused rather than dropped in silence
  if (idle.length > 0 && idle.length < includes.length) {
    throw new SettingError(
      INPUT.path,
      `${ref(INPUT.path, true)}: ${idle.map((p) => `\`${escapeText(p.given)}\``).join(', ')} matched no file while other patterns did; allowed patterns that each match at least one file (remove or fix the line)`,
      { value: idle.map((p) => p.given).join('\n'), allowed: 'patterns that each match a file' },
    );
  }
  if (search.checkpointDir !== undefined)
    matched = await withoutCheckpoints(matched, searchPaths, search, found.meta, dirs);
  if (matched.length === 0) return [];
  const given = search.workspace;
  const workspace = given === undefined ? undefined : await realpath(given).catch(() => resolve(given));
  // a single search path that is a file roots at its directory, as upload-artifact does
  let root = commonRoot(searchPaths);
  if (searchPaths.length === 1 && (await stat(searchPaths[0]!)).isFile()) root = dirname(searchPaths[0]!);
  if (matched.some((f) => !f.startsWith(root + sep))) root = commonRoot(matched.map((f) => dirname(f)));

  const files: FoundFile[] = [];
  const byKey = new Map<string, string>();
  for (const file of matched) {
    const seen = found.meta.get(file);
    const real = seen?.real ?? (await realpath(file));
    if (workspace !== undefined && !isInside(real, workspace)) {
      throw new SettingError(
        INPUT.path,
        `${ref(INPUT.path, true)}: ${escapeText(file)} resolves to ${escapeText(real)}, outside the workspace ${workspace}; only files inside the workspace are uploaded`,
        { value: file, allowed: 'files inside the workspace' },
      );
    }
    const info = seen?.stats ?? (await stat(real));
    if (!info.isFile()) continue;
    const key = objectKey(search.destination, root, file);
    if (Buffer.byteLength(key) > 1023) {
      throw new SettingError(
        INPUT.destination,
        `the object key for ${escapeText(file)} is ${Buffer.byteLength(key)} bytes; OSS allows at most 1023`,
        { value: key, allowed: 'keys of at most 1023 bytes' },
      );
    }
    const other = byKey.get(key);
    if (other !== undefined) {
      throw new SettingError(
        INPUT.path,
        `${ref(INPUT.path, true)}: ${escapeText(other)} and ${escapeText(file)} both map to the key \`${escapeText(key)}\`; narrow the patterns`,
        { value: key, allowed: 'one file per key' },
      );
    }
    byKey.set(key, file);
    files.push({
      file,
      key,
      rel: relativePath(root, file),
      size: info.size,
      contentType: search.contentType ?? contentTypeFor(file),
    });
  }
  return files;
}

/** The checkpoint dir as given and as it resolves. */
async function checkpointDirs(dir: string, cwd: string): Promise<string[]> {
  const given = resolve(cwd, dir);
  return [...new Set([given, await realpath(given).catch(() => given)])];
}

/** Whether a file the walk found (an absolute path), by its path or its real path, lies under one of `dirs`. */
function underAny(file: string, real: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => isInside(file, d) || isInside(real, d));
}

/** The matches minus those under the checkpoint dir; refuses a checkpoint dir that holds a search root. */
async function withoutCheckpoints(
  matched: readonly string[],
  searchPaths: readonly string[],
  search: FileSearch,
  meta: Walk['meta'],
  dirs: readonly string[],
): Promise<string[]> {
  const given = dirs[0]!;
  const holder = searchPaths.find((p) => dirs.some((d) => isInside(resolve(p), d)));
  if (holder !== undefined) {
    throw new SettingError(
      INPUT.checkpointDir,
      `${ref(INPUT.checkpointDir, true)}: got \`${escapeText(search.checkpointDir!)}\`, which holds the files to upload (${escapeText(holder)}); allowed a directory outside them, such as the default under RUNNER_TEMP`,
      { value: search.checkpointDir!, allowed: 'a directory outside the files to upload' },
    );
  }
  const kept: string[] = [];
  for (const file of matched) {
    const real = meta.get(file)?.real ?? (await realpath(file).catch(() => file));
    if (!underAny(file, real, dirs)) kept.push(file);
  }
  const left = matched.length - kept.length;
  if (left > 0)
    search.onNotice?.(
      `left out ${left} file(s) under checkpoint-dir ${escapeText(given)}: checkpoints are never uploaded`,
    );
  return kept;
}
