import type { Logger } from '../observability/logger.ts';
import type { HttpResponse, TemplatedApp } from '../uws.ts';
import { readBody } from '../http/read-body.ts';
import type { NotificationSettings } from './notification-settings.ts';
import type { UnsubscribeTokens } from './unsubscribe-token.ts';

const page = (title: string, body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;

function send(res: HttpResponse, status: string, html: string) {
  res.cork(() =>
    res.writeStatus(status).writeHeader('content-type', 'text/html; charset=utf-8').writeHeader('cache-control', 'no-store').end(html),
  );
}

/**
 * `/notifications/unsubscribe?u=<user>&s=<signature>`: the link in every digest. GET shows a
 * button (link scanners and prefetchers only GET, so a GET changes nothing); POST, from that
 * button or from a mail client's one-click `List-Unsubscribe-Post`, turns email off.
 */
export function registerUnsubscribeRoute(
  app: TemplatedApp,
  d: { tokens: UnsubscribeTokens; settings: NotificationSettings; logger: Logger },
) {
  app.get('/notifications/unsubscribe', (res, req) => {
    const u = req.getQuery('u') ?? '';
    const s = req.getQuery('s') ?? '';
    if (!d.tokens.verify(u, s)) return send(res, '400 Bad Request', page('Invalid link', '<p>This unsubscribe link is not valid.</p>'));
    const action = `?u=${encodeURIComponent(u)}&s=${encodeURIComponent(s)}`;
    send(
      res,
      '200 OK',
      page('Stop notification emails', `<form method="post" action="${action}"><button type="submit">Stop emails</button></form>`),
    );
  });
  app.post('/notifications/unsubscribe', (res, req) => {
    const u = req.getQuery('u') ?? '';
    const s = req.getQuery('s') ?? '';
    let aborted = false;
    res.onAborted(() => (aborted = true));
    void (async () => {
      try {
        await readBody(res, 4096);
        if (!d.tokens.verify(u, s)) {
          if (!aborted) send(res, '400 Bad Request', page('Invalid link', '<p>This unsubscribe link is not valid.</p>'));
          return;
        }
        await d.settings.unsubscribeEmail(u);
        if (!aborted) send(res, '200 OK', page('Unsubscribed', '<p>You will get no more notification emails.</p>'));
      } catch (err) {
        d.logger.warn({ err: (err as Error).message }, 'unsubscribe failed');
        if (!aborted) send(res, '503 Service Unavailable', page('Try again', '<p>Please try again in a moment.</p>'));
      }
    })();
  });
}
