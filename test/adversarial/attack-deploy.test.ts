// Attacks on the plan-first deploy layer and the site/release features (rules, publish-last, orphan grace,
// CDN refresh, ECS sign-in, dry-run), as a careless user, a hostile server and a bad clock would. Each test
// asserts the product's promise and fails today; the comment above it says what it shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { run } from '../../src/action/main.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { closeServer, listen } from '../../src/server/http.ts';
import { clientFor } from '../helpers/client.ts';
import { capture, site, siteWithFreshOrphan, writeTree } from '../deploy/harness.ts';
import { errorXml, startHostile } from './hostile.ts';

const T = { timeout: 30_000 };

async function headersOf(server: { url: string }, key: string): Promise<Record<string, string>> {
  const client = clientFor(server);
  try {
    return (await client.headObject({ bucket: 'test-bucket', key })).headers;
  } finally {
    await client.close();
  }
}

// 1. A rule (or `headers`) may set content-language, expires and x-oss-server-side-encryption, and our server
// stores them and returns them on HEAD; but skip-unchanged compares only cache-control, content-disposition,
// content-encoding, content-type, storage class, meta and the ACL. A changed rule for one of the other fields
// on unchanged bytes is reported "unchanged", the step is green, and the bucket keeps the old value (or stays
// unencrypted when encryption is asked for).
test(
  'skip-unchanged: a rule changing content-language, expires or server-side encryption reaches the stored object',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'index.html': '<p>home</p>' });
    const first = capture({ ...inputs, rules: '**: content-language=en' }, env);
    await run({ io: first.io });
    assert.equal((await headersOf(server, 'web/index.html'))['content-language'], 'en');

    const rules = [
      '**: content-language=fr, expires=Thu, 01 Jan 2099 00:00:00 GMT',
      '**: x-oss-server-side-encryption=AES256',
    ].join('\n');
    const again = capture({ ...inputs, rules }, env);
    await run({ io: again.io });
    const h = await headersOf(server, 'web/index.html');
    assert.deepEqual(
      {
        'content-language': h['content-language'],
        expires: h.expires,
        'x-oss-server-side-encryption': h['x-oss-server-side-encryption'],
      },
      {
        'content-language': 'fr',
        expires: 'Thu, 01 Jan 2099 00:00:00 GMT',
        'x-oss-server-side-encryption': 'AES256',
      },
      `a green step with the old headers stored; outputs ${JSON.stringify(again.outputs)}`,
    );
  },
);

// 2. A listing entry whose LastModified is missing or not a date is read as 1970 (`new Date(0)` in
// OssClient.listObjects): the orphan looks 56 years old and is deleted, whatever delete-orphans-min-age says.
// An object of unknown age must be kept (it might be seconds old), not deleted.
test(
  'delete-orphans-min-age: an orphan listed without a valid LastModified is kept, not aged as 1970',
  T,
  async (t) => {
    const { server, inputs, env, client } = await siteWithFreshOrphan(t);
    const hostile = await startHostile(async (req, res, ctx) => {
      if (req.method !== 'GET' || req.query.get('list-type') !== '2') return false;
      const f = await ctx.forward();
      const body = Buffer.from(
        f.body
          .toString('utf8')
          .replace(/<LastModified>[^<]*<\/LastModified>/g, '<LastModified>soon</LastModified>'),
      );
      const { 'transfer-encoding': _te, ...headers } = f.headers;
      res.writeHead(f.status, { ...headers, 'content-length': String(body.length) }).end(body);
      return true;
    }, server.url);
    t.after(() => hostile.close());
    const c = capture(
      { ...inputs, endpoint: hostile.url, 'delete-orphans': 'true', 'delete-orphans-min-age': '1h' },
      env,
    );
    await run({ io: c.io }).catch(() => undefined);
    const left = (await client.listObjects({ bucket: 'test-bucket', prefix: 'web/' })).map((o) => o.key);
    assert.ok(
      left.includes('web/fresh.js'),
      `a seconds-old orphan was deleted: deleted-keys ${c.outputs['deleted-keys']}`,
    );
  },
);

