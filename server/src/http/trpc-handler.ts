import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import type { AnyTRPCRouter } from '@trpc/server';
import type { HttpRequest, HttpResponse } from '../uws.ts';
import type { Logger } from '../observability/logger.ts';
import { BodyTooLarge, readBody } from './read-body.ts';
import { corsHeaders, clientIp, type HttpOptions } from './http-util.ts';
import { requestTooLarge } from '../limits/request-limits.ts';
import type { Context } from '../api/trpc.ts';
import type { ApiServices } from '../api/services.ts';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Serves tRPC v11 over uWS by building a fetch Request and calling tRPC's fetch adapter, so
 * batching and error shapes are exactly the stock ones the `@trpc/client` links expect.
 */
export function trpcHandler(opts: { router: AnyTRPCRouter; services: ApiServices; logger: Logger; http: HttpOptions }) {
  return (res: HttpResponse, req: HttpRequest) => {
    // Everything needed from req is copied before the first await (uWS invalidates it).
    const method = req.getMethod().toUpperCase();
    const url = req.getUrl();
    const query = req.getQuery() ?? '';
    const tooLarge = requestTooLarge(url, query, req, opts.http);
    if (tooLarge) {
      res
        .writeStatus(tooLarge)
        .writeHeader('content-type', 'application/json')
        .end(JSON.stringify({ error: { message: tooLarge.slice(4), code: -32600, data: { httpStatus: Number(tooLarge.slice(0, 3)) } } }));
      return;
    }
    const headers = new Headers();
    req.forEach((k, v) => headers.append(k, v));
    const ip = clientIp(res, headers, opts.http.trustProxy);
    const requestId = REQUEST_ID.test(headers.get('x-request-id') ?? '') ? headers.get('x-request-id')! : randomUUID();
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const cors = corsHeaders(headers.get('origin'), opts.http.allowedOrigins);

    const run = async () => {
      let body: Buffer | undefined;
      if (method === 'POST') {
        try {
          body = await readBody(res, opts.http.maxBodyBytes);
        } catch (err) {
          if (err instanceof BodyTooLarge)
            return respond(
              413,
              { 'content-type': 'application/json' },
              JSON.stringify({
                error: { message: 'request body too large', code: -32600, data: { code: 'PAYLOAD_TOO_LARGE', httpStatus: 413 } },
              }),
            );
          throw err;
        }
      }
      const request = new Request(`http://hub${url}${query ? '?' + query : ''}`, {
        method,
        headers,
        body: body?.length ? new Uint8Array(body) : undefined,
      });
      const log = opts.logger.child({ reqId: requestId });
      const response = await fetchRequestHandler({
        endpoint: '/trpc',
        req: request,
        router: opts.router,
        // A batch over the limit is refused whole (400) before any of its calls runs; the calls
        // of a smaller one are each charged to the caller's budget (api/trpc.ts).
        maxBatchSize: opts.http.maxBatchCalls,
        createContext: (): Context => ({
          services: opts.services,
          log,
          req: {
            ip,
            requestId,
            userAgent: headers.get('user-agent') ?? undefined,
            authorization: headers.get('authorization') ?? undefined,
          },
        }),
        onError: ({ error, path }) => {
          if (error.code === 'INTERNAL_SERVER_ERROR') log.error({ err: error.cause ?? error, path }, 'trpc error');
        },
      });
      const out: Record<string, string> = {};
      response.headers.forEach((v, k) => (out[k] = v));
      respond(response.status, out, Buffer.from(await response.arrayBuffer()));
    };

    const respond = (status: number, hdrs: Record<string, string>, payload: string | Buffer) => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(`${status} ${STATUS_CODES[status] ?? ''}`);
        for (const [k, v] of Object.entries({ ...hdrs, ...cors, 'x-request-id': requestId })) res.writeHeader(k, v);
        res.end(payload);
      });
    };

    run().catch((err) => {
      opts.logger.error({ err, reqId: requestId }, 'trpc transport failed');
      respond(500, { 'content-type': 'application/json' }, JSON.stringify({ error: { message: 'internal error' } }));
    });
  };
}
