/**
 * Attachments end to end on a replica over real PostgreSQL, on each blob store: local disk (the
 * hub serves the bytes) and SeaweedFS over S3 (presigned upload, redirect to a signed GET).
 * Every refusal is checked to leave nothing stored.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanupAttachments } from '../../server/src/attachments/attachment-data.ts';
import type { Replica } from '../../server/src/replica.ts';
import { blobEnv, blobKinds, png, pngBomb, upload } from '../helpers/attachments.ts';
import { errorCode, newUser, startTestReplica, testEnv, type TestEnv } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';

const PREMIUM = {
  sendRatePerS: 50,
  sendBurst: 200,
  connectionsPerUser: 50,
  groupMembers: 500,
  historyDepth: 1_000_000,
  maxFileBytes: 4_000_000,
  storageBytes: 20_000_000,
};

for (const kind of blobKinds) {
  describe(`attachments on ${kind}`, () => {
    let env: TestEnv;
    let r: Replica;
    let dir: string;
    before(async () => {
      env = await testEnv('postgres');
      dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-att-'));
      r = await startTestReplica(env.env, {
        ...blobEnv(kind, dir),
        ATTACHMENT_MAX_BYTES: '2000000',
        ATTACHMENT_QUOTA_BYTES: '5000000',
        PAYMENTS_PLANS: JSON.stringify([{ id: 'premium', name: 'Premium', price: 100, periodDays: 30, limits: PREMIUM }]),
      });
    });
    after(async () => {
      await r?.stop();
      await env?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    const stored = (id: string) => r.services.attachments.blobs.list(`${id}/`);
    const hubUrl = (u: string) => new URL(u, `http://127.0.0.1:${r.port}`);
    async function group() {
      const [a, b, c] = await Promise.all([newUser(r.port, 'ann'), newUser(r.port, 'bob'), newUser(r.port, 'cy')]);
      const conv = await a.client.conversations.createGroup.mutate({ title: 'files', memberIds: [b.id, c.id] });
      return { a, b, c, conv: conv.id };
    }

    test('12.1 an image is uploaded, completed, sent and seen by another member with its size, dimensions and preview', async () => {
      const { a, b, conv } = await group();
      const bytes = await png(640, 480);
      const up = await upload(r, a, conv, { name: 'photo.png', type: 'image/png', bytes });
      assert.equal(up.status, 200);
      if (kind === 's3') assert.match(up.created.upload.url, /X-Amz-Signature=/, 'the bytes go straight to the store');
      else assert.match(up.created.upload.url, /^\/files\//, 'the hub takes the bytes');
      const meta = await a.client.attachments.complete.mutate({ id: up.id });
      assert.deepEqual(
        { ...meta, preview: undefined },
        { id: up.id, name: 'photo.png', size: bytes.length, contentType: 'image/png', width: 640, height: 480, preview: undefined },
      );
      assert.match(meta.preview!, /^data:image\/webp;base64,/);
      assert.deepEqual(await stored(up.id), [`${up.id}/file`, `${up.id}/thumb`]);

      const { c: bs } = await connect(r.port, b.accessToken);
      const { c: as } = await connect(r.port, a.accessToken);
      const ack = await as.request({ type: 'send', conv, cid: randomUUID(), attachments: [up.id] });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      const ev = await bs.wait((f) => f.type === 'event' && f.conv === conv && f.kind === 'message');
      assert.deepEqual(ev.attachments, [meta]);
      assert.equal(ev.body, '');

      const got = await b.client.attachments.get.query({ id: up.id });
      const file = await fetch(hubUrl(got.url));
      assert.equal(file.status, 200);
      assert.equal(file.headers.get('content-type'), 'image/png');
      assert.match(file.headers.get('content-disposition')!, /^inline; filename="photo.png"/);
      assert.ok(Buffer.from(await file.arrayBuffer()).equals(bytes));
      const thumb = await fetch(hubUrl(got.thumbnailUrl!));
      assert.equal(thumb.headers.get('content-type'), 'image/webp');
      assert.ok((await thumb.arrayBuffer()).byteLength < bytes.length);
      as.close();
      bs.close();
    });

    test('12.4 an HTML file is served as a download of opaque bytes, never as a page; the hub says nosniff and sandbox', async () => {
      const { a, b, conv } = await group();
      const up = await upload(r, a, conv, { name: 'x.html', type: 'text/html', bytes: Buffer.from('<script>alert(1)</script>') });
      await a.client.attachments.complete.mutate({ id: up.id });
      const { c: as } = await connect(r.port, a.accessToken);
      assert.equal((await as.request({ type: 'send', conv, cid: randomUUID(), body: 'see', attachments: [up.id] })).type, 'ack');
      as.close();
      const got = await b.client.attachments.get.query({ id: up.id });
      const res = await fetch(hubUrl(got.url), { redirect: 'manual' });
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      if (kind === 's3') {
        assert.equal(res.status, 302);
        assert.match(res.headers.get('content-security-policy')!, /sandbox/);
        const direct = await fetch(res.headers.get('location')!);
        assert.equal(direct.headers.get('content-type'), 'application/octet-stream');
        assert.match(direct.headers.get('content-disposition')!, /^attachment;/);
      } else {
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/octet-stream');
        assert.match(res.headers.get('content-disposition')!, /^attachment; filename="x.html"/);
        assert.match(res.headers.get('content-security-policy')!, /sandbox/);
      }
    });

    test('12.3 a non-member cannot attach, read or download; a member removed later loses access at once', async () => {
      const { a, b, c, conv } = await group();
      const stranger = await newUser(r.port, 'eve');
      assert.equal(
        await errorCode(
          stranger.client.attachments.create.mutate({ conversationId: conv, name: 'a.txt', size: 1, contentType: 'text/plain' }),
        ),
        'FORBIDDEN',
      );
      const up = await upload(r, a, conv, { name: 'a.txt', type: 'text/plain', bytes: Buffer.from('secret') });
      await a.client.attachments.complete.mutate({ id: up.id });
      assert.equal(await errorCode(b.client.attachments.get.query({ id: up.id })), 'NOT_FOUND', 'not sent yet: only its uploader sees it');
      const { c: as } = await connect(r.port, a.accessToken);
      assert.equal((await as.request({ type: 'send', conv, cid: randomUUID(), attachments: [up.id] })).type, 'ack');
      as.close();
      assert.equal(await errorCode(stranger.client.attachments.get.query({ id: up.id })), 'NOT_FOUND');
      const link = (await c.client.attachments.get.query({ id: up.id })).url;
      assert.equal((await fetch(hubUrl(link), { redirect: 'manual' })).status, kind === 's3' ? 302 : 200);
      await a.client.conversations.removeMember.mutate({ conversationId: conv, userId: c.id });
      assert.equal(await errorCode(c.client.attachments.get.query({ id: up.id })), 'NOT_FOUND');
      assert.equal((await fetch(hubUrl(link), { redirect: 'manual' })).status, 404, 'the old link stops working');
      const forged = link.replace(/t=([A-Za-z0-9_-])/, (_m, ch: string) => `t=${ch === 'A' ? 'B' : 'A'}`);
      assert.equal((await fetch(hubUrl(forged))).status, 403);
    });

    test('12.1 an attachment is refused in another conversation, by another sender, twice on two messages, or before it is complete', async () => {
      const { a, b, conv } = await group();
      const other = await a.client.conversations.createDirect.mutate({ userId: b.id });
      const up = await upload(r, a, conv, { name: 'a.txt', type: 'text/plain', bytes: Buffer.from('hello') });
      const { c: as } = await connect(r.port, a.accessToken);
      const { c: bs } = await connect(r.port, b.accessToken);
      const early = await as.request({ type: 'send', conv, cid: randomUUID(), attachments: [up.id] });
      assert.deepEqual([early.type, early.code], ['error', 'PRECONDITION_FAILED']);
      await a.client.attachments.complete.mutate({ id: up.id });
      const wrongConv = await as.request({ type: 'send', conv: other.id, cid: randomUUID(), attachments: [up.id] });
      assert.deepEqual([wrongConv.type, wrongConv.code], ['error', 'FORBIDDEN']);
      const wrongUser = await bs.request({ type: 'send', conv, cid: randomUUID(), attachments: [up.id] });
      assert.deepEqual([wrongUser.type, wrongUser.code], ['error', 'NOT_FOUND']);
      const cid = randomUUID();
      const first = await as.request({ type: 'send', conv, cid, attachments: [up.id] });
      assert.equal(first.type, 'ack');
      const retried = await as.request({ type: 'send', conv, cid, attachments: [up.id] });
      assert.deepEqual([retried.type, retried.seq], ['ack', first.seq], 'a retried send is the same message');
      const again = await as.request({ type: 'send', conv, cid: randomUUID(), attachments: [up.id] });
      assert.deepEqual([again.type, again.code], ['error', 'CONFLICT']);
      const messages = as.events(conv).filter((e) => e.kind === 'message');
      assert.equal(r.hub && messages.length <= 1, true);
      assert.equal(as.events(other.id).length, 0, 'nothing was stored in the other conversation');
      as.close();
      bs.close();
    });

    test('12.4 a declared type the bytes contradict is refused and the bytes deleted', async () => {
      const { a, conv } = await group();
      const up = await upload(r, a, conv, {
        name: 'cat.png',
        type: 'image/png',
        bytes: Buffer.from('<html><script>alert(1)</script></html>'),
      });
      assert.equal(up.status, 200);
      assert.equal(await errorCode(a.client.attachments.complete.mutate({ id: up.id })), 'BAD_REQUEST');
      assert.deepEqual(await stored(up.id), []);
      const jpegAsPng = await upload(r, a, conv, {
        name: 'x.png',
        type: 'image/png',
        bytes: await (await import('sharp'))
          .default({ create: { width: 4, height: 4, channels: 3, background: '#000' } })
          .jpeg()
          .toBuffer(),
      });
      assert.equal(await errorCode(a.client.attachments.complete.mutate({ id: jpegAsPng.id })), 'BAD_REQUEST');
      assert.deepEqual(await stored(jpegAsPng.id), []);
    });

    test('12.7 a decompression bomb (10 gigapixels in a few hundred bytes) is refused, not decoded, and nothing is kept', async () => {
      const { a, conv } = await group();
      const bomb = pngBomb();
      assert.ok(bomb.length < 200);
      const up = await upload(r, a, conv, { name: 'bomb.png', type: 'image/png', bytes: bomb });
      const started = performance.now();
      assert.equal(await errorCode(a.client.attachments.complete.mutate({ id: up.id })), 'PAYLOAD_TOO_LARGE');
      assert.ok(performance.now() - started < 5000);
      assert.deepEqual(await stored(up.id), []);
    });

    test('12.5 a file over the plan limit is refused before any upload; bytes past the declared size are refused by the store', async () => {
      const { a, conv } = await group();
      assert.equal(
        await errorCode(
          a.client.attachments.create.mutate({
            conversationId: conv,
            name: 'big.bin',
            size: 2_000_001,
            contentType: 'application/octet-stream',
          }),
        ),
        'PAYLOAD_TOO_LARGE',
      );
      const up = await upload(r, a, conv, {
        name: 'a.bin',
        type: 'application/octet-stream',
        bytes: Buffer.alloc(5000, 1),
        declaredSize: 1000,
      });
      assert.ok(up.status >= 400, `status ${up.status}`);
      assert.deepEqual(await stored(up.id), []);
      assert.equal(await errorCode(a.client.attachments.complete.mutate({ id: up.id })), 'PRECONDITION_FAILED');
      // Premium raises the limit at once: the same request goes through after subscribing.
      const big = { conversationId: conv, name: 'big.bin', size: 3_000_000, contentType: 'application/octet-stream' };
      assert.equal(await errorCode(a.client.attachments.create.mutate(big)), 'PAYLOAD_TOO_LARGE');
      await r.services.payments.grant({ username: a.username, amount: 100, actor: 'test' });
      await a.client.payments.subscribe.mutate({ planId: 'premium', idempotencyKey: randomUUID() });
      assert.ok((await a.client.attachments.create.mutate(big)).id);
    });

    test('12.5 the storage quota holds under concurrent uploads; the refusal is clear and reserves nothing', async () => {
      const { a, conv } = await group();
      const tries = await Promise.allSettled(
        Array.from({ length: 6 }, () =>
          a.client.attachments.create.mutate({
            conversationId: conv,
            name: 'q.bin',
            size: 1_500_000,
            contentType: 'application/octet-stream',
          }),
        ),
      );
      assert.equal(tries.filter((t) => t.status === 'fulfilled').length, 3, '3 × 1.5 MB fit in 5 MB, a 4th does not');
      const refused = tries.find((t) => t.status === 'rejected') as PromiseRejectedResult;
      assert.match(refused.reason.message, /storage quota reached/);
    });

    test('12.6 deleting the message deletes its files; account.delete deletes the rest; the export lists them', async () => {
      const { a, b, conv } = await group();
      const one = await upload(r, a, conv, { name: 'one.txt', type: 'text/plain', bytes: Buffer.from('one') });
      const two = await upload(r, a, conv, { name: 'two.png', type: 'image/png', bytes: await png(32, 32) });
      await a.client.attachments.complete.mutate({ id: one.id });
      await a.client.attachments.complete.mutate({ id: two.id });
      const { c: as } = await connect(r.port, a.accessToken);
      const ack = await as.request({ type: 'send', conv, cid: randomUUID(), attachments: [one.id] });
      assert.equal((await as.request({ type: 'send', conv, cid: randomUUID(), attachments: [two.id] })).type, 'ack');
      const exported = await a.client.account.export.query();
      assert.deepEqual((exported as { attachments: { name: string }[] }).attachments.map((f) => f.name).sort(), ['one.txt', 'two.png']);
      assert.equal((await as.request({ type: 'delete', conv, seq: ack.seq })).type, 'ok');
      assert.deepEqual(await stored(one.id), []);
      assert.equal(await errorCode(b.client.attachments.get.query({ id: one.id })), 'NOT_FOUND');
      const history = await b.client.conversations.history.query({ conversationId: conv, limit: 10 });
      assert.equal(history.events.find((e) => e.seq === ack.seq)!.attachments, undefined, 'the event no longer lists it');
      as.close();
      assert.equal((await stored(two.id)).length, 2);
      await a.client.account.delete.mutate({ password: a.password });
      assert.deepEqual(await stored(two.id), []);
    });

    test('12.1 uploads never completed are removed by the cleanup job once their URL has expired', async () => {
      const { a, conv } = await group();
      const up = await upload(r, a, conv, { name: 'late.txt', type: 'text/plain', bytes: Buffer.from('never completed') });
      assert.equal((await stored(up.id)).length, 1);
      const db = r.database.db;
      assert.equal((await cleanupAttachments(db, r.services.attachments.blobs, 60)).removed, 0, 'not yet expired');
      const { removed } = await cleanupAttachments(db, r.services.attachments.blobs, 60, Date.now() + 61_000);
      assert.ok(removed >= 1);
      assert.deepEqual(await stored(up.id), []);
      assert.equal(await errorCode(a.client.attachments.complete.mutate({ id: up.id })), 'NOT_FOUND');
    });
  });
}
