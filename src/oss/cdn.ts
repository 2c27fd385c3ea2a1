/**
 * Alibaba Cloud CDN and DCDN cache refresh after an upload: RefreshObjectCaches (CDN API 2018-05-10) and
 * RefreshDcdnObjectCaches (DCDN API 2018-01-15), with the daily quota from DescribeRefreshQuota /
 * DescribeDcdnRefreshQuota.
 *
 * Documented limits (https://www.alibabacloud.com/help/en/cdn/developer-reference/api-cdn-2018-05-10-refreshobjectcaches,
 * https://www.alibabacloud.com/help/doc-detail/130620.htm): at most 1,000 URLs or 100 directories per
 * request, URLs separated by line feeds; by default 10,000 URLs and 100 directories per account per day.
 * DCDN requires every URL of a request to be of one domain (CDN allows a few), so each request here
 * carries one domain's URLs.
 */
import type { Credentials, CredentialsProvider } from './client.ts';
import type { RetryPolicy } from './retry.ts';
import { CloudApiError, callRpc, rpcEndpoint } from './rpc-client.ts';

export type CdnProduct = 'cdn' | 'dcdn';
export type RefreshObjectType = 'File' | 'Directory';

export const CDN_APIS = {
  cdn: {
    endpoint: 'https://cdn.aliyuncs.com',
    version: '2018-05-10',
    refresh: 'RefreshObjectCaches',
    quota: 'DescribeRefreshQuota',
  },
  dcdn: {
    endpoint: 'https://dcdn.aliyuncs.com',
    version: '2018-01-15',
    refresh: 'RefreshDcdnObjectCaches',
    quota: 'DescribeDcdnRefreshQuota',
  },
} as const satisfies Record<
  CdnProduct,
  { endpoint: string; version: string; refresh: string; quota: string }
>;

export const MAX_REFRESH_PER_REQUEST: Record<RefreshObjectType, number> = { File: 1000, Directory: 100 };
/** The default daily quotas; an account can have more (DescribeRefreshQuota tells). */
export const DEFAULT_DAILY_REFRESH_QUOTA: Record<RefreshObjectType, number> = {
  File: 10_000,
  Directory: 100,
};

/** CDN retries: longer than OSS's, so that a per-minute refresh limit can pass within the attempts. */
export const CDN_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 30_000 };

interface CdnCallOptions {
  product: CdnProduct;
  credentials: Credentials | CredentialsProvider;
  /** @default the product's public endpoint */
  endpoint?: string | undefined;
  signal?: AbortSignal | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  /** Per attempt. @default 30 s */
  timeoutMs?: number | undefined;
  onRetry?:
    ((info: { action: string; attempt: number; delayMs: number; error: CloudApiError }) => void) | undefined;
}

export interface RefreshCdnOptions extends CdnCallOptions {
  /** Absolute http(s) URLs; for Directory, the directories' URLs. Duplicates are sent once. */
  urls: readonly string[];
  /** @default 'File' */
  objectType?: RefreshObjectType | undefined;
  /** After each accepted request, e.g. to log progress. */
  onBatch?: ((b: RefreshBatchDone) => void) | undefined;
}

export interface RefreshBatchDone {
  index: number;
  batches: number;
  domain: string;
  urls: number;
  taskIds: string[];
  requestId: string | undefined;
}

export interface RefreshCdnResult {
  /** Requests sent and accepted. */
  batches: number;
  /** URLs (or directories) accepted for refresh. */
  refreshed: number;
  taskIds: string[];
  requestIds: string[];
}

export interface RefreshBatch {
  domain: string;
  urls: string[];
}

function validateProduct(product: unknown): asserts product is CdnProduct {
  if (product !== 'cdn' && product !== 'dcdn')
    throw new Error(`product: "${String(product)}" is not one of cdn, dcdn`);
}

