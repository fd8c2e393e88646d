/**
 * The web client's wallet, tips, plans and notification settings in a real browser (Debian's chromium through puppeteer-core),
 * against two real hub processes on one Redis and PostgreSQL: Alice's page on replica 1 (no
 * Stripe: top-ups are off), Bob's on replica 2 (Stripe pointed at the harness's stripe-mock).
 * Alice gets credit from `npm run payments:grant`, the operator's tool, before her page opens.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'puppeteer-core';
import webPush from 'web-push';
import { createApiClient } from '@hubbub/client';
import { buildWeb } from '../../scripts/build-web.ts';
import { launchBrowser, openPage, sel, texts, waitText, withArtifacts, type TestPage } from '../helpers/browser.ts';
import { stripeEnv } from '../helpers/payments.ts';
import { spawnReplica, type ProcessReplica } from '../helpers/process-replica.ts';
import { testEnv, type TestEnv } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

// Page-side callbacks run in the browser; the suite's tsconfig has no DOM lib, so name its globals here.
declare const document: { querySelectorAll(s: string): Iterable<{ textContent: string | null }> };
declare const localStorage: { setItem(k: string, v: string): void };
declare const navigator: {
  serviceWorker: { getRegistration(url: string): Promise<{ active: { scriptURL: string; state: string } | null } | undefined> };
};

const root = path.resolve(import.meta.dirname, '..', '..');
const suffix = `${process.pid}${Math.random().toString(36).slice(2, 6)}`;
const alice = { username: `payer_${suffix}`, displayName: 'Alice Archer', password: 'correct horse battery staple' };
const bob = { username: `payee_${suffix}`, displayName: 'Bob Baker', password: 'another long passphrase' };

/** HUBBUB_SCREENSHOTS=1 also writes docs/wallet.png, which docs/web-client.md shows. */
const docsDir = process.env.HUBBUB_SCREENSHOTS ? path.join(root, 'docs') : null;
const balanceOf = async (p: TestPage) => (await texts(p, sel('balance')))[0];

