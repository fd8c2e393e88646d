import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { errorCode, newUser, trpcClient, replicaPerSuite, withReplica } from '../helpers/server.ts';
import { connect, RawClient, upgradeStatus } from '../helpers/ws.ts';

describe('WebSocket protocol v1 (one replica, PGlite)', () => {
  const replica = replicaPerSuite('pglite', {
    WS_RATE_PER_S: '50',
    WS_RATE_BURST: '40',
    WS_MAX_FRAME_BYTES: '16384',
    WS_MAX_BODY_CHARS: '500',
    WS_MAX_CONNECTIONS_PER_USER: '3',
    WS_MAX_BACKPRESSURE_BYTES: '65536',
    // Long enough that a reload in a test is always within it on a loaded box; 5.6 waits for the offline.
    PRESENCE_OFFLINE_GRACE_MS: '4000',
    ALLOWED_ORIGINS: 'https://app.example.com',
  });

  async function group(n: number, title = 'g') {
    const users = [];
    for (let i = 0; i < n; i++) users.push(await newUser(replica.port, 'ws'));
    const conv = await users[0]!.client.conversations.createGroup.mutate({ title, memberIds: users.slice(1).map((u) => u.id) });
    return { users, conv: conv.id };
  }

  test('4 auth at the upgrade: bad or missing token → 401, foreign Origin → 403, subprotocol answered hubbub.v1', async () => {
    const u = await newUser(replica.port, 'auth');
    assert.equal(await upgradeStatus(replica.port, {}), 401);
    assert.equal(await upgradeStatus(replica.port, { authorization: 'Bearer nope' }), 401);
    assert.equal(await upgradeStatus(replica.port, {}, ['hubbub.v1', 'bearer.nope']), 401);
    assert.equal(await upgradeStatus(replica.port, { authorization: `Bearer ${u.accessToken}`, origin: 'https://evil.example.com' }), 403);
    const { c, ready } = await connect(replica.port, u.accessToken, { via: 'subprotocol', origin: 'https://app.example.com' });
    assert.equal(c.ws.protocol, 'hubbub.v1');
    assert.equal(ready.user.id, u.id);
    assert.equal(typeof ready.session, 'string');
    assert.deepEqual(ready.convs, {});
    assert.ok(ready.heartbeatMs > 0);
    c.close();
  });

  test('4 send → ack after durable; members get the event once; the same cid again returns the original ack', async () => {
    const { users, conv } = await group(3);
    const socks = await Promise.all(users.map((u) => connect(replica.port, u.accessToken)));
    for (const s of socks) assert.ok(conv in s.ready.convs);
    const [a] = socks;
    const ack = await a!.c.request({ type: 'send', conv, cid: 'c-1', body: 'hello' });
    assert.equal(ack.type, 'ack');
    assert.equal(ack.cid, 'c-1');
    for (const s of socks) {
      const e = await s.c.wait((f) => f.type === 'event' && f.kind === 'message' && f.conv === conv);
      assert.equal(e.seq, ack.seq);
      assert.equal(e.body, 'hello');
      assert.equal(e.from, users[0]!.id);
    }
    const again = await a!.c.request({ type: 'send', conv, cid: 'c-1', body: 'hello (retry)' });
    assert.deepEqual({ ...again, ref: undefined }, { ...ack, ref: undefined });
    const marker = await a!.c.request({ type: 'send', conv, cid: 'c-2', body: 'after' });
    for (const s of socks) await s.c.wait((f) => f.type === 'event' && f.seq === marker.seq);
    for (const s of socks) {
      const msgs = s.c.events(conv).filter((f) => f.kind === 'message');
      assert.deepEqual(
        msgs.map((m) => m.body),
        ['hello', 'after'],
        'the retry stored nothing and sent nothing',
      );
    }
    const hist = await users[1]!.client.conversations.history.query({ conversationId: conv });
    assert.deepEqual(
      hist.events.filter((e) => e.kind === 'message').map((e) => e.body),
      ['hello', 'after'],
    );
    assert.equal(hist.lastSeq, marker.seq);
    for (const s of socks) s.c.close();
  });

  test('4 edit and delete are author-only; react by any member; events carry the target', async () => {
    const { users, conv } = await group(2);
    const [a, b] = await Promise.all(users.map((u) => connect(replica.port, u.accessToken)));
    const ack = await a!.c.request({ type: 'send', conv, cid: 'm1', body: 'original' });
    const notYours = await b!.c.request({ type: 'edit', conv, seq: ack.seq, body: 'hijacked' });
    assert.equal(notYours.type, 'error');
    assert.equal(notYours.code, 'FORBIDDEN');
    const noDelete = await b!.c.request({ type: 'delete', conv, seq: ack.seq });
    assert.equal(noDelete.code, 'FORBIDDEN');
    const edited = await a!.c.request({ type: 'edit', conv, seq: ack.seq, body: 'edited' });
    assert.equal(edited.type, 'ok');
    const reacted = await b!.c.request({ type: 'react', conv, seq: ack.seq, emoji: '👍', on: true });
    assert.equal(reacted.type, 'ok');
    const deleted = await a!.c.request({ type: 'delete', conv, seq: ack.seq });
    assert.equal(deleted.type, 'ok');
    const e = await b!.c.wait((f) => f.type === 'event' && f.kind === 'delete');
    assert.equal(e.target, ack.seq);
    const kinds = b!.c.events(conv).map((f) => f.kind);
    assert.deepEqual(kinds.slice(-4), ['message', 'edit', 'reaction', 'delete']);
    // The deleted message's body is gone from storage; a second delete is NOT_FOUND.
    const hist = await users[1]!.client.conversations.history.query({ conversationId: conv });
    const msg = hist.events.find((x) => x.seq === ack.seq)!;
    assert.equal(msg.body, null);
    assert.equal(msg.redacted, true);
    assert.equal((await a!.c.request({ type: 'delete', conv, seq: ack.seq })).code, 'NOT_FOUND');
    a!.c.close();
    b!.c.close();
  });

  test('5.3 resume after a disconnect sends exactly the missed events in order, then resumed', async () => {
    const { users, conv } = await group(2);
    const a = await connect(replica.port, users[0]!.accessToken);
    const b1 = await connect(replica.port, users[1]!.accessToken);
    const first = await a.c.request({ type: 'send', conv, cid: 'r0', body: 'seen' });
    await b1.c.wait((f) => f.type === 'event' && f.seq === first.seq);
    b1.c.close();
    await b1.c.closed;
    const acks = [];
    for (let i = 1; i <= 5; i++) acks.push(await a.c.request({ type: 'send', conv, cid: `r${i}`, body: `missed ${i}` }));
    const b2 = await connect(replica.port, users[1]!.accessToken, { resume: { [conv]: first.seq } });
    const resumed = b2.c.frames.find((f) => f.type === 'resumed')!;
    assert.equal(resumed.convs[conv], acks.at(-1)!.seq);
    assert.equal(typeof resumed.cursors[conv], 'number');
    const got = b2.c.events(conv).map((f) => f.seq);
    assert.deepEqual(
      got,
      acks.map((x) => x.seq),
    );
    // Live delivery continues after the resume, without duplicates.
    const live = await a.c.request({ type: 'send', conv, cid: 'r6', body: 'live' });
    await b2.c.wait((f) => f.type === 'event' && f.seq === live.seq);
    assert.deepEqual(
      b2.c.events(conv).map((f) => f.seq),
      [...acks.map((x) => x.seq), live.seq],
    );
    a.c.close();
    b2.c.close();
  });

  test('4 resume with more than the limit missed sends gap for the older part', async () => {
    // Its own folder: an embedded database belongs to one replica at a time.
    await withReplica('pglite', { WS_RESUME_MAX_EVENTS: '10' }, async (local) => {
      const u1 = await newUser(local.port, 'gap');
      const u2 = await newUser(local.port, 'gap');
      const conv = (await u1.client.conversations.createDirect.mutate({ userId: u2.id })).id;
      const a = await connect(local.port, u1.accessToken);
      let last = 0;
      for (let i = 0; i < 25; i++) last = (await a.c.request({ type: 'send', conv, cid: `g${i}`, body: `m${i}` })).seq;
      const b = await connect(local.port, u2.accessToken, { resume: { [conv]: 0 } });
      const gap = b.c.frames.find((f) => f.type === 'gap')!;
      assert.deepEqual({ conv: gap.conv, fromSeq: gap.fromSeq, toSeq: gap.toSeq }, { conv, fromSeq: 1, toSeq: last - 10 });
      assert.deepEqual(
        b.c.events(conv).map((f) => f.seq),
        Array.from({ length: 10 }, (_, i) => last - 9 + i),
      );
      a.c.close();
      b.c.close();
    });
  });

  test('5.5 read cursor moves forward only, reaches the other device, and unread follows', async () => {
    const { users, conv } = await group(2);
    const a = await connect(replica.port, users[0]!.accessToken);
    const bPhone = await connect(replica.port, users[1]!.accessToken);
    const bLaptop = await connect(replica.port, users[1]!.accessToken);
    let last = 0;
    for (let i = 0; i < 3; i++) last = (await a.c.request({ type: 'send', conv, cid: `u${i}`, body: 'x' })).seq;
    const listed = (await users[1]!.client.conversations.list.query()).find((c) => c.id === conv)!;
    assert.equal(listed.lastSeq, last);
    assert.equal(listed.unread, last);
    assert.equal(listed.lastMessage?.seq, last);
    bPhone.c.send({ type: 'read', conv, seq: last - 1 });
    const seen = await bLaptop.c.wait((f) => f.type === 'read' && f.user === users[1]!.id);
    assert.equal(seen.seq, last - 1);
    assert.equal((await users[1]!.client.conversations.list.query()).find((c) => c.id === conv)!.unread, 1);
    // Backwards is ignored.
    const r = await users[1]!.client.conversations.markRead.mutate({ conversationId: conv, seq: 1 });
    assert.equal(r.readSeq, last - 1);
    const r2 = await users[1]!.client.conversations.markRead.mutate({ conversationId: conv, seq: last + 100 });
    assert.equal(r2.readSeq, last, 'clamped to the last seq');
    assert.equal(r2.unread, 0);
    // Two users resuming at the same moment (their cursor reads share one statement) each get
    // their own cursor back. A sender's cursor follows their own sends: b's last message moves
    // b's cursor past a's.
    const bLast = (await bPhone.c.request({ type: 'send', conv, cid: 'b-last', body: 'y' })).seq;
    await bLaptop.c.wait((f) => f.type === 'read' && f.user === users[1]!.id && f.seq === bLast);
    const aListed = (await users[0]!.client.conversations.list.query()).find((c) => c.id === conv)!;
    const aCursor = aListed.lastSeq - aListed.unread;
    assert.equal(aCursor, last, "a's own messages are read by a");
    assert.notEqual(aCursor, bLast, 'the two cursors differ, so a mix-up would show');
    const [a2, b2] = await Promise.all([
      connect(replica.port, users[0]!.accessToken, { resume: { [conv]: bLast } }),
      connect(replica.port, users[1]!.accessToken, { resume: { [conv]: bLast } }),
    ]);
    assert.equal(a2.c.frames.find((f) => f.type === 'resumed')!.cursors[conv], aCursor);
    assert.equal(b2.c.frames.find((f) => f.type === 'resumed')!.cursors[conv], bLast);
    for (const s of [a, bPhone, bLaptop, a2, b2]) s.c.close();
  });

  test('3 membership changes reach sockets at once: added members receive, removed stop receiving', async () => {
    const { users, conv } = await group(2);
    const newcomer = await newUser(replica.port, 'late');
    const n = await connect(replica.port, newcomer.accessToken);
    const owner = await connect(replica.port, users[0]!.accessToken);
    await users[0]!.client.conversations.addMembers.mutate({ conversationId: conv, userIds: [newcomer.id] });
    const added = await n.c.wait((f) => f.type === 'conversation' && f.op === 'added');
    assert.equal(added.conversation.id, conv);
    const joined = await n.c.wait((f) => f.type === 'event' && f.kind === 'member' && f.op === 'joined');
    assert.deepEqual(joined.users, [newcomer.id]);
    const m = await owner.c.request({ type: 'send', conv, cid: 'welcome', body: 'welcome' });
    await n.c.wait((f) => f.type === 'event' && f.seq === m.seq);
    // Sending works for the newcomer on the same socket.
    assert.equal((await n.c.request({ type: 'send', conv, cid: 'hi', body: 'hi' })).type, 'ack');

    await users[0]!.client.conversations.removeMember.mutate({ conversationId: conv, userId: newcomer.id });
    await n.c.wait((f) => f.type === 'conversation' && f.op === 'removed');
    const refused = await n.c.request({ type: 'send', conv, cid: 'after-removal', body: 'x' });
    assert.equal(refused.code, 'FORBIDDEN');
    const later = await owner.c.request({ type: 'send', conv, cid: 'secret', body: 'not for you' });
    const marker = await newUser(replica.port, 'marker');
    // A DM between the owner and a marker user proves the newcomer's socket is still flowing.
    const dm = await users[0]!.client.conversations.createDirect.mutate({ userId: newcomer.id });
    await n.c.wait((f) => f.type === 'conversation' && f.conversation.id === dm.id);
    assert.ok(!n.c.frames.some((f) => f.type === 'event' && f.seq === later.seq && f.conv === conv));
    assert.equal(await errorCode(newcomer.client.conversations.history.query({ conversationId: conv })), 'FORBIDDEN');
    assert.ok(marker.id);
    n.c.close();
    owner.c.close();
  });

  test('4 hostile frames get protocol errors, the socket keeps serving, nothing stored changes', async () => {
    const { users, conv } = await group(2);
    const other = await group(2);
    const a = await connect(replica.port, users[0]!.accessToken);
    const stored = await a.c.request({ type: 'send', conv, cid: 'keep', body: 'keep me' });
    const otherMsg = await (await connect(replica.port, other.users[0]!.accessToken)).c.request({
      type: 'send',
      conv: other.conv,
      cid: 'o',
      body: 'theirs',
    });
    const before = await users[0]!.client.conversations.history.query({ conversationId: conv });
    const bad: [string | Buffer, string][] = [
      ['not json', 'BAD_REQUEST'],
      ['[1,2,3]', 'BAD_REQUEST'],
      ['"string"', 'BAD_REQUEST'],
      ['null', 'BAD_REQUEST'],
      [JSON.stringify({ type: 'launch-missiles' }), 'BAD_REQUEST'],
      [JSON.stringify({ type: 'send', conv, cid: 'x' }), 'BAD_REQUEST'],
      [JSON.stringify({ type: 'send', conv: 'not-a-uuid', cid: 'x', body: 'x' }), 'BAD_REQUEST'],
      [JSON.stringify({ type: 'send', conv, cid: 'x'.repeat(65), body: 'x' }), 'BAD_REQUEST'],
      [JSON.stringify({ type: 'send', conv, cid: 'x', body: 'x', admin: true }), 'BAD_REQUEST'],
      [JSON.stringify({ type: 'send', conv, cid: 'long', body: 'x'.repeat(501) }), 'PAYLOAD_TOO_LARGE'],
      [JSON.stringify({ type: 'send', conv, cid: 'blank', body: '   ' }), 'BAD_REQUEST'],
      // JSON escapes that PostgreSQL cannot store: refused at the protocol, not by the database.
      ['{"type":"send","conv":"' + conv + '","cid":"nul","body":"a\\u0000b"}', 'BAD_REQUEST'],
      ['{"type":"send","conv":"' + conv + '","cid":"sur","body":"a\\ud800b"}', 'BAD_REQUEST'],
      ['{"type":"send","conv":"' + conv + '","cid":"\\u0000","body":"x"}', 'BAD_REQUEST'],
      ['{"type":"react","conv":"' + conv + '","seq":' + 1 + ',"emoji":"\\udfff","on":true}', 'BAD_REQUEST'],
      [JSON.stringify({ type: 'send', conv: other.conv, cid: 'intrude', body: 'x' }), 'FORBIDDEN'],
      [JSON.stringify({ type: 'send', conv: randomUUID(), cid: 'nowhere', body: 'x' }), 'FORBIDDEN'],
      [JSON.stringify({ type: 'edit', conv: other.conv, seq: otherMsg.seq, body: 'x' }), 'FORBIDDEN'],
      [JSON.stringify({ type: 'edit', conv, seq: 999999, body: 'x' }), 'NOT_FOUND'],
      [JSON.stringify({ type: 'delete', conv, seq: -1 }), 'BAD_REQUEST'],
      [JSON.stringify({ type: 'react', conv, seq: stored.seq, emoji: '', on: true }), 'BAD_REQUEST'],
      [JSON.stringify({ type: 'read', conv: other.conv, seq: 1 }), 'FORBIDDEN'],
      [JSON.stringify({ type: 'typing', conv: other.conv }), 'FORBIDDEN'],
      [JSON.stringify({ type: 'ping', ref: 'r'.repeat(65) }), 'BAD_REQUEST'],
      [Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'BAD_REQUEST'],
    ];
    for (const [frame, code] of bad) {
      const from = a.c.frames.length;
      if (Buffer.isBuffer(frame)) {
        // Invalid UTF-8 in a text frame: ws refuses to send it as text, so send the raw bytes as binary and as text via a raw write.
        a.c.ws.send(frame, { binary: true });
      } else a.c.send(frame);
      const err = await a.c.wait((f) => f.type === 'error', 5000, from);
      assert.equal(err.code, code, `${String(frame).slice(0, 80)} → ${JSON.stringify(err)}`);
    }
    assert.equal((await a.c.request({ type: 'ping' })).type, 'pong', 'the socket still serves');
    const afterH = await users[0]!.client.conversations.history.query({ conversationId: conv });
    assert.deepEqual(afterH, before);
    // An oversized frame closes the socket with 1009; the server keeps serving others.
    a.c.send(JSON.stringify({ type: 'send', conv, cid: 'huge', body: 'x'.repeat(20_000) }));
    assert.equal((await a.c.closed).code, 1009);
    const again = await connect(replica.port, users[0]!.accessToken);
    assert.equal((await again.c.request({ type: 'ping' })).type, 'pong');
    assert.deepEqual(await users[0]!.client.conversations.history.query({ conversationId: conv }), before);
    again.c.close();
  });

  test('4 invalid UTF-8 in a text frame is refused without a crash', async () => {
    const u = await newUser(replica.port, 'utf');
    const { c } = await connect(replica.port, u.accessToken);
    // Build a masked text frame by hand with invalid UTF-8 (ws will not send one).
    const payload = Buffer.from([0x7b, 0xc3, 0x28, 0x7d]);
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
    const sock = (c.ws as unknown as { _socket: import('node:net').Socket })._socket;
    sock.write(frame);
    // uWS validates the UTF-8 of text frames itself (RFC 6455 8.1) and drops the connection
    // (1006, or 1007 where a close frame gets out); the server lives on.
    const closed = await Promise.race([c.closed, c.wait((f) => f.type === 'error').then((f) => ({ code: f.code }))]);
    assert.ok(closed.code === 1006 || closed.code === 1007 || closed.code === 'BAD_REQUEST', JSON.stringify(closed));
    const again = await connect(replica.port, u.accessToken);
    assert.equal((await again.c.request({ type: 'ping' })).type, 'pong');
    again.c.close();
  });

  test('4 rate limit: a burst past the limit gets RATE_LIMITED, then the socket is closed 4008', async () => {
    const { users, conv } = await group(2);
    const a = await connect(replica.port, users[0]!.accessToken);
    for (let i = 0; i < 200; i++) a.c.send({ type: 'typing', conv });
    await a.c.wait((f) => f.type === 'error' && f.code === 'RATE_LIMITED');
    assert.equal((await a.c.closed).code, 4008);
  });

  test('4 connections per user are limited (4008)', async () => {
    const u = await newUser(replica.port, 'many');
    const socks = [];
    for (let i = 0; i < 3; i++) socks.push(await connect(replica.port, u.accessToken));
    const ws = new WebSocket(`ws://127.0.0.1:${replica.port}/ws`, { headers: { authorization: `Bearer ${u.accessToken}` } });
    const extra = new RawClient(ws);
    assert.equal((await extra.closed).code, 4008);
    for (const s of socks) s.c.close();
  });

  test('5.7 a client that stops reading is closed 4009 while the others keep receiving', async () => {
    await withReplica(
      'pglite',
      {
        WS_RATE_PER_S: '100000',
        WS_RATE_BURST: '100000',
        WS_MAX_BACKPRESSURE_BYTES: '65536',
      },
      async (writer) => {
        const users = [];
        for (let i = 0; i < 3; i++) users.push(await newUser(writer.port, 'slow'));
        const conv = (await users[0]!.client.conversations.createGroup.mutate({ title: 'slow', memberIds: [users[1]!.id, users[2]!.id] }))
          .id;
        const fast = await connect(writer.port, users[0]!.accessToken);
        const healthy = await connect(writer.port, users[1]!.accessToken);
        const slow = await connect(writer.port, users[2]!.accessToken);
        // Stop reading on the slow socket: its TCP receive window fills and the server's buffer grows.
        (slow.c.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
        const body = 'y'.repeat(3000);
        let last = 0;
        const tooSlowCloses = async () =>
          (await writer.services.metrics.closes.get()).values.find((v) => v.labels.reason === 'TOO_SLOW')?.value ?? 0;
        for (let i = 0; i < 5000 && (await tooSlowCloses()) === 0; i += 50) {
          const batch = [];
          for (let j = 0; j < 50; j++) batch.push(fast.c.request({ type: 'send', conv, cid: `s${i + j}`, body }));
          last = (await Promise.all(batch)).at(-1)!.seq;
          // The healthy reader keeps up the whole time.
          await healthy.c.wait((f) => f.type === 'event' && f.seq === last);
        }
        assert.equal(await tooSlowCloses(), 1, 'the server closed the slow socket');
        (slow.c.ws as unknown as { _socket: import('node:net').Socket })._socket.resume();
        assert.equal((await slow.c.closed).code, 4009);
        const more = await fast.c.request({ type: 'send', conv, cid: 'after-slow', body: 'still flowing' });
        await healthy.c.wait((f) => f.type === 'event' && f.seq === more.seq);
        const seqs = healthy.c.events(conv).map((f) => f.seq);
        assert.deepEqual(
          seqs,
          Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i),
          'healthy got every seq in order',
        );
        fast.c.close();
        healthy.c.close();
      },
    );
  });

  test('4 logout, logoutAll and a detected refresh reuse close the affected sockets (4001)', async () => {
    const u = await newUser(replica.port, 'bye');
    const anon = trpcClient(replica.port);
    const second = await anon.auth.login.mutate({ login: u.username, password: u.password });
    const s1 = await connect(replica.port, u.accessToken);
    const s2 = await connect(replica.port, second.accessToken);
    await anon.auth.logout.mutate({ refreshToken: second.refreshToken });
    assert.equal((await s2.c.closed).code, 4001);
    assert.ok(!s1.c.isClosed, 'the other session stays');
    await u.client.auth.logoutAll.mutate();
    assert.equal((await s1.c.closed).code, 4001);
    assert.equal(await upgradeStatus(replica.port, { authorization: `Bearer ${u.accessToken}` }), 401);
  });

  test('5.6 presence snapshot: a new socket is told which of its contacts are online, and no one else', async () => {
    const { users } = await group(3);
    const stranger = await newUser(replica.port, 'stranger');
    const online = await connect(replica.port, users[0]!.accessToken);
    const other = await connect(replica.port, stranger.accessToken);
    const s = await connect(replica.port, users[1]!.accessToken);
    await s.c.wait((f) => f.type === 'presence' && f.user === users[0]!.id && f.status === 'online');
    // The snapshot goes out in one batch: after a ping round trip nothing of it is still on its way.
    await s.c.request({ type: 'ping' });
    // Presence frames are state, not events: the contact's own online announcement (batched for
    // 50 ms) may reach this socket after its snapshot named them, so a user may be named twice.
    const seen = [...new Set(s.c.frames.filter((f) => f.type === 'presence').map((f) => f.user))];
    assert.deepEqual(seen, [users[0]!.id]);
    assert.ok(s.c.frames.filter((f) => f.type === 'presence').every((f) => f.status === 'online'));
    for (const x of [online, other, s]) x.c.close();
  });

  test('5.6 presence: both reload at once: the one who came back within the grace is never offline, and the other, whose snapshot came in the gap, still learns they are online', async () => {
    const { users } = await group(2);
    const alice = await connect(replica.port, users[0]!.accessToken);
    const bob = await connect(replica.port, users[1]!.accessToken);
    await alice.c.wait((f) => f.type === 'presence' && f.user === users[1]!.id && f.status === 'online');
    // Bob's page closes first, then Alice's; Alice's new socket takes its snapshot while Bob has none.
    bob.c.close();
    await bob.c.closed;
    alice.c.close();
    await alice.c.closed;
    const alice2 = await connect(replica.port, users[0]!.accessToken);
    await alice2.c.request({ type: 'ping' });
    assert.equal(
      alice2.c.frames.filter((f) => f.type === 'presence' && f.user === users[1]!.id).length,
      0,
      'Bob was not online at her snapshot',
    );
    // Bob is back within PRESENCE_OFFLINE_GRACE_MS (4 s here).
    const bob2 = await connect(replica.port, users[1]!.accessToken);
    await alice2.c.wait((f) => f.type === 'presence' && f.user === users[1]!.id && f.status === 'online');
    // Bob's own new socket sees Alice online, and nobody was told Bob went offline.
    await bob2.c.wait((f) => f.type === 'presence' && f.user === users[0]!.id && f.status === 'online');
    assert.equal(alice2.c.frames.filter((f) => f.type === 'presence' && f.status === 'offline').length, 0);
    for (const x of [alice2, bob2]) x.c.close();
  });

  test('5.6 presence: online with the first socket, offline after the last closes', async () => {
    const { users } = await group(2);
    const watcher = await connect(replica.port, users[0]!.accessToken);
    const d1 = await connect(replica.port, users[1]!.accessToken);
    await watcher.c.wait((f) => f.type === 'presence' && f.user === users[1]!.id && f.status === 'online');
    const d2 = await connect(replica.port, users[1]!.accessToken);
    d1.c.close();
    await d1.c.closed;
    // Still one device: a ping round trip on the watcher proves no offline came before it.
    await watcher.c.request({ type: 'ping' });
    d2.c.close();
    const off = await watcher.c.wait((f) => f.type === 'presence' && f.user === users[1]!.id && f.status === 'offline');
    const offIdx = watcher.c.frames.indexOf(off);
    assert.equal(watcher.c.frames.filter((f, i) => f.type === 'presence' && f.status === 'offline' && i <= offIdx).length, 1);
    assert.equal(typeof off.lastSeen, 'number');
    watcher.c.close();
  });
});
