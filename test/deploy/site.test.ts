// Static sites as their owners run them, over real HTTP to our server: per-file header rules in one step,
// pages published after the assets they name, a grace period for orphans, and the changed and deleted keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/action/main.ts';
import { EXIT, runCli } from '../../src/cli/main.ts';
import { clientFor } from '../helpers/client.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { capture, site, writeTree } from './harness.ts';

const T = { timeout: 120_000 };
const SITE = {
  'index.html': '<p>home</p>',
  'docs/guide.html': '<p>guide</p>',
  'assets/app.3f9a.js': 'console.log(1)',
  'assets/app.3f9a.css': 'p{}',
  'assets/logo.svg': '<svg/>',
  'manifest.webmanifest': '{}',
};
const RULES = `
- glob: '**'
  cache-control: public, max-age=300
- glob: assets
  cache-control: public, max-age=31536000, immutable
  x-oss-meta-kind: asset
- glob: '**/*.html'
  cache-control: no-cache
- glob: assets/*.svg
  content-disposition: inline
  acl: public-read
`;

async function headersOf(server: Parameters<typeof clientFor>[0], key: string) {
  const client = clientFor(server);
  try {
    return (await client.headObject({ bucket: 'test-bucket', key })).headers;
  } finally {
    await client.close();
  }
}

