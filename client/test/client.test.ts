import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createApiClient,
  createClient,
  errorText,
  HubbubError,
  uploadFile,
  type SocketClient,
  type ConnectionState,
  type HubbubClient,
  type TokenRequest,
} from '@hubbub/client';
import type { Replica } from '../../server/src/replica.ts';
import { newUser, startTestReplica, testEnv, trpcClient, type TestEnv } from '../../test/helpers/server.ts';

/** Resolves with the first value `fn` finds among the client's events of `type`. */
function next<T>(subscribe: (fn: (v: T) => void) => () => void, pick: (v: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const off = subscribe((v) => {
      if (pick(v)) off(), resolve(v);
    });
  });
}

describe('@hubbub/client against a live hub', () => {
  let env: TestEnv;
  let replica: Replica;
  let base: string;
  const open: SocketClient[] = [];
  const hub = (token: (req: TokenRequest) => string | null | Promise<string | null>): HubbubClient => {
    const c = createClient({ url: base, getToken: token, minDelayMs: 20, maxDelayMs: 200 });
    open.push(c);
    return c;
  };
  /** Two users with a DM between them. */
  async function pair() {
    const [a, b] = await Promise.all([newUser(replica.port, 'alice'), newUser(replica.port, 'bob')]);
    const dm = await a.client.conversations.createDirect.mutate({ userId: b.id });
    return { a, b, conv: dm.id };
  }

  before(async () => {
    env = await testEnv('pglite');
    replica = await startTestReplica(env.env);
    base = `http://127.0.0.1:${replica.port}`;
  });
  after(async () => {
    for (const c of open) c.close();
    await replica?.stop();
    await env?.cleanup();
  });

  test('typed events for event, read, typing and presence frames; the ws package is loaded by itself in Node 20', async () => {
    const { a, b, conv } = await pair();
    const alice = hub(() => a.accessToken);
    const bob = hub(() => b.accessToken);
    await bob.connect();
    const online = next<{ user: string; status: string }>(
      (fn) => bob.on('presence', fn),
      (p) => p.user === a.id && p.status === 'online',
    );
    await alice.connect();
    await online;
    assert.equal(bob.presence.get(a.id)?.status, 'online');

    const typing = next<{ conv: string; user: string }>((fn) => bob.on('typing', fn));
    alice.typing(conv);
    assert.deepEqual({ ...(await typing) }, { type: 'typing', conv, user: a.id });

    const got = next<{ body?: string | null; seq: number }>(
      (fn) => bob.on('event', fn),
      (e) => e.body === 'hi bob',
    );
    const ack = await alice.send(conv, 'hi bob');
    assert.equal((await got).seq, ack.seq);

    const read = next<{ user: string; seq: number }>(
      (fn) => alice.on('read', fn),
      (r) => r.user === b.id,
    );
    bob.markRead(conv, ack.seq);
    assert.equal((await read).seq, ack.seq);
    assert.equal(alice.readCursor(conv, b.id), ack.seq);

    const offline = next<{ user: string; status: string }>(
      (fn) => bob.on('presence', fn),
      (p) => p.user === a.id && p.status === 'offline',
    );
    alice.close();
    await offline;
  });

  test('connection states: connecting, connected, then disconnected with the close code and whether it retries', async () => {
    const u = await newUser(replica.port, 'carol');
    const c = hub(() => u.accessToken);
    const states: ConnectionState[] = [];
    c.on('state', (s) => states.push(s));
    await c.connect();
    const closed = next<{ code: number; willReconnect: boolean }>((fn) => c.on('disconnected', fn));
    const back = next<unknown>((fn) => c.on('connected', fn));
    c.drop();
    assert.deepEqual({ ...(await closed), reason: '' }, { code: 4000, reason: '', willReconnect: true });
    await back;
    const final = next<{ code: number; willReconnect: boolean }>((fn) => c.on('disconnected', fn));
    c.close();
    assert.deepEqual({ code: (await final).code, willReconnect: (await final).willReconnect }, { code: 1000, willReconnect: false });
    assert.deepEqual(states, ['connecting', 'connected', 'connecting', 'connected', 'disconnected']);
  });

  test('getToken is asked again with refresh after a 4001 (session ended) and after an upgrade refused; null stops the client', async () => {
    const u = await newUser(replica.port, 'dave');
    const asked: boolean[] = [];
    let token = 'not-a-token';
    const c = hub(async ({ refresh }) => {
      asked.push(refresh);
      if (refresh && token === 'not-a-token') token = u.accessToken;
      else if (refresh) return null;
      return token;
    });
    // The first token is refused at the upgrade (HTTP 401, no `ready`): refreshed, then connected.
    await c.connect();
    assert.deepEqual(asked, [false, true]);
    // A session ended elsewhere closes the socket with 4001: asked again with refresh, and null gives up.
    const gaveUp = next<{ code: number; willReconnect: boolean }>(
      (fn) => c.on('disconnected', fn),
      (d) => !d.willReconnect,
    );
    const first = next<{ code: number; willReconnect: boolean }>((fn) => c.on('disconnected', fn));
    await createApiClient({ url: `${base}/trpc`, getToken: () => u.accessToken }).auth.logoutAll.mutate();
    assert.deepEqual({ ...(await first), reason: '' }, { code: 4001, reason: '', willReconnect: true });
    assert.equal((await gaveUp).willReconnect, false);
    assert.deepEqual(asked, [false, true, true]);
    assert.equal(c.state, 'disconnected');
    // Connecting again asks again, and null still means no.
    await assert.rejects(c.connect(), (e: HubbubError) => e.code === 'CLOSED');
    assert.deepEqual(asked, [false, true, true, true]);
  });

  test('requests made offline are queued and sent once connected; a request past its timeout fails with TIMEOUT', async () => {
    const { a, b, conv } = await pair();
    const bob = hub(() => b.accessToken);
    await bob.connect();
    const alice = hub(() => a.accessToken);
    // Offline: nothing is sent yet.
    const sent = alice.send(conv, 'queued while offline');
    const late = alice.edit(conv, 1, 'never', { timeoutMs: 30 });
    await assert.rejects(late, (e: HubbubError) => e.code === 'TIMEOUT');
    alice.markRead(conv, 0);
    await alice.connect();
    const ack = await sent;
    const reacted = next<{ kind: string; emoji?: string }>(
      (fn) => bob.on('event', fn),
      (e) => e.kind === 'reaction',
    );
    const edited = next<{ kind: string; body?: string | null }>(
      (fn) => bob.on('event', fn),
      (e) => e.kind === 'edit',
    );
    alice.drop();
    // Dropped: the reaction and the edit wait for the reconnect, then go out once.
    const [r, ok] = await Promise.all([alice.react(conv, ack.seq, '👍', true), alice.edit(conv, ack.seq, 'edited offline')]);
    assert.equal(r.type, 'ok');
    assert.equal(ok.type, 'ok');
    assert.equal((await reacted).emoji, '👍');
    assert.equal((await edited).body, 'edited offline');
    await assert.rejects(alice.delete(conv, 99_999), (e: HubbubError) => e instanceof HubbubError && e.code !== 'TIMEOUT');
  });

  test('a send with attachments made while the socket is down waits in the outbox and goes out once, with its cid and files', async () => {
    const { a, b, conv } = await pair();
    const bob = hub(() => b.accessToken);
    await bob.connect();
    const alice = hub(() => a.accessToken);
    await alice.connect();
    const api = createApiClient({ url: `${base}/trpc`, getToken: () => a.accessToken });
    const upload = (text: string) =>
      uploadFile(api, { baseUrl: base, conversationId: conv, file: new Blob([text], { type: 'text/plain' }), name: `${text}.txt` });
    const [one, two] = [await upload('one'), await upload('two')];
    const got: { seq: number; cid?: string; attachments?: { id: string }[] }[] = [];
    let seen!: () => void;
    const bothSeen = new Promise<void>((r) => (seen = r));
    bob.on('event', (e) => {
      if (e.kind === 'message') got.push(e);
      if (['files-queued', 'files-in-flight'].every((cid) => got.some((g) => g.cid === cid))) seen();
    });
    // Down before the send: queued. Down right after it: written, maybe stored, resent with its cid.
    alice.drop();
    const queued = alice.send(conv, '', { attachments: [one.id], cid: 'files-queued' });
    await next<unknown>((fn) => alice.on('connected', fn));
    const inFlight = alice.send(conv, 'with a file', { attachments: [two.id], cid: 'files-in-flight' });
    alice.drop();
    const [q, f] = await Promise.all([queued, inFlight]);
    assert.deepEqual([q.cid, f.cid], ['files-queued', 'files-in-flight']);
    await bothSeen;
    // A resend stored twice would come before the later ack: every message up to it is here.
    assert.deepEqual(
      got.filter((e) => e.seq <= Math.max(q.seq, f.seq)).map((e) => [e.cid, e.attachments?.map((x) => x.id)]),
      [
        ['files-queued', [one.id]],
        ['files-in-flight', [two.id]],
      ],
      'each message once, with its files',
    );
  });

  test('history and read cursors without hand-written frames', async () => {
    const { a, b, conv } = await pair();
    const alice = hub(() => a.accessToken);
    await alice.connect();
    for (const body of ['one', 'two', 'three']) await alice.send(conv, body);
    const page = await alice.history(conv, { limit: 2 });
    assert.deepEqual(
      page.events.map((e) => e.body),
      ['two', 'three'],
    );
    const older = await alice.history(conv, { beforeSeq: page.events[0]!.seq, limit: 10 });
    assert.ok(older.events.some((e) => e.body === 'one'));
    await trpcClient(replica.port, b.accessToken).conversations.markRead.mutate({ conversationId: conv, seq: page.events[0]!.seq });
    const cursors = await alice.readCursors(conv);
    assert.equal(cursors.get(b.id), page.events[0]!.seq);
    assert.equal(alice.readCursor(conv, b.id), page.events[0]!.seq);
  });

  test('errorText turns tRPC zod issues and domain errors into sentences', async () => {
    const anon = createApiClient({ url: `${base}/trpc` });
    const short = await anon.auth.register
      .mutate({ email: 'x@example.com', username: 'shorty', password: 'short' })
      .catch((e: unknown) => e);
    assert.equal(errorText(short), 'The password must be at least 8 characters.');
    const bad = await anon.auth.register
      .mutate({ email: 'nope', username: 'a', password: 'long enough password' })
      .catch((e: unknown) => e);
    assert.equal(errorText(bad), 'The email address is not valid. The username must be at least 3 characters.');
    const wrong = await anon.auth.login.mutate({ login: 'nobody_here', password: 'whatever it is' }).catch((e: unknown) => e);
    assert.match(errorText(wrong), /^[A-Z][^[\]{}]*\.$/);
    const odd = await anon.auth.register
      .mutate({ email: 'y@example.com', username: 'no spaces', password: 'long enough password' })
      .catch((e: unknown) => e);
    assert.equal(errorText(odd), 'The username may hold only letters, digits and underscores.');
  });

  test('an API call refused as UNAUTHORIZED is tried once more with a refreshed token', async () => {
    const u = await newUser(replica.port, 'erin');
    const asked: boolean[] = [];
    const api = createApiClient({
      url: `${base}/trpc`,
      getToken: ({ refresh }) => (asked.push(refresh), refresh ? u.accessToken : 'stale'),
    });
    const me = await api.auth.me.query();
    assert.equal(me.id, u.id);
    assert.deepEqual(asked, [false, true]);
  });
});
