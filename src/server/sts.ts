/**
 * Stand-ins for the two services behind OIDC sign-in, on real HTTP: GitHub's ID-token endpoint (what
 * `core.getIDToken` calls) and Alibaba Cloud STS AssumeRoleWithOIDC. The STS checks every parameter the
 * real one needs, and each set of credentials it issues is added to the OSS server, token and expiry included.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { ServerCredential } from './auth.ts';
import { closeServer, collectBody, listen, sendJson } from './http.ts';

export interface IdTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  iat: number;
  exp: number;
  jti: string;
}

export interface IdTokenIssuer {
  /** ACTIONS_ID_TOKEN_REQUEST_URL; core.getIDToken appends `&audience=`. */
  readonly requestUrl: string;
  /** ACTIONS_ID_TOKEN_REQUEST_TOKEN, the bearer the runner hands a job with `id-token: write`. */
  readonly requestToken: string;
  readonly issued: IdTokenClaims[];
  /** The claims of a token this issuer signed, or undefined. */
  verify(token: string): IdTokenClaims | undefined;
  close(): Promise<void>;
}

export interface StsRecord {
  status: number;
  code?: string;
  query: Record<string, string>;
  form: Record<string, string>;
}

export interface StsStandIn {
  readonly url: string;
  readonly requests: StsRecord[];
  /** Every set issued, in order. */
  readonly issued: Array<Required<ServerCredential>>;
  close(): Promise<void>;
}

export interface StsOptions {
  issuer: Pick<IdTokenIssuer, 'verify'>;
  /** Where issued credentials go so OSS accepts them. */
  oss: { addCredential(c: ServerCredential): void };
  roleArn: string;
  oidcProviderArn: string;
  /** The client ids (audiences) the OIDC provider accepts. */
  audiences: string[];
  /** Lifetime of issued credentials; the default is the DurationSeconds asked for. */
  lifetimeMs?: number;
  /** This service's clock is now + this (its Date header and the Expiration it issues). @default 0 */
  clockOffsetMs?: number;
}

const ISSUER = 'https://token.actions.githubusercontent.com';
const SESSION_NAME = /^[\w.@-]{2,64}$/;

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

export async function startIdTokenIssuer(o: { lifetimeMs?: number } = {}): Promise<IdTokenIssuer> {
  const key = randomBytes(32);
  const requestToken = randomBytes(24).toString('hex');
  const issued: IdTokenClaims[] = [];
  const sign = (text: string): string => createHmac('sha256', key).update(text).digest('base64url');
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://issuer');
    if (url.pathname !== '/token' || req.headers.authorization !== `Bearer ${requestToken}`)
      return sendJson(res, 401, { message: 'Bad credentials' });
    const now = Math.floor(Date.now() / 1000);
    const claims: IdTokenClaims = {
      iss: ISSUER,
      aud: url.searchParams.get('audience') ?? 'https://github.com/test-owner',
      sub: 'repo:test-owner/test-repo:ref:refs/heads/main',
      iat: now,
      exp: now + Math.ceil((o.lifetimeMs ?? 300_000) / 1000),
      jti: randomBytes(8).toString('hex'),
    };
    issued.push(claims);
    const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
    sendJson(res, 200, { count: 1, value: `${unsigned}.${sign(unsigned)}` });
  });
  const url = `http://127.0.0.1:${await listen(server)}`;
  return {
    // the runner's URL already carries a query, which is why getIDToken appends with `&`
    requestUrl: `${url}/token?api-version=2.0`,
    requestToken,
    issued,
    verify(token) {
      const [head, payload, sig] = token.split('.');
      if (!head || !payload || !sig || sign(`${head}.${payload}`) !== sig) return undefined;
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as IdTokenClaims;
    },
    close: () => closeServer(server),
  };
}

