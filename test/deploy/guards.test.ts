// What the deploy layer refuses or holds back rather than get wrong in silence: orphans and unfinished uploads
// of unknown age (no date, or a server clock not believed), headers skip-unchanged cannot see, rule and
// publish-last patterns that match nothing, role names that leave the credentials path, and a dry run that
// could not check a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/action/main.ts';
import { EXIT, runCli } from '../../src/cli/main.ts';
import { findStaleUploads } from '../../src/engine/index.ts';
import { clientFor } from '../helpers/client.ts';
import { refused, settings } from '../helpers/settings.ts';
import { type HostileHandler, errorXml, startHostile } from '../adversarial/hostile.ts';
import { capture, site, siteWithFreshOrphan, writeTree } from './harness.ts';

const T = { timeout: 30_000 };
const DAY = 86_400_000;

/** Every answer forwarded with `rewrite` applied to listing bodies and `date` (if given) as its Date. */
function relay(rewrite: (xml: string) => string, date?: () => string): HostileHandler {
  return async (req, res, ctx) => {
    const f = await ctx.forward();
    const listing = req.method === 'GET' && (req.query.get('list-type') === '2' || req.query.has('uploads'));
    const body = listing ? Buffer.from(rewrite(f.body.toString('utf8'))) : f.body;
    const { 'transfer-encoding': _te, ...headers } = f.headers;
    res
      .writeHead(f.status, {
        ...headers,
        ...(date ? { date: date() } : {}),
        'content-length': String(body.length),
      })
      .end(body);
    return true;
  };
}

const undatedObjects = (xml: string): string =>
  xml.replace(/<LastModified>[^<]*<\/LastModified>/g, '<LastModified>soon</LastModified>');

test(
  'delete-orphans-min-age: orphans of unknown age are kept, counted and named in a warning',
  T,
  async (t) => {
    const { server, inputs, env } = await siteWithFreshOrphan(t);
    for (const [name, handler, why] of [
      ['no LastModified', relay(undatedObjects), /listed without a valid LastModified/],
      [
        'a clock 3 days behind',
        relay(
          (xml) =>
            xml.replace(
              /<LastModified>([^<]*)<\/LastModified>/g,
              (_, d: string) =>
                `<LastModified>${new Date(Date.parse(d) - 3 * DAY).toISOString()}</LastModified>`,
            ),
          () => new Date(Date.now() - 3 * DAY).toUTCString(),
        ),
        /the server's time .* is 72 h behind this machine's clock/,
      ],
    ] as const) {
      const hostile = await startHostile(handler, server.url);
      t.after(() => hostile.close());
      const c = capture(
        { ...inputs, endpoint: hostile.url, 'delete-orphans': 'true', 'delete-orphans-min-age': '1h' },
        env,
      );
      await run({ io: c.io });
      assert.equal(c.outputs['deleted-count'], '0', name);
      assert.equal(c.outputs['orphans-kept-count'], '1', name);
      const warning = c.warnings.find((w) => /age is not known/.test(w)) ?? '';
      assert.match(warning, why, `${name}: ${c.warnings.join('\n')}`);
      assert.match(warning, /web\/fresh\.js/, name);
    }
    // without a grace period, age does not matter: the orphan goes whatever the listing says of its date
    const hostile = await startHostile(relay(undatedObjects), server.url);
    t.after(() => hostile.close());
    const c = capture({ ...inputs, endpoint: hostile.url, 'delete-orphans': 'true' }, env);
    await run({ io: c.io });
    assert.deepEqual(JSON.parse(c.outputs['deleted-keys']!), ['web/fresh.js']);
  },
);

