import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { notifyHarness, type NotifyHarness } from '../helpers/notify-harness.ts';
import { errorCode, newUser, replicaPerSuite } from '../helpers/server.ts';
import { connect, type RawClient } from '../helpers/ws.ts';

type User = Awaited<ReturnType<typeof newUser>>;
let cid = 0;
const say = (c: RawClient, conv: string, body: string, mentions?: string[]) =>
  c.request({ type: 'send', conv, cid: `b${++cid}`, body, ...(mentions ? { mentions } : {}) });

describe('blocking on PostgreSQL: the direct conversation stops, both ways, on every socket', () => {
  const replica = replicaPerSuite('postgres');

  test('5.10 after A blocks B: B cannot send, edit or react in their DM (FORBIDDEN, said clearly), A cannot either until unblocking; deletes and history stay; no new conversation between them; unblock restores it', async () => {
    const a = await newUser(replica.port, 'blk');
    const b = await newUser(replica.port, 'blk');
    const dm = (await b.client.conversations.createDirect.mutate({ userId: a.id })).id;
    const { c: as } = await connect(replica.port, a.accessToken);
    const { c: bs } = await connect(replica.port, b.accessToken);
    const before = await say(bs, dm, 'hi before');
    assert.equal(before.type, 'ack');
    await as.wait((f) => f.type === 'event' && f.conv === dm && f.seq === before.seq);

    await a.client.profiles.block.mutate({ userId: b.id });
    const mark = as.frames.length;
    const refused = await say(bs, dm, 'are you there?');
    assert.equal(refused.type, 'error');
    assert.equal(refused.code, 'FORBIDDEN');
    assert.equal(refused.message, 'you cannot message this user');
    const own = await say(as, dm, 'one last word');
    assert.equal(own.code, 'FORBIDDEN');
    assert.equal(own.message, 'you blocked this user: unblock them to send');
    assert.equal((await bs.request({ type: 'edit', conv: dm, seq: before.seq, body: 'edited' })).code, 'FORBIDDEN');
    assert.equal((await bs.request({ type: 'react', conv: dm, seq: before.seq, emoji: '👍', on: true })).code, 'FORBIDDEN');
    assert.equal((await bs.request({ type: 'typing', conv: dm })).code, 'FORBIDDEN');
    // A socket opened after the block learns it from its login.
    const { c: bs2 } = await connect(replica.port, b.accessToken);
    assert.equal((await say(bs2, dm, 'from my other device')).code, 'FORBIDDEN');
    // B may still delete what B wrote; the history stays readable to both.
    assert.equal((await bs.request({ type: 'delete', conv: dm, seq: before.seq })).type, 'ok');
    const history = await a.client.conversations.history.query({ conversationId: dm });
    assert.deepEqual(
      history.events.map((e) => e.kind),
      ['member', 'message', 'delete'],
    );
    // A got nothing new from B but the delete.
    await as.wait((f) => f.type === 'event' && f.kind === 'delete');
    assert.deepEqual(
      as.frames
        .slice(mark)
        .filter((f) => f.type === 'event' || f.type === 'typing')
        .map((f) => f.kind ?? f.type),
      ['delete'],
    );
    // No way around it through new conversations, either way.
    assert.equal(await errorCode(b.client.conversations.createDirect.mutate({ userId: a.id })), 'FORBIDDEN');
    assert.equal(await errorCode(a.client.conversations.createDirect.mutate({ userId: b.id })), 'FORBIDDEN');
    assert.equal(await errorCode(b.client.conversations.createGroup.mutate({ title: 'sneaky', memberIds: [a.id] })), 'FORBIDDEN');
    const bGroup = (await b.client.conversations.createGroup.mutate({ title: 'mine', memberIds: [] })).id;
    assert.equal(await errorCode(b.client.conversations.addMembers.mutate({ conversationId: bGroup, userIds: [a.id] })), 'FORBIDDEN');
    assert.deepEqual(
      (await b.client.profiles.search.query({ query: a.username })).map((p) => p.id),
      [],
      'the blocker is hidden from the blocked user',
    );
    assert.deepEqual(
      (await a.client.profiles.blocked.query()).map((p) => p.id),
      [b.id],
    );

    await a.client.profiles.unblock.mutate({ userId: b.id });
    assert.equal((await say(bs, dm, 'hello again')).type, 'ack');
    assert.equal((await say(bs2, dm, 'and from here')).type, 'ack');
    assert.equal((await say(as, dm, 'welcome back')).type, 'ack');
    for (const c of [as, bs, bs2]) c.close();
  });

  test('5.10 tips follow blocks: none to a user who blocked the caller (DM or group), none in a DM the caller blocked; no money moves, no event is written; unblocking restores them', async () => {
    const a = await newUser(replica.port, 'blk');
    const b = await newUser(replica.port, 'blk');
    const c = await newUser(replica.port, 'blk');
    const dm = (await b.client.conversations.createDirect.mutate({ userId: a.id })).id;
    const group = (await c.client.conversations.createGroup.mutate({ title: 'tips', memberIds: [a.id, b.id] })).id;
    for (const u of [a, b]) await replica.services.payments.grant({ username: u.username, amount: 1000, actor: 'test' });
    const headOf = async (conv: string) => (await a.client.conversations.list.query()).find((x) => x.id === conv)!.lastSeq;
    const heads = [await headOf(dm), await headOf(group)];
    let k = 0;
    const tip = (from: User, to: User, conversationId: string) =>
      from.client.payments.tip.mutate({ conversationId, toUserId: to.id, amount: 100, idempotencyKey: `tip${++k}` });

    await a.client.profiles.block.mutate({ userId: b.id });
    assert.equal(await errorCode(tip(b, a, dm)), 'FORBIDDEN');
    assert.equal(await errorCode(tip(b, a, group)), 'FORBIDDEN');
    assert.equal(await errorCode(tip(a, b, dm)), 'FORBIDDEN');
    // The blocker may still tip the blocked user in a group, as they may still write there.
    await tip(a, b, group);
    assert.deepEqual(await a.client.payments.balance.query(), { currency: 'usd', balance: 900, debt: 0 });
    assert.deepEqual(await b.client.payments.balance.query(), { currency: 'usd', balance: 1100, debt: 0 });
    assert.deepEqual([await headOf(dm), await headOf(group)], [heads[0], heads[1]! + 1]);

    await a.client.profiles.unblock.mutate({ userId: b.id });
    await tip(b, a, dm);
    assert.deepEqual(await a.client.payments.balance.query(), { currency: 'usd', balance: 1000, debt: 0 });
  });

  test('5.10 blocked both ways: unblocking one side keeps the DM closed until the other unblocks too', async () => {
    const a = await newUser(replica.port, 'blk');
    const b = await newUser(replica.port, 'blk');
    const dm = (await a.client.conversations.createDirect.mutate({ userId: b.id })).id;
    const { c: as } = await connect(replica.port, a.accessToken);
    await a.client.profiles.block.mutate({ userId: b.id });
    await b.client.profiles.block.mutate({ userId: a.id });
    await a.client.profiles.unblock.mutate({ userId: b.id });
    const r = await say(as, dm, 'still blocked?');
    assert.equal(r.code, 'FORBIDDEN');
    assert.equal(r.message, 'you cannot message this user');
    await b.client.profiles.unblock.mutate({ userId: a.id });
    assert.equal((await say(as, dm, 'now open')).type, 'ack');
    as.close();
  });
});

