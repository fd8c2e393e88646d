/**
 * 414 or 431 for a request over the URL or header limits, else null. uWebSockets.js parses a
 * header block that arrives in one read whatever its size (and cuts the connection, with no
 * status, for one over 4 KiB split across reads or with more than 49 headers), so the limits
 * with a status are applied here, once a request has been parsed.
 */
export function requestTooLarge(
  url: string,
  query: string,
  headers: { forEach(cb: (k: string, v: string) => void): void },
  limits: { maxUrlBytes: number; maxHeaderBytes: number },
): string | null {
  if (url.length + query.length > limits.maxUrlBytes) return '414 URI Too Long';
  let bytes = 0;
  headers.forEach((k, v) => (bytes += k.length + v.length + 4));
  if (bytes > limits.maxHeaderBytes) return '431 Request Header Fields Too Large';
  return null;
}
