/**
 * A stand-in for Alibaba Cloud CDN and DCDN cache refresh (RefreshObjectCaches 2018-05-10,
 * RefreshDcdnObjectCaches 2018-01-15, and their quota queries), on real HTTP. It checks what the real
 * gateway checks: the RPC signature (computed here by its own code, not the client's signer, so that a
 * shared bug cannot pass both), the 15-minute timestamp window, nonces never reused, the security token of
 * temporary credentials; then the per-request limits and a daily quota. Answers are the documented JSON,
 * refusals `{ Code, Message, RequestId }`. Switches let a test force throttling or server errors.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { ServerCredential } from './auth.ts';
import { closeServer, collectBody, listen, sendJson } from './http.ts';

const ACTIONS: Record<string, { version: string; kind: 'refresh' | 'quota' }> = {
  RefreshObjectCaches: { version: '2018-05-10', kind: 'refresh' },
  DescribeRefreshQuota: { version: '2018-05-10', kind: 'quota' },
  RefreshDcdnObjectCaches: { version: '2018-01-15', kind: 'refresh' },
  DescribeDcdnRefreshQuota: { version: '2018-01-15', kind: 'quota' },
};

export interface CdnRecord {
  action: string | undefined;
  status: number;
  code?: string;
  /** The form as received, Signature included. */
  params: Record<string, string>;
  /** ObjectPath split into its URLs. */
  urls: string[];
}

export interface CdnStandInOptions {
  /** @default test-ak / test-sk */
  credentials?: ServerCredential[] | undefined;
  /** URLs per account per day. @default 10,000 */
  dailyUrlQuota?: number | undefined;
  /** Directories per account per day. @default 100 */
  dailyDirQuota?: number | undefined;
  /** Domains per request. @default 1 (DCDN's rule; CDN documents up to 10) */
  maxDomainsPerRequest?: number | undefined;
}

export interface CdnStandIn {
  readonly url: string;
  readonly requests: CdnRecord[];
  /** URLs and directories accepted today. */
  readonly used: { urls: number; dirs: number };
  addCredential(c: ServerCredential): void;
  /** The next `n` requests are refused with this throttling code. @default Throttling.User, HTTP 400 */
  throttleNext(n: number, code?: string, status?: number): void;
  /** The next `n` requests get this status (5xx) with Code ServiceUnavailable or InternalError. */
  failNext(n: number, status: number): void;
  close(): Promise<void>;
}

