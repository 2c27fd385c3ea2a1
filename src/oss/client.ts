/**
 * OssClient: the one request pipeline (build, sign, send on a keep-alive undici Agent, map errors, retry)
 * and the object and multipart operations on top of it.
 */
import { createHash } from 'node:crypto';
import { Agent, type Dispatcher } from 'undici';
import { type Body, bufferBody } from './body.ts';
import { parseCrc64 } from './crc64.ts';
import { type ResolvedEndpoint, originFor, pathFor, resolveEndpoint, validateBucket } from './endpoint.ts';
import { OssError, isOssError, transportError } from './errors.ts';
import type { OssOperation } from './operations.ts';
import { DEFAULT_RETRY, type RetryPolicy, backoffDelayMs, sleep } from './retry.ts';
import { signV1 } from './signer-v1.ts';
import { type SignableRequest, signV4 } from './signer-v4.ts';
import { uriEncode } from './uri.ts';
import { completeBody, deleteBody, list, parseXml, str } from './xml.ts';

export interface Credentials {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string | undefined;
  expiration?: Date | undefined;
}

/**
 * Called before every signing, so a provider can refresh temporary credentials. `rejected` is a set the
 * service has just refused as expired: a provider that can, replaces it now instead of at its own schedule.
 */
export type CredentialsProvider = (hint?: { rejected?: Credentials }) => Promise<Credentials>;

export interface OssClientOptions {
  credentials: Credentials | CredentialsProvider;
  /** e.g. `cn-hangzhou`; alone it builds `https://oss-cn-hangzhou.aliyuncs.com`. */
  region?: string | undefined;
  /** `oss-cn-hangzhou.aliyuncs.com`, `https://cdn.example.com` (with cname) or `http://127.0.0.1:9000`. */
  endpoint?: string | undefined;
  /** With a region alone: the `-internal` endpoint, for ECS in the same region. @default false */
  internal?: boolean | undefined;
  /** The endpoint is the bucket's own domain: no bucket is added to the host. @default false */
  cname?: boolean | undefined;
  /** `/{bucket}/{key}` paths. @default true for an IP or localhost endpoint */
  pathStyle?: boolean | undefined;
  /** @default 'v4' */
  signatureVersion?: 'v4' | 'v1' | undefined;
  /** Sockets per origin; follow the wanted parallelism. @default 16 */
  connections?: number | undefined;
  /** @default 10000 */
  connectTimeoutMs?: number | undefined;
  /** @default 60000 */
  headersTimeoutMs?: number | undefined;
  /** @default 60000 */
  bodyTimeoutMs?: number | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  onRetry?:
    | ((info: { operation: OssOperation; attempt: number; delayMs: number; error: OssError }) => void)
    | undefined;
}

type Headers = Record<string, string>;

interface Call {
  operation: OssOperation;
  method: Dispatcher.HttpMethod;
  bucket?: string | undefined;
  key?: string | undefined;
  partNumber?: number | undefined;
  query?: Record<string, string | null>;
  headers?: Headers | undefined;
  body?: Body | undefined;
  signal?: AbortSignal | undefined;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Dispatcher.ResponseData['body'];
}

export interface ObjectInfo {
  size: number;
  etag: string;
  crc64?: bigint | undefined;
  lastModified?: Date | undefined;
  headers: Headers;
}

export class OssClient {
  private readonly endpoint: ResolvedEndpoint;
  private readonly agent: Agent;
  private readonly credentials: CredentialsProvider;
  private readonly refreshable: boolean;
  private readonly version: 'v4' | 'v1';
  private readonly retryPolicy: RetryPolicy;
  private readonly onRetry: OssClientOptions['onRetry'];
  /** Server time minus local time, learned from RequestTimeTooSkewed answers. */
  private clockOffsetMs = 0;

