/** The server's clock, for ages of things the server dated (uploads, parts): the runner's clock may be off. */
import type { OssClient } from '../oss/index.ts';

/** A local time (e.g. a file's mtime) on the server's clock. */
export function toServerTime(client: OssClient, localMs: number): number {
  return localMs + (client.serverNow() - Date.now());
}
