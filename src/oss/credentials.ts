/**
 * Credentials that expire: a provider for OssClient that fetches temporary credentials, hands the same set to
 * every request, and fetches the next set before the current one runs out, so a long upload never signs with
 * an expired token.
 */
import type { Credentials, CredentialsProvider } from './client.ts';

export interface RefreshOptions {
  /** Fetch the next set when the current one expires within this. @default 5 minutes */
  refreshBeforeMs?: number;
  /** After a failed refresh while the current set still works, wait this long before trying again. @default 30 s */
  retryAfterMs?: number;
  now?: () => number;
  /** A refresh failed but the current credentials still work; the next request will try again later. */
  onRefreshError?: (error: unknown) => void;
}

export const DEFAULT_REFRESH_BEFORE_MS = 5 * 60_000;

export function refreshingCredentials(
  fetch: () => Promise<Credentials>,
  opts: RefreshOptions = {},
): CredentialsProvider {
  const refreshBeforeMs = opts.refreshBeforeMs ?? DEFAULT_REFRESH_BEFORE_MS;
  const retryAfterMs = opts.retryAfterMs ?? 30_000;
  const now = opts.now ?? Date.now;
  let current: Credentials | undefined;
  let fetchedAt = 0;
  // one fetch at a time: many parts ask at once when the set nears its end
  let pending: Promise<Credentials> | undefined;
  let quietUntil = 0;

  const expiresAt = (c: Credentials): number => c.expiration?.getTime() ?? Infinity;
  const refresh = (): Promise<Credentials> => {
    pending ??= fetch()
      .then((c) => {
        current = c;
        fetchedAt = now();
        return c;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };

  return async (hint) => {
    const t = now();
    if (!current || t >= expiresAt(current)) return refresh();
    // refused by the service: replace it unless another request already has
    if (hint?.rejected === current) return refresh();
    // a set that lives shorter than the margin would be refreshed on every request: half its life at most
    const margin = Math.min(refreshBeforeMs, (expiresAt(current) - fetchedAt) / 2);
    if (t < expiresAt(current) - margin || t < quietUntil) return current;
    try {
      return await refresh();
    } catch (e) {
      // still valid: keep signing with it rather than fail a part over a refresh that may succeed later
      quietUntil = now() + retryAfterMs;
      opts.onRefreshError?.(e);
      return current;
    }
  };
}
