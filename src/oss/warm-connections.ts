/**
 * Connections opened before the requests that will use them. A new connection costs a round trip (two or
 * three with TLS) before its first request can leave; a runner 100-250 ms from its region pays that once per
 * connection, and a deploy of many small files opens a full window of them at once, right after its listing.
 * Opening them while the files are searched and the destination listed takes those round trips off the
 * deploy's path, as a browser's preconnect does.
 *
 * The pool (undici's Agent) asks its connector for a socket whenever it needs one; this connector hands over a
 * warmed socket for the same origin if one is ready or on its way, and otherwise connects as usual. A warmed
 * connection that could not be made hands its error to the request that takes it, as the request's own
 * connect would have; one the server closed while it waited is never handed over, and the request connects
 * afresh. Sockets left unused are closed after a while and when the client closes, those still connecting
 * too, so warming never holds a connection the pool does not know about for long.
 */
import type { Socket } from 'node:net';
import type { buildConnector as Types } from 'undici';
import buildConnector from 'undici/lib/core/connect.js';

/** How long a warmed socket waits for a request before it is closed: the work it was opened for is late. */
const UNUSED_MS = 15_000;

/** How a warmed connection turned out: up (the socket), failed to connect (the error), or closed while waiting. */
type Outcome = { socket: Socket } | { error: Error } | { closed: true };

interface Warmed {
  /** Settles once the connection is up, failed, or was closed before any request took it. */
  ready: Promise<Outcome>;
  /** From the first moment, so that a handshake still under way can be ended too. */
  socket: Socket;
  timer: NodeJS.Timeout;
  /** Takes the entry off its list and ends its socket unless a request has it (idempotent). */
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

  /**
   * The connector the pool calls: a warmed socket of the origin if there is one, else a new connection. A
   * warmed connection that failed hands its error on (connecting again would make the request wait out a
   * second connect timeout); one the server closed while it waited is replaced by a new connection.
   */
  readonly connect = (opts: Types.Options, callback: Types.Callback): void => {
    const next = this.waiting.get(keyOf(opts.protocol, opts.host ?? opts.hostname))?.shift();
    if (!next) {
      this.connector(opts, callback);
      return;
    }
    void next.ready.then((outcome) => {
      clearTimeout(next.timer);
      if ('error' in outcome) callback(outcome.error, null);
      else if ('socket' in outcome && !outcome.socket.destroyed && outcome.socket.readyState === 'open') {
        const socket = outcome.socket;
        socket.removeListener('error', ignore);
        socket.removeListener('close', next.drop);
        // it waited unref'd; the pool refs and unrefs it from here as requests come and go
        socket.ref();
        callback(null, socket);
      } else {
        next.socket.destroy();
        this.connector(opts, callback);
      }
    });
  };

  /**
   * Opens `count` connections to `origin` (`https://host[:port]`) for requests about to be sent. A failure is
   * kept for the request that takes the connection, which meets it as if it had connected itself.
   */
  warm(origin: string, count: number): void {
    if (this.closed || count <= 0) return;
    const url = new URL(origin);
    const key = keyOf(url.protocol, url.host);
    const list = this.waiting.get(key) ?? [];
    this.waiting.set(key, list);
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    for (let i = 0; i < count; i++) {
      let settle!: (o: Outcome) => void;
      const ready = new Promise<Outcome>((resolve) => (settle = resolve));
      // the connector returns the socket it is connecting (undici's own pool relies on no more than the
      // callback, but its connector has always returned it): kept, so that a handshake can be cut short
      const socket = this.connector(
        { hostname, host: url.host, protocol: url.protocol, port: url.port },
        (err, connected) => {
          if (err) settle({ error: err });
          else if (connected) settle({ socket: connected });
        },
      ) as unknown as Socket;
      const entry: Warmed = {
        ready,
        socket,
        // a connection no request took is not held open for long, nor past the end of the run
        timer: setTimeout(() => entry.drop(), this.unusedMs).unref(),
        drop: () => {
          const at = list.indexOf(entry);
          if (at >= 0) list.splice(at, 1);
          clearTimeout(entry.timer);
          settle({ closed: true });
          // a socket a request took was taken off the list first, and is the pool's now
          if (at >= 0) socket.destroy();
        },
      };
      // waiting for a request must not keep the process alive, nor an error on it end the process
      socket.unref();
      socket.on('error', ignore);
      // a connection that ends while it waits leaves the list: the pool never receives a dead one
      socket.once('close', entry.drop);
      list.push(entry);
    }
  }

  /** How many warmed connections to `origin` are ready or on their way and not yet taken. */
  waitingFor(origin: string): number {
    const url = new URL(origin);
    return this.waiting.get(keyOf(url.protocol, url.host))?.length ?? 0;
  }

  /** Ends every warmed connection not handed over, those still connecting too; later warm() calls do nothing. */
  close(): void {
    this.closed = true;
    for (const list of this.waiting.values()) for (const entry of [...list]) entry.drop();
  }
}

function keyOf(protocol: string, host: string): string {
  return `${protocol}//${host}`;
}

function ignore(): void {}
