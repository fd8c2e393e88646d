/**
 * The chat page for people, in a real browser (Debian's chromium through puppeteer-core) against
 * two hub processes on one Redis and PostgreSQL: Alice on a phone (390×844, touch) through
 * replica 1, Bob in a desktop window through replica 2, Carol as an SDK socket in Node. Phone
 * layout and routes, touch targets, presence of new contacts, unread counts and previews, the
 * page's own edit and delete, text that is never lost, a refused origin, and an accessibility
 * audit at both viewports.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'puppeteer-core';
import WebSocket from 'ws';
import { createApiClient, SocketClient } from '@hubbub/client';
import { buildWeb } from '../../scripts/build-web.ts';
import {
  audit,
  DESKTOP,
  launchBrowser,
  nativeDialogs,
  openPage,
  PHONE,
  sel,
  smallTargets,
  texts,
  waitText,
  withArtifacts,
  type TestPage,
} from '../helpers/browser.ts';
import { spawnReplica, type ProcessReplica } from '../helpers/process-replica.ts';
import { testEnv, type TestEnv } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

declare const document: {
  querySelector(s: string): { textContent: string | null } | null;
  querySelectorAll(s: string): ArrayLike<unknown>;
};
declare const localStorage: { getItem(k: string): string | null; setItem(k: string, v: string): void };
declare const location: { hash: string };

const suffix = `${process.pid}${Math.random().toString(36).slice(2, 6)}`;
const people = {
  alice: { username: `alice_${suffix}`, displayName: 'Alice Archer', password: 'correct horse battery staple' },
  bob: { username: `bob_${suffix}`, displayName: 'Bob Baker', password: 'another long passphrase' },
  carol: { username: `carol_${suffix}`, displayName: 'Carol Cook', password: 'carol has a long password' },
};
/** HUBBUB_SCREENSHOTS=1 also writes the phone and desktop screenshots of README.md and docs/web-client.md. */
const docsDir = process.env.HUBBUB_SCREENSHOTS ? path.resolve(import.meta.dirname, '..', '..', 'docs') : null;
/** Presence of a new contact must show at once; the hub's grace and reconnects take 10 s and more. */
const AT_ONCE = 5000;

type Registered = Awaited<ReturnType<ReturnType<typeof createApiClient>['auth']['register']['mutate']>>;

const hash = (p: TestPage) => p.page.evaluate(() => location.hash);
const view = (p: TestPage) => p.page.$eval('.shell', (el) => (el as unknown as { dataset: { view: string } }).dataset.view);
const visible = (p: TestPage, s: string) => p.page.$(s).then((e) => e?.isVisible() ?? false);
const badge = (p: TestPage, title: string) =>
  p.page.$eval(`${sel('conv')}[data-title="${title}"]`, (el) => el.querySelector('[data-testid="unread"]')?.textContent ?? '');
const preview = (p: TestPage, title: string) =>
  p.page.$eval(`${sel('conv')}[data-title="${title}"] ${sel('conv-preview')}`, (el) => el.textContent ?? '');
const waitFor = (p: TestPage, fn: string, timeout = 20_000) => p.page.waitForFunction(fn, { timeout });

/** Resolves once the socket has been told each of `users` is online (rejects after `ms`). */
function onlineFor(sock: SocketClient, users: string[], ms: number) {
  return new Promise<void>((resolve, reject) => {
    const ok = () => users.every((u) => sock.presence.get(u)?.status === 'online');
    if (ok()) return resolve();
    const timer = setTimeout(() => (off(), reject(new Error(`not told within ${ms} ms: ${JSON.stringify([...sock.presence])}`))), ms);
    const off = sock.on('presence', () => {
      if (ok()) clearTimeout(timer), off(), resolve();
    });
  });
}

async function shot(p: TestPage, name: string) {
  if (!docsDir) return;
  mkdirSync(docsDir, { recursive: true });
  await p.page.screenshot({ path: path.join(docsDir, name) as `${string}.png` });
}

