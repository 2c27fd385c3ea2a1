// Attacks on the connections opened ahead of their requests (WarmConnector, OssClient.preconnect), on the deploy
// that opens them while it searches files, and on the range listing that ends once a range has run to the end
// of the prefix. Servers that drop, reset or answer 408 to idle connections, or never finish a TLS handshake;
// endpoints that do not resolve or speak plain HTTP where HTTPS is asked; origins written with a default port,
// in capitals or in IPv6; a pool of one; many clients in one process; listings that lie, answer out of order or
// fail after the end was reached; a user who cancels during the listing. Real HTTP on 127.0.0.1, real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import fc from 'fast-check';
import { run } from '../../src/action/main.ts';
import { listInRanges } from '../../src/deploy/listing.ts';
import { OUTPUT } from '../../src/deploy/constants.ts';
import { bufferBody } from '../../src/oss/index.ts';
import { clientFor } from '../helpers/client.ts';
import {
  assertListsStored,
  byBytes,
  byUnits,
  listingAnswer,
  startStateListing,
} from '../helpers/listing-server.ts';
import { capture, site, writeTree } from '../deploy/harness.ts';
import { errorXml, startHostile } from './hostile.ts';

const T = { timeout: 120_000 };
const noop = (): void => {};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// every rejection nobody handled and every uncaught error, from any test: the last test requires none
const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => unhandled.push(e));
process.on('uncaughtException', (e) => unhandled.push(e));

/** Waits until `ok()` (polling), at most `ms`; then asserts it. */
async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await sleep(10);
  assert.ok(ok(), what);
}

const tcpHandles = (): number => process.getActiveResourcesInfo().filter((x) => x === 'TCPSocketWrap').length;

