import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dbKinds, errorCode, newUser, replicaPerSuite } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';

for (const kind of dbKinds) {
  describe(`conversations over tRPC on ${kind}`, () => {
    const replica = replicaPerSuite(kind, { MAX_GROUP_MEMBERS: '5', ALLOWED_ORIGINS: 'https://app.example.com' });

    test('3 createDirect returns the existing DM for the pair, from either side', async () => {
      const a = await newUser(replica.port, 'dm');
      const b = await newUser(replica.port, 'dm');
      const first = await a.client.conversations.createDirect.mutate({ userId: b.id });
      const again = await b.client.conversations.createDirect.mutate({ userId: a.id });
      assert.equal(again.id, first.id);
      assert.equal(first.kind, 'direct');
      assert.deepEqual(first.members.map((m) => m.userId).sort(), [a.id, b.id].sort());
      assert.equal(await errorCode(a.client.conversations.leave.mutate({ conversationId: first.id })), 'BAD_REQUEST');
    });

    test('3 groups: roles decide who adds, removes and edits; size limit; owner hand-over on leave', async () => {
      const [o, m1, m2, m3, m4, m5] = await Promise.all([0, 1, 2, 3, 4, 5].map(() => newUser(replica.port, 'grp')));
      const g = await o!.client.conversations.createGroup.mutate({ title: '  Team  ', memberIds: [m1!.id, m2!.id, m1!.id] });
      assert.equal(g.title, 'Team');
      assert.deepEqual(
        g.members.map((m) => m.role),
        ['owner', 'member', 'member'],
      );
      assert.equal(await errorCode(m1!.client.conversations.addMembers.mutate({ conversationId: g.id, userIds: [m3!.id] })), 'FORBIDDEN');
      assert.equal(await errorCode(m1!.client.conversations.update.mutate({ conversationId: g.id, title: 'mine' })), 'FORBIDDEN');
      await o!.client.conversations.setRole.mutate({ conversationId: g.id, userId: m1!.id, role: 'admin' });
      const added = await m1!.client.conversations.addMembers.mutate({ conversationId: g.id, userIds: [m3!.id, m4!.id] });
      assert.equal(added.members.length, 5);
      assert.equal(await errorCode(o!.client.conversations.addMembers.mutate({ conversationId: g.id, userIds: [m5!.id] })), 'BAD_REQUEST');
      assert.equal(await errorCode(m1!.client.conversations.removeMember.mutate({ conversationId: g.id, userId: o!.id })), 'FORBIDDEN');
      await m1!.client.conversations.removeMember.mutate({ conversationId: g.id, userId: m4!.id });
      assert.equal(await errorCode(m4!.client.conversations.get.query({ conversationId: g.id })), 'FORBIDDEN');
      const updated = await m1!.client.conversations.update.mutate({ conversationId: g.id, title: 'Renamed', topic: 'things' });
      assert.equal(updated.title, 'Renamed');
      assert.equal(updated.topic, 'things');
      await o!.client.conversations.leave.mutate({ conversationId: g.id });
      const after = await m1!.client.conversations.get.query({ conversationId: g.id });
      assert.equal(after.members.find((m) => m.userId === m1!.id)!.role, 'owner', 'the admin inherits the group');
      assert.ok(!after.members.some((m) => m.userId === o!.id));
      // The log recorded every membership change and the title change, in order.
      const hist = await m1!.client.conversations.history.query({ conversationId: g.id, limit: 100 });
      assert.deepEqual(
        hist.events.map((e) => `${e.kind}:${e.op ?? e.text}`),
        ['member:joined', 'member:joined', 'member:removed', 'system:conversation updated', 'member:left'],
      );
    });

    test('3 history pages by seq: newest page, beforeSeq, afterSeq, both', async () => {
      const a = await newUser(replica.port, 'hist');
      const b = await newUser(replica.port, 'hist');
      const conv = (await a.client.conversations.createDirect.mutate({ userId: b.id })).id;
      const s = await connect(replica.port, a.accessToken);
      for (let i = 0; i < 30; i++) await s.c.request({ type: 'send', conv, cid: `h${i}`, body: `n${i}` });
      s.c.close();
      const seqs = (r: { events: { seq: number }[] }) => r.events.map((e) => e.seq);
      const newest = await b.client.conversations.history.query({ conversationId: conv, limit: 5 });
      assert.deepEqual(seqs(newest), [27, 28, 29, 30, 31]);
      assert.equal(newest.lastSeq, 31);
      assert.deepEqual(seqs(await b.client.conversations.history.query({ conversationId: conv, beforeSeq: 27, limit: 3 })), [24, 25, 26]);
      assert.deepEqual(seqs(await b.client.conversations.history.query({ conversationId: conv, afterSeq: 29 })), [30, 31]);
      assert.deepEqual(seqs(await b.client.conversations.history.query({ conversationId: conv, afterSeq: 3, beforeSeq: 7 })), [4, 5, 6]);
    });

    test('3 list: unread, last message, mute and unmute', async () => {
      const a = await newUser(replica.port, 'list');
      const b = await newUser(replica.port, 'list');
      const conv = (await a.client.conversations.createDirect.mutate({ userId: b.id })).id;
      const s = await connect(replica.port, a.accessToken);
      const last = await s.c.request({ type: 'send', conv, cid: 'only', body: 'the last one' });
      s.c.close();
      let entry = (await b.client.conversations.list.query()).find((c) => c.id === conv)!;
      assert.equal(entry.unread, last.seq);
      assert.equal(entry.lastMessage?.body, 'the last one');
      assert.equal(entry.muted, false);
      const muted = await b.client.conversations.mute.mutate({ conversationId: conv });
      assert.equal(muted.muted, true);
      entry = (await b.client.conversations.list.query()).find((c) => c.id === conv)!;
      assert.equal(entry.muted, true);
      const until = new Date(Date.now() + 3600_000).toISOString();
      assert.equal((await b.client.conversations.mute.mutate({ conversationId: conv, until })).mutedUntil, until);
      assert.equal((await b.client.conversations.mute.mutate({ conversationId: conv, until: null })).muted, false);
      assert.equal(await errorCode(b.client.conversations.mute.mutate({ conversationId: conv, until: 'tomorrow' })), 'BAD_REQUEST');
    });

    test('9 /metrics (on its own port) exposes hubbub_ metrics without user or conversation ids; CORS only for allowed origins', async () => {
      const a = await newUser(replica.port, 'metrics');
      const text = await (await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics`)).text();
      for (const name of [
        'hubbub_trpc_calls_total',
        'hubbub_trpc_duration_seconds',
        'hubbub_ws_connections',
        'hubbub_ws_frames_in_total',
        'hubbub_ws_frames_out_total',
        'hubbub_events_published_total',
        'hubbub_events_delivered_total',
        'hubbub_send_to_deliver_seconds',
        'hubbub_ws_closes_total',
      ]) {
        assert.ok(text.includes(name), name);
      }
      // One metric by name, without the process collectors; an unknown name is 404.
      const one = await (await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics?name=hubbub_ws_connections`)).text();
      assert.match(one, /^hubbub_ws_connections \d+$/m);
      assert.ok(!one.includes('hubbub_process_') && !one.includes('hubbub_trpc_'), one);
      assert.equal((await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics?name=no_such_metric`)).status, 404);
      assert.match(text, /hubbub_trpc_calls_total\{procedure="auth.register",code="OK"\} \d+/);
      assert.ok(!text.includes(a.id), 'no user ids in labels');
      const allowed = await fetch(`http://127.0.0.1:${replica.port}/trpc/auth.me`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example.com' },
      });
      assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com');
      const denied = await fetch(`http://127.0.0.1:${replica.port}/trpc/auth.me`, { headers: { origin: 'https://evil.example.com' } });
      assert.equal(denied.headers.get('access-control-allow-origin'), null);
      const rid = await fetch(`http://127.0.0.1:${replica.port}/trpc/auth.me`, { headers: { 'x-request-id': 'trace-123' } });
      assert.equal(rid.headers.get('x-request-id'), 'trace-123');
    });
  });
}
