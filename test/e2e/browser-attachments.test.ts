/**
 * Attachments in the chat page, in a real browser: Alice on a phone pastes a screenshot into
 * the message box; Bob, in a desktop window, sees it inline (its preview at once, then its
 * thumbnail) and a file sent from the SDK as a card with its name and size. Both pages pass the
 * accessibility audit with the files shown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'puppeteer-core';
import { createApiClient, uploadFile } from '@hubbub/client';
import { buildWeb } from '../../scripts/build-web.ts';
import type { Replica } from '../../server/src/replica.ts';
import { png } from '../helpers/attachments.ts';
import { audit, DESKTOP, launchBrowser, openPage, PHONE, sel, waitText, withArtifacts, type TestPage } from '../helpers/browser.ts';
import { startTestReplica, testEnv, type TestEnv } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { connect } from '../helpers/ws.ts';

type Img = { alt: string; dataset: { loaded?: string }; complete: boolean; naturalWidth: number };
declare const document: { querySelector(s: string): unknown };
declare const DataTransfer: new () => { items: { add(f: unknown): void } };
declare const ClipboardEvent: new (type: string, init: object) => unknown;
declare const localStorage: { setItem(k: string, v: string): void };
declare const location: { hash: string };

const suffix = `${process.pid}${Math.random().toString(36).slice(2, 6)}`;

describe('attachments in the page', () => {
  let env: TestEnv;
  let r: Replica;
  let proxy: TcpProxy;
  let browser: Browser;
  let dir: string;
  const pages: TestPage[] = [];
  const url = () => `http://127.0.0.1:${proxy.port}`;

  before(async () => {
    await buildWeb();
    env = await testEnv('postgres');
    dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-att-web-'));
    proxy = await startTcpProxy(0);
    r = await startTestReplica(env.env, { DATA_DIR: dir, ALLOWED_ORIGINS: url() });
    proxy.target = r.port;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await r?.stop();
    await env?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('12.1 an image pasted on a phone shows inline on the other side; a file shows as a card; both pages stay accessible', async () => {
    const anon = createApiClient({ url: `${url()}/trpc` });
    const reg = async (name: string, displayName: string) =>
      anon.auth.register.mutate({
        email: `${name}_${suffix}@example.com`,
        username: `${name}_${suffix}`,
        password: `${name} has a long password`,
        displayName,
      });
    const alice = await reg('alice', 'Alice Archer');
    const bob = await reg('bob', 'Bob Baker');
    const aliceApi = createApiClient({ url: `${url()}/trpc`, getToken: () => alice.accessToken });
    const conv = await aliceApi.conversations.createDirect.mutate({ userId: bob.user.id });
    const signedIn = async (name: string, r0: typeof alice, viewport: typeof PHONE | typeof DESKTOP) => {
      const p = await openPage(browser, name, `${url()}/`, viewport);
      pages.push(p);
      await p.page.evaluate(
        (s: string) => localStorage.setItem('hubbub.session', s),
        JSON.stringify({ accessToken: r0.accessToken, refreshToken: r0.refreshToken, user: r0.user }),
      );
      await p.page.goto(`${url()}/#/c/${conv.id}`);
      await p.page.reload();
      await waitText(p, sel('me'), r0.user.displayName);
      await p.page.waitForSelector(sel('composer'));
      return p;
    };
    await withArtifacts(
      'attachments paste',
      () => pages,
      async () => {
        const A = await signedIn('alice-phone', alice, PHONE);
        const B = await signedIn('bob-desktop', bob, DESKTOP);
        const shot = (await png(800, 600)).toString('base64');
        await A.page.evaluate(async (b64: string) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], 'screenshot.png', { type: 'image/png' }));
          const box = document.querySelector('[data-testid="composer"]') as { dispatchEvent(e: unknown): void };
          box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
        }, shot);
        const img = await B.page.waitForSelector(`${sel('message')} ${sel('attachment-image')}`);
        assert.equal(await img!.evaluate((el) => (el as unknown as Img).alt), 'Image: screenshot.png');
        await B.page.waitForFunction(
          () => {
            const i = document.querySelector('[data-testid="attachment-image"]') as Img | null;
            return i?.dataset.loaded === 'thumb' && i.complete && i.naturalWidth > 0;
          },
          { timeout: 20_000 },
        );
        const natural = await img!.evaluate((el) => (el as unknown as Img).naturalWidth);
        assert.equal(natural, 320, 'the thumbnail, not the 800 px original');
        await A.page.waitForSelector(`${sel('message')} ${sel('attachment-image')}`);
        assert.equal(await A.page.$(`${sel('uploads')} ${sel('upload')}`), null, 'the upload row is gone once sent');

        // A file from the SDK: a card with its name and size.
        const meta = await uploadFile(aliceApi, {
          baseUrl: url(),
          conversationId: conv.id,
          file: new Blob(['quarterly numbers\n'.repeat(100)], { type: 'text/plain' }),
          name: 'report.txt',
        });
        const { c } = await connect(r.port, alice.accessToken);
        assert.equal((await c.request({ type: 'send', conv: conv.id, cid: `c${suffix}`, attachments: [meta.id] })).type, 'ack');
        c.close();
        const card = await B.page.waitForSelector(sel('attachment-file'));
        assert.match(await card!.evaluate((el) => el.textContent ?? ''), /report\.txt\s*1\.8 KB/);

        for (const p of [A, B]) {
          const res = await audit(p);
          assert.deepEqual(res.serious, [], `${p.name}: serious accessibility violations`);
        }
        assert.ok(await A.page.$(sel('attach')), 'the attach button is on the phone');
      },
    );
  });
});
