/**
 * account.delete erases what the user wrote from the log and the search index: message and edit
 * bodies, in the groups they are in and in those they left, through the real API and sockets on
 * PostgreSQL. What stays for the other members is checked through conversations.history and
 * messages.search.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newUser, replicaPerSuite, type SuiteReplica } from '../helpers/server.ts';
import { connect, type RawClient } from '../helpers/ws.ts';

async function send(c: RawClient, conv: string, body: string) {
  const ack = await c.request({ type: 'send', conv, cid: `c${Math.random()}`, body });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  return (ack as unknown as { seq: number }).seq;
}

async function edit(c: RawClient, conv: string, seq: number, body: string) {
  const ok = await c.request({ type: 'edit', conv, seq, body });
  assert.equal(ok.type, 'ok', JSON.stringify(ok));
}

describe('account erasure on PostgreSQL', () => {
  const replica: SuiteReplica = replicaPerSuite('postgres', { API_RATE_PER_S: '10000', API_RATE_BURST: '10000' });

  test('the erased user’s text is gone from every event kind, also in groups they left, from the log and the search index', async () => {
    const [gone, stays] = [await newUser(replica.port, 'gone'), await newUser(replica.port, 'stays')];
    const kept = await stays.client.conversations.createGroup.mutate({ title: 'Kept', memberIds: [gone.id] });
    const left = await stays.client.conversations.createGroup.mutate({ title: 'Left', memberIds: [gone.id] });
    const { c } = await connect(replica.port, gone.accessToken);
    const secrets = ['zulusecretone', 'yankeesecrettwo', 'xraysecretthree', 'whiskeysecretfour'];
    try {
      const a = await send(c, kept.id, `${secrets[0]} in a group they stay in`);
      await edit(c, kept.id, a, `${secrets[1]} edited in a group they stay in`);
      const b = await send(c, left.id, `${secrets[2]} in a group they leave`);
      await edit(c, left.id, b, `${secrets[3]} edited in a group they leave`);
    } finally {
      c.close();
    }
    const { c: other } = await connect(replica.port, stays.accessToken);
    let mine: number;
    try {
      mine = await send(other, kept.id, 'this text is not the erased user’s');
    } finally {
      other.close();
    }
    await gone.client.conversations.leave.mutate({ conversationId: left.id });
    await replica.searchIndexer.flush();
    assert.equal((await stays.client.messages.search.query({ query: secrets[1]! })).hits.length, 1, 'indexed before the erasure');

    await gone.client.account.delete.mutate({ password: gone.password });

    for (const conv of [kept.id, left.id]) {
      const { events } = await stays.client.conversations.history.query({ conversationId: conv, limit: 100 });
      const text = JSON.stringify(events);
      for (const s of secrets) assert.ok(!text.includes(s), `"${s}" is still in the log of ${conv === kept.id ? 'Kept' : 'Left'}`);
      const theirs = events.filter((e) => e.from === gone.id && (e.kind === 'message' || e.kind === 'edit'));
      assert.equal(theirs.length, 2, 'the events stay, with their seqs');
    }
    const { events } = await stays.client.conversations.history.query({ conversationId: kept.id, limit: 100 });
    assert.ok(JSON.stringify(events.find((e) => e.seq === mine)).includes('not the erased user'), 'other members’ text stays');
    await replica.searchIndexer.flush();
    for (const s of secrets) assert.deepEqual((await stays.client.messages.search.query({ query: s })).hits, [], s);
  });
});