export async function startStsStandIn(o: StsOptions): Promise<StsStandIn> {
  const requests: StsRecord[] = [];
  const issued: Array<Required<ServerCredential>> = [];
  const now = (): number => Date.now() + (o.clockOffsetMs ?? 0);
  const server = createServer((req, res) => {
    void (async () => {
      // Node would send its own (unskewed) Date otherwise
      const send = (status: number, body: unknown): void =>
        sendJson(res, status, body, { date: new Date(now()).toUTCString() });
      const url = new URL(req.url ?? '/', 'http://sts');
      const query = Object.fromEntries(url.searchParams);
      const body = await collectBody(req, 1024 * 1024);
      const form = Object.fromEntries(new URLSearchParams(body?.toString('utf8') ?? ''));
      const record: StsRecord = { status: 0, query, form };
      requests.push(record);
      const requestId = randomBytes(8).toString('hex').toUpperCase();
      const refuse = (status: number, code: string, message: string): void => {
        record.status = status;
        record.code = code;
        send(status, {
          RequestId: requestId,
          HostId: 'sts.aliyuncs.com',
          Code: code,
          Message: message,
        });
      };
      const p = { ...query, ...form };
      if (req.method !== 'POST') return refuse(400, 'InvalidParameter', 'use POST');
      if (p.Action !== 'AssumeRoleWithOIDC' || p.Version !== '2015-04-01' || p.Format !== 'JSON')
        return refuse(400, 'InvalidAction', `Action/Version/Format: ${p.Action}/${p.Version}/${p.Format}`);
      if (!req.headers['content-type']?.startsWith('application/x-www-form-urlencoded'))
        return refuse(400, 'InvalidParameter', 'the parameters come as a form');
      if (p.RoleArn !== o.roleArn) return refuse(404, 'EntityNotExist.Role', `no role ${p.RoleArn}`);
      if (p.OIDCProviderArn !== o.oidcProviderArn)
        return refuse(404, 'EntityNotExist.OIDCProvider', `no OIDC provider ${p.OIDCProviderArn}`);
      if (!SESSION_NAME.test(p.RoleSessionName ?? ''))
        return refuse(400, 'InvalidParameter.RoleSessionName', `bad RoleSessionName ${p.RoleSessionName}`);
      const duration = Number(p.DurationSeconds ?? 3600);
      if (!Number.isInteger(duration) || duration < 900 || duration > 43_200)
        return refuse(400, 'InvalidParameter.DurationSeconds', `bad DurationSeconds ${p.DurationSeconds}`);
      const claims = o.issuer.verify(p.OIDCToken ?? '');
      if (!claims) return refuse(400, 'AuthenticationFail.OIDCToken.Invalid', 'the OIDC token is not valid');
      if (claims.exp * 1000 < now())
        return refuse(400, 'AuthenticationFail.OIDCToken.Expired', 'the OIDC token has expired');
      if (!o.audiences.includes(claims.aud))
        return refuse(
          400,
          'AuthenticationFail.OIDCToken.Invalid',
          `audience ${claims.aud} is not a client id`,
        );
      const expiration = new Date(now() + (o.lifetimeMs ?? duration * 1000));
      const credential = {
        accessKeyId: `STS.${randomBytes(10).toString('hex')}`,
        accessKeySecret: randomBytes(20).toString('base64url'),
        securityToken: `CAIS${randomBytes(48).toString('base64url')}`,
        expiration,
      };
      issued.push(credential);
      o.oss.addCredential(credential);
      record.status = 200;
      send(200, {
        RequestId: requestId,
        AssumedRoleUser: { Arn: `${o.roleArn}/${p.RoleSessionName}`, AssumedRoleId: `3${requestId}` },
        OIDCTokenInfo: { Issuer: claims.iss, Subject: claims.sub, ClientIds: claims.aud },
        Credentials: {
          AccessKeyId: credential.accessKeyId,
          AccessKeySecret: credential.accessKeySecret,
          SecurityToken: credential.securityToken,
          Expiration: expiration.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        },
      });
    })().catch(() => res.destroy());
  });
  return {
    url: `http://127.0.0.1:${await listen(server)}`,
    requests,
    issued,
    close: () => closeServer(server),
  };
}