test(
  'abort-stale-uploads: an upload of unknown age (no Initiated, or a clock not believed) is kept',
  T,
  async (t) => {
    const { server } = await site(t, 0);
    const direct = clientFor(server);
    t.after(() => direct.close());
    const { uploadId } = await direct.initiateMultipartUpload({ bucket: 'test-bucket', key: 'web/live.bin' });
    for (const [name, handler, why] of [
      [
        'no Initiated',
        relay((xml) => xml.replace(/<Initiated>[^<]*<\/Initiated>/g, '<Initiated>later</Initiated>')),
        /without a valid Initiated time/,
      ],
      [
        'a clock 3 days behind',
        relay(
          (xml) =>
            xml.replace(
              /<Initiated>([^<]*)<\/Initiated>/g,
              (_, d: string) => `<Initiated>${new Date(Date.parse(d) - 3 * DAY).toISOString()}</Initiated>`,
            ),
          () => new Date(Date.now() - 3 * DAY).toUTCString(),
        ),
        /72 h behind/,
      ],
    ] as const) {
      const hostile = await startHostile(handler, server.url);
      t.after(() => hostile.close());
      const client = clientFor(hostile);
      t.after(() => client.close());
      const notices: string[] = [];
      const stale = await findStaleUploads({
        client,
        bucket: 'test-bucket',
        prefix: 'web/',
        olderThanMs: DAY,
        owned: new Set(),
        onNotice: (m) => notices.push(m),
      });
      assert.deepEqual(stale, [], `${name}: a seconds-old upload was found stale`);
      assert.match(notices.join('\n'), why, name);
    }
    assert.deepEqual(
      (await direct.listMultipartUploads({ bucket: 'test-bucket' })).map((u) => u.uploadId),
      [uploadId],
    );
  },
);

test(
  'skip-unchanged: content-language and expires are compared both ways, encryption when set',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'index.html': '<p>home</p>' });
    const deployWith = async (extra: Record<string, string>) => {
      const c = capture({ ...inputs, ...extra }, env);
      await run({ io: c.io });
      return c.outputs;
    };
    const set = { rules: '**: content-language=en, expires=Thu, 01 Jan 2099 00:00:00 GMT' };
    await deployWith(set);
    assert.equal((await deployWith(set))['skipped-count'], '1', 'the same headers again: unchanged');
    const dry = await deployWith({ 'dry-run': 'true' });
    assert.equal(dry['updated-count'], '1', 'the dry run sees the headers the run no longer sets');
    assert.equal((await deployWith({}))['updated-count'], '1');
    const client = clientFor(server);
    t.after(() => client.close());
    const h = (await client.headObject({ bucket: 'test-bucket', key: 'web/index.html' })).headers;
    assert.deepEqual([h['content-language'], h.expires], [undefined, undefined]);
    // a server that states the encryption in another case has it all the same
    assert.equal(
      (await deployWith({ headers: 'x-oss-server-side-encryption: aes256' }))['updated-count'],
      '1',
    );
    const again = await deployWith({ headers: 'x-oss-server-side-encryption: AES256' });
    assert.equal(again['skipped-count'], '1');
  },
);

test('x-oss-tagging with skip-unchanged is refused naming the input; without skip-unchanged it is taken', () => {
  const fromHeaders = refused({ headers: 'x-oss-tagging: team=web' });
  assert.equal(fromHeaders.input, 'headers');
  assert.match(fromHeaders.message, /input `headers`: sets `x-oss-tagging` while `skip-unchanged` is on/);
  assert.match(fromHeaders.message, /allowed with `skip-unchanged` turned off/);
  const fromRules = refused({ rules: '**: cache-control=no-cache\nassets/**: x-oss-tagging=kind=asset' });
  assert.equal(fromRules.input, 'rules');
  assert.match(fromRules.message, /rule 2 \(`assets\/\*\*`\) sets `x-oss-tagging`/);
  assert.match(fromRules.cli, /^`--rules`\/`--rule`: rule 2 .* while `--skip-unchanged` is on/);
  const taken = settings({ headers: 'x-oss-tagging: team=web', 'skip-unchanged': 'false' });
  assert.equal(taken.headers['x-oss-tagging'], 'team=web');
});

