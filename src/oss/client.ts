/**
 * OssClient: the one request pipeline (build, sign, send on a keep-alive undici Agent, map errors, retry)
 * and the object and multipart operations on top of it.
 */
import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { Agent, request } from './undici.ts';
import { WarmConnector } from './warm-connections.ts';
import { type Body, bufferBody } from './body.ts';
import { parseCrc64 } from './crc64.ts';
import { type ResolvedEndpoint, originFor, pathFor, resolveEndpoint, validateBucket } from './endpoint.ts';
import { OssError, type OssErrorFields, isOssError, transportError } from './errors.ts';
import type { OssOperation } from './operations.ts';
import { DEFAULT_RETRY, type RetryPolicy, backoffDelayMs, sleep } from './retry.ts';
import { signV1 } from './signer-v1.ts';
import { type SignableRequest, signV4 } from './signer-v4.ts';
import { uriEncode } from './uri.ts';
import { headerNameProblem, headerValueProblem } from './headers.ts';
import { compareKeys } from './key-order.ts';
import {
  completeBody,
  deleteBody,
  list,
  looksLikeErrorDocument,
  parseXml,
  parseXmlDocument,
  str,
} from './xml.ts';
import { readAtMost } from './bounded-http.ts';

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
  /**
   * Total time for one attempt, headers and answer body (undici's body timeout restarts with every byte, so a
   * server trickling a byte at a time would hold a request forever). A request body of n bytes gets at least
   * n / `minBytesPerSecond` seconds, so a 5 GB part over a slow link is not cut. GetObject: until the headers.
   * @default 120000
   */
  requestTimeoutMs?: number | undefined;
  /** @default 65536 (64 KiB/s) */
  minBytesPerSecond?: number | undefined;
  /** Largest XML answer read (lists are the largest OSS answers, well under this). @default 8 MiB */
  maxAnswerBytes?: number | undefined;
  /** Largest error body, or body of an operation that answers none, read. @default 1 MiB */
  maxErrorBytes?: number | undefined;
  /** Pages one list call follows before it gives up on a server that never stops. @default 100000 */
  maxListPages?: number | undefined;
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
  /**
   * What a 2xx answer must carry for the operation to have done its job (e.g. UploadPart's ETag); a problem
   * named here makes the answer an IncompleteAnswer, which is retried: only operations that may be sent
   * again with the same effect set this.
   */
  incomplete?: ((answer: Answer) => string | undefined) | undefined;
}

type AnswerBody = Dispatcher.ResponseData['body'];

/** What an operation reads of a 2xx answer: nothing (but an <Error> there is seen), XML, or the stream. */
type Reading = 'empty' | 'xml' | 'stream';

interface Answer {
  status: number;
  headers: Headers;
  /** The root's children for `xml`; empty otherwise. */
  xml: Record<string, unknown>;
  /** The body for `stream`, which the caller must consume. */
  body: AnswerBody | undefined;
}

type Where = Omit<OssErrorFields, 'status' | 'code'>;

interface Limits {
  requestTimeoutMs: number;
  minBytesPerSecond: number;
  maxAnswerBytes: number;
  maxErrorBytes: number;
  maxListPages: number;
}

export interface ObjectInfo {
  /** From Content-Length; undefined when the answer has none (chunked, or a proxy dropped it), not 0. */
  size: number | undefined;
  etag: string;
  crc64?: bigint | undefined;
  lastModified?: Date | undefined;
  headers: Headers;
}

export class OssClient {
  private readonly endpoint: ResolvedEndpoint;
  private readonly agent: Agent;
  private readonly warmed: WarmConnector;
  private readonly connections: number;
  private readonly credentials: CredentialsProvider;
  private readonly refreshable: boolean;
  private readonly version: 'v4' | 'v1';
  private readonly retryPolicy: RetryPolicy;
  private readonly onRetry: OssClientOptions['onRetry'];
  private readonly limits: Limits;
  /** Server time minus local time, learned from RequestTimeTooSkewed answers; used for signing. */
  private clockOffsetMs = 0;
  /** Server time minus local time, learned from every answer's Date (and an error's ServerTime). */
  private serverOffsetMs = 0;
  /** Set once an answer's time was too far from ours to believe: see {@link serverClockDoubt}. */
  private serverClockDoubtText: string | undefined;

