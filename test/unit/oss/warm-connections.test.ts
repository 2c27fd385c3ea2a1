// Connections opened ahead of requests: against a real HTTP server on 127.0.0.1 that counts the connections
// it accepts and can close them before any request, and against a port where nothing listens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { bufferBody } from '../../../src/oss/body.ts';
import { WarmConnector } from '../../../src/oss/warm-connections.ts';
import { clientFor } from '../../helpers/client.ts';

interface Counting {
  url: string;
  accepted: number;
  open: Set<Socket>;
  /** Each request's socket, in the order the requests came. */
  served: Socket[];
  server: Server;
}

async function countingServer(
  t: { after(fn: () => unknown): void },
  o: { closeFirst?: number } = {},
): Promise<Counting> {
  const c = { accepted: 0, open: new Set<Socket>(), served: [] as Socket[] } as Counting;
  c.server = createServer((req, res) => {
    c.served.push(req.socket);
    req.resume();
    res.writeHead(200, { etag: '"e"', 'x-oss-request-id': 'r', 'content-length': '0' }).end();
  });
  c.server.on('connection', (s: Socket) => {
    c.accepted++;
    // a server (or a middlebox) that drops idle connections: these never carry a request
    if (c.accepted <= (o.closeFirst ?? 0)) {
      s.destroy();
      return;
    }
    c.open.add(s);
    s.once('close', () => c.open.delete(s));
  });
  await new Promise<void>((r) => c.server.listen(0, '127.0.0.1', () => r()));
  c.url = `http://127.0.0.1:${(c.server.address() as AddressInfo).port}`;
  t.after(() => {
    c.server.closeAllConnections();
    c.server.close();
  });
  return c;
}

const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), what);
};

test('requests go over the connections opened for them, and no more are opened', async (t) => {
  const s = await countingServer(t);
  const client = clientFor(s, { connections: 8 });
  t.after(() => client.close());
  client.preconnect('bkt', 4);
  await until('four connections accepted', () => s.accepted === 4);
  const warmed = new Set(s.open);
  await Promise.all(Array.from({ length: 4 }, (_, i) => client.headObject({ bucket: 'bkt', key: `k${i}` })));
  assert.equal(s.accepted, 4);
  assert.deepEqual(new Set(s.served), warmed);
  // topping up counts what is already open: nothing more is opened
  client.preconnect('bkt', 4);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.accepted, 4);
});

test('at most the pool size is opened, and what no request used is closed with the client', async (t) => {
  const s = await countingServer(t);
  const client = clientFor(s, { connections: 3 });
  client.preconnect('bkt', 50);
  await until('three connections accepted', () => s.accepted === 3);
  await client.close();
  await until('every warmed connection closed', () => s.open.size === 0);
  assert.equal(s.accepted, 3);
});

test('a warmed connection the server closed before any request is not used; the request connects again', async (t) => {
  const s = await countingServer(t, { closeFirst: 2 });
  const client = clientFor(s, { connections: 4, retry: { maxAttempts: 1 } });
  t.after(() => client.close());
  client.preconnect('bkt', 2);
  await until('both warmed connections dropped by the server', () => s.accepted === 2);
  await new Promise((r) => setTimeout(r, 30));
  // one attempt only, and a PUT, which the pool never sends again on its own: a dead socket handed to the pool
  // would fail it
  await client.putObject({ bucket: 'bkt', key: 'k', body: bufferBody('x') });
  assert.equal(s.accepted, 3);
});

test('warming towards a port where nothing listens fails quietly; the request meets the real error', async (t) => {
  const s = await countingServer(t);
  const url = s.url;
  await new Promise<void>((r) => s.server.close(() => r()));
  const client = clientFor({ url }, { connections: 4, retry: { maxAttempts: 1 } });
  t.after(() => client.close());
  client.preconnect('bkt', 4);
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(client.headObject({ bucket: 'bkt', key: 'k' }), (e: Error) => {
    assert.match(`${e.message} ${String((e as { code?: string }).code)}`, /ECONNREFUSED/);
    return true;
  });
});

test('a warmed socket that waits too long for a request is closed', async (t) => {
  const s = await countingServer(t);
  const warm = new WarmConnector({ timeoutMs: 5_000, unusedMs: 100 });
  t.after(() => warm.close());
  warm.warm(s.url, 2);
  await until('two connections accepted', () => s.accepted === 2 && s.open.size === 2);
  assert.equal(warm.waitingFor(s.url), 2);
  await until('both closed once unused for too long', () => s.open.size === 0);
  assert.equal(warm.waitingFor(s.url), 0);
});
