/**
 * After a deploy, the CDN (or DCDN) is told to fetch again every URL whose object changed or was deleted, so
 * visitors do not keep the cached copies until they expire. The daily quota is read first and a refresh that
 * would exhaust it is announced; a refusal is reported, never thrown, because the objects are stored by then.
 */
import { describeRefreshQuota, refreshCdnUrls } from '../oss/cdn.ts';
import type { Credentials, CredentialsProvider } from '../oss/index.ts';
import { describeError } from './describe.ts';
import { percentEncode } from './header-values.ts';
import type { CdnSettings } from './settings.ts';

export interface CdnRefreshReport {
  product: CdnSettings['product'];
  /** The URLs refreshed (with dry-run: that would be). */
  urls: string[];
  /** URLs the service accepted. */
  refreshed: number;
  batches: number;
  taskIds: string[];
  /** Why the refresh stopped; the URLs of the batches before it were accepted. */
  error?: string | undefined;
  dryRun: boolean;
}

/** A quota this close to empty (10%) is announced before it runs out. */
const QUOTA_MARGIN = 0.1;

/** `https://{domain}/{key}`, each segment of the key percent-encoded as a URL path needs it. */
export function cdnUrl(domain: string, key: string): string {
  return `https://${domain}/${key.split('/').map(percentEncode).join('/')}`;
}

export async function refreshCdn(o: {
  cdn: CdnSettings;
  keys: readonly string[];
  credentials: Credentials | CredentialsProvider;
  dryRun: boolean;
  log: { info(line: string): void; warning(line: string): void };
  signal?: AbortSignal | undefined;
}): Promise<CdnRefreshReport> {
  const { cdn, log } = o;
  const urls = [...new Set(o.keys)].map((k) => cdnUrl(cdn.domain, k));
  const report: CdnRefreshReport = {
    product: cdn.product,
    urls,
    refreshed: 0,
    batches: 0,
    taskIds: [],
    dryRun: o.dryRun,
  };
  const name = cdn.product.toUpperCase();
  if (urls.length === 0) {
    log.info(`${name} refresh: no object changed or was deleted; nothing to refresh`);
    return report;
  }
  const call = {
    product: cdn.product,
    credentials: o.credentials,
    endpoint: cdn.endpoint,
    signal: o.signal,
    onRetry: (r: { action: string; attempt: number; delayMs: number; error: { code: string } }) =>
      log.info(`retrying ${r.action} (attempt ${r.attempt + 1}) in ${r.delayMs} ms after ${r.error.code}`),
  };
  try {
    const quota = await describeRefreshQuota(call);
    const left = quota.urlRemain;
    if (urls.length > left)
      log.warning(
        `${name} refresh: ${urls.length} URL(s) to refresh, but only ${left} of today's ${quota.urlQuota} remain; the service will refuse the batches past the quota (ask for a larger quota, or refresh a directory instead)`,
      );
    else if (urls.length >= left * (1 - QUOTA_MARGIN))
      log.warning(
        `${name} refresh: ${urls.length} URL(s) to refresh come within 10% of the ${left} left of today's quota of ${quota.urlQuota}`,
      );
  } catch (e) {
    o.signal?.throwIfAborted();
    log.warning(`${name} refresh: could not read today's refresh quota (${describeError(e)})`);
  }
  if (o.dryRun) {
    for (const url of urls) log.info(`dry run: would refresh ${url}`);
    log.info(`dry run: would refresh ${urls.length} URL(s) on ${name} domain ${cdn.domain}`);
    return report;
  }
  try {
    const done = await refreshCdnUrls({
      ...call,
      urls,
      onBatch: (b) => {
        report.batches = b.index + 1;
        report.refreshed += b.urls;
        log.info(
          `${name} refresh: batch ${b.index + 1} of ${b.batches}, ${b.urls} URL(s) of ${b.domain} accepted (task ${b.taskIds.join(', ')})`,
        );
      },
    });
    report.taskIds = done.taskIds;
  } catch (e) {
    o.signal?.throwIfAborted();
    report.error = `${name} refresh of ${urls.length} URL(s) failed after ${report.refreshed} were accepted: ${describeError(e)}`;
  }
  return report;
}
