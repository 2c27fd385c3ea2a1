/** From validated inputs to the client and engine settings: one mapping for the action and the command line. */
import type { UploadFilesOptions, UploadItem } from '../engine/index.ts';
import type { Credentials, CredentialsProvider, OssClientOptions } from '../oss/index.ts';
import type { FoundFile } from './files.ts';
import { type HeaderRule, ruleHeaders } from './rules.ts';
import type { DeploySettings } from './settings.ts';

export function clientOptions(
  inputs: DeploySettings,
  credentials: Credentials | CredentialsProvider,
): OssClientOptions {
  return {
    credentials,
    region: inputs.region,
    endpoint: inputs.endpoint,
    cname: inputs.cname,
    internal: inputs.internal,
    signatureVersion: inputs.signatureVersion,
    // one socket per request in flight: small requests are bound by the round trip, not the bandwidth
    connections: inputs.maxInFlight,
  };
}

/** Each file's own headers: its Content-Type, then what the rules set (added to the step's shared headers). */
export function uploadItems(files: readonly FoundFile[], rules: readonly HeaderRule[]): UploadItem[] {
  return files.map((f) => ({
    file: f.file,
    key: f.key,
    headers: { 'content-type': f.contentType, ...ruleHeaders(f.rel, rules) },
  }));
}

export function uploadSettings(
  inputs: DeploySettings,
  checkpointDir: string,
): Pick<
  UploadFilesOptions,
  'bucket' | 'threadNum' | 'partSize' | 'skipUnchanged' | 'checkpoint' | 'headers'
> {
  return {
    bucket: inputs.bucket,
    threadNum: inputs.threadNum,
    partSize: inputs.partSize,
    skipUnchanged: inputs.skipUnchanged,
    checkpoint: inputs.enableCheckpoint ? { dir: checkpointDir } : false,
    headers: inputs.headers,
  };
}
