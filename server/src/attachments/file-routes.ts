import { DomainError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { HttpResponse, TemplatedApp } from '../uws.ts';
import type { AttachmentService } from './attachment-service.ts';
import { servedAs } from './content-check.ts';

const STATUS: Record<number, string> = {
  200: '200 OK',
  302: '302 Found',
  400: '400 Bad Request',
  403: '403 Forbidden',
  404: '404 Not Found',
  413: '413 Payload Too Large',
  500: '500 Internal Server Error',
};

const HTTP_OF: Partial<Record<DomainError['code'], number>> = { BAD_REQUEST: 400, NOT_FOUND: 404, FORBIDDEN: 403, PAYLOAD_TOO_LARGE: 413 };

/** Headers on every file the hub serves or redirects to: nothing in it runs on the hub's origin. */
const SAFE = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; sandbox",
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'private, no-store',
  'referrer-policy': 'no-referrer',
};

/**
 * `/files/<id>?t=<token>`, the hub's side of attachments' bytes. `PUT` stores an upload the
 * token allows (the disk store, or any store with ATTACHMENT_UPLOADS=hub). `GET` checks, at the
 * time of the request, that the token's user may still read the attachment (a member of its
 * conversation), then streams it from disk or redirects to the store's own short-lived signed
 * URL. Files are served as downloads unless they are raster images of a safe type.
 */
export function registerFileRoutes(app: TemplatedApp, d: { attachments: AttachmentService; logger: Logger }) {
  app.put('/files/:id', (res, req) => {
    const id = req.getParameter(0) ?? '';
    const token = new URLSearchParams(req.getQuery() ?? '').get('t') ?? '';
    const declared = Number(req.getHeader('content-length') || -1);
    const reply = replier(res);
    const claims = d.attachments.links.verify(token, id);
    if (claims?.k !== 'put') return reply(403, { error: 'invalid or expired upload link' });
    if (declared > claims.n) return reply(413, { error: `more than the ${claims.n} bytes declared` });
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((ab, isLast) => {
      if (reply.done) return;
      size += ab.byteLength;
      if (size > claims.n) return reply(413, { error: `more than the ${claims.n} bytes declared` });
      chunks.push(Buffer.from(ab.slice(0)));
      if (!isLast) return;
      d.attachments.receive(id, claims.u, Buffer.concat(chunks, size)).then(
        () => reply(200, { ok: true }),
        (err) => fail(reply, d.logger, err),
      );
    });
  });

  app.get('/files/:id', (res, req) => {
    const id = req.getParameter(0) ?? '';
    const token = new URLSearchParams(req.getQuery() ?? '').get('t') ?? '';
    const reply = replier(res);
    const claims = d.attachments.links.verify(token, id);
    if (claims?.k !== 'get') return reply(403, { error: 'invalid or expired link' });
    void (async () => {
      const row = await d.attachments.readable(claims.u, id);
      if (claims.v === 'thumb' && !row.hasThumb) throw new DomainError('NOT_FOUND', 'no thumbnail');
      const url = await d.attachments.storeUrl(row, claims.v);
      if (url) {
        if (reply.done) return;
        reply.done = true;
        return res.cork(() => {
          res.writeStatus(STATUS[302]!);
          for (const [k, v] of Object.entries(SAFE)) res.writeHeader(k, v);
          res.writeHeader('location', url).end();
        });
      }
      const body = await d.attachments.blobs.stream(`${id}/${claims.v}`);
      if (!body) throw new DomainError('NOT_FOUND', 'no such file');
      await streamOut(res, reply, body, servedAs(row.contentType, row.name, claims.v));
    })().catch((err) => fail(reply, d.logger, err));
  });
}

type Reply = ((status: number, body: unknown) => void) & { done: boolean };

/** One answer per request: none after the client went away or after the first. */
function replier(res: HttpResponse): Reply {
  const reply = ((status: number, body: unknown) => {
    if (reply.done) return;
    reply.done = true;
    res.cork(() => {
      res
        .writeStatus(STATUS[status] ?? `${status} Error`)
        .writeHeader('content-type', 'application/json')
        .writeHeader('x-content-type-options', 'nosniff')
        .end(JSON.stringify(body));
    });
  }) as Reply;
  reply.done = false;
  res.onAborted(() => (reply.done = true));
  return reply;
}

function fail(reply: Reply, logger: Logger, err: unknown) {
  if (err instanceof DomainError) return reply(HTTP_OF[err.code] ?? 400, { error: err.message });
  logger.error({ err }, 'file request failed');
  reply(500, { error: 'internal error' });
}

/** Streams chunks with backpressure: each write waits for the socket to drain when uWS says so. */
async function streamOut(
  res: HttpResponse,
  reply: Reply,
  body: AsyncIterable<Uint8Array>,
  as: { contentType: string; disposition: string },
) {
  if (reply.done) return;
  reply.done = true;
  let aborted = false;
  let wake: (() => void) | null = null;
  res.onAborted(() => {
    aborted = true;
    wake?.();
  });
  res.cork(() => {
    res.writeStatus(STATUS[200]!).writeHeader('content-type', as.contentType).writeHeader('content-disposition', as.disposition);
    for (const [k, v] of Object.entries(SAFE)) res.writeHeader(k, v);
  });
  for await (const chunk of body) {
    if (aborted) return;
    let ok = true;
    res.cork(() => (ok = res.write(chunk)));
    if (!ok) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        res.onWritable(() => {
          resolve();
          return true;
        });
      });
      wake = null;
    }
  }
  if (!aborted) res.cork(() => res.end());
}
