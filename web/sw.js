/*
 * The web client's service worker (served as /assets/sw.js, scope /assets/): shows the hub's Web
 * Push notifications and opens the conversation when one is clicked. The payload is the hub's
 * `{conv, title, body, count, badge, url}`; the conversation id is the notification's tag, so a
 * newer push for the same conversation replaces the one on screen.
 */
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : '' };
  }
  const title = typeof data.title === 'string' && data.title ? data.title : 'Hubbub';
  const shown = self.registration.showNotification(title, {
    body: typeof data.body === 'string' ? data.body : 'New message',
    tag: typeof data.conv === 'string' ? data.conv : undefined,
    renotify: true,
    data: { url: typeof data.url === 'string' ? data.url : '/' },
  });
  const badge =
    typeof data.badge === 'number' && 'setAppBadge' in navigator ? navigator.setAppBadge(data.badge).catch(() => {}) : Promise.resolve();
  event.waitUntil(Promise.all([shown, badge]));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url || '/', self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const same = windows.find((w) => new URL(w.url).origin === url.origin);
      if (same) return same.focus().then((w) => (w && 'navigate' in w && w.url !== url.href ? w.navigate(url.href) : w));
      return self.clients.openWindow(url.href);
    }),
  );
});
