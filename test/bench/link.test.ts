// The link emulator must add what it claims (round trips, handshake, a shared upstream cap) and nothing else:
// every byte arrives, in order.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { request } from 'undici';
import { test } from 'node:test';
import { startLink } from '../../bench/link.ts';
import { closeServer, collectBody, listen } from '../../src/server/http.ts';

test('link emulator: a round trip per exchange, the handshake on a new connection, bandwidth shared, bytes intact', async (t) => {
  const server = createServer((req, res) => {
    void collectBody(req, 1 << 30).then((b) =>
      res.end(
        createHash('sha256')
          .update(b ?? Buffer.alloc(0))
          .digest('hex'),
      ),
    );
  });
  const port = await listen(server);
  t.after(() => closeServer(server));
  const link = await startLink({
    target: { host: '127.0.0.1', port },
    rttMs: 80,
    upBytesPerSec: 8 * 1024 * 1024,
  });
  t.after(() => link.close());

  // first request on a new connection: handshake (1 RTT) + request and answer (1 RTT)
  let t0 = performance.now();
  let res = await request(`${link.url}/a`, { method: 'POST', body: 'x' });
  assert.equal(await res.body.text(), createHash('sha256').update('x').digest('hex'));
  const first = performance.now() - t0;
  assert.ok(first >= 155, `first exchange took ${first.toFixed(0)} ms; a handshake and a round trip are 160`);

  // the next on the kept-alive connection: at least one round trip (only lower bounds: a busy machine adds time)
  t0 = performance.now();
  res = await request(`${link.url}/b`, { method: 'POST', body: 'y' });
  await res.body.text();
  const second = performance.now() - t0;
  assert.ok(second >= 78, `a kept-alive exchange took ${second.toFixed(0)} ms`);

  // two uploads at once share 8 MiB/s: 2 x 1 MiB need at least 250 ms of wire time, and arrive intact
  const bodies = [randomBytes(1024 * 1024), randomBytes(1024 * 1024)];
  t0 = performance.now();
  const hashes = await Promise.all(
    bodies.map(async (b) => (await request(`${link.url}/big`, { method: 'POST', body: b })).body.text()),
  );
  const both = performance.now() - t0;
  assert.deepEqual(
    hashes,
    bodies.map((b) => createHash('sha256').update(b).digest('hex')),
  );
  assert.ok(both >= 250, `2 MiB over a shared 8 MiB/s uplink took ${both.toFixed(0)} ms`);
  assert.ok(link.connections >= 2);
});

test('link emulator: an answer followed at once by the server closing the connection still arrives', async (t) => {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { connection: 'close' }).end('answer'));
  });
  const port = await listen(server);
  t.after(() => closeServer(server));
  const link = await startLink({ target: { host: '127.0.0.1', port }, rttMs: 40 });
  t.after(() => link.close());
  for (let i = 0; i < 3; i++) {
    const res = await request(`${link.url}/x`, { method: 'PUT', body: 'x' });
    assert.equal(await res.body.text(), 'answer');
  }
  assert.equal(link.connections, 3);
});
