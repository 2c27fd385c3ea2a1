/**
 * Where requests go: the origin, the path of an object, and the region used for V4 signing, from the
 * client's endpoint options (Alibaba Cloud OSS documentation, "Regions and endpoints").
 */
import { isIP } from 'node:net';
import { uriEncode } from './uri.ts';

export interface EndpointOptions {
  region?: string | undefined;
  endpoint?: string | undefined;
  internal?: boolean | undefined;
  cname?: boolean | undefined;
  pathStyle?: boolean | undefined;
}

export interface ResolvedEndpoint {
  /** `https:` or `http:` */
  readonly protocol: string;
  /** Host and port of the service endpoint, without a bucket. */
  readonly host: string;
  readonly region: string;
  readonly cname: boolean;
  readonly pathStyle: boolean;
}

/** Region used for V4 signing when nothing names one: local servers accept any. */
export const DEFAULT_LOCAL_REGION = 'cn-hangzhou';

const REGION = /^[a-z]{2,}(-[a-z0-9]+)+$/;
const BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

export class EndpointError extends Error {
  override name = 'EndpointError';
}

/** Resolve the options; throws {@link EndpointError} naming the option, the value and what is allowed. */
export function resolveEndpoint(opts: EndpointOptions): ResolvedEndpoint {
  const region = opts.region?.replace(/^oss-/, '');
  if (region?.endsWith('-internal')) {
    // V4 signs with the region id, which never carries -internal: every request would fail its signature
    throw new EndpointError(
      `region: got \`${opts.region}\`; allowed a region id such as ${region.replace(/-internal$/, '')}; for the internal endpoint set internal: true beside it`,
    );
  }
  if (region !== undefined && region !== '' && !REGION.test(region)) {
    throw new EndpointError(
      `region: got \`${opts.region}\`; allowed a region id such as cn-hangzhou or ap-southeast-1`,
    );
  }
  let text = opts.endpoint?.trim();
  if (!text) {
    if (!region)
      throw new EndpointError(
        'endpoint or region: neither given; set a region such as cn-hangzhou, or an endpoint',
      );
    text = `oss-${region}${opts.internal ? '-internal' : ''}.aliyuncs.com`;
  }
  const url = parseEndpoint(text);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const local = isIP(hostname) !== 0 || hostname === 'localhost';
  const derived = /^oss-([a-z0-9-]+?)(-internal)?\.aliyuncs\.com$/.exec(hostname)?.[1];
  return {
    protocol: url.protocol,
    host: url.host,
    region: region || derived || DEFAULT_LOCAL_REGION,
    cname: opts.cname === true,
    pathStyle: opts.pathStyle ?? (local && opts.cname !== true),
  };
}

function parseEndpoint(text: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new EndpointError(
      `endpoint: got \`${text}\`; allowed a host such as oss-cn-hangzhou.aliyuncs.com or a URL such as http://127.0.0.1:9000`,
    );
  }
  // the URL parser drops a bare `?` and a fragment without a word; the text itself must not carry them
  if (
    (url.protocol !== 'https:' && url.protocol !== 'http:') ||
    (url.pathname !== '/' && url.pathname !== '') ||
    /[?#]/.test(text)
  ) {
    throw new EndpointError(
      `endpoint: got \`${text}\`; allowed an http(s) origin without a path, query or fragment`,
    );
  }
  if (url.port === '0') {
    throw new EndpointError(`endpoint: got \`${text}\`; allowed ports 1-65535`);
  }
  return url;
}

/** Throws unless `bucket` is a valid OSS bucket name. */
export function validateBucket(bucket: string): void {
  if (!BUCKET.test(bucket)) {
    throw new EndpointError(
      `bucket: got \`${bucket}\`; allowed 3-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit`,
    );
  }
}

/** Origin (scheme + host) for a request to `bucket`. */
export function originFor(ep: ResolvedEndpoint, bucket: string | undefined): string {
  if (!bucket || ep.cname || ep.pathStyle) return `${ep.protocol}//${ep.host}`;
  return `${ep.protocol}//${bucket}.${ep.host}`;
}

/** Request path (URI-encoded) for `bucket`/`key`. */
export function pathFor(ep: ResolvedEndpoint, bucket: string | undefined, key: string | undefined): string {
  const keyPath = key ? uriEncode(key, true) : '';
  if (bucket && ep.pathStyle && !ep.cname) return `/${bucket}/${keyPath}`;
  return `/${keyPath}`;
}
