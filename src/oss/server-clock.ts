/**
 * An expiry stamped on a service's clock, moved onto ours. A provider compares it with our clock: with a
 * runner 20 minutes ahead, a 15-minute set would look expired on arrival and be refetched before every
 * request. The answer's Date header gives the offset.
 */

/** Date headers carry whole seconds: a smaller offset is their rounding, not a skew worth correcting. */
const DATE_RESOLUTION_MS = 1000;

export function onLocalClock(
  expiration: Date,
  serverDate: string | string[] | undefined,
  receivedAt: number,
): Date {
  const server = Date.parse(Array.isArray(serverDate) ? (serverDate[0] ?? '') : (serverDate ?? ''));
  if (Number.isNaN(server)) return expiration;
  const offset = server - receivedAt;
  if (Math.abs(offset) < DATE_RESOLUTION_MS) return expiration;
  return new Date(expiration.getTime() - offset);
}
