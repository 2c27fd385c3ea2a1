// Proves ECS RAM-role sign-in over real HTTP: the metadata stand-in (hardened mode) sees a session token on
// every read, a client on ecsRoleCredentials keeps uploading across credential rotations with the OSS
// server seeing each set, and every failure (no token, no role, no service, a silent service) ends within
// its bound with an error that names the step and what to check, and no secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startTestServer } from '../helpers/server.ts';
import { clientFor } from '../helpers/client.ts';
import {
  EcsMetadataError,
  bufferBody,
  ecsRoleCredentials,
  fetchEcsRoleCredentials,
} from '../../src/oss/index.ts';
import { startEcsMetadataStandIn } from '../../src/server/index.ts';
import { closeServer, listen } from '../../src/server/http.ts';

type After = { after: (fn: () => Promise<void>) => void };

async function services(t: After, o: Parameters<typeof startEcsMetadataStandIn>[0] = {}) {
  const oss = await startTestServer({ credentials: [] });
  t.after(() => oss.close());
  const metadata = await startEcsMetadataStandIn({ oss, roleName: 'runner-role', ...o });
  t.after(() => metadata.close());
  return { oss, metadata };
}

test('the role is discovered, the token is asked for 21600 s and sent on every read, and the set works', async (t) => {
  const { oss, metadata } = await services(t);
  const creds = await fetchEcsRoleCredentials({ metadataUrl: metadata.url });
  assert.equal(creds.roleName, 'runner-role');
  assert.deepEqual(
    metadata.requests.map((r) => [r.method, r.path, r.token, r.status]),
    [
      ['PUT', '/latest/api/token', 'missing', 200],
      ['GET', '/latest/meta-data/ram/security-credentials/', 'valid', 200],
      ['GET', '/latest/meta-data/ram/security-credentials/runner-role', 'valid', 200],
    ],
  );
  assert.equal(metadata.requests[0]!.ttlHeader, '21600');
  assert.equal(creds.securityToken, metadata.issued[0]!.securityToken);
  assert.equal(creds.expiration!.getTime(), metadata.issued[0]!.expiration.getTime());

  const client = clientFor(oss, { credentials: creds });
  t.after(() => client.close());
  await client.putObject({ bucket: 'test-bucket', key: 'k', body: bufferBody('x') });
  assert.equal(oss.requests.at(-1)!.securityToken, creds.securityToken);

  // a named role skips the listing
  const before = metadata.requests.length;
  await fetchEcsRoleCredentials({ metadataUrl: metadata.url, roleName: 'runner-role' });
  assert.deepEqual(
    metadata.requests.slice(before).map((r) => r.path),
    ['/latest/api/token', '/latest/meta-data/ram/security-credentials/runner-role'],
  );
});

test('the stand-in refuses reads without a token, or with one it did not issue', async (t) => {
  const { metadata } = await services(t);
  for (const headers of [{}, { 'x-aliyun-ecs-metadata-token': 'forged' }]) {
    const res = await fetch(`${metadata.url}/latest/meta-data/ram/security-credentials/runner-role`, {
      headers,
    });
    assert.equal(res.status, 403);
  }
  assert.equal(metadata.issued.length, 0);
});