// RFC 3986 unreserved bytes pass; every other byte becomes %XX (upper case)
function encode(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(b);
    out += /[A-Za-z0-9\-_.~]/.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function expectedSignature(secret: string, method: string, params: Record<string, string>): string {
  const pairs = Object.entries(params)
    .filter(([k]) => k !== 'Signature')
    .map(([k, v]) => [encode(k), encode(v)] as const)
    .sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
  const canonical = pairs.map(([k, v]) => `${k}=${v}`).join('&');
  const stringToSign = [method, encode('/'), encode(canonical)].join('&');
  return createHmac('sha1', Buffer.from(`${secret}&`, 'utf8'))
    .update(Buffer.from(stringToSign, 'utf8'))
    .digest('base64');
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const WINDOW_MS = 15 * 60_000;

export async function startCdnStandIn(o: CdnStandInOptions = {}): Promise<CdnStandIn> {
  const credentials = [...(o.credentials ?? [{ accessKeyId: 'test-ak', accessKeySecret: 'test-sk' }])];
  const requests: CdnRecord[] = [];
  const used = { urls: 0, dirs: 0 };
  const nonces = new Set<string>();
  const urlQuota = o.dailyUrlQuota ?? 10_000;
  const dirQuota = o.dailyDirQuota ?? 100;
  const maxDomains = o.maxDomainsPerRequest ?? 1;
  let day = new Date().toISOString().slice(0, 10);
  let throttle = { n: 0, code: 'Throttling.User', status: 400 };
  let failing = { n: 0, status: 503 };
  let taskId = 9_000_000;

  const server = createServer((req, res) => {
    void (async () => {
      const body = await collectBody(req, 2 * 1024 * 1024);
      const params = Object.fromEntries(new URLSearchParams(body?.toString('utf8') ?? ''));
      const record: CdnRecord = { action: params.Action, status: 0, params, urls: [] };
      requests.push(record);
      const requestId = randomBytes(16).toString('hex').toUpperCase();
      const send = (status: number, payload: Record<string, unknown>): void => {
        record.status = status;
        sendJson(res, status, { ...payload, RequestId: requestId });
      };
      const refuse = (status: number, code: string, message: string): void => {
        record.code = code;
        send(status, { Code: code, Message: message, HostId: req.headers.host ?? 'cdn.aliyuncs.com' });
      };
      if (!body) return refuse(400, 'InvalidParameter', 'the request body is too large');
      if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://cdn').pathname !== '/')
        return refuse(400, 'UnsupportedHTTPMethod', 'POST / with a form is expected');
      if (!req.headers['content-type']?.startsWith('application/x-www-form-urlencoded'))
        return refuse(400, 'InvalidParameter', 'the parameters come as a form');

      // the gateway's checks, in its order: parameters, time, identity, signature, nonce
      for (const name of [
        'Action',
        'Version',
        'AccessKeyId',
        'Signature',
        'SignatureMethod',
        'SignatureVersion',
        'SignatureNonce',
        'Timestamp',
      ]) {
        if (!params[name]) return refuse(400, `Missing${name}`, `${name} is mandatory for this action.`);
      }
      const api = ACTIONS[params.Action!];
      if (!api) return refuse(404, 'InvalidApi.NotFound', `Specified api ${params.Action} is not found.`);
      if (params.Version !== api.version)
        return refuse(400, 'InvalidVersion', `bad Version ${params.Version}`);
      if (params.Format !== undefined && params.Format !== 'JSON' && params.Format !== 'XML')
        return refuse(400, 'InvalidParameter.Format', 'Specified parameter format is not valid.');
      if (params.SignatureMethod !== 'HMAC-SHA1')
        return refuse(400, 'InvalidSignatureMethod', 'Specified signature method is not valid.');
      if (params.SignatureVersion !== '1.0')
        return refuse(400, 'InvalidSignatureVersion', 'Specified signature version is not valid.');
      if (!TIMESTAMP.test(params.Timestamp!) || Number.isNaN(Date.parse(params.Timestamp!)))
        return refuse(
          400,
          'InvalidTimeStamp.Format',
          'Specified time stamp or date value is not well formatted.',
        );
      if (Math.abs(Date.parse(params.Timestamp!) - Date.now()) > WINDOW_MS)
        return refuse(400, 'InvalidTimeStamp.Expired', 'Specified time stamp or date value is expired.');
      const credential = credentials.find((c) => c.accessKeyId === params.AccessKeyId);
      if (!credential)
        return refuse(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.');
      if (credential.securityToken !== undefined) {
        if (params.SecurityToken === undefined)
          return refuse(400, 'MissingSecurityToken', 'SecurityToken is mandatory for this access key.');
        if (params.SecurityToken !== credential.securityToken)
          return refuse(
            400,
            'InvalidSecurityToken.Mismatch',
            'Specified SecurityToken mismatch with the AccessKey.',
          );
        if (credential.expiration && credential.expiration.getTime() <= Date.now())
          return refuse(400, 'InvalidSecurityToken.Expired', 'Specified SecurityToken is expired.');
      }
      const expected = expectedSignature(credential.accessKeySecret, 'POST', params);
      const given = Buffer.from(params.Signature!);
      if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected)))
        return refuse(
          400,
          'SignatureDoesNotMatch',
          'Specified signature is not matched with our calculation.',
        );
      if (nonces.has(params.SignatureNonce!))
        return refuse(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.');
      nonces.add(params.SignatureNonce!);

      if (throttle.n > 0) {
        throttle.n--;
        return refuse(throttle.status, throttle.code, 'Request was denied due to user flow control.');
      }
      if (failing.n > 0) {
        failing.n--;
        return refuse(
          failing.status,
          failing.status === 503 ? 'ServiceUnavailable' : 'InternalError',
          'The request has failed due to a temporary failure of the server.',
        );
      }

      const today = new Date().toISOString().slice(0, 10);
      if (today !== day) {
        day = today;
        used.urls = 0;
        used.dirs = 0;
      }
      if (api.kind === 'quota') {
        return send(200, {
          UrlQuota: String(urlQuota),
          UrlRemain: String(urlQuota - used.urls),
          DirQuota: String(dirQuota),
          DirRemain: String(dirQuota - used.dirs),
          PreloadQuota: '500',
          PreloadRemain: '500',
          BlockQuota: '100',
          BlockRemain: '100',
        });
      }

      const type = params.ObjectType ?? 'File';
      if (type !== 'File' && type !== 'Directory')
        return refuse(400, 'InvalidObjectType.Malformed', 'The specified ObjectType is invalid.');
      if (!params.ObjectPath)
        return refuse(400, 'MissingObjectPath', 'ObjectPath is mandatory for this action.');
      const urls = params.ObjectPath.split(/\r?\n/).filter((u) => u.trim() !== '');
      record.urls = urls;
      const limit = type === 'File' ? 1000 : 100;
      if (urls.length > limit)
        return refuse(
          400,
          'SingleRequest.OverLimit',
          `A maximum of ${limit} entries are supported for each request.`,
        );
      const domains = new Set<string>();
      for (const u of urls) {
        let parsed: URL;
        try {
          parsed = new URL(u);
        } catch {
          return refuse(400, 'InvalidObjectPath.Malformed', `The specified ObjectPath is invalid: ${u}`);
        }
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
          return refuse(400, 'InvalidObjectPath.Malformed', `The specified ObjectPath is invalid: ${u}`);
        domains.add(parsed.hostname);
      }
      if (domains.size > maxDomains)
        return refuse(
          400,
          'InvalidObjectPath.Malformed',
          `The URLs span ${domains.size} domains; at most ${maxDomains}.`,
        );
      const left = type === 'File' ? urlQuota - used.urls : dirQuota - used.dirs;
      if (urls.length > left)
        return refuse(400, 'QuotaExceeded.Refresh', 'Your refresh attempts have exceeded the daily limit.');
      if (type === 'File') used.urls += urls.length;
      else used.dirs += urls.length;
      send(200, { RefreshTaskId: String(++taskId) });
    })().catch(() => res.destroy());
  });
  return {
    url: `http://127.0.0.1:${await listen(server)}`,
    requests,
    used,
    addCredential: (c) => void credentials.push(c),
    throttleNext: (n, code = 'Throttling.User', status = 400) => {
      throttle = { n, code, status };
    },
    failNext: (n, status) => {
      failing = { n, status };
    },
    close: () => closeServer(server),
  };
}
