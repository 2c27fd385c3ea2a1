// Proves OIDC sign-in over real HTTP: the STS stand-in gets exactly the parameters AssumeRoleWithOIDC needs,
// refusals carry STS's code and request id, and a client on refreshing credentials moves to the next set
// before the first expires, with the OSS server seeing each security token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientFor } from '../helpers/client.ts';
import {
  type Credentials,
  assumeRoleWithOidc,
  bufferBody,
  isOssError,
  refreshingCredentials,
} from '../../src/oss/index.ts';
import { PROVIDER_ARN as PROVIDER, ROLE_ARN as ROLE, startSignInServices } from '../helpers/sign-in.ts';

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  lifetimeMs?: number,
  ossOptions: Parameters<typeof startSignInServices>[2] = {},
) {
  const { oss, issuer, sts } = await startSignInServices(t, lifetimeMs, ossOptions);
  const idToken = async (audience = 'sts.aliyuncs.com'): Promise<string> => {
    const res = await fetch(`${issuer.requestUrl}&audience=${encodeURIComponent(audience)}`, {
      headers: { authorization: `Bearer ${issuer.requestToken}` },
    });
    return ((await res.json()) as { value: string }).value;
  };
  return { oss, issuer, sts, idToken };
}

test('AssumeRoleWithOIDC sends the role, provider, token, session and duration, and returns usable credentials', async (t) => {
  const { oss, sts, idToken } = await setup(t);
  const token = await idToken();
  const creds = await assumeRoleWithOidc({
    endpoint: sts.url,
    roleArn: ROLE,
    oidcProviderArn: PROVIDER,
    oidcToken: token,
    roleSessionName: 'github-actions-42',
    durationSeconds: 900,
  });
  assert.equal(sts.requests.length, 1);
  const r = sts.requests[0]!;
  assert.equal(r.status, 200);
  assert.deepEqual(
    { Action: r.query.Action, Version: r.query.Version, Format: r.query.Format },
    { Action: 'AssumeRoleWithOIDC', Version: '2015-04-01', Format: 'JSON' },
  );
  assert.deepEqual(r.form, {
    RoleArn: ROLE,
    OIDCProviderArn: PROVIDER,
    OIDCToken: token,
    RoleSessionName: 'github-actions-42',
    DurationSeconds: '900',
  });
  assert.equal(creds.accessKeyId, sts.issued[0]!.accessKeyId);
  assert.equal(creds.securityToken, sts.issued[0]!.securityToken);
  const lifetime = creds.expiration!.getTime() - Date.now();
  assert.ok(lifetime > 890_000 && lifetime <= 900_000, String(lifetime));

  const client = clientFor(oss, { credentials: creds });
  t.after(() => client.close());
  await client.putObject({ bucket: 'test-bucket', key: 'k', body: bufferBody('x') });
  assert.equal(oss.requests.at(-1)!.securityToken, creds.securityToken);
});

test('refusals carry the STS code and request id and are not retried', async (t) => {
  const { sts, idToken } = await setup(t);
  const cases: Array<[Partial<Parameters<typeof assumeRoleWithOidc>[0]>, string]> = [
    [{ roleArn: 'acs:ram::1:role/other' }, 'EntityNotExist.Role'],
    [{ oidcProviderArn: 'acs:ram::1:oidc-provider/other' }, 'EntityNotExist.OIDCProvider'],
    [{ roleSessionName: 'bad name!' }, 'InvalidParameter.RoleSessionName'],
    [{ durationSeconds: 60 }, 'InvalidParameter.DurationSeconds'],
    [{ oidcToken: await idToken('someone-else') }, 'AuthenticationFail.OIDCToken.Invalid'],
    [{ oidcToken: 'forged.token.value' }, 'AuthenticationFail.OIDCToken.Invalid'],
  ];
  const good = { endpoint: sts.url, roleArn: ROLE, oidcProviderArn: PROVIDER, roleSessionName: 's1' };
  for (const [override, code] of cases) {
    const before = sts.requests.length;
    const err = await assumeRoleWithOidc({ ...good, oidcToken: await idToken(), ...override }).catch(
      (e: unknown) => e,
    );
    assert.ok(isOssError(err), String(err));
    assert.equal(err.code, code);
    assert.equal(err.operation, 'AssumeRoleWithOIDC');
    assert.match(err.message, /RequestId [0-9A-F]{16}/);
    assert.equal(sts.requests.length, before + 1, `${code}: sent once`);
  }
});

test('a client on refreshing credentials switches to the next set before the first expires', async (t) => {
  // sets live 3 s, so the provider refreshes after 1.5 s; the server refuses any set past its expiry
  const { oss, sts, idToken } = await setup(t, 3000);
  const fetchSet = async (): Promise<Credentials> =>
    assumeRoleWithOidc({
      endpoint: sts.url,
      roleArn: ROLE,
      oidcProviderArn: PROVIDER,
      oidcToken: await idToken(),
      roleSessionName: 'refresh-test',
    });
  const client = clientFor(oss, { credentials: refreshingCredentials(fetchSet) });
  t.after(() => client.close());
  const deadline = Date.now() + 4500;
  let n = 0;
  while (Date.now() < deadline) {
    await client.putObject({ bucket: 'test-bucket', key: `k${n++}`, body: bufferBody('x') });
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(sts.issued.length >= 2, `sets issued: ${sts.issued.length}`);
  assert.ok(sts.issued.length < n / 4, `not one per request: ${sts.issued.length} for ${n} requests`);
  const tokens = [...new Set(oss.requests.map((r) => r.securityToken))];
  assert.deepEqual(
    tokens,
    sts.issued.map((c) => c.securityToken),
  );
  assert.ok(
    oss.requests.every((r) => r.status === 200),
    'no request was refused as expired',
  );
});

test("when the server's clock says a set has expired before ours does, the request is retried once with a new set", async (t) => {
  // the OSS server runs 3 s ahead: it refuses each 4 s set after 1 s, while our refresh waits 2 s. A window
  // of a whole second, so that a busy machine's slow requests still fall in it
  const { oss, sts, idToken } = await setup(t, 4000, { clockOffsetMs: 3000 });
  const client = clientFor(oss, {
    credentials: refreshingCredentials(async () =>
      assumeRoleWithOidc({
        endpoint: sts.url,
        roleArn: ROLE,
        oidcProviderArn: PROVIDER,
        oidcToken: await idToken(),
        roleSessionName: 'skewed-clock',
      }),
    ),
  });
  t.after(() => client.close());
  const deadline = Date.now() + 3000;
  for (let n = 0; Date.now() < deadline; n++) {
    await client.putObject({ bucket: 'test-bucket', key: `k${n}`, body: bufferBody('x') });
    await new Promise((r) => setTimeout(r, 50));
  }
  const expired = oss.requests.filter((r) => r.code === 'SecurityTokenExpired');
  assert.ok(expired.length >= 1, 'the server did refuse a set as expired');
  // every refused request was followed by a success with the next set
  for (const r of expired) {
    const after = oss.requests.find((q) => q.key === r.key && q.status === 200);
    assert.ok(after && after.securityToken !== r.securityToken, r.key);
  }
});