/** One domain's URLs per batch, at most the per-request limit, in the order given. */
export function planRefreshBatches(
  urls: readonly string[],
  objectType: RefreshObjectType = 'File',
): RefreshBatch[] {
  if (objectType !== 'File' && objectType !== 'Directory')
    throw new Error(`objectType: "${String(objectType)}" is not one of File, Directory`);
  const byDomain = new Map<string, string[]>();
  const seen = new Set<string>();
  urls.forEach((raw, i) => {
    const text = typeof raw === 'string' ? raw.trim() : '';
    let url: URL | undefined;
    try {
      url = new URL(text);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname)
      throw new Error(`urls[${i}]: "${String(raw)}" is not an absolute http(s) URL`);
    // line feeds separate the URLs of a request
    if (/[\r\n]/.test(text)) throw new Error(`urls[${i}]: "${text}" contains a line break`);
    if (seen.has(text)) return;
    seen.add(text);
    const list = byDomain.get(url.hostname) ?? [];
    list.push(text);
    byDomain.set(url.hostname, list);
  });
  const limit = MAX_REFRESH_PER_REQUEST[objectType];
  const batches: RefreshBatch[] = [];
  for (const [domain, list] of byDomain) {
    for (let i = 0; i < list.length; i += limit) batches.push({ domain, urls: list.slice(i, i + limit) });
  }
  return batches;
}

/**
 * Refresh the URLs in as few requests as the limits allow. Stops at the first refusal (for instance
 * QuotaExceeded.Refresh) and throws it: the batches before it stay accepted, as `onBatch` reported.
 */
export async function refreshCdnUrls(o: RefreshCdnOptions): Promise<RefreshCdnResult> {
  validateProduct(o.product);
  const api = CDN_APIS[o.product];
  const objectType = o.objectType ?? 'File';
  const plan = planRefreshBatches(o.urls, objectType);
  const endpoint = rpcEndpoint(o.endpoint ?? api.endpoint).origin;
  const result: RefreshCdnResult = { batches: 0, refreshed: 0, taskIds: [], requestIds: [] };
  for (const [index, batch] of plan.entries()) {
    const answer = await callRpc({
      endpoint,
      action: api.refresh,
      version: api.version,
      params: { ObjectPath: batch.urls.join('\n'), ObjectType: objectType },
      credentials: o.credentials,
      retry: { ...CDN_RETRY, ...o.retry },
      timeoutMs: o.timeoutMs,
      signal: o.signal,
      onRetry: o.onRetry,
    });
    const taskIds =
      typeof answer.RefreshTaskId === 'string' || typeof answer.RefreshTaskId === 'number'
        ? String(answer.RefreshTaskId)
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean)
        : [];
    if (taskIds.length === 0)
      throw new CloudApiError({
        status: 200,
        code: 'InvalidResponse',
        apiMessage: 'the answer has no RefreshTaskId',
        requestId: answer.RequestId,
        action: api.refresh,
        host: new URL(endpoint).host,
      });
    result.batches++;
    result.refreshed += batch.urls.length;
    result.taskIds.push(...taskIds);
    if (answer.RequestId) result.requestIds.push(answer.RequestId);
    o.onBatch?.({
      index,
      batches: plan.length,
      domain: batch.domain,
      urls: batch.urls.length,
      taskIds,
      requestId: answer.RequestId,
    });
  }
  return result;
}

export interface RefreshQuota {
  /** URLs that may be refreshed per day, and what is left of it today. */
  urlQuota: number;
  urlRemain: number;
  dirQuota: number;
  dirRemain: number;
  requestId: string | undefined;
}

/** Today's refresh quota; the service answers the counts as strings. */
export async function describeRefreshQuota(o: CdnCallOptions): Promise<RefreshQuota> {
  validateProduct(o.product);
  const api = CDN_APIS[o.product];
  const endpoint = rpcEndpoint(o.endpoint ?? api.endpoint).origin;
  const answer = await callRpc({
    endpoint,
    action: api.quota,
    version: api.version,
    params: {},
    credentials: o.credentials,
    retry: { ...CDN_RETRY, ...o.retry },
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    onRetry: o.onRetry,
  });
  const count = (field: string): number => {
    const v = answer[field];
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n))
      throw new CloudApiError({
        status: 200,
        code: 'InvalidResponse',
        apiMessage: `${field} is ${JSON.stringify(v)}, not a count`,
        requestId: answer.RequestId,
        action: api.quota,
        host: new URL(endpoint).host,
      });
    return n;
  };
  return {
    urlQuota: count('UrlQuota'),
    urlRemain: count('UrlRemain'),
    dirQuota: count('DirQuota'),
    dirRemain: count('DirRemain'),
    requestId: answer.RequestId,
  };
}
