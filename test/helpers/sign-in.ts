// OIDC sign-in services on 127.0.0.1: an OSS server that knows no static keys, GitHub's ID-token endpoint and
// an STS that trusts it for one role, adding every set it issues to the OSS server.
import { startTestServer } from './server.ts';
import { type ServerOptions, startIdTokenIssuer, startStsStandIn } from '../../src/server/index.ts';

export const ROLE_ARN = 'acs:ram::1234567890123456:role/github-deploy';
export const PROVIDER_ARN = 'acs:ram::1234567890123456:oidc-provider/GitHub';

/** `lifetimeMs` shortens every issued set (the default is the duration asked for). */
export async function startSignInServices(
  t: { after: (fn: () => Promise<void>) => void },
  lifetimeMs?: number,
  ossOptions: Partial<ServerOptions> = {},
) {
  const oss = await startTestServer({ ...ossOptions, credentials: [] });
  t.after(() => oss.close());
  const issuer = await startIdTokenIssuer();
  t.after(() => issuer.close());
  const sts = await startStsStandIn({
    issuer,
    oss,
    roleArn: ROLE_ARN,
    oidcProviderArn: PROVIDER_ARN,
    audiences: ['sts.aliyuncs.com'],
    ...(lifetimeMs ? { lifetimeMs } : {}),
  });
  t.after(() => sts.close());
  return { oss, issuer, sts };
}
