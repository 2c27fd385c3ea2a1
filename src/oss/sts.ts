/**
 * Alibaba Cloud STS AssumeRoleWithOIDC: an OIDC token from an identity provider becomes temporary credentials
 * for a RAM role. The call is anonymous (the token is the proof), an RPC-style POST answered in JSON.
 */
import { boundedRequest } from './bounded-http.ts';
import type { Credentials } from './client.ts';
import { OssError, isOssError, transportError } from './errors.ts';
import { DEFAULT_RETRY, type RetryPolicy, backoffDelayMs, sleep } from './retry.ts';
import { onLocalClock } from './server-clock.ts';

export const DEFAULT_STS_ENDPOINT = 'https://sts.aliyuncs.com';
export const MIN_ROLE_DURATION_SECONDS = 900;
export const MAX_ROLE_DURATION_SECONDS = 43_200;
/** STS: 2-64 characters of letters, digits and `.@-_`. */
export const ROLE_SESSION_NAME = /^[\w.@-]{2,64}$/;
/** The whole exchange, connect to last byte. */
const STS_TIMEOUT_MS = 30_000;
const STS_MAX_ANSWER_BYTES = 1024 * 1024;

export interface AssumeRoleWithOidcRequest {
  /** `https://sts.aliyuncs.com` or a regional / VPC STS endpoint; a bare host means https. */
  endpoint?: string | undefined;
  roleArn: string;
  oidcProviderArn: string;
  oidcToken: string;
  roleSessionName: string;
  durationSeconds?: number | undefined;
  /** A policy that narrows the role's permissions for this session. */
  policy?: string | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  /** Each attempt, connect to last byte. @default 30000 */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

interface StsAnswer {
  RequestId?: string;
  Code?: string;
  Message?: string;
  HostId?: string;
  Credentials?: {
    AccessKeyId?: string;
    AccessKeySecret?: string;
    SecurityToken?: string;
    Expiration?: string;
  };
}

export function stsUrl(endpoint: string | undefined): URL {
  const text = endpoint?.trim() || DEFAULT_STS_ENDPOINT;
  return new URL(/^https?:\/\//i.test(text) ? text : `https://${text}`);
}

/** Exchange the OIDC token for temporary credentials, retrying network errors, throttling and 5xx. */
export async function assumeRoleWithOidc(r: AssumeRoleWithOidcRequest): Promise<Credentials> {
  const policy = { ...DEFAULT_RETRY, maxAttempts: 4, ...r.retry };
  for (let attempt = 1; ; attempt++) {
    r.signal?.throwIfAborted();
    try {
      return await assumeOnce(r);
    } catch (e) {
      if (r.signal?.aborted) throw r.signal.reason;
      if (!isOssError(e) || !e.retryable || attempt >= policy.maxAttempts) throw e;
      await sleep(backoffDelayMs(policy, attempt), r.signal);
    }
  }
}

async function assumeOnce(r: AssumeRoleWithOidcRequest): Promise<Credentials> {
  const url = stsUrl(r.endpoint);
  url.search = new URLSearchParams({
    Action: 'AssumeRoleWithOIDC',
    Version: '2015-04-01',
    Format: 'JSON',
    Timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  }).toString();
  const form = new URLSearchParams({
    RoleArn: r.roleArn,
    OIDCProviderArn: r.oidcProviderArn,
    OIDCToken: r.oidcToken,
    RoleSessionName: r.roleSessionName,
    DurationSeconds: String(r.durationSeconds ?? 3600),
    ...(r.policy ? { Policy: r.policy } : {}),
  });
  const fail = (status: number, code: string, message: string, requestId?: string) =>
    new OssError({ status, code, ossMessage: message, requestId, operation: 'AssumeRoleWithOIDC' });
  let status: number;
  let text: string;
  let serverDate: string | string[] | undefined;
  let receivedAt: number;
  try {
    // an STS answer is a few KiB: one deadline and one cap, so a trickling or flooding peer cannot hold sign-in
    const res = await boundedRequest(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      timeoutMs: r.timeoutMs ?? STS_TIMEOUT_MS,
      maxBytes: STS_MAX_ANSWER_BYTES,
      signal: r.signal,
    });
    ({ status, text, receivedAt } = res);
    serverDate = res.headers.date;
  } catch (e) {
    if (r.signal?.aborted) throw r.signal.reason;
    throw transportError(e, { operation: 'AssumeRoleWithOIDC' });
  }
  let answer: StsAnswer;
  try {
    answer = JSON.parse(text) as StsAnswer;
  } catch {
    throw fail(status, status >= 500 ? 'InternalError' : `Http${status}`, `not JSON: ${text.slice(0, 200)}`);
  }
  if (status < 200 || status >= 300) {
    throw fail(status, answer.Code ?? `Http${status}`, answer.Message ?? '', answer.RequestId);
  }
  const c = answer.Credentials;
  const expiration = c?.Expiration ? new Date(c.Expiration) : undefined;
  if (!c?.AccessKeyId || !c.AccessKeySecret || !c.SecurityToken || !expiration || Number.isNaN(+expiration)) {
    throw fail(status, 'InvalidResponse', 'the answer lacks Credentials', answer.RequestId);
  }
  return {
    accessKeyId: c.AccessKeyId,
    accessKeySecret: c.AccessKeySecret,
    securityToken: c.SecurityToken,
    expiration: onLocalClock(expiration, serverDate, receivedAt),
  };
}
