/**
 * Header checks before a request is sent. The HTTP layer refuses values outside visible ASCII, space and tab
 * (RFC 9110 field values; undici also refuses a line break), and a refusal inside undici's pool leaves the
 * connection slot it picked marked busy for good: ten refused requests on a four-connection pool and the
 * next good one waits forever. So nothing the pool would refuse ever reaches it.
 */

// RFC 9110 token characters
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const OUTSIDE_VISIBLE_ASCII = /[^\t\x20-\x7e]/u;

/** Why `value` cannot be sent as a header, naming `what` but never echoing the value; undefined when it can. */
export function headerValueProblem(what: string, value: string): string | undefined {
  const bad = OUTSIDE_VISIBLE_ASCII.exec(value);
  if (!bad) return undefined;
  const code = bad[0].codePointAt(0)!;
  const char = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return `${what} has ${char} at index ${bad.index}; header values allow visible ASCII, space and tab only (encode other text, e.g. percent-encoding or RFC 2047)`;
}

export function headerNameProblem(name: string): string | undefined {
  return HEADER_NAME.test(name)
    ? undefined
    : `header name ${JSON.stringify(name)} is not an RFC 9110 token (letters, digits and !#$%&'*+-.^_\`|~)`;
}
