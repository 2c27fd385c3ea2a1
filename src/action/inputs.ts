/**
 * Reads and validates every input into one typed object before any work starts. A bad value throws an
 * InputError naming the input, the value and what is allowed; secrets are masked as soon as they are read.
 */
import { join } from 'node:path';
import * as core from '@actions/core';
import { MAX_PART_SIZE_BYTES, MIN_PART_SIZE_BYTES } from '../engine/index.ts';
import { EndpointError, resolveEndpoint, validateBucket } from '../oss/index.ts';
import {
  ACLS,
  ALLOWED_EXTRA_HEADERS,
  IF_NO_FILES_FOUND,
  INPUT,
  type IfNoFilesFound,
  SIGNATURE_VERSIONS,
  STORAGE_CLASSES,
} from './constants.ts';
import { parseSize } from './size.ts';

export class InputError extends Error {
  readonly input: string;
  constructor(input: string, message: string) {
    super(message);
    this.name = 'InputError';
    this.input = input;
  }
}

export interface ActionInputs {
  patterns: string[];
  bucket: string;
  region: string | undefined;
  endpoint: string | undefined;
  cname: boolean;
  internal: boolean;
  destination: string;
  threadNum: number;
  partSize: number | 'auto';
  enableCheckpoint: boolean;
  skipUnchanged: boolean;
  checkpointDir: string;
  cacheCheckpoints: boolean;
  signatureVersion: 'v4' | 'v1';
  credentials: { accessKeyId: string; accessKeySecret: string; securityToken?: string };
  ifNoFilesFound: IfNoFilesFound;
  overwrite: boolean;
  includeHiddenFiles: boolean;
  contentType: string | undefined;
  /** Headers for every object (Cache-Control, ACL, storage class, extra headers, forbid-overwrite). */
  headers: Record<string, string>;
}

/** Where inputs and environment come from; the runner's by default, plain maps in tests and the CLI. */
export interface InputSource {
  get(name: string): string;
  env: Record<string, string | undefined>;
  mask(secret: string): void;
}

export const runnerInputs: InputSource = {
  get: (name) => core.getInput(name),
  env: process.env,
  mask: (secret) => core.setSecret(secret),
};

export const MAX_THREAD_NUM = 64;

function fail(input: string, value: string, allowed: string): never {
  throw new InputError(input, `input \`${input}\`: got \`${value}\`; allowed ${allowed}`);
}

/** The protocol layer says `bucket: got ...`; here that is `input \`bucket\`: got ...` like every other input. */
function asInputMessage(message: string): string {
  return message.replace(/^([a-z-]+):/, 'input `$1`:');
}

function bool(src: InputSource, input: string, fallback: boolean): boolean {
  const raw = src.get(input).trim();
  if (raw === '') return fallback;
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

export function parseThreadNum(raw: string, input: string = INPUT.threadNum): number {
  const text = raw.trim();
  if (text === '') return 4;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_THREAD_NUM)
    return fail(input, text, `a whole number from 1 to ${MAX_THREAD_NUM}`);
  return n;
}

function extraHeaders(raw: string): Record<string, string> {
  const text = raw.trim();
  if (text === '') return {};
  let pairs: Array<[string, string]>;
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return fail(
        INPUT.headers,
        text,
        `a JSON object of strings or \`Name: value\` lines (${(e as Error).message})`,
      );
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return fail(INPUT.headers, text, 'a JSON object of strings or `Name: value` lines');
    }
    pairs = Object.entries(parsed).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
  } else {
    pairs = text
      .split(/\r?\n/)
      .filter((l) => l.trim() !== '')
      .map((line) => {
        const i = line.indexOf(':');
        if (i <= 0) return fail(INPUT.headers, line, '`Name: value` lines or a JSON object');
        return [line.slice(0, i).trim(), line.slice(i + 1).trim()];
      });
  }
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    if (!lower.startsWith('x-oss-meta-') && !(ALLOWED_EXTRA_HEADERS as readonly string[]).includes(lower)) {
      fail(
        INPUT.headers,
        name,
        `x-oss-meta-* or one of ${ALLOWED_EXTRA_HEADERS.join(', ')} (other headers have their own inputs)`,
      );
    }
    if (/[\r\n]/.test(value)) fail(INPUT.headers, `${name}: ${value}`, 'single-line values');
    out[lower] = value;
  }
  return out;
}

