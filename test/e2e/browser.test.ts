/**
 * The chat client at `/` in a real browser (Debian's chromium through puppeteer-core), against
 * real hub processes: two replicas on one Redis and PostgreSQL, each behind a loopback proxy so a
 * page keeps its origin while its hub is drained and replaced. Alice's page talks to replica 1 in
 * a desktop window, Bob's to replica 2 on a phone (390×844, touch), so every flow runs at both
 * viewports and everything they see of each other crossed the bus.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { Browser } from 'puppeteer-core';
import { createApiClient, SocketClient } from '@hubbub/client';
import { buildWeb } from '../../scripts/build-web.ts';
import {
  DESKTOP,
  launchBrowser,
  nativeDialogs,
  openPage,
  PHONE,
  sel,
  texts,
  waitText,
  withArtifacts,
  type TestPage,
} from '../helpers/browser.ts';
import { spawnReplica, type ProcessReplica } from '../helpers/process-replica.ts';
import { testEnv, type TestEnv } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

// Page-side callbacks run in the browser; the suite's tsconfig has no DOM lib, so name its globals here.
declare const document: {
  querySelector(s: string): { textContent: string | null } | null;
  querySelectorAll(
    s: string,
  ): ArrayLike<{ textContent: string | null; querySelector(s: string): { textContent: string | null } | null }> &
    Iterable<{ textContent: string | null; querySelector(s: string): { textContent: string | null } | null }>;
  body: { textContent: string | null };
};
declare const localStorage: { getItem(k: string): string | null; setItem(k: string, v: string): void };

const suffix = `${process.pid}${Math.random().toString(36).slice(2, 6)}`;
const alice = { username: `alice_${suffix}`, displayName: 'Alice Archer', password: 'correct horse battery staple' };
const bob = { username: `bob_${suffix}`, displayName: 'Bob Baker', password: 'another long passphrase' };
/** HUBBUB_SCREENSHOTS=1 also writes the screenshots of docs/web-client.md into docs/. */
const docsDir = process.env.HUBBUB_SCREENSHOTS ? path.resolve(import.meta.dirname, '..', '..', 'docs') : null;

async function register(p: TestPage, u: typeof alice) {
  await p.page.locator(sel('auth-toggle')).click();
  await p.page.type(sel('auth-email'), `${u.username}@example.com`);
  await p.page.type(sel('auth-username'), u.username);
  await p.page.type(sel('auth-displayName'), u.displayName);
  await p.page.type(sel('auth-password'), u.password);
  await p.page.locator(sel('auth-submit')).click();
  await waitText(p, sel('me'), u.displayName);
}

/** On a phone, back from a conversation to the list (the back control); on a desktop the list is always there. */
async function toList(p: TestPage) {
  if (await p.page.$('.shell[data-view="conv"] [data-testid="back"]:not([hidden])').then((b) => b?.isVisible())) {
    await p.page.locator(sel('back')).click();
    await p.page.waitForSelector('.shell[data-view="list"]');
  }
}

async function openConv(p: TestPage, title: string) {
  await toList(p);
  // A locator waits until the element is there and stable: the list redraws as events arrive.
  await p.page.locator(`${sel('conv')}[data-title="${title}"]`).click();
  await waitText(p, sel('conv-heading'), title);
}

async function say(p: TestPage, body: string) {
  await p.page.type(sel('composer'), body);
  await p.page.keyboard.press('Enter');
}

/** The open conversation's message bodies. */
const bodies = (p: TestPage) => texts(p, `${sel('message')} ${sel('body')}`);

/** The unread badge of a conversation in the list ('' when there is none). */
const badge = (p: TestPage, title: string) =>
  p.page.$eval(`${sel('conv')}[data-title="${title}"]`, (el) => el.querySelector('[data-testid="unread"]')?.textContent ?? '');

