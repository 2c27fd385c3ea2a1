// Proves OIDC sign-in through the bundled action: the GitHub ID token is exchanged with STS for temporary
// credentials, every OSS request carries the security token, the credentials are masked, and a long upload
// moves to a fresh set before the first expires. Refusals say what to fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomFile, tempDir } from '../helpers/files.ts';
import { inputEnv, newJob, parseCommandFile, runStep } from '../helpers/action-runner.ts';
import { PROVIDER_ARN as PROVIDER, ROLE_ARN as ROLE, startSignInServices } from '../helpers/sign-in.ts';

const KiB = 1024;

async function setup(t: Parameters<typeof tempDir>[0], lifetimeMs?: number) {
  const { oss, issuer, sts } = await startSignInServices(t, lifetimeMs);
  const dir = await tempDir(t);
  const ws = join(dir, 'ws');
  await mkdir(join(ws, 'dist'), { recursive: true });
  const inputs = {
    path: 'dist/**',
    bucket: 'test-bucket',
    endpoint: oss.url,
    'part-size': '100KB',
    'thread-num': '1',
    'cache-checkpoints': 'false',
    'role-arn': ROLE,
    'oidc-provider-arn': PROVIDER,
    'sts-endpoint': sts.url,
  };
  const idTokenEnv = {
    ACTIONS_ID_TOKEN_REQUEST_URL: issuer.requestUrl,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: issuer.requestToken,
  };
  const run = async (extra: Record<string, string> = {}, env: Record<string, string> = idTokenEnv) => {
    const job = await newJob(dir, ws);
    const r = await runStep('main', job, { ...inputEnv({ ...inputs, ...extra }), ...env });
    const files = await Promise.all([job.output, job.summary, job.state].map((f) => readFile(f, 'utf8')));
    return { ...r, outputs: parseCommandFile(files[0]!), written: files.join('\n') };
  };
  return { oss, issuer, sts, ws, run };
}

test('OIDC sign-in: credentials are fetched, masked, used on every request and refreshed before expiry', async (t) => {
  // each set lives 4 s, so it is replaced after 2 s; six parts delayed 700 ms each take longer than that
  const { oss, issuer, sts, ws, run } = await setup(t, 4000);
  await randomFile(join(ws, 'dist'), 'app.tar', 600 * KiB);
  await randomFile(join(ws, 'dist'), 'notes.txt', 3 * KiB);
  oss.addFault({ operation: 'UploadPart', times: 6, action: { type: 'delay', ms: 700 } });

  const r = await run({ 'role-session-name': 'release-42', 'role-duration': '15m' });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.outputs['uploaded-count'], '2');

  // STS got what AssumeRoleWithOIDC needs, with a fresh GitHub ID token of the right audience each time
  assert.ok(sts.issued.length >= 2, `sets issued: ${sts.issued.length}`);
  assert.ok(
    sts.issued.length < oss.requests.length / 2,
    `not one per request: ${sts.issued.length} sets for ${oss.requests.length} requests`,
  );
  assert.equal(issuer.issued.length, sts.requests.length);
  assert.ok(issuer.issued.every((c) => c.aud === 'sts.aliyuncs.com'));
  for (const q of sts.requests) {
    assert.equal(q.status, 200);
    assert.equal(q.form.RoleArn, ROLE);
    assert.equal(q.form.OIDCProviderArn, PROVIDER);
    assert.equal(q.form.RoleSessionName, 'release-42');
    assert.equal(q.form.DurationSeconds, '900');
  }
  assert.match(
    r.stdout,
    /signed in with OIDC as acs:ram::1234567890123456:role\/github-deploy \(session release-42\)/,
  );
  assert.match(r.stdout, /refreshed the credentials with OIDC/);

  // the server saw the issued key and its security token on every request, and more than one set in use
  const byKey = new Map(sts.issued.map((c) => [c.accessKeyId, c.securityToken]));
  assert.ok(oss.requests.length > 0);
  for (const q of oss.requests) {
    // (a HEAD answering 404 is skip-unchanged finding no stored copy)
    const expected = q.operation === 'HeadObject' ? 404 : 200;
    assert.equal(q.status, expected, `${q.operation} ${q.code ?? ''}`);
    assert.equal(q.securityToken, byKey.get(q.accessKeyId!), q.operation);
  }
  assert.ok(new Set(oss.requests.map((q) => q.securityToken)).size >= 2, 'requests moved to the new set');

  // masked before use, and printed nowhere else
  for (const c of sts.issued) {
    for (const secret of [c.accessKeyId, c.accessKeySecret, c.securityToken]) {
      assert.match(r.stdout, new RegExp(`^::add-mask::${secret.replace(/\./g, '\\.')}$`, 'm'));
      const elsewhere = (r.stdout + r.stderr + r.written).split(`::add-mask::${secret}`).join('');
      assert.equal(elsewhere.includes(secret), false, `${secret.slice(0, 8)}… printed`);
    }
  }
});

test('OIDC refusals fail the step at once and say what to fix', async (t) => {
  const { oss, run } = await setup(t);
  const wrongRole = await run({ 'role-arn': 'acs:ram::1234567890123456:role/other' });
  assert.equal(wrongRole.code, 1);
  assert.match(
    wrongRole.stdout,
    /::error::OIDC sign-in: STS AssumeRoleWithOIDC refused role acs:ram::1234567890123456:role\/other .*EntityNotExist\.Role \(404\).*RequestId [0-9A-F]{16}.*Check the role's trust policy/,
  );
  const wrongAudience = await run({ 'oidc-audience': 'https://github.com/someone' });
  assert.equal(wrongAudience.code, 1);
  assert.match(wrongAudience.stdout, /AuthenticationFail\.OIDCToken\.Invalid/);

  const noPermission = await run({}, {});
  assert.equal(noPermission.code, 1);
  assert.match(
    noPermission.stdout,
    /::error::OIDC sign-in: could not get the GitHub ID token \(.*ACTIONS_ID_TOKEN_REQUEST_URL.*\)\. The job needs `permissions: id-token: write`/,
  );
  assert.equal(oss.requests.length, 0, 'nothing reached OSS');
});
