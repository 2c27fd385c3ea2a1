/** The OSS operations this project speaks, by their API names (errors, logs and the server use these). */
export const OSS_OPERATIONS = [
  'PutObject',
  'GetObject',
  'HeadObject',
  'DeleteObject',
  'InitiateMultipartUpload',
  'UploadPart',
  'CompleteMultipartUpload',
  'ListParts',
  'AbortMultipartUpload',
  'ListMultipartUploads',
  'ListObjects',
  'DeleteMultipleObjects',
  'PutBucket',
  'CopyObject',
  'UploadPartCopy',
  'GetObjectAcl',
  'PutObjectAcl',
  // Alibaba Cloud STS, the one call made beside OSS: temporary credentials for OIDC sign-in
  'AssumeRoleWithOIDC',
] as const;

export type OssOperation = (typeof OSS_OPERATIONS)[number];