// 3. A bad clock: the server's clock is 3 days behind the runner's (its Date headers and the LastModified it
// stamps agree with each other). OssClient.learnServerTime ignores any offset over 24 h and falls back to the
// runner's clock, while LastModified is still the server's: an orphan the server wrote a moment ago is 3 days
// old to the runner and is deleted despite `delete-orphans-min-age: 1d`. Ages must be taken on one clock
// (when the server's Date is not believed, keep the orphans and say why).
test(
  "delete-orphans-min-age: a server clock days behind the runner's does not make a fresh orphan old",
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'index.html': 'x' });
    const client = clientFor(server);
    t.after(() => client.close());
    await client.putObject({ bucket: 'test-bucket', key: 'web/just-written.js', body: bufferBody('x') });
    const BEHIND = 3 * 86_400_000;
    // a proxy in front of a server whose clock is 3 days slow: every Date and LastModified it writes is
    const hostile = await startHostile(async (req, res, ctx) => {
      const f = await ctx.forward();
      let body = f.body;
      if (req.method === 'GET' && req.query.get('list-type') === '2')
        body = Buffer.from(
          f.body
            .toString('utf8')
            .replace(
              /<LastModified>([^<]*)<\/LastModified>/g,
              (_, d: string) =>
                `<LastModified>${new Date(Date.parse(d) - BEHIND).toISOString()}</LastModified>`,
            ),
        );
      const { 'transfer-encoding': _te, ...headers } = f.headers;
      const date = new Date(Date.now() - BEHIND).toUTCString();
      res.writeHead(f.status, { ...headers, date, 'content-length': String(body.length) }).end(body);
      return true;
    }, server.url);
    t.after(() => hostile.close());
    const c = capture(
      { ...inputs, endpoint: hostile.url, 'delete-orphans': 'true', 'delete-orphans-min-age': '1d' },
      env,
    );
    await run({ io: c.io }).catch(() => undefined);
    const left = (await client.listObjects({ bucket: 'test-bucket', prefix: 'web/' })).map((o) => o.key);
    assert.ok(
      left.includes('web/just-written.js'),
      `an orphan the server stored seconds ago was deleted as older than 1d: ${c.outputs['deleted-keys']}`,
    );
  },
);

// 4. A stale listing: plan-first reuses the listing taken before the uploads to find orphans and their ages.
// An orphan rewritten while the deploy runs (a concurrent deploy, an editor's manual upload) is judged by the
// LastModified it had before, so a seconds-old object is deleted despite delete-orphans-min-age. Before a
// delete the ages must be current (a second listing of the candidates, or a HEAD of each).
test(
  'delete-orphans-min-age: an orphan rewritten during the deploy is judged by its new age, not the stale listing',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'index.html': 'x', 'app.js': 'y' });
    const client = clientFor(server);
    t.after(() => client.close());
    await client.putObject({ bucket: 'test-bucket', key: 'web/banner.js', body: bufferBody('v1') });
    // LastModified has whole seconds: the orphan is at least 3 s old when listed, older than the 2 s grace
    await new Promise((r) => setTimeout(r, 4100));
    let rewritten = false;
    const hostile = await startHostile(async (req) => {
      if (req.method === 'PUT' && !rewritten) {
        rewritten = true;
        await client.putObject({ bucket: 'test-bucket', key: 'web/banner.js', body: bufferBody('v2, new') });
      }
      return false;
    }, server.url);
    t.after(() => hostile.close());
    const c = capture(
      { ...inputs, endpoint: hostile.url, 'delete-orphans': 'true', 'delete-orphans-min-age': '2s' },
      env,
    );
    await run({ io: c.io });
    assert.ok(rewritten);
    const left = (await client.listObjects({ bucket: 'test-bucket', prefix: 'web/' })).map((o) => o.key);
    assert.ok(
      left.includes('web/banner.js'),
      `an object written seconds ago was deleted as an old orphan: ${c.outputs['deleted-keys']}`,
    );
  },
);

