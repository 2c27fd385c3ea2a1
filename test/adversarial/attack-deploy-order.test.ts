// Attacks on the order of a deploy's work: the limiter that lets one request through alone until one is
// answered with anything but a refusal of the credentials (a run without a listing), the listing that runs
// beside the plan and the checkpoint restore, the ranges left to answer after the end of the prefix, and the
// connections opened ahead of requests. Real HTTP on 127.0.0.1, real files; a hostile front counts what is in
// flight and tells the lies each test needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/action/main.ts';
import type { FaultRule } from '../../src/server/index.ts';
import { startLink } from '../../bench/link.ts';
import { clientFor } from '../helpers/client.ts';
import { capture, site, writeTree } from '../deploy/harness.ts';
import { type HostileHandler, type HostileRequest, errorXml, startHostile, trickle } from './hostile.ts';

const T = { timeout: 90_000 };

const isList = (r: HostileRequest): boolean => r.method === 'GET' && r.query.get('list-type') === '2';
const isPut = (r: HostileRequest): boolean => r.method === 'PUT' && !r.query.has('uploadId');

/**
 * A site of `count` pages whose server answers as `fault` says, behind a counting front, deployed without a
 * listing (`skip-unchanged: false`) and a window of 8.
 */
async function runWithoutListing(t: Parameters<typeof site>[0], count: number, fault: FaultRule) {
  const s = await site(t, count);
  s.server.addFault(fault);
  const { hostile, seen } = await countingFront(t, s.server.url);
  const c = capture(
    { ...s.inputs, endpoint: hostile.url, 'skip-unchanged': 'false', 'max-in-flight': '8' },
    s.env,
  );
  return { s, hostile, seen, c };
}

/** The rejections no one handles while the test runs. */
function collectUnhandled(t: { after(fn: () => unknown): void }): unknown[] {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  return unhandled;
}

/** What a front in front of our server saw: requests in flight at once, and how many went alone at first. */
interface Seen {
  inFlight: number;
  most: number;
  /** Requests begun before two were ever in flight together. */
  alone: number;
  overlapped: boolean;
  /** Requests answered or cut, by the moment they ended. */
  open: Set<ServerResponse>;
}

/** A hostile front that counts concurrency (listings excluded unless asked) and hands each request to `inner`. */
async function countingFront(
  t: { after(fn: () => unknown): void },
  upstream: string,
  inner: HostileHandler = () => false,
  counts: (r: HostileRequest) => boolean = (r) => !isList(r),
) {
  const seen: Seen = { inFlight: 0, most: 0, alone: 0, overlapped: false, open: new Set() };
  const hostile = await startHostile((req, res, ctx) => {
    seen.open.add(res);
    res.on('close', () => seen.open.delete(res));
    if (counts(req)) {
      seen.inFlight++;
      if (seen.inFlight > 1) seen.overlapped = true;
      if (!seen.overlapped) seen.alone++;
      seen.most = Math.max(seen.most, seen.inFlight);
      res.on('close', () => seen.inFlight--);
    }
    return inner(req, res, ctx);
  }, upstream);
  t.after(() => hostile.close());
  return { hostile, seen };
}

async function keysOf(server: { url: string }): Promise<string[]> {
  const client = clientFor(server);
  try {
    return (await client.listObjects({ bucket: 'test-bucket', prefix: '' })).map((x) => x.key);
  } finally {
    await client.close();
  }
}