  constructor(opts: OssClientOptions) {
    this.endpoint = resolveEndpoint(opts);
    const creds = opts.credentials;
    this.credentials = typeof creds === 'function' ? creds : () => Promise.resolve(creds);
    this.refreshable = typeof creds === 'function';
    this.version = opts.signatureVersion ?? 'v4';
    this.retryPolicy = { ...DEFAULT_RETRY, ...opts.retry };
    this.onRetry = opts.onRetry;
    this.limits = {
      requestTimeoutMs: opts.requestTimeoutMs ?? 120_000,
      minBytesPerSecond: opts.minBytesPerSecond ?? 64 * 1024,
      maxAnswerBytes: opts.maxAnswerBytes ?? 8 * 1024 * 1024,
      maxErrorBytes: opts.maxErrorBytes ?? 1024 * 1024,
      maxListPages: opts.maxListPages ?? 100_000,
    };
    this.connections = opts.connections ?? 16;
    this.warmed = new WarmConnector({ timeoutMs: opts.connectTimeoutMs ?? 10_000 });
    this.agent = new Agent({
      connections: this.connections,
      keepAliveTimeout: 30_000,
      connect: this.warmed.connect,
      headersTimeout: opts.headersTimeoutMs ?? 60_000,
      bodyTimeout: opts.bodyTimeoutMs ?? 60_000,
    });
  }

  /** The region requests are signed for. */
  get region(): string {
    return this.endpoint.region;
  }

  /** Now by the server's clock (ms since the epoch), as its last answer told; the local clock before any. */
  serverNow(): number {
    return Date.now() + this.serverOffsetMs;
  }

  /**
   * Why ages on the server's clock (now minus a LastModified or an Initiated) cannot be trusted, or undefined
   * when they can. Set for good once an answer's time was too far from the runner's to believe: serverNow()
   * then reads the runner's clock while the server keeps dating objects on its own, so every age would be off
   * by the difference, and whatever deletes or aborts by age must hold back.
   */
  serverClockDoubt(): string | undefined {
    return this.serverClockDoubtText;
  }

  /** The object's URL (no signature): for outputs and logs. */
  objectUrl(bucket: string, key: string): string {
    return `${originFor(this.endpoint, bucket)}${pathFor(this.endpoint, bucket, key)}`;
  }

  /**
   * Opens connections to the bucket ahead of the requests about to be sent, so that `count` are ready or on
   * their way (at most the pool's size): their handshakes overlap whatever the caller does first, such as
   * searching files or listing, instead of delaying the first requests.
   */
  preconnect(bucket: string | undefined, count: number): void {
    const origin = originFor(this.endpoint, bucket);
    // a pool of one connection reports a Client, whose `connected` is a boolean
    const open = Number(this.agent.stats[new URL(origin).origin]?.connected ?? 0);
    this.warmed.warm(origin, Math.min(count, this.connections) - open - this.warmed.waitingFor(origin));
  }

  async close(): Promise<void> {
    this.warmed.close();
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
    const res = await this.send({ operation: 'PutObject', method: 'PUT', ...o }, 'empty');
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
    const res = await this.send({ operation: 'HeadObject', method: 'HEAD', ...o }, 'empty');
    return objectInfo(res.headers);
  }

  async getObject(o: {
    bucket: string;
    key: string;
    signal?: AbortSignal | undefined;
  }): Promise<ObjectInfo & { body: AnswerBody }> {
    const res = await this.send({ operation: 'GetObject', method: 'GET', ...o }, 'stream');
    return { ...objectInfo(res.headers), body: res.body! };
  }

