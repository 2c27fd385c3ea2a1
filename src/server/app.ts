/**
 * The OSS-compatible server: routing of object and multipart requests (path-style and virtual-host),
 * signature checks, OSS-shaped XML answers and errors, scripted faults and a request log.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { XMLParser } from 'fast-xml-parser';
import type { OssOperation } from '../oss/operations.ts';
import { type ReceivedRequest, type ServerCredential, verifyRequest } from './auth.ts';
import { type FaultAction, type FaultRule, Faults } from './faults.ts';
import { closeServer, collectBody, listen, sendJson } from './http.ts';
import { type StoredObject, Store } from './store.ts';

/** What this server answers: every OSS operation; STS has its own stand-in (sts.ts). */
type ServedOperation = Exclude<OssOperation, 'AssumeRoleWithOIDC'>;

export interface ServerOptions {
  /** @default 0 (any free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  dataDir: string;
  /** @default [{ accessKeyId: 'test-ak', accessKeySecret: 'test-sk' }] */
  credentials?: ServerCredential[];
  /** Buckets that exist from the start. */
  buckets?: string[];
  /** Create a bucket on first use instead of answering NoSuchBucket. @default false */
  autoCreateBuckets?: boolean;
  /** Send x-oss-hash-crc64ecma. @default true */
  crcHeaders?: boolean;
  /** The server's clock is now + this. @default 0 */
  clockOffsetMs?: number;
  /** Host `bucket.{suffix}` is virtual-host style. @default 'localhost' */
  virtualHostSuffix?: string;
  /** Largest page a listing answers (OSS: 1,000); smaller values let tests cross pages cheaply. @default 1000 */
  pageLimit?: number;
  /** CopyObject refuses sources of this size or more (OSS: 1 GB; larger ones need UploadPartCopy). @default 1 GiB */
  copyObjectLimit?: number;
}

export interface RequestRecord {
  requestId: string;
  operation: ServedOperation | 'Unknown';
  method: string;
  bucket?: string;
  key?: string;
  uploadId?: string;
  partNumber?: number;
  status: number;
  code?: string;
  bytesReceived: number;
  /** The AccessKey id the request was signed with (absent when unsigned or malformed). */
  accessKeyId?: string;
  securityToken?: string;
  fault?: FaultAction['type'];
  time: number;
}

export interface OssTestServer {
  readonly url: string;
  readonly port: number;
  readonly requests: RequestRecord[];
  addFault(rule: FaultRule): string;
  clearFaults(): void;
  clearRequests(): void;
  createBucket(name: string): Promise<void>;
  /** Accept requests signed with this credential from now on (an STS stand-in issues them). */
  addCredential(credential: ServerCredential): void;
  /** Make every unfinished multipart upload look `ms` older: stands in for runs that failed days ago. */
  ageUploads(ms: number): Promise<void>;
  close(): Promise<void>;
}

const MAX_SKEW_MS = 15 * 60 * 1000;
const MIN_PART_BYTES = 100 * 1024;
const MAX_PART_BYTES = 5 * 1024 ** 3;
// htmlEntities: numeric character references too, as Go's encoding/xml writes them (`&#34;` in ETags)
const xmlParser = new XMLParser({
  parseTagValue: false,
  htmlEntities: true,
  isArray: (n) => n === 'Part' || n === 'Object',
});

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: string;
  constructor(status: number, code: string, message: string, extra = '') {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\r/g, '&#13;');
}

