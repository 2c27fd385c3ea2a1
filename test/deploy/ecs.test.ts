// ECS RAM-role sign-in for self-hosted runners on ECS: the instance's role from the metadata stand-in (hardened
// mode), whose issued sets our OSS server and the CDN stand-in accept; nothing else knows a key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { run } from '../../src/action/main.ts';
import { EXIT, runCli } from '../../src/cli/main.ts';
import { startCdnStandIn, startEcsMetadataStandIn } from '../../src/server/index.ts';
import { capture, site } from './harness.ts';

const T = { timeout: 60_000 };

async function onEcs(t: Parameters<typeof site>[0]) {
  const s = await site(t, 3, { credentials: [] });
  const cdn = await startCdnStandIn({ credentials: [] });
  t.after(() => cdn.close());
  const metadata = await startEcsMetadataStandIn({
    roleName: 'runner-role',
    oss: { addCredential: (c) => (s.server.addCredential(c), cdn.addCredential(c)) },
  });
  t.after(() => metadata.close());
  const { 'access-key-id': _id, 'access-key-secret': _secret, ...inputs } = s.inputs;
  return { ...s, cdn, metadata, inputs, env: { ...s.env, OSS_ECS_METADATA_URL: metadata.url } };
}

test(
  'ecs-ram-role auto signs in as the attached role; uploads and the CDN refresh use its STS set',
  T,
  async (t) => {
    const { server, cdn, metadata, inputs, env } = await onEcs(t);
    const masked: string[] = [];
    const c = capture(
      { ...inputs, 'ecs-ram-role': 'auto', 'cdn-domain': 'static.example.com', 'cdn-endpoint': cdn.url },
      env,
    );
    c.io.setSecret = (s) => void masked.push(s);
    await run({ io: c.io });
    assert.equal(c.outputs['uploaded-count'], '3');
    const set = metadata.issued[0]!;
    assert.ok(masked.includes(set.accessKeySecret) && masked.includes(set.securityToken));
    assert.ok(
      server.requests
        .filter((r) => r.operation === 'PutObject')
        .every((r) => r.accessKeyId === set.accessKeyId),
    );
    assert.equal(cdn.requests.at(-1)!.params.SecurityToken, set.securityToken);
    assert.equal(c.outputs['cdn-refreshed-count'], '3');
    assert.ok(c.lines.some((l) => /signed in with the ECS RAM role runner-role/.test(l)));
    assert.ok(
      metadata.requests.every((r) => r.method === 'PUT' || r.token === 'valid'),
      'hardened mode',
    );
  },
);

test('the command line signs in with --ecs-ram-role NAME', T, async (t) => {
  const { ws, dir, metadata, server, env } = await onEcs(t);
  const out: string[] = [];
  const code = await runCli({
    argv: [
      join(ws, 'site'),
      '--bucket',
      'test-bucket',
      '--endpoint',
      server.url,
      '--ecs-ram-role',
      'runner-role',
      '--progress',
      'none',
    ],
    env: { HOME: dir, OSS_ECS_METADATA_URL: env.OSS_ECS_METADATA_URL },
    stdout: (x) => out.push(x),
    stderr: (x) => out.push(x),
    isTty: false,
    version: 'test',
  });
  assert.equal(code, EXIT.ok, out.join(''));
  assert.ok(!out.join('').includes(metadata.issued[0]!.accessKeySecret));
});

test(
  'ecs-ram-role with keys or role-arn is refused naming both; a role the instance lacks fails the sign-in',
  T,
  async (t) => {
    const { inputs, env, server } = await onEcs(t);
    for (const other of ['access-key-id', 'role-arn']) {
      await assert.rejects(
        run({ io: capture({ ...inputs, 'ecs-ram-role': 'auto', [other]: 'x' }, env).io }),
        new RegExp(`Error: input \`ecs-ram-role\`: set, and so is \`${other}\`; allowed one way to sign in`),
      );
    }
    await assert.rejects(
      run({ io: capture({ ...inputs, 'ecs-ram-role': 'bad role!' }, env).io }),
      /input `ecs-ram-role`: got `bad role!`; allowed a RAM role name/,
    );
    server.clearRequests();
    await assert.rejects(
      run({ io: capture({ ...inputs, 'ecs-ram-role': 'other-role' }, env).io }),
      /ECS RAM role sign-in: the credentials request failed \(Http404\): no RAM role named other-role/,
    );
    assert.equal(server.requests.length, 0, 'nothing is sent without credentials');
  },
);
