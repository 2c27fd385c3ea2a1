// CDN and DCDN refresh after a deploy, against the stand-in (its own signature checks, a daily quota), with
// the deploy run as the action runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/action/main.ts';
import { cdnUrl } from '../../src/deploy/cdn-refresh.ts';
import { type CdnStandInOptions, startCdnStandIn } from '../../src/server/index.ts';
import { clientFor } from '../helpers/client.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { capture, site } from './harness.ts';

const T = { timeout: 120_000 };

async function withCdn(t: Parameters<typeof site>[0], count: number, options: CdnStandInOptions = {}) {
  const s = await site(t, count);
  const cdn = await startCdnStandIn(options);
  t.after(() => cdn.close());
  const inputs = { ...s.inputs, 'cdn-domain': 'static.example.com', 'cdn-endpoint': cdn.url };
  return { ...s, cdn, inputs };
}

const refreshes = (cdn: {
  requests: Array<{ action: string | undefined; status: number; urls: string[] }>;
}) =>
  cdn.requests.filter((r) => r.action === 'RefreshObjectCaches' || r.action === 'RefreshDcdnObjectCaches');

test('the URLs of changed and deleted keys are refreshed; unchanged keys are not', T, async (t) => {
  const { server, ws, cdn, inputs, env } = await withCdn(t, 3);
  await run({ io: capture(inputs, env).io });
  assert.deepEqual(
    refreshes(cdn)[0]!.urls.sort(),
    [0, 1, 2].map((i) => `https://static.example.com/web/f${i}.html`),
  );

  const client = clientFor(server);
  t.after(() => client.close());
  await client.putObject({ bucket: 'test-bucket', key: 'web/old page.html', body: bufferBody('old') });
  await writeFile(join(ws, 'site', 'f1.html'), '<p>a longer page</p>\n');
  cdn.requests.length = 0;
  const c = capture({ ...inputs, 'delete-orphans': 'true', 'cdn-product': 'dcdn' }, env);
  await run({ io: c.io });
  assert.deepEqual(JSON.parse(c.outputs['changed-keys']!), ['web/f1.html']);
  assert.deepEqual(JSON.parse(c.outputs['deleted-keys']!), ['web/old page.html']);
  const [sent] = refreshes(cdn);
  assert.equal(sent!.action, 'RefreshDcdnObjectCaches');
  assert.deepEqual(sent!.urls, [
    'https://static.example.com/web/f1.html',
    'https://static.example.com/web/old%20page.html',
  ]);
  assert.equal(c.outputs['cdn-refreshed-count'], '2');
  assert.match(c.summary.join(''), /2 URL\(s\) refreshed on DCDN/);
});

test(
  '2,500 changed keys go in 3 requests, with a warning when they come within 10% of the quota',
  T,
  async (t) => {
    const { cdn, inputs, env } = await withCdn(t, 2500, { dailyUrlQuota: 2700 });
    const c = capture({ ...inputs, 'publish-last': 'false' }, env);
    await run({ io: c.io });
    assert.deepEqual(
      refreshes(cdn).map((r) => r.urls.length),
      [1000, 1000, 500],
    );
    assert.equal(c.outputs['cdn-refreshed-count'], '2500');
    assert.ok(
      c.warnings.some((w) => /2500 URL\(s\) to refresh come within 10% of the 2700 left/.test(w)),
      c.warnings.join('\n'),
    );
  },
);

test(
  'a quota too small is announced, and the refused refresh fails the step after the uploads',
  T,
  async (t) => {
    const { server, cdn, inputs, env } = await withCdn(t, 5, { dailyUrlQuota: 3 });
    const c = capture(inputs, env);
    await assert.rejects(run({ io: c.io }), (e: Error) => {
      assert.match(
        e.message,
        /the objects are uploaded and stored, but CDN refresh of 5 URL\(s\) failed .*QuotaExceeded/,
      );
      return true;
    });
    assert.ok(c.warnings.some((w) => /5 URL\(s\) to refresh, but only 3 of today's 3 remain/.test(w)));
    assert.equal(c.outputs['uploaded-count'], '5', 'the outputs are set before the step fails');
    assert.equal(server.requests.filter((r) => r.operation === 'PutObject').length, 5);
    assert.equal(refreshes(cdn).length, 1);
  },
);

test('a wrong secret is refused by the CDN: the step fails, saying the objects are stored', T, async (t) => {
  const { cdn, inputs, env } = await withCdn(t, 2, {
    credentials: [{ accessKeyId: 'test-ak', accessKeySecret: 'another-secret' }],
  });
  const c = capture(inputs, env);
  await assert.rejects(
    run({ io: c.io }),
    /: the objects are uploaded and stored, but CDN refresh of 2 URL\(s\) failed after 0 were accepted: SignatureDoesNotMatch/,
  );
  assert.equal(c.outputs['uploaded-count'], '2');
  assert.ok(refreshes(cdn).every((r) => r.status !== 200));
});

test('dry-run lists the URLs it would refresh and sends no refresh', T, async (t) => {
  const { cdn, inputs, env } = await withCdn(t, 2);
  const c = capture({ ...inputs, 'dry-run': 'true' }, env);
  await run({ io: c.io });
  assert.equal(refreshes(cdn).length, 0);
  assert.ok(
    c.lines.includes('dry run: would refresh https://static.example.com/web/f0.html'),
    c.lines.join('\n'),
  );
  assert.deepEqual(JSON.parse(c.outputs['changed-keys']!), ['web/f0.html', 'web/f1.html']);
  assert.equal(c.outputs['cdn-refreshed-count'], '0');
});

test('CDN URLs percent-encode each segment of the key', () => {
  assert.equal(
    cdnUrl('a.example.com', 'dir/页 1/x+y?.html'),
    'https://a.example.com/dir/%E9%A1%B5%201/x%2By%3F.html',
  );
});

test('bad CDN settings name the input and what is allowed', T, async (t) => {
  const { inputs, env } = await withCdn(t, 1);
  for (const [extra, message] of [
    [
      { 'cdn-domain': 'https://static.example.com/path' },
      /input `cdn-domain`: got .*; allowed the accelerated domain name/,
    ],
    [{ 'cdn-product': 'akamai' }, /input `cdn-product`: got `akamai`; allowed `cdn`, `dcdn`/],
    [{ 'cdn-endpoint': 'ftp://x' }, /input `cdn-endpoint`: got `ftp:\/\/x`; allowed an http\(s\) URL/],
  ] as const) {
    await assert.rejects(run({ io: capture({ ...inputs, ...extra }, env).io }), message);
  }
});
