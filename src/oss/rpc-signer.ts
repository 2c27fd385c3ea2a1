/**
 * Alibaba Cloud's RPC-style request signature (SignatureVersion 1.0, HMAC-SHA1), used by CDN, DCDN and the
 * other POP APIs. Every parameter, common and action-specific, is signed: sorted by key, each key and value
 * percent-encoded per RFC 3986, joined with `&`, then `METHOD&%2F&` + the whole string encoded once more;
 * the key is the AccessKey secret followed by `&`. See "Signature mechanism" for RPC APIs:
 * https://www.alibabacloud.com/help/doc-detail/127287.htm
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { Credentials } from './client.ts';

export type RpcMethod = 'GET' | 'POST';

/** RFC 3986: everything but `A-Z a-z 0-9 - _ . ~` as %XX of its UTF-8 bytes (encodeURIComponent keeps `!'()*`). */
export function rpcPercentEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Keys compared by UTF-16 code unit: byte order for the ASCII names every API uses. */
function canonicalQuery(params: Record<string, string>): string {
  return Object.keys(params)
    .sort()
    .map((k) => `${rpcPercentEncode(k)}=${rpcPercentEncode(params[k]!)}`)
    .join('&');
}

export function rpcStringToSign(method: RpcMethod, params: Record<string, string>): string {
  return `${method}&${rpcPercentEncode('/')}&${rpcPercentEncode(canonicalQuery(params))}`;
}

export function rpcSignature(secret: string, method: RpcMethod, params: Record<string, string>): string {
  return createHmac('sha1', `${secret}&`).update(rpcStringToSign(method, params), 'utf8').digest('base64');
}

/** ISO 8601 in UTC to the second, the only form the services accept. */
export function rpcTimestamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const COMMON = [
  'Action',
  'Version',
  'Format',
  'AccessKeyId',
  'SignatureMethod',
  'SignatureVersion',
  'SignatureNonce',
  'Timestamp',
  'SecurityToken',
  'Signature',
] as const;

export interface SignRpcRequest {
  method: RpcMethod;
  action: string;
  version: string;
  /** The action's own parameters. */
  params: Record<string, string>;
  credentials: Credentials;
  /** @default now */
  now?: Date | undefined;
  /** Must differ on every request, retries included (the service refuses a reused one). @default a UUID */
  nonce?: string | undefined;
}

/** All parameters of the request, common ones included, with `Signature` last. */
export function signRpcParams(r: SignRpcRequest): Record<string, string> {
  for (const name of COMMON) {
    if (name in r.params)
      throw new Error(`RPC parameter ${name}: it is a common parameter, set by the signer; leave it out`);
  }
  const all: Record<string, string> = {
    Action: r.action,
    Version: r.version,
    Format: 'JSON',
    AccessKeyId: r.credentials.accessKeyId,
    SignatureMethod: 'HMAC-SHA1',
    SignatureVersion: '1.0',
    SignatureNonce: r.nonce ?? randomUUID(),
    Timestamp: rpcTimestamp(r.now ?? new Date()),
    ...(r.credentials.securityToken ? { SecurityToken: r.credentials.securityToken } : {}),
    ...r.params,
  };
  return { ...all, Signature: rpcSignature(r.credentials.accessKeySecret, r.method, all) };
}
