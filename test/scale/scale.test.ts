// Scale: 10,000 small files in one action step with bounded memory and open files, and a file big enough that
// the 10,000-part rule forces a larger part size. Times and peaks are reported, not asserted as speed targets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { clientFor } from '../helpers/client.ts';
import { tempDir } from '../helpers/files.ts';
import { inputEnv, newJob, runStep } from '../helpers/action-runner.ts';
import { uploadFile } from '../../src/engine/index.ts';
import { DEFAULTS, INPUT } from '../../src/deploy/constants.ts';

/** Peak RSS (VmHWM) and the most open descriptors of a running process, sampled from /proc. */
function watchProcess(pid: () => number | undefined): { stop: () => { rssMb: number; fds: number } } {
  let rssMb = 0;
  let fds = 0;
  const timer = setInterval(() => {
    const p = pid();
    if (p === undefined) return;
    readFile(`/proc/${p}/status`, 'utf8')
      .then((s) => {
        const m = /^VmHWM:\s+(\d+) kB$/m.exec(s);
        if (m) rssMb = Math.max(rssMb, Number(m[1]) / 1024);
      })
      .catch(() => undefined);
    readdir(`/proc/${p}/fd`)
      .then((names) => (fds = Math.max(fds, names.length)))
      .catch(() => undefined);
  }, 25);
  return {
    stop: () => {
      clearInterval(timer);
      return { rssMb, fds };
    },
  };
}

test(
  '10,000 small files in one step: every object stored, memory and open files bounded',
  { timeout: 300_000 },
  async (t) => {
    const server = await startTestServer();
    t.after(() => server.close());
    const dir = await tempDir(t);
    const ws = join(dir, 'ws');
    const COUNT = 10_000;
    for (let d = 0; d < 100; d++) {
      const sub = join(ws, 'site', `d${d}`);
      await mkdir(sub, { recursive: true });
      for (let i = 0; i < COUNT / 100; i++) await writeFile(join(sub, `f${i}.html`), `<p>${d}/${i}</p>\n`);
    }
    const job = await newJob(dir, ws);
    const env = inputEnv({
      path: 'site/**',
      bucket: 'test-bucket',
      endpoint: server.url,
      'thread-num': '16',
      'access-key-id': 'test-ak',
      'access-key-secret': 'test-sk',
      'cache-checkpoints': 'false',
    });
    let childPid: number | undefined;
    const watch = watchProcess(() => childPid);
    const started = performance.now();
    const result = await runStep('main', job, env, (_line, _stop, pid) => (childPid ??= pid));
    const seconds = (performance.now() - started) / 1000;
    const peak = watch.stop();
    assert.equal(result.code, 0, result.stdout.slice(-2000) + result.stderr);
    const puts = server.requests.filter((r) => r.operation === 'PutObject' && r.status === 200);
    assert.equal(puts.length, COUNT);
    const client = clientFor(server);
    t.after(() => client.close());
    assert.equal((await client.listObjects({ bucket: 'test-bucket', prefix: 'd' })).length, COUNT);
    t.diagnostic(
      `10,000 files: ${seconds.toFixed(1)} s, peak RSS ${peak.rssMb.toFixed(0)} MiB, at most ${peak.fds} open descriptors`,
    );
    // bounded by the window, not by the 10,000 files: a socket per request in flight (opened ahead, while the
    // first files are read), at most a descriptor per file being read beside them (the window's and the 64
    // readied ahead of it), and the process's own; and far below a megabyte per file
    const window = Number(DEFAULTS[INPUT.maxInFlight]);
    assert.ok(peak.fds > 0 && peak.fds < window + (window + 64) + 64, `open descriptors ${peak.fds}`);
    assert.ok(peak.rssMb > 0 && peak.rssMb < 400, `peak RSS ${peak.rssMb} MiB`);
  },
);

test(
  'a file over 10,000 parts of the asked size gets a larger part size, says so, and is verified',
  { timeout: 300_000 },
  async (t) => {
    const server = await startTestServer();
    t.after(() => server.close());
    const client = clientFor(server);
    t.after(() => client.close());
    const dir = await tempDir(t);
    // sparse: 10,000 parts of 100 KB and one byte more, with a little data at both ends
    const size = 102_400 * 10_000 + 1;
    const file = join(dir, 'sparse.img');
    const handle = await open(file, 'w');
    await handle.write(Buffer.from('head'), 0, 4, 0);
    await handle.write(Buffer.from('!'), 0, 1, size - 1);
    await handle.close();
    const notices: string[] = [];
    const started = performance.now();
    const r = await uploadFile({
      client,
      bucket: 'test-bucket',
      key: 'sparse.img',
      file,
      partSize: 102_400,
      threadNum: 4,
      onNotice: (m) => notices.push(m),
    });
    t.diagnostic(
      `${size} bytes in ${r.parts} parts of ${r.partSize} B: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    assert.equal(r.partSizeAdjustedFrom, 102_400);
    assert.equal(r.partSize, 1024 * 1024);
    assert.equal(r.parts, Math.ceil(size / (1024 * 1024)));
    assert.ok(r.parts <= 10_000);
    assert.equal(r.verified, 'crc64');
    assert.ok(
      notices.some((n) =>
        n.includes('part size raised from 102400 to 1048576 bytes to stay within 10,000 parts'),
      ),
    );
    const head = await client.headObject({ bucket: 'test-bucket', key: 'sparse.img' });
    assert.equal(head.size, size);
    assert.equal(head.crc64, BigInt(r.crc64));
  },
);