  constructor(opts: OssClientOptions) {
    this.endpoint = resolveEndpoint(opts);
    const creds = opts.credentials;
    this.credentials = typeof creds === 'function' ? creds : () => Promise.resolve(creds);
    this.refreshable = typeof creds === 'function';
    this.version = opts.signatureVersion ?? 'v4';
    this.retryPolicy = { ...DEFAULT_RETRY, ...opts.retry };
    this.onRetry = opts.onRetry;
    this.agent = new Agent({
      connections: opts.connections ?? 16,
      keepAliveTimeout: 30_000,
      connect: { timeout: opts.connectTimeoutMs ?? 10_000 },
      headersTimeout: opts.headersTimeoutMs ?? 60_000,
      bodyTimeout: opts.bodyTimeoutMs ?? 60_000,
    });
  }

  /** The region requests are signed for. */
  get region(): string {
    return this.endpoint.region;
  }

  /** The object's URL (no signature): for outputs and logs. */
  objectUrl(bucket: string, key: string): string {
    return `${originFor(this.endpoint, bucket)}${pathFor(this.endpoint, bucket, key)}`;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  // --- objects -------------------------------------------------------------------------------

  async putObject(o: {
    bucket: string;
    key: string;
    body: Body;
    headers?: Headers;
    signal?: AbortSignal | undefined;
  }): Promise<{
    etag: string;
    crc64?: bigint | undefined;
    requestId: string;
  }> {
    const res = await this.send({ operation: 'PutObject', method: 'PUT', ...o });
    await res.body.dump();
    return {
      etag: res.headers.etag ?? '',
      crc64: parseCrc64(res.headers['x-oss-hash-crc64ecma']),
      requestId: res.headers['x-oss-request-id'] ?? '',
    };
  }

  async headObject(o: {
    bucket: string;
    key: string;
    signal?: AbortSignal | undefined;
  }): Promise<ObjectInfo> {
    const res = await this.send({ operation: 'HeadObject', method: 'HEAD', ...o });
    await res.body.dump();
    return objectInfo(res.headers);
  }

  async getObject(o: {
    bucket: string;
    key: string;
    signal?: AbortSignal | undefined;
  }): Promise<ObjectInfo & { body: Answer['body'] }> {
    const res = await this.send({ operation: 'GetObject', method: 'GET', ...o });
    return { ...objectInfo(res.headers), body: res.body };
  }

  async deleteObject(o: { bucket: string; key: string; signal?: AbortSignal | undefined }): Promise<void> {
    await (await this.send({ operation: 'DeleteObject', method: 'DELETE', ...o })).body.dump();
  }

  /**
   * Copy the object onto itself with new headers (`x-oss-metadata-directive: REPLACE`): headers not given
   * are dropped. OSS takes CopyObject for objects under 1 GB; larger ones go through UploadPartCopy.
   */
  async copyObject(o: {
    bucket: string;
    key: string;
    headers?: Headers | undefined;
    signal?: AbortSignal | undefined;
  }): Promise<{ etag: string; crc64?: bigint | undefined; requestId: string }> {
    const { xml, headers } = await this.sendXmlAnswer({
      operation: 'CopyObject',
      method: 'PUT',
      bucket: o.bucket,
      key: o.key,
      headers: {
        ...o.headers,
        'x-oss-copy-source': copySource(o.bucket, o.key),
        'x-oss-metadata-directive': 'REPLACE',
      },
      signal: o.signal,
    });
    return {
      etag: str(xml.ETag) ?? headers.etag ?? '',
      crc64: parseCrc64(headers['x-oss-hash-crc64ecma']),
      requestId: headers['x-oss-request-id'] ?? '',
    };
  }

  async getObjectAcl(o: { bucket: string; key: string; signal?: AbortSignal | undefined }): Promise<string> {
    const xml = await this.sendXml({
      operation: 'GetObjectAcl',
      method: 'GET',
      bucket: o.bucket,
      key: o.key,
      query: { acl: null },
      signal: o.signal,
    });
    const acl = xml.AccessControlList as Record<string, unknown> | undefined;
    const grant = str(acl?.Grant);
    if (!grant) throw this.malformed('GetObjectAcl', o, 'no AccessControlList/Grant in the answer');
    return grant;
  }

  /** `acl`: default, private, public-read or public-read-write. */
  async putObjectAcl(o: {
    bucket: string;
    key: string;
    acl: string;
    signal?: AbortSignal | undefined;
  }): Promise<void> {
    if (!OBJECT_ACLS.includes(o.acl))
      throw new Error(`putObjectAcl: acl ${JSON.stringify(o.acl)} is not one of ${OBJECT_ACLS.join(', ')}`);
    await this.sendEmpty({
      operation: 'PutObjectAcl',
      method: 'PUT',
      bucket: o.bucket,
      key: o.key,
      query: { acl: null },
      headers: { 'x-oss-object-acl': o.acl },
      signal: o.signal,
    });
  }

  // --- multipart -----------------------------------------------------------------------------

  async initiateMultipartUpload(o: {
    bucket: string;
    key: string;
    headers?: Headers;
    signal?: AbortSignal | undefined;
  }): Promise<{
    uploadId: string;
  }> {
    const xml = await this.sendXml({
      operation: 'InitiateMultipartUpload',
      method: 'POST',
      query: { uploads: null },
      ...o,
    });
    const uploadId = str(xml.UploadId);
    if (!uploadId) throw this.malformed('InitiateMultipartUpload', o, 'no UploadId in the answer');
    return { uploadId };
  }

  async uploadPart(o: {
    bucket: string;
    key: string;
    uploadId: string;
    partNumber: number;
    body: Body;
    signal?: AbortSignal | undefined;
  }): Promise<{ etag: string; crc64?: bigint | undefined }> {
    const res = await this.send({
      operation: 'UploadPart',
      method: 'PUT',
      bucket: o.bucket,
      key: o.key,
      partNumber: o.partNumber,
      query: { partNumber: String(o.partNumber), uploadId: o.uploadId },
      body: o.body,
      signal: o.signal,
    });
    await res.body.dump();
    return { etag: res.headers.etag ?? '', crc64: parseCrc64(res.headers['x-oss-hash-crc64ecma']) };
  }

  /** A part copied from bytes `range.start` .. `range.start + range.length - 1` of `sourceKey` in the same bucket. */
  async uploadPartCopy(o: {
    bucket: string;
    key: string;
    uploadId: string;
    partNumber: number;
    sourceKey: string;
    range: { start: number; length: number };
    signal?: AbortSignal | undefined;
  }): Promise<{ etag: string; crc64?: bigint | undefined }> {
    const { start, length } = o.range;
    if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(length) || length < 1)
      throw new Error(
        `uploadPartCopy: range ${JSON.stringify(o.range)} needs an integer start >= 0 and length >= 1`,
      );
    const { xml, headers } = await this.sendXmlAnswer({
      operation: 'UploadPartCopy',
      method: 'PUT',
      bucket: o.bucket,
      key: o.key,
      partNumber: o.partNumber,
      query: { partNumber: String(o.partNumber), uploadId: o.uploadId },
      headers: {
        'x-oss-copy-source': copySource(o.bucket, o.sourceKey),
        'x-oss-copy-source-range': `bytes=${start}-${start + length - 1}`,
      },
      signal: o.signal,
    });
    return {
      etag: str(xml.ETag) ?? headers.etag ?? '',
      crc64: parseCrc64(headers['x-oss-hash-crc64ecma']),
    };
  }

