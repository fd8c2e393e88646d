import type { HttpResponse } from '../uws.ts';

export interface HttpOptions {
  allowedOrigins: Set<string>;
  maxBodyBytes: number;
  trustProxy: boolean;
  /** Path and query together; longer: 414. */
  maxUrlBytes: number;
  /** Header names and values together; more: 431. */
  maxHeaderBytes: number;
  /** Calls in one tRPC batch; more: 400 before any runs. */
  maxBatchCalls: number;
}

/** CORS for browser front ends on ALLOWED_ORIGINS; other origins get no CORS headers. */
export function corsHeaders(origin: string | null, allowed: Set<string>): Record<string, string> {
  if (!origin || !allowed.has(origin)) return {};
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-credentials': 'true',
    'access-control-allow-headers': 'authorization, content-type, trpc-accept, trpc-batch-mode, x-request-id',
    'access-control-allow-methods': 'GET, POST, PUT, OPTIONS',
    'access-control-max-age': '600',
    vary: 'origin',
  };
}

export function clientIp(res: HttpResponse, headers: Headers, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = headers.get('x-forwarded-for');
    if (xff) return xff.split(',')[0]!.trim().slice(0, 64);
  }
  return Buffer.from(res.getRemoteAddressAsText()).toString();
}