interface Front {
  url: string;
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Connections open now (the front's side). */
  open: Set<Socket>;
  /** Connections the front closed for sending nothing in time. */
  killed: number;
}

/** A site (see site()) whose server is reached through a front that counts connections. */
async function frontedSite(t: Parameters<typeof site>[0], count: number) {
  const s = await site(t, count);
  return { ...s, front: await startFront(t, { target: s.server.port }) };
}

/**
 * A TCP front on 127.0.0.1. With `target`, each connection is forwarded there from its first byte on; without,
 * the front reads what it is sent and never answers (a TLS handshake then never completes). With `idleMs`, a
 * connection that has sent nothing for that long is closed (`close`) or reset (`reset`), as a load balancer
 * does with an idle connection.
 */
async function startFront(
  t: { after(fn: () => unknown): void },
  o: {
    target?: number;
    idleMs?: number;
    idle?: 'close' | 'reset';
    /** Only the first connections are dropped when idle: the ones opened after them are left alone. */
    dropFirst?: number;
    host?: string;
    port?: number;
  } = {},
): Promise<Front> {
  const f: Front = { url: '', port: 0, accepted: 0, open: new Set(), killed: 0 };
  const server = createServer((s) => {
    f.accepted++;
    f.open.add(s);
    s.on('error', noop);
    s.once('close', () => f.open.delete(s));
    const timer =
      o.idleMs === undefined || f.accepted > (o.dropFirst ?? Infinity)
        ? undefined
        : setTimeout(() => {
            f.killed++;
            if (o.idle === 'reset') s.resetAndDestroy();
            else s.destroy();
          }, o.idleMs);
    let up: Socket | undefined;
    s.on('data', (chunk: Buffer) => {
      clearTimeout(timer);
      if (o.target === undefined) return;
      if (!up) {
        up = connect(o.target, '127.0.0.1');
        up.on('error', () => s.destroy());
        up.once('close', () => s.destroy());
        s.once('close', () => up!.destroy());
        up.pipe(s);
      }
      up.write(chunk);
    });
    s.once('end', () => up?.end());
    s.once('close', () => clearTimeout(timer));
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => resolve());
  });
  f.port = (server.address() as AddressInfo).port;
  f.url = `http://${host.includes(':') ? `[${host}]` : host}:${f.port}`;
  t.after(async () => {
    for (const s of f.open) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return f;
}

/** An HTTP server that answers 200 to every request; counts connections and the sockets requests came on. */
async function startCounting(
  t: { after(fn: () => unknown): void },
  o: { host?: string; port?: number; idleBeforeRequestMs?: number } = {},
) {
  const c = { url: '', accepted: 0, open: new Set<Socket>(), served: [] as Socket[], closed: 0 };
  const server = createHttpServer(
    // Node's own limit on a connection that has not sent a whole request: it answers 408 and closes it
    { connectionsCheckingInterval: o.idleBeforeRequestMs === undefined ? 30_000 : 10 },
    (req, res) => {
      c.served.push(req.socket);
      req.resume();
      req.once('end', () =>
        res.writeHead(200, { etag: '"e"', 'x-oss-request-id': 'r', 'content-length': '0' }).end(),
      );
    },
  );
  if (o.idleBeforeRequestMs !== undefined) {
    server.headersTimeout = o.idleBeforeRequestMs;
    server.requestTimeout = o.idleBeforeRequestMs;
  }
  server.on('connection', (s: Socket) => {
    c.accepted++;
    c.open.add(s);
    s.once('close', () => {
      c.open.delete(s);
      c.closed++;
    });
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  c.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return c;
}

// --- warmed connections against servers that treat idle connections badly ---------------------------------

for (const idle of ['close', 'reset'] as const) {
  test(
    `warmed connections the server ${idle}s while they wait are never handed to a request sent once`,
    T,
    async (t) => {
      const s = await startCounting(t);
      // the four warmed connections are dropped; those the requests then open are not, however long a busy
      // machine takes to write on them
      const front = await startFront(t, {
        target: Number(new URL(s.url).port),
        idleMs: 10,
        idle,
        dropFirst: 4,
      });
      const client = clientFor(front, { connections: 8, retry: { maxAttempts: 1 } });
      t.after(() => client.close());
      client.preconnect('bkt', 4);
      await until('the front dropped the four warmed connections', () => front.killed === 4);
      await sleep(100);
      // PUTs, one attempt each: a dead socket handed to the pool would fail them
      await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          client.putObject({ bucket: 'bkt', key: `k${i}`, body: bufferBody('x') }),
        ),
      );
      assert.equal(s.served.length, 4);
    },
  );
}

test(
  'a server that answers 408 to an idle connection and closes it: no request takes that answer for its own',
  T,
  async (t) => {
    const s = await startCounting(t, { idleBeforeRequestMs: 100 });
    const client = clientFor(s, { connections: 4, retry: { maxAttempts: 1 } });
    t.after(() => client.close());
    client.preconnect('bkt', 2);
    await until('both warmed connections answered 408 and closed by the server', () => s.closed === 2);
    await sleep(100);
    // the 408 waits unread on each warmed socket (it looks open); one attempt each
    for (let i = 0; i < 2; i++)
      await client.putObject({ bucket: 'bkt', key: `k${i}`, body: bufferBody('x') });
    assert.equal(s.served.length, 2, 'both PUTs reached the server');
  },
);

test(
  'close() ends warmed connections still in their handshake, rather than leaving them for the connect timeout',
  T,
  async (t) => {
    const silent = await startFront(t);
    const client = clientFor({ url: `https://127.0.0.1:${silent.port}` }, { connectTimeoutMs: 20_000 });
    client.preconnect('bkt', 3);
    await until('three connections accepted', () => silent.accepted === 3);
    await client.close();
    await until('every warmed connection ended with the client', () => silent.open.size === 0, 3_000);
  },
);

test(
  'a request whose warmed connection never finishes its handshake waits out one connect timeout, not two',
  T,
  async (t) => {
    const silent = await startFront(t);
    const client = clientFor(
      { url: `https://127.0.0.1:${silent.port}` },
      { connectTimeoutMs: 4_000, retry: { maxAttempts: 1 } },
    );
    t.after(() => client.close());
    client.preconnect('bkt', 1);
    const started = Date.now();
    await assert.rejects(client.headObject({ bucket: 'bkt', key: 'k' }), { code: 'UND_ERR_CONNECT_TIMEOUT' });
    const took = Date.now() - started;
    // one timeout is 4-4.5 s (undici's timers tick every half second); two in a row are 8 s or more
    assert.ok(took < 7_000, `the request failed after ${took} ms on ${silent.accepted} connections`);
  },
);

test(
  'plain HTTP where HTTPS is asked: the request meets the TLS error, nothing is left open',
  T,
  async (t) => {
    const s = await startCounting(t);
    const client = clientFor({ url: s.url.replace('http:', 'https:') }, { retry: { maxAttempts: 1 } });
    client.preconnect('bkt', 4);
    await assert.rejects(client.headObject({ bucket: 'bkt', key: 'k' }), (e: { code?: string }) => {
      assert.match(String(e.code), /SSL|EPROTO|ECONNRESET/);
      return true;
    });
    await client.close();
    await until('every connection closed', () => s.open.size === 0);
    assert.ok(s.accepted <= 5, `${s.accepted} connections`);
    assert.equal(s.served.length, 0);
  },
);

test('a host that does not resolve: warming fails quietly, the request meets ENOTFOUND', T, async (t) => {
  const client = clientFor({ url: 'http://does-not-exist.invalid' }, { retry: { maxAttempts: 1 } });
  t.after(() => client.close());
  client.preconnect('bkt', 4);
  await assert.rejects(client.headObject({ bucket: 'bkt', key: 'k' }), { code: 'ENOTFOUND' });
});

test('preconnect after close opens nothing', T, async (t) => {
  const s = await startCounting(t);
  const client = clientFor(s);
  await client.close();
  client.preconnect('bkt', 4);
  await sleep(100);
  assert.equal(s.accepted, 0);
});

test(
  'many clients in one process: every warmed connection ends with its client, no handle is left',
  T,
  async (t) => {
    const s = await startCounting(t);
    const before = tcpHandles();
    for (let round = 0; round < 3; round++) {
      const clients = Array.from({ length: 20 }, () => clientFor(s, { connections: 4 }));
      for (const c of clients) c.preconnect('bkt', 4);
      // half of them send a request on a warmed connection, half send none
      await Promise.all(clients.slice(0, 10).map((c, i) => c.headObject({ bucket: 'bkt', key: `k${i}` })));
      await Promise.all(clients.map((c) => c.close()));
    }
    await until('the server sees every connection closed', () => s.open.size === 0);
    assert.ok(s.accepted <= 3 * 20 * 4, `${s.accepted} connections`);
    await until('no socket handle left in this process', () => tcpHandles() <= before);
  },
);

// --- the warmed origin is the origin the requests use ----------------------------------------------------

const origins: Array<{ name: string; host: string; port?: number; endpoint: (port: number) => string }> = [
  { name: 'capitals in the host', host: '127.0.0.1', endpoint: (p) => `http://LOCALHOST:${p}` },
  { name: 'IPv6 [::1]', host: '::1', endpoint: (p) => `http://[::1]:${p}` },
  {
    name: 'the default port written out (:80)',
    host: '127.0.0.1',
    port: 80,
    endpoint: () => 'http://127.0.0.1:80',
  },
  {
    name: 'a trailing slash and the scheme in capitals',
    host: '127.0.0.1',
    endpoint: (p) => `HTTP://127.0.0.1:${p}/`,
  },
];
for (const o of origins) {
  test(`requests use the connections warmed for them: endpoint with ${o.name}`, T, async (t) => {
    let s: Awaited<ReturnType<typeof startCounting>>;
    try {
      s = await startCounting(t, { host: o.host, port: o.port });
    } catch (e) {
      t.skip(`cannot listen on ${o.host}:${o.port ?? 0} here (${(e as Error).message})`);
      return;
    }
    const port = Number(new URL(s.url).port || 80);
    const client = clientFor({ url: o.endpoint(port) }, { connections: 8 });
    t.after(() => client.close());
    client.preconnect('bkt', 3);
    await until('three connections accepted', () => s.accepted === 3 && s.open.size === 3);
    const warmed = new Set(s.open);
    await Promise.all(
      Array.from({ length: 3 }, (_, i) => client.headObject({ bucket: 'bkt', key: `k${i}` })),
    );
    assert.equal(s.accepted, 3, 'no connection opened beside the warmed ones');
    for (const socket of s.served)
      assert.ok(warmed.has(socket), 'a request went over a connection not warmed');
  });
}

test('a pool of one connection: one is warmed, used, and counted when topping up', T, async (t) => {
  const s = await startCounting(t);
  const client = clientFor(s, { connections: 1 });
  t.after(() => client.close());
  client.preconnect('bkt', 8);
  await until('one connection accepted', () => s.accepted === 1);
  await sleep(50);
  assert.equal(s.accepted, 1);
  for (let i = 0; i < 3; i++) await client.headObject({ bucket: 'bkt', key: `k${i}` });
  client.preconnect('bkt', 8);
  await sleep(100);
  assert.equal(s.accepted, 1, 'the open connection was counted');
  assert.equal(new Set(s.served).size, 1);
});

// --- deploys --------------------------------------------------------------------------------------------

test('a deploy through a front that drops connections idle for 30 ms uploads every file', T, async (t) => {
  for (const idle of ['close', 'reset'] as const) {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`f${i}.js`, `${i};`])));
    // a listing that takes 150 ms: the connections warmed for the uploads wait longer than the front allows
    const slow = await startHostile(async (req) => {
      if (req.query.get('list-type') === '2') await sleep(150);
      return false;
    }, server.url);
    t.after(() => slow.close());
    const front = await startFront(t, { target: Number(new URL(slow.url).port), idleMs: 30, idle });
    const c = capture({ ...inputs, endpoint: front.url }, env);
    await run({ io: c.io });
    assert.deepEqual(c.errors, [], idle);
    assert.equal(c.outputs[OUTPUT.uploadedCount], '60', idle);
    assert.ok(front.killed > 0, `${idle}: no warmed connection was dropped, the attack did not happen`);
    t.diagnostic(
      `${idle}: ${front.killed} of ${front.accepted} connections dropped idle; ${c.lines.filter((l) => l.startsWith('retrying')).length} retries`,
    );
  }
});

