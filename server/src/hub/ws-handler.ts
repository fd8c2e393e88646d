import type { WebSocketBehavior, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { clientFrame, clientFrameTypes, PROTOCOL } from '../protocol/frames.ts';
import { DomainError } from '../errors.ts';
import { CloseCodes } from '../protocol/codes.ts';
import { uws, type HttpRequest, type HttpResponse, type WebSocket } from '../uws.ts';
import type { Connection } from './connection.ts';
import { PRESENCE_SNAPSHOT_MAX, type Hub, type UserWatch } from './hub.ts';
import type { Authenticator, SocketLogin } from './ports.ts';

interface UserData {
  login: SocketLogin;
  watch: UserWatch;
  resumeAnnounced: boolean;
  conn?: Connection;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

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
}): WebSocketBehavior<UserData> {
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
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      const reject = (status: string, text: string) => {
        if (!aborted) res.cork(() => res.writeStatus(status).writeHeader('content-type', 'text/plain').end(text));
      };
      if (origin && !d.allowedOrigins.has(origin)) return reject('403 Forbidden', 'origin not allowed');
      const offered = protocols.split(',').map((p) => p.trim()).filter(Boolean);
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
          res.cork(() => {
            res.upgrade<UserData>({ login, watch, resumeAnnounced }, key, offered.includes(PROTOCOL) ? PROTOCOL : '', extensions, context);
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
      data.conn = d.hub.attach(ws, data.login, data.watch, { resumeAnnounced: data.resumeAnnounced });
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
        conn.closed = true;
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
      const parsed = clientFrame.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        return bad(`${type}: ${issue.path.join('.') || 'frame'}: ${issue.message}`, ref);
      }
      d.metrics.framesIn.inc({ type });
      d.hub.handle(conn, parsed.data);
    },

    close: (ws: WebSocket<UserData>) => {
      const conn = ws.getUserData().conn;
      if (!conn) return;
      d.hub.closed(conn);
    },
  };
}