function xml(root: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}>${inner}</${root}>`;
}

function tag(name: string, value: string | number | boolean): string {
  return `<${name}>${esc(String(value))}</${name}>`;
}

// headers stored with an object and returned on HEAD/GET
function objectHeaders(h: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (
      [
        'content-type',
        'cache-control',
        'content-disposition',
        'content-encoding',
        'content-language',
        'expires',
      ].includes(k) ||
      k.startsWith('x-oss-meta-') ||
      [
        'x-oss-object-acl',
        'x-oss-storage-class',
        'x-oss-server-side-encryption',
        'x-oss-server-side-encryption-key-id',
        'x-oss-server-side-data-encryption',
      ].includes(k)
    ) {
      kept[k] = v;
    }
  }
  return kept;
}

interface Parsed {
  bucket: string | undefined;
  key: string | undefined;
  query: Array<[string, string | null]>;
  params: Map<string, string | null>;
  operation: ServedOperation | 'Unknown';
  partNumber: number | undefined;
  uploadId: string | undefined;
}

function parseTarget(req: IncomingMessage, suffix: string): Parsed {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query: Array<[string, string | null]> = [];
  for (const pair of (q < 0 ? '' : raw.slice(q + 1)).split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    const dec = (s: string): string => decodeURIComponent(s.replace(/\+/g, '%20'));
    query.push(eq < 0 ? [dec(pair), null] : [dec(pair.slice(0, eq)), dec(pair.slice(eq + 1))]);
  }
  const params = new Map(query);
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  let bucket: string | undefined;
  let keyPath: string;
  if (host.endsWith(`.${suffix}`)) {
    bucket = host.slice(0, -suffix.length - 1);
    keyPath = path.slice(1);
  } else {
    const rest = path.slice(1);
    const slash = rest.indexOf('/');
    bucket = slash < 0 ? rest : rest.slice(0, slash);
    keyPath = slash < 0 ? '' : rest.slice(slash + 1);
    if (bucket === '') bucket = undefined;
  }
  const key = keyPath === '' ? undefined : decodeURIComponent(keyPath);
  const m = req.method ?? 'GET';
  const has = (k: string): boolean => params.has(k);
  let operation: Parsed['operation'] = 'Unknown';
  const copy = req.headers['x-oss-copy-source'] !== undefined;
  if (bucket && key !== undefined) {
    if (m === 'POST' && has('uploads')) operation = 'InitiateMultipartUpload';
    else if (m === 'PUT' && has('acl')) operation = 'PutObjectAcl';
    else if (m === 'GET' && has('acl')) operation = 'GetObjectAcl';
    else if (m === 'PUT' && has('uploadId')) operation = copy ? 'UploadPartCopy' : 'UploadPart';
    else if (m === 'POST' && has('uploadId')) operation = 'CompleteMultipartUpload';
    else if (m === 'GET' && has('uploadId')) operation = 'ListParts';
    else if (m === 'DELETE' && has('uploadId')) operation = 'AbortMultipartUpload';
    else if (m === 'PUT') operation = copy ? 'CopyObject' : 'PutObject';
    else if (m === 'GET') operation = 'GetObject';
    else if (m === 'HEAD') operation = 'HeadObject';
    else if (m === 'DELETE') operation = 'DeleteObject';
  } else if (bucket) {
    if (m === 'GET' && has('uploads')) operation = 'ListMultipartUploads';
    else if (m === 'POST' && has('delete')) operation = 'DeleteMultipleObjects';
    else if (m === 'GET') operation = 'ListObjects';
    else if (m === 'PUT') operation = 'PutBucket';
  }
  const pn = params.get('partNumber');
  return {
    bucket,
    key,
    query,
    params,
    operation,
    partNumber: pn ? Number(pn) : undefined,
    uploadId: params.get('uploadId') ?? undefined,
  };
}

const OBJECT_ACLS = ['default', 'private', 'public-read', 'public-read-write'];

function partNumberOf(target: Parsed): number {
  const n = target.partNumber ?? NaN;
  if (!Number.isInteger(n) || n < 1 || n > 10000) {
    throw new HttpError(
      400,
      'InvalidArgument',
      'Part number must be an integer between 1 and 10000, inclusive.',
    );
  }
  return n;
}

function aclOf(headers: Record<string, string>): string {
  const acl = headers['x-oss-object-acl'] ?? '';
  if (!OBJECT_ACLS.includes(acl))
    throw new HttpError(400, 'InvalidArgument', `The ACL ${JSON.stringify(acl)} is not valid.`);
  return acl;
}

/** `x-oss-copy-source-range: bytes=a-b` within an object of `size` bytes; the whole object without one. */
function copyRange(header: string | undefined, size: number): { start: number; end: number } {
  if (header === undefined) return { start: 0, end: size - 1 };
  const m = /^bytes=(\d+)-(\d+)$/.exec(header.trim());
  const start = Number(m?.[1]);
  const end = Number(m?.[2]);
  if (!m || start > end || end >= size)
    throw new HttpError(416, 'InvalidRange', `The range ${header} is not within the source's ${size} bytes.`);
  return { start, end };
}

