/**
 * Sign-in for self-hosted runners on Alibaba Cloud ECS: the RAM role attached to the instance, read from
 * the instance metadata service in hardened mode (a session token first, then the role's temporary
 * credentials). See https://www.alibabacloud.com/help/en/ecs/user-guide/obtain-a-temporary-authorization-token
 * and "Access mode of instance metadata". Only hardened mode is spoken: it is what instances configured
 * with HttpTokens=required accept, and the token PUT cannot be forged through a GET-only request forgery.
 */
import type { Credentials, CredentialsProvider } from './client.ts';
import { type BoundedAnswer, NoAnswerError, boundedRequest } from './bounded-http.ts';
import { type RefreshOptions, refreshingCredentials } from './credentials.ts';
import { onLocalClock } from './server-clock.ts';

export const DEFAULT_METADATA_URL = 'http://100.100.100.200';
/** The longest session token the service issues (1 to 21,600 seconds). */
export const METADATA_TOKEN_TTL_SECONDS = 21_600;
export const METADATA_TOKEN_PATH = '/latest/api/token';
export const ROLE_CREDENTIALS_PATH = '/latest/meta-data/ram/security-credentials/';
/**
 * RAM role names: letters, digits, `.` and `-`, 1-64 characters, with a letter or a digit: a name of dots
 * only names no role, and as a URL path segment it would name the credentials directory or its parent.
 */
const ROLE_NAME = /^(?=[.-]*[A-Za-z0-9])[A-Za-z0-9.-]{1,64}$/;
export const RAM_ROLE_NAME_ALLOWED = '1-64 letters, digits, `.` and `-`, with at least one letter or digit';

export function isRamRoleName(name: string): boolean {
  return ROLE_NAME.test(name);
}
const MAX_ANSWER_BYTES = 64 * 1024;
const HINT =
  'is this runner an ECS instance with a RAM role attached, and is the metadata service reachable?';

export type EcsMetadataStep = 'token' | 'role name' | 'credentials';

/** Reading the instance metadata failed; the message names the step and never holds a credential. */
export class EcsMetadataError extends Error {
  readonly step: EcsMetadataStep;
  /** HTTP status, or 0 when no answer came. */
  readonly status: number;
  readonly code: string;
  constructor(step: EcsMetadataStep, status: number, code: string, detail: string, cause?: unknown) {
    super(
      `ECS RAM role sign-in: the ${step} request failed (${code}): ${detail}`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'EcsMetadataError';
    this.step = step;
    this.status = status;
    this.code = code;
  }
}

export interface EcsRoleOptions {
  /** The instance's RAM role; by default the one the metadata service lists. */
  roleName?: string | undefined;
  /** @default http://100.100.100.200 */
  metadataUrl?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Each metadata request; the service is on the host, so a slow answer means none is coming. @default 5 s */
  timeoutMs?: number | undefined;
}

export interface EcsRoleCredentials extends Credentials {
  roleName: string;
}

function metadataBase(text: string | undefined): URL {
  const raw = text?.trim() || DEFAULT_METADATA_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`metadataUrl: "${raw}" is not a URL; the default is ${DEFAULT_METADATA_URL}`);
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.pathname !== '/' ||
    url.search ||
    url.hash
  )
    throw new Error(
      `metadataUrl: "${raw}" must be http://host[:port] with no path, e.g. ${DEFAULT_METADATA_URL}`,
    );
  return url;
}

function checkRoleName(name: string, source: string): string {
  if (!isRamRoleName(name))
    throw new Error(
      `${source}: ${JSON.stringify(name)} is not a RAM role name; allowed ${RAM_ROLE_NAME_ALLOWED}`,
    );
  return name;
}

/**
 * `path` on the metadata service, its segments percent-encoded by the caller. Set as the path, never resolved
 * as a reference against the base (which would read a `..` as the parent): a path that does not come out as
 * given is refused before any request.
 */
function metadataUrlAt(base: URL, path: string): URL {
  const url = new URL(base.href);
  url.pathname = path;
  if (url.pathname !== path)
    throw new Error(`the metadata path ${JSON.stringify(path)} does not stay as given (${url.pathname})`);
  return url;
}