test('rules and publish-last: a leading `/` is refused naming the input, the line and the pattern', () => {
  const rule = refused({ rules: '**: cache-control=no-cache\n/assets/**: cache-control=immutable' });
  assert.equal(rule.input, 'rules');
  assert.match(rule.message, /rule 2: the pattern `\/assets\/\*\*` starts with `\/`.*write `assets\/\*\*`/);
  const yaml = refused({ rules: "- glob: '/assets/**'\n  cache-control: immutable" });
  assert.match(yaml.message, /rule 1: the pattern `\/assets\/\*\*` starts with `\/`/);
  const last = refused({ 'publish-last': '**/*.html\n/index.html' });
  assert.equal(last.input, 'publish-last');
  assert.match(last.message, /input `publish-last`: line 2: the pattern `\/index\.html` starts with `\/`/);
});

test(
  'rules and publish-last lines that match no file are named in a warning; the default publish-last is not',
  T,
  async (t) => {
    const { ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'index.html': 'x', 'assets/app.js': 'y' });
    const c = capture(
      {
        ...inputs,
        rules: '**: cache-control=no-cache\nfonts/**: cache-control=immutable',
        'publish-last': 'index.html\npages/**',
      },
      env,
    );
    await run({ io: c.io });
    assert.deepEqual(
      c.warnings.filter((w) => /matched no file/.test(w)).map((w) => w.replace(/;.*/, '')),
      [
        'rules: rule 2 (`fonts/**`) matched no file, so it sets no header this run',
        'publish-last: line 2 (`pages/**`) matched no file',
      ],
    );
    const plain = capture({ ...inputs, path: 'site/assets' }, env);
    await run({ io: plain.io });
    assert.deepEqual(
      plain.warnings.filter((w) => /matched no file/.test(w)),
      [],
      'the default **/*.html on a tree without pages',
    );
  },
);

test('ecs-ram-role: names without a letter or digit are refused naming the input', () => {
  for (const role of ['..', '.', '...', '-', '.-.']) {
    const r = refused({ 'ecs-ram-role': role });
    assert.equal(r.input, 'ecs-ram-role', role);
    assert.match(
      r.message,
      /allowed a RAM role name \(1-64 letters, digits, `\.` and `-`, with at least one letter or digit\)/,
    );
  }
  for (const role of ['deploy', 'my.role-2', '.a', '7']) {
    const s = settings({ 'ecs-ram-role': role });
    assert.equal(s.auth.kind === 'ecs' ? s.auth.roleName : undefined, role);
  }
});

test(
  'dry-run: the command line says which files could not be checked and that nothing changed',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'index.html': 'x', 'b.txt': 'b' });
    await run({ io: capture(inputs, env).io });
    const hostile = await startHostile((req, res) => {
      if (req.method === 'GET' && req.query.get('list-type') === '2') {
        res.writeHead(403).end(errorXml('AccessDenied'));
        return true;
      }
      if (req.method === 'HEAD' && req.path.endsWith('/index.html')) {
        res.writeHead(500).end();
        return true;
      }
      return false;
    }, server.url);
    t.after(() => hostile.close());
    const out: string[] = [];
    const err: string[] = [];
    const dry = await runCli({
      argv: [
        `${ws}/site`,
        '--bucket',
        'test-bucket',
        '--endpoint',
        hostile.url,
        '--destination',
        'web',
        '--dry-run',
      ],
      env: { OSS_ACCESS_KEY_ID: 'test-ak', OSS_ACCESS_KEY_SECRET: 'test-sk', HOME: ws },
      stdout: (x) => out.push(x),
      stderr: (x) => err.push(x),
      isTty: false,
      version: 'test',
    });
    assert.equal(dry, EXIT.failed);
    const stderr = err.join('');
    assert.match(
      stderr,
      /dry run: 1 of 2 file\(s\) could not be checked \(nothing was changed\):\nweb\/index\.html: InternalError \(500\)/,
    );
    assert.doesNotMatch(stderr, /upload\(s\) failed/);
    assert.match(out.join(''), /1 unchanged, 1 could not be checked/);
  },
);