test('a deploy that finds no file leaves no connection open once it returns', T, async (t) => {
  const { inputs, env, front } = await frontedSite(t, 0);
  const c = capture({ ...inputs, endpoint: front.url, 'if-no-files-found': 'warn' }, env);
  await run({ io: c.io });
  assert.equal(c.warnings.length, 1, c.warnings.join('\n'));
  assert.ok(front.accepted <= 1, `${front.accepted} connections for no file`);
  await until('every connection closed', () => front.open.size === 0, 3_000);
});

test(
  'a deploy that finds no file, to an endpoint whose TLS handshake never completes, leaves nothing open once it returns',
  T,
  async (t) => {
    const { inputs, env } = await site(t, 0);
    const silent = await startFront(t);
    const c = capture(
      { ...inputs, endpoint: `https://127.0.0.1:${silent.port}`, 'if-no-files-found': 'warn' },
      env,
    );
    await run({ io: c.io });
    assert.equal(c.warnings.length, 1, c.warnings.join('\n'));
    await until('every connection closed', () => silent.open.size === 0, 3_000);
  },
);

test(
  'a pattern line that matches nothing stops the deploy before anything is written; no connection is left open',
  T,
  async (t) => {
    const { server, inputs, env, front } = await frontedSite(t, 5);
    const c = capture({ ...inputs, path: 'site\nsite/no-such-dir/**', endpoint: front.url }, env);
    await assert.rejects(run({ io: c.io }), /no-such-dir/);
    // the destination's first page may go while the search runs on: a read, and nothing else
    assert.deepEqual(
      server.requests.map((r) => r.operation).filter((op) => op !== 'ListObjects'),
      [],
    );
    await until('every connection closed', () => front.open.size === 0, 3_000);
  },
);

