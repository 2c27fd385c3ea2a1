/** The server's clock, for ages of things the server dated (uploads, parts): the runner's clock may be off. */
import type { OssClient } from '../oss/index.ts';

/** Server time in ms, learned from the Date of the client's latest answer; the local clock before any. */
export function serverNow(client: OssClient): number {
  const learned = (client as { serverNow?: () => number }).serverNow;
  return typeof learned === 'function' ? learned.call(client) : Date.now();
}

/** A local time (e.g. a file's mtime) on the server's clock. */
export function toServerTime(client: OssClient, localMs: number): number {
  return localMs + (serverNow(client) - Date.now());
}
