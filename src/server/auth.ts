/**
 * Signature verification for the test server. Written apart from src/oss/signer-*.ts on purpose: a bug
 * shared by signer and verifier would sign and verify the same wrong way and every test would pass. Both
 * are pinned to the official vectors instead.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface ServerCredential {
  accessKeyId: string;
  accessKeySecret: string;
  /** Temporary (STS) credentials: every request must carry this x-oss-security-token. */
  securityToken?: string;
  /** Temporary credentials stop working at this time. */
  expiration?: Date;
}

/** What the verifier needs from a request, as received. */
export interface ReceivedRequest {
  method: string;
  bucket: string | undefined;
  key: string | undefined;
  /** Decoded query pairs in arrival order; a key without `=` has value null. */
  query: Array<[string, string | null]>;
  /** Lower-case names. */
  headers: Record<string, string>;
}

export type AuthResult =
  | { ok: true; credential: ServerCredential; date: Date }
  | { ok: false; status: number; code: string; message: string; date?: Date };

// RFC 3986 percent-encoding of every byte outside the unreserved set
function pct(text: string, slash: boolean): string {
  return Array.from(Buffer.from(text, 'utf8'))
    .map((b) => {
      const unreserved =
        (b >= 0x30 && b <= 0x39) ||
        (b >= 0x41 && b <= 0x5a) ||
        (b >= 0x61 && b <= 0x7a) ||
        b === 0x2d ||
        b === 0x2e ||
        b === 0x5f ||
        b === 0x7e;
      if (unreserved || (slash && b === 0x2f)) return String.fromCharCode(b);
      return `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
    })
    .join('');
}

function byCodePoint(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

/** The V4 canonical request for what arrived; `extra` lists AdditionalHeaders (lower-case). */
export function canonicalRequestV4(r: ReceivedRequest, extra: string[]): string {
  const uri =
    r.bucket === undefined ? '/' : `/${pct(r.bucket, false)}/${r.key === undefined ? '' : pct(r.key, true)}`;
  const query = r.query
    .map(([k, v]) => (v === null || v === '' ? pct(k, false) : `${pct(k, false)}=${pct(v, false)}`))
    .sort((a, b) => byCodePoint(a.split('=')[0]!, b.split('=')[0]!))
    .join('&');
  const signed = Object.keys(r.headers)
    .filter((h) => h.startsWith('x-oss-') || h === 'content-type' || h === 'content-md5' || extra.includes(h))
    .sort(byCodePoint);
  const headerBlock = signed.map((h) => `${h}:${r.headers[h]!.trim()}\n`).join('');
  return `${r.method}\n${uri}\n${query}\n${headerBlock}\n${extra.join(';')}\nUNSIGNED-PAYLOAD`;
}

export function signatureV4(secret: string, day: string, region: string, stringToSign: string): string {
  const chain = [day, region, 'oss', 'aliyun_v4_request'].reduce<Buffer | string>(
    (key, part) => createHmac('sha256', key).update(part).digest(),
    `aliyun_v4${secret}`,
  );
  return createHmac('sha256', chain).update(stringToSign).digest('hex');
}

// the V1 canonical resource includes these query keys only
const V1_SUBRESOURCES = [
  'acl',
  'append',
  'bucketInfo',
  'cname',
  'comp',
  'cors',
  'delete',
  'lifecycle',
  'location',
  'logging',
  'objectMeta',
  'partNumber',
  'policy',
  'position',
  'referer',
  'restore',
  'security-token',
  'sequential',
  'stat',
  'symlink',
  'tagging',
  'uploadId',
  'uploads',
  'versionId',
  'versioning',
  'versions',
  'website',
  'x-oss-process',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'response-content-language',
  'response-content-type',
  'response-expires',
];

export function stringToSignV1(r: ReceivedRequest, dateLine = r.headers.date ?? ''): string {
  const oss = Object.keys(r.headers)
    .filter((h) => h.startsWith('x-oss-'))
    .sort(byCodePoint)
    .map((h) => `${h}:${r.headers[h]!.trim()}\n`)
    .join('');
  const sub = r.query
    .filter(([k]) => V1_SUBRESOURCES.includes(k))
    .sort(([a], [b]) => byCodePoint(a, b))
    .map(([k, v]) => (v === null || v === '' ? k : `${k}=${v}`));
  const resource =
    (r.bucket === undefined ? '/' : `/${r.bucket}/${r.key ?? ''}`) + (sub.length ? `?${sub.join('&')}` : '');
  const h = (name: string): string => r.headers[name] ?? '';
  return `${r.method}\n${h('content-md5')}\n${h('content-type')}\n${dateLine}\n${oss}${resource}`;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const denied = (code: string, message: string, status = 403): AuthResult => ({
  ok: false,
  status,
  code,
  message,
});

/** Check the Authorization of `r` against `credentials`. */
export function verifyRequest(r: ReceivedRequest, credentials: readonly ServerCredential[]): AuthResult {
  const auth = r.headers.authorization;
  if (!auth)
    return denied('AccessDenied', 'You have no right to access this object: the request is not signed.');
  if (auth.startsWith('OSS4-HMAC-SHA256 ')) {
    const fields = new Map(
      auth
        .slice(17)
        .split(',')
        .map((f) => f.trim().split('=') as [string, string]),
    );
    const [ak = '', day = '', region = '', service, terminator] = (fields.get('Credential') ?? '').split('/');
    const signature = fields.get('Signature') ?? '';
    const extra = (fields.get('AdditionalHeaders') ?? '')
      .split(';')
      .filter(Boolean)
      .map((h) => h.toLowerCase());
    const timestamp = r.headers['x-oss-date'] ?? '';
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(timestamp);
    if (!m || service !== 'oss' || terminator !== 'aliyun_v4_request' || !day) {
      return denied('InvalidArgument', 'Authorization header or x-oss-date is malformed.', 400);
    }
    const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
    const cred = credentials.find((c) => c.accessKeyId === ak);
    if (!cred)
      return {
        ...denied('InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.'),
        date,
      };
    const canonical = canonicalRequestV4(r, extra);
    const sts = `OSS4-HMAC-SHA256\n${timestamp}\n${day}/${region}/oss/aliyun_v4_request\n${createHash('sha256').update(canonical).digest('hex')}`;
    if (!same(signatureV4(cred.accessKeySecret, day, region, sts), signature)) {
      return {
        ...denied(
          'SignatureDoesNotMatch',
          'The request signature we calculated does not match the signature you provided.',
        ),
        date,
      };
    }
    return { ok: true, credential: cred, date };
  }
  const v1 = /^OSS ([^:]+):(.+)$/.exec(auth);
  if (!v1) return denied('InvalidArgument', 'Authorization header is malformed.', 400);
  const date = new Date(r.headers['x-oss-date'] ?? r.headers.date ?? '');
  const cred = credentials.find((c) => c.accessKeyId === v1[1]);
  if (!cred)
    return denied('InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.');
  // clients put the Date header or, when they send one, x-oss-date on the date line; both are accepted
  const lines = [r.headers.date, r.headers['x-oss-date']].filter((d): d is string => d !== undefined);
  const matches = lines.some((line) =>
    same(createHmac('sha1', cred.accessKeySecret).update(stringToSignV1(r, line)).digest('base64'), v1[2]!),
  );
  if (!matches) {
    return {
      ...denied(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided.',
      ),
      date,
    };
  }
  return { ok: true, credential: cred, date };
}
