/**
 * Which files go up and under which keys: glob search (multi-line, `!` excludes), the common root of the
 * matches as upload-artifact computes it, and `destination` + the path relative to that root.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname, extname, relative, resolve, sep } from 'node:path';
import * as glob from '@actions/glob';
import { InputError } from './inputs.ts';
import { INPUT } from './constants.ts';

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

/** Find the files; empty when nothing matches (the caller applies `if-no-files-found`). */
export async function findFiles(search: FileSearch): Promise<FoundFile[]> {
  const globber = await glob.create(search.patterns.join('\n'), {
    followSymbolicLinks: true,
    implicitDescendants: true,
    matchDirectories: false,
    excludeHiddenFiles: !search.includeHiddenFiles,
  });
  const matched = (await globber.glob()).sort();
  if (matched.length === 0) return [];
  const given = search.workspace;
  const workspace = given === undefined ? undefined : await realpath(given).catch(() => resolve(given));
  const searchPaths = globber.getSearchPaths();
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
        `input \`path\`: ${file} resolves to ${real}, outside the workspace ${workspace}; only files inside the workspace are uploaded`,
      );
    }
    const info = await stat(real);
    if (!info.isFile()) continue;
    const key = objectKey(search.destination, root, file);
    if (Buffer.byteLength(key) > 1023) {
      throw new InputError(
        INPUT.destination,
        `the object key for ${file} is ${Buffer.byteLength(key)} bytes; OSS allows at most 1023`,
      );
    }
    const other = byKey.get(key);
    if (other !== undefined) {
      throw new InputError(
        INPUT.path,
        `input \`path\`: ${other} and ${file} both map to the key \`${key}\`; narrow the patterns`,
      );
    }
    byKey.set(key, file);
    files.push({ file, key, size: info.size, contentType: search.contentType ?? contentTypeFor(file) });
  }
  return files;
}