/** Settles with what `p` did, or with 'pending' after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<'ok' | 'rejected' | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)));
  try {
    return await Promise.race([
      p.then(
        () => 'ok' as const,
        () => 'rejected' as const,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// Without a listing, a first PUT that the server keeps refusing with a 500 (not a credential problem) must
// not hold the rest: once another request succeeds, every other file goes up together, and the step fails
// naming the one file.
test(
  'skip-unchanged false: a first key refused with 500 on every attempt fails alone; the rest go up together',
  T,
  async (t) => {
    // f0 is the first file sent; every attempt at it is a 500
    const { s, seen, c } = await runWithoutListing(t, 30, {
      operation: 'PutObject',
      key: 'web/f0.html',
      times: Infinity,
      action: { type: 'error', status: 500, code: 'InternalError' },
    });
    await assert.rejects(run({ io: c.io }), /f0\.html/);
    const keys = await keysOf(s.server);
    assert.equal(keys.length, 29, `stored: ${keys.join(',')}`);
    assert.ok(!keys.includes('web/f0.html'));
    assert.ok(seen.most > 1, 'the others went together once one had succeeded');
    // f0's attempts (5 at most) and the first success went alone, nothing more
    assert.ok(seen.alone <= 7, `${seen.alone} request(s) went alone`);
    assert.equal(seen.open.size, 0, 'no request left open');
  },
);

// A run whose listing is refused (a policy with PutObject and GetObject but not ListObjects) checks each
// same-size question by HEAD through the probing limiter. On a first deploy every HEAD is a 404: an
// authenticated answer, proof that the credentials work, which must open the window rather than send HEAD
// after HEAD alone, a round trip each.
test(
  'listing refused, all files new: the 404 HEADs that prove the credentials open the window, not one HEAD after another',
  T,
  async (t) => {
    const s = await site(t, 60);
    const { hostile, seen } = await countingFront(t, s.server.url, (req, res) => {
      if (!isList(req)) return false;
      res.writeHead(403, { 'content-type': 'application/xml' }).end(errorXml('AccessDenied'));
      return true;
    });
    const c = capture({ ...s.inputs, endpoint: hostile.url, 'max-in-flight': '16' }, s.env);
    await run({ io: c.io });
    assert.equal((await keysOf(s.server)).length, 60);
    const heads = hostile.requests.filter((r) => r.method === 'HEAD').length;
    assert.ok(
      seen.alone <= 3,
      `${seen.alone} request(s) went alone (of ${heads} HEADs) before two were in flight`,
    );
  },
);

// Every PUT answered 503 SlowDown: a window kept shut would retry each file alone, the next file's only after
// it, and the run would take files × the retries' backoff. It must end, failing, in a time that does not grow
// file by file.
test(
  'skip-unchanged false, every PUT 503 SlowDown: the run fails in bounded time, not one file after another',
  T,
  async (t) => {
    const { hostile, seen, c } = await runWithoutListing(t, 12, {
      operation: 'PutObject',
      times: Infinity,
      action: { type: 'error', status: 503, code: 'SlowDown' },
    });
    const started = Date.now();
    await assert.rejects(run({ io: c.io }));
    const took = Date.now() - started;
    assert.equal(seen.open.size, 0);
    assert.ok(
      seen.most > 1 && took < 10_000,
      `took ${took} ms; at most ${seen.most} in flight; ${hostile.requests.length} requests`,
    );
  },
);

// The first PUT held by the server for 20 s holds every other request behind it (the limiter waits for a
// success); a cancel must still end the run at once and leave nothing open.
test(
  'skip-unchanged false: a cancel while the first PUT is held ends the run promptly, nothing left open',
  T,
  async (t) => {
    const s = await site(t, 20);
    let held: ServerResponse | undefined;
    const { hostile, seen } = await countingFront(t, s.server.url, async (req, res) => {
      if (!isPut(req) || held) return false;
      held = res;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 20_000);
        res.on('close', () => {
          clearTimeout(timer);
          r();
        });
      });
      // cut by the client: nothing to answer; otherwise the held PUT goes on to our server
      return res.destroyed;
    });
    const c = capture({ ...s.inputs, endpoint: hostile.url, 'skip-unchanged': 'false' }, s.env);
    const cancel = new AbortController();
    const running = run({ io: c.io, signal: cancel.signal });
    while (!held) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 500));
    // everything else waits for the first answer
    assert.equal(seen.most, 1);
    const before = Date.now();
    cancel.abort(new Error('cancelled by the user'));
    assert.equal(await within(running, 5_000), 'rejected');
    assert.ok(Date.now() - before < 5_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.open.size, 0, 'the held PUT was cut');
    assert.equal((await keysOf(s.server)).length, 0);
  },
);

/** A front whose listings are held until the client goes away; `listing` resolves when the first arrives. */
async function heldListing(t: { after(fn: () => unknown): void }, upstream: string) {
  let arrived!: () => void;
  const listing = new Promise<void>((r) => (arrived = r));
  const listings: ServerResponse[] = [];
  const front = await countingFront(
    t,
    upstream,
    (req, res) => {
      if (!isList(req)) return false;
      listings.push(res);
      arrived();
      res.writeHead(200, { 'content-type': 'application/xml' });
      trickle(res, ' ', 200);
      return true;
    },
    () => true,
  );
  return { ...front, listing, listings };
}

