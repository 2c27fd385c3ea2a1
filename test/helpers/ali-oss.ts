// An ali-oss client aimed at a local server: virtual-host style via a lookup that sends every host to 127.0.0.1.
import { Agent } from 'node:http';
import type { LookupFunction } from 'node:net';
import OSS from 'ali-oss';

const loopback = ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) =>
  opts.all
    ? cb(null, [{ address: '127.0.0.1', family: 4 }])
    : cb(null, '127.0.0.1', 4)) as unknown as LookupFunction;

export function aliOssFor(serverUrl: string, opts: { v4: boolean; bucket?: string }): OSS {
  const port = new URL(serverUrl).port;
  return new OSS({
    accessKeyId: 'test-ak',
    accessKeySecret: 'test-sk',
    bucket: opts.bucket ?? 'test-bucket',
    endpoint: `http://localhost:${port}`,
    region: 'oss-cn-hangzhou',
    authorizationV4: opts.v4,
    agent: new Agent({ keepAlive: true, lookup: loopback }),
    timeout: 60_000,
  } as OSS.Options);
}
