/**
 * Message search on the page, in a real browser (Debian's chromium through puppeteer-core) on a
 * phone (390×844, touch) against a hub process on PostgreSQL: search, see the hits grouped by
 * conversation with the matches marked (and message text that looks like HTML shown as text),
 * open a hit older than the page had loaded, and see that message marked and on screen. Axe
 * finds nothing serious on either screen; every target is 44 px.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'puppeteer-core';
import WebSocket from 'ws';
import { createApiClient, SocketClient } from '@hubbub/client';
import { buildWeb } from '../../scripts/build-web.ts';
import {
  audit,
  launchBrowser,
  nativeDialogs,
  openPage,
  PHONE,
  sel,
  smallTargets,
  waitText,
  withArtifacts,
  type TestPage,
} from '../helpers/browser.ts';
import { spawnReplica, type ProcessReplica } from '../helpers/process-replica.ts';
import { testEnv, type TestEnv } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

declare const localStorage: { setItem(k: string, v: string): void };

const suffix = `${process.pid}${Math.random().toString(36).slice(2, 6)}`;

describe('browser: message search on a phone', { timeout: 240_000 }, () => {
  let env: TestEnv;
  let browser: Browser;
  let replica: ProcessReplica;
  let proxy: TcpProxy;
  let bob: SocketClient;
  let A: TestPage;
  let hitSeq = 0;

  before(async () => {
    await buildWeb();
    env = await testEnv('postgres');
    proxy = await startTcpProxy(0);
    const url = `http://127.0.0.1:${proxy.port}`;
    env.env.ALLOWED_ORIGINS = url;
    replica = await spawnReplica(env.env);
    proxy.target = replica.port;
    const api = createApiClient({ url: `${url}/trpc` });
    const alice = await api.auth.register.mutate({
      email: `alice_${suffix}@example.com`,
      username: `alice_${suffix}`,
      displayName: 'Alice Archer',
      password: 'correct horse battery staple',
    });
    const b = await api.auth.register.mutate({
      email: `bob_${suffix}@example.com`,
      username: `bob_${suffix}`,
      displayName: 'Bob Baker',
      password: 'another long passphrase',
    });
    const bobApi = createApiClient({ url: `${url}/trpc`, getToken: () => b.accessToken });
    const group = await bobApi.conversations.createGroup.mutate({ title: 'Wildlife', memberIds: [alice.user.id] });
    bob = new SocketClient({ url: `ws://127.0.0.1:${proxy.port}/ws`, getToken: () => b.accessToken, WebSocket });
    await bob.connect();
    hitSeq = (await bob.send(group.id, 'A quokka <img src=x onerror=alert(1)> smiled at the camera')).seq;
    // Enough after it that the page's first load of the conversation does not reach it.
    for (let i = 0; i < 70; i++) await bob.send(group.id, `filler message ${i}`);
    // Indexed (within 2 s of the ack) before the page asks.
    const aliceApi = createApiClient({ url: `${url}/trpc`, getToken: () => alice.accessToken });
    const deadline = Date.now() + 5000;
    while ((await aliceApi.messages.search.query({ query: 'quokka' })).hits.length === 0) {
      assert.ok(Date.now() < deadline, 'indexed in time');
      await new Promise((r) => setTimeout(r, 50));
    }
    browser = await launchBrowser();
    A = await openPage(browser, 'alice-phone-search', `${url}/`, PHONE);
    await A.page.evaluate(
      (s: string) => localStorage.setItem('hubbub.session', s),
      JSON.stringify({ accessToken: alice.accessToken, refreshToken: alice.refreshToken, user: alice.user }),
    );
    await A.page.reload();
    await waitText(A, sel('me'), 'Alice Archer');
  });

  after(async () => {
    if (A) assert.deepEqual(nativeDialogs(A), [], 'native dialogs');
    bob?.close();
    await browser?.close();
    await proxy?.close();
    await replica?.kill('SIGKILL');
    await env?.cleanup();
  });

  test('11 search, see the marked snippet grouped by conversation, open the hit: the message is marked and on screen', () =>
    withArtifacts(
      'search on a phone',
      () => (A ? [A] : []),
      async () => {
        // The page settled first: the list drawn and the connection banner gone, so nothing moves
        // under the click (a late layout shift once put the conversation row where the tab was).
        await A.page.waitForSelector(sel('conv'));
        await A.page.waitForSelector(`${sel('banner')}[hidden]`, { timeout: 30_000 });
        await A.page.locator(sel('tab-search')).click();
        await A.page.type(sel('search-input'), 'quokka');
        await A.page.locator(sel('search-submit')).click();
        await A.page.waitForSelector(sel('search-hit'));
        const group = await A.page.$eval(sel('search-group'), (el) => ({
          title: el.querySelector('h3')?.textContent,
          hits: el.querySelectorAll('[data-testid="search-hit"]').length,
          marks: [...el.querySelectorAll('mark')].map((m) => m.textContent),
          text: el.querySelector('[data-testid="hit-snippet"]')?.textContent,
          images: el.querySelectorAll('img').length,
        }));
        assert.deepEqual(group, {
          title: 'Wildlife',
          hits: 1,
          marks: ['quokka'],
          text: 'A quokka <img src=x onerror=alert(1)> smiled at the camera',
          images: 0,
        });
        assert.deepEqual(await smallTargets(A), [], 'search panel');
        const panelAudit = await audit(A);
        assert.deepEqual(panelAudit.serious, [], 'axe: search results');

        await A.page.locator(sel('search-hit')).click();
        await A.page.waitForSelector('.shell[data-view="conv"]');
        await waitText(A, sel('conv-heading'), 'Wildlife');
        const row = await A.page.waitForSelector(`${sel('message')}.hit[data-seq="${hitSeq}"]`);
        assert.ok(row, 'the hit is marked');
        assert.equal(await row.evaluate((el) => el.getAttribute('aria-current')), 'true');
        assert.ok(await row.isIntersectingViewport(), 'the hit is scrolled into view');
        assert.equal(await A.page.$$eval(`${sel('message')}.hit`, (els) => els.length), 1, 'only the hit is marked');
        // Newer messages are loaded too: scrolling down from the hit has no hole.
        assert.ok(await A.page.$(`${sel('message')}[data-seq="${hitSeq + 70}"]`), 'the newest message is there');
        assert.ok(await A.page.$(`${sel('message')}[data-seq="${hitSeq + 30}"]`), 'the messages between are there');
        const convAudit = await audit(A);
        assert.deepEqual(convAudit.serious, [], 'axe: conversation opened at a hit');
      },
    ));
});