  async deleteObject(o: { bucket: string; key: string; signal?: AbortSignal | undefined }): Promise<void> {
    await this.send({ operation: 'DeleteObject', method: 'DELETE', ...o }, 'empty');
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
    const { xml, headers } = await this.send({
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
    await this.send(
      {
        operation: 'PutObjectAcl',
        method: 'PUT',
        bucket: o.bucket,
        key: o.key,
        query: { acl: null },
        headers: { 'x-oss-object-acl': o.acl },
        signal: o.signal,
      },
      'empty',
    );
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
    const res = await this.send(
      {
        operation: 'UploadPart',
        method: 'PUT',
        bucket: o.bucket,
        key: o.key,
        partNumber: o.partNumber,
        query: { partNumber: String(o.partNumber), uploadId: o.uploadId },
        body: o.body,
        signal: o.signal,
        incomplete: (a) => (nonEmpty(a.headers.etag) === undefined ? NO_PART_ETAG : undefined),
      },
      'empty',
    );
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
    const { xml, headers } = await this.send({
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
      incomplete: (a) => (copyEtag(a) === undefined ? NO_PART_ETAG : undefined),
    });
    return {
      etag: copyEtag({ xml, headers }) ?? '',
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
    const { xml, headers } = await this.send({
      operation: 'CompleteMultipartUpload',
      method: 'POST',
      bucket: o.bucket,
      key: o.key,
      query: { uploadId: o.uploadId },
      headers: { 'content-type': 'application/xml', ...o.headers },
      body: bufferBody(completeBody(o.parts)),
      signal: o.signal,
    });
    return {
      etag: str(xml.ETag) ?? headers.etag ?? '',
      crc64: parseCrc64(headers['x-oss-hash-crc64ecma']),
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
    const parts: Awaited<ReturnType<OssClient['listParts']>> = [];
    await this.paginate(
      'ListParts',
      o,
      '0',
      'NextPartNumberMarker',
      (m) => m,
      async (marker) => {
        const xml = await this.sendXml({
          operation: 'ListParts',
          method: 'GET',
          bucket: o.bucket,
          key: o.key,
          query: {
            uploadId: o.uploadId,
            'max-parts': '1000',
            'part-number-marker': marker,
            'encoding-type': 'url',
          },
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
        return { xml, next: nonEmpty(str(xml.NextPartNumberMarker)) };
      },
    );
    return parts;
  }

  async abortMultipartUpload(o: {
    bucket: string;
    key: string;
    uploadId: string;
    signal?: AbortSignal | undefined;
  }): Promise<void> {
    await this.send(
      {
        operation: 'AbortMultipartUpload',
        method: 'DELETE',
        bucket: o.bucket,
        key: o.key,
        query: { uploadId: o.uploadId },
        signal: o.signal,
      },
      'empty',
    );
  }

  /** Every unfinished multipart upload under `prefix`, following the pages. */
  async listMultipartUploads(o: {
    bucket: string;
    prefix?: string;
    signal?: AbortSignal | undefined;
  }): Promise<Array<{ key: string; uploadId: string; initiated: Date | undefined }>> {
    const uploads: Awaited<ReturnType<OssClient['listMultipartUploads']>> = [];
    const first = { key: '', id: '' };
    const id = (m: typeof first): string => `${m.key}\n${m.id}`;
    await this.paginate('ListMultipartUploads', o, first, 'NextKeyMarker', id, async (marker) => {
      const xml = await this.sendXml({
        operation: 'ListMultipartUploads',
        method: 'GET',
        bucket: o.bucket,
        query: {
          uploads: null,
          'max-uploads': '1000',
          prefix: o.prefix ?? '',
          'key-marker': marker.key,
          'upload-id-marker': marker.id,
          'encoding-type': 'url',
        },
        signal: o.signal,
      });
      const decode = this.keyDecoder('ListMultipartUploads', o, xml);
      for (const u of list(xml.Upload)) {
        uploads.push({
          key: this.underPrefix('ListMultipartUploads', o, decode(str(u.Key))),
          uploadId: str(u.UploadId) ?? '',
          // missing or not a date: unknown, which a caller must not read as old (1970)
          initiated: dateOf(str(u.Initiated)),
        });
      }
      const key = nonEmpty(str(xml.NextKeyMarker));
      const next =
        key === undefined ? undefined : { key: decode(key), id: str(xml.NextUploadIdMarker) ?? '' };
      return { xml, next };
    });
    return uploads;
  }

  /**
   * Every object under `prefix` (ListObjectsV2), following the pages; or the part of them after `startAfter`
   * and up to `through` (both in the listing's order, UTF-8 bytes): a range lets a caller list a large prefix
   * in several requests at once. A range is only as good as the server's order, so its walk checks it: each
   * key must come after `startAfter` and after the key before it, or the walk stops there. `onEnd` then says
   * whether the order held and which key ended the range (the first at or past `through`; undefined when
   * the listing ran out first), which the next range must begin with.
   */
  async listObjects(o: {
    bucket: string;
    prefix?: string;
    startAfter?: string | undefined;
    through?: string | undefined;
    /** Stop after this many pages: `onEnd` then says whether more were left (`truncated`). */
    maxPages?: number | undefined;
    onEnd?: ((end: { at: string | undefined; ordered: boolean; truncated: boolean }) => void) | undefined;
    signal?: AbortSignal | undefined;
  }): Promise<Array<{ key: string; size: number; etag: string; lastModified: Date | undefined }>> {
    const objects: Awaited<ReturnType<OssClient['listObjects']>> = [];
    const ranged = o.startAfter !== undefined || o.through !== undefined;
    // the key the next one must come after: ListObjectsV2 returns keys in ascending order, from after
    // start-after (OSS ListObjectsV2 (GetBucketV2) API reference); a server that does otherwise is caught
    // here rather than trusted
    let last = o.startAfter;
    let end: string | undefined;
    let ordered = true;
    let pages = 0;
    let truncated = false;
    await this.paginate(
      'ListObjects',
      o,
      '',
      'NextContinuationToken',
      (m) => m,
      async (token) => {
        const xml = await this.sendXml({
          operation: 'ListObjects',
          method: 'GET',
          bucket: o.bucket,
          query: {
            'list-type': '2',
            'max-keys': '1000',
            prefix: o.prefix ?? '',
            'encoding-type': 'url',
            ...(token
              ? { 'continuation-token': token }
              : o.startAfter !== undefined
                ? { 'start-after': o.startAfter }
                : {}),
          },
          signal: o.signal,
        });
        const decode = this.keyDecoder('ListObjects', o, xml);
        for (const c of list(xml.Contents)) {
          const key = this.underPrefix('ListObjects', o, decode(str(c.Key)));
          if (ranged) {
            // out of order (or at or before start-after, from a server that ignores it): what a range
            // leaves out can no longer be told, and walking on would list the keys before it once per range
            if (last !== undefined && compareKeys(key, last) <= 0) {
              ordered = false;
              break;
            }
            last = key;
          }
          // a key at or past `through` ends the range: later pages hold only keys after it
          const order = o.through === undefined ? -1 : compareKeys(key, o.through);
          if (order >= 0) end ??= key;
          if (order > 0) continue;
          objects.push({
            key,
            size: Number(str(c.Size)),
            etag: str(c.ETag) ?? '',
            // missing or not a date: unknown, which a caller must not read as old (1970)
            lastModified: dateOf(str(c.LastModified)),
          });
        }
        const next = nonEmpty(str(xml.NextContinuationToken));
        truncated = str(xml.IsTruncated) === 'true';
        return {
          xml,
          next: next === undefined ? undefined : decode(next),
          done: end !== undefined || !ordered || ++pages === o.maxPages,
        };
      },
    );
    o.onEnd?.({ at: end, ordered, truncated });
    return objects;
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
        query: { delete: null, 'encoding-type': 'url' },
        headers: {
          'content-type': 'application/xml',
          'content-md5': createHash('md5').update(text).digest('base64'),
        },
        body: bufferBody(text),
        signal: o.signal,
      });
      const decode = this.keyDecoder('DeleteMultipleObjects', o, xml);
      for (const d of list(xml.Deleted)) deleted.push(decode(str(d.Key)));
    }
    return { deleted };
  }

  async putBucket(o: { bucket: string; signal?: AbortSignal | undefined }): Promise<void> {
    await this.send({ operation: 'PutBucket', method: 'PUT', ...o }, 'empty');
  }

  // --- the pipeline --------------------------------------------------------------------------

  private async sendXml(call: Call): Promise<Record<string, unknown>> {
    return (await this.send(call)).xml;
  }

  /**
   * Follow a listing's pages: `page` sends one and returns the next marker (undefined when the answer has
   * none), or says the caller has seen enough. A truncated page without a new marker, or more than
   * `maxListPages` pages, ends the walk with a MalformedAnswer instead of asking for the same page forever.
   */
  private async paginate<M>(
    operation: OssOperation,
    at: { bucket: string; key?: string },
    first: M,
    markerName: string,
    id: (marker: M) => string,
    page: (marker: M) => Promise<{ xml: Record<string, unknown>; next: M | undefined; done?: boolean }>,
  ): Promise<void> {
    const seen = new Set([id(first)]);
    let marker = first;
    for (let n = 1; ; n++) {
      const { xml, next, done } = await page(marker);
      if (done === true || str(xml.IsTruncated) !== 'true') return;
      const max = this.limits.maxListPages;
      if (n >= max)
        throw this.malformed(operation, at, `still truncated after ${n} pages (maxListPages ${max})`);
      if (next === undefined) throw this.malformed(operation, at, `IsTruncated=true without a ${markerName}`);
      if (seen.has(id(next)))
        throw this.malformed(
          operation,
          at,
          `IsTruncated=true with a repeated ${markerName} ${JSON.stringify(id(next))}`,
        );
      seen.add(id(next));
      marker = next;
    }
  }

  /** Decodes keys and markers of an answer that says `<EncodingType>url</EncodingType>`. */
  private keyDecoder(
    operation: OssOperation,
    at: { bucket: string },
    xml: Record<string, unknown>,
  ): (text: string | undefined) => string {
    if (str(xml.EncodingType) !== 'url') return (text) => text ?? '';
    return (text) => {
      try {
        return decodeURIComponent(text ?? '');
      } catch {
        throw this.malformed(
          operation,
          at,
          `EncodingType url, but ${JSON.stringify(text)} is not URL-encoded`,
        );
      }
    };
  }

  /**
   * A listing asked for keys under a prefix that names a key outside it ignored the prefix (or is not an
   * answer to this request): nothing it says may be acted on, since callers delete and abort what lists name.
   */
  private underPrefix(operation: OssOperation, at: { bucket: string; prefix?: string }, key: string): string {
    const prefix = at.prefix ?? '';
    if (!key.startsWith(prefix))
      throw this.malformed(
        operation,
        at,
        `the listing of prefix ${JSON.stringify(prefix)} names ${JSON.stringify(key)}, which is outside it`,
      );
    return key;
  }

  private malformed(
    operation: OssOperation,
    at: { bucket?: string; key?: string },
    why: string,
    requestId?: string,
    status = 200,
  ): OssError {
    return new OssError({
      status,
      code: 'MalformedAnswer',
      ossMessage: why,
      operation,
      bucket: at.bucket,
      key: at.key,
      requestId,
    });
  }

  /** Send with retries; resolves with a 2xx answer read as `reading` says. */
  private async send(call: Call, reading: Reading = 'xml'): Promise<Answer> {
    if (call.bucket !== undefined) validateBucket(call.bucket);
    let rejected: Credentials | undefined;
    let refreshedOnce = false;
    for (let attempt = 1; ; attempt++) {
      call.signal?.throwIfAborted();
      let error: OssError;
      const creds = await this.credentials(rejected ? { rejected } : undefined);
      rejected = undefined;
      try {
        return await this.attempt(call, creds, reading);
      } catch (e) {
        if (call.signal?.aborted) throw call.signal.reason;
        if (!isOssError(e)) throw e;
        error = e;
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

  /** One attempt; every failure (refused header, transport, deadline, service error) is an OssError. */
  private async attempt(call: Call, creds: Credentials, reading: Reading): Promise<Answer> {
    const where: Where = {
      operation: call.operation,
      bucket: call.bucket,
      key: call.key,
      partNumber: call.partNumber,
    };
    const headers: Headers = {};
    for (const [k, v] of Object.entries(call.headers ?? {})) headers[k.toLowerCase()] = v;
    if (call.body) headers['content-length'] = String(call.body.length);
    checkHeaders(where, headers, creds);
    const query = call.query ?? {};
    const req: SignableRequest = { method: call.method, bucket: call.bucket, key: call.key, query, headers };
    const now = new Date(Date.now() + this.clockOffsetMs);
    if (this.version === 'v4') signV4(req, creds, this.endpoint.region, now);
    else signV1(req, creds, now);
    const qs = Object.entries(query)
      .map(([k, v]) => (v === null ? uriEncode(k) : `${uriEncode(k)}=${uriEncode(v)}`))
      .join('&');
    const budgetMs = Math.max(
      this.limits.requestTimeoutMs,
      Math.ceil(((call.body?.length ?? 0) / this.limits.minBytesPerSecond) * 1000),
    );
    call.signal?.throwIfAborted();
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), budgetMs);
    // the caller's abort reaches the request through the deadline's controller: AbortSignal.any per request
    // built a composite signal (and its bookkeeping) for every one of thousands of small requests
    const callerAbort = (): void => deadline.abort(call.signal!.reason);
    call.signal?.addEventListener('abort', callerAbort, { once: true });
    const signal = deadline.signal;
    let streamed = false;
    const body = call.body?.open();
    try {
      const res = await request(this.agent, {
        origin: originFor(this.endpoint, call.bucket),
        path: `${pathFor(this.endpoint, call.bucket, call.key)}${qs ? `?${qs}` : ''}`,
        method: call.method,
        headers: req.headers,
        body: (body ?? null) as Dispatcher.DispatchOptions['body'],
        signal,
        // undici closes the connection after every HEAD unless told otherwise (for servers that send a body
        // with it); OSS sends none, and over a 100 ms link a new connection per HEAD doubles its cost
        ...(call.method === 'HEAD' ? { reset: false } : {}),
      });
      const answer: Answer = {
        status: res.statusCode,
        headers: flatHeaders(res.headers),
        xml: {},
        body: undefined,
      };
      this.learnServerTime(httpDate(answer.headers.date));
      if (answer.status < 200 || answer.status >= 300) {
        const text = await readCapped(res.body, this.limits.maxErrorBytes, 'maxErrorBytes', answer, where);
        throw this.serviceError(where, answer, text);
      }
      if (reading === 'stream') {
        // the caller's abort must still end the body it reads
        streamed = true;
        return { ...answer, body: res.body };
      }
      const [cap, option] =
        reading === 'xml'
          ? [this.limits.maxAnswerBytes, 'maxAnswerBytes']
          : [this.limits.maxErrorBytes, 'maxErrorBytes'];
      const text = await readCapped(res.body, cap, option, answer, where);
      // S3-compatible gateways answer some failures (CompleteMultipartUpload above all) 2xx with an <Error>
      const requestId = answer.headers['x-oss-request-id'];
      let read = answer;
      if (reading === 'empty') {
        if (looksLikeErrorDocument(text)) throw this.serviceError(where, answer, text);
      } else {
        const doc = parseXmlDocument(text);
        if (!doc)
          throw this.malformed(call.operation, call, 'the answer is not XML', requestId, answer.status);
        if (doc.root === 'Error') throw this.serviceError(where, answer, text);
        read = { ...answer, xml: doc.body };
      }
      const missing = call.incomplete?.(read);
      if (missing !== undefined) {
        throw new OssError({
          status: answer.status,
          code: 'IncompleteAnswer',
          ossMessage: missing,
          requestId,
          ...where,
        });
      }
      return read;
    } catch (e) {
      if (isOssError(e) || call.signal?.aborted) throw e;
      // a request refused before it was written leaves the file stream open
      if (body && 'destroy' in body && typeof body.destroy === 'function') (body.destroy as () => void)();
      if (!deadline.signal.aborted) throw transportError(e, where);
      throw new OssError({
        status: 0,
        code: 'RequestDeadlineExceeded',
        ossMessage: `no complete answer within ${budgetMs} ms (requestTimeoutMs, or the body at minBytesPerSecond)`,
        ...where,
        cause: e,
      });
    } finally {
      // a streamed answer (GetObject) is the caller's from here: the deadline covered its headers
      clearTimeout(timer);
      if (!streamed) call.signal?.removeEventListener('abort', callerAbort);
    }
  }

  /**
   * A Date header is truncated to the second: the server's clock read between it and a second later. Keep the
   * smallest offset within that window, so a server whose clock agrees with ours to the second gives 0, not
   * up to a second of made-up lag (which would date things the server just did as in the future).
   * A time more than MAX_SERVER_OFFSET_MS from ours is ignored: a runner's clock is seldom off by a day,
   * while a proxy or a broken server stamping any Date it likes would otherwise age everything at will. Such a
   * time is remembered as a doubt on every age (serverClockDoubt), not silently replaced by the runner's clock.
   */
  private learnServerTime(serverTime: Date | undefined, resolutionMs = 1000): void {
    if (!serverTime) return;
    const low = serverTime.getTime() - Date.now();
    if (Math.abs(low) > MAX_SERVER_OFFSET_MS) {
      this.serverClockDoubtText ??= `the server's time (${serverTime.toISOString()}) is ${Math.round(Math.abs(low) / 3_600_000)} h ${low < 0 ? 'behind' : 'ahead of'} this machine's clock, more than the ${MAX_SERVER_OFFSET_MS / 3_600_000} h believed, so the age of what it dated is not known`;
      return;
    }
    this.serverOffsetMs = Math.min(Math.max(0, low), low + resolutionMs);
  }

  /** An error answer (or a 2xx holding an <Error>); the x-oss-err header carries it for HEAD. */
  private serviceError(where: Where, res: Answer, body: string): OssError {
    let text = body;
    const encoded = res.headers['x-oss-err'];
    if (!text && encoded) text = Buffer.from(encoded, 'base64').toString('utf8');
    const xml = parseXml(text) ?? {};
    const serverTime = dateOf(str(xml.ServerTime));
    this.learnServerTime(serverTime);
    const redirect =
      res.status >= 300 && res.status < 400
        ? `redirected to ${res.headers.location ?? '(no Location header)'}; not followed, so no credentials go elsewhere`
        : undefined;
    return new OssError({
      status: res.status,
      code: str(xml.Code) ?? statusCode(res.status),
      ossMessage: [str(xml.Message), redirect].filter(Boolean).join('; ') || undefined,
      requestId: str(xml.RequestId) ?? res.headers['x-oss-request-id'],
      ec: str(xml.EC) ?? res.headers['x-oss-ec'],
      hostId: str(xml.HostId),
      ...where,
      serverTime: serverTime ?? httpDate(res.headers.date),
    });
  }
}

/** Refuse, before anything is sent, what the HTTP layer would refuse; credentials are named, never shown. */
function checkHeaders(where: Where, headers: Headers, creds: Credentials): void {
  const problem =
    headerValueProblem('the access key id', creds.accessKeyId) ??
    (creds.securityToken === undefined
      ? undefined
      : headerValueProblem('the security token', creds.securityToken)) ??
    Object.entries(headers)
      .map(([name, value]) => headerNameProblem(name) ?? headerValueProblem(`header ${name}`, value))
      .find((p) => p !== undefined);
  if (problem) throw new OssError({ status: 0, code: 'InvalidHeaderValue', ossMessage: problem, ...where });
}

/** The whole body as text, or AnswerTooLarge once it passes `cap` bytes (the rest is never read). */
async function readCapped(
  body: AnswerBody,
  cap: number,
  option: string,
  answer: Answer,
  where: Where,
): Promise<string> {
  const text = await readAtMost(body as AsyncIterable<Buffer> & { destroy(): unknown }, cap);
  if (text !== undefined) return text;
  throw new OssError({
    status: answer.status,
    code: 'AnswerTooLarge',
    ossMessage: `the answer body passed ${cap} bytes (${option}); no OSS answer is this large`,
    requestId: answer.headers['x-oss-request-id'],
    ...where,
  });
}

const OBJECT_ACLS = ['default', 'private', 'public-read', 'public-read-write'];

/** `x-oss-copy-source`: the bucket and the URL-encoded key. */
function copySource(bucket: string, key: string): string {
  return `/${bucket}/${uriEncode(key, true)}`;
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
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
  const length = headers['content-length'];
  return {
    size: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined,
    etag: headers.etag ?? '',
    crc64: parseCrc64(headers['x-oss-hash-crc64ecma']),
    lastModified: dateOf(headers['last-modified']),
    headers,
  };
}

/** An RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only Date form OSS sends; else undefined. */
function httpDate(text: string | undefined): Date | undefined {
  if (text === undefined || !IMF_FIXDATE.test(text)) return undefined;
  const d = new Date(text);
  // a weekday or day of month that does not fit the date is no date a server's clock produced
  return !Number.isNaN(d.getTime()) && d.toUTCString() === text ? d : undefined;
}

const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** Server time further than this from the runner's is not believed (learnServerTime). */
const MAX_SERVER_OFFSET_MS = 24 * 3_600_000;

const NO_PART_ETAG = 'a 2xx answer without an ETag: the part cannot be named in CompleteMultipartUpload';

/** A copy's ETag: in its XML result, or (some gateways) only in the header. */
function copyEtag(a: { xml: Record<string, unknown>; headers: Headers }): string | undefined {
  return nonEmpty(str(a.xml.ETag)) ?? nonEmpty(a.headers.etag);
}

function dateOf(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
