/** The OSS protocol layer's public surface. Knows nothing of GitHub or of the upload engine. */
export {
  OssClient,
  type OssClientOptions,
  type Credentials,
  type CredentialsProvider,
  type ObjectInfo,
} from './client.ts';
export { OssError, isOssError, isRetryable } from './errors.ts';
export { compareKeys } from './key-order.ts';
export { OSS_OPERATIONS, type OssOperation } from './operations.ts';
export { type Body, fileRangeBody, bufferBody, READ_CHUNK_BYTES } from './body.ts';
export {
  resolveEndpoint,
  validateBucket,
  EndpointError,
  type EndpointOptions,
  type ResolvedEndpoint,
} from './endpoint.ts';
export {
  Crc64,
  crc64,
  crc64Combine,
  parseCrc64,
  CRC64_TABLES,
  crc64FromRegister,
  updateCrc64Register,
} from './crc64.ts';
export { backoffDelayMs, sleep, DEFAULT_RETRY, type RetryPolicy } from './retry.ts';
export { refreshingCredentials, DEFAULT_REFRESH_BEFORE_MS, type RefreshOptions } from './credentials.ts';
export {
  assumeRoleWithOidc,
  stsUrl,
  DEFAULT_STS_ENDPOINT,
  MIN_ROLE_DURATION_SECONDS,
  MAX_ROLE_DURATION_SECONDS,
  ROLE_SESSION_NAME,
  type AssumeRoleWithOidcRequest,
} from './sts.ts';
export {
  rpcPercentEncode,
  rpcStringToSign,
  rpcSignature,
  rpcTimestamp,
  signRpcParams,
  type RpcMethod,
  type SignRpcRequest,
} from './rpc-signer.ts';
export {
  CloudApiError,
  isCloudApiError,
  isRetryableRpc,
  callRpc,
  type RpcCall,
  type RpcAnswer,
} from './rpc-client.ts';
export {
  refreshCdnUrls,
  describeRefreshQuota,
  planRefreshBatches,
  CDN_APIS,
  CDN_RETRY,
  MAX_REFRESH_PER_REQUEST,
  DEFAULT_DAILY_REFRESH_QUOTA,
  type CdnProduct,
  type RefreshObjectType,
  type RefreshCdnOptions,
  type RefreshCdnResult,
  type RefreshBatch,
  type RefreshBatchDone,
  type RefreshQuota,
} from './cdn.ts';
export {
  ecsRoleCredentials,
  fetchEcsRoleCredentials,
  EcsMetadataError,
  DEFAULT_METADATA_URL,
  METADATA_TOKEN_TTL_SECONDS,
  RAM_ROLE_NAME_ALLOWED,
  isRamRoleName,
  type EcsRoleOptions,
  type EcsRoleCredentials,
  type EcsMetadataStep,
} from './ecs-credentials.ts';
