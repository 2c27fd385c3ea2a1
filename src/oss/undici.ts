/**
 * The two parts of undici this layer uses, loaded alone: its connection pool (Agent) and its request API
 * (warm-connections.ts loads a third the same way: the connector the pool opens its connections with).
 * The package's entry point also loads fetch, WebSocket, mocks, caches and proxies, which cost every process
 * some 8 MB of memory for nothing (peak RSS of one upload, `npm run bench`). The entry point puts the same two
 * pieces together the same way: the request API is a method of any dispatcher.
 */
import Agent from 'undici/lib/dispatcher/agent.js';
import requestApi from 'undici/lib/api/api-request.js';
import type { Dispatcher } from 'undici';

export { Agent };

/** `dispatcher.request(opts)`, as undici's entry point would add it to the dispatcher. */
export function request(
  dispatcher: Dispatcher,
  opts: Dispatcher.RequestOptions,
): Promise<Dispatcher.ResponseData> {
  return requestApi.call(dispatcher, opts);
}

let shared: Agent | undefined;

/** A pool for the few requests outside an OSS client (sign-in, metadata, CDN); connections close when idle. */
export function sharedAgent(): Agent {
  shared ??= new Agent({ keepAliveTimeout: 4_000 });
  return shared;
}