function cacheThatWaits(onRestore: () => Promise<string | undefined>) {
  return {
    restoreCache: () => onRestore(),
    saveCache: () => Promise.resolve(0),
  };
}

// A user cancel while the listing is in flight beside the checkpoint restore: the run rejects at once, the
// listing is cut, nothing is sent.
test(
  'a cancel during the checkpoint restore, with the listing in flight, ends the run and cuts the listing',
  T,
  async (t) => {
    const s = await site(t, 5);
    const { hostile, seen, listing, listings } = await heldListing(t, s.server.url);
    const cancel = new AbortController();
    let restoring = false;
    const cache = cacheThatWaits(async () => {
      restoring = true;
      await listing;
      cancel.abort(new Error('cancelled by the user'));
      // a restore does not listen to the cancel: it ends on its own a moment later
      await new Promise((r) => setTimeout(r, 300));
      return undefined;
    });
    const c = capture({ ...s.inputs, endpoint: hostile.url, 'cache-checkpoints': 'true' }, s.env);
    const outcome = await within(run({ io: c.io, cache, signal: cancel.signal }), 5_000);
    assert.ok(restoring);
    assert.equal(outcome, 'rejected');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      listings.every((r) => r.destroyed),
      'the listing was cut',
    );
    assert.equal(seen.open.size, 0);
    assert.equal(
      hostile.requests.filter((r) => r.method === 'PUT').length,
      0,
      'nothing sent after the cancel',
    );
  },
);

// onFiles failing (here: the runner's state file cannot be written) while the listing is in flight: run()
// rejects with that error, the listing is cut rather than left running, and no rejection goes unhandled.
test(
  'onFiles throwing while the listing is in flight: one rejection, the listing cut, nothing unhandled',
  T,
  async (t) => {
    const s = await site(t, 5);
    const unhandled = collectUnhandled(t);
    const { hostile, seen, listing, listings } = await heldListing(t, s.server.url);
    const c = capture({ ...s.inputs, endpoint: hostile.url, 'cache-checkpoints': 'true' }, s.env);
    c.io.saveState = () => {
      throw new Error('state file is read-only');
    };
    const cache = cacheThatWaits(() => Promise.resolve(undefined));
    const running = run({ io: c.io, cache });
    await assert.rejects(running, /state file is read-only/);
    await within(listing, 5_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(
      listings.every((r) => r.destroyed),
      `${listings.length} listing(s), all cut`,
    );
    assert.equal(seen.open.size, 0);
    assert.deepEqual(unhandled, []);
  },
);

// A restore that takes longer than the listing: the listing's failure (a fatal one, wrong credentials) must be
// met only after onFiles and reported once, not as an unhandled rejection while onFiles runs.
test(
  'a fatal listing answer while a slow restore runs: one fatal error afterwards, no unhandled rejection',
  T,
  async (t) => {
    const s = await site(t, 5);
    const unhandled = collectUnhandled(t);
    const hostile = await startHostile((req, res) => {
      if (!isList(req)) return false;
      res.writeHead(403, { 'content-type': 'application/xml' }).end(errorXml('SignatureDoesNotMatch'));
      return true;
    }, s.server.url);
    t.after(() => hostile.close());
    const cache = cacheThatWaits(() => new Promise((r) => setTimeout(() => r(undefined), 800)));
    const c = capture({ ...s.inputs, endpoint: hostile.url, 'cache-checkpoints': 'true' }, s.env);
    await assert.rejects(run({ io: c.io, cache }), /SignatureDoesNotMatch|AccessKey secret/);
    assert.deepEqual(unhandled, []);
    assert.equal(hostile.requests.filter((r) => r.method === 'PUT').length, 0);
    assert.ok(c.errors.length <= 1, c.errors.join('\n'));
  },
);

// Ranges after the one that reached the end of an empty destination are left to answer. Answered with a body
// that never ends, or that trickles for ever, they must neither grow memory without bound nor hold the deploy,
// nor stay open once the step returns; uploads still use up to max-in-flight connections and no more.
for (const kind of ['endless', 'trickle'] as const)
  test(
    `ranges left after the end answered with a ${kind} body: the deploy finishes, bounded, nothing left open`,
    T,
    async (t) => {
      const s = await site(t, 1101);
      const link = await startLink({
        target: { host: '127.0.0.1', port: Number(new URL(s.server.url).port) },
        rttMs: 0,
      });
      t.after(() => link.close());
      const { hostile, seen } = await countingFront(t, link.url, (req, res) => {
        if (!isList(req) || !req.query.get('start-after')) return false;
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.write('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>test-bucket</Name>');
        if (kind === 'trickle') trickle(res, ' ', 50);
        else {
          const block = Buffer.alloc(65536, 0x20);
          const pump = (): void => {
            while (!res.destroyed && res.write(block));
            if (!res.destroyed) res.once('drain', pump);
          };
          pump();
        }
        return true;
      });
      const rss = process.memoryUsage().rss;
      let peak = rss;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      t.after(() => clearInterval(sampler));
      const c = capture({ ...s.inputs, endpoint: hostile.url, 'max-in-flight': '16' }, s.env);
      await run({ io: c.io });
      clearInterval(sampler);
      assert.equal(c.outputs['uploaded-count'], '1101');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(seen.open.size, 0, 'the ranges were cut when the step ended');
      // the front's own connections to the link count too; the client's are at most max-in-flight
      assert.ok(seen.most <= 16 + 1, `${seen.most} requests in flight at once`);
      assert.ok(peak - rss < 300 * 1024 * 1024, `rss grew by ${Math.round((peak - rss) / 2 ** 20)} MiB`);
    },
  );

// openingRequests: large files with thread-num 16, part size at its floor, zero-byte files, and a sparse file
// needing more than 10,000 parts of the part size (which the plan grows): connections opened never exceed
// max-in-flight, and no crash.
test(
  'connections opened ahead never exceed max-in-flight: many multipart files, thread-num 16, smallest parts',
  T,
  async (t) => {
    const s = await site(t, 0);
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`big${i}.bin`] = 'y'.repeat(300 * 1024 + i);
    for (let i = 0; i < 20; i++) files[`empty${i}.txt`] = '';
    await writeTree(s.ws, files);
    const link = await startLink({
      target: { host: '127.0.0.1', port: Number(new URL(s.server.url).port) },
      rttMs: 0,
    });
    t.after(() => link.close());
    const c = capture(
      {
        ...s.inputs,
        endpoint: link.url,
        'thread-num': '16',
        'part-size': '100KiB',
        'max-in-flight': '6',
      },
      s.env,
    );
    await run({ io: c.io });
    assert.equal(c.outputs['uploaded-count'], '60');
    assert.ok(link.connections <= 6, `${link.connections} connections opened for max-in-flight 6`);
  },
);

