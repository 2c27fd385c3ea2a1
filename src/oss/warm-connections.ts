/**
 * Connections opened before the requests that will use them. A new connection costs a round trip (two or
 * three with TLS) before its first request can leave; a runner 100-250 ms from its region pays that once per
 * connection, and a deploy of many small files opens a full window of them at once, right after its listing.
 * Opening them while the files are searched and the destination listed takes those round trips off the
 * deploy's path, as a browser's preconnect does.
 *
 * The pool (undici's Agent) asks its connector for a socket whenever it needs one; this connector hands over a
 * warmed socket for the same origin if one is ready or on its way, and otherwise connects as usual. A warmed
 * socket that failed, or that the server closed while it waited, is never handed over: the request gets a
 * fresh connection and, if that fails too, the real error. Sockets left unused are closed after a while and
 * when the client closes, so warming never holds a connection the pool does not know about for long.
 */
import type { Socket } from 'node:net';
import type { buildConnector as Types } from 'undici';
import buildConnector from 'undici/lib/core/connect.js';

/** How long a warmed socket waits for a request before it is closed: the work it was opened for is late. */
const UNUSED_MS = 15_000;

interface Warmed {
  /** Settles once the connection is up (the socket) or failed (undefined). */
  ready: Promise<Socket | undefined>;
  socket: Socket | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Takes the entry off its list (when its socket closes or fails while it waits). */
  drop: () => void;
}

export class WarmConnector {
  private readonly connector: Types.connector;
  /** Warmed sockets by origin (`protocol//host`), oldest first. */
  private readonly waiting = new Map<string, Warmed[]>();
  private closed = false;
  private readonly unusedMs: number;

  constructor(o: { timeoutMs: number; unusedMs?: number }) {
    this.connector = buildConnector({ timeout: o.timeoutMs });
    this.unusedMs = o.unusedMs ?? UNUSED_MS;
  }

  /** The connector the pool calls: a warmed socket of the origin if there is one, else a new connection. */
  readonly connect = (opts: Types.Options, callback: Types.Callback): void => {
    const next = this.waiting.get(keyOf(opts.protocol, opts.host ?? opts.hostname))?.shift();
    if (!next) {
      this.connector(opts, callback);
      return;
    }
    void next.ready.then((socket) => {
      clearTimeout(next.timer);
      if (socket && !socket.destroyed && socket.readyState === 'open') {
        socket.removeListener('error', ignore);
        socket.removeListener('close', next.drop);
        callback(null, socket);
      } else this.connector(opts, callback);
    });
  };

  /**
   * Opens `count` connections to `origin` (`https://host[:port]`) for requests about to be sent. Failures are
   * kept quiet: the request that would have used the socket connects again and meets the error itself.
   */
  warm(origin: string, count: number): void {
    if (this.closed || count <= 0) return;
    const url = new URL(origin);
    const key = keyOf(url.protocol, url.host);
    const list = this.waiting.get(key) ?? [];
    this.waiting.set(key, list);
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    for (let i = 0; i < count; i++) {
      const entry: Warmed = {
        ready: Promise.resolve(undefined),
        socket: undefined,
        timer: undefined,
        // a socket that closes while it waits leaves the list: the pool never receives a dead one
        drop: () => {
          const at = list.indexOf(entry);
          if (at >= 0) list.splice(at, 1);
          clearTimeout(entry.timer);
        },
      };
      entry.ready = new Promise((resolve) => {
        this.connector(
          { hostname, host: url.host, protocol: url.protocol, port: url.port },
          (err, socket) => {
            if (err || !socket || this.closed) {
              socket?.destroy();
              entry.drop();
              resolve(undefined);
              return;
            }
            entry.socket = socket;
            socket.on('error', ignore);
            socket.once('close', entry.drop);
            entry.timer = setTimeout(() => socket.destroy(), this.unusedMs).unref();
            resolve(socket);
          },
        );
      });
      list.push(entry);
    }
  }

  /** How many warmed connections to `origin` are ready or on their way and not yet taken. */
  waitingFor(origin: string): number {
    const url = new URL(origin);
    return this.waiting.get(keyOf(url.protocol, url.host))?.length ?? 0;
  }

  /** Closes every warmed socket not handed over; later warm() calls do nothing. */
  close(): void {
    this.closed = true;
    for (const list of this.waiting.values())
      for (const entry of list.splice(0)) {
        clearTimeout(entry.timer);
        entry.socket?.destroy();
      }
  }
}

function keyOf(protocol: string, host: string): string {
  return `${protocol}//${host}`;
}

function ignore(): void {}
