/**
 * A stand-in for the ECS instance metadata service in hardened mode, on real HTTP: a session token from
 * `PUT /latest/api/token` (TTL header 1-21,600 s), required on every read; the attached RAM role's name and
 * its temporary credentials. Each set it issues is added to the OSS server, token and expiry included.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { ServerCredential } from './auth.ts';
import { closeServer, listen, sendJson } from './http.ts';

export interface EcsMetadataRecord {
  method: string;
  path: string;
  /** What the request carried: a token this service issued, another one, or none. */
  token: 'valid' | 'invalid' | 'missing';
  ttlHeader: string | undefined;
  status: number;
}

export interface EcsMetadataOptions {
  /** Where issued credentials go so OSS accepts them. */
  oss?: { addCredential(c: ServerCredential): void } | undefined;
  /** The attached role; undefined: the instance has none (404, as on an instance without a role). */
  roleName?: string | undefined;
  /** Lifetime of each set. @default 6 hours */
  lifetimeMs?: number | undefined;
  /** A new set is issued once the current one has less than this left. @default half the lifetime */
  rotateBeforeMs?: number | undefined;
  /** Refuse session tokens (as where a proxy strips PUT), leaving the service unusable in hardened mode. */
  refuseTokens?: boolean | undefined;
  /** Lifetime of session tokens, whatever the TTL asked for; to test expiry. */
  tokenLifetimeMs?: number | undefined;
}

export interface EcsMetadataStandIn {
  readonly url: string;
  readonly requests: EcsMetadataRecord[];
  readonly issued: Array<Required<ServerCredential>>;
  close(): Promise<void>;
}

const CREDENTIALS_PATH = '/latest/meta-data/ram/security-credentials/';
const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export async function startEcsMetadataStandIn(o: EcsMetadataOptions = {}): Promise<EcsMetadataStandIn> {
  const requests: EcsMetadataRecord[] = [];
  const issued: Array<Required<ServerCredential>> = [];
  const tokens = new Map<string, number>();
  const lifetimeMs = o.lifetimeMs ?? 6 * 3600_000;
  const rotateBeforeMs = o.rotateBeforeMs ?? lifetimeMs / 2;

  const current = (): Required<ServerCredential> => {
    const last = issued.at(-1);
    if (last && last.expiration.getTime() - Date.now() > rotateBeforeMs) return last;
    // the service states expiry to the second; the set expires when it says
    const expiration = new Date(Math.floor((Date.now() + lifetimeMs) / 1000) * 1000);
    const set = {
      accessKeyId: `STS.${randomBytes(10).toString('hex')}`,
      accessKeySecret: randomBytes(20).toString('base64url'),
      securityToken: `CAIS${randomBytes(48).toString('base64url')}`,
      expiration,
    };
    issued.push(set);
    o.oss?.addCredential(set);
    return set;
  };

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://metadata').pathname;
    const sent = req.headers['x-aliyun-ecs-metadata-token'];
    const ttlHeader = req.headers['x-aliyun-ecs-metadata-token-ttl-seconds'] as string | undefined;
    const expires = typeof sent === 'string' ? tokens.get(sent) : undefined;
    const record: EcsMetadataRecord = {
      method: req.method ?? '',
      path,
      token:
        sent === undefined ? 'missing' : expires !== undefined && expires > Date.now() ? 'valid' : 'invalid',
      ttlHeader,
      status: 0,
    };
    requests.push(record);
    const answer = (status: number, body: string, type = 'text/plain'): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': type }).end(body);
    };
    // drain any body; none of these requests has one worth reading
    req.resume();

    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return answer(405, 'Method Not Allowed');
      if (o.refuseTokens) return answer(403, 'Forbidden');
      const ttl = Number(ttlHeader);
      if (!ttlHeader || !Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return answer(400, 'Bad Request');
      const token = randomBytes(32).toString('base64url');
      tokens.set(token, Date.now() + (o.tokenLifetimeMs ?? ttl * 1000));
      return answer(200, token);
    }
    if (req.method !== 'GET') return answer(405, 'Method Not Allowed');
    // hardened mode: nothing without a live token
    if (record.token !== 'valid') return answer(403, 'Forbidden');
    if (path === CREDENTIALS_PATH) return o.roleName ? answer(200, o.roleName) : answer(404, 'Not Found');
    if (
      path.startsWith(CREDENTIALS_PATH) &&
      o.roleName &&
      path.slice(CREDENTIALS_PATH.length) === o.roleName
    ) {
      const set = current();
      record.status = 200;
      return sendJson(res, 200, {
        AccessKeyId: set.accessKeyId,
        AccessKeySecret: set.accessKeySecret,
        Expiration: isoSeconds(set.expiration),
        SecurityToken: set.securityToken,
        LastUpdated: isoSeconds(new Date()),
        Code: 'Success',
      });
    }
    return answer(404, 'Not Found');
  });
  return {
    url: `http://127.0.0.1:${await listen(server)}`,
    requests,
    issued,
    close: () => closeServer(server),
  };
}