test(
  'a wrong secret with 300 files: one error, at most 2 requests, and no connection left open',
  T,
  async (t) => {
    const { server, inputs, env, front } = await frontedSite(t, 300);
    const c = capture({ ...inputs, endpoint: front.url, 'access-key-secret': 'wrong-secret' }, env);
    await assert.rejects(run({ io: c.io }), (e: Error) => {
      c.errors.push(e.message);
      return true;
    });
    assert.equal(c.errors.length, 1, c.errors.join('\n'));
    assert.match(c.errors[0]!, /SignatureDoesNotMatch/);
    assert.ok(server.requests.length <= 2, `${server.requests.length} requests`);
    // the window is warmed while the files are searched, before any answer: up to max-in-flight (128 here)
    assert.ok(front.accepted <= 128, `${front.accepted} connections`);
    await until('every connection closed', () => front.open.size === 0, 3_000);
  },
);

test('patterns that keep 3 files of a tree of 2,000: no more than 3 connections are opened', T, async (t) => {
  const { ws, inputs, env, front } = await frontedSite(t, 0);
  const tree: Record<string, string> = { 'keep/a.js': 'a', 'keep/b.js': 'b', 'keep/c.js': 'c' };
  for (let i = 0; i < 2000; i++) tree[`big/${i}.js`] = `${i}`;
  await writeTree(ws, tree);
  const c = capture({ ...inputs, path: 'site\n!site/big/**', endpoint: front.url }, env);
  await run({ io: c.io });
  assert.equal(c.outputs[OUTPUT.uploadedCount], '3');
  assert.ok(front.accepted <= 3, `${front.accepted} connections for 3 files`);
});

