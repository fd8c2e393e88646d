import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type RawClient } from '../helpers/ws.ts';
import { newUser } from '../helpers/server.ts';
import { notifyHarness, type NotifyHarness } from '../helpers/notify-harness.ts';
import { runNotifyJob } from '../../server/src/notify/processors/run-job.ts';

type User = Awaited<ReturnType<typeof newUser>>;

describe('notifications: BullMQ on real Redis, real PostgreSQL, a real push service, SMTP server and webhook receiver', () => {
  let h: NotifyHarness;
  before(async () => {
    h = await notifyHarness();
  });
  after(async () => h?.close());

  /** A group of `n` users; the first is the author, holding a socket. */
  async function room(n: number) {
    const users: User[] = [];
    for (let i = 0; i < n; i++) users.push(await newUser(h.port, 'nt'));
    const conv = await users[0]!.client.conversations.createGroup.mutate({ title: 'Room', memberIds: users.slice(1).map((u) => u.id) });
    const { c } = await connect(h.port, users[0]!.accessToken);
    return { users, conv: conv.id as string, author: c };
  }
  let cid = 0;
  const say = (c: RawClient, conv: string, body: string, mentions?: string[]) =>
    c.request({ type: 'send', conv, cid: `c${++cid}`, body, ...(mentions ? { mentions } : {}) });
  async function subscribe(u: User) {
    const b = h.push.browser();
    await u.client.notifications.registerPush.mutate(b.subscription);
    return b;
  }

  test('an offline member gets exactly one push for a burst of 20, with the newest body, the count and the badge; the payload decrypts; an online member gets none', async () => {
    const { users, conv, author } = await room(3);
    const [, offline, online] = users as [User, User, User];
    const bOff = await subscribe(offline);
    const bOn = await subscribe(online);
    const { c: onlineSocket } = await connect(h.port, online.accessToken);
    let last = 0;
    for (let i = 1; i <= 20; i++) last = (await say(author, conv, `message ${i}`)).seq;
    await h.queued();
    const delayed = await h.delayed('push');
    assert.equal(delayed.filter((j) => j.data.user === offline.id).length, 1, 'the burst coalesced into one job');
    assert.equal(delayed.filter((j) => j.data.user === online.id).length, 0, 'no job for the online member');
    await h.settle();
    const got = h.push.to(bOff);
    assert.equal(got.length, 1);
    assert.equal(h.push.to(bOn).length, 0);
    const p = got[0]!.payload;
    assert.equal(p.conv, conv);
    assert.equal(p.body, 'message 20');
    assert.equal(p.count, 20);
    // The badge is the user's total unread, as conversations.list counts it (the join event included).
    const unread = (await offline.client.conversations.list.query()).reduce((n: number, c: { unread: number }) => n + c.unread, 0);
    assert.equal(p.badge, unread);
    assert.ok(unread >= 20);
    assert.match(p.title, /in Room$/);
    assert.equal(p.url, `https://chat.hubbub.test/#/c/${conv}`);
    assert.ok(got[0]!.topic && /^[0-9a-f]{32}$/.test(got[0]!.topic));
    const deliveries = await offline.client.notifications.deliveries.query({});
    assert.deepEqual(
      deliveries.filter((d) => d.channel === 'push').map((d) => [d.status, d.range]),
      [['sent', `${conv}:1-${last}`]],
    );
    onlineSocket.close();
  });

  test('a read on another device before the delay cancels the push', async () => {
    const { users, conv, author } = await room(2);
    const b = await subscribe(users[1]!);
    const ack = await say(author, conv, 'hello');
    await users[1]!.client.conversations.markRead.mutate({ conversationId: conv, seq: ack.seq });
    await h.settle();
    assert.equal(h.push.to(b).length, 0);
  });

  test('mentions mode notifies on a mention only; muted gets nothing', async () => {
    const { users, conv, author } = await room(3);
    const [, picky, muted] = users as [User, User, User];
    const bPicky = await subscribe(picky);
    const bMuted = await subscribe(muted);
    await picky.client.notifications.updateSettings.mutate({ conversations: { [conv]: 'mentions' } });
    await muted.client.conversations.mute.mutate({ conversationId: conv });
    await say(author, conv, 'no mention here');
    await h.settle();
    assert.equal(h.push.to(bPicky).length, 0);
    await say(author, conv, 'hey you', [picky.id, muted.id]);
    await h.settle();
    assert.equal(h.push.to(bPicky).length, 1);
    assert.equal(h.push.to(bPicky)[0]!.payload.body, 'hey you');
    assert.equal(h.push.to(bMuted).length, 0);
  });

  test("quiet hours postpone the push to their end, in the user's time zone", async () => {
    const { users, conv, author } = await room(2);
    const b = await subscribe(users[1]!);
    // Dates derive from the real now: BullMQ's moveToDelayed compares with the real clock, so a
    // literal date in the past would make the postponed job due at once. Tokyo has no DST, so
    // 22:30 there is 13:30 UTC and quiet hours 22:00-07:00 end at 22:00 UTC the same day.
    const day = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    const night = new Date(`${day}T13:30:00Z`);
    const quietEnd = new Date(`${day}T22:00:00Z`);
    h.clock.now = night;
    await users[1]!.client.notifications.updateSettings.mutate({ quietHours: { start: '22:00', end: '07:00', timezone: 'Asia/Tokyo' } });
    try {
      await say(author, conv, 'late night');
      await h.settle();
      assert.equal(h.push.to(b).length, 0);
      const postponed = (await h.delayed('push')).filter((j) => j.data.user === users[1]!.id);
      assert.equal(postponed.length, 1);
      // moveToDelayed keeps the job's timestamp and sets the delay from the moment it ran.
      const due = postponed[0]!.timestamp + postponed[0]!.delay;
      assert.ok(Math.abs(due - quietEnd.getTime()) < 5000, `due at ${new Date(due).toISOString()}`);
      h.clock.now = quietEnd;
      await h.settle();
      assert.equal(h.push.to(b).length, 1);
    } finally {
      h.clock.now = new Date();
    }
  });

  test('an edit that adds a mention notifies; a delete before the delay cancels', async () => {
    const { users, conv, author } = await room(3);
    const [, picky, other] = users as [User, User, User];
    const bPicky = await subscribe(picky);
    const bOther = await subscribe(other);
    await picky.client.notifications.updateSettings.mutate({ conversations: { [conv]: 'mentions' } });
    const first = await say(author, conv, 'plain');
    await h.settle();
    assert.equal(h.push.to(bPicky).length, 0);
    assert.equal(h.push.to(bOther).length, 1);
    assert.equal((await author.request({ type: 'edit', conv, seq: first.seq, body: 'plain, @picky', mentions: [picky.id] })).type, 'ok');
    await h.settle();
    assert.equal(h.push.to(bPicky).length, 1);
    assert.equal(h.push.to(bPicky)[0]!.payload.body, 'plain, @picky');
    assert.equal(h.push.to(bOther).length, 1, 'an edit notifies only whom it mentions');
    const gone = await say(author, conv, 'oops');
    assert.equal((await author.request({ type: 'delete', conv, seq: gone.seq })).type, 'ok');
    await h.settle();
    assert.equal(h.push.to(bOther).length, 1, 'the deleted message was not notified');
  });

  test('410 deletes the subscription; 429 is retried after Retry-After; 500 is retried, then kept as a permanent failure', async () => {
    const { users, conv, author } = await room(4);
    const [, gone, busy, broken] = users as [User, User, User, User];
    const bGone = await subscribe(gone);
    const bBusy = await subscribe(busy);
    const bBroken = await subscribe(broken);
    h.push.answer(bGone, { status: 410 });
    h.push.answer(bBusy, { status: 429, headers: { 'retry-after': '7' } });
    h.push.answer(bBroken, { status: 500 }, { status: 500 }, { status: 500 });
    assert.equal((await say(author, conv, 'are you there')).type, 'ack');
    await h.settle();
    assert.equal(h.push.to(bGone).length, 1);
    const goneDeliveries = await gone.client.notifications.deliveries.query({ limit: 10 });
    assert.equal(goneDeliveries.find((d) => d.channel === 'push')?.status, 'failed');
    assert.equal(
      (await gone.client.notifications.unregisterPush.mutate({ endpoint: bGone.endpoint })).removed,
      false,
      'the 410 removed it already',
    );
    const retry = (await h.delayedSends('push')).find((j) => j.data.user === busy.id);
    assert.ok(retry, 'the 429 is waiting for its retry');
    assert.ok(retry.delay >= 7000 && retry.delay <= 8000, `retry after ${retry.delay} ms`);
    await h.settle(); // the Retry-After passes; the busy one is accepted, the broken one fails again
    assert.deepEqual(
      h.push.to(bBusy).map((r) => r.status),
      [429, 201],
    );
    assert.equal((await busy.client.notifications.deliveries.query({})).find((d) => d.channel === 'push')?.status, 'sent');
    await h.settle(); // third and last attempt
    assert.deepEqual(
      h.push.to(bBroken).map((r) => r.status),
      [500, 500, 500],
    );
    const kept = (await broken.client.notifications.deliveries.query({})).find((d) => d.channel === 'push')!;
    assert.equal(kept.status, 'failed');
    assert.equal(kept.attempts, 3);
    assert.match(kept.error ?? '', /500/);
    await h.settle();
    assert.equal(h.push.to(bBroken).length, 3, 'not retried after the last attempt');
  });

  test('one email digest for missed messages in three conversations after the window; the unsubscribe link turns email off', async () => {
    const author = await newUser(h.port, 'nt');
    const reader = await newUser(h.port, 'nt');
    const convs: string[] = [];
    for (const title of ['Alpha', 'Beta', 'Gamma'])
      convs.push((await author.client.conversations.createGroup.mutate({ title, memberIds: [reader.id] })).id);
    const { c } = await connect(h.port, author.accessToken);
    for (const [i, title] of ['Alpha', 'Beta', 'Gamma'].entries())
      assert.equal((await say(c, convs[i]!, `news from ${title}`)).type, 'ack');
    assert.equal((await say(c, convs[0]!, 'more from Alpha')).type, 'ack');
    await h.queued();
    assert.equal((await h.delayed('email')).filter((j) => j.data.user === reader.id).length, 1, 'one digest job per user');
    await h.settle();
    const mails = h.smtp.mails.filter((m) => m.to && JSON.stringify(m.to).includes(reader.username.toLowerCase()));
    assert.equal(mails.length, 1);
    const mail = mails[0]!;
    assert.match(mail.subject ?? '', /4 unread messages in 3 conversations/);
    for (const t of ['Alpha', 'Beta', 'Gamma']) {
      assert.ok(mail.text?.includes(`in ${t}`), `text mentions ${t}`);
      assert.ok(String(mail.html).includes(`in ${t}`), `html mentions ${t}`);
    }
    assert.ok(mail.text?.includes('more from Alpha'));
    const header = (name: string) =>
      mail.headerLines
        .find((l) => l.key === name)
        ?.line.slice(name.length + 1)
        .trim();
    assert.equal(header('list-unsubscribe-post'), 'List-Unsubscribe=One-Click');
    const link = /^<([^>]+)>$/.exec(header('list-unsubscribe') ?? '')?.[1] ?? '';
    const u = new URL(link);
    assert.equal(u.origin, 'https://chat.hubbub.test');
    // A forged signature changes nothing.
    const forged = await fetch(`http://127.0.0.1:${h.port}${u.pathname}?u=${reader.id}&s=AAAA`, {
      method: 'POST',
      body: 'List-Unsubscribe=One-Click',
    });
    assert.equal(forged.status, 400);
    assert.equal((await reader.client.notifications.settings.query()).email, true);
    const res = await fetch(`http://127.0.0.1:${h.port}${u.pathname}${u.search}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    assert.equal(res.status, 200);
    assert.equal((await reader.client.notifications.settings.query()).email, false);
    await say(c, convs[1]!, 'after unsubscribing');
    await h.settle();
    assert.equal(
      h.smtp.mails.filter((m) => JSON.stringify(m.to).includes(reader.username.toLowerCase())).length,
      1,
      'no email after unsubscribing',
    );
  });

  test('a 4xx from the SMTP server is retried; the digest arrives once', async () => {
    const author = await newUser(h.port, 'nt');
    const reader = await newUser(h.port, 'nt');
    const conv = await author.client.conversations.createDirect.mutate({ userId: reader.id });
    const { c } = await connect(h.port, author.accessToken);
    await say(c, conv.id, 'ping');
    await h.queued();
    h.smtp.refuseNext(451, 'try again later');
    await h.settle();
    const mine = () => h.smtp.mails.filter((m) => JSON.stringify(m.to).includes(reader.username.toLowerCase()));
    assert.equal(mine().length, 0);
    await h.settle();
    assert.equal(mine().length, 1);
    assert.equal((await reader.client.notifications.deliveries.query({})).find((d) => d.channel === 'email')?.status, 'sent');
  });

  test('webhooks: signed with the per-webhook secret, verified by the receiver, the event id stable; rotateSecret signs with the new one', async () => {
    const { users, conv, author } = await room(2);
    const owner = users[1]!;
    const created = await owner.client.notifications.webhooks.create.mutate({ url: h.hooks.url });
    assert.match(created.secret, /^whsec_/);
    h.hooks.secret = created.secret;
    await say(author, conv, 'to the bot');
    await h.settle();
    const hits = h.hooks.hits.filter((x) => x.json.user === owner.id);
    assert.equal(hits.length, 1);
    assert.ok(hits[0]!.verified, 'the signature verifies');
    assert.equal(hits[0]!.json.id, hits[0]!.id, 'Hubbub-Event-Id is the body id');
    assert.equal(hits[0]!.json.conversation, conv);
    assert.equal(hits[0]!.json.body, 'to the bot');
    const rotated = await owner.client.notifications.webhooks.rotateSecret.mutate({ id: created.id });
    assert.notEqual(rotated.secret, created.secret);
    h.hooks.secret = rotated.secret;
    await say(author, conv, 'again');
    await h.settle();
    const later = h.hooks.hits.filter((x) => x.json.user === owner.id);
    assert.equal(later.length, 2);
    assert.ok(later[1]!.verified);
    assert.deepEqual(
      (await owner.client.notifications.webhooks.list.query()).map((w) => w.id),
      [created.id],
    );
  });
  test('the trigger keeps member lists, and a membership change drops them: a member added after a message is notified of the next; a removed one gets no job; a webhook made after a message is used for the next', async () => {
    const { users, conv, author } = await room(2);
    const [, first] = users as [User, User];
    const bFirst = await subscribe(first);
    await say(author, conv, 'before anyone else');
    await h.settle();
    assert.equal(h.push.to(bFirst).length, 1);
    // The room's member list is now kept by the trigger; the newcomer is not in it.
    const late = await newUser(h.port, 'nt');
    const bLate = await subscribe(late);
    await users[0]!.client.conversations.addMembers.mutate({ conversationId: conv, userIds: [late.id] });
    await users[0]!.client.conversations.removeMember.mutate({ conversationId: conv, userId: first.id });
    const hook = await late.client.notifications.webhooks.create.mutate({ url: h.hooks.url });
    h.hooks.secret = hook.secret;
    await say(author, conv, 'after the change');
    await h.queued();
    const delayed = await h.delayed('push');
    assert.equal(delayed.filter((j) => j.data.user === late.id && j.data.conv === conv).length, 1, 'the added member has a job');
    assert.equal(delayed.filter((j) => j.data.user === first.id).length, 0, 'no job for the removed member');
    await h.settle();
    assert.equal(h.push.to(bLate).length, 1, 'the added member got a push');
    assert.equal(h.push.to(bLate)[0]!.payload.body, 'after the change');
    assert.equal(h.push.to(bFirst).length, 1, 'the removed member got only the push from before');
    assert.equal(h.push.to(bFirst)[0]!.payload.body, 'before anyone else');
    const hits = h.hooks.hits.filter((x) => x.json.user === late.id);
    assert.equal(hits.length, 1, 'the new webhook was called');
    assert.equal(hits[0]!.json.body, 'after the change');
  });

  test('a notification job run again after its worker died (claim made, hand-off unknown) hands on the same deliveries: one send job per target, one push each', async () => {
    const { users, conv, author } = await room(2);
    const reader = users[1]!;
    const [b1, b2] = [await subscribe(reader), await subscribe(reader)];
    await h.stopWorkers();
    try {
      await say(author, conv, 'exactly once');
      await h.queued();
      const [job] = (await h.delayed('push')).filter((j) => j.data.user === reader.id);
      assert.ok(job);
      // Its processor twice, as BullMQ runs a stalled job again on another worker.
      const ctx = { final: false, dispatch: h.dispatch };
      assert.deepEqual(await runNotifyJob('push', h.deps, job.data, ctx), { outcome: 'dispatched', deliveries: 2 });
      assert.deepEqual(await runNotifyJob('push', h.deps, job.data, ctx), { outcome: 'dispatched', deliveries: 2 });
      const sends = (await h.sendJobs('push', ['waiting'])).filter((j) => j.data.user === reader.id);
      assert.equal(sends.length, 2, 'one send job per subscription, not one per run');
      await job.remove();
    } finally {
      h.startWorkers();
    }
    await h.settle();
    assert.equal(h.push.to(b1).length, 1);
    assert.equal(h.push.to(b2).length, 1);
    const rows = (await reader.client.notifications.deliveries.query({})).filter((d) => d.channel === 'push');
    assert.deepEqual(
      rows.map((r) => r.status),
      ['sent', 'sent'],
    );
  });
});
