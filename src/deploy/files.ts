/**
 * Which files go up and under which keys: glob search (multi-line, `!` excludes), the common root of the
 * matches as upload-artifact computes it, and `destination` + the path relative to that root.
 */
import { isUtf8 } from 'node:buffer';
import { readdir, realpath, stat } from 'node:fs/promises';
import { dirname, extname, matchesGlob, relative, resolve, sep } from 'node:path';
import * as glob from '@actions/glob';
import { InputError } from './inputs.ts';
import { INPUT } from './constants.ts';
import { describeBytes, escapeText } from './log-line.ts';

export interface FoundFile {
  file: string;
  key: string;
  size: number;
  contentType: string;
}

export interface FileSearch {
  patterns: string[];
  destination: string;
  includeHiddenFiles: boolean;
  contentType: string | undefined;
  /** Files must resolve inside this dir (symlinks included); the command line passes none. */
  workspace?: string;
  /**
   * The checkpoint dir: files under it are never uploaded (they would be listed again on a persistent
   * workspace and break the next run's keys); a dir that holds the files themselves is refused.
   */
  checkpointDir?: string;
  /** Told how many files were left out for being under `checkpointDir`. */
  onNotice?: (message: string) => void;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.xml': 'application/xml',
  '.csv': 'text/csv; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mp3': 'audio/mpeg',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.xz': 'application/x-xz',
  '.zst': 'application/zstd',
  '.7z': 'application/x-7z-compressed',
  '.deb': 'application/vnd.debian.binary-package',
  '.rpm': 'application/x-rpm',
  '.dmg': 'application/x-apple-diskimage',
  '.exe': 'application/vnd.microsoft.portable-executable',
  '.msi': 'application/x-msi',
  '.apk': 'application/vnd.android.package-archive',
  '.jar': 'application/java-archive',
};

/** A Content-Type for a file name, `application/octet-stream` when unknown. */
export function contentTypeFor(name: string): string {
  return MIME[extname(name).toLowerCase()] ?? 'application/octet-stream';
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

/** `destination` + relative path, `/` separators, exactly one `/` between them. */
export function objectKey(destination: string, root: string, file: string): string {
  const rel = relative(root, file).split(sep).join('/');
  if (!destination) return rel;
  return `${destination.replace(/\/+$/, '')}/${rel}`;
}

const isInside = (path: string, dir: string): boolean => path === dir || path.startsWith(dir + sep);

/** Whether the patterns (last match wins, `!` excludes, a directory stands for all below it) select `path`. */
function selected(path: string, patterns: readonly string[]): boolean {
  let hit = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = resolve(negate ? raw.slice(1) : raw);
    if (matchesGlob(path, pattern) || matchesGlob(path, `${pattern}/**`)) hit = !negate;
  }
  return hit;
}

/**
 * Names under the search roots that are not UTF-8, as `dir/bad\xffname`: the glob reads names as text and
 * drops them without a word, and an object key must be UTF-8. Names are read as bytes; only those the patterns
 * would select count (matched with the undecodable bytes as U+FFFD).
 */
async function undecodableNames(roots: readonly string[], search: FileSearch): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: Buffer): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' }).catch(() => []);
    for (const entry of entries) {
      const name = entry.name;
      if (!search.includeHiddenFiles && name[0] === 0x2e) continue;
      const path = Buffer.concat([dir, Buffer.from(sep), name]);
      if (!isUtf8(name)) {
        if (selected(path.toString(), search.patterns)) found.push(describeBytes(path));
      } else if (entry.isDirectory()) await walk(path);
    }
  };
  for (const root of roots) {
    if ((await stat(root).catch(() => undefined))?.isDirectory()) await walk(Buffer.from(root));
  }
  return found;
}

