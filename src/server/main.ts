/**
 * `npm run server -- --port 9000 --data DIR [--bucket NAME]... [--auto-create-buckets]
 *   [--access-key-id ID --access-key-secret SECRET] [--no-crc]`
 * Prints one line `listening on http://127.0.0.1:PORT` and serves until SIGINT or SIGTERM.
 */
import { mkdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startServer } from './index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    data: { type: 'string' },
    bucket: { type: 'string', multiple: true, default: [] },
    'auto-create-buckets': { type: 'boolean', default: false },
    'access-key-id': { type: 'string' },
    'access-key-secret': { type: 'string' },
    'no-crc': { type: 'boolean', default: false },
  },
});
if (!values.data) throw new Error('--data: missing; give the directory where objects are stored');
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535)
  throw new Error(`--port: got \`${values.port}\`; allowed 0-65535 (0 picks one)`);
await mkdir(values.data, { recursive: true });
const accessKeyId = values['access-key-id'] ?? process.env.OSS_SERVER_ACCESS_KEY_ID ?? 'test-ak';
const accessKeySecret = values['access-key-secret'] ?? process.env.OSS_SERVER_ACCESS_KEY_SECRET ?? 'test-sk';
const server = await startServer({
  port,
  dataDir: values.data,
  buckets: values.bucket,
  autoCreateBuckets: values['auto-create-buckets'],
  credentials: [{ accessKeyId, accessKeySecret }],
  crcHeaders: !values['no-crc'],
});
process.stdout.write(`listening on ${server.url}\n`);
const stop = (): void => void server.close();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
