/**
 * Reads and validates every setting into one typed value before any work starts. A bad value throws a
 * SettingError naming the setting, the value and what is allowed; secrets are masked as soon as they are read.
 * The names are the action's inputs; the command line maps its options onto them.
 */
import { join } from 'node:path';
import { MAX_PART_SIZE_BYTES, MIN_PART_SIZE_BYTES } from '../engine/index.ts';
import {
  EndpointError,
  MAX_ROLE_DURATION_SECONDS,
  MIN_ROLE_DURATION_SECONDS,
  RAM_ROLE_NAME_ALLOWED,
  ROLE_SESSION_NAME,
  isRamRoleName,
  resolveEndpoint,
  stsUrl,
  validateBucket,
} from '../oss/index.ts';
import {
  ACLS,
  ALLOWED_EXTRA_HEADERS,
  DEFAULTS,
  DEFAULT_OIDC_AUDIENCE,
  MAX_IN_FLIGHT,
  MAX_THREAD_NUM,
  IF_NO_FILES_FOUND,
  MIN_STALE_AGE_MS,
  INPUT,
  type IfNoFilesFound,
  SIGNATURE_VERSIONS,
  STORAGE_CLASSES,
  CDN_PRODUCTS,
  ECS_METADATA_URL_ENV,
} from './constants.ts';
import { type HeaderRule, RELATIVE_PATTERN_ALLOWED, parseRules, relativePatternProblem } from './rules.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { credentialProblem, encodeContentDisposition, headerValueProblem, isToken } from './header-values.ts';
import { escapeText } from './log-line.ts';
import { SettingError, ref } from './setting-error.ts';
import { type Shard, parseShard } from './shard.ts';
import { parseSize } from './size.ts';

export interface DeploySettings {
  patterns: string[];
  bucket: string;
  region: string | undefined;
  endpoint: string | undefined;
  cname: boolean;
  internal: boolean;
  destination: string;
  /** Parts of one big file in flight at once. */
  threadNum: number;
  /** Requests in flight at once across all files (HEADs, small PUTs, parts, deletes). */
  maxInFlight: number;
  partSize: number | 'auto';
  enableCheckpoint: boolean;
  skipUnchanged: boolean;
  checkpointDir: string;
  cacheCheckpoints: boolean;
  signatureVersion: 'v4' | 'v1';
  /** AccessKeys (with an STS token, perhaps), or OIDC or ECS RAM-role sign-in that fetches temporary ones. */
  auth: KeyAuth | OidcAuth | EcsAuth;
  ifNoFilesFound: IfNoFilesFound;
  overwrite: boolean;
  includeHiddenFiles: boolean;
  contentType: string | undefined;
  /** Headers for every object (Cache-Control, ACL, storage class, extra headers, forbid-overwrite). */
  headers: Record<string, string>;
  deleteOrphans: boolean;
  dryRun: boolean;
  /** Abort unfinished multipart uploads older than this; undefined leaves them. */
  abortStaleUploadsMs: number | undefined;
  /** Per-file headers, in order; for each field the last matching rule wins. */
  rules: HeaderRule[];
  /** Files whose relative path matches one of these go up after every other file is stored. */
  publishLast: string[];
  /** Orphans younger than this (by the server's LastModified and clock) are kept; 0 keeps none. */
  deleteOrphansMinAgeMs: number;
  /** Refresh these CDN URLs after the deploy; undefined: no refresh. */
  cdn: CdnSettings | undefined;
  /** One job of a matrix (its share of the keys), or the final job that verifies them all; undefined: no matrix. */
  shard: Shard | undefined;
}

export interface CdnSettings {
  /** A host name: the URLs are `https://{domain}/{key}`. */
  domain: string;
  product: (typeof CDN_PRODUCTS)[number];
  /** The API endpoint for tests and self-hosted gateways; undefined: the product's public one. */
  endpoint: string | undefined;
}

