/** OSS Signature V1 (`OSS ak:signature`, HMAC-SHA1), pinned to the official vectors in tests. */
import { type KeyObject, createHmac, createSecretKey } from 'node:crypto';
import type { SignableRequest, SigningCredentials } from './signer-v4.ts';

// the query keys that are part of the V1 canonical resource (Alibaba's sub-resource list)
const SUB_RESOURCES = new Set([
  'acl',
  'append',
  'bucketInfo',
  'cname',
  'comp',
  'cors',
  'delete',
  'encryption',
  'endTime',
  'img',
  'inventory',
  'lifecycle',
  'live',
  'location',
  'logging',
  'objectMeta',
  'partNumber',
  'policy',
  'position',
  'qos',
  'referer',
  'replication',
  'replicationLocation',
  'replicationProgress',
  'requestPayment',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'response-content-language',
  'response-content-type',
  'response-expires',
  'restore',
  'security-token',
  'sequential',
  'startTime',
  'stat',
  'status',
  'style',
  'styleName',
  'symlink',
  'tagging',
  'torrent',
  'uploadId',
  'uploads',
  'versionId',
  'versioning',
  'versions',
  'vod',
  'website',
  'x-oss-process',
  'worm',
  'wormId',
  'wormExtend',
]);

function header(headers: Record<string, string>, name: string): string {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return '';
}

/** The V1 string to sign (exported so tests can compare it with the reference text). */
export function v1StringToSign(req: SignableRequest): string {
  const ossHeaders = Object.entries(req.headers)
    .map(([k, v]) => [k.toLowerCase(), v.trim()] as const)
    .filter(([k]) => k.startsWith('x-oss-'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}:${v}\n`)
    .join('');
  let resource = req.bucket ? `/${req.bucket}/${req.key ?? ''}` : '/';
  const sub = Object.entries(req.query)
    .filter(([k]) => SUB_RESOURCES.has(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => (v === null || v === '' ? k : `${k}=${v}`));
  if (sub.length > 0) resource += `?${sub.join('&')}`;
  return [
    req.method.toUpperCase(),
    header(req.headers, 'content-md5'),
    header(req.headers, 'content-type'),
    header(req.headers, 'date'),
    `${ossHeaders}${resource}`,
  ].join('\n');
}

/** The last secret, imported once (see signer-v4.ts, signingKey). */
let lastKey: { secret: string; key: KeyObject } | undefined;

/** HMAC-SHA1 of a string to sign, base64. */
export function v1Signature(secret: string, stringToSign: string): string {
  if (lastKey?.secret !== secret) lastKey = { secret, key: createSecretKey(secret, 'utf8') };
  return createHmac('sha1', lastKey.key).update(stringToSign, 'utf8').digest('base64');
}

/** Sign `req` in place: sets `Date`, the security token when there is one, and `Authorization`. */
export function signV1(req: SignableRequest, credentials: SigningCredentials, date: Date): string {
  req.headers.date = date.toUTCString();
  if (credentials.securityToken) req.headers['x-oss-security-token'] = credentials.securityToken;
  const authorization = `OSS ${credentials.accessKeyId}:${v1Signature(credentials.accessKeySecret, v1StringToSign(req))}`;
  req.headers.authorization = authorization;
  return authorization;
}
