/**
 * Calls to Alibaba Cloud's RPC-style APIs (CDN, DCDN, ...): a signed form POST answered in JSON, retried on
 * network errors, 5xx and throttling with a fresh nonce and timestamp each time. Refusals become
 * CloudApiErrors carrying the service's Code and RequestId.
 */
import type { Credentials, CredentialsProvider } from './client.ts';
import { NoAnswerError, boundedRequest } from './bounded-http.ts';
import { failureText, isRetryable } from './errors.ts';
import { DEFAULT_RETRY, type RetryPolicy, backoffDelayMs, sleep } from './retry.ts';
import { rpcPercentEncode, signRpcParams } from './rpc-signer.ts';

const BRAND = Symbol.for('oss-resumable-upload.cloud-api-error');

// refusals a later attempt can pass: flow control (documented with HTTP 400 or 503), a busy service, and a
// nonce the gateway saw twice (each attempt is signed anew)
const RETRYABLE_CODES = new Set([
  'Throttling',
  'Throttling.User',
  'Throttling.Api',
  'ServiceUnavailable',
  'InternalError',
  'ServiceBusy',
  'SignatureNonceUsed',
  'QuotaPerMinuteExceeded.Refresh',
  'TooMany.Refresh',
]);
// a per-minute limit is not lifted by a backoff of a few hundred milliseconds
const LONG_WAIT_CODES = new Set(['QuotaPerMinuteExceeded.Refresh']);

export function isRetryableRpc(status: number, code: string): boolean {
  if (status === 0) return isRetryable(0, code);
  return RETRYABLE_CODES.has(code) || code.startsWith('Throttling.') || status === 429 || status >= 500;
}

export interface CloudApiErrorFields {
  /** 0 when no answer came. */
  status: number;
  code: string;
  apiMessage?: string | undefined;
  requestId?: string | undefined;
  action: string;
  /** The service's host, e.g. cdn.aliyuncs.com. */
  host: string;
  cause?: unknown;
}

/** A failed RPC call: the service's refusal or no answer at all. Holds no credentials. */
export class CloudApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly apiMessage: string | undefined;
  readonly requestId: string | undefined;
  readonly action: string;
  readonly host: string;
  readonly retryable: boolean;
  readonly [BRAND] = true;

  constructor(f: CloudApiErrorFields) {
    super(
      failureText(f.code, f.status, `${f.action} at ${f.host}`, f.apiMessage, [
        f.requestId ? `RequestId ${f.requestId}` : undefined,
      ]),
      f.cause === undefined ? undefined : { cause: f.cause },
    );
    this.name = 'CloudApiError';
    this.status = f.status;
    this.code = f.code;
    this.apiMessage = f.apiMessage;
    this.requestId = f.requestId;
    this.action = f.action;
    this.host = f.host;
    this.retryable = isRetryableRpc(f.status, f.code);
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      status: this.status,
      code: this.code,
      requestId: this.requestId,
      action: this.action,
      host: this.host,
      retryable: this.retryable,
    };
  }
}

/** Works across bundled copies, where `instanceof` would not. */
export function isCloudApiError(e: unknown): e is CloudApiError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

export interface RpcCall {
  /** `https://cdn.aliyuncs.com`; a bare host means https. */
  endpoint: string;
  action: string;
  version: string;
  params: Record<string, string>;
  credentials: Credentials | CredentialsProvider;
  retry?: Partial<RetryPolicy> | undefined;
  /** Per attempt. @default 30 s */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  onRetry?:
    ((info: { action: string; attempt: number; delayMs: number; error: CloudApiError }) => void) | undefined;
}

export interface RpcAnswer {
  RequestId?: string;
  [field: string]: unknown;
}

const MAX_ANSWER_BYTES = 1024 * 1024;

export function rpcEndpoint(endpoint: string): URL {
  const text = endpoint.trim();
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    throw new Error(`endpoint: "${endpoint}" is not a URL or host; give e.g. https://cdn.aliyuncs.com`);
  }
  if (
    (url.protocol !== 'https:' && url.protocol !== 'http:') ||
    url.search ||
    url.hash ||
    url.pathname !== '/'
  )
    throw new Error(`endpoint: "${endpoint}" must be http(s)://host[:port] with no path, query or fragment`);
  return url;
}

export async function callRpc(c: RpcCall): Promise<RpcAnswer> {
  const url = rpcEndpoint(c.endpoint);
  const policy = { ...DEFAULT_RETRY, ...c.retry };
  for (let attempt = 1; ; attempt++) {
    c.signal?.throwIfAborted();
    try {
      return await callOnce(c, url);
    } catch (e) {
      if (c.signal?.aborted) throw c.signal.reason;
      if (!isCloudApiError(e) || !e.retryable || attempt >= policy.maxAttempts) throw e;
      const delayMs = LONG_WAIT_CODES.has(e.code) ? policy.maxDelayMs : backoffDelayMs(policy, attempt);
      c.onRetry?.({ action: c.action, attempt, delayMs, error: e });
      await sleep(delayMs, c.signal);
    }
  }
}

async function callOnce(c: RpcCall, url: URL): Promise<RpcAnswer> {
  const creds = typeof c.credentials === 'function' ? await c.credentials() : c.credentials;
  const form = signRpcParams({
    method: 'POST',
    action: c.action,
    version: c.version,
    params: c.params,
    credentials: creds,
  });
  const fail = (status: number, code: string, message?: string, requestId?: string, cause?: unknown) =>
    new CloudApiError({
      status,
      code,
      apiMessage: redact(message, creds),
      requestId,
      action: c.action,
      host: url.host,
      cause,
    });
  let answer;
  try {
    answer = await boundedRequest(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
      timeoutMs: c.timeoutMs ?? 30_000,
      maxBytes: MAX_ANSWER_BYTES,
      signal: c.signal,
    });
  } catch (e) {
    if (e instanceof NoAnswerError) throw fail(0, e.code, e.message, undefined, e);
    throw e;
  }
  const { status, text } = answer;
  let body: RpcAnswer & { Code?: unknown; Message?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
    if (typeof body !== 'object' || body === null) throw new Error('not an object');
  } catch {
    throw fail(status, status >= 500 ? 'InternalError' : `Http${status}`, `not JSON: ${text.slice(0, 200)}`);
  }
  const requestId = typeof body.RequestId === 'string' ? body.RequestId : undefined;
  if (status < 200 || status >= 300) {
    const code = typeof body.Code === 'string' && body.Code ? body.Code : `Http${status}`;
    throw fail(status, code, typeof body.Message === 'string' ? body.Message : undefined, requestId);
  }
  return body;
}

/**
 * A SignatureDoesNotMatch message quotes the service's string to sign, security token included: keep
 * credentials out of messages that reach logs.
 */
function redact(message: string | undefined, creds: Credentials): string | undefined {
  if (!message) return message;
  let text = message;
  for (const secret of [creds.securityToken, creds.accessKeySecret]) {
    if (!secret) continue;
    text = text.split(secret).join('***');
    // the quoted string to sign holds them percent-encoded, twice
    text = text.split(rpcPercentEncode(secret)).join('***');
    text = text.split(rpcPercentEncode(rpcPercentEncode(secret))).join('***');
  }
  return text;
}