/** The seq of the open conversation's message whose body starts with `text`. */
async function seqOf(p: TestPage, text: string) {
  const seq = await p.page.$$eval(
    '[data-testid="message"]',
    (els, t) => els.find((e) => e.querySelector('[data-testid="body"]')?.textContent?.startsWith(t))?.getAttribute('data-seq') ?? null,
    text,
  );
  assert.ok(seq, `a message starting "${text}"`);
  return seq;
}

/** Opens a message's actions (⋯: a tap on a phone, the keyboard's way on a desktop) and clicks one. */
async function messageAction(p: TestPage, seq: string, action: string) {
  const msg = `${sel('message')}[data-seq="${seq}"]`;
  await p.page.locator(`${msg} ${sel('more')}`).click();
  await p.page.locator(`${msg} ${action}`).click();
}

/** Edits a message in place: the bubble becomes a text box; Enter saves. */
async function editMessage(p: TestPage, seq: string, body: string) {
  await messageAction(p, seq, sel('edit'));
  await p.page.locator(sel('edit-input')).fill(body);
  await p.page.keyboard.press('Enter');
  await p.page.waitForSelector(sel('editor'), { hidden: true });
}

async function shot(p: TestPage, name: string) {
  if (!docsDir) return;
  mkdirSync(docsDir, { recursive: true });
  await p.page.screenshot({ path: path.join(docsDir, name) as `${string}.png` });
}

