import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnReplica, type ProcessReplica } from '../helpers/process-replica.ts';
import { newUser, testEnv, type TestEnv } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { connect, type Frame, type RawClient } from '../helpers/ws.ts';

/**
 * Membership changes made while one replica's Redis connection is away: replica B reaches Redis
 * through a proxy the test cuts; replica A removes a member and a DM is blocked meanwhile (the bus
 * messages never reach B). When B's connection comes back, its sockets must follow the database:
 * the removed member's socket is told and refused, the blocked user's send is refused, and a
 * socket of a session revoked meanwhile closes.
 */
describe('cluster: membership changes while a replica lost Redis take effect when it reconnects (Redis, PostgreSQL)', () => {
  let env: TestEnv;
  let proxy: TcpProxy;
  let redisPort: number;
  let a: ProcessReplica;
  let b: ProcessReplica;
  before(async () => {
    env = await testEnv('postgres', { redis: true });
    const url = new URL(env.env.REDIS_URL!);
    redisPort = Number(url.port);
    proxy = await startTcpProxy(redisPort);
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const rates = { WS_RATE_PER_S: '1000', WS_RATE_BURST: '1000' };
    [a, b] = await Promise.all([
      spawnReplica({ ...env.env, ...rates }),
      spawnReplica({ ...env.env, ...rates, REDIS_URL: viaProxy.toString() }),
    ]);
  });
  after(async () => {
    await a?.kill('SIGTERM');
    await b?.kill('SIGTERM');
    await proxy?.close();
    await env?.cleanup();
  });

  let n = 0;
  const send = (c: RawClient, conv: string) => c.request({ type: 'send', conv, cid: `o${++n}`, body: `message ${n}` });

  test('a removal, a block and a sign-out everywhere made while B was cut from Redis: after B reconnects the removed socket gets `conversation removed`, both sends are refused, the signed-out socket closes 4001', async (t) => {
    const owner = await newUser(a.port, 'out');
    const member = await newUser(a.port, 'out');
    const blocker = await newUser(a.port, 'out');
    const group = (await owner.client.conversations.createGroup.mutate({ title: 'outage', memberIds: [member.id] })).id;
    const dm = (await blocker.client.conversations.createDirect.mutate({ userId: member.id })).id;
    const { c } = await connect(b.port, member.accessToken);
    const { c: blockers } = await connect(b.port, blocker.accessToken);
    assert.equal((await send(c, group)).type, 'ack');
    assert.equal((await send(c, dm)).type, 'ack');

    // B loses Redis: open connections are cut and new ones refused (the proxy points nowhere).
    proxy.target = 1;
    proxy.dropAll();
    await b.waitFor('redis bus (sub) error');
    await owner.client.conversations.removeMember.mutate({ conversationId: group, userId: member.id });
    await blocker.client.profiles.block.mutate({ userId: member.id });
    await blocker.client.auth.logoutAll.mutate();

    proxy.target = redisPort;
    await b.waitFor('sockets revalidated after the bus reconnected');
    const replies: Frame[] = [await send(c, group), await send(c, dm)];
    t.diagnostic(
      `after reconnect: group send ${replies[0]!.type} ${replies[0]!.code ?? ''}, DM send ${replies[1]!.type} ${replies[1]!.code ?? ''}`,
    );
    assert.deepEqual(
      replies.map((f) => (f.type === 'error' ? f.code : f.type)),
      ['FORBIDDEN', 'FORBIDDEN'],
    );
    const removed = await c.wait((f) => f.type === 'conversation' && f.op === 'removed' && f.conversation.id === group);
    assert.equal(
      removed.conversation.members.some((m: { userId: string }) => m.userId === member.id),
      false,
    );
    const closed = await blockers.closed;
    t.diagnostic(`signed-out socket: closed ${closed.code} ${closed.reason}`);
    assert.equal(closed.code, 4001);
    c.close();
  });
});