export interface EcsAuth {
  kind: 'ecs';
  /** undefined: the role the metadata service lists (`auto`). */
  roleName: string | undefined;
  /** undefined: the service's own address. */
  metadataUrl: string | undefined;
}

export interface KeyAuth {
  kind: 'keys';
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

export interface OidcAuth {
  kind: 'oidc';
  roleArn: string;
  oidcProviderArn: string;
  roleSessionName: string;
  durationSeconds: number;
  audience: string;
  stsEndpoint: string | undefined;
}

/** Where settings and environment come from: the runner's inputs, the command line's options, a map in tests. */
export interface InputSource {
  get(name: string): string;
  env: Record<string, string | undefined>;
  /** Keeps a secret out of every line written from now on. */
  mask(secret: string): void;
}

function fail(input: string, value: string, allowed: string): never {
  throw new SettingError(input, `${ref(input, true)}: got \`${escapeText(value)}\`; allowed ${allowed}`, {
    value,
    allowed,
  });
}

/** A free-form refusal of `input`; `text` names settings with {@link ref}. */
function refuse(input: string, text: string, allowed?: string): never {
  throw new SettingError(input, text, allowed === undefined ? {} : { allowed });
}

/** The protocol layer says `bucket: got ...`; here the subject is the setting, in each front end's name. */
function fromProtocol(input: string, message: string): never {
  const allowed = /; allowed (.*)$/s.exec(message)?.[1];
  return refuse(input, message.replace(/^([a-z-]+):/, `${ref(input, true)}:`), allowed);
}

function bool(src: InputSource, input: keyof typeof DEFAULTS): boolean {
  const raw = src.get(input).trim();
  if (raw === '') return DEFAULTS[input] === 'true';
  if (/^(true|yes|on|1)$/i.test(raw)) return true;
  if (/^(false|no|off|0)$/i.test(raw)) return false;
  return fail(input, raw, '`true` or `false`');
}

function oneOf<T extends string>(
  src: InputSource,
  input: string,
  allowed: readonly T[],
  fallback: T | undefined,
): T | undefined {
  const raw = src.get(input).trim();
  if (raw === '') return fallback;
  const hit = allowed.find((a) => a.toLowerCase() === raw.toLowerCase());
  return hit ?? fail(input, raw, allowed.map((a) => `\`${a}\``).join(', '));
}

/** The part-size input: bytes or a size with a unit, within OSS's limits, or `auto`. */
export function parsePartSize(raw: string, input: string = INPUT.partSize): number | 'auto' {
  const text = raw.trim();
  if (text === '' || text.toLowerCase() === 'auto') return 'auto';
  const bytes = parseSize(text);
  const allowed = '100KB to 5GB as bytes or with a unit (e.g. `8MiB`), or `auto`';
  if (bytes === undefined || bytes < MIN_PART_SIZE_BYTES || bytes > MAX_PART_SIZE_BYTES)
    return fail(input, text, allowed);
  return bytes;
}

/** A whole number from 1 to `max`; `fallback` when empty. */
export function parseCount(raw: string, input: string, fallback: number, max: number): number {
  const text = raw.trim();
  if (text === '') return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max) return fail(input, text, `a whole number from 1 to ${max}`);
  return n;
}

/** One header as the user wrote it: the line (or JSON member) is what an error quotes. */
interface GivenHeader {
  name: string;
  value: string;
  where: string;
}

/**
 * The member names of a JSON object's top level, in order and with repeats: JSON.parse keeps only the last of
 * two equal names, so a repeat would be lost without a word. `text` is known to be a valid JSON object.
 */
export function topLevelMemberNames(text: string): string[] {
  const names: string[] = [];
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const literal = text.slice(i, j + 1);
      i = j + 1;
      while (/\s/.test(text[i] ?? '')) i++;
      if (depth === 1 && text[i] === ':') names.push(JSON.parse(literal) as string);
      continue;
    }
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    i++;
  }
  return names;
}

