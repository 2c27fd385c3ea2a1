/**
 * Objects and multipart uploads on disk. Bodies are streamed through the hashes into temp files and renamed
 * into place, so a reader never sees half an object; keys of any shape map to hashed file names.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { Crc64, crc64Combine } from '../oss/crc64.ts';

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
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return { size, md5: md5.digest(), crc64: crc.value };
}

export class Store {
  private readonly root: string;

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
    return createReadStream(`${this.objectPath(bucket, key)}.data`, { start, end });
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
      await copyFile(`${this.objectPath(bucket, source.key)}.data`, tmp);
      await rename(tmp, `${path}.data`);
    }
    const meta: StoredObject = { ...source, key, headers, lastModified: new Date().toUTCString() };
    await this.writeMeta(path, meta);
    return meta;
  }

  async setHeaders(bucket: string, obj: StoredObject, headers: Record<string, string>): Promise<void> {
    await this.writeMeta(this.objectPath(bucket, obj.key), { ...obj, headers });
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
    await this.writeMeta(path, meta);
    return meta;
  }

  private async writeMeta(path: string, meta: StoredObject): Promise<void> {
    const tmp = `${path}.json.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(meta));
    await rename(tmp, `${path}.json`);
  }

  async deleteObject(bucket: string, key: string): Promise<boolean> {
    const path = this.objectPath(bucket, key);
    const existed = (await this.getObject(bucket, key)) !== undefined;
    await rm(`${path}.json`, { force: true });
    await rm(`${path}.data`, { force: true });
    return existed;
  }

  async listObjects(bucket: string, prefix: string): Promise<StoredObject[]> {
    const dir = join(this.bucketDir(bucket), 'objects');
    const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
    const objects: StoredObject[] = [];
    for (const n of names) {
      const meta = JSON.parse(await readFile(join(dir, n), 'utf8')) as StoredObject;
      if (meta.key.startsWith(prefix)) objects.push(meta);
    }
    return objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
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
      a.key === b.key ? (a.uploadId < b.uploadId ? -1 : 1) : a.key < b.key ? -1 : 1,
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

  /** Concatenate the chosen parts into the object, streamed; CRC combined from the parts, not re-read. */
  async complete(upload: UploadMeta, parts: StoredPart[]): Promise<StoredObject> {
    const dir = this.uploadDir(upload.uploadId);
    const path = this.objectPath(upload.bucket, upload.key);
    const tmp = `${path}.data.${randomBytes(6).toString('hex')}.tmp`;
    const out = createWriteStream(tmp);
    try {
      for (const p of parts)
        for await (const chunk of createReadStream(join(dir, `${p.partNumber}.data`))) {
          if (!out.write(chunk)) await once(out, 'drain');
        }
      await new Promise<void>((resolve, reject) =>
        out.end((e?: Error | null) => (e ? reject(e) : resolve())),
      );
      await rename(tmp, `${path}.data`);
    } catch (e) {
      out.destroy();
      await rm(tmp, { force: true });
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
    await this.writeMeta(path, meta);
    await rm(dir, { recursive: true, force: true });
    return meta;
  }
}