test(
  'a dry run of a first deploy sends one listing, opens no more than two connections and leaves none open',
  T,
  async (t) => {
    const { server, ws, inputs, env, front } = await frontedSite(t, 0);
    await writeTree(ws, Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}.js`, `${i}`])));
    const c = capture({ ...inputs, endpoint: front.url, 'dry-run': 'true' }, env);
    await run({ io: c.io });
    assert.deepEqual(c.errors, []);
    assert.equal(server.requests.length, 1, server.requests.map((r) => r.operation).join(' '));
    assert.ok(front.accepted <= 2, `${front.accepted} connections for ${server.requests.length} request(s)`);
    await until('every connection closed', () => front.open.size === 0, 3_000);
  },
);

test('a deploy to a host that does not resolve reports the real error and does not hang', T, async (t) => {
  const { inputs, env } = await site(t, 1);
  const c = capture({ ...inputs, endpoint: 'http://does-not-exist.invalid', 'skip-unchanged': 'false' }, env);
  await assert.rejects(run({ io: c.io }), (e: Error) => {
    assert.match(e.message, /ENOTFOUND/);
    return true;
  });
  assert.equal(c.errors.length, 1, c.errors.join('\n'));
  assert.match(c.errors[0]!, /ENOTFOUND/);
});

test(
  'a first deploy of 3,000 files whose later listing ranges answer late opens no more than max-in-flight connections',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(
      ws,
      Object.fromEntries(
        Array.from({ length: 3000 }, (_, i) => [`f${String(i).padStart(4, '0')}.js`, `${i}`]),
      ),
    );
    const hostile = await startHostile(async (req) => {
      if (req.query.get('list-type') === '2' && req.query.has('start-after')) await sleep(300);
      return false;
    }, server.url);
    t.after(() => hostile.close());
    const front = await startFront(t, { target: Number(new URL(hostile.url).port) });
    const c = capture({ ...inputs, endpoint: front.url, 'max-in-flight': '16' }, env);
    await run({ io: c.io });
    assert.equal(c.outputs[OUTPUT.uploadedCount], '3000');
    assert.ok(front.accepted <= 16, `${front.accepted} connections for a window of 16`);
  },
);

// --- the listing that ends early --------------------------------------------------------------------------

test(
  'a first range that claims the end of the prefix too soon: delete-orphans deletes only orphans, every file is stored',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    const tree: Record<string, string> = {};
    for (let i = 0; i < 1200; i++) tree[`f${String(i).padStart(4, '0')}.js`] = `v${i}`;
    await writeTree(ws, tree);
    const planned = Object.keys(tree).map((k) => `web/${k}`);
    // orphans between the planned keys and after them; keys outside the destination
    const orphans = Array.from({ length: 300 }, (_, i) => `web/f${String(i * 4).padStart(4, '0')}.old`);
    orphans.push('web/zz-after-everything.html');
    const outside = ['web2/keep.html', 'other/keep.html'];
    const direct = clientFor(server);
    t.after(() => direct.close());
    // half the planned files stored already, unchanged; a few with other bytes of the same size
    for (const [i, key] of planned.entries())
      if (i % 2 === 0)
        await direct.putObject({
          bucket: 'test-bucket',
          key,
          body: bufferBody(i % 10 === 0 ? `w${i}` : `v${i}`),
        });
    for (const key of [...orphans, ...outside])
      await direct.putObject({ bucket: 'test-bucket', key, body: bufferBody('old') });
    // the lie: the first page of a listing without start-after holds its first 400 keys and says it is the end
    let lies = 0;
    const hostile = await startHostile(async (req, res, ctx) => {
      if (
        req.query.get('list-type') !== '2' ||
        req.query.has('start-after') ||
        req.query.has('continuation-token')
      )
        return false;
      const real = await ctx.forward();
      let kept = 0;
      const body = real.body
        .toString('utf8')
        .replace(/<Contents>.*?<\/Contents>/g, (m) => (kept++ < 400 ? m : ''))
        .replace(/<IsTruncated>true<\/IsTruncated>/, '<IsTruncated>false</IsTruncated>')
        .replace(/<NextContinuationToken>.*?<\/NextContinuationToken>/, '')
        .replace(/<KeyCount>\d+<\/KeyCount>/, `<KeyCount>${Math.min(kept, 400)}</KeyCount>`);
      lies++;
      res.writeHead(200, { 'content-type': 'application/xml', 'x-oss-request-id': 'lie' }).end(body);
      return true;
    }, server.url);
    t.after(() => hostile.close());
    const c = capture({ ...inputs, endpoint: hostile.url, 'delete-orphans': 'true' }, env);
    await run({ io: c.io });
    assert.ok(lies > 0, 'the lie was told');
    assert.deepEqual(c.errors, []);
    const stored = new Set((await direct.listObjects({ bucket: 'test-bucket' })).map((x) => x.key));
    for (const key of [...planned, ...outside]) assert.ok(stored.has(key), `${key} is gone`);
    const deleted = JSON.parse(c.outputs[OUTPUT.deletedKeys] ?? '[]') as string[];
    t.diagnostic(
      `${deleted.length} of ${orphans.length} orphans deleted; ${server.requests.filter((r) => r.operation === 'PutObject').length} PUTs`,
    );
    for (const key of deleted) assert.ok(orphans.includes(key), `${key} was deleted, and is no orphan`);
    // and every file holds its own bytes
    for (const key of planned.filter((_, i) => i % 10 === 0)) {
      const { body } = await direct.getObject({ bucket: 'test-bucket', key });
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), tree[key.slice('web/'.length)], key);
    }
  },
);

test(
  'ranges answered in any order, some stored keys, either order, start-after honoured or not: the listing is what is stored',
  T,
  async (t) => {
    const state = {
      stored: [] as string[],
      order: byBytes,
      ignoreStartAfter: false,
      delays: [] as number[],
      n: 0,
    };
    // each answer late by its own delay: the ranges come back in any order
    const client = await startStateListing(t, state, () =>
      sleep(state.delays[state.n++ % state.delays.length] ?? 0),
    );
    const name = fc.constantFrom('a', 'b', '\uE000', '\uFFFF', '\u{10000}', '/');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1001, max: 4200 }),
        fc.double({ min: 0, max: 1.2, noNaN: true }),
        fc.array(
          fc.array(name, { maxLength: 3 }).map((u) => `p/${u.join('')}`),
          { maxLength: 20 },
        ),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 25 }), { minLength: 1, maxLength: 8 }),
        async (count, share, extra, utf16, ignoreStartAfter, delays) => {
          const local = Array.from({ length: count }, (_, i) => `p/${String(i).padStart(5, '0')}`);
          // the head of the plan is stored (a destination smaller than the plan), with keys no file has
          state.stored = [...new Set([...local.slice(0, Math.floor(count * share)), ...extra, 'q/other'])];
          state.order = utf16 ? byUnits : byBytes;
          state.ignoreStartAfter = ignoreStartAfter;
          state.delays = delays;
          state.n = 0;
          await assertListsStored(client, [...local, ...extra], state.stored);
        },
      ),
      { numRuns: 40 },
    );
  },
);

for (const [code, status] of [
  ['InternalError', 500],
  ['AccessDenied', 403],
] as const) {
  test(
    `ranges past the end of the prefix that fail (${code}) do not fail the listing, nor leave a rejection unhandled`,
    T,
    async (t) => {
      const local = Array.from({ length: 3500 }, (_, i) => `p/${String(i).padStart(4, '0')}`);
      const stored = local.slice(0, 700);
      let failed = 0;
      const server = await startHostile(async (req, res) => {
        if (req.query.has('start-after')) {
          await sleep(150);
          // an answer the client is still there to read
          if (!res.socket || res.socket.destroyed) return true;
          failed++;
          res.writeHead(status, { 'content-type': 'application/xml' }).end(errorXml(code));
          return true;
        }
        res
          .writeHead(200, { 'content-type': 'application/xml', 'x-oss-request-id': 'listing' })
          .end(listingAnswer(stored, req.query));
        return true;
      });
      t.after(() => server.close());
      const client = clientFor(server);
      t.after(() => client.close());
      const listed = await listInRanges(client, {
        bucket: 'bkt',
        prefix: 'p/',
        keys: local,
        signal: AbortSignal.timeout(30_000),
      });
      assert.deepEqual(
        listed.map((x) => x.key),
        stored,
      );
      // they were left to answer, keeping their connections; what they said is not the listing's concern
      await until('the later ranges answered', () => failed > 0, 3_000);
    },
  );
}

test(
  'a user cancel during the listing ends the deploy at once: nothing uploaded, nothing held',
  T,
  async (t) => {
    const { server, ws, inputs, env } = await site(t, 0);
    await writeTree(ws, Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`f${i}.js`, `${i}`])));
    const controller = new AbortController();
    const held = { n: 0, let: 0 };
    const hostile = await startHostile(async (req, res) => {
      if (req.query.get('list-type') !== '2') return false;
      held.n++;
      if (held.n === 1) setTimeout(() => controller.abort(new Error('cancelled by the user')), 50);
      await new Promise<void>((r) => res.once('close', r));
      held.let++;
      return true;
    }, server.url);
    t.after(() => hostile.close());
    const c = capture({ ...inputs, endpoint: hostile.url }, env);
    const started = Date.now();
    await assert.rejects(run({ io: c.io, signal: controller.signal }));
    assert.ok(Date.now() - started < 10_000, `the cancel took ${Date.now() - started} ms`);
    t.diagnostic(
      `cancelled after ${Date.now() - started} ms; ${held.n} listing request(s) held, ${held.let} let go`,
    );
    assert.equal(server.requests.filter((r) => r.operation === 'PutObject').length, 0);
    await until('every held listing request let go', () => held.let === held.n, 3_000);
    assert.ok(held.n >= 1);
  },
);

test('none of the above left a rejection unhandled or an error uncaught', async () => {
  await sleep(200);
  assert.deepEqual(unhandled, []);
});