test('a client on ecsRoleCredentials uploads across rotations, moving to each new set before the old expires', async (t) => {
  // sets live 4 s and the service rotates at half-life; the OSS server refuses a set past its expiry
  const { oss, metadata } = await services(t, { lifetimeMs: 4000 });
  const client = clientFor(oss, { credentials: ecsRoleCredentials({ metadataUrl: metadata.url }) });
  t.after(() => client.close());
  const deadline = Date.now() + 6000;
  let n = 0;
  while (Date.now() < deadline) {
    await client.putObject({ bucket: 'test-bucket', key: `k${n++}`, body: bufferBody('x') });
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(metadata.issued.length >= 2, `sets issued: ${metadata.issued.length}`);
  const reads = metadata.requests.filter((r) => r.path.endsWith('/runner-role'));
  assert.ok(reads.length < n / 4, `not one fetch per request: ${reads.length} for ${n} requests`);
  // the role was listed once, not at every refresh
  assert.equal(metadata.requests.filter((r) => r.path.endsWith('/security-credentials/')).length, 1);
  assert.ok(metadata.requests.filter((r) => r.method === 'GET').every((r) => r.token === 'valid'));
  assert.deepEqual(
    [...new Set(oss.requests.map((r) => r.securityToken))],
    metadata.issued.map((c) => c.securityToken),
  );
  assert.ok(
    oss.requests.every((r) => r.status === 200),
    'no request was refused as expired',
  );
});

async function failure(p: Promise<unknown>): Promise<EcsMetadataError> {
  const e = await p.then(
    () => assert.fail('expected a failure'),
    (err: unknown) => err,
  );
  assert.ok(e instanceof EcsMetadataError, String(e));
  return e;
}

test('no token from the service: a clear error naming the token step, and nothing else is asked', async (t) => {
  const { metadata } = await services(t, { refuseTokens: true });
  const e = await failure(fetchEcsRoleCredentials({ metadataUrl: metadata.url }));
  assert.equal(e.step, 'token');
  assert.equal(e.status, 403);
  assert.match(
    e.message,
    /token request failed.*refused to issue a session token.*ECS instance with a RAM role attached/,
  );
  assert.equal(metadata.requests.length, 1);
});

test('no role attached, or another role named: the error says so', async (t) => {
  const none = await services(t, { roleName: undefined });
  let e = await failure(fetchEcsRoleCredentials({ metadataUrl: none.metadata.url }));
  assert.equal(e.step, 'role name');
  assert.match(e.message, /no RAM role on this instance.*RAM role attached/);

  const other = await services(t);
  e = await failure(fetchEcsRoleCredentials({ metadataUrl: other.metadata.url, roleName: 'deploy' }));
  assert.equal(e.step, 'credentials');
  assert.match(e.message, /no RAM role named deploy/);
  assert.equal(other.metadata.issued.length, 0);
});

test('metadata service down: refused at once; silent: cut at the timeout; both name the host and what to check', async (t) => {
  const closed = createServer();
  const port = await listen(closed);
  await closeServer(closed);
  let started = Date.now();
  let e = await failure(fetchEcsRoleCredentials({ metadataUrl: `http://127.0.0.1:${port}` }));
  assert.equal(e.code, 'ECONNREFUSED');
  assert.equal(e.status, 0);
  assert.match(e.message, new RegExp(`no answer from 127.0.0.1:${port}.*ECS instance`));
  assert.ok(Date.now() - started < 2000);

  const silent = createServer(() => {
    /* never answers */
  });
  const silentPort = await listen(silent);
  t.after(() => closeServer(silent));
  started = Date.now();
  e = await failure(
    fetchEcsRoleCredentials({ metadataUrl: `http://127.0.0.1:${silentPort}`, timeoutMs: 300 }),
  );
  const took = Date.now() - started;
  assert.equal(e.code, 'RequestDeadlineExceeded');
  assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
});

test('an answer without Code Success or a field is refused without quoting the secret; a flood is cut', async (t) => {
  const secret = 'SECRET-VALUE-NEVER-PRINTED';
  let body = '';
  const fake = createServer((req, res) => {
    if (req.url === '/latest/api/token') res.end('tok');
    else res.writeHead(200).end(body);
  });
  const port = await listen(fake);
  t.after(() => closeServer(fake));
  const url = `http://127.0.0.1:${port}`;
  const cases: Array<[string, RegExp]> = [
    [JSON.stringify({ Code: 'Failed', AccessKeySecret: secret }), /Code is "Failed"/],
    [
      JSON.stringify({ Code: 'Success', AccessKeyId: 'STS.x', AccessKeySecret: secret, Expiration: 'soon' }),
      /lacks SecurityToken, Expiration/,
    ],
    [`{"AccessKeySecret":"${secret}"`, /is not JSON/],
    ['x'.repeat(200_000), /AnswerTooLarge/],
  ];
  for (const [text, message] of cases) {
    body = text;
    const e = await failure(fetchEcsRoleCredentials({ metadataUrl: url, roleName: 'r' }));
    assert.match(e.message, message);
    assert.ok(!e.message.includes(secret));
  }
});

test('bad options are refused up front, naming the option and the value', () => {
  assert.throws(() => ecsRoleCredentials({ metadataUrl: 'ftp://x' }), /metadataUrl: "ftp:\/\/x"/);
  assert.throws(() => ecsRoleCredentials({ metadataUrl: 'http://h/latest' }), /no path/);
  assert.throws(
    () => ecsRoleCredentials({ roleName: '../admin' }),
    /roleName: "..\/admin" is not a RAM role name/,
  );
});
