// The deploy as the action runs it, in-process: inputs from a map, outputs, summary and log captured. Real HTTP
// to our server on 127.0.0.1, real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/action/main.ts';
import { summaryHtml, SUMMARY_ROWS, totals } from '../../src/deploy/report.ts';
import { NO_CLEANUP } from '../../src/deploy/cleanup.ts';
import { clientFor } from '../helpers/client.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { capture, site } from './harness.ts';

const T = { timeout: 120_000 };

test(
  'a wrong secret with 300 files stops at the first answer with one error that says what to check',
  T,
  async (t) => {
    const { server, inputs, env } = await site(t, 300);
    for (const extra of [{}, { 'skip-unchanged': 'false' }] as Array<Record<string, string>>) {
      server.clearRequests();
      const c = capture({ ...inputs, ...extra, 'access-key-secret': 'wrong-secret' }, env);
      await assert.rejects(run({ io: c.io }), (e: Error) => {
        c.errors.push(e.message); // the entry makes the thrown error the step's one annotation
        return true;
      });
      assert.equal(c.errors.length, 1, c.errors.join('\n'));
      assert.match(c.errors[0]!, /SignatureDoesNotMatch.*check the AccessKey secret/);
      assert.ok(
        server.requests.length <= 2,
        `${server.requests.length} requests for ${JSON.stringify(extra)}`,
      );
      assert.ok(c.lines.length < 10, c.lines.join('\n'));
    }
  },
);

test(
  'plan first: a first deploy sends no HEAD; an unchanged redeploy sends one listing and a HEAD per same-size file',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 20);
    const first = capture(inputs, env);
    await run({ io: first.io });
    assert.equal(first.outputs['uploaded-count'], '20');
    const ops = () => server.requests.map((r) => r.operation);
    assert.equal(ops().filter((o) => o === 'HeadObject').length, 0, 'new keys are not checked');
    assert.equal(ops().filter((o) => o === 'ListObjects').length, 1);

    server.clearRequests();
    await writeFile(join(ws, 'site', 'f0.html'), '<p>a longer page</p>\n');
    const again = capture(inputs, env);
    await run({ io: again.io });
    assert.equal(again.outputs['uploaded-count'], '1');
    assert.equal(again.outputs['skipped-count'], '19');
    assert.equal(
      ops().filter((o) => o === 'HeadObject').length,
      19,
      'the resized file is sent without a check',
    );
    assert.equal(ops().filter((o) => o === 'PutObject').length, 1);
  },
);

test(
  'dry-run changes nothing on the server and its outputs, log and summary say what would happen',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 5);
    await run({ io: capture(inputs, env).io });
    const client = clientFor(server);
    t.after(() => client.close());
    await client.putObject({ bucket: 'test-bucket', key: 'web/old.html', body: bufferBody('old') });
    await writeFile(join(ws, 'site', 'f0.html'), '<p>a longer page</p>\n'); // would upload
    await writeFile(join(ws, 'site', 'f1.html'), '<p>X</p>\n'); // same size, other bytes: would upload
    await writeFile(join(ws, 'site', 'new.html'), 'new'); // would upload (new)
    const state = async () => {
      const listed = await client.listObjects({ bucket: 'test-bucket' });
      return Promise.all(
        listed.map(async (o) => ({
          ...o,
          // what the object is, not when it was asked for
          head: Object.entries((await client.headObject({ bucket: 'test-bucket', key: o.key })).headers)
            .filter(([k]) => !['date', 'x-oss-request-id'].includes(k))
            .sort(),
        })),
      );
    };
    const before = await state();
    server.clearRequests();
    const c = capture(
      { ...inputs, 'dry-run': 'true', 'delete-orphans': 'true', 'cache-control': 'no-cache' },
      env,
    );
    await run({ io: c.io });
    assert.deepEqual(
      server.requests.filter((r) => !['GET', 'HEAD'].includes(r.method)).map((r) => r.operation),
      [],
      'only reads',
    );
    assert.deepEqual(await state(), before, 'listing and every header as before');
    assert.equal(c.outputs['uploaded-count'], '3');
    assert.equal(c.outputs['updated-count'], '3', 'the others would get the new Cache-Control');
    assert.equal(c.outputs['deleted-count'], '0');
    assert.deepEqual(JSON.parse(c.outputs.orphans!), ['web/old.html']);
    assert.ok(c.lines.some((l) => /dry run: would upload \(new\) web\/new\.html/.test(l)));
    assert.ok(c.lines.some((l) => /dry run: would update headers web\/f2\.html/.test(l)));
    assert.match(c.summary.join(''), /dry run: nothing changed/);
  },
);

test('3,000 files: about one log line per file', T, async (t) => {
  const { inputs, env } = await site(t, 3000);
  const c = capture(inputs, env);
  await run({ io: c.io });
  assert.equal(c.outputs['uploaded-count'], '3000');
  assert.ok(c.lines.length <= 3000 + 5, `${c.lines.length} lines`);
});

test('the summary stays under 1 MiB for 10,000 files and a failed row has every cell closed', () => {
  const rows = Array.from({ length: 10_000 }, (_, i) => ({
    file: `/ws/site/d${i % 100}/<b>f${i}.html`,
    key: `web/d${i % 100}/<b>f${i}.html`,
    size: 100,
    result: i === 9999 ? 'failed' : 'uploaded (crc64)',
    seconds: 0.1,
  }));
  const html = summaryHtml({
    bucket: 'b',
    destination: 'web',
    cwd: '/ws',
    dryRun: false,
    rows,
    totals: totals([], () => ''),
    cleanup: NO_CLEANUP,
  });
  assert.ok(Buffer.byteLength(html) < 1024 * 1024, `${Buffer.byteLength(html)} bytes`);
  assert.equal(html.match(/<tr>/g)!.length, SUMMARY_ROWS + 1);
  assert.match(html, /and 9700 more file\(s\)/);
  assert.match(html, /oss:\/\/b\/web/);
  const failed = html.split('\n').find((l) => l.includes('<td>failed</td>'))!;
  assert.match(
    failed,
    /^<tr><td>site\/d99\/&#60;b&#62;f9999\.html<\/td><td>[^<]*<\/td><td>[^<]*<\/td><td>failed<\/td><td>[^<]*<\/td><td><\/td><\/tr>$/,
  );
  assert.ok(!html.includes('/ws/site'), 'paths are relative to the workspace');
});
