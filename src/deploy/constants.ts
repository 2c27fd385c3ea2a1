/** Names of the settings (the action's inputs) and outputs, and the defaults: one table, used everywhere. */

export const INPUT = {
  path: 'path',
  bucket: 'bucket',
  region: 'region',
  endpoint: 'endpoint',
  cname: 'cname',
  internal: 'internal',
  destination: 'destination',
  threadNum: 'thread-num',
  maxInFlight: 'max-in-flight',
  partSize: 'part-size',
  enableCheckpoint: 'enable-checkpoint',
  checkpointDir: 'checkpoint-dir',
  cacheCheckpoints: 'cache-checkpoints',
  signatureVersion: 'signature-version',
  accessKeyId: 'access-key-id',
  accessKeySecret: 'access-key-secret',
  securityToken: 'security-token',
  ifNoFilesFound: 'if-no-files-found',
  overwrite: 'overwrite',
  includeHiddenFiles: 'include-hidden-files',
  contentType: 'content-type',
  cacheControl: 'cache-control',
  acl: 'acl',
  storageClass: 'storage-class',
  headers: 'headers',
  skipUnchanged: 'skip-unchanged',
  deleteOrphans: 'delete-orphans',
  deleteOrphansForce: 'delete-orphans-force',
  dryRun: 'dry-run',
  abortStaleUploads: 'abort-stale-uploads',
  roleArn: 'role-arn',
  oidcProviderArn: 'oidc-provider-arn',
  roleSessionName: 'role-session-name',
  roleDuration: 'role-duration',
  oidcAudience: 'oidc-audience',
  stsEndpoint: 'sts-endpoint',
  ecsRamRole: 'ecs-ram-role',
  rules: 'rules',
  publishLast: 'publish-last',
  deleteOrphansMinAge: 'delete-orphans-min-age',
  cdnDomain: 'cdn-domain',
  cdnProduct: 'cdn-product',
  cdnEndpoint: 'cdn-endpoint',
  shard: 'shard',
} as const;

export const OUTPUT = {
  uploadedCount: 'uploaded-count',
  skippedCount: 'skipped-count',
  verifiedCount: 'verified-count',
  updatedCount: 'updated-count',
  bytesUploaded: 'bytes-uploaded',
  bytesResumed: 'bytes-resumed',
  keys: 'keys',
  urls: 'urls',
  deletedCount: 'deleted-count',
  orphans: 'orphans',
  abortedUploads: 'aborted-uploads',
  orphansKeptCount: 'orphans-kept-count',
  changedKeys: 'changed-keys',
  deletedKeys: 'deleted-keys',
  cdnRefreshedCount: 'cdn-refreshed-count',
} as const;

/**
 * Defaults of the settings that have one, as action.yml states them (a test holds the two together). The
 * checkpoint dir's default depends on the runner and is built where it is read.
 */
export const DEFAULTS = {
  [INPUT.region]: '',
  [INPUT.endpoint]: '',
  [INPUT.cname]: 'false',
  [INPUT.internal]: 'false',
  [INPUT.destination]: '',
  [INPUT.threadNum]: '4',
  [INPUT.maxInFlight]: '128',
  [INPUT.partSize]: 'auto',
  [INPUT.skipUnchanged]: 'true',
  [INPUT.enableCheckpoint]: 'true',
  [INPUT.cacheCheckpoints]: 'true',
  [INPUT.signatureVersion]: 'v4',
  [INPUT.accessKeyId]: '',
  [INPUT.accessKeySecret]: '',
  [INPUT.securityToken]: '',
  [INPUT.roleArn]: '',
  [INPUT.oidcProviderArn]: '',
  [INPUT.roleSessionName]: '',
  [INPUT.roleDuration]: '1h',
  [INPUT.oidcAudience]: 'sts.aliyuncs.com',
  [INPUT.stsEndpoint]: '',
  [INPUT.deleteOrphans]: 'false',
  [INPUT.deleteOrphansForce]: 'false',
  [INPUT.abortStaleUploads]: '',
  [INPUT.dryRun]: 'false',
  [INPUT.ifNoFilesFound]: 'warn',
  [INPUT.overwrite]: 'true',
  [INPUT.includeHiddenFiles]: 'false',
  [INPUT.contentType]: '',
  [INPUT.cacheControl]: '',
  [INPUT.acl]: '',
  [INPUT.storageClass]: '',
  [INPUT.headers]: '',
  [INPUT.ecsRamRole]: '',
  [INPUT.rules]: '',
  [INPUT.publishLast]: '**/*.html',
  [INPUT.deleteOrphansMinAge]: '0',
  [INPUT.cdnDomain]: '',
  [INPUT.cdnProduct]: 'cdn',
  [INPUT.cdnEndpoint]: '',
  [INPUT.shard]: '',
} as const;

/** Parts of one file in flight at most. */
export const MAX_THREAD_NUM = 64;
/** Requests in flight at most across files (each holds a socket and, for a part, its buffer). */
export const MAX_IN_FLIGHT = 256;

/** GitHub's ID token names its audience; Alibaba Cloud's OIDC providers use this client id by default. */
export const DEFAULT_OIDC_AUDIENCE = DEFAULTS[INPUT.oidcAudience];
/** Shorter would abort uploads that parallel jobs are still sending. */
export const MIN_STALE_AGE_MS = 60 * 60_000;

export const IF_NO_FILES_FOUND = ['warn', 'error', 'ignore'] as const;
export type IfNoFilesFound = (typeof IF_NO_FILES_FOUND)[number];

export const ACLS = ['private', 'public-read', 'public-read-write', 'default'] as const;
export const STORAGE_CLASSES = ['Standard', 'IA', 'Archive', 'ColdArchive', 'DeepColdArchive'] as const;
export const SIGNATURE_VERSIONS = ['v4', 'v1'] as const;
export const CDN_PRODUCTS = ['cdn', 'dcdn'] as const;
/** Where the ECS RAM-role sign-in finds the instance metadata service; set only by tests and gateways. */
export const ECS_METADATA_URL_ENV = 'OSS_ECS_METADATA_URL';

/** Extra headers the `headers` input may set; everything else is owned by another input or by the engine. */
export const ALLOWED_EXTRA_HEADERS = [
  'content-disposition',
  'content-encoding',
  'content-language',
  'expires',
  'x-oss-server-side-encryption',
  'x-oss-server-side-encryption-key-id',
  'x-oss-server-side-data-encryption',
  'x-oss-tagging',
] as const;