async function readBody(req: IncomingMessage, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const body = await collectBody(req, limit);
  if (!body) throw new HttpError(400, 'InvalidArgument', 'Request body too large.');
  return body;
}

/** Start the server; resolves once it listens. */
export async function startServer(opts: ServerOptions): Promise<OssTestServer> {
  const store = new Store(opts.dataDir);
  const faults = new Faults();
  const requests: RequestRecord[] = [];
  const credentials = [...(opts.credentials ?? [{ accessKeyId: 'test-ak', accessKeySecret: 'test-sk' }])];
  const suffix = opts.virtualHostSuffix ?? 'localhost';
  const sendCrc = opts.crcHeaders !== false;
  const pageLimit = opts.pageLimit ?? 1000;
  const copyObjectLimit = opts.copyObjectLimit ?? 1024 ** 3;
  const now = (): Date => new Date(Date.now() + (opts.clockOffsetMs ?? 0));
  for (const b of opts.buckets ?? []) await store.createBucket(b);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomBytes(12).toString('hex').toUpperCase();
    const target = parseTarget(req, suffix);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k.toLowerCase()] = v;
    const record: RequestRecord = {
      requestId,
      operation: target.operation,
      method: req.method ?? 'GET',
      ...(target.bucket !== undefined ? { bucket: target.bucket } : {}),
      ...(target.key !== undefined ? { key: target.key } : {}),
      ...(target.uploadId !== undefined ? { uploadId: target.uploadId } : {}),
      ...(target.partNumber !== undefined ? { partNumber: target.partNumber } : {}),
      ...(headers['x-oss-security-token'] !== undefined
        ? { securityToken: headers['x-oss-security-token'] }
        : {}),
      status: 0,
      bytesReceived: 0,
      time: 0,
    };
    const counted = (n: number): void => {
      record.bytesReceived += n;
    };
    const finish = (status: number, code?: string): void => {
      record.status = status;
      if (code) record.code = code;
      record.time = Date.now();
      requests.push(record);
    };
    const base = (): Record<string, string> => ({
      'x-oss-request-id': requestId,
      date: now().toUTCString(),
      server: 'AliyunOSS',
    });
    const fail = (e: HttpError): void => {
      const ec = `0002-${String(e.status).padStart(8, '0')}`;
      const body = xml(
        'Error',
        tag('Code', e.code) +
          tag('Message', e.message) +
          tag('RequestId', requestId) +
          tag('HostId', headers.host ?? '') +
          tag('EC', ec) +
          e.extra,
      );
      const h: Record<string, string> = { ...base(), 'content-type': 'application/xml', 'x-oss-ec': ec };
      if (req.method === 'HEAD') {
        h['x-oss-err'] = Buffer.from(body).toString('base64');
        res.writeHead(e.status, h).end();
      } else {
        res.writeHead(e.status, h).end(body);
      }
      finish(e.status, e.code);
    };
    const drainThenFail = async (e: HttpError): Promise<void> => {
      // answer only after the body is read, so the client sees the error rather than a broken pipe
      await readBody(req, Number.MAX_SAFE_INTEGER).catch(() => undefined);
      fail(e);
    };

    // admin endpoints: '_' can never start a bucket name
    if (req.url?.startsWith('/_oss/')) {
      await admin(req, res);
      return;
    }

    try {
      if (target.operation === 'Unknown')
        throw new HttpError(
          400,
          'InvalidArgument',
          `Unsupported request ${req.method ?? ''} ${req.url ?? ''}.`,
        );
      const received: ReceivedRequest = {
        method: req.method ?? 'GET',
        bucket: target.bucket,
        key: target.key,
        query: target.query,
        headers,
      };
      const auth = verifyRequest(received, credentials);
      if (!auth.ok) throw new HttpError(auth.status, auth.code, auth.message);
      const { credential } = auth;
      record.accessKeyId = credential.accessKeyId;
      if (
        Math.abs(auth.date.getTime() - now().getTime()) > MAX_SKEW_MS ||
        Number.isNaN(auth.date.getTime())
      ) {
        throw new HttpError(
          403,
          'RequestTimeTooSkewed',
          'The difference between the request time and the current time is too large.',
          tag('RequestTime', auth.date.toISOString()) + tag('ServerTime', now().toISOString()),
        );
      }
      if (credential.securityToken !== undefined) {
        if (headers['x-oss-security-token'] !== credential.securityToken)
          throw new HttpError(403, 'InvalidSecurityToken', 'The security token you provided is invalid.');
        if (credential.expiration && now() >= credential.expiration)
          throw new HttpError(403, 'SecurityTokenExpired', 'The security token you provided has expired.');
      }

      const fault = faults.pick(target);
      if (fault) record.fault = fault.type;
      if (fault?.type === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
      if (fault?.type === 'error')
        return await drainThenFail(
          new HttpError(fault.status, fault.code, fault.message ?? `Injected ${fault.code}.`),
        );
      if (fault?.type === 'skew') {
        return await drainThenFail(
          new HttpError(
            403,
            'RequestTimeTooSkewed',
            'The difference between the request time and the current time is too large.',
            tag('ServerTime', now().toISOString()),
          ),
        );
      }
      if (fault?.type === 'reset') {
        const after = fault.afterBytes ?? 0;
        let seen = 0;
        const cut = (): void => {
          finish(0, 'ConnectionReset');
          req.socket.destroy();
        };
        if (after === 0) return cut();
        req.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen >= after && !req.socket.destroyed) cut();
        });
        req.on('end', () => {
          if (!req.socket.destroyed) cut();
        });
        return;
      }
      if (fault?.type === 'forgetUpload' && target.uploadId) await store.forgetUpload(target.uploadId);

      const bucket = target.bucket!;
      if (target.operation === 'PutBucket') {
        await readBody(req);
        await store.createBucket(bucket);
        res.writeHead(200, base()).end();
        return finish(200);
      }
      if (!(await store.bucketExists(bucket))) {
        if (opts.autoCreateBuckets) await store.createBucket(bucket);
        else throw new HttpError(404, 'NoSuchBucket', 'The specified bucket does not exist.');
      }
      const crcHeader = (crc: string): Record<string, string> => {
        if (!sendCrc) return {};
        return { 'x-oss-hash-crc64ecma': fault?.type === 'badCrc' ? (BigInt(crc) ^ 1n).toString() : crc };
      };
      const key = target.key ?? '';
      const forbid = headers['x-oss-forbid-overwrite'] === 'true';
      const refuseExisting = async (): Promise<void> => {
        if (forbid && (await store.getObject(bucket, key))) {
          throw new HttpError(
            409,
            'FileAlreadyExists',
            'The object you specified already exists and can not be overwritten.',
          );
        }
      };
      const checkMd5 = (body: Buffer): void => {
        const given = headers['content-md5'];
        if (given !== undefined && createHash('md5').update(body).digest('base64') !== given) {
          throw new HttpError(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
        }
      };

      // the source of a copy: `/bucket/url-encoded-key`, in this bucket
      const copySource = async (): Promise<StoredObject> => {
        const raw = headers['x-oss-copy-source'] ?? '';
        const m = /^\/?([^/]+)\/(.+)$/.exec(raw);
        let sourceKey: string | undefined;
        try {
          sourceKey = m ? decodeURIComponent(m[2]!) : undefined;
        } catch {
          sourceKey = undefined;
        }
        if (!m || sourceKey === undefined)
          throw new HttpError(400, 'InvalidArgument', `x-oss-copy-source ${raw} is not /bucket/key.`);
        if (m[1] !== bucket)
          throw new HttpError(400, 'InvalidArgument', 'This server copies within one bucket only.');
        const source = await store.getObject(bucket, sourceKey);
        if (!source) throw new HttpError(404, 'NoSuchKey', 'The specified key does not exist.');
        return source;
      };
      // encoding-type=url: keys, prefixes and markers percent-encoded, so any key survives XML 1.0
      const urlEncoded = target.params.get('encoding-type') === 'url';
      const enc = (text: string): string => (urlEncoded ? encodeURIComponent(text) : text);
      const encodingTag = urlEncoded ? tag('EncodingType', 'url') : '';
      const sendXml = (body: string, extra: Record<string, string> = {}): void => {
        res.writeHead(200, { ...base(), 'content-type': 'application/xml', ...extra }).end(body);
        finish(200);
      };

      switch (target.operation) {
        case 'CopyObject': {
          await readBody(req);
          const source = await copySource();
          if (source.size >= copyObjectLimit) {
            throw new HttpError(
              400,
              'EntityTooLarge',
              `The source object is ${source.size} bytes; CopyObject copies less than ${copyObjectLimit}: use UploadPartCopy.`,
            );
          }
          const directive = headers['x-oss-metadata-directive'] ?? 'COPY';
          if (directive !== 'COPY' && directive !== 'REPLACE')
            throw new HttpError(
              400,
              'InvalidArgument',
              `x-oss-metadata-directive ${directive} is not COPY or REPLACE.`,
            );
          const given = objectHeaders(headers);
          if (given['x-oss-object-acl'] !== undefined) aclOf(given);
          // COPY keeps the source's headers (ACL and storage class may still be set); REPLACE keeps only those given
          const kept =
            directive === 'REPLACE'
              ? given
              : {
                  ...source.headers,
                  ...Object.fromEntries(
                    Object.entries(given).filter(
                      ([k]) => k === 'x-oss-object-acl' || k === 'x-oss-storage-class',
                    ),
                  ),
                };
          if (key !== source.key) await refuseExisting();
          const obj = await store.copyObject(bucket, source, key, kept);
          return sendXml(
            xml(
              'CopyObjectResult',
              tag('ETag', obj.etag) + tag('LastModified', new Date(obj.lastModified).toISOString()),
            ),
            { etag: obj.etag, ...crcHeader(obj.crc64) },
          );
        }
        case 'UploadPartCopy': {
          await readBody(req);
          const n = partNumberOf(target);
          const up = await store.getUpload(target.uploadId ?? '');
          if (!up || up.bucket !== bucket || up.key !== key)
            throw new HttpError(404, 'NoSuchUpload', 'The specified upload does not exist.');
          const source = await copySource();
          const { start, end } = copyRange(headers['x-oss-copy-source-range'], source.size);
          if (end - start + 1 > MAX_PART_BYTES)
            throw new HttpError(
              400,
              'EntityTooLarge',
              'Your proposed upload exceeds the maximum allowed size.',
            );
          const part = await store.putPart(
            up.uploadId,
            n,
            store.objectStream(bucket, source.key, start, end),
          );
          return sendXml(
            xml('CopyPartResult', tag('LastModified', part.lastModified) + tag('ETag', part.etag)),
            { etag: part.etag, ...crcHeader(part.crc64) },
          );
        }
        case 'GetObjectAcl': {
          const obj = await store.getObject(bucket, key);
          if (!obj) throw new HttpError(404, 'NoSuchKey', 'The specified key does not exist.');
          const owner = tag('ID', credential.accessKeyId) + tag('DisplayName', credential.accessKeyId);
          return sendXml(
            xml(
              'AccessControlPolicy',
              `<Owner>${owner}</Owner><AccessControlList>${tag('Grant', obj.headers['x-oss-object-acl'] ?? 'default')}</AccessControlList>`,
            ),
          );
        }
        case 'PutObjectAcl': {
          await readBody(req);
          const acl = aclOf(headers);
          const obj = await store.getObject(bucket, key);
          if (!obj) throw new HttpError(404, 'NoSuchKey', 'The specified key does not exist.');
          await store.setHeaders(bucket, obj, { ...obj.headers, 'x-oss-object-acl': acl });
          res.writeHead(200, base()).end();
          return finish(200);
        }
        case 'PutObject': {
          await refuseExisting();
          const obj = await store.putObject(bucket, key, req, objectHeaders(headers), counted);
          res.writeHead(200, { ...base(), etag: obj.etag, ...crcHeader(obj.crc64) }).end();
          return finish(200);
        }
        case 'HeadObject':
        case 'GetObject': {
          const obj = await store.getObject(bucket, key);
          if (!obj) throw new HttpError(404, 'NoSuchKey', 'The specified key does not exist.');
          const h = {
            ...base(),
            ...objectHeaderAnswer(obj),
            ...(sendCrc ? { 'x-oss-hash-crc64ecma': obj.crc64 } : {}),
          };
          if (target.operation === 'HeadObject') {
            res.writeHead(200, h).end();
          } else {
            res.writeHead(200, h);
            await new Promise<void>((resolve, reject) => {
              store
                .objectStream(bucket, key)
                .on('error', reject)
                .pipe(res)
                .on('finish', resolve)
                .on('error', reject);
            });
          }
          return finish(200);
        }
        case 'DeleteObject': {
          await store.deleteObject(bucket, key);
          res.writeHead(204, base()).end();
          return finish(204);
        }
        case 'InitiateMultipartUpload': {
          await readBody(req);
          await refuseExisting();
          const up = await store.initiate(bucket, key, objectHeaders(headers));
          const body = xml(
            'InitiateMultipartUploadResult',
            tag('Bucket', bucket) + tag('Key', key) + tag('UploadId', up.uploadId),
          );
          res.writeHead(200, { ...base(), 'content-type': 'application/xml' }).end(body);
          return finish(200);
        }
        case 'UploadPart': {
          const n = partNumberOf(target);
          if (Number(headers['content-length'] ?? 0) > MAX_PART_BYTES) {
            throw new HttpError(
              400,
              'EntityTooLarge',
              'Your proposed upload exceeds the maximum allowed size.',
            );
          }
          const up = await store.getUpload(target.uploadId ?? '');
          if (!up || up.bucket !== bucket || up.key !== key) {
            return await drainThenFail(
              new HttpError(404, 'NoSuchUpload', 'The specified upload does not exist.'),
            );
          }
          const part = await store.putPart(up.uploadId, n, req, counted);
          res.writeHead(200, { ...base(), etag: part.etag, ...crcHeader(part.crc64) }).end();
          return finish(200);
        }
        case 'ListParts': {
          const up = await store.getUpload(target.uploadId ?? '');
          if (!up || up.bucket !== bucket || up.key !== key)
            throw new HttpError(404, 'NoSuchUpload', 'The specified upload does not exist.');
          const marker = Number(target.params.get('part-number-marker') ?? 0);
          const max = Math.min(pageLimit, Number(target.params.get('max-parts') ?? 1000));
          const all = (await store.listParts(up.uploadId)).filter((p) => p.partNumber > marker);
          const page = all.slice(0, max);
          const truncated = all.length > max;
          const parts = page
            .map(
              (p) =>
                `<Part>${tag('PartNumber', p.partNumber)}${tag('LastModified', p.lastModified)}${tag('ETag', p.etag)}${sendCrc ? tag('HashCrc64ecma', p.crc64) : ''}${tag('Size', p.size)}</Part>`,
            )
            .join('');
          const body = xml(
            'ListPartsResult',
            tag('Bucket', bucket) +
              encodingTag +
              tag('Key', enc(key)) +
              tag('UploadId', up.uploadId) +
              tag('PartNumberMarker', marker) +
              tag('NextPartNumberMarker', page.at(-1)?.partNumber ?? marker) +
              tag('MaxParts', max) +
              tag('IsTruncated', truncated) +
              parts,
          );
          res.writeHead(200, { ...base(), 'content-type': 'application/xml' }).end(body);
          return finish(200);
        }
        case 'CompleteMultipartUpload': {
          const raw = await readBody(req);
          const up = await store.getUpload(target.uploadId ?? '');
          if (!up || up.bucket !== bucket || up.key !== key)
            throw new HttpError(404, 'NoSuchUpload', 'The specified upload does not exist.');
          let wanted: Array<{ n: number; etag: string }>;
          try {
            const doc = xmlParser.parse(raw.toString('utf8')) as {
              CompleteMultipartUpload?: { Part?: Array<{ PartNumber?: string; ETag?: string }> };
            };
            wanted = (doc.CompleteMultipartUpload?.Part ?? []).map((p) => ({
              n: Number(p.PartNumber),
              etag: String(p.ETag ?? ''),
            }));
          } catch {
            throw new HttpError(400, 'MalformedXML', 'The XML you provided was not well-formed.');
          }
          if (wanted.length === 0)
            throw new HttpError(400, 'MalformedXML', 'The XML you provided was not well-formed.');
          const stored = new Map((await store.listParts(up.uploadId)).map((p) => [p.partNumber, p]));
          const chosen = [];
          for (const [i, w] of wanted.entries()) {
            if (i > 0 && w.n <= wanted[i - 1]!.n)
              throw new HttpError(400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
            const p = stored.get(w.n);
            if (!p || p.etag.replace(/"/g, '').toUpperCase() !== w.etag.replace(/"/g, '').toUpperCase()) {
              throw new HttpError(
                400,
                'InvalidPart',
                "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.",
              );
            }
            if (i < wanted.length - 1 && p.size < MIN_PART_BYTES) {
              throw new HttpError(
                400,
                'EntityTooSmall',
                'Your proposed upload is smaller than the minimum allowed size.',
              );
            }
            chosen.push(p);
          }
          await refuseExisting();
          const obj = await store.complete(up, chosen);
          if (fault?.type === 'completeThen500')
            throw new HttpError(500, 'InternalError', 'We encountered an internal error. Please try again.');
          const body = xml(
            'CompleteMultipartUploadResult',
            tag('Location', `${headers.host ?? ''}/${bucket}/${key}`) +
              tag('Bucket', bucket) +
              tag('Key', key) +
              tag('ETag', obj.etag),
          );
          res
            .writeHead(200, {
              ...base(),
              'content-type': 'application/xml',
              etag: obj.etag,
              ...crcHeader(obj.crc64),
            })
            .end(body);
          return finish(200);
        }
        case 'AbortMultipartUpload': {
          const up = await store.getUpload(target.uploadId ?? '');
          if (!up || up.bucket !== bucket || up.key !== key)
            throw new HttpError(404, 'NoSuchUpload', 'The specified upload does not exist.');
          await store.forgetUpload(up.uploadId);
          res.writeHead(204, base()).end();
          return finish(204);
        }
        case 'ListMultipartUploads': {
          const prefix = target.params.get('prefix') ?? '';
          const keyMarker = target.params.get('key-marker') ?? '';
          const idMarker = target.params.get('upload-id-marker') ?? '';
          const max = Math.min(pageLimit, Number(target.params.get('max-uploads') ?? 1000));
          const all = (await store.listUploads(bucket)).filter(
            (u) =>
              u.key.startsWith(prefix) &&
              (u.key > keyMarker || (u.key === keyMarker && idMarker !== '' && u.uploadId > idMarker)),
          );
          const page = all.slice(0, max);
          const truncated = all.length > max;
          const last = page.at(-1);
          const body = xml(
            'ListMultipartUploadsResult',
            tag('Bucket', bucket) +
              encodingTag +
              tag('Prefix', enc(prefix)) +
              tag('KeyMarker', enc(keyMarker)) +
              tag('UploadIdMarker', idMarker) +
              tag('NextKeyMarker', truncated && last ? enc(last.key) : '') +
              tag('NextUploadIdMarker', truncated && last ? last.uploadId : '') +
              tag('MaxUploads', max) +
              tag('IsTruncated', truncated) +
              page
                .map(
                  (u) =>
                    `<Upload>${tag('Key', enc(u.key))}${tag('UploadId', u.uploadId)}${tag('Initiated', u.initiated)}</Upload>`,
                )
                .join(''),
          );
          res.writeHead(200, { ...base(), 'content-type': 'application/xml' }).end(body);
          return finish(200);
        }
        case 'ListObjects': {
          const prefix = target.params.get('prefix') ?? '';
          const max = Math.min(pageLimit, Number(target.params.get('max-keys') ?? 100));
          const token = target.params.get('continuation-token');
          const after = token
            ? Buffer.from(token, 'base64url').toString('utf8')
            : (target.params.get('start-after') ?? '');
          const all = store.listObjects(bucket, prefix, after, max + 1);
          const page = all.slice(0, max);
          const truncated = all.length > max;
          const body = xml(
            'ListBucketResult',
            tag('Name', bucket) +
              encodingTag +
              tag('Prefix', enc(prefix)) +
              tag('MaxKeys', max) +
              tag('KeyCount', page.length) +
              tag('IsTruncated', truncated) +
              (truncated
                ? tag('NextContinuationToken', enc(Buffer.from(page.at(-1)!.key).toString('base64url')))
                : '') +
              page
                .map(
                  (o) =>
                    `<Contents>${tag('Key', enc(o.key))}${tag('LastModified', new Date(o.lastModified).toISOString())}${tag('ETag', o.etag)}${tag('Size', o.size)}${tag('StorageClass', 'Standard')}</Contents>`,
                )
                .join(''),
          );
          res.writeHead(200, { ...base(), 'content-type': 'application/xml' }).end(body);
          return finish(200);
        }
        case 'DeleteMultipleObjects': {
          const raw = await readBody(req);
          if (headers['content-md5'] === undefined)
            throw new HttpError(400, 'InvalidArgument', 'Content-MD5 is required for DeleteMultipleObjects.');
          checkMd5(raw);
          let doc: { Delete?: { Quiet?: string; Object?: Array<{ Key?: string }> } };
          try {
            doc = xmlParser.parse(raw.toString('utf8')) as typeof doc;
          } catch {
            throw new HttpError(400, 'MalformedXML', 'The XML you provided was not well-formed.');
          }
          let keys: string[];
          try {
            // with encoding-type=url the request's keys are URL-encoded too
            keys = (doc.Delete?.Object ?? [])
              .map((o) => String(o.Key ?? ''))
              .map((k) => (urlEncoded ? decodeURIComponent(k) : k));
          } catch {
            throw new HttpError(
              400,
              'InvalidArgument',
              'A Key is not URL-encoded although encoding-type is url.',
            );
          }
          if (keys.length > 1000) throw new HttpError(400, 'MalformedXML', 'At most 1000 keys per request.');
          for (const k of keys) await store.deleteObject(bucket, k);
          const quiet = doc.Delete?.Quiet === 'true';
          const body = xml(
            'DeleteResult',
            encodingTag + (quiet ? '' : keys.map((k) => `<Deleted>${tag('Key', enc(k))}</Deleted>`).join('')),
          );
          res.writeHead(200, { ...base(), 'content-type': 'application/xml' }).end(body);
          return finish(200);
        }
        default:
          throw new HttpError(400, 'InvalidArgument', `Unsupported operation ${String(target.operation)}.`);
      }
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return finish(0, 'AnswerFailed');
      }
      if (e instanceof HttpError) return await drainThenFail(e);
      return await drainThenFail(
        new HttpError(500, 'InternalError', `We encountered an internal error: ${(e as Error).message}`),
      );
    }
  };

  const admin = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const json = (status: number, body: unknown): void => sendJson(res, status, body);
    const body = (await readBody(req)).toString('utf8');
    if (url.pathname === '/_oss/faults' && req.method === 'POST') {
      const rule = JSON.parse(body) as FaultRule & { times?: number | null };
      if (rule.times === null) rule.times = Infinity;
      return json(200, { id: faults.add(rule) });
    }
    if (url.pathname === '/_oss/faults' && req.method === 'DELETE') {
      faults.clear();
      return json(200, { cleared: true });
    }
    if (url.pathname === '/_oss/requests' && req.method === 'GET') return json(200, requests);
    if (url.pathname === '/_oss/requests' && req.method === 'DELETE')
      return json(200, { cleared: requests.splice(0).length });
    const bucket = /^\/_oss\/buckets\/([a-z0-9-]+)$/.exec(url.pathname)?.[1];
    if (bucket && req.method === 'POST') {
      await store.createBucket(bucket);
      return json(200, { bucket });
    }
    return json(404, { error: `no admin endpoint ${req.method ?? ''} ${url.pathname}` });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 30_000;
  const port = await listen(server, opts.port, opts.host);
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    requests,
    addFault: (rule) => faults.add(rule),
    clearFaults: () => faults.clear(),
    clearRequests: () => void requests.splice(0),
    createBucket: (name) => store.createBucket(name),
    addCredential: (credential) => void credentials.push(credential),
    ageUploads: (ms) => store.ageUploads(ms),
    close: () => closeServer(server),
  };
}

function objectHeaderAnswer(obj: StoredObject): Record<string, string> {
  return {
    'content-type': 'application/octet-stream',
    ...obj.headers,
    'content-length': String(obj.size),
    etag: obj.etag,
    'last-modified': obj.lastModified,
  };
}