describe('browser: the page for people, on a phone and a desktop', { timeout: 240_000 }, () => {
  let env: TestEnv;
  let browser: Browser;
  const replicas: ProcessReplica[] = [];
  const proxies: TcpProxy[] = [];
  const pages: TestPage[] = [];
  let A: TestPage;
  let B: TestPage;
  let carol: SocketClient;
  const reg: Record<string, Registered> = {};
  const url = (i: number, host = '127.0.0.1') => `http://${host}:${proxies[i]!.port}`;
  const audits: string[] = [];

  /** A page already signed in (the sign-up form has its own suite). */
  async function signedIn(name: string, i: number, r: Registered, viewport: typeof PHONE | typeof DESKTOP, host = '127.0.0.1') {
    const p = await openPage(browser, name, `${url(i, host)}/`, viewport);
    await p.page.evaluate(
      (s: string) => localStorage.setItem('hubbub.session', s),
      JSON.stringify({ accessToken: r.accessToken, refreshToken: r.refreshToken, user: r.user }),
    );
    await p.page.reload();
    await waitText(p, sel('me'), r.user.displayName);
    pages.push(p);
    return p;
  }

  before(async () => {
    await buildWeb();
    env = await testEnv('postgres', { redis: true });
    proxies.push(await startTcpProxy(0), await startTcpProxy(0));
    // Pages are accepted from 127.0.0.1 only: the same page opened as localhost is a refused origin.
    env.env.ALLOWED_ORIGINS = proxies.map((p) => `http://127.0.0.1:${p.port}`).join(',');
    const [r1, r2] = await Promise.all([spawnReplica(env.env), spawnReplica(env.env)]);
    replicas.push(r1!, r2!);
    proxies[0]!.target = r1!.port;
    proxies[1]!.target = r2!.port;
    for (const [k, u] of Object.entries(people))
      reg[k] = await createApiClient({ url: `${url(1)}/trpc` }).auth.register.mutate({ email: `${u.username}@example.com`, ...u });
    carol = new SocketClient({ url: `ws://127.0.0.1:${proxies[1]!.port}/ws`, getToken: () => reg.carol!.accessToken, WebSocket });
    await carol.connect();
    browser = await launchBrowser();
    A = await signedIn('alice-phone', 0, reg.alice!, PHONE);
    B = await signedIn('bob-desktop', 1, reg.bob!, DESKTOP);
  });

  after(async () => {
    for (const p of pages) assert.deepEqual(nativeDialogs(p), [], `${p.name}: native dialogs`);
    if (audits.length) process.stderr.write(`axe audit (violations by impact):\n${audits.join('\n')}\n`);
    carol?.close();
    await browser?.close();
    for (const p of proxies) await p.close();
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
    await env?.cleanup();
  });

  test('a phone shows one column: the list (with new message and sign out), then the conversation with a back control; the address follows, back and reload work; every target is 44 px', () =>
    withArtifacts(
      'phone layout and routes',
      () => pages,
      async () => {
        assert.equal(await view(A), 'list');
        assert.ok(await visible(A, sel('new-dm')), 'New message is on the phone');
        assert.ok(await visible(A, sel('sign-out')), 'Sign out is on the phone');
        assert.equal(await visible(A, sel('conversation')), false, 'no conversation pane beside the list');
        assert.deepEqual(await smallTargets(A), [], 'list view');
        // "bo" is Bob Baker (his name, and his username's start): Start conversation takes him.
        await A.page.locator(sel('new-dm')).click();
        await A.page.type(sel('user-search'), 'bo');
        await A.page.waitForSelector(sel('search-result'));
        assert.deepEqual(await smallTargets(A), [], 'new message dialog');
        await A.page.locator(sel('start-dm')).click();
        await waitText(A, sel('conv-heading'), 'Bob Baker');
        assert.match(await hash(A), /^#\/c\/[0-9a-f-]{36}$/);
        assert.equal(await view(A), 'conv');
        assert.equal(await visible(A, sel('new-dm')), false, 'the list is behind the conversation');
        // Both online, contacts only now: each shows the other online at once.
        await waitText(A, sel('conv-sub'), 'online', AT_ONCE);
        await B.page.waitForSelector(`${sel('conv')}[data-title="Alice Archer"] .dot.online`, { timeout: AT_ONCE });
        await A.page.type(sel('composer'), 'Hello from my phone');
        await A.page.keyboard.press('Enter');
        await waitText(B, sel('conv-preview'), 'Hello from my phone');
        await B.page.locator(`${sel('conv')}[data-title="Alice Archer"]`).click();
        await waitText(B, sel('body'), 'Hello from my phone');
        // A tap on a message shows its actions (no hover on a phone).
        await A.page.locator(`${sel('message')} ${sel('body')}`).click();
        await A.page.waitForSelector(`${sel('message')}.open ${sel('edit')}`, { visible: true });
        assert.deepEqual(await smallTargets(A), [], 'conversation view with a message’s actions open');
        const conv = await hash(A);

        await A.page.locator(sel('back')).click();
        await A.page.waitForSelector('.shell[data-view="list"]');
        assert.equal(await hash(A), '', 'the back control went back in history');
        await waitFor(A, `document.activeElement?.dataset.conv === '${conv.slice(4)}'`);
        await A.page.locator(`${sel('conv')}[data-title="Bob Baker"]`).click();
        await waitFor(A, `document.querySelector('.shell').dataset.view === 'conv'`);
        assert.equal(await hash(A), conv);
        await A.page.goBack();
        await waitFor(A, `document.querySelector('.shell').dataset.view === 'list'`);
        await A.page.goForward();
        await waitFor(A, `document.querySelector('.shell').dataset.view === 'conv'`);
        await A.page.reload();
        await waitText(A, sel('conv-heading'), 'Bob Baker');
        assert.equal(await view(A), 'conv', 'a reload keeps the open conversation');
        // The same address on a desktop, loaded afresh, opens the conversation beside the list.
        await B.page.goto(`${url(1)}/`);
        await B.page.waitForSelector(sel('conv'));
        assert.equal(await B.page.$(sel('conv-heading')), null);
        await B.page.goto(`${url(1)}/${conv}`);
        await B.page.reload();
        await waitText(B, sel('conv-heading'), 'Alice Archer');
        assert.ok(await visible(B, sel('new-dm')));
      },
    ));

  test('the composer stays above the on-screen keyboard: the page is as tall as what is visible', () =>
    withArtifacts(
      'phone keyboard',
      () => pages,
      async () => {
        const meta = await A.page.$eval('meta[name="viewport"]', (el) => el.getAttribute('content') ?? '');
        assert.match(meta, /interactive-widget=resizes-content/);
        // A keyboard takes the lower 40% of the screen: what is visible shrinks, and the composer follows.
        await A.page.setViewport({ ...PHONE, height: 500 });
        try {
          await A.page
            .waitForFunction(
              (s: string) =>
                (document.querySelector(s) as unknown as { getBoundingClientRect(): { bottom: number } }).getBoundingClientRect().bottom <=
                500,
              { timeout: 3000 },
              sel('composer'),
            )
            .catch(async () =>
              assert.fail(`composer bottom at ${await A.page.$eval(sel('composer'), (el) => el.getBoundingClientRect().bottom)} px of 500`),
            );
          const height = await A.page.evaluate(
            () => (globalThis as unknown as { visualViewport: { height: number } }).visualViewport.height,
          );
          const appHeight = await A.page.evaluate(
            () =>
              (globalThis as unknown as { getComputedStyle(e: unknown): { height: string }; document: { body: unknown } }).getComputedStyle(
                (globalThis as unknown as { document: { body: unknown } }).document.body,
              ).height,
          );
          assert.equal(Math.round(parseFloat(appHeight)), Math.round(height), 'the page is the visual viewport’s height');
        } finally {
          await A.page.setViewport(PHONE);
        }
      },
    ));

  test('a group with someone online shows them online at once on every side; an empty group is refused; while disconnected nobody shows online', () =>
    withArtifacts(
      'presence',
      () => pages,
      async () => {
        await B.page.locator(sel('new-group')).click();
        await B.page.type(sel('group-title'), 'Book club');
        await B.page.locator(sel('create-group')).click();
        await waitText(B, sel('dialog-error'), 'Add at least one person to the group.');
        for (const who of [people.alice, people.carol]) {
          await B.page.locator(sel('user-search')).fill(who.displayName.slice(0, 3));
          await B.page.locator(`${sel('search-result')}[data-username="${who.username}"] button`).click();
          await waitText(B, sel('picked'), who.displayName);
        }
        await B.page.locator(sel('create-group')).click();
        await waitText(B, sel('conv-heading'), 'Book club');
        // Carol (a socket in Node) had never shared a conversation with Bob or Alice.
        await onlineFor(carol, [reg.alice!.user.id, reg.bob!.user.id], AT_ONCE);
        await B.page.locator(sel('members-button')).click();
        await waitFor(
          B,
          `[...document.querySelectorAll('[data-testid="member"]')].some((e) => e.dataset.username === '${people.carol.username}' && e.textContent.includes('online'))`,
          AT_ONCE,
        );
        await B.page.keyboard.press('Escape');

        // Alice's connection drops: her page says so and shows nobody online until it is back.
        const target = proxies[0]!.target;
        proxies[0]!.target = 1;
        proxies[0]!.dropAll();
        try {
          await A.page.waitForSelector(`${sel('banner')}:not([hidden])`);
          await waitFor(
            A,
            `!document.querySelector('.conv .dot.online, .conv-header .dot.online') && document.querySelector('[data-testid="conv-sub"]')?.textContent === 'offline'`,
          );
        } finally {
          proxies[0]!.target = target;
        }
        await A.page.waitForSelector(`${sel('banner')}[hidden]`, { timeout: 30_000 });
        await waitText(A, sel('conv-sub'), 'online');
      },
    ));

  test('unread badges count only messages from others (not the “added” note); list previews follow edits and deletes on both sides, also after a reload', () =>
    withArtifacts(
      'badges and previews',
      () => pages,
      async () => {
        await A.page.locator(sel('back')).click();
        await A.page.waitForSelector(`${sel('conv')}[data-title="Book club"]`);
        assert.equal(await preview(A, 'Book club'), 'No messages yet');
        assert.equal(await badge(A, 'Book club'), '', 'being added is not an unread message');
        const api = createApiClient({ url: `${url(1)}/trpc`, getToken: () => reg.bob!.accessToken });
        const group = (await api.conversations.list.query()).find((c) => c.title === 'Book club')!;
        const bob = new SocketClient({ url: `ws://127.0.0.1:${proxies[1]!.port}/ws`, getToken: () => reg.bob!.accessToken, WebSocket });
        await bob.connect();
        try {
          await bob.send(group.id, 'First chapter by Friday?');
          const last = await bob.send(group.id, 'Or Saturday');
          await waitFor(
            A,
            `document.querySelector('[data-testid="conv"][data-title="Book club"] [data-testid="unread"]')?.textContent === '2'`,
          );
          await A.page.reload();
          await A.page.waitForSelector(`${sel('conv')}[data-title="Book club"]`);
          assert.equal(await badge(A, 'Book club'), '2', 'after a reload too');
          await bob.edit(group.id, last.seq, 'Or Sunday');
          await waitFor(
            A,
            `document.querySelector('[data-testid="conv"][data-title="Book club"] [data-testid="conv-preview"]')?.textContent === 'Bob Baker: Or Sunday'`,
          );
          await waitFor(
            B,
            `document.querySelector('[data-testid="conv"][data-title="Book club"] [data-testid="conv-preview"]')?.textContent === 'You: Or Sunday'`,
          );
          await A.page.reload();
          await A.page.waitForSelector(`${sel('conv')}[data-title="Book club"]`);
          assert.equal(await preview(A, 'Book club'), 'Bob Baker: Or Sunday', 'the edit, after a reload');
          await bob.delete(group.id, last.seq);
          await waitFor(
            A,
            `document.querySelector('[data-testid="conv"][data-title="Book club"] [data-testid="conv-preview"]')?.textContent === 'Bob Baker: Message deleted'`,
          );
          await waitFor(
            B,
            `document.querySelector('[data-testid="conv"][data-title="Book club"] [data-testid="conv-preview"]')?.textContent === 'You: Message deleted'`,
          );
          await waitFor(
            A,
            `document.querySelector('[data-testid="conv"][data-title="Book club"] [data-testid="unread"]')?.textContent === '1'`,
          );
        } finally {
          bob.close();
        }
        // Opened: read, no badge; no note says anyone "added" anyone in a direct conversation.
        await A.page.locator(`${sel('conv')}[data-title="Book club"]`).click();
        await waitText(A, sel('note'), 'Bob Baker created the group with you and Carol Cook');
        await waitFor(A, `!document.querySelector('[data-testid="conv"][data-title="Book club"] [data-testid="unread"]')`);
        await A.page.locator(sel('back')).click();
        await A.page.locator(`${sel('conv')}[data-title="Bob Baker"]`).click();
        await waitText(A, sel('body'), 'Hello from my phone');
        assert.deepEqual(await texts(A, sel('note')), [], 'no member notes in a DM');
      },
    ));

  test('edit and delete happen in the page (an edit box, a confirm dialog), never in native pop-ups', () =>
    withArtifacts(
      'own dialogs',
      () => pages,
      async () => {
        await B.page.locator(`${sel('conv')}[data-title="Alice Archer"]`).click();
        await waitText(B, sel('conv-heading'), 'Alice Archer');
        const msg = `${sel('message')}:has(${sel('body')})`;
        await A.page.locator(`${msg} ${sel('more')}`).click();
        await A.page.locator(`${msg} ${sel('edit')}`).click();
        await A.page.waitForSelector(sel('edit-input'));
        await A.page.keyboard.press('Escape');
        await A.page.waitForSelector(sel('editor'), { hidden: true });
        await A.page.locator(`${msg} ${sel('more')}`).click();
        await A.page.locator(`${msg} ${sel('edit')}`).click();
        await A.page.locator(sel('edit-input')).fill('Hello from my phone, edited');
        await A.page.locator(sel('edit-save')).click();
        await waitText(B, sel('body'), 'Hello from my phone, edited (edited)');
        await A.page.locator(`${msg} ${sel('more')}`).click();
        await A.page.locator(`${msg} ${sel('delete')}`).click();
        await waitText(A, sel('confirm-dialog'), 'Delete this message?');
        assert.deepEqual(await smallTargets(A), [], 'confirm dialog');
        await A.page.locator(sel('confirm-cancel')).click();
        await A.page.waitForSelector(sel('confirm-dialog'), { hidden: true });
        assert.ok(
          (await texts(A, sel('body'))).some((t) => t.startsWith('Hello from my phone, edited')),
          'Cancel keeps it',
        );
        await A.page.locator(`${msg} ${sel('more')}`).click();
        await A.page.locator(`${msg} ${sel('delete')}`).click();
        await A.page.locator(sel('confirm-ok')).click();
        await waitText(B, sel('body'), 'Message deleted');
        assert.deepEqual(nativeDialogs(A), []);
      },
    ));

  test('typed text is never lost: the limit is said before sending, Send is off past it, drafts survive a reload, a refused send can be taken back to edit', () =>
    withArtifacts(
      'text kept',
      () => pages,
      async () => {
        const setComposer = (text: string) =>
          A.page.$eval(
            sel('composer'),
            (el, t) => {
              const box = el as unknown as { value: string; dispatchEvent(e: unknown): void };
              box.value = t;
              box.dispatchEvent(
                new (globalThis as unknown as { Event: new (n: string, o: object) => unknown }).Event('input', { bubbles: true }),
              );
            },
            text,
          );
        const composerValue = () => A.page.$eval(sel('composer'), (el) => (el as unknown as { value: string }).value);
        await setComposer('x'.repeat(3900));
        await waitText(A, sel('counter'), '100 characters left');
        await setComposer('x'.repeat(4100));
        await waitText(A, sel('counter'), '100 characters too long: a message holds at most 4,000.');
        assert.equal(await A.page.$eval(sel('send'), (el) => (el as unknown as { disabled: boolean }).disabled), true);
        await A.page.focus(sel('composer'));
        await A.page.keyboard.press('Enter');
        await waitText(A, sel('send-error'), 'too long');
        assert.equal((await composerValue()).length, 4100, 'the text stays in the box');
        assert.equal(await A.page.$(sel('pending')), null, 'nothing was sent');
        await A.page.reload();
        await A.page.waitForSelector(sel('composer'));
        await waitFor(A, `document.querySelector('[data-testid="composer"]').value.length === 4100`);
        await waitText(A, sel('counter'), 'too long');

        // A send the hub refuses (one made by an older page, past the limit) keeps its text, to edit.
        const conv = (await hash(A)).slice(4);
        const long = `${'y'.repeat(4001)}`;
        await A.page.evaluate(
          (key: string, v: string) => localStorage.setItem(key, v),
          `hubbub.outbox.${reg.alice!.user.id}`,
          JSON.stringify([{ cid: `too-long-${suffix}`, conv, body: long, ts: Date.now() }]),
        );
        await setComposer('');
        await A.page.reload();
        await waitText(A, sel('pending-status'), 'Not sent. It is longer than the 4,000 characters a message may hold');
        assert.equal(await A.page.$(sel('retry')), null, 'no Retry for what cannot succeed');
        await A.page.reload();
        await waitText(A, sel('pending-status'), 'Not sent.');
        await A.page.locator(sel('edit-failed')).click();
        await waitFor(A, `document.querySelector('[data-testid="composer"]').value.length === 4001`);
        assert.equal(await A.page.$(sel('pending')), null);
        await setComposer('Short again');
        await A.page.keyboard.press('Enter');
        await waitText(B, sel('body'), 'Short again');
        assert.equal(await composerValue(), '');
        await A.page.reload();
        await A.page.waitForSelector(sel('composer'));
        assert.equal(await composerValue(), '', 'a sent message leaves no draft');
      },
    ));

  test('a page opened from an origin the hub does not accept says so, naming the origin and ALLOWED_ORIGINS', () =>
    withArtifacts(
      'refused origin',
      () => pages,
      async () => {
        // A session of its own: the other pages' refresh tokens rotate, and a spent one would end them all.
        const login = await createApiClient({ url: `${url(0)}/trpc` }).auth.login.mutate({
          login: people.alice.username,
          password: people.alice.password,
        });
        const L = await signedIn('alice-by-localhost', 0, login, DESKTOP, 'localhost');
        const origin = `http://localhost:${proxies[0]!.port}`;
        await waitText(
          L,
          sel('banner'),
          `This page’s address (origin ${origin}) is not allowed by the server, so chat cannot connect. Ask the operator to add ${origin} to ALLOWED_ORIGINS.`,
        );
        const checks = await fetch(`${url(0)}/health/origin?origin=${encodeURIComponent(origin)}`).then((r) => r.json());
        assert.deepEqual(checks, { origin, allowed: false });
        await L.page.close();
        pages.splice(pages.indexOf(L), 1);
      },
    ));

  test('accessibility: an axe-core audit of every view at both viewports finds no serious or critical violation', () =>
    withArtifacts(
      'audit',
      () => pages,
      async () => {
        const serious: string[] = [];
        const run = async (p: TestPage, what: string) => {
          const r = await audit(p);
          audits.push(`${p.name} ${what}: ${JSON.stringify(r.counts)}${r.all.length ? `\n  ${r.all.join('\n  ')}` : ''}`);
          serious.push(...r.serious.map((s) => `${p.name} ${what}: ${s}`));
        };
        for (const p of [A, B]) {
          await p.page.evaluate(() => (location.hash = '#/'));
          await p.page.waitForSelector(sel('conv'), { visible: true });
          await run(p, 'list');
          await p.page.locator(`${sel('conv')}[data-title="Book club"]`).click();
          await waitText(p, sel('note'), 'created the group');
          if (p === A) await shot(A, 'phone-conversation.png');
          await p.page.locator(`${sel('message')} ${sel('more')}`).click();
          await run(p, 'conversation');
          await p.page.locator(sel('members-button')).click();
          await run(p, 'members dialog');
          await p.page.locator(sel('leave-group')).click();
          await run(p, 'confirm dialog');
          await p.page.locator(sel('confirm-cancel')).click();
          await p.page.keyboard.press('Escape');
          if (p === A) await p.page.locator(sel('back')).click();
          await p.page.locator(sel('new-dm')).click();
          await p.page.type(sel('user-search'), 'car');
          await p.page.waitForSelector(sel('search-result'));
          await run(p, 'new message dialog');
          await p.page.locator(sel('dialog-close')).click();
          for (const tab of ['wallet', 'notify']) {
            await p.page.locator(sel(`tab-${tab}`)).click();
            await p.page.waitForSelector(sel(tab === 'wallet' ? 'plans' : 'notify-convs'));
            await run(p, tab);
          }
          await p.page.locator(sel('tab-chats')).click();
          if (p === A) await shot(A, 'phone-list.png');
        }
        const S = await openPage(browser, 'signed-out', `${url(0)}/`, PHONE);
        await S.page.waitForSelector(sel('auth-form'));
        await run(S, 'sign in');
        await S.page.close();
        assert.deepEqual(serious, []);
      },
    ));
});