/** One set of the role's temporary credentials, Expiration moved onto our clock. */
export async function fetchEcsRoleCredentials(o: EcsRoleOptions = {}): Promise<EcsRoleCredentials> {
  const base = metadataBase(o.metadataUrl);
  const timeoutMs = o.timeoutMs ?? 5000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new Error(`timeoutMs: ${String(o.timeoutMs)} is not a positive number of milliseconds`);
  const given = o.roleName?.trim() ? checkRoleName(o.roleName.trim(), 'roleName') : undefined;

  const ask = async (
    step: EcsMetadataStep,
    method: 'GET' | 'PUT',
    path: string,
    headers: Record<string, string>,
  ): Promise<BoundedAnswer> => {
    let answer: BoundedAnswer;
    try {
      answer = await boundedRequest(metadataUrlAt(base, path), {
        method,
        headers,
        timeoutMs,
        maxBytes: MAX_ANSWER_BYTES,
        signal: o.signal,
      });
    } catch (e) {
      if (e instanceof NoAnswerError)
        throw new EcsMetadataError(step, 0, e.code, `no answer from ${base.host} (${e.message}); ${HINT}`, e);
      throw e;
    }
    if (answer.status !== 200) {
      const why =
        answer.status === 404 && step !== 'token'
          ? `no RAM role${given ? ` named ${given}` : ''} on this instance`
          : answer.status === 401 || answer.status === 403
            ? step === 'token'
              ? 'the metadata service refused to issue a session token'
              : 'the metadata service refused the session token'
            : `HTTP ${answer.status}`;
      throw new EcsMetadataError(step, answer.status, `Http${answer.status}`, `${why}; ${HINT}`);
    }
    return answer;
  };

  const token = (
    await ask('token', 'PUT', METADATA_TOKEN_PATH, {
      'x-aliyun-ecs-metadata-token-ttl-seconds': String(METADATA_TOKEN_TTL_SECONDS),
    })
  ).text.trim();
  if (!token || /[\r\n]/.test(token))
    throw new EcsMetadataError(
      'token',
      200,
      'InvalidResponse',
      `the metadata service sent no usable token; ${HINT}`,
    );
  const auth = { 'x-aliyun-ecs-metadata-token': token };

  let roleName = given;
  if (!roleName) {
    const listed = (await ask('role name', 'GET', ROLE_CREDENTIALS_PATH, auth)).text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter(Boolean);
    if (listed.length !== 1)
      throw new EcsMetadataError(
        'role name',
        200,
        'InvalidResponse',
        listed.length === 0
          ? `the instance lists no RAM role; ${HINT}`
          : `the instance lists ${listed.length} roles (${listed.join(', ')}); name one with roleName`,
      );
    roleName = checkRoleName(listed[0]!, 'the role name the metadata service listed');
  }

  const answer = await ask(
    'credentials',
    'GET',
    `${ROLE_CREDENTIALS_PATH}${encodeURIComponent(roleName)}`,
    auth,
  );
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(answer.text) as Record<string, unknown>;
    if (typeof body !== 'object' || body === null) throw new Error('not an object');
  } catch {
    // the body may hold a secret: never quote it
    throw new EcsMetadataError(
      'credentials',
      200,
      'InvalidResponse',
      `the answer for role ${roleName} is not JSON`,
    );
  }
  const text = (k: string): string | undefined =>
    typeof body[k] === 'string' && body[k] ? body[k] : undefined;
  if (text('Code') !== 'Success')
    throw new EcsMetadataError(
      'credentials',
      200,
      'InvalidResponse',
      `Code is ${JSON.stringify(body.Code ?? null)}, not "Success", for role ${roleName}`,
    );
  const expiration = new Date(text('Expiration') ?? NaN);
  const missing = ['AccessKeyId', 'AccessKeySecret', 'SecurityToken'].filter((k) => !text(k));
  if (Number.isNaN(+expiration)) missing.push('Expiration');
  if (missing.length)
    throw new EcsMetadataError(
      'credentials',
      200,
      'InvalidResponse',
      `the answer for role ${roleName} lacks ${missing.join(', ')}`,
    );
  return {
    roleName,
    accessKeyId: text('AccessKeyId')!,
    accessKeySecret: text('AccessKeySecret')!,
    securityToken: text('SecurityToken')!,
    expiration: onLocalClock(expiration, answer.headers.date, answer.receivedAt),
  };
}

/**
 * A provider for OssClient (or refreshCdnUrls): fetches the role's credentials on first use and again
 * before they expire, one fetch shared by concurrent callers. The role name is looked up once.
 */
export function ecsRoleCredentials(
  o: EcsRoleOptions & { refresh?: RefreshOptions } = {},
): CredentialsProvider {
  // check the options now, not at the first upload
  metadataBase(o.metadataUrl);
  if (o.roleName?.trim()) checkRoleName(o.roleName.trim(), 'roleName');
  let roleName = o.roleName;
  return refreshingCredentials(async () => {
    const c = await fetchEcsRoleCredentials({ ...o, roleName });
    roleName = c.roleName;
    return c;
  }, o.refresh);
}