function credentials(src: InputSource): ActionInputs['credentials'] {
  const pick = (input: string, ...vars: string[]): { value: string; from: string } | undefined => {
    const given = src.get(input).trim();
    if (given) return { value: given, from: `input \`${input}\`` };
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
  const where = (input: string, vars: string) => `input \`${input}\` or ${vars}`;
  if (!id && !secret) {
    throw new InputError(
      INPUT.accessKeyId,
      `credentials missing: set ${where(INPUT.accessKeyId, 'OSS_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_ID')} and ${where(INPUT.accessKeySecret, 'OSS_ACCESS_KEY_SECRET / ALIBABA_CLOUD_ACCESS_KEY_SECRET')}`,
    );
  }
  if (!id) {
    throw new InputError(
      INPUT.accessKeyId,
      `access key id missing (the secret came from ${secret!.from}): set ${where(INPUT.accessKeyId, 'OSS_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_ID')}`,
    );
  }
  if (!secret) {
    throw new InputError(
      INPUT.accessKeySecret,
      `access key secret missing (the id came from ${id.from}): set ${where(INPUT.accessKeySecret, 'OSS_ACCESS_KEY_SECRET / ALIBABA_CLOUD_ACCESS_KEY_SECRET')}`,
    );
  }
  return {
    accessKeyId: id.value,
    accessKeySecret: secret.value,
    ...(token ? { securityToken: token.value } : {}),
  };
}

/** Parse every input; throws {@link InputError} at the first bad one. */
export function readInputs(src: InputSource = runnerInputs): ActionInputs {
  const creds = credentials(src);
  const patterns = src
    .get(INPUT.path)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (patterns.length === 0)
    throw new InputError(INPUT.path, 'input `path`: missing; give one or more glob patterns, one per line');
  const bucket = src.get(INPUT.bucket).trim();
  if (!bucket) throw new InputError(INPUT.bucket, 'input `bucket`: missing; give the name of the OSS bucket');
  try {
    validateBucket(bucket);
  } catch (e) {
    throw new InputError(INPUT.bucket, asInputMessage((e as Error).message));
  }
  const region = src.get(INPUT.region).trim() || undefined;
  const endpoint = src.get(INPUT.endpoint).trim() || undefined;
  const cname = bool(src, INPUT.cname, false);
  const internal = bool(src, INPUT.internal, false);
  try {
    resolveEndpoint({ region, endpoint, cname, internal });
  } catch (e) {
    if (!(e instanceof EndpointError)) throw e;
    const input = e.message.startsWith('region') ? INPUT.region : INPUT.endpoint;
    throw new InputError(input, asInputMessage(e.message));
  }
  const destination = src
    .get(INPUT.destination)
    .trim()
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
  const overwrite = bool(src, INPUT.overwrite, true);
  if (!overwrite) headers['x-oss-forbid-overwrite'] = 'true';
  const contentType = src.get(INPUT.contentType).trim() || undefined;
  if (contentType !== undefined && !/^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/.test(contentType)) {
    fail(
      INPUT.contentType,
      contentType,
      'a MIME type such as `text/html; charset=utf-8`, or empty to pick one per file',
    );
  }
  const runnerTemp = src.env.RUNNER_TEMP ?? join(process.cwd(), '.tmp');
  const inputs: ActionInputs = {
    patterns,
    bucket,
    region,
    endpoint,
    cname,
    internal,
    destination,
    threadNum: parseThreadNum(src.get(INPUT.threadNum)),
    partSize: parsePartSize(src.get(INPUT.partSize)),
    enableCheckpoint: bool(src, INPUT.enableCheckpoint, true),
    skipUnchanged: bool(src, INPUT.skipUnchanged, true),
    checkpointDir:
      src.get(INPUT.checkpointDir).trim() || join(runnerTemp, 'oss-resumable-upload', 'checkpoints'),
    cacheCheckpoints: bool(src, INPUT.cacheCheckpoints, true),
    signatureVersion: oneOf(src, INPUT.signatureVersion, SIGNATURE_VERSIONS, 'v4')!,
    credentials: creds,
    ifNoFilesFound: oneOf(src, INPUT.ifNoFilesFound, IF_NO_FILES_FOUND, 'warn')!,
    overwrite,
    includeHiddenFiles: bool(src, INPUT.includeHiddenFiles, false),
    contentType,
    headers,
  };
  return inputs;
}
