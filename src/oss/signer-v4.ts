/**
 * OSS Signature V4 (`OSS4-HMAC-SHA256`): canonical request, string to sign, signing key, Authorization.
 * Pure functions of the request, the credentials and the time, pinned to the official vectors in tests.
 */
import { type KeyObject, createHash, createHmac, createSecretKey } from 'node:crypto';
import { uriEncode } from './uri.ts';

export interface SignableRequest {
  method: string;
  bucket?: string | undefined;
  key?: string | undefined;
  /** Query parameters; `null` marks a key written alone (e.g. `uploads`). */
  query: Record<string, string | null>;
  /** Header names in any case. */
  headers: Record<string, string>;
}

export interface SigningCredentials {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string | undefined;
}

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/** `yyyymmddTHHMMSSZ` */
export function v4Timestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

function canonicalUri(bucket: string | undefined, key: string | undefined): string {
  if (!bucket) return '/';
  return `/${uriEncode(bucket)}/${key ? uriEncode(key, true) : ''}`;
}

function canonicalQuery(query: Record<string, string | null>): string {
  return Object.entries(query)
    .map(([k, v]) => [uriEncode(k), v === null || v === '' ? null : uriEncode(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => (v === null ? k : `${k}=${v}`))
    .join('&');
}

function isSignedByDefault(name: string): boolean {
  return name.startsWith('x-oss-') || name === 'content-type' || name === 'content-md5';
}

/** The canonical request of the reference's V4 section. */
export function v4CanonicalRequest(req: SignableRequest, additionalHeaders: readonly string[] = []): string {
  const additional = [...new Set(additionalHeaders.map((h) => h.toLowerCase()))].sort();
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(req.headers)) {
    const lower = name.toLowerCase();
    if (isSignedByDefault(lower) || additional.includes(lower)) headers.set(lower, value.trim());
  }
  const canonicalHeaders = [...headers.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}:${v}\n`)
    .join('');
  return [
    req.method.toUpperCase(),
    canonicalUri(req.bucket, req.key),
    canonicalQuery(req.query),
    canonicalHeaders,
    additional.join(';'),
    UNSIGNED_PAYLOAD,
  ].join('\n');
}

/**
 * Sign `req` in place: sets `x-oss-date`, `x-oss-content-sha256`, the security token when there is one, and
 * `Authorization`. Returns the Authorization value.
 */
export function signV4(
  req: SignableRequest,
  credentials: SigningCredentials,
  region: string,
  date: Date,
  additionalHeaders: readonly string[] = [],
): string {
  const timestamp = v4Timestamp(date);
  const day = timestamp.slice(0, 8);
  req.headers['x-oss-date'] = timestamp;
  req.headers['x-oss-content-sha256'] = UNSIGNED_PAYLOAD;
  if (credentials.securityToken) req.headers['x-oss-security-token'] = credentials.securityToken;
  const additional = [...new Set(additionalHeaders.map((h) => h.toLowerCase()))]
    .filter((h) => !isSignedByDefault(h))
    .sort();
  const scope = `${day}/${region}/oss/aliyun_v4_request`;
  const stringToSign = [
    'OSS4-HMAC-SHA256',
    timestamp,
    scope,
    createHash('sha256').update(v4CanonicalRequest(req, additional)).digest('hex'),
  ].join('\n');
  const signature = createHmac('sha256', signingKey(credentials.accessKeySecret, day, region))
    .update(stringToSign)
    .digest('hex');
  const extra = additional.length > 0 ? `,AdditionalHeaders=${additional.join(';')}` : '';
  const authorization = `OSS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}${extra},Signature=${signature}`;
  req.headers.authorization = authorization;
  return authorization;
}

/**
 * The last derived key: it changes once a day per secret and region, and deriving it costs four HMACs. Kept as a
 * KeyObject: an HMAC keyed by raw bytes imports them again each time, some 10 µs of every request's signing.
 */
let lastKey: { secret: string; day: string; region: string; key: KeyObject } | undefined;

function signingKey(secret: string, day: string, region: string): KeyObject {
  if (lastKey?.secret === secret && lastKey.day === day && lastKey.region === region) return lastKey.key;
  let key: Buffer = createHmac('sha256', `aliyun_v4${secret}`).update(day).digest();
  for (const part of [region, 'oss', 'aliyun_v4_request'])
    key = createHmac('sha256', key).update(part).digest();
  lastKey = { secret, day, region, key: createSecretKey(key) };
  return lastKey.key;
}