// A sparse file of more than 10,000 parts of the part size: the plan grows the part and the file counts
// thread-num opening requests; the server then refuses the multipart upload (AccessDenied, fatal), so no byte of
// it is read. The connections opened ahead stay within max-in-flight and the run stops with one error.
test(
  'a sparse file of more than 10,000 parts of the part size: connections within max-in-flight, one fatal error',
  T,
  async (t) => {
    const s = await site(t, 0);
    await writeTree(s.ws, { 'huge.bin': '' });
    // 10,001 parts of 100 KiB and one byte more; sparse, so nothing is written to disk
    await truncate(join(s.ws, 'site', 'huge.bin'), 10_001 * 100 * 1024 + 1);
    const hostile = await startHostile((req, res) => {
      if (!(req.method === 'POST' && req.query.has('uploads'))) return false;
      res.writeHead(403, { 'content-type': 'application/xml' }).end(errorXml('AccessDenied'));
      return true;
    }, s.server.url);
    t.after(() => hostile.close());
    const link = await startLink({
      target: { host: '127.0.0.1', port: Number(new URL(hostile.url).port) },
      rttMs: 0,
    });
    t.after(() => link.close());
    const c = capture(
      { ...s.inputs, endpoint: link.url, 'thread-num': '16', 'part-size': '100KiB', 'max-in-flight': '4' },
      s.env,
    );
    await assert.rejects(run({ io: c.io }), /AccessDenied|RAM policy/);
    assert.ok(link.connections <= 4, `${link.connections} connections for max-in-flight 4`);
    assert.equal(hostile.requests.filter((r) => r.method === 'PUT').length, 0);
  },
);