  async completeMultipartUpload(o: {
    bucket: string;
    key: string;
    uploadId: string;
    parts: ReadonlyArray<{ partNumber: number; etag: string }>;
    headers?: Headers;
    signal?: AbortSignal | undefined;
  }): Promise<{ etag: string; crc64?: bigint | undefined; location?: string | undefined }> {
    const res = await this.send({
      operation: 'CompleteMultipartUpload',
      method: 'POST',
      bucket: o.bucket,
      key: o.key,
      query: { uploadId: o.uploadId },
      headers: { 'content-type': 'application/xml', ...o.headers },
      body: bufferBody(completeBody(o.parts)),
      signal: o.signal,
    });
    const xml = parseXml(await res.body.text()) ?? {};
    return {
      etag: str(xml.ETag) ?? res.headers.etag ?? '',
      crc64: parseCrc64(res.headers['x-oss-hash-crc64ecma']),
      location: str(xml.Location),
    };
  }

  /** Every part of an upload, following the pages. */
  async listParts(o: {
    bucket: string;
    key: string;
    uploadId: string;
    signal?: AbortSignal | undefined;
  }): Promise<
    Array<{
      partNumber: number;
      etag: string;
      size: number;
      crc64?: bigint | undefined;
      lastModified?: Date | undefined;
    }>
  > {
    const parts = [];
    let marker = '0';
    for (;;) {
      const xml = await this.sendXml({
        operation: 'ListParts',
        method: 'GET',
        bucket: o.bucket,
        key: o.key,
        query: { uploadId: o.uploadId, 'max-parts': '1000', 'part-number-marker': marker },
        signal: o.signal,
      });
      for (const p of list(xml.Part)) {
        parts.push({
          partNumber: Number(str(p.PartNumber)),
          etag: str(p.ETag) ?? '',
          size: Number(str(p.Size)),
          crc64: parseCrc64(str(p.HashCrc64ecma)),
          lastModified: dateOf(str(p.LastModified)),
        });
      }
      const next = str(xml.NextPartNumberMarker);
      if (str(xml.IsTruncated) !== 'true' || !next || next === marker) return parts;
      marker = next;
    }
  }

