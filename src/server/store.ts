/**
 * Objects and multipart uploads on disk. Bodies are streamed through the hashes into temp files and renamed
 * into place, so a reader never sees half an object; keys of any shape map to hashed file names.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, readdirSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Crc64, crc64Combine } from '../oss/crc64.ts';
import { compareKeys } from '../oss/key-order.ts';

export interface StoredObject {
  key: string;
  size: number;
  /** Quoted, upper-case, as OSS answers. */
  etag: string;
  crc64: string;
  lastModified: string;
  headers: Record<string, string>;
}

export interface StoredPart {
  partNumber: number;
  size: number;
  etag: string;
  crc64: string;
  md5: string;
  lastModified: string;
}

export interface UploadMeta {
  uploadId: string;
  bucket: string;
  key: string;
  initiated: string;
  headers: Record<string, string>;
}

interface Digest {
  size: number;
  md5: Buffer;
  crc64: bigint;
}

function hashName(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Stream `source` into `path` (via a temp file), returning size, MD5 and CRC-64 of what was written. */
async function writeStream(source: Readable, path: string, onBytes?: (n: number) => void): Promise<Digest> {
  const md5 = createHash('md5');
  const crc = new Crc64();
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      md5.update(chunk);
      crc.update(chunk);
      size += chunk.length;
      onBytes?.(chunk.length);
      done(null, chunk);
    },
  });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await pipeline(source, tap, createWriteStream(tmp));
    await replaceData(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return { size, md5: md5.digest(), crc64: crc.value };
}

export class Store {
  private readonly root: string;
  /**
   * Each listed bucket's objects by key, kept in memory as OSS keeps its index: a listing that read every
   * object's metadata file took seconds in a bucket of thousands, a cost no real region has. Filled from disk
   * on a bucket's first listing (synchronously, so no write can slip between the read and the fill) and kept
   * current by every write through this store.
   */
  private readonly index = new Map<string, { byKey: Map<string, StoredObject>; sorted?: StoredObject[] }>();

  constructor(root: string) {
    this.root = root;
  }

  private bucketDir(bucket: string): string {
    return join(this.root, 'buckets', bucket);
  }

  private objectPath(bucket: string, key: string): string {
    return join(this.bucketDir(bucket), 'objects', hashName(key));
  }

  private uploadDir(uploadId: string): string {
    return join(this.root, 'uploads', uploadId);
  }

  async createBucket(bucket: string): Promise<void> {
    await mkdir(join(this.bucketDir(bucket), 'objects'), { recursive: true });
  }

  async bucketExists(bucket: string): Promise<boolean> {
    return stat(this.bucketDir(bucket)).then(
      (s) => s.isDirectory(),
      () => false,
    );
  }

  async getObject(bucket: string, key: string): Promise<StoredObject | undefined> {
    try {
      return JSON.parse(await readFile(`${this.objectPath(bucket, key)}.json`, 'utf8')) as StoredObject;
    } catch {
      return undefined;
    }
  }

  /** The object's bytes, or bytes `start` .. `end` inclusive of them. */
  objectStream(bucket: string, key: string, start?: number, end?: number): Readable {
    // an empty range (a copy of an empty object) has no valid `end` for createReadStream
    if (end !== undefined && end < (start ?? 0)) return Readable.from([]);
    return Readable.from(dataRange(`${this.objectPath(bucket, key)}.data`, start ?? 0, end ?? Infinity));
  }

  /** `source` (of this bucket) as `key` with `headers`; the bytes, ETag and CRC-64 are the source's. */
  async copyObject(
    bucket: string,
    source: StoredObject,
    key: string,
    headers: Record<string, string>,
  ): Promise<StoredObject> {
    const path = this.objectPath(bucket, key);
    if (key !== source.key) {
      const tmp = `${path}.data.${randomBytes(6).toString('hex')}.tmp`;
      await cp(`${this.objectPath(bucket, source.key)}.data`, tmp, { recursive: true });
      await replaceData(tmp, `${path}.data`);
    }
    const meta: StoredObject = { ...source, key, headers, lastModified: new Date().toUTCString() };
    await this.writeMeta(bucket, meta);
    return meta;
  }

  async setHeaders(bucket: string, obj: StoredObject, headers: Record<string, string>): Promise<void> {
    await this.writeMeta(bucket, { ...obj, headers });
  }

