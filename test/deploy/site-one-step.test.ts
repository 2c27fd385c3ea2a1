// The static-site deploy its owners want, as ONE step over real HTTP: per-file header rules for pages and hashed
// assets, pages published only after every asset is stored, and yesterday's assets kept for their grace period
// while older orphans go; the stored headers are read back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/action/main.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { clientFor } from '../helpers/client.ts';
import { capture, site, writeTree } from './harness.ts';

const RULES = `
- glob: '**/*.html'
  cache-control: no-cache
- glob: assets
  cache-control: public, max-age=31536000, immutable
`;

test(
  'one step: rules for pages and assets, pages last, orphans kept for their grace period',
  { timeout: 60_000 },
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    const client = clientFor(server);
    t.after(() => client.close());
    // yesterday's deploy left two hashed assets the new pages no longer name: one old, one recent
    await client.putObject({ bucket: 'test-bucket', key: 'web/assets/app.0ld.js', body: bufferBody('old') });
    await new Promise((r) => setTimeout(r, 3100)); // LastModified has whole seconds
    await client.putObject({
      bucket: 'test-bucket',
      key: 'web/assets/app.y3st.js',
      body: bufferBody('recent'),
    });
    await writeTree(ws, {
      'index.html': '<script src="assets/app.n3w.js"></script>',
      'blog/post.html': '<link href="../assets/site.n3w.css">',
      'assets/app.n3w.js': 'console.log("new")',
      'assets/site.n3w.css': 'body{}',
    });
    server.clearRequests();

    const c = capture(
      { ...inputs, rules: RULES, 'delete-orphans': 'true', 'delete-orphans-min-age': '2s' },
      env,
    );
    await run({ io: c.io });

    // order: every asset PUT answered before the first page PUT arrived
    const puts = server.requests
      .filter((r) => r.operation === 'PutObject' && r.status === 200)
      .map((r) => r.key!);
    const firstPage = puts.findIndex((k) => k.endsWith('.html'));
    assert.deepEqual(
      puts.slice(0, firstPage).sort(),
      ['web/assets/app.n3w.js', 'web/assets/site.n3w.css'],
      puts.join(', '),
    );
    assert.deepEqual(puts.slice(firstPage).sort(), ['web/blog/post.html', 'web/index.html']);
    // the grace period: the recent orphan stays, the old one goes, after both phases
    assert.deepEqual(JSON.parse(c.outputs['deleted-keys']!), ['web/assets/app.0ld.js']);
    assert.equal(c.outputs['orphans-kept-count'], '1');
    const deleteAt = server.requests.findIndex((r) => r.operation === 'DeleteMultipleObjects');
    const lastPut = server.requests.findLastIndex((r) => r.operation === 'PutObject');
    assert.ok(deleteAt > lastPut, 'orphans are deleted after the pages are up');
    // the headers as stored
    const head = async (key: string) => (await client.headObject({ bucket: 'test-bucket', key })).headers;
    for (const page of ['web/index.html', 'web/blog/post.html']) {
      const h = await head(page);
      assert.equal(h['cache-control'], 'no-cache', page);
      assert.equal(h['content-type'], 'text/html; charset=utf-8', page);
    }
    const js = await head('web/assets/app.n3w.js');
    assert.equal(js['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js['content-type'], 'text/javascript; charset=utf-8');
    assert.equal((await head('web/assets/site.n3w.css'))['content-type'], 'text/css; charset=utf-8');
    const left = (await client.listObjects({ bucket: 'test-bucket', prefix: 'web/assets/' })).map(
      (o) => o.key,
    );
    assert.deepEqual(left.sort(), [
      'web/assets/app.n3w.js',
      'web/assets/app.y3st.js',
      'web/assets/site.n3w.css',
    ]);
  },
);