  async abortMultipartUpload(o: {
    bucket: string;
    key: string;
    uploadId: string;
    signal?: AbortSignal | undefined;
  }): Promise<void> {
    const res = await this.send({
      operation: 'AbortMultipartUpload',
      method: 'DELETE',
      bucket: o.bucket,
      key: o.key,
      query: { uploadId: o.uploadId },
      signal: o.signal,
    });
    await res.body.dump();
  }

  /** Every unfinished multipart upload under `prefix`, following the pages. */
  async listMultipartUploads(o: {
    bucket: string;
    prefix?: string;
    signal?: AbortSignal | undefined;
  }): Promise<Array<{ key: string; uploadId: string; initiated: Date }>> {
    const uploads = [];
    let keyMarker = '';
    let idMarker = '';
    for (;;) {
      const xml = await this.sendXml({
        operation: 'ListMultipartUploads',
        method: 'GET',
        bucket: o.bucket,
        query: {
          uploads: null,
          'max-uploads': '1000',
          prefix: o.prefix ?? '',
          'key-marker': keyMarker,
          'upload-id-marker': idMarker,
        },
        signal: o.signal,
      });
      for (const u of list(xml.Upload)) {
        uploads.push({
          key: str(u.Key) ?? '',
          uploadId: str(u.UploadId) ?? '',
          initiated: dateOf(str(u.Initiated)) ?? new Date(0),
        });
      }
      if (str(xml.IsTruncated) !== 'true') return uploads;
      keyMarker = str(xml.NextKeyMarker) ?? '';
      idMarker = str(xml.NextUploadIdMarker) ?? '';
    }
  }