function headerLines(text: string): GivenHeader[] {
  const jsonAllowed = 'a JSON object of strings or `Name: value` lines';
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return fail(INPUT.headers, text, `${jsonAllowed} (${(e as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return fail(INPUT.headers, text, jsonAllowed);
    }
    const names = topLevelMemberNames(text);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) {
      refuse(
        INPUT.headers,
        `${ref(INPUT.headers, true)}: the member \`${escapeText(JSON.stringify(twice))}\` is given twice (JSON keeps only the last); allowed each header once`,
        'each header once',
      );
    }
    return Object.entries(parsed).map(([name, v]) => {
      // a number or a boolean reads as the text it is; null, objects and arrays are a template gone wrong
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        refuse(
          INPUT.headers,
          `${ref(INPUT.headers, true)}: the member \`${escapeText(JSON.stringify(name))}\` is ${v === null ? 'null' : Array.isArray(v) ? 'an array' : 'an object'}; allowed ${jsonAllowed} (numbers and booleans are read as text)`,
          jsonAllowed,
        );
      }
      const value = String(v);
      return {
        name,
        value,
        where: `member \`${escapeText(JSON.stringify(name))}: ${escapeText(JSON.stringify(value))}\``,
      };
    });
  }
  return text.split(/\r?\n/).flatMap((line, i) => {
    if (line.trim() === '') return [];
    const colon = line.indexOf(':');
    if (colon <= 0) return fail(INPUT.headers, line, '`Name: value` lines or a JSON object');
    return [
      {
        name: line.slice(0, colon).trim(),
        value: line.slice(colon + 1).trim(),
        where: `line ${i + 1} \`${escapeText(line.trim())}\``,
      },
    ];
  });
}

function extraHeaders(raw: string): Record<string, string> {
  const text = raw.trim();
  if (text === '') return {};
  const out: Record<string, string> = {};
  const seen = new Map<string, GivenHeader>();
  for (const given of headerLines(text)) {
    const { name } = given;
    const lower = name.toLowerCase();
    if (lower.startsWith('x-oss-meta-')) {
      if (lower === 'x-oss-meta-' || !isToken(name))
        fail(INPUT.headers, name, "x-oss-meta- followed by a name of letters, digits and `!#$%&'*+-.^_`|~`");
    } else if (!(ALLOWED_EXTRA_HEADERS as readonly string[]).includes(lower)) {
      fail(
        INPUT.headers,
        name,
        `x-oss-meta-* or one of ${ALLOWED_EXTRA_HEADERS.join(', ')} (other headers have their own inputs)`,
      );
    }
    const earlier = seen.get(lower);
    if (earlier) {
      refuse(
        INPUT.headers,
        `${ref(INPUT.headers, true)}: ${earlier.where} and ${given.where} both set \`${lower}\`; allowed each header once`,
        'each header once',
      );
    }
    seen.set(lower, given);
    out[lower] = lower === 'content-disposition' ? encodeContentDisposition(given.value) : given.value;
  }
  return out;
}

/** Every header value must survive the HTTP layer; the input that set it is named when one does not. */
function checkHeaderValues(headers: Record<string, string>): void {
  const inputOf: Record<string, string> = {
    'cache-control': INPUT.cacheControl,
    'content-type': INPUT.contentType,
  };
  for (const [name, value] of Object.entries(headers)) {
    const problem = headerValueProblem(name, value);
    if (problem) {
      const input = inputOf[name] ?? INPUT.headers;
      refuse(input, `${ref(input, true)}: ${problem}`, 'visible ASCII, spaces and tabs');
    }
  }
}

/**
 * An endpoint with `user:password@` would carry a credential into every log line that shows the endpoint; the
 * keys have inputs of their own. The error shows the endpoint with the user info replaced.
 */
