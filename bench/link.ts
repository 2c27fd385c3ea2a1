/**
 * A link emulator: a TCP proxy on 127.0.0.1 that gives loopback the shape of a runner far from its region.
 * Each direction is delayed by half the round trip; the upstream (client to server) shares one bandwidth cap
 * across every connection, like one runner's uplink; a new connection pays the TCP handshake (one round trip)
 * before its first byte arrives. Bytes of a connection are never reordered (a reordering proxy would corrupt
 * data, which the clients' CRC checks would catch). A connection whose queue holds more than a window stops
 * being read, as a TCP sender stops at its window, so memory stays bounded.
 */
import { type Server, type Socket, connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface LinkOptions {
  /** host:port the link leads to. */
  target: { host: string; port: number };
  /** Round trip added to every exchange. @default 100 */
  rttMs?: number;
  /** Upstream bandwidth shared by all connections, bytes per second. @default 50 MiB/s */
  upBytesPerSec?: number;
  /** Downstream bandwidth per direction, bytes per second; undefined: no cap. */
  downBytesPerSec?: number;
}

export interface Link {
  url: string;
  port: number;
  /** Connections opened through the link so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/** One direction's wire: a cap shared by the sockets that send on it. */
class Wire {
  private freeAt = 0;
  private readonly bytesPerSec: number | undefined;

  constructor(bytesPerSec: number | undefined) {
    this.bytesPerSec = bytesPerSec;
  }

  /** When `bytes` handed over now have left the sender, on the shared clock. */
  transmit(bytes: number, now: number): number {
    if (this.bytesPerSec === undefined) return now;
    const start = Math.max(now, this.freeAt);
    this.freeAt = start + (bytes / this.bytesPerSec) * 1000;
    return this.freeAt;
  }
}

/** Delivers chunks to `to` at their due times, in order, pausing `from` while more than `window` bytes wait. */
class DelayedPipe {
  private readonly queue: Array<{ due: number; chunk: Buffer | undefined }> = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly from: Socket;
  private readonly to: Socket;
  private readonly wire: Wire;
  private readonly delayMs: number;
  private readonly window: number;
  private readonly notBefore: number;

  constructor(o: {
    from: Socket;
    to: Socket;
    wire: Wire;
    delayMs: number;
    window: number;
    notBefore: number;
  }) {
    this.from = o.from;
    this.to = o.to;
    this.wire = o.wire;
    this.delayMs = o.delayMs;
    this.window = o.window;
    this.notBefore = o.notBefore;
    this.from.on('data', (chunk: Buffer) => this.push(chunk));
    // the end travels like data, after every byte before it: a server that answers and closes at once must
    // still have its answer delivered, a round trip later
    this.from.on('end', () => this.end());
    this.from.on('close', () => this.end());
  }

  private ended = false;

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.push(undefined);
  }

  private push(chunk: Buffer | undefined): void {
    const now = performance.now();
    const last = this.queue.length > 0 ? this.queue[this.queue.length - 1]!.due : 0;
    const sent = chunk === undefined ? now : this.wire.transmit(chunk.length, now);
    this.queue.push({ due: Math.max(sent + this.delayMs, this.notBefore, last), chunk });
    if (chunk !== undefined) {
      this.queued += chunk.length;
      if (this.queued > this.window) this.from.pause();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.queue.length === 0) return;
    const wait = Math.max(0, this.queue[0]!.due - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.deliver();
    }, wait);
  }

  private deliver(): void {
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now + 0.5) {
      const { chunk } = this.queue.shift()!;
      if (chunk === undefined) {
        this.to.end();
        return;
      }
      this.queued -= chunk.length;
      if (!this.to.destroyed) this.to.write(chunk);
    }
    if (this.queued <= this.window / 2 && this.from.isPaused()) this.from.resume();
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

export async function startLink(opts: LinkOptions): Promise<Link> {
  const rttMs = opts.rttMs ?? 100;
  const up = new Wire(opts.upBytesPerSec ?? 50 * 1024 * 1024);
  // one window per connection: what the link holds in flight in a round trip (at least 256 KiB)
  const window = Math.max(256 * 1024, ((opts.upBytesPerSec ?? 50 * 1024 * 1024) * rttMs) / 1000);
  let connections = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections++;
    const accepted = performance.now();
    const upstream = connect(opts.target.port, opts.target.host);
    open.add(client).add(upstream);
    // handshake: SYN and SYN-ACK take a round trip before the first request byte can travel
    const first = accepted + rttMs;
    const pipes = [
      new DelayedPipe({
        from: client,
        to: upstream,
        wire: up,
        delayMs: rttMs / 2,
        window,
        notBefore: first + rttMs / 2,
      }),
      new DelayedPipe({
        from: upstream,
        to: client,
        wire: new Wire(opts.downBytesPerSec),
        delayMs: rttMs / 2,
        window,
        notBefore: 0,
      }),
    ];
    // a reset ends both sides at once, as it would on a real link; an orderly close travels through the pipes
    const reset = (): void => {
      for (const p of pipes) p.stop();
      client.destroy();
      upstream.destroy();
    };
    client.on('error', reset).on('close', () => open.delete(client));
    upstream.on('error', reset).on('close', () => open.delete(upstream));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