describe('blocking and notifications: nothing the blocked user sends in a shared group notifies the blocker (BullMQ on Redis, a real push service)', () => {
  let h: NotifyHarness;
  before(async () => {
    h = await notifyHarness();
  });
  after(async () => h?.close());

  test("5.10 B in a group with A (who blocked B) and C: B's messages and mentions notify C, never A; after unblocking they notify A again", async () => {
    const users: User[] = [];
    for (let i = 0; i < 3; i++) users.push(await newUser(h.port, 'bn'));
    const [blocker, blocked, other] = users as [User, User, User];
    const conv = (await blocked.client.conversations.createGroup.mutate({ title: 'Shared', memberIds: [blocker.id, other.id] })).id;
    const pushA = h.push.browser();
    await blocker.client.notifications.registerPush.mutate(pushA.subscription);
    const pushC = h.push.browser();
    await other.client.notifications.registerPush.mutate(pushC.subscription);
    const { c: author } = await connect(h.port, blocked.accessToken);
    // The member list is cached by then: the block must reach the trigger at once.
    assert.equal((await say(author, conv, 'before the block')).type, 'ack');
    await h.settle();
    assert.equal(h.push.to(pushA).length, 1);
    assert.equal(h.push.to(pushC).length, 1);

    await blocker.client.profiles.block.mutate({ userId: blocked.id });
    assert.equal((await say(author, conv, 'after the block')).type, 'ack', 'a group is not closed by a block');
    assert.equal((await say(author, conv, 'hey @blocker', [blocker.id])).type, 'ack');
    await h.queued();
    const jobs = await h.delayed('push');
    assert.equal(jobs.filter((j) => j.data.user === blocker.id).length, 0, 'no job for the blocker');
    await h.settle();
    assert.equal(h.push.to(pushA).length, 1, 'the blocker got nothing more');
    assert.equal(h.push.to(pushC).length, 2, 'the other member is notified as before');

    // Another member's message notifies the blocker; what the blocked user wrote in the same
    // range is neither counted nor shown.
    const { c: third } = await connect(h.port, other.accessToken);
    assert.equal((await say(author, conv, 'from the blocked one, again')).type, 'ack');
    assert.equal((await say(third, conv, 'from the other member')).type, 'ack');
    await h.settle();
    assert.equal(h.push.to(pushA).length, 2, "the other member's message notifies the blocker");
    assert.equal(h.push.to(pushA).at(-1)!.payload.body, 'from the other member');
    assert.equal(h.push.to(pushA).at(-1)!.payload.count, 1, "the blocked user's messages are not counted");
    third.close();

    await blocker.client.profiles.unblock.mutate({ userId: blocked.id });
    assert.equal((await say(author, conv, 'unblocked')).type, 'ack');
    await h.settle();
    assert.equal(h.push.to(pushA).length, 3, 'after unblocking, the blocker is notified again');
    assert.equal(h.push.to(pushA).at(-1)!.payload.body, 'unblocked');
    author.close();
  });
});
