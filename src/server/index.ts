/** The OSS-compatible server used by tests, benchmarks, the chaos suite and the demo. */
export { startServer, type ServerOptions, type OssTestServer, type RequestRecord } from './app.ts';
export type { FaultAction, FaultRule } from './faults.ts';
export type { ServerCredential } from './auth.ts';
export {
  startIdTokenIssuer,
  startStsStandIn,
  type IdTokenIssuer,
  type IdTokenClaims,
  type StsStandIn,
  type StsRecord,
  type StsOptions,
} from './sts.ts';
export {
  startEcsMetadataStandIn,
  type EcsMetadataStandIn,
  type EcsMetadataOptions,
  type EcsMetadataRecord,
} from './ecs-metadata.ts';
export { startCdnStandIn, type CdnStandIn, type CdnStandInOptions, type CdnRecord } from './cdn.ts';
