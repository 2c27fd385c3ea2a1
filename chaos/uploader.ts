/**
 * The uploader under test, in its own process so the chaos run can SIGKILL it at any moment and start it again
 * as a re-run would. argv[2] is a JSON job; prints one JSON line with the outcome and exits 0 only when every
 * file was uploaded and verified.
 */
import { OssClient } from '../src/oss/index.ts';
import { uploadFiles } from '../src/engine/index.ts';

interface Job {
  url: string;
  bucket: string;
  files: Array<{ file: string; key: string }>;
  checkpointDir: string;
  partSize: number;
  threadNum: number;
  timeoutMs: number;
}

const job = JSON.parse(process.argv[2]!) as Job;
const client = new OssClient({
  credentials: { accessKeyId: 'test-ak', accessKeySecret: 'test-sk' },
  endpoint: job.url,
  connections: job.threadNum,
  headersTimeoutMs: job.timeoutMs,
  bodyTimeoutMs: job.timeoutMs,
  retry: { baseDelayMs: 20, maxDelayMs: 400 },
});
const outcomes = await uploadFiles(job.files, {
  client,
  bucket: job.bucket,
  partSize: job.partSize,
  threadNum: job.threadNum,
  checkpoint: { dir: job.checkpointDir },
});
await client.close();
const failed = outcomes.filter((o) => !o.ok);
process.stdout.write(
  `${JSON.stringify({
    ok: outcomes.length - failed.length,
    failed: failed.map((o) => ({
      key: o.item.key,
      error: o.ok ? '' : String((o.error as Error).message ?? o.error),
    })),
  })}\n`,
);
process.exitCode = failed.length === 0 ? 0 : 1;