  /** Every object under `prefix` (ListObjectsV2), following the pages. */
  async listObjects(o: {
    bucket: string;
    prefix?: string;
    signal?: AbortSignal | undefined;
  }): Promise<Array<{ key: string; size: number; etag: string; lastModified: Date }>> {
    const objects = [];
    let token: string | undefined;
    for (;;) {
      const xml = await this.sendXml({
        operation: 'ListObjects',
        method: 'GET',
        bucket: o.bucket,
        query: {
          'list-type': '2',
          'max-keys': '1000',
          prefix: o.prefix ?? '',
          ...(token ? { 'continuation-token': token } : {}),
        },
        signal: o.signal,
      });
      for (const c of list(xml.Contents)) {
        objects.push({
          key: str(c.Key) ?? '',
          size: Number(str(c.Size)),
          etag: str(c.ETag) ?? '',
          lastModified: dateOf(str(c.LastModified)) ?? new Date(0),
        });
      }
      token = str(xml.NextContinuationToken);
      if (str(xml.IsTruncated) !== 'true' || !token) return objects;
    }
  }

  /** DeleteMultipleObjects in batches of 1,000 (the API's limit); resolves with the keys deleted. */
  async deleteObjects(o: {
    bucket: string;
    keys: string[];
    signal?: AbortSignal | undefined;
  }): Promise<{ deleted: string[] }> {
    const deleted: string[] = [];
    for (let i = 0; i < o.keys.length; i += 1000) {
      const text = deleteBody(o.keys.slice(i, i + 1000), false);
      const xml = await this.sendXml({
        operation: 'DeleteMultipleObjects',
        method: 'POST',
        bucket: o.bucket,
        query: { delete: null },
        headers: {
          'content-type': 'application/xml',
          'content-md5': createHash('md5').update(text).digest('base64'),
        },
        body: bufferBody(text),
        signal: o.signal,
      });
      for (const d of list(xml.Deleted)) deleted.push(str(d.Key) ?? '');
    }
    return { deleted };
  }

  async putBucket(o: { bucket: string; signal?: AbortSignal | undefined }): Promise<void> {
    await (await this.send({ operation: 'PutBucket', method: 'PUT', ...o })).body.dump();
  }

  // --- the pipeline --------------------------------------------------------------------------

  private async sendXml(call: Call): Promise<Record<string, unknown>> {
    return (await this.sendXmlAnswer(call)).xml;
  }

  private async sendXmlAnswer(call: Call): Promise<{ xml: Record<string, unknown>; headers: Headers }> {
    const res = await this.send(call);
    const text = await res.body.text();
    const xml = parseXml(text);
    if (!xml)
      throw this.malformed(call.operation, call, 'the answer is not XML', res.headers['x-oss-request-id']);
    return { xml, headers: res.headers };
  }

  private async sendEmpty(call: Call): Promise<Headers> {
    const res = await this.send(call);
    await res.body.dump();
    return res.headers;
  }

  private malformed(
    operation: OssOperation,
    at: { bucket?: string; key?: string },
    why: string,
    requestId?: string,
  ): OssError {
    return new OssError({
      status: 200,
      code: 'MalformedAnswer',
      ossMessage: why,
      operation,
      bucket: at.bucket,
      key: at.key,
      requestId,
    });
  }

  /** Send with retries; resolves with a 2xx answer whose body the caller must consume. */
  private async send(call: Call): Promise<Answer> {
    if (call.bucket !== undefined) validateBucket(call.bucket);
    let rejected: Credentials | undefined;
    let refreshedOnce = false;
    for (let attempt = 1; ; attempt++) {
      call.signal?.throwIfAborted();
      let error: OssError;
      const creds = await this.credentials(rejected ? { rejected } : undefined);
      rejected = undefined;
      try {
        const res = await this.attempt(call, creds);
        if (res.status >= 200 && res.status < 300) return res;
        error = await this.serviceError(call, res);
      } catch (e) {
        if (call.signal?.aborted) throw call.signal.reason;
        if (isOssError(e)) throw e;
        error = transportError(e, {
          operation: call.operation,
          bucket: call.bucket,
          key: call.key,
          partNumber: call.partNumber,
        });
      }
      if (error.code === 'RequestTimeTooSkewed' && error.serverTime) {
        // the server's clock wins: sign the next attempt with its time
        this.clockOffsetMs = error.serverTime.getTime() - Date.now();
      }
      if (error.code === 'SecurityTokenExpired' && this.refreshable && !refreshedOnce) {
        // our clock said the set was still good; the service's clock wins: one retry with a new set
        refreshedOnce = true;
        rejected = creds;
        continue;
      }
      if (!error.retryable || attempt >= this.retryPolicy.maxAttempts) throw error;
      const delayMs = error.code === 'RequestTimeTooSkewed' ? 0 : backoffDelayMs(this.retryPolicy, attempt);
      try {
        this.onRetry?.({ operation: call.operation, attempt, delayMs, error });
      } catch {
        // a log callback must not change the outcome
      }
      await sleep(delayMs, call.signal);
    }
  }

