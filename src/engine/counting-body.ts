/** Wraps a request body so every byte handed to the network is counted, attempt by attempt. */
import type { Body } from '../oss/index.ts';

/**
 * A body that reports bytes as they are read. When the client re-opens it for a retry, the bytes of the
 * abandoned attempt are taken back first, so progress never counts a byte twice.
 */
export function countingBody(
  inner: Body,
  onBytes: (delta: number) => void,
): Body & { readonly counted: number } {
  let counted = 0;
  return {
    length: inner.length,
    get counted() {
      return counted;
    },
    open() {
      if (counted !== 0) onBytes(-counted);
      counted = 0;
      const source = inner.open() as AsyncIterable<Uint8Array>;
      return (async function* count() {
        for await (const chunk of source) {
          counted += chunk.length;
          onBytes(chunk.length);
          yield chunk;
        }
      })();
    },
  };
}