describe('browser: wallet, tips, plans and notification settings in the chat client', { timeout: 120_000 }, () => {
  let env: TestEnv;
  let browser: Browser;
  const replicas: ProcessReplica[] = [];
  const proxies: TcpProxy[] = [];
  const pages: TestPage[] = [];
  let A: TestPage;
  let B: TestPage;
  let aliceApi: ReturnType<typeof createApiClient>;
  let bobApi: ReturnType<typeof createApiClient>;

  before(async () => {
    const stripeUrl = process.env.STRIPE_API_URL;
    assert.ok(stripeUrl, 'STRIPE_API_URL (stripe-mock, started by npm test) is required');
    await buildWeb();
    env = await testEnv('postgres', { redis: true });
    proxies.push(await startTcpProxy(0), await startTcpProxy(0));
    env.env.ALLOWED_ORIGINS = proxies.map((p) => `http://127.0.0.1:${p.port}`).join(',');
    // One VAPID key pair for both replicas, as a deployment has (tests otherwise get one per process).
    const vapid = webPush.generateVAPIDKeys();
    env.env.VAPID_PUBLIC_KEY = vapid.publicKey;
    env.env.VAPID_PRIVATE_KEY = vapid.privateKey;
    // Replica 2 has SMTP configured (nothing is sent: no worker runs here), replica 1 has none.
    const [r1, r2] = await Promise.all([
      spawnReplica(env.env),
      spawnReplica({ ...env.env, ...stripeEnv(stripeUrl), SMTP_URL: 'smtp://127.0.0.1:9' }),
    ]);
    replicas.push(r1!, r2!);
    proxies[0]!.target = r1!.port;
    proxies[1]!.target = r2!.port;

    // Both sign up through the API (the sign-up form has its own suite); Alice starts the DM.
    const url = (i: number) => `http://127.0.0.1:${proxies[i]!.port}`;
    const [ra, rb] = await Promise.all([
      createApiClient({ url: `${url(0)}/trpc` }).auth.register.mutate({ email: `${alice.username}@example.com`, ...alice }),
      createApiClient({ url: `${url(1)}/trpc` }).auth.register.mutate({ email: `${bob.username}@example.com`, ...bob }),
    ]);
    aliceApi = createApiClient({ url: `${url(0)}/trpc`, getToken: () => ra.accessToken });
    bobApi = createApiClient({ url: `${url(1)}/trpc`, getToken: () => rb.accessToken });
    await aliceApi.conversations.createDirect.mutate({ userId: rb.user.id });
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'server/src/cli/grant.ts', '--user', alice.username, '--amount', '1000'],
      {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', ...env.env, LOG_LEVEL: 'warn' },
      },
    );
    assert.match(stdout, /granted 1000 usd/);

    browser = await launchBrowser();
    const open = async (name: string, i: number, r: typeof ra) => {
      const p = await openPage(browser, name, `${url(i)}/`);
      await p.page.evaluate(
        (s: string) => localStorage.setItem('hubbub.session', s),
        JSON.stringify({ accessToken: r.accessToken, refreshToken: r.refreshToken, user: r.user }),
      );
      await p.page.reload();
      return p;
    };
    [A, B] = await Promise.all([open('alice', 0, ra), open('bob', 1, rb)]);
    pages.push(A, B);
    await withArtifacts(
      'payments setup',
      () => pages,
      async () => {
        // Each opens the DM, then the wallet tab (the conversation stays on the right).
        for (const [p, peer] of [
          [A, bob.displayName],
          [B, alice.displayName],
        ] as const) {
          await p.page.locator(`${sel('conv')}[data-title="${peer}"]`).click();
          await waitText(p, sel('conv-heading'), peer);
          await p.page.locator(sel('tab-wallet')).click();
        }
        await waitText(A, sel('balance'), '$10.00');
        await waitText(B, sel('balance'), '$0.00');
        // The operator's grant is in Alice's history, so the balance never shows beside "No payments yet".
        await waitText(A, sel('history-item'), 'Credit');
        assert.equal((await texts(A, '.wallet .empty')).length, 0);
      },
    );
  });

  after(async () => {
    await browser?.close();
    for (const p of proxies) await p.close();
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
    await env?.cleanup();
  });

  test('a tip in a DM shows one tip line live on both pages, and both wallets change by its amount', () =>
    withArtifacts(
      'payments tip',
      () => pages,
      async () => {
        await A.page.locator(sel('tip-button')).click();
        await waitText(A, sel('tip-dialog'), 'Send Bob Baker a tip');
        await A.page.type(sel('tip-amount'), '2.50');
        await A.page.type(sel('tip-note'), 'for lunch');
        await A.page.locator(sel('tip-send')).click();
        await waitText(B, sel('tip'), 'Alice Archer tipped you $2.50: “for lunch”');
        await waitText(A, sel('tip'), 'You tipped Bob Baker $2.50: “for lunch”');
        await waitText(A, sel('balance'), '$7.50');
        await waitText(B, sel('balance'), '$2.50');
        await waitText(B, sel('history-item'), 'Tip from Alice Archer');
        await waitText(A, sel('history-item'), 'Tip to Bob Baker');
        // Once each, also after a reload (history from the server, not only the live event).
        assert.equal((await texts(A, sel('tip'))).length, 1);
        assert.equal((await texts(B, sel('tip'))).length, 1);
        await B.page.reload();
        await B.page.locator(`${sel('conv')}[data-title="${alice.displayName}"]`).click();
        await waitText(B, sel('tip'), 'Alice Archer tipped you $2.50');
        assert.equal((await texts(B, sel('tip'))).length, 1);
        await B.page.locator(sel('tab-wallet')).click();
        await waitText(B, sel('balance'), '$2.50');
        assert.deepEqual(await bobApi.payments.balance.query(), { currency: 'usd', balance: 250, debt: 0 });
      },
    ));

  test('a tip whose answer was lost is sent again with the same idempotency key and moves money once', () =>
    withArtifacts(
      'payments tip retry',
      () => pages,
      async () => {
        // The first tip request reaches the hub (sent from here, with the page's headers and body),
        // but the page sees the connection fail: the tip went through and the page does not know.
        const keys: string[] = [];
        let lost = 0;
        await A.page.setRequestInterception(true);
        const onRequest = (r: import('puppeteer-core').HTTPRequest) => {
          if (!r.url().includes('payments.tip')) return void r.continue();
          const body = r.postData() ?? '';
          keys.push(String(/"idempotencyKey":"([^"]+)"/.exec(body)?.[1]));
          if (lost++) return void r.continue();
          void fetch(r.url(), { method: r.method(), headers: r.headers(), body }).then(
            () => r.abort('connectionreset'),
            () => r.abort('connectionreset'),
          );
        };
        A.page.on('request', onRequest);
        try {
          await A.page.locator(sel('tip-button')).click();
          await A.page.type(sel('tip-amount'), '1');
          await A.page.locator(sel('tip-send')).click();
          await waitText(A, sel('tip-error'), 'No answer from the server, so the tip may or may not have gone through.');
          await waitText(B, sel('tip'), 'Alice Archer tipped you $1.00');
          await A.page.locator(sel('tip-send')).click();
          await A.page.waitForSelector(sel('tip-dialog'), { hidden: true });
        } finally {
          A.page.off('request', onRequest);
          await A.page.setRequestInterception(false);
        }
        assert.equal(keys.length, 2);
        assert.equal(keys[0], keys[1], 'the retry carries the first attempt’s key');
        await waitText(A, sel('balance'), '$6.50');
        await waitText(B, sel('balance'), '$3.50');
        assert.deepEqual(await aliceApi.payments.balance.query(), { currency: 'usd', balance: 650, debt: 0 });
        assert.equal((await texts(A, sel('tip'))).filter((t) => t.includes('$1.00')).length, 1);
        assert.equal((await texts(B, sel('tip'))).filter((t) => t.includes('$1.00')).length, 1);
      },
    ));

  test('a tip larger than the balance shows a sentence and moves nothing', () =>
    withArtifacts(
      'payments tip too large',
      () => pages,
      async () => {
        await A.page.locator(sel('tip-button')).click();
        await A.page.type(sel('tip-amount'), '100');
        await A.page.locator(sel('tip-send')).click();
        await waitText(A, sel('tip-error'), 'Your balance is too low for that; nothing was charged.');
        // A typed amount that is not money is refused before any call.
        await A.page.$eval(sel('tip-amount'), (el) => ((el as unknown as { value: string }).value = ''));
        await A.page.type(sel('tip-amount'), '1.234');
        await A.page.locator(sel('tip-send')).click();
        await waitText(A, sel('tip-error'), 'Type an amount, such as 1.50.');
        await A.page.keyboard.press('Escape');
        assert.deepEqual(await aliceApi.payments.balance.query(), { currency: 'usd', balance: 650, debt: 0 });
        assert.deepEqual(await bobApi.payments.balance.query(), { currency: 'usd', balance: 350, debt: 0 });
        assert.equal(await balanceOf(A), '$6.50');
        assert.equal(await balanceOf(B), '$3.50');
        assert.equal((await texts(A, sel('tip'))).length, 2, 'no third tip line');
        assert.equal((await texts(B, sel('tip'))).length, 2);
      },
    ));

  test('subscribing to a plan shows the new plan and its limits; cancel turns renewal off; a top-up says whether payments are configured', () =>
    withArtifacts(
      'payments plans',
      () => pages,
      async () => {
        assert.match((await texts(A, sel('plan-name')))[0] ?? '', /Free/);
        // Bought elsewhere (another tab, the API): the page learns it from the `limits` frame.
        await aliceApi.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: `sub-${suffix}` });
        await waitText(A, sel('plan-name'), 'Premium');
        await waitText(
          A,
          sel('limits'),
          'Send up to 50 messages a second (200 at once), use 50 devices at a time, make groups of up to 5,000 people, and read all history.',
        );
        await waitText(A, sel('balance'), '$1.51');
        await waitText(A, sel('entitlement'), 'renews');
        await A.page.locator(sel('cancel-plan')).click();
        await waitText(A, sel('entitlement'), 'ends');
        assert.equal((await aliceApi.payments.entitlements.query()).autoRenew, false);
        // Subscribing again through the page turns renewal back on, charging nothing.
        await A.page.locator(`${sel('plan')}[data-plan="premium"] ${sel('subscribe')}`).click();
        await waitText(A, sel('wallet-message'), 'Premium renews again.');
        await waitText(A, sel('entitlement'), 'renews');
        assert.equal(await balanceOf(A), '$1.51');
        // Bob cannot afford it ($3.50 of $4.99): a sentence, still Free.
        await B.page.locator(`${sel('plan')}[data-plan="premium"] ${sel('subscribe')}`).click();
        await waitText(B, sel('wallet-error'), 'Your balance is too low for that; nothing was charged.');
        assert.match((await texts(B, sel('plan-name')))[0] ?? '', /Free/);

        // Alice's replica has no Stripe: a sentence. Bob's has (stripe-mock): the PaymentIntent.
        await A.page.type(sel('topup-amount'), '10');
        await A.page.locator(sel('topup')).click();
        await waitText(
          A,
          sel('wallet-error'),
          'Card payments are not set up on this server, so you cannot top up here. Ask the people who run it for credit.',
        );
        assert.doesNotMatch(
          (await texts(A, sel('wallet-error')))[0] ?? '',
          /npm|payments:grant/,
          'no operator command in words for end users',
        );
        await B.page.type(sel('topup-amount'), '10');
        await B.page.locator(sel('topup')).click();
        await waitText(B, sel('wallet-message'), 'for $10.00 created');
        assert.match((await texts(B, sel('wallet-message')))[0] ?? '', /Top-up pi_\w+ for \$10\.00 created/);
        assert.equal(await balanceOf(B), '$3.50', 'nothing is credited before the card payment succeeds');
        if (docsDir) {
          mkdirSync(docsDir, { recursive: true });
          await A.page.screenshot({ path: path.join(docsDir, 'wallet.png') as `${string}.png` });
        }
      },
    ));

  test('notification settings are saved through the page and come back after a reload; a bad time zone is a sentence; the service worker registers', () =>
    withArtifacts(
      'notification settings',
      () => pages,
      async () => {
        const checked = (id: string) => A.page.$eval(sel(id), (el) => (el as unknown as { checked: boolean }).checked);
        const value = (id: string) => A.page.$eval(sel(id), (el) => (el as unknown as { value: string }).value);
        const setValue = async (id: string, v: string) => {
          await A.page.$eval(sel(id), (el) => ((el as unknown as { value: string }).value = ''));
          await A.page.type(sel(id), v);
        };
        await A.page.locator(sel('tab-notify')).click();
        await A.page.waitForSelector(sel('notify-previews'));
        // Alice's hub has no SMTP: the digest is off, cannot be turned on, and says why; Bob's has.
        assert.deepEqual(
          [await checked('notify-push'), await checked('notify-email'), await checked('notify-previews')],
          [true, false, true],
        );
        assert.equal(await A.page.$eval(sel('notify-email'), (el) => (el as unknown as { disabled: boolean }).disabled), true);
        await waitText(A, sel('notify-email-hint'), 'Email is not set up on this server, so no digest can be sent.');
        await A.page.locator(`label:has(${sel('notify-email')})`).click();
        assert.equal((await texts(A, sel('notify-message')))[0], '', 'no “Saved.” for a channel that cannot send');
        await B.page.locator(sel('tab-notify')).click();
        await B.page.waitForSelector(sel('notify-email'));
        assert.equal(
          await B.page.$eval(
            sel('notify-email'),
            (el) =>
              (el as unknown as { checked: boolean; disabled: boolean }).checked && !(el as unknown as { disabled: boolean }).disabled,
          ),
          true,
        );
        assert.deepEqual(
          [(await aliceApi.notifications.settings.query()).emailAvailable, (await bobApi.notifications.settings.query()).emailAvailable],
          [false, true],
        );
        await A.page.locator(sel('notify-previews')).click();
        await waitText(A, sel('notify-message'), 'Saved.');
        await A.page.locator(sel('quiet-on')).click();
        await A.page.$eval(sel('quiet-start'), (el) => ((el as unknown as { value: string }).value = '22:30'));
        await A.page.$eval(sel('quiet-end'), (el) => ((el as unknown as { value: string }).value = '06:45'));
        await setValue('quiet-tz', 'Mars/Olympus_Mons');
        await A.page.locator(sel('quiet-save')).click();
        await waitText(A, sel('notify-error'), 'time zone');
        const bad = (await texts(A, sel('notify-error')))[0] ?? '';
        assert.doesNotMatch(bad, /[[{]/, 'words, not JSON');
        assert.equal((await aliceApi.notifications.settings.query()).quietHours, null, 'nothing saved');
        await setValue('quiet-tz', 'Europe/Paris');
        await A.page.locator(sel('quiet-save')).click();
        await waitText(A, sel('notify-message'), 'Quiet from 22:30 to 06:45 (Europe/Paris).');
        await A.page.select(`${sel('notify-conv')}[data-title="${bob.displayName}"] ${sel('notify-level')}`, 'mentions');
        await waitText(A, sel('notify-message'), `Saved for ${bob.displayName}.`);

        const saved = await aliceApi.notifications.settings.query();
        assert.deepEqual(
          { ...saved, conversations: Object.values(saved.conversations) },
          {
            push: true,
            email: true,
            previews: false,
            quietHours: { start: '22:30', end: '06:45', timezone: 'Europe/Paris' },
            conversations: ['mentions'],
            emailAvailable: false,
          },
        );

        await A.page.reload();
        await A.page.locator(sel('tab-notify')).click();
        await A.page.waitForSelector(sel('notify-previews'));
        assert.deepEqual(
          [await checked('notify-push'), await checked('notify-email'), await checked('notify-previews'), await checked('quiet-on')],
          [true, false, false, true],
        );
        assert.deepEqual(
          [await value('quiet-start'), await value('quiet-end'), await value('quiet-tz')],
          ['22:30', '06:45', 'Europe/Paris'],
        );
        // The per-conversation rows need the conversation list, which may load after the settings.
        const bobLevel = `${sel('notify-conv')}[data-title="${bob.displayName}"] ${sel('notify-level')}`;
        await A.page.waitForSelector(bobLevel);
        assert.equal(await A.page.$eval(bobLevel, (el) => (el as unknown as { value: string }).value), 'mentions');

        // The service worker is installed at sign-in.
        await A.page.waitForFunction(
          async () => (await navigator.serviceWorker.getRegistration('/assets/sw.js'))?.active?.state === 'activated',
        );
        const script = await A.page.evaluate(
          async () => (await navigator.serviceWorker.getRegistration('/assets/sw.js'))?.active?.scriptURL,
        );
        assert.match(script ?? '', /\/assets\/sw\.js$/);
        // Push: this machine has no internet, so chromium's push service cannot answer: a sentence
        // either way (on a machine with one, the subscription is made and given to the hub).
        await A.page.browserContext().overridePermissions(A.page.url().replace(/\/$/, ''), ['notifications']);
        await A.page.locator(sel('push-on')).click();
        await A.page.waitForFunction(
          (s: string) =>
            [...document.querySelectorAll(s)].some((e) =>
              /^(Push is on for this device\.|This browser could not subscribe to push \(.+\)\. Email and webhooks still work\.)$/.test(
                e.textContent ?? '',
              ),
            ),
          {},
          sel('push-status'),
        );
      },
    ));
});