test('rules give each file its headers in one step; the last matching rule wins per field', T, async (t) => {
  const { server, ws, inputs, env } = await site(t, 0);
  await writeTree(ws, SITE);
  const c = capture({ ...inputs, rules: RULES }, env);
  await run({ io: c.io });
  assert.equal(c.outputs['uploaded-count'], '6');
  const h = async (k: string) => headersOf(server, `web/${k}`);
  assert.equal((await h('index.html'))['cache-control'], 'no-cache', 'rule 3 over rule 1');
  assert.equal((await h('docs/guide.html'))['cache-control'], 'no-cache');
  const manifest = await h('manifest.webmanifest');
  assert.equal(manifest['cache-control'], 'public, max-age=300');
  assert.equal(manifest['content-type'], 'application/manifest+json; charset=utf-8', 'from mime-db');
  const js = await h('assets/app.3f9a.js');
  assert.equal(js['cache-control'], 'public, max-age=31536000, immutable', 'a directory pattern covers it');
  assert.equal(js['x-oss-meta-kind'], 'asset');
  assert.equal(js['content-type'], 'text/javascript; charset=utf-8');
  const svg = await h('assets/logo.svg');
  assert.equal(svg['content-disposition'], 'inline', 'rule 4 adds a field, rule 2 keeps its others');
  assert.equal(svg['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal(svg['x-oss-meta-kind'], 'asset');
  const client = clientFor(server);
  t.after(() => client.close());
  assert.equal(
    await client.getObjectAcl({ bucket: 'test-bucket', key: 'web/assets/logo.svg' }),
    'public-read',
  );

  // the engine compares the per-file headers: the same rules change nothing, a changed rule only headers
  const same = capture({ ...inputs, rules: RULES }, env);
  await run({ io: same.io });
  assert.equal(same.outputs['skipped-count'], '6');
  assert.deepEqual(JSON.parse(same.outputs['changed-keys']!), []);
  const changed = capture({ ...inputs, rules: RULES.replace('no-cache', 'no-store') }, env);
  await run({ io: changed.io });
  assert.equal(changed.outputs['updated-count'], '2');
  assert.deepEqual((JSON.parse(changed.outputs['changed-keys']!) as string[]).sort(), [
    'web/docs/guide.html',
    'web/index.html',
  ]);
  assert.equal((await h('index.html'))['cache-control'], 'no-store');
});

test(
  'the line form and the command line: --rule lines and a --rules file give the same headers',
  T,
  async (t) => {
    const { server, ws, dir } = await site(t, 0);
    await writeTree(ws, SITE);
    const lines = [
      '**/*.html: cache-control=no-cache, content-type=text/html; charset=utf-8',
      'assets/**: cache-control=public, max-age=31536000, immutable, x-oss-meta-kind=asset',
    ];
    const cli = async (args: string[]) => {
      const out: string[] = [];
      const code = await runCli({
        argv: [
          join(ws, 'site'),
          '--bucket',
          'test-bucket',
          '--endpoint',
          server.url,
          '--progress',
          'none',
          ...args,
        ],
        env: { OSS_ACCESS_KEY_ID: 'test-ak', OSS_ACCESS_KEY_SECRET: 'test-sk', HOME: dir },
        stdout: (x) => out.push(x),
        stderr: (x) => out.push(x),
        isTty: false,
        version: 'test',
      });
      return { code, out: out.join('') };
    };
    const first = await cli(['--destination', 'a', ...lines.flatMap((l) => ['--rule', l])]);
    assert.equal(first.code, EXIT.ok, first.out);
    const file = join(dir, 'rules.txt');
    await writeFile(file, `# pages, then assets\n${lines.join('\n')}\n`);
    const second = await cli(['--destination', 'b', '--rules', file]);
    assert.equal(second.code, EXIT.ok, second.out);
    for (const prefix of ['a', 'b']) {
      const js = await headersOf(server, `${prefix}/assets/app.3f9a.js`);
      assert.equal(js['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal(js['x-oss-meta-kind'], 'asset');
      assert.equal((await headersOf(server, `${prefix}/index.html`))['cache-control'], 'no-cache');
    }
    const bad = await cli(['--rule', '**/*.html: cache-control=no-cache', '--rule', 'assets/**: acl=open']);
    assert.equal(bad.code, EXIT.usage);
    assert.match(
      bad.out,
      /`--rules`\/`--rule`: rule 2 \(`assets\/\*\*`\): `acl` got `open`; allowed `private`, `public-read`/,
    );
  },
);

test('a bad rule names its index, the field and what is allowed, before anything is sent', T, async (t) => {
  const { server, ws, inputs, env } = await site(t, 1);
  await writeTree(ws, SITE);
  const cases: Array<[string, RegExp]> = [
    [
      '- glob: "**"\n  cache-control: x\n- glob: "*.js"\n  colour: red',
      /rule 2 \(`\*\.js`\): unknown field `colour`; allowed cache-control, content-type/,
    ],
    ['**: storage-class=Cold', /rule 1 \(`\*\*`\): `storage-class` got `Cold`; allowed `Standard`, `IA`/],
    ['**/*.html cache-control=no-cache', /rule 1: .* has no `: ` after its pattern/],
    ['- glob: "*.html"', /rule 1 \(`\*\.html`\): no field is set/],
    ['- cache-control: no-cache', /rule 1: `glob` is missing/],
  ];
  for (const [rules, message] of cases) {
    server.clearRequests();
    const c = capture({ ...inputs, rules }, env);
    await assert.rejects(run({ io: c.io }), (e: Error) => {
      assert.match(e.message, /^input `rules`: /);
      assert.match(e.message, message);
      return true;
    });
    assert.equal(server.requests.length, 0);
  }
});

test(
  'publish-last: pages go up after every asset is stored, and not at all when an asset failed',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, SITE);
    const c = capture(inputs, env);
    await run({ io: c.io });
    const puts = server.requests.filter((r) => r.operation === 'PutObject').map((r) => r.key!);
    const firstPage = puts.findIndex((k) => k.endsWith('.html'));
    assert.equal(firstPage, 4, `assets first, then the pages: ${puts.join(', ')}`);
    assert.ok(puts.slice(firstPage).every((k) => k.endsWith('.html')));

    // a new build whose asset fails: the stored pages keep naming the old assets, which are still there
    await writeTree(ws, { 'index.html': '<p>home, new build</p>', 'assets/app.77aa.js': 'console.log(2)' });
    server.clearRequests();
    server.addFault({
      operation: 'PutObject',
      key: 'web/assets/app.77aa.js',
      times: Infinity,
      action: { type: 'error', status: 400, code: 'InvalidArgument' },
    });
    const failed = capture({ ...inputs, 'delete-orphans': 'true' }, env);
    await assert.rejects(run({ io: failed.io }), /1 of 7 upload\(s\) failed/);
    assert.equal(server.requests.filter((r) => r.key === 'web/index.html' && r.method === 'PUT').length, 0);
    assert.ok(
      failed.warnings.some((w) =>
        /publish-last: 2 file\(s\) not sent because an earlier file failed/.test(w),
      ),
    );
    assert.match(failed.summary.join(''), /held back/);
    assert.equal(failed.outputs['deleted-count'], '0', 'nothing deleted for an incomplete deploy');

    // opting out sends everything in one window
    const any = capture({ ...inputs, 'publish-last': 'false', 'skip-unchanged': 'false' }, env);
    server.clearRequests();
    await assert.rejects(run({ io: any.io }), /1 of 7 upload\(s\) failed/);
    assert.ok(server.requests.some((r) => r.key === 'web/index.html' && r.method === 'PUT'));
  },
);

test(
  'orphans younger than delete-orphans-min-age are kept and counted; deleted keys are an output',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, SITE);
    const client = clientFor(server);
    t.after(() => client.close());
    await client.putObject({ bucket: 'test-bucket', key: 'web/assets/app.old1.js', body: bufferBody('old') });
    // LastModified has whole seconds: the second orphan is at least 2 s younger
    await new Promise((r) => setTimeout(r, 3100));
    await client.putObject({
      bucket: 'test-bucket',
      key: 'web/assets/app.old2.js',
      body: bufferBody('newer'),
    });
    const c = capture({ ...inputs, 'delete-orphans': 'true', 'delete-orphans-min-age': '2s' }, env);
    await run({ io: c.io });
    assert.deepEqual(JSON.parse(c.outputs['deleted-keys']!), ['web/assets/app.old1.js']);
    assert.equal(c.outputs['orphans-kept-count'], '1');
    assert.match(c.summary.join(''), /1 orphan\(s\) kept for their age/);
    assert.equal((JSON.parse(c.outputs['changed-keys']!) as string[]).length, 6);
    const left = (await client.listObjects({ bucket: 'test-bucket', prefix: 'web/assets/app.old' })).map(
      (o) => o.key,
    );
    assert.deepEqual(left, ['web/assets/app.old2.js']);
  },
);

test('orphan ages are read on the server clock, not the runner clock', T, async (t) => {
  // the server's clock is an hour ahead: what it just stored is an hour old to it, fresh to the runner
  const { server, ws, inputs, env } = await site(t, 0, { clockOffsetMs: 3_600_000 });
  await writeTree(ws, { 'index.html': 'x' });
  const client = clientFor(server);
  t.after(() => client.close());
  await client.putObject({ bucket: 'test-bucket', key: 'web/gone.js', body: bufferBody('x') });
  const c = capture({ ...inputs, 'delete-orphans': 'true', 'delete-orphans-min-age': '30m' }, env);
  await run({ io: c.io });
  assert.deepEqual(JSON.parse(c.outputs['deleted-keys']!), ['web/gone.js']);
  assert.equal(c.outputs['orphans-kept-count'], '0');
});