  private async attempt(call: Call, creds: Credentials): Promise<Answer> {
    const headers: Headers = {};
    for (const [k, v] of Object.entries(call.headers ?? {})) headers[k.toLowerCase()] = v;
    if (call.body) headers['content-length'] = String(call.body.length);
    const query = call.query ?? {};
    const req: SignableRequest = { method: call.method, bucket: call.bucket, key: call.key, query, headers };
    const now = new Date(Date.now() + this.clockOffsetMs);
    if (this.version === 'v4') signV4(req, creds, this.endpoint.region, now);
    else signV1(req, creds, now);
    const qs = Object.entries(query)
      .map(([k, v]) => (v === null ? uriEncode(k) : `${uriEncode(k)}=${uriEncode(v)}`))
      .join('&');
    const res = await this.agent.request({
      origin: originFor(this.endpoint, call.bucket),
      path: `${pathFor(this.endpoint, call.bucket, call.key)}${qs ? `?${qs}` : ''}`,
      method: call.method,
      headers: req.headers,
      body: call.body ? (call.body.open() as Dispatcher.DispatchOptions['body']) : null,
      signal: call.signal ?? null,
    });
    return { status: res.statusCode, headers: flatHeaders(res.headers), body: res.body };
  }

  private async serviceError(call: Call, res: Answer): Promise<OssError> {
    let text = await res.body.text().catch(() => '');
    const encoded = res.headers['x-oss-err'];
    if (!text && encoded) text = Buffer.from(encoded, 'base64').toString('utf8');
    const xml = parseXml(text) ?? {};
    const serverTime = dateOf(str(xml.ServerTime)) ?? dateOf(res.headers.date);
    return new OssError({
      status: res.status,
      code: str(xml.Code) ?? statusCode(res.status),
      ossMessage: str(xml.Message),
      requestId: str(xml.RequestId) ?? res.headers['x-oss-request-id'],
      ec: str(xml.EC) ?? res.headers['x-oss-ec'],
      hostId: str(xml.HostId),
      operation: call.operation,
      bucket: call.bucket,
      key: call.key,
      partNumber: call.partNumber,
      serverTime,
    });
  }
}

const OBJECT_ACLS = ['default', 'private', 'public-read', 'public-read-write'];

/** `x-oss-copy-source`: the bucket and the URL-encoded key. */
function copySource(bucket: string, key: string): string {
  return `/${bucket}/${uriEncode(key, true)}`;
}

function statusCode(status: number): string {
  if (status === 404) return 'NotFound';
  if (status === 403) return 'AccessDenied';
  if (status >= 500) return 'InternalError';
  return `Http${status}`;
}

function flatHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const out: Headers = {};
  for (const [k, v] of Object.entries(raw))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function objectInfo(headers: Headers): ObjectInfo {
  return {
    size: Number(headers['content-length'] ?? 0),
    etag: headers.etag ?? '',
    crc64: parseCrc64(headers['x-oss-hash-crc64ecma']),
    lastModified: dateOf(headers['last-modified']),
    headers,
  };
}

function dateOf(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
