// An OssClient pointed at a local test server with its default credentials.
import { OssClient, type OssClientOptions } from '../../src/oss/index.ts';

export function clientFor(server: { url: string }, opts: Partial<OssClientOptions> = {}): OssClient {
  return new OssClient({
    credentials: { accessKeyId: 'test-ak', accessKeySecret: 'test-sk' },
    endpoint: server.url,
    retry: { baseDelayMs: 5, maxDelayMs: 50 },
    ...opts,
  });
}

/** Read a whole object back (test sizes only). */
export async function readObject(client: OssClient, bucket: string, key: string): Promise<Buffer> {
  const { body } = await client.getObject({ bucket, key });
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