// 5. Careless input: a rule whose pattern can never match (written absolute, `/assets/**`, as a web path) is
// accepted and silently does nothing; the step is green and the assets go up without the immutable
// Cache-Control the user asked for. `path` refuses a line that matches no file; `rules` should too (or treat
// the leading `/` as the common root). Either fix passes.
test(
  'rules: a pattern that matches no file (written absolute) is refused naming `rules`, or applied',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'index.html': 'x', 'assets/app.js': 'y' });
    const c = capture(
      { ...inputs, rules: '/assets/**: cache-control=public, max-age=31536000, immutable' },
      env,
    );
    let error: Error | undefined;
    await run({ io: c.io }).catch((e: Error) => (error = e));
    if (error) {
      assert.match(error.message, /rules/);
      assert.match(error.message, /\/assets\/\*\*/);
      return;
    }
    assert.equal(
      (await headersOf(server, 'web/assets/app.js'))['cache-control'],
      'public, max-age=31536000, immutable',
      'green step, and the rule silently matched nothing',
    );
  },
);

// 6. `ecs-ram-role: ..` (or a metadata service listing `..` as the role) passes the role-name check
// /^[A-Za-z0-9.-]{1,64}$/, and the credentials URL `.../security-credentials/..` resolves to
// `/latest/meta-data/ram/`: the request leaves the credentials directory. A role name of dots only is not a
// RAM role name; it must be refused naming the input, before any request goes elsewhere.
test(
  'ecs-ram-role: a role name of `..` is refused naming the input; no metadata request leaves the role path',
  T,
  async (t) => {
    const { inputs, env } = await site(t, 0);
    const paths: string[] = [];
    const metadata = createServer((req, res) => {
      paths.push(`${req.method} ${req.url}`);
      if (req.method === 'PUT' && req.url === '/latest/api/token') return void res.end('tok');
      if (req.url === '/latest/meta-data/ram/security-credentials/') return void res.end('..\n');
      res.writeHead(404).end();
    });
    const port = await listen(metadata);
    t.after(() => closeServer(metadata));
    const { 'access-key-id': _id, 'access-key-secret': _secret, ...keyless } = inputs;
    for (const role of ['..', 'auto']) {
      paths.length = 0;
      const c = capture(
        { ...keyless, 'ecs-ram-role': role },
        { ...env, OSS_ECS_METADATA_URL: `http://127.0.0.1:${port}` },
      );
      await assert.rejects(run({ io: c.io }));
      const outside = paths.filter(
        (p) =>
          p !== 'PUT /latest/api/token' && !/^GET \/latest\/meta-data\/ram\/security-credentials\//.test(p),
      );
      assert.deepEqual(outside, [], `role ${role}: requests outside the credentials path`);
    }
  },
);

// 7. A dry run that cannot check a file (the listing refused, HEAD answering 500) changes nothing, as
// promised, but fails the step with "1 of 1 upload(s) failed": nothing was uploaded or even attempted. The
// message must say that it was a dry run and that the file could not be checked, so nobody goes looking for a
// failed upload (and outputs/summary agree with it).
test(
  'dry-run: a file that cannot be checked fails the step with a dry-run message, not "upload(s) failed"',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, { 'index.html': 'x' });
    await run({ io: capture(inputs, env).io });
    const hostile = await startHostile((req, res) => {
      if (req.method === 'GET' && req.query.get('list-type') === '2') {
        res.writeHead(403).end(errorXml('AccessDenied'));
        return true;
      }
      if (req.method === 'HEAD') {
        res.writeHead(500).end();
        return true;
      }
      return false;
    }, server.url);
    t.after(() => hostile.close());
    const c = capture({ ...inputs, endpoint: hostile.url, 'dry-run': 'true' }, env);
    const error = await run({ io: c.io }).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(error, 'a dry run that could not check a file is not green');
    assert.deepEqual(
      hostile.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD').map((r) => r.method),
      [],
      'dry-run wrote nothing (holds today)',
    );
    assert.doesNotMatch(error.message, /upload\(s\) failed/, error.message);
    assert.match(error.message, /dry run/i, error.message);
  },
);
