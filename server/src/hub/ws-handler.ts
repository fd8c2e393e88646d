import type { WebSocketBehavior, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { clientFrameTypes, PROTOCOL } from '../protocol/frames.ts';
import { parseClientFrame } from '../protocol/fast-frames.ts';
import { DomainError } from '../errors.ts';
import { CloseCodes } from '@hubbub/client/protocol';
import { uws, type HttpRequest, type HttpResponse, type WebSocket } from '../uws.ts';
import type { Connection } from './connection.ts';
import { requestTooLarge } from '../limits/request-limits.ts';
import { PRESENCE_SNAPSHOT_MAX, type Hub, type UserWatch } from './hub.ts';
import type { Authenticator, SocketLogin } from './ports.ts';

interface UserData {
  /** The upgrade's login snapshot and watch: handed to the hub at `open`, then dropped (a socket keeps no copy of its contacts). */
  login: SocketLogin | null;
  watch: UserWatch | null;
  resumeAnnounced: boolean;
  conn?: Connection;
  /** uWS ran `close` before `open` had stored the connection (a refusal, or an end during attach). */
  closedEarly?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** 16 random bytes in base64 (RFC 6455 4.1). */
const WS_KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * `GET /ws` that uWS did not upgrade: it hands an upgrade to the WebSocket behaviour only when
 * `Sec-WebSocket-Key` is 24 characters, and yields anything else to the next route. An upgrade
 * attempt with a bad key gets 400 here (not the catch-all 404), a wrong version 426.
 */
export function wsUpgradeFallback(res: HttpResponse, req: HttpRequest) {
  const upgrade = req.getHeader('upgrade').toLowerCase();
  if (upgrade !== 'websocket') {
    res
      .writeStatus('426 Upgrade Required')
      .writeHeader('upgrade', 'websocket')
      .writeHeader('content-type', 'text/plain')
      .end('WebSocket endpoint: upgrade required');
    return;
  }
  if (req.getHeader('sec-websocket-version') !== '13') return versionRequired(res);
  res.writeStatus('400 Bad Request').writeHeader('content-type', 'text/plain').end('bad Sec-WebSocket-Key');
}

/** 426 naming the one WebSocket version spoken (RFC 6455 4.4). */
function versionRequired(res: HttpResponse) {
  res
    .writeStatus('426 Upgrade Required')
    .writeHeader('sec-websocket-version', '13')
    .writeHeader('content-type', 'text/plain')
    .end('WebSocket version 13 required');
}

/**
 * Logs a refused origin at most once per `everyMs`, with how many were refused meanwhile: a
 * misconfigured ALLOWED_ORIGINS shows up in the logs, a flood of foreign origins does not fill them.
 */
export function refusedOriginLogger(logger: Logger, everyMs = 10_000, now: () => number = Date.now) {
  let last = -Infinity;
  let suppressed = 0;
  return (origin: string) => {
    const t = now();
    if (t - last < everyMs) {
      suppressed++;
      return;
    }
    last = t;
    // The origin is what the browser sent (cut to a sane length); nothing secret is in it.
    logger.warn({ origin: origin.slice(0, 200), suppressed, hint: 'set ALLOWED_ORIGINS' }, 'socket origin refused');
    suppressed = 0;
  };
}

/**
 * The `/ws` behaviour: auth at the upgrade (before a socket exists), JSON frames validated by
 * the shared protocol schemas, and hand-off to the hub.
 */
export function wsBehavior(d: {
  hub: Hub;
  auth: Authenticator;
  logger: Logger;
  metrics: Metrics;
  allowedOrigins: Set<string>;
  maxFrameBytes: number;
  idleTimeoutS: number;
  maxBackpressure: number;
  maxUrlBytes: number;
  maxHeaderBytes: number;
}): WebSocketBehavior<UserData> {
  const refusedOrigin = refusedOriginLogger(d.logger);
  return {
    // The transport takes up to 4× the limit so that an oversized frame gets a proper 1009 close
    // from the handler below; past that uWS drops the connection outright.
    maxPayloadLength: d.maxFrameBytes * 4,
    idleTimeout: d.idleTimeoutS,
    sendPingsAutomatically: true,
    maxBackpressure: d.maxBackpressure * 4,
    closeOnBackpressureLimit: false as unknown as number,
    compression: uws.DISABLED,

    upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
      const key = req.getHeader('sec-websocket-key');
      const protocols = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const authorization = req.getHeader('authorization');
      const origin = req.getHeader('origin');
      // `/ws?resume=1`: the client will send `resume` (the SDK always does); live delivery then
      // waits for it instead of starting after WS_RESUME_HOLD_MS, so a slow client's late resume
      // never follows live events it would otherwise get again.
      const resumeAnnounced = req.getQuery('resume') === '1';
      const tooLarge = requestTooLarge(req.getUrl(), req.getQuery() ?? '', req, d);
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      const reject = (status: string, text: string) => {
        if (!aborted) res.cork(() => res.writeStatus(status).writeHeader('content-type', 'text/plain').end(text));
      };
      if (tooLarge) return reject(tooLarge, tooLarge.slice(4));
      // RFC 6455 4.2.1: version 13 only (426 names it), and a key that is 16 bytes in base64.
      const version = req.getHeader('sec-websocket-version');
      if (version !== '13') {
        if (!aborted) res.cork(() => versionRequired(res));
        return;
      }
      if (!WS_KEY.test(key)) return reject('400 Bad Request', 'bad Sec-WebSocket-Key');
      if (origin && !d.allowedOrigins.has(origin)) {
        refusedOrigin(origin);
        return reject('403 Forbidden', 'origin not allowed');
      }
      const offered = protocols
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      const bearer = /^Bearer (\S+)$/.exec(authorization)?.[1] ?? offered.find((p) => p.startsWith('bearer.'))?.slice(7);
      if (!bearer) return reject('401 Unauthorized', 'missing token');
      // The token is checked first (no I/O); the user's channel is watched before the login
      // snapshot is read, so nothing that changes after the read is missed (see Hub.watchUser).
      d.auth
        .verify(bearer)
        .then(async (user) => {
          const watch = await d.hub.watchUser(user.id);
          if (aborted) return d.hub.unwatch(watch);
          let login: SocketLogin;
          try {
            login = await d.auth.login(user, PRESENCE_SNAPSHOT_MAX);
          } catch (err) {
            d.hub.unwatch(watch);
            throw err;
          }
          if (aborted) return d.hub.unwatch(watch);
          // In a turn of its own, never in this promise continuation: a continuation may run in
          // the microtask drain of a uWS handler for another connection (the login resolved by
          // something that handler did), and uWS notes "upgraded while parsing" per app, not per
          // connection. It would take this socket for the one being parsed: that read is cut
          // short, its response stays corked, and this socket is handed to the loop in its place
          // (uWS.js 20.30 then aborts the process on the held cork, or leaves both sockets broken).
          // setImmediate runs in libuv's check phase, after uWS has dispatched every read.
          setImmediate(() => {
            if (aborted) return d.hub.unwatch(watch);
            try {
              res.cork(() => {
                res.upgrade<UserData>(
                  { login, watch, resumeAnnounced },
                  key,
                  offered.includes(PROTOCOL) ? PROTOCOL : '',
                  extensions,
                  context,
                );
              });
            } catch (err) {
              // Outside the promise chain now: logged here rather than ending the process.
              d.hub.unwatch(watch);
              d.logger.error({ err }, 'socket upgrade failed');
            }
          });
        })
        .catch((err) => {
          if (err instanceof DomainError) return reject('401 Unauthorized', 'invalid token');
          // The database or the bus is away: the token may be fine, so not a 401 (retry later).
          d.logger.warn({ err: (err as Error).message }, 'socket login failed');
          reject('503 Service Unavailable', 'try again');
        });
    },

    open: (ws: WebSocket<UserData>) => {
      const data = ws.getUserData();
      const conn = d.hub.attach(ws, data.login!, data.watch!, { resumeAnnounced: data.resumeAnnounced });
      data.conn = conn;
      data.login = null;
      data.watch = null;
      // Every close path ends in Hub.closed exactly once (it is idempotent), even one that ran
      // synchronously inside attach, before `data.conn` was set.
      if (data.closedEarly) d.hub.closed(conn);
    },

    message: (ws: WebSocket<UserData>, message: ArrayBuffer, isBinary: boolean) => {
      const conn = ws.getUserData().conn!;
      if (conn.closed) return;
      const bad = (msg: string, ref?: unknown) => {
        d.metrics.framesIn.inc({ type: 'invalid' });
        d.hub.error(conn, typeof ref === 'string' && ref.length <= 64 ? ref : undefined, 'BAD_REQUEST', msg);
      };
      if (message.byteLength > d.maxFrameBytes) {
        d.metrics.closes.inc({ reason: 'FRAME_TOO_LARGE' });
        conn.markClosed();
        ws.end(CloseCodes.FRAME_TOO_LARGE.code, `frame over ${d.maxFrameBytes} bytes`);
        return;
      }
      if (isBinary) return bad('binary frames are not supported: send JSON text');
      let text: string;
      try {
        text = utf8.decode(message);
      } catch {
        return bad('frame is not valid UTF-8');
      }
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        return bad('frame is not valid JSON');
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('frame must be a JSON object');
      const type = (raw as { type?: unknown }).type;
      const ref = (raw as { ref?: unknown }).ref;
      if (typeof type !== 'string' || !clientFrameTypes.has(type)) return bad(`unknown frame type`, ref);
      const parsed = parseClientFrame(raw);
      if (!parsed.ok) return bad(`${type}: ${parsed.issue.path.join('.') || 'frame'}: ${parsed.issue.message}`, ref);
      d.metrics.framesIn.inc({ type });
      d.hub.handle(conn, parsed.frame);
    },

    close: (ws: WebSocket<UserData>) => {
      const data = ws.getUserData();
      if (!data.conn) {
        data.closedEarly = true;
        return;
      }
      d.hub.closed(data.conn);
    },
  };
}
