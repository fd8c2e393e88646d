/**
 * messages.search and conversations.history around a seq, through the real API: messages sent
 * over sockets, edited, deleted, members removed and accounts erased the way clients do it. On
 * PostgreSQL two replicas share Redis: messages are sent through one and searched through the
 * other (the indexer runs on the replica that appended).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Replica } from '../../server/src/replica.ts';
import { dbKinds, errorCode, newUser, startTestReplica, testEnv, trpcClient, type TestEnv } from '../helpers/server.ts';
import { connect, type RawClient } from '../helpers/ws.ts';

type User = Awaited<ReturnType<typeof newUser>>;
type Hits = Awaited<ReturnType<User['client']['messages']['search']['query']>>['hits'];

/** Polls a search until `done` holds for its hits (an awaited condition), failing after `withinMs`. */
async function searchUntil(u: User, query: string, done: (hits: Hits) => boolean, withinMs: number): Promise<{ hits: Hits; ms: number }> {
  const started = performance.now();
  for (;;) {
    const { hits } = await u.client.messages.search.query({ query, order: 'recent' });
    const ms = performance.now() - started;
    if (done(hits)) return { hits, ms };
    if (ms > withinMs) assert.fail(`"${query}" not as expected after ${Math.round(ms)} ms: ${JSON.stringify(hits)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function send(c: RawClient, conv: string, body: string, mentions?: string[]) {
  const ack = await c.request({ type: 'send', conv, cid: `c${Math.random()}`, body, ...(mentions ? { mentions } : {}) });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  return ack as unknown as { seq: number; ts: number; id: string };
}

for (const kind of dbKinds) {
  describe(`message search over tRPC on ${kind}`, () => {
    let env: TestEnv;
    let a: Replica;
    let b: Replica;
    before(async () => {
      env = await testEnv(kind, { redis: kind === 'postgres' });
      const over = { API_RATE_PER_S: '10000', API_RATE_BURST: '10000' };
      a = await startTestReplica(env.env, over);
      // PGlite is one process's database: one replica plays both.
      b = kind === 'postgres' ? await startTestReplica(env.env, over) : a;
    });
    after(async () => {
      if (b !== a) await b?.stop();
      await a?.stop();
      await env?.cleanup();
    });

    test('11 a message is searchable within 2 s of its ack, on another replica, with a marked snippet', async () => {
      const [ann, bob] = [await newUser(a.port, 'ann'), await newUser(a.port, 'bob')];
      const g = await ann.client.conversations.createGroup.mutate({ title: 'Launch', memberIds: [bob.id] });
      const { c } = await connect(a.port, ann.accessToken);
      try {
        const ack = await send(c, g.id, 'the zeppelin launch is <today> & on time');
        const bobOnB = { ...bob, client: trpcClient(b.port, bob.accessToken) };
        const { hits, ms } = await searchUntil(bobOnB, 'zeppelin', (h) => h.length === 1, 2000);
        assert.ok(ms < 2000, `searchable after ${Math.round(ms)} ms`);
        assert.deepEqual(
          { ...hits[0]! },
          {
            conversationId: g.id,
            seq: ack.seq,
            id: ack.id,
            from: ann.id,
            ts: ack.ts,
            snippet: 'the <mark>zeppelin</mark> launch is &lt;today&gt; &amp; on time',
          },
        );
      } finally {
        c.close();
      }
    });

    test('11 never found: a non-member, a removed member, a deleted message, an edited message’s old text, an erased user’s text', async () => {
      const [ann, bob, out, gone] = await Promise.all(['ann', 'bob', 'out', 'gone'].map((n) => newUser(a.port, n)));
      const g = await ann!.client.conversations.createGroup.mutate({ title: 'Secrets', memberIds: [bob!.id, gone!.id] });
      const [sa, sg] = [await connect(a.port, ann!.accessToken), await connect(b.port, gone!.accessToken)];
      try {
        const kept = await send(sa.c, g.id, 'xylophone kept');
        const edited = await send(sa.c, g.id, 'xylophone before the edit');
        const deleted = await send(sa.c, g.id, 'xylophone doomed');
        await send(sg.c, g.id, 'xylophone from the erased account');
        await searchUntil(bob!, 'xylophone', (h) => h.length === 4, 2000);
        assert.equal((await sa.c.request({ type: 'edit', conv: g.id, seq: edited.seq, body: 'marimba after the edit' })).type, 'ok');
        assert.equal((await sa.c.request({ type: 'delete', conv: g.id, seq: deleted.seq })).type, 'ok');
        await gone!.client.account.delete.mutate({ password: gone!.password });
        // Right after the erasure answered, nothing of it is found.
        const afterErasure = await bob!.client.messages.search.query({ query: 'xylophone' });
        assert.ok(!afterErasure.hits.some((h) => h.from === gone!.id), 'the erased user’s text');
        const { hits } = await searchUntil(bob!, 'xylophone', (h) => h.length === 1, 2000);
        assert.deepEqual(
          hits.map((h) => h.seq),
          [kept.seq],
          'only the message that was neither edited, deleted nor erased',
        );
        const { hits: now } = await searchUntil(bob!, 'marimba', (h) => h.length === 1, 2000);
        assert.equal(now[0]!.seq, edited.seq, 'the current text is found');
        assert.deepEqual((await out!.client.messages.search.query({ query: 'xylophone' })).hits, [], 'a non-member');
        assert.deepEqual((await out!.client.messages.search.query({ query: 'xylophone', conversationId: g.id })).hits, []);
        await ann!.client.conversations.removeMember.mutate({ conversationId: g.id, userId: bob!.id });
        const removed = await trpcClient(b.port, bob!.accessToken).messages.search.query({ query: 'xylophone' });
        assert.deepEqual(removed.hits, [], 'a removed member’s next search, on another replica');
      } finally {
        sa.c.close();
        sg.c.close();
      }
    });

    test('11 from:, in:, has:mention and dates through the API; cursor pages', async () => {
      const [ann, bob] = [await newUser(a.port, 'ann'), await newUser(a.port, 'bob')];
      const g = await ann.client.conversations.createGroup.mutate({ title: 'Yak Shaving', memberIds: [bob.id] });
      const { c } = await connect(a.port, bob.accessToken);
      try {
        for (let i = 0; i < 5; i++) await send(c, g.id, `yak number ${i}`, i === 3 ? [ann.id] : undefined);
        await searchUntil(ann, 'yak', (h) => h.length === 5, 2000);
        const q = (query: string) => ann.client.messages.search.query({ query }).then((r) => r.hits.map((h) => h.snippet));
        assert.equal((await q(`from:${bob.username} in:"yak shaving" yak`)).length, 5);
        assert.equal((await q(`from:me yak`)).length, 0);
        assert.deepEqual(await q('has:mention'), ['yak number 3']);
        const today = new Date().toISOString().slice(0, 10);
        assert.equal((await q(`yak before:${today}`)).length, 0);
        assert.equal((await q(`yak after:${today}`)).length, 5);
        const first = await ann.client.messages.search.query({ query: 'yak', order: 'recent', limit: 2 });
        const second = await ann.client.messages.search.query({ query: 'yak', order: 'recent', limit: 2, cursor: first.nextCursor! });
        assert.deepEqual(
          [...first.hits, ...second.hits].map((h) => h.snippet),
          ['<mark>yak</mark> number 4', '<mark>yak</mark> number 3', '<mark>yak</mark> number 2', '<mark>yak</mark> number 1'],
        );
      } finally {
        c.close();
      }
    });

    test('3 conversations.history around a seq: the events before it, it, and after it', async () => {
      const ann = await newUser(a.port, 'ann');
      const g = await ann.client.conversations.createGroup.mutate({ title: 'Around', memberIds: [] });
      const { c } = await connect(a.port, ann.accessToken);
      try {
        const seqs: number[] = [];
        for (let i = 0; i < 12; i++) seqs.push((await send(c, g.id, `line ${i}`)).seq);
        const h = await ann.client.conversations.history.query({ conversationId: g.id, aroundSeq: seqs[6]!, limit: 6 });
        assert.deepEqual(
          h.events.map((e) => e.seq),
          [seqs[3], seqs[4], seqs[5], seqs[6], seqs[7], seqs[8]],
        );
        const start = await ann.client.conversations.history.query({ conversationId: g.id, aroundSeq: 1, limit: 4 });
        assert.deepEqual(
          start.events.map((e) => e.seq),
          [1, 2, 3, 4],
        );
        assert.equal(
          await errorCode(ann.client.conversations.history.query({ conversationId: g.id, aroundSeq: 5, beforeSeq: 9 })),
          'BAD_REQUEST',
        );
      } finally {
        c.close();
      }
    });

    test('11 bad queries are BAD_REQUEST, never a 500', async () => {
      const ann = await newUser(a.port, 'ann');
      const bad: unknown[] = [
        { query: '' },
        { query: 'x'.repeat(501) },
        { query: 'nul\u0000inside' },
        { query: 'line\nbreak' },
        { query: 'before:someday' },
        { query: 'has:link' },
        { query: 'x', order: 'best' },
        { query: 'x', limit: 0 },
        { query: 'x', limit: 51 },
        { query: 'x', cursor: 'garbage' },
        { query: 'x', cursor: Buffer.from('{"o":"recent","k":1,"c":"x","s":1}').toString('base64url') },
        { query: 'x', conversationId: 'not-a-uuid' },
        { query: 'x', extra: true },
        { query: 42 },
      ];
      for (const input of bad) {
        assert.equal(await errorCode(ann.client.messages.search.query(input as never)), 'BAD_REQUEST', JSON.stringify(input));
      }
      // Syntax that websearch_to_tsquery takes as text is not an error.
      for (const query of ["'a' & | ! <-> :* (", '"unclosed', '-', 'or']) {
        assert.deepEqual((await ann.client.messages.search.query({ query })).hits, [], query);
      }
      assert.equal(await errorCode(trpcClient(a.port).messages.search.query({ query: 'x' })), 'UNAUTHORIZED');
    });
  });
}
