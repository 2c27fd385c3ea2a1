/** One line a person can act on: the OSS code, EC and request id come from the error's own message. */
export function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