describe('browser: the chat client at / on two replicas', { timeout: 240_000 }, () => {
  let env: TestEnv;
  let browser: Browser;
  const replicas: ProcessReplica[] = [];
  let proxyA: TcpProxy;
  let proxyB: TcpProxy;
  /** Erin's, cut and restored by the sign-out test. */
  let proxyC: TcpProxy;
  const pages: TestPage[] = [];
  let A: TestPage;
  let B: TestPage;

  before(async () => {
    await buildWeb();
    env = await testEnv('postgres', { redis: true });
    proxyA = await startTcpProxy(0);
    proxyB = await startTcpProxy(0);
    proxyC = await startTcpProxy(0);
    // The hub checks a socket's Origin; the pages' origins are the proxies'.
    env.env.ALLOWED_ORIGINS = [proxyA, proxyB, proxyC].map((p) => `http://127.0.0.1:${p.port}`).join(',');
    const [r1, r2] = await Promise.all([spawnReplica(env.env), spawnReplica(env.env)]);
    replicas.push(r1!, r2!);
    proxyA.target = r1!.port;
    proxyB.target = r2!.port;
    proxyC.target = r2!.port;
    browser = await launchBrowser();
    A = await openPage(browser, 'alice', `http://127.0.0.1:${proxyA.port}/`, DESKTOP);
    B = await openPage(browser, 'bob', `http://127.0.0.1:${proxyB.port}/`, PHONE);
    pages.push(A, B);
  });

  after(async () => {
    // Edit, delete and leave use the page's own dialogs: a native one freezes the page and its socket.
    for (const p of pages) assert.deepEqual(nativeDialogs(p), [], `${p.name}: native dialogs`);
    await browser?.close();
    await proxyA?.close();
    await proxyB?.close();
    await proxyC?.close();
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
    await env?.cleanup();
  });

  test('two users in two browser contexts register, start a DM and a group, and see each other’s messages live with names', () =>
    withArtifacts(
      'dm and group',
      () => pages,
      async () => {
        await register(A, alice);
        await register(B, bob);
        // Alice starts a DM with Bob through the user search.
        await A.page.locator(sel('new-dm')).click();
        await A.page.type(sel('user-search'), bob.username.slice(0, 8));
        await A.page.locator(`${sel('search-result')}[data-username="${bob.username}"] button`).click();
        await waitText(A, sel('conv-heading'), bob.displayName);
        await say(A, 'Hi Bob, it is Alice');
        // Bob's list gets the DM live (it was created on the other replica).
        await openConv(B, alice.displayName);
        await waitText(B, sel('body'), 'Hi Bob, it is Alice');
        assert.ok(
          (await texts(B, sel('sender'))).some((t) => t.includes(alice.displayName)),
          'Bob sees Alice’s name on her message',
        );
        await say(B, 'Hello Alice!');
        await waitText(A, sel('body'), 'Hello Alice!');
        // Read out to a screen reader from a live region (the list redraws rows, so it is none itself).
        await waitText(A, sel('live-region'), 'Bob Baker: Hello Alice!');
        assert.ok(
          (await texts(A, sel('sender'))).some((t) => t.includes(bob.displayName)),
          'Alice sees Bob’s name',
        );
        assert.equal(await A.page.$$eval(sel('pending'), (e) => e.length), 0, 'nothing left pending');

        // Reactions, edits and deletes reach the other side.
        await messageAction(A, await seqOf(A, 'Hello Alice!'), `${sel('react')}[data-emoji="👍"]`);
        await waitText(B, sel('reaction'), '👍 1');
        await editMessage(A, await seqOf(A, 'Hi Bob, it is Alice'), 'Hi Bob, Alice here');
        await waitText(B, sel('body'), 'Hi Bob, Alice here (edited)');
        await say(A, 'oops, wrong chat');
        await waitText(B, sel('body'), 'oops, wrong chat');
        await messageAction(A, await seqOf(A, 'oops, wrong chat'), sel('delete'));
        await A.page.locator(sel('confirm-ok')).click();
        await waitText(B, sel('body'), 'Message deleted');
        assert.ok(!(await bodies(B)).includes('oops, wrong chat'), 'the deleted text is gone');
        // Bob, on his phone, edits his own message the same way.
        await editMessage(B, await seqOf(B, 'Hello Alice!'), 'Hello Alice! 👋');
        await waitText(A, sel('body'), 'Hello Alice! 👋 (edited)');

        // A group with both, created by Bob (from the list, on his phone); Alice chats in it.
        await toList(B);
        await B.page.locator(sel('new-group')).click();
        await B.page.type(sel('group-title'), 'Weekend plans');
        await B.page.type(sel('user-search'), alice.username.slice(0, 8));
        await B.page.locator(`${sel('search-result')}[data-username="${alice.username}"] button`).click();
        await waitText(B, sel('picked'), alice.displayName);
        await B.page.locator(sel('create-group')).click();
        await waitText(B, sel('conv-heading'), 'Weekend plans');
        await openConv(A, 'Weekend plans');
        await say(A, 'Hiking on Saturday?');
        await waitText(B, sel('body'), 'Hiking on Saturday?');
        await say(B, 'Yes, 9am at the station');
        await waitText(A, sel('body'), 'Yes, 9am at the station');
        assert.equal((await bodies(A)).filter((b) => b === 'Hiking on Saturday?').length, 1);
      },
    ));

  test('unread badges rise while a conversation is closed and clear when it is opened; read receipts and typing appear on the other side', () =>
    withArtifacts(
      'unread receipts typing',
      () => pages,
      async () => {
        // Both reload: still signed in, and now each has the other as a contact, so presence shows.
        await Promise.all([A.page.reload(), B.page.reload()]);
        await waitText(A, sel('me'), alice.displayName);
        await waitText(B, sel('me'), bob.displayName);
        await A.page.waitForSelector(`${sel('conv')}[data-title="${bob.displayName}"] .dot.online`);
        await openConv(B, 'Weekend plans');
        // Bob stays in the group; Alice writes three in the DM.
        await openConv(A, bob.displayName);
        for (const m of ['Are you there?', 'Got the tickets', 'Call me later']) await say(A, m);
        await B.page.waitForFunction(
          (t: string) => document.querySelector(`[data-testid="conv"][data-title="${t}"] [data-testid="unread"]`)?.textContent === '3',
          {},
          alice.displayName,
        );
        assert.equal(await badge(B, 'Weekend plans'), '', 'the open conversation has no badge');
        // Bob mutes the group: the list shows it muted.
        await B.page.locator(sel('mute')).click();
        await waitText(B, sel('mute'), 'Unmute');
        await toList(B);
        await B.page.waitForSelector(`${sel('conv')}[data-title="Weekend plans"] ${sel('muted')}`);
        await openConv(B, alice.displayName);
        await B.page.waitForFunction(
          (t: string) => !document.querySelector(`[data-testid="conv"][data-title="${t}"] [data-testid="unread"]`),
          {},
          alice.displayName,
        );
        // Alice sees that Bob read them, under her last message.
        await A.page.waitForFunction(
          (t: string) =>
            [...document.querySelectorAll('[data-testid="message"]')].at(-1)?.querySelector('[data-testid="seen"]')?.textContent === t,
          {},
          `Seen by ${bob.displayName}`,
        );
        assert.equal((await texts(A, sel('seen'))).length, 1, 'one “seen by” line, under the newest message Bob read');
        // Bob types (without sending): Alice sees it.
        await B.page.type(sel('composer'), 'On my w');
        await waitText(A, sel('typing'), `${bob.displayName} is typing`);
        await shot(A, 'desktop-conversation.png');
        await B.page.keyboard.press('Enter');
        await waitText(A, sel('body'), 'On my w');
        // The badge survives a reload: the count comes from the server's read cursor.
        await openConv(A, 'Weekend plans');
        await say(B, 'Still typing in the DM');
        await A.page.waitForFunction(
          (t: string) => document.querySelector(`[data-testid="conv"][data-title="${t}"] [data-testid="unread"]`)?.textContent === '1',
          {},
          bob.displayName,
        );
        await A.page.reload();
        await A.page.waitForFunction(
          (t: string) => document.querySelector(`[data-testid="conv"][data-title="${t}"] [data-testid="unread"]`)?.textContent === '1',
          {},
          bob.displayName,
        );
      },
    ));

  test('a reload keeps the session and shows the history; scrolling up pages older messages', () =>
    withArtifacts(
      'reload and history',
      () => pages,
      async () => {
        // 120 older messages from Bob, sent through the SDK in Node (the same package the page uses).
        const session = await B.page.evaluate(() => JSON.parse(localStorage.getItem('hubbub.session')!) as { accessToken: string });
        const api = createApiClient({ url: `http://127.0.0.1:${proxyB.port}/trpc`, getToken: () => session.accessToken });
        const dm = (await api.conversations.list.query()).find((c) => c.kind === 'direct')!;
        const sdk = new SocketClient({ url: `ws://127.0.0.1:${proxyB.port}/ws`, getToken: () => session.accessToken, WebSocket });
        await sdk.connect();
        for (let i = 1; i <= 120; i++) await sdk.send(dm.id, `bulk ${i}`);
        sdk.close();

        const tokenBefore = await A.page.evaluate(
          () => (JSON.parse(localStorage.getItem('hubbub.session')!) as { refreshToken: string }).refreshToken,
        );
        await A.page.reload();
        await waitText(A, sel('me'), alice.displayName);
        const tokenAfter = await A.page.evaluate(
          () => (JSON.parse(localStorage.getItem('hubbub.session')!) as { refreshToken: string }).refreshToken,
        );
        assert.notEqual(tokenAfter, tokenBefore, 'the reload rotated the refresh token through auth.refresh');
        await openConv(A, bob.displayName);
        await waitText(A, sel('body'), 'bulk 120');
        const first = (await bodies(A)).length;
        assert.ok(first <= 60, `the first page is one page of history (${first} messages)`);
        // Scroll to the top until the start of the conversation shows.
        for (let i = 0; i < 10; i++) {
          const before = (await bodies(A)).length;
          await A.page.$eval(sel('messages'), (el) => {
            el.scrollTop = 0;
            el.dispatchEvent(new Event('scroll'));
          });
          const done = await A.page.evaluate(() => document.body.textContent?.includes('This is the start of the conversation.'));
          if (done) break;
          await A.page.waitForFunction((n: number) => document.querySelectorAll('[data-testid="message"]').length > n, {}, before);
        }
        await waitText(A, '.note', 'This is the start of the conversation.');
        const all = await bodies(A);
        assert.equal(all[0], 'Hi Bob, Alice here (edited)', 'the oldest message is at the top');
        for (let i = 1; i <= 120; i++) assert.equal(all.filter((b) => b === `bulk ${i}`).length, 1, `bulk ${i} once`);
        assert.ok(all.indexOf('bulk 1') < all.indexOf('bulk 120'), 'in order');
      },
    ));

  test('the hub is drained (SIGTERM) and restarted while a message is typed: the page reconnects by itself and the message is delivered exactly once', () =>
    withArtifacts(
      'drain and restart',
      () => pages,
      async () => {
        await openConv(A, bob.displayName);
        await openConv(B, alice.displayName);
        await A.page.type(sel('composer'), 'Sent while the hub ');
        const old = replicas[0]!;
        old.child.kill('SIGTERM');
        await A.page.waitForSelector(`${sel('banner')}:not([hidden])`);
        await waitText(A, sel('banner'), 'Reconnecting');
        await A.page.type(sel('composer'), 'restarts');
        await A.page.keyboard.press('Enter');
        await A.page.waitForSelector(sel('pending'));
        await shot(A, 'reconnect-banner.png');
        assert.equal(await old.exited, 0, 'the drained replica exits 0');
        const fresh = await spawnReplica(env.env);
        replicas.push(fresh);
        proxyA.target = fresh.port;
        await A.page.waitForSelector(`${sel('banner')}[hidden]`, { timeout: 30_000 });
        await waitText(B, sel('body'), 'Sent while the hub restarts');
        await A.page.waitForFunction(() => !document.querySelector('[data-testid="pending"]'));
        assert.equal((await bodies(B)).filter((b) => b === 'Sent while the hub restarts').length, 1, 'Bob got it once');
        assert.equal((await bodies(A)).filter((b) => b === 'Sent while the hub restarts').length, 1, 'Alice shows it once');
        // And the store has it once.
        const session = await A.page.evaluate(() => JSON.parse(localStorage.getItem('hubbub.session')!) as { accessToken: string });
        const api = createApiClient({ url: `http://127.0.0.1:${proxyA.port}/trpc`, getToken: () => session.accessToken });
        const dm = (await api.conversations.list.query()).find((c) => c.kind === 'direct')!;
        const page = await api.conversations.history.query({ conversationId: dm.id, limit: 20 });
        assert.equal(page.events.filter((e) => e.body === 'Sent while the hub restarts').length, 1);
        // Live delivery works again both ways.
        await say(B, 'Welcome back');
        await waitText(A, sel('body'), 'Welcome back');
      },
    ));

  test('a send that was never acked when the page closed goes out after the reload, once, even if it had arrived', () =>
    withArtifacts(
      'outbox',
      () => pages,
      async () => {
        await openConv(A, bob.displayName);
        const session = await A.page.evaluate(
          () => JSON.parse(localStorage.getItem('hubbub.session')!) as { accessToken: string; user: { id: string } },
        );
        const api = createApiClient({ url: `http://127.0.0.1:${proxyA.port}/trpc`, getToken: () => session.accessToken });
        const dm = (await api.conversations.list.query()).find((c) => c.kind === 'direct')!;
        // One send the hub never saw, and one it stored but whose ack the page never got (same cid).
        const sdk = new SocketClient({ url: `ws://127.0.0.1:${proxyA.port}/ws`, getToken: () => session.accessToken, WebSocket });
        await sdk.connect();
        await sdk.send(dm.id, 'stored, ack lost', { cid: 'outbox-arrived-1' });
        sdk.close();
        const outbox = [
          { cid: 'outbox-never-sent-1', conv: dm.id, body: 'typed, then the tab closed', ts: Date.now() },
          { cid: 'outbox-arrived-1', conv: dm.id, body: 'stored, ack lost', ts: Date.now() },
        ];
        await A.page.evaluate(
          (key: string, value: string) => localStorage.setItem(key, value),
          `hubbub.outbox.${session.user.id}`,
          JSON.stringify(outbox),
        );
        await A.page.reload();
        await openConv(A, bob.displayName);
        await waitText(B, sel('body'), 'typed, then the tab closed');
        // Both acks in: no pending row and an empty outbox (a pending row can clear before the
        // outbox is written back, and right after the reload there may be no row yet at all).
        await A.page.waitForFunction(
          (key: string) => !document.querySelector('[data-testid="pending"]') && localStorage.getItem(key) === null,
          { timeout: 15_000 },
          `hubbub.outbox.${session.user.id}`,
        );
        const events = (await api.conversations.history.query({ conversationId: dm.id, limit: 30 })).events;
        assert.equal(events.filter((e) => e.body === 'typed, then the tab closed').length, 1);
        assert.equal(events.filter((e) => e.body === 'stored, ack lost').length, 1, 'the retried cid was stored once');
        assert.equal((await bodies(B)).filter((b) => b === 'stored, ack lost').length, 1);
      },
    ));

  test('signing out everywhere (auth.logoutAll from another device) takes the page back to sign-in', () =>
    withArtifacts(
      'logout all',
      () => pages,
      async () => {
        const D = await openPage(browser, 'dave', `http://127.0.0.1:${proxyB.port}/`);
        pages.push(D);
        await register(D, { username: `dave_${suffix}`, displayName: 'Dave Dunn', password: 'dave has a long password' });
        // Either way round: revoked while connected (the hub closes 4001), or before the socket
        // connected (its upgrade is refused with 401, which a browser sees as 1006).
        const session = await D.page.evaluate(() => JSON.parse(localStorage.getItem('hubbub.session')!) as { accessToken: string });
        await createApiClient({ url: `http://127.0.0.1:${proxyB.port}/trpc`, getToken: () => session.accessToken }).auth.logoutAll.mutate();
        // The hub closes the socket (4001); the page's refresh is refused; it shows the sign-in form.
        await D.page.waitForSelector(sel('auth-form'));
        assert.equal(await D.page.evaluate(() => localStorage.getItem('hubbub.session')), null, 'the stored session is gone');

        // Revoked while the page was offline: the reconnect's upgrade is refused (401, seen as
        // 1006), the page refreshes, is refused, and signs out instead of retrying forever.
        const E = await openPage(browser, 'erin', `http://127.0.0.1:${proxyC.port}/`);
        pages.push(E);
        await register(E, { username: `erin_${suffix}`, displayName: 'Erin Eve', password: 'erin has a long password' });
        await E.page.waitForSelector(`${sel('banner')}[hidden]`);
        const erin = await E.page.evaluate(() => JSON.parse(localStorage.getItem('hubbub.session')!) as { accessToken: string });
        proxyC.target = 1; // nothing listens there: reconnects fail
        proxyC.dropAll();
        await E.page.waitForSelector(`${sel('banner')}:not([hidden])`);
        await createApiClient({
          url: `http://127.0.0.1:${replicas[1]!.port}/trpc`,
          getToken: () => erin.accessToken,
        }).auth.logoutAll.mutate();
        proxyC.target = replicas[1]!.port;
        await E.page.waitForSelector(sel('auth-form'), { timeout: 30_000 });
        assert.ok(
          E.logs.some((l) => l.includes('socket closed 1006')),
          'the refused upgrade looked like a network failure',
        );
      },
    ));

  test('bad input shows a sentence: short password, blank message, unknown user', () =>
    withArtifacts(
      'bad input',
      () => pages,
      async () => {
        const C = await openPage(browser, 'carol', `http://127.0.0.1:${proxyB.port}/`);
        pages.push(C);
        await C.page.locator(sel('auth-toggle')).click();
        await C.page.type(sel('auth-email'), `carol_${suffix}@example.com`);
        await C.page.type(sel('auth-username'), `carol_${suffix}`);
        await C.page.type(sel('auth-password'), 'short');
        await C.page.locator(sel('auth-submit')).click();
        await waitText(C, sel('auth-error'), 'password');
        const authError = (await texts(C, sel('auth-error')))[0]!;
        assert.equal(authError, 'The password must be at least 8 characters.');

        await openConv(A, bob.displayName);
        await A.page.type(sel('composer'), '   ');
        await A.page.locator(sel('send')).click();
        await waitText(A, sel('send-error'), 'Type a message first.');

        await A.page.locator(sel('new-dm')).click();
        await A.page.type(sel('user-search'), 'nobody_by_this_name');
        await A.page.locator(sel('start-dm')).click();
        await waitText(A, sel('dialog-error'), 'There is no one called “nobody_by_this_name”.');
        for (const t of [authError, ...(await texts(A, sel('dialog-error'))), ...(await texts(A, sel('send-error')))])
          assert.doesNotMatch(t, /[[\]{}]/, `a sentence, not JSON: ${t}`);
      },
    ));

  test('group members: the owner adds and removes a member, a member leaves; everyone sees it live', () =>
    withArtifacts(
      'group members',
      () => pages,
      async () => {
        const C = pages.find((p) => p.name === 'carol')!;
        // Carol fixes her password and signs up.
        await C.page.$eval(sel('auth-password'), (el) => ((el as unknown as { value: string }).value = ''));
        await C.page.type(sel('auth-password'), 'a much longer password');
        await C.page.type(sel('auth-displayName'), 'Carol Cook');
        await C.page.locator(sel('auth-submit')).click();
        await waitText(C, sel('me'), 'Carol Cook');
        await A.page.keyboard.press('Escape');
        await openConv(A, 'Weekend plans');
        await openConv(B, 'Weekend plans');
        await B.page.locator(sel('members-button')).click();
        await B.page.locator(`${sel('members-dialog')} ${sel('user-search')}`).click();
        await B.page.type(`${sel('members-dialog')} ${sel('user-search')}`, `carol_${suffix}`.slice(0, 9));
        await B.page.locator(`${sel('members-dialog')} ${sel('search-result')}[data-username="carol_${suffix}"] button`).click();
        await B.page.waitForSelector(`${sel('member')}[data-username="carol_${suffix}"]`);
        await waitText(A, sel('note'), `${bob.displayName} added Carol Cook`);
        await openConv(C, 'Weekend plans');
        await say(C, 'Thanks for the invite');
        await waitText(A, sel('body'), 'Thanks for the invite');
        await B.page.locator(`${sel('member')}[data-username="carol_${suffix}"] ${sel('remove-member')}`).click();
        await waitText(A, sel('note'), `${bob.displayName} removed Carol Cook`);
        await C.page.waitForFunction(() => !document.querySelector('[data-testid="conv"][data-title="Weekend plans"]'));
        await B.page.keyboard.press('Escape');
        await A.page.locator(sel('members-button')).click();
        await A.page.locator(sel('leave-group')).click();
        // Leaving asks first, in the page's own dialog; Cancel keeps Alice in the group.
        await waitText(A, sel('confirm-dialog'), 'Leave “Weekend plans”?');
        await A.page.locator(sel('confirm-cancel')).click();
        await A.page.waitForSelector(sel('confirm-dialog'), { hidden: true });
        assert.ok(await A.page.$(`${sel('conv')}[data-title="Weekend plans"]`), 'still in the group after Cancel');
        await A.page.locator(sel('leave-group')).click();
        await A.page.locator(sel('confirm-ok')).click();
        await A.page.waitForFunction(() => !document.querySelector('[data-testid="conv"][data-title="Weekend plans"]'));
        assert.equal(new URL(A.page.url()).hash, '#/', 'the address is the list again');
        await waitText(B, sel('note'), `${alice.displayName} left`);
      },
    ));
});