  async putObject(
    bucket: string,
    key: string,
    body: Readable,
    headers: Record<string, string>,
    onBytes?: (n: number) => void,
  ): Promise<StoredObject> {
    const path = this.objectPath(bucket, key);
    const d = await writeStream(body, `${path}.data`, onBytes);
    const meta: StoredObject = {
      key,
      size: d.size,
      etag: `"${d.md5.toString('hex').toUpperCase()}"`,
      crc64: d.crc64.toString(),
      lastModified: new Date().toUTCString(),
      headers,
    };
    await this.writeMeta(bucket, meta);
    return meta;
  }

  private async writeMeta(bucket: string, meta: StoredObject): Promise<void> {
    const path = this.objectPath(bucket, meta.key);
    const tmp = `${path}.json.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(meta));
    await rename(tmp, `${path}.json`);
    this.indexed(bucket, (byKey) => byKey.set(meta.key, meta));
  }

  /** Apply `change` to the bucket's index, if it has one yet. */
  private indexed(bucket: string, change: (byKey: Map<string, StoredObject>) => void): void {
    const entry = this.index.get(bucket);
    if (!entry) return;
    change(entry.byKey);
    entry.sorted = undefined;
  }

  private sortedObjects(bucket: string): StoredObject[] {
    let entry = this.index.get(bucket);
    if (!entry) {
      const dir = join(this.bucketDir(bucket), 'objects');
      const byKey = new Map<string, StoredObject>();
      for (const n of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
        const meta = JSON.parse(readFileSync(join(dir, n), 'utf8')) as StoredObject;
        byKey.set(meta.key, meta);
      }
      entry = { byKey };
      this.index.set(bucket, entry);
    }
    // in OSS's order: by the keys' UTF-8 bytes
    entry.sorted ??= [...entry.byKey.values()].sort((a, b) => compareKeys(a.key, b.key));
    return entry.sorted;
  }

  async deleteObject(bucket: string, key: string): Promise<boolean> {
    const path = this.objectPath(bucket, key);
    const existed = (await this.getObject(bucket, key)) !== undefined;
    await rm(`${path}.json`, { force: true });
    await rm(`${path}.data`, { recursive: true, force: true });
    this.indexed(bucket, (byKey) => byKey.delete(key));
    return existed;
  }

  /** Up to `limit` objects under `prefix` whose keys sort after `after`, in key order. */
  listObjects(bucket: string, prefix: string, after = '', limit = Infinity): StoredObject[] {
    const sorted = this.sortedObjects(bucket);
    // the first key both at or past the prefix and past `after`: both hold from some point on
    const wanted = (k: string): boolean => compareKeys(k, prefix) >= 0 && compareKeys(k, after) > 0;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (wanted(sorted[mid]!.key)) hi = mid;
      else lo = mid + 1;
    }
    const out: StoredObject[] = [];
    for (let i = lo; i < sorted.length && out.length < limit && sorted[i]!.key.startsWith(prefix); i++)
      out.push(sorted[i]!);
    return out;
  }

  // --- multipart -----------------------------------------------------------------------------

  async initiate(bucket: string, key: string, headers: Record<string, string>): Promise<UploadMeta> {
    const meta: UploadMeta = {
      uploadId: randomBytes(16).toString('hex').toUpperCase(),
      bucket,
      key,
      initiated: new Date().toISOString(),
      headers,
    };
    await mkdir(this.uploadDir(meta.uploadId), { recursive: true });
    await writeFile(join(this.uploadDir(meta.uploadId), 'upload.json'), JSON.stringify(meta));
    return meta;
  }

  async getUpload(uploadId: string): Promise<UploadMeta | undefined> {
    if (!/^[0-9A-F]{32}$/.test(uploadId)) return undefined;
    try {
      return JSON.parse(await readFile(join(this.uploadDir(uploadId), 'upload.json'), 'utf8')) as UploadMeta;
    } catch {
      return undefined;
    }
  }

  async forgetUpload(uploadId: string): Promise<void> {
    if (/^[0-9A-F]{32}$/.test(uploadId)) await rm(this.uploadDir(uploadId), { recursive: true, force: true });
  }

  async ageUploads(ms: number): Promise<void> {
    const ids = await readdir(join(this.root, 'uploads')).catch(() => [] as string[]);
    for (const id of ids) {
      const meta = await this.getUpload(id);
      if (!meta) continue;
      meta.initiated = new Date(Date.parse(meta.initiated) - ms).toISOString();
      await writeFile(join(this.uploadDir(id), 'upload.json'), JSON.stringify(meta));
    }
  }

  async listUploads(bucket: string): Promise<UploadMeta[]> {
    const root = join(this.root, 'uploads');
    const ids = await readdir(root).catch(() => [] as string[]);
    const uploads: UploadMeta[] = [];
    for (const id of ids) {
      const meta = await this.getUpload(id);
      if (meta && meta.bucket === bucket) uploads.push(meta);
    }
    return uploads.sort((a, b) =>
      a.key === b.key ? (a.uploadId < b.uploadId ? -1 : 1) : compareKeys(a.key, b.key),
    );
  }

  async putPart(
    uploadId: string,
    partNumber: number,
    body: Readable,
    onBytes?: (n: number) => void,
  ): Promise<StoredPart> {
    const dir = this.uploadDir(uploadId);
    const d = await writeStream(body, join(dir, `${partNumber}.data`), onBytes);
    const part: StoredPart = {
      partNumber,
      size: d.size,
      etag: `"${d.md5.toString('hex').toUpperCase()}"`,
      crc64: d.crc64.toString(),
      md5: d.md5.toString('hex'),
      lastModified: new Date().toISOString(),
    };
    const tmp = join(dir, `${partNumber}.json.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, JSON.stringify(part));
    await rename(tmp, join(dir, `${partNumber}.json`));
    return part;
  }

  async listParts(uploadId: string): Promise<StoredPart[]> {
    const dir = this.uploadDir(uploadId);
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^\d+\.json$/.test(n));
    const parts: StoredPart[] = [];
    for (const n of names) parts.push(JSON.parse(await readFile(join(dir, n), 'utf8')) as StoredPart);
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /**
   * The chosen parts become the object's data as they are, moved (not copied) into a directory read in order:
   * as in OSS, completing an upload costs a round trip, not a copy of every byte. CRC combined from the parts.
   */
  async complete(upload: UploadMeta, parts: StoredPart[]): Promise<StoredObject> {
    const dir = this.uploadDir(upload.uploadId);
    const path = this.objectPath(upload.bucket, upload.key);
    const tmp = `${path}.data.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(tmp);
      for (const [i, p] of parts.entries())
        await rename(join(dir, `${p.partNumber}.data`), join(tmp, String(i).padStart(5, '0')));
      await replaceData(tmp, `${path}.data`);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    let crc = 0n;
    for (const p of parts) crc = crc64Combine(crc, BigInt(p.crc64), p.size);
    const md5s = Buffer.concat(parts.map((p) => Buffer.from(p.md5, 'hex')));
    const meta: StoredObject = {
      key: upload.key,
      size: parts.reduce((s, p) => s + p.size, 0),
      etag: `"${createHash('md5').update(md5s).digest('hex').toUpperCase()}-${parts.length}"`,
      crc64: crc.toString(),
      lastModified: new Date().toUTCString(),
      headers: upload.headers,
    };
    await this.writeMeta(upload.bucket, meta);
    await rm(dir, { recursive: true, force: true });
    return meta;
  }
}

/**
 * Put the data at `tmp` (a file, or a directory of a completed upload's parts) in place of whatever data is at
 * `path`: one rename where the kinds allow it, else the old data moved aside first.
 */
async function replaceData(tmp: string, path: string): Promise<void> {
  try {
    await rename(tmp, path);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'ENOTDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
  }
  const old = `${path}.${randomBytes(6).toString('hex')}.old`;
  await rename(path, old);
  await rename(tmp, path);
  await rm(old, { recursive: true, force: true });
}

/** Bytes `start` .. `end` (inclusive) of an object's data: one file, or its parts' files in name order. */
async function* dataRange(path: string, start: number, end: number): AsyncGenerator<Buffer> {
  if (!(await stat(path)).isDirectory()) {
    yield* createReadStream(path, { start, end: Number.isFinite(end) ? end : undefined });
    return;
  }
  let offset = 0;
  for (const name of (await readdir(path)).sort()) {
    const file = join(path, name);
    const size = (await stat(file)).size;
    const from = Math.max(start, offset);
    const to = Math.min(end, offset + size - 1);
    if (from <= to) yield* createReadStream(file, { start: from - offset, end: to - offset });
    offset += size;
    if (offset > end) return;
  }
}
