import type { HttpResponse } from '../uws.ts';

export class BodyTooLarge extends Error {}

/** Collects a request body (chunks are copied: uWS reuses their memory), up to `limit` bytes. */
export function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    res.onData((ab, isLast) => {
      if (failed) return;
      size += ab.byteLength;
      if (size > limit) {
        failed = true;
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(Buffer.from(ab.slice(0)));
      if (isLast) resolve(Buffer.concat(chunks, size));
    });
  });
}