function refuseUserInfo(src: InputSource, endpoint: string | undefined): void {
  const m = endpoint === undefined ? null : /^((?:[a-z][a-z0-9+.-]*:)?\/\/)?([^/?#]*)@/i.exec(endpoint);
  if (!m || endpoint === undefined) return;
  const userInfo = m[2]!;
  src.mask(userInfo);
  const colon = userInfo.indexOf(':');
  if (colon >= 0 && colon + 1 < userInfo.length) src.mask(userInfo.slice(colon + 1));
  fail(
    INPUT.endpoint,
    `${m[1] ?? ''}***@${endpoint.slice(m[0].length)}`,
    `a host or URL without a user name or password (the keys go in ${ref(INPUT.accessKeyId)} and ${ref(INPUT.accessKeySecret)} or the environment)`,
  );
}

function keyAuth(src: InputSource): KeyAuth {
  const pick = (input: string, ...vars: string[]): { value: string; from: string } | undefined => {
    const given = src.get(input).trim();
    if (given) return { value: given, from: ref(input, true) };
    for (const v of vars) {
      const value = src.env[v]?.trim();
      if (value) return { value, from: v };
    }
    return undefined;
  };
  const id = pick(INPUT.accessKeyId, 'OSS_ACCESS_KEY_ID', 'ALIBABA_CLOUD_ACCESS_KEY_ID');
  const secret = pick(INPUT.accessKeySecret, 'OSS_ACCESS_KEY_SECRET', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET');
  const token = pick(INPUT.securityToken, 'OSS_SESSION_TOKEN', 'ALIBABA_CLOUD_SECURITY_TOKEN');
  // mask before anything else can print them, including the errors below
  if (secret) src.mask(secret.value);
  if (token) src.mask(token.value);
  const where = (input: string, vars: string) => `${ref(input, true)} or ${vars}`;
  if (!id && !secret) {
    refuse(
      INPUT.accessKeyId,
      `credentials missing: set ${where(INPUT.accessKeyId, 'OSS_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_ID')} and ${where(INPUT.accessKeySecret, 'OSS_ACCESS_KEY_SECRET / ALIBABA_CLOUD_ACCESS_KEY_SECRET')}`,
    );
  }
  if (!id) {
    refuse(
      INPUT.accessKeyId,
      `access key id missing (the secret came from ${secret!.from}): set ${where(INPUT.accessKeyId, 'OSS_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_ID')}`,
    );
  }
  if (!secret) {
    refuse(
      INPUT.accessKeySecret,
      `access key secret missing (the id came from ${id.from}): set ${where(INPUT.accessKeySecret, 'OSS_ACCESS_KEY_SECRET / ALIBABA_CLOUD_ACCESS_KEY_SECRET')}`,
    );
  }
  for (const [input, given] of [
    [INPUT.accessKeyId, id],
    [INPUT.accessKeySecret, secret],
    [INPUT.securityToken, token],
  ] as const) {
    const problem = given && credentialProblem(given.value);
    if (problem) refuse(input, `${given.from}: ${problem}`, 'visible ASCII only');
  }
  return {
    kind: 'keys',
    accessKeyId: id.value,
    accessKeySecret: secret.value,
    ...(token ? { securityToken: token.value } : {}),
  };
}

/** OIDC sign-in when `role-arn` is given: the job's GitHub ID token buys temporary credentials for that role. */
function oidcAuth(src: InputSource): OidcAuth | undefined {
  const roleArn = src.get(INPUT.roleArn).trim();
  const providerArn = src.get(INPUT.oidcProviderArn).trim();
  if (!roleArn && !providerArn) return undefined;
  if (!roleArn)
    refuse(
      INPUT.roleArn,
      `${ref(INPUT.roleArn, true)}: missing; ${ref(INPUT.oidcProviderArn)} is set, and OIDC sign-in also needs the RAM role to assume, e.g. \`acs:ram::123456789012:role/deploy\``,
    );
  if (!/^acs:ram::\d+:role\/\S+$/.test(roleArn))
    fail(INPUT.roleArn, roleArn, 'a RAM role ARN such as `acs:ram::123456789012:role/deploy`');
  if (!providerArn)
    refuse(
      INPUT.oidcProviderArn,
      `${ref(INPUT.oidcProviderArn, true)}: missing; ${ref(INPUT.roleArn)} is set, and OIDC sign-in also needs the OIDC identity provider, e.g. \`acs:ram::123456789012:oidc-provider/github\``,
    );
  if (!/^acs:ram::\d+:oidc-provider\/\S+$/.test(providerArn))
    fail(
      INPUT.oidcProviderArn,
      providerArn,
      'an OIDC provider ARN such as `acs:ram::123456789012:oidc-provider/github`',
    );
  for (const input of [INPUT.accessKeyId, INPUT.accessKeySecret, INPUT.securityToken]) {
    if (src.get(input).trim()) {
      // never echo a secret, not even in the error that refuses it
      refuse(
        input,
        `${ref(input, true)}: set, and so is ${ref(INPUT.roleArn)}; allowed one way to sign in: remove the AccessKey inputs to use OIDC, or ${ref(INPUT.roleArn)} and ${ref(INPUT.oidcProviderArn)} to use the keys`,
        'one way to sign in',
      );
    }
  }
  const runId = src.env.GITHUB_RUN_ID ?? 'local';
  const sessionName = src.get(INPUT.roleSessionName).trim() || `github-actions-${runId}`;
  if (!ROLE_SESSION_NAME.test(sessionName))
    fail(INPUT.roleSessionName, sessionName, '2-64 letters, digits and `.@-_`');
  const rawDuration = src.get(INPUT.roleDuration).trim() || DEFAULTS[INPUT.roleDuration];
  const ms = parseDuration(rawDuration);
  const seconds = ms === undefined ? NaN : ms / 1000;
  if (
    !Number.isInteger(seconds) ||
    seconds < MIN_ROLE_DURATION_SECONDS ||
    seconds > MAX_ROLE_DURATION_SECONDS
  )
    fail(
      INPUT.roleDuration,
      rawDuration,
      `${MIN_ROLE_DURATION_SECONDS} to ${MAX_ROLE_DURATION_SECONDS} seconds (\`15m\` to \`12h\`); the role's maximum session duration must allow it`,
    );
  const stsEndpoint = src.get(INPUT.stsEndpoint).trim() || undefined;
  try {
    stsUrl(stsEndpoint);
  } catch {
    fail(INPUT.stsEndpoint, stsEndpoint ?? '', 'an STS host such as `sts.cn-hangzhou.aliyuncs.com` or a URL');
  }
  return {
    kind: 'oidc',
    roleArn,
    oidcProviderArn: providerArn,
    roleSessionName: sessionName,
    durationSeconds: seconds,
    audience: src.get(INPUT.oidcAudience).trim() || DEFAULT_OIDC_AUDIENCE,
    stsEndpoint,
  };
}

/** ECS RAM-role sign-in when `ecs-ram-role` is given: the instance's role, from its metadata service. */
function ecsAuth(src: InputSource): EcsAuth | undefined {
  const role = src.get(INPUT.ecsRamRole).trim();
  if (!role) return undefined;
  for (const input of [
    INPUT.roleArn,
    INPUT.oidcProviderArn,
    INPUT.accessKeyId,
    INPUT.accessKeySecret,
    INPUT.securityToken,
  ]) {
    if (src.get(input).trim()) {
      // never echo a secret, not even in the error that refuses it
      refuse(
        INPUT.ecsRamRole,
        `${ref(INPUT.ecsRamRole, true)}: set, and so is ${ref(input)}; allowed one way to sign in: remove ${ref(input)} to use the instance's RAM role, or ${ref(INPUT.ecsRamRole)} to use ${input.startsWith('access') || input === INPUT.securityToken ? 'the keys' : 'OIDC'}`,
        'one way to sign in',
      );
    }
  }
  if (role.toLowerCase() !== 'auto' && !isRamRoleName(role))
    fail(
      INPUT.ecsRamRole,
      role,
      `a RAM role name (${RAM_ROLE_NAME_ALLOWED}), or \`auto\` for the role attached to the instance`,
    );
  const metadataUrl = src.env[ECS_METADATA_URL_ENV]?.trim() || undefined;
  if (metadataUrl !== undefined && !/^https?:\/\/[^/?#\s]+\/?$/.test(metadataUrl))
    refuse(
      INPUT.ecsRamRole,
      `${ECS_METADATA_URL_ENV}: got \`${escapeText(metadataUrl)}\`; allowed http://host[:port] with no path (it is for tests and gateways; unset, the instance's metadata service is used)`,
      'http://host[:port]',
    );
  return { kind: 'ecs', roleName: role.toLowerCase() === 'auto' ? undefined : role, metadataUrl };
}

/** One pattern per line; `false`, `none` or `off` for none. */
function publishLast(src: InputSource): string[] {
  const raw = src.get(INPUT.publishLast);
  const text = raw.trim() === '' ? DEFAULTS[INPUT.publishLast] : raw.trim();
  if (/^(false|none|off|no)$/i.test(text)) return [];
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  lines.forEach((line, i) => {
    const problem = relativePatternProblem(line);
    if (problem !== undefined)
      refuse(
        INPUT.publishLast,
        `${ref(INPUT.publishLast, true)}: line ${i + 1}: the pattern \`${escapeText(line)}\` ${problem}; allowed ${RELATIVE_PATTERN_ALLOWED}, or \`false\` to publish in any order`,
        RELATIVE_PATTERN_ALLOWED,
      );
  });
  return lines;
}

function orphanMinAge(src: InputSource): number {
  const raw = src.get(INPUT.deleteOrphansMinAge).trim() || DEFAULTS[INPUT.deleteOrphansMinAge];
  const ms = parseDuration(raw);
  if (ms === undefined)
    fail(
      INPUT.deleteOrphansMinAge,
      raw,
      'an age such as `7d`, `36h` or `90m`, or `0` to delete orphans of any age',
    );
  return ms;
}

function cdnSettings(src: InputSource): CdnSettings | undefined {
  const product = oneOf(src, INPUT.cdnProduct, CDN_PRODUCTS, DEFAULTS[INPUT.cdnProduct])!;
  const rawEndpoint = src.get(INPUT.cdnEndpoint).trim();
  if (rawEndpoint && !/^https?:\/\/[^/?#\s@]+\/?$/.test(rawEndpoint))
    fail(
      INPUT.cdnEndpoint,
      rawEndpoint,
      'an http(s) URL with no path, such as `http://127.0.0.1:8080` (for tests and self-hosted gateways)',
    );
  const raw = src.get(INPUT.cdnDomain).trim();
  if (!raw) return undefined;
  const domain = raw
    .replace(/^https:\/\//i, '')
    .replace(/\/$/, '')
    .toLowerCase();
  if (!/^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/.test(domain))
    fail(
      INPUT.cdnDomain,
      raw,
      'the accelerated domain name, such as `static.example.com` (the URLs refreshed are `https://{domain}/{key}`)',
    );
  return { domain, product, endpoint: rawEndpoint || undefined };
}

/** Off when empty or false; otherwise an age of at least an hour. */
function staleAge(src: InputSource): number | undefined {
  const raw = src.get(INPUT.abortStaleUploads).trim();
  if (raw === '' || /^(false|off|no|0)$/i.test(raw)) return undefined;
  const ms = parseDuration(raw);
  if (ms === undefined || ms < MIN_STALE_AGE_MS)
    fail(
      INPUT.abortStaleUploads,
      raw,
      `an age of at least ${formatDuration(MIN_STALE_AGE_MS)} such as \`24h\`, \`90m\` or \`7d\`, or empty to leave unfinished uploads alone`,
    );
  return ms;
}

/**
 * An upload shard sees only its own share: its orphans would be the keys the other shards upload, and its
 * stale uploads theirs in flight. Cleanup belongs to the final job, after every key is verified.
 */
function refuseShardCleanup(
  shard: Shard | undefined,
  deleteOrphans: boolean,
  staleMs: number | undefined,
): void {
  if (shard?.kind !== 'upload' || (!deleteOrphans && staleMs === undefined)) return;
  refuse(
    deleteOrphans ? INPUT.deleteOrphans : INPUT.abortStaleUploads,
    `${ref(INPUT.deleteOrphans)} and ${ref(INPUT.abortStaleUploads)} are refused in an upload shard (${ref(INPUT.shard)} is \`${shard.index}/${shard.count}\`): each shard would delete the keys the other shards upload and abort their uploads in flight; allowed only in the cleanup step, a final job that \`needs:\` every shard and sets ${ref(INPUT.shard)} to \`cleanup\`: it verifies every key first, then deletes orphans and aborts stale uploads`,
    'the cleanup step only',
  );
}

/**
 * Tags with skip-unchanged would reach only the files that change: a HEAD shows an object's tag count, not its
 * tags, so a file with the same bytes and headers would be skipped with whatever tags it had.
 */
function refuseTagsWithSkip(s: Pick<DeploySettings, 'skipUnchanged' | 'headers' | 'rules'>): void {
  if (!s.skipUnchanged) return;
  const TAGGING = 'x-oss-tagging';
  const rule = s.rules.find((r) => r.headers[TAGGING] !== undefined);
  if (s.headers[TAGGING] === undefined && !rule) return;
  const input = rule ? INPUT.rules : INPUT.headers;
  const where = rule ? `rule ${rule.index} (\`${escapeText(rule.glob)}\`) sets` : 'sets';
  refuse(
    input,
    `${ref(input, true)}: ${where} \`${TAGGING}\` while ${ref(INPUT.skipUnchanged)} is on: a HEAD does not show an object's tags, so an unchanged file would keep its old tags; allowed with ${ref(INPUT.skipUnchanged)} turned off (every file is then sent with its tags), or without \`${TAGGING}\``,
    `${INPUT.skipUnchanged} off, or no ${TAGGING}`,
  );
}

/** Parse every setting; throws {@link SettingError} at the first bad one. */
export function readSettings(src: InputSource): DeploySettings {
  const auth = ecsAuth(src) ?? oidcAuth(src) ?? keyAuth(src);
  const patterns = src
    .get(INPUT.path)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (patterns.length === 0)
    refuse(INPUT.path, `${ref(INPUT.path, true)}: missing; give one or more glob patterns, one per line`);
  const bucket = src.get(INPUT.bucket).trim();
  if (!bucket) refuse(INPUT.bucket, `${ref(INPUT.bucket, true)}: missing; give the name of the OSS bucket`);
  try {
    validateBucket(bucket);
  } catch (e) {
    fromProtocol(INPUT.bucket, (e as Error).message);
  }
  const region = src.get(INPUT.region).trim() || undefined;
  const endpoint = src.get(INPUT.endpoint).trim() || undefined;
  refuseUserInfo(src, endpoint);
  const cname = bool(src, INPUT.cname);
  const internal = bool(src, INPUT.internal);
  try {
    resolveEndpoint({ region, endpoint, cname, internal });
  } catch (e) {
    if (!(e instanceof EndpointError)) throw e;
    fromProtocol(e.message.startsWith('region') ? INPUT.region : INPUT.endpoint, e.message);
  }
  const rawDestination = src.get(INPUT.destination).trim();
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (/[\u0000-\u001f\u007f-\u009f]/.test(rawDestination))
    fail(INPUT.destination, rawDestination, 'a key prefix without control characters or line breaks');
  const destination = rawDestination
    .replace(/\\/g, '/')
    .replace(/^\/+/, '')
    .replace(/\/{2,}/g, '/');
  if (destination.split('/').some((seg) => seg === '..' || seg === '.')) {
    fail(INPUT.destination, destination, 'a key prefix without `.` or `..` segments');
  }
  const headers: Record<string, string> = { ...extraHeaders(src.get(INPUT.headers)) };
  const cacheControl = src.get(INPUT.cacheControl).trim();
  if (cacheControl) headers['cache-control'] = cacheControl;
  const acl = oneOf(src, INPUT.acl, ACLS, undefined);
  if (acl) headers['x-oss-object-acl'] = acl;
  const storageClass = oneOf(src, INPUT.storageClass, STORAGE_CLASSES, undefined);
  if (storageClass) headers['x-oss-storage-class'] = storageClass;
  const overwrite = bool(src, INPUT.overwrite);
  if (!overwrite) headers['x-oss-forbid-overwrite'] = 'true';
  const contentType = src.get(INPUT.contentType).trim() || undefined;
  if (contentType !== undefined && !/^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/.test(contentType)) {
    fail(
      INPUT.contentType,
      contentType,
      'a MIME type such as `text/html; charset=utf-8`, or empty to pick one per file',
    );
  }
  checkHeaderValues({ ...headers, ...(contentType === undefined ? {} : { 'content-type': contentType }) });
  const deleteOrphans = bool(src, INPUT.deleteOrphans);
  const force = bool(src, INPUT.deleteOrphansForce);
  if (deleteOrphans && destination.replace(/\/+$/, '') === '' && !force) {
    refuse(
      INPUT.deleteOrphans,
      `${ref(INPUT.deleteOrphans, true)}: refusing to delete across the whole bucket \`${bucket}\`: ${ref(INPUT.destination)} is empty; allowed with a ${ref(INPUT.destination)} prefix (only keys under it are candidates), or add \`delete-orphans-force: true\` to delete every object in the bucket that this deploy does not contain`,
      'a destination prefix, or delete-orphans-force',
    );
  }
  const shard = parseShard(src.get(INPUT.shard));
  const abortStaleUploadsMs = staleAge(src);
  refuseShardCleanup(shard, deleteOrphans, abortStaleUploadsMs);
  const runnerTemp = src.env.RUNNER_TEMP ?? join(process.cwd(), '.tmp');
  const inputs: DeploySettings = {
    patterns,
    bucket,
    region,
    endpoint,
    cname,
    internal,
    destination,
    threadNum: parseCount(
      src.get(INPUT.threadNum),
      INPUT.threadNum,
      Number(DEFAULTS[INPUT.threadNum]),
      MAX_THREAD_NUM,
    ),
    maxInFlight: parseCount(
      src.get(INPUT.maxInFlight),
      INPUT.maxInFlight,
      Number(DEFAULTS[INPUT.maxInFlight]),
      MAX_IN_FLIGHT,
    ),
    partSize: parsePartSize(src.get(INPUT.partSize)),
    enableCheckpoint: bool(src, INPUT.enableCheckpoint),
    skipUnchanged: bool(src, INPUT.skipUnchanged),
    checkpointDir:
      src.get(INPUT.checkpointDir).trim() || join(runnerTemp, 'oss-resumable-upload', 'checkpoints'),
    cacheCheckpoints: bool(src, INPUT.cacheCheckpoints),
    signatureVersion: oneOf(
      src,
      INPUT.signatureVersion,
      SIGNATURE_VERSIONS,
      DEFAULTS[INPUT.signatureVersion],
    )!,
    auth,
    ifNoFilesFound: oneOf(src, INPUT.ifNoFilesFound, IF_NO_FILES_FOUND, DEFAULTS[INPUT.ifNoFilesFound])!,
    overwrite,
    includeHiddenFiles: bool(src, INPUT.includeHiddenFiles),
    contentType,
    headers,
    deleteOrphans,
    dryRun: bool(src, INPUT.dryRun),
    abortStaleUploadsMs,
    rules: parseRules(src.get(INPUT.rules)),
    publishLast: publishLast(src),
    deleteOrphansMinAgeMs: orphanMinAge(src),
    cdn: cdnSettings(src),
    shard,
  };
  refuseTagsWithSkip(inputs);
  return inputs;
}

/** The settings for the debug log: how the run signs in, never with what. */
export function describeSettings(inputs: DeploySettings): string {
  return JSON.stringify({ ...inputs, auth: inputs.auth.kind });
}
