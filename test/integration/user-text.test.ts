import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { errorCode, newUser, trpcClient, replicaPerSuite } from '../helpers/server.ts';
import { connect } from '../helpers/ws.ts';

/** Characters no user-visible text may hold (protocol/text.ts), each inside otherwise fine text. */
const NEVER = ['\u0007', '\u001b', '\u007f', '\u0085', '\u009b', '\u2028', '\u2029', '\u202e', '\u202a', '\u2066', '\u2069', '\ufeff'];
/** Refused in single-line text on top of NEVER: line breaks, tabs, invisible characters. */
const NOT_ONE_LINE = ['\r\n', '\n', '\r', '\t', '\u200b', '\u2060', '\u00ad', '\u3164', '\u115f'];
/** Names people really have: kept as they are. */
const NAMES = ['Zoë Ðaniel', '王小明', 'می‌خواهم', 'Avi (אבי\u200f)', '👨‍👩‍👧 family', '🏴󠁧󠁢󠁳󠁣󠁴󠁿 fan'];
const esc = (s: string) => JSON.stringify(s);

describe('user-visible text on PostgreSQL: one character rule for every field, over tRPC and the socket', () => {
  const replica = replicaPerSuite('postgres');

  test('single-line fields (display name at register and update, status text, group title) refuse line breaks, controls, bidi overrides and invisible characters with BAD_REQUEST; nothing is stored', async () => {
    const me = await newUser(replica.port, 'txt');
    const other = await newUser(replica.port, 'txt');
    const group = await me.client.conversations.createGroup.mutate({ title: 'Plain', memberIds: [other.id] });
    const profile = await me.client.profiles.get.query({ userId: me.id });
    const anon = trpcClient(replica.port);
    let k = 0;
    for (const c of [...NEVER, ...NOT_ONE_LINE]) {
      const bad = `Eve${c}Bcc: everyone@example.com`;
      const cases: [string, Promise<unknown>][] = [
        [
          'register displayName',
          anon.auth.register.mutate({
            email: `bad${++k}_${me.username}@example.com`,
            username: `bad${k}_${process.pid}`,
            password: 'correct horse battery',
            displayName: bad,
          }),
        ],
        ['profiles.update displayName', me.client.profiles.update.mutate({ displayName: bad })],
        ['profiles.update statusText', me.client.profiles.update.mutate({ statusText: bad })],
        ['createGroup title', me.client.conversations.createGroup.mutate({ title: bad, memberIds: [] })],
        ['conversations.update title', me.client.conversations.update.mutate({ conversationId: group.id, title: bad })],
      ];
      for (const [what, call] of cases) assert.equal(await errorCode(call), 'BAD_REQUEST', `${what} with ${esc(c)}`);
    }
    assert.deepEqual(await me.client.profiles.get.query({ userId: me.id }), profile);
    assert.equal((await me.client.conversations.get.query({ conversationId: group.id })).title, 'Plain');
    assert.equal((await me.client.conversations.list.query()).length, 1, 'no group was made');
    // Blank is not a name: whitespace, joiners and marks alone.
    for (const blank of ['   ', '\u200d', '\u200c\u200e', '\u0301']) {
      assert.equal(await errorCode(me.client.profiles.update.mutate({ displayName: blank })), 'BAD_REQUEST', esc(blank));
    }
  });

  test('what real names need is kept as typed: other scripts, ZWJ emoji, ZWNJ, directional marks, tag flags', async () => {
    const me = await newUser(replica.port, 'txt');
    for (const name of NAMES) {
      assert.equal((await me.client.profiles.update.mutate({ displayName: name })).displayName, name);
      assert.equal((await me.client.conversations.createGroup.mutate({ title: name, memberIds: [] })).title, name);
    }
  });

  test('multi-line fields (bio, topic) keep LF and tab, store CR LF and CR as LF, and refuse the rest', async () => {
    const me = await newUser(replica.port, 'txt');
    const group = await me.client.conversations.createGroup.mutate({ title: 'T', memberIds: [] });
    assert.equal(
      (await me.client.profiles.update.mutate({ bio: 'first\r\nsecond\rthird\n\tindented' })).bio,
      'first\nsecond\nthird\n\tindented',
    );
    assert.equal((await me.client.conversations.update.mutate({ conversationId: group.id, topic: 'a\r\nb' })).topic, 'a\nb');
    for (const c of NEVER) {
      assert.equal(await errorCode(me.client.profiles.update.mutate({ bio: `x${c}y` })), 'BAD_REQUEST', `bio with ${esc(c)}`);
      assert.equal(
        await errorCode(me.client.conversations.update.mutate({ conversationId: group.id, topic: `x${c}y` })),
        'BAD_REQUEST',
        `topic with ${esc(c)}`,
      );
    }
    assert.equal((await me.client.profiles.get.query({ userId: me.id })).bio, 'first\nsecond\nthird\n\tindented');
  });

  test('socket frames: a body is multi-line text (CR LF stored as LF; controls and bidi overrides refused), a reaction single-line', async () => {
    const me = await newUser(replica.port, 'txt');
    const conv = (await me.client.conversations.createGroup.mutate({ title: 'sock', memberIds: [] })).id;
    const { c } = await connect(replica.port, me.accessToken);
    for (const ch of NEVER) {
      const reply = await c.request({ type: 'send', conv, cid: `bad-${ch.codePointAt(0)}`, body: `x${ch}y` });
      assert.equal(reply.type, 'error', `body with ${esc(ch)}`);
      assert.equal(reply.code, 'BAD_REQUEST');
    }
    for (const body of ['\u200b', ' \u200d '])
      assert.equal((await c.request({ type: 'send', conv, cid: 'blank', body })).code, 'BAD_REQUEST', `blank body ${esc(body)}`);
    const ack = await c.request({ type: 'send', conv, cid: 'crlf', body: 'one\r\ntwo\tthree' });
    assert.equal(ack.type, 'ack');
    const event = await c.wait((f) => f.type === 'event' && f.seq === ack.seq);
    assert.equal(event.body, 'one\ntwo\tthree');
    for (const emoji of ['👍\n', '\u202e👍', '\u200b']) {
      assert.equal((await c.request({ type: 'react', conv, seq: ack.seq, emoji, on: true })).code, 'BAD_REQUEST', `emoji ${esc(emoji)}`);
    }
    assert.equal((await c.request({ type: 'react', conv, seq: ack.seq, emoji: '👨‍👩‍👧', on: true })).type, 'ok');
    const history = await me.client.conversations.history.query({ conversationId: conv });
    assert.deepEqual(
      history.events.filter((e) => e.kind === 'message').map((e) => e.body),
      ['one\ntwo\tthree'],
      'only the clean message was stored',
    );
    c.close();
  });
});
