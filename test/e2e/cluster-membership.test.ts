import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnReplica, type ProcessReplica } from '../helpers/process-replica.ts';
import { newUser, testEnv, type TestEnv } from '../helpers/server.ts';
import { connect, type Frame, type RawClient } from '../helpers/ws.ts';

/**
 * Read-your-writes across replicas on Redis: two hub processes; every membership mutation (and
 * block) is made over tRPC on replica A, and the affected user's socket, open on replica B
 * before the mutation, sends the moment the mutation has answered. The answer decides: accepted after
 * createGroup, createDirect, addMembers and unblock; refused after removeMember, leave and block.
 */
const ROUNDS = Number(process.env.MEMBERSHIP_ROUNDS ?? 25);

type User = Awaited<ReturnType<typeof newUser>>;

describe('cluster: membership read-your-writes, mutation on one replica process, socket on the other (Redis, PostgreSQL)', () => {
  let env: TestEnv;
  let a: ProcessReplica;
  let b: ProcessReplica;
  before(async () => {
    env = await testEnv('postgres', { redis: true });
    // A generous rate: every round sends one frame or two.
    const rates = { WS_RATE_PER_S: '1000', WS_RATE_BURST: '1000' };
    [a, b] = await Promise.all([spawnReplica({ ...env.env, ...rates }), spawnReplica({ ...env.env, ...rates })]);
  });
  after(async () => {
    await a?.kill('SIGTERM');
    await b?.kill('SIGTERM');
    await env?.cleanup();
  });

  let n = 0;
  /** A send from the socket, answered by an ack or an error. */
  const send = (c: RawClient, conv: string) => c.request({ type: 'send', conv, cid: `m${++n}`, body: `message ${n}` });
  const refused = (f: Frame) => f.type === 'error' && f.code === 'FORBIDDEN';

  /** Runs `round` ROUNDS times; returns how many of its sends got the unexpected answer. */
  async function rounds(t: { diagnostic(s: string): void }, what: string, round: (i: number) => Promise<Frame>, expect: 'ack' | 'refused') {
    const wrong: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const reply = await round(i);
      const ok = expect === 'ack' ? reply.type === 'ack' : refused(reply);
      if (!ok) wrong.push(`${reply.type}${reply.code ? ' ' + reply.code : ''}`);
    }
    t.diagnostic(
      `${what}: ${wrong.length} of ${ROUNDS} sends ${expect === 'ack' ? 'refused' : 'accepted'}${wrong.length ? ` (${wrong.slice(0, 3).join(', ')})` : ''}`,
    );
    assert.deepEqual(wrong, [], `${what}: every send right after the answer is ${expect === 'ack' ? 'accepted' : 'refused'}`);
  }

  test('3 createGroup then send at once from a socket on the other replica: accepted every time; the socket got `conversation added`, live events and resume', async (t) => {
    const me = await newUser(a.port, 'rw');
    const other = await newUser(a.port, 'rw');
    const { c } = await connect(b.port, me.accessToken);
    const convs: string[] = [];
    const ms: number[] = [];
    try {
      await rounds(
        t,
        'createGroup then send',
        async (i) => {
          const t0 = performance.now();
          const conv = (await me.client.conversations.createGroup.mutate({ title: `g${i}`, memberIds: [other.id] })).id;
          ms.push(performance.now() - t0);
          convs.push(conv);
          return send(c, conv);
        },
        'ack',
      );
    } finally {
      t.diagnostic(`createGroup answered in ${ms.sort((x, y) => x - y)[ms.length >> 1]!.toFixed(1)} ms (median)`);
    }
    // Each new conversation was announced to the socket, and it is live there: another member's
    // message (sent on replica A) arrives, and a resume from 0 replays the whole log.
    const last = convs.at(-1)!;
    for (const conv of convs) await c.wait((f) => f.type === 'conversation' && f.op === 'added' && f.conversation.id === conv);
    const { c: theirs } = await connect(a.port, other.accessToken);
    const ack = await theirs.request({ type: 'send', conv: last, cid: 'from-other', body: 'hello from A' });
    assert.equal(ack.type, 'ack');
    await c.wait((f) => f.type === 'event' && f.conv === last && f.seq === ack.seq);
    const from = c.frames.length;
    const resumed = await c.request({ type: 'resume', convs: { [last]: 0 } });
    assert.equal(resumed.type, 'resumed');
    assert.equal(resumed.convs[last], ack.seq);
    const replayed = c.frames.slice(from, c.frames.indexOf(resumed)).filter((f) => f.type === 'event' && f.conv === last);
    assert.deepEqual(
      replayed.map((f) => f.seq),
      Array.from({ length: ack.seq }, (_, k) => k + 1),
      'the resume replays the whole log',
    );
    c.close();
    theirs.close();
  });

  test('3 createDirect then send at once from a socket on the other replica: accepted every time', async (t) => {
    const me = await newUser(a.port, 'rw');
    const others: User[] = [];
    for (let i = 0; i < ROUNDS; i++) others.push(await newUser(a.port, 'rwd'));
    const { c } = await connect(b.port, me.accessToken);
    await rounds(
      t,
      'createDirect then send',
      async (i) => send(c, (await me.client.conversations.createDirect.mutate({ userId: others[i]!.id })).id),
      'ack',
    );
    c.close();
  });

  test('3 addMembers then send at once by the added user, whose socket is on the other replica: accepted every time', async (t) => {
    const owner = await newUser(a.port, 'rw');
    const added = await newUser(a.port, 'rw');
    const { c } = await connect(b.port, added.accessToken);
    await rounds(
      t,
      'addMembers then send by the added user',
      async (i) => {
        const conv = (await owner.client.conversations.createGroup.mutate({ title: `a${i}`, memberIds: [] })).id;
        await owner.client.conversations.addMembers.mutate({ conversationId: conv, userIds: [added.id] });
        return send(c, conv);
      },
      'ack',
    );
    c.close();
  });

  test('3 removeMember then send at once by the removed user, whose socket is on the other replica: refused every time', async (t) => {
    const owner = await newUser(a.port, 'rw');
    const member = await newUser(a.port, 'rw');
    const { c } = await connect(b.port, member.accessToken);
    await rounds(
      t,
      'removeMember then send by the removed user',
      async (i) => {
        const conv = (await owner.client.conversations.createGroup.mutate({ title: `r${i}`, memberIds: [member.id] })).id;
        // The socket has the conversation and can use it, then it is removed.
        await c.wait((f) => f.type === 'conversation' && f.op === 'added' && f.conversation.id === conv);
        assert.equal((await send(c, conv)).type, 'ack');
        await owner.client.conversations.removeMember.mutate({ conversationId: conv, userId: member.id });
        return send(c, conv);
      },
      'refused',
    );
    c.close();
  });

  test('3 leave then send at once from a socket on the other replica: refused every time', async (t) => {
    const owner = await newUser(a.port, 'rw');
    const member = await newUser(a.port, 'rw');
    const { c } = await connect(b.port, member.accessToken);
    await rounds(
      t,
      'leave then send',
      async (i) => {
        const conv = (await owner.client.conversations.createGroup.mutate({ title: `l${i}`, memberIds: [member.id] })).id;
        await c.wait((f) => f.type === 'conversation' && f.op === 'added' && f.conversation.id === conv);
        assert.equal((await send(c, conv)).type, 'ack');
        await member.client.conversations.leave.mutate({ conversationId: conv });
        return send(c, conv);
      },
      'refused',
    );
    c.close();
  });

  test('5.10 block then send at once in the DM by the blocked user, on the other replica: refused every time; unblock then send: accepted', async (t) => {
    const blocker = await newUser(a.port, 'rw');
    const blocked = await newUser(a.port, 'rw');
    const dm = (await blocker.client.conversations.createDirect.mutate({ userId: blocked.id })).id;
    const { c } = await connect(b.port, blocked.accessToken);
    assert.equal((await send(c, dm)).type, 'ack');
    const afterBlock: Frame[] = [];
    await rounds(
      t,
      'unblock then send',
      async () => {
        await blocker.client.profiles.block.mutate({ userId: blocked.id });
        afterBlock.push(await send(c, dm));
        await blocker.client.profiles.unblock.mutate({ userId: blocked.id });
        return send(c, dm);
      },
      'ack',
    );
    const accepted = afterBlock.filter((f) => !refused(f));
    t.diagnostic(`block then send: ${accepted.length} of ${ROUNDS} sends accepted`);
    assert.equal(accepted.length, 0, 'every send right after block is refused');
    assert.match(afterBlock[0]!.message, /cannot message/);
    c.close();
  });
});