/** Find the files; empty when nothing matches (the caller applies `if-no-files-found`). */
export async function findFiles(search: FileSearch): Promise<FoundFile[]> {
  const globber = await glob.create(search.patterns.join('\n'), {
    followSymbolicLinks: true,
    implicitDescendants: true,
    matchDirectories: false,
    excludeHiddenFiles: !search.includeHiddenFiles,
  });
  const searchPaths = globber.getSearchPaths();
  const undecodable = await undecodableNames(searchPaths, search);
  if (undecodable.length > 0) {
    throw new InputError(
      INPUT.path,
      `input \`path\`: ${undecodable.length} file name(s) are not valid UTF-8 and cannot become object keys: ${undecodable.slice(0, 20).join(', ')}${undecodable.length > 20 ? `, and ${undecodable.length - 20} more` : ''}; allowed UTF-8 names: rename them (e.g. \`convmv -f latin1 -t utf8\`) or exclude them with a \`!\` pattern`,
    );
  }
  let matched = (await globber.glob()).sort();
  if (search.checkpointDir !== undefined) matched = await withoutCheckpoints(matched, searchPaths, search);
  if (matched.length === 0) return [];
  const given = search.workspace;
  const workspace = given === undefined ? undefined : await realpath(given).catch(() => resolve(given));
  // a single search path that is a file roots at its directory, as upload-artifact does
  let root = commonRoot(searchPaths);
  if (searchPaths.length === 1 && (await stat(searchPaths[0]!)).isFile()) root = dirname(searchPaths[0]!);
  if (matched.some((f) => !resolve(f).startsWith(root + sep)))
    root = commonRoot(matched.map((f) => dirname(f)));

  const files: FoundFile[] = [];
  const byKey = new Map<string, string>();
  for (const file of matched) {
    const real = await realpath(file);
    if (workspace !== undefined && real !== workspace && !real.startsWith(workspace + sep)) {
      throw new InputError(
        INPUT.path,
        `input \`path\`: ${escapeText(file)} resolves to ${escapeText(real)}, outside the workspace ${workspace}; only files inside the workspace are uploaded`,
      );
    }
    const info = await stat(real);
    if (!info.isFile()) continue;
    const key = objectKey(search.destination, root, file);
    if (Buffer.byteLength(key) > 1023) {
      throw new InputError(
        INPUT.destination,
        `the object key for ${escapeText(file)} is ${Buffer.byteLength(key)} bytes; OSS allows at most 1023`,
      );
    }
    const other = byKey.get(key);
    if (other !== undefined) {
      throw new InputError(
        INPUT.path,
        `input \`path\`: ${escapeText(other)} and ${escapeText(file)} both map to the key \`${escapeText(key)}\`; narrow the patterns`,
      );
    }
    byKey.set(key, file);
    files.push({ file, key, size: info.size, contentType: search.contentType ?? contentTypeFor(file) });
  }
  return files;
}

/** The matches minus those under the checkpoint dir; refuses a checkpoint dir that holds a search root. */
async function withoutCheckpoints(
  matched: readonly string[],
  searchPaths: readonly string[],
  search: FileSearch,
): Promise<string[]> {
  const given = resolve(search.checkpointDir!);
  const dirs = [...new Set([given, await realpath(given).catch(() => given)])];
  const holder = searchPaths.find((p) => dirs.some((d) => isInside(resolve(p), d)));
  if (holder !== undefined) {
    throw new InputError(
      INPUT.checkpointDir,
      `input \`checkpoint-dir\`: got \`${escapeText(search.checkpointDir!)}\`, which holds the files to upload (${escapeText(holder)}); allowed a directory outside them, such as the default under RUNNER_TEMP`,
    );
  }
  const kept: string[] = [];
  for (const file of matched) {
    const real = await realpath(file).catch(() => file);
    if (!dirs.some((d) => isInside(resolve(file), d) || isInside(real, d))) kept.push(file);
  }
  const left = matched.length - kept.length;
  if (left > 0)
    search.onNotice?.(
      `left out ${left} file(s) under checkpoint-dir ${escapeText(given)}: checkpoints are never uploaded`,
    );
  return kept;
}
