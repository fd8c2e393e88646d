import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AccessTokens } from '../../server/src/auth/tokens.ts';
import { SOCKET_LOGIN_SQL, SocketAuthenticator } from '../../server/src/auth/socket-authenticator.ts';
import { ACCESS_SQL, READ_CURSORS_SQL } from '../../server/src/conversations/conversation-directory.ts';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import { and, eq } from 'drizzle-orm';
import { logEvents } from '../../db/schema/index.ts';
import { APPEND_ONE_SQL, APPEND_SQL, LAST_SEQS_SQL, PostgresMessageStore } from '../../server/src/store/message-store.postgres.ts';
import { dbKinds, testEnv, type TestEnv } from '../helpers/server.ts';

/*
 * The hot statements (every socket open, every resume, every append) must reach their rows
 * through an index whatever the planner believes. 2,000 users in rooms of 25 and 6,000 events
 * are inserted in one burst and nothing has analysed the tables since, as after a wave of
 * sign-ups; the session plans generically, as prepared statements do after five runs. Each of
 * the three was a hash join over a sequential scan of its whole table before it became a
 * LATERAL with a LIMIT (bench --pg-stats: 110-200 buffers per call, 2-3 ms of backend CPU,
 * growing with the table; 0.1-0.3 ms since).
 */
const USERS = 2000;
const ROOM = 25;
const EVENTS = 6000;

for (const kind of dbKinds) {
  describe(`hot SQL statements on ${kind}`, () => {
    let env: TestEnv;
    let db: Database;
    before(async () => {
      env = await testEnv(kind);
      // One connection, so the session setting below holds for every statement.
      db = await openDatabase({ databaseUrl: env.env.DATABASE_URL, dataDir: env.env.DATA_DIR!, poolMax: 1 });
      await db.migrate();
      await db.query(
        `insert into users (id, email, username)
         select ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'sl' || i || '@x.invalid', 'sl' || i
         from generate_series(1, $1::int) i`,
        [USERS],
      );
      await db.query(`insert into profiles (user_id, display_name) select id, username from users`, []);
      await db.query(`insert into sessions (id, user_id) select gen_random_uuid(), id from users`, []);
      await db.query(
        `insert into conversations (id, kind, title)
         select ('00000000-0000-4000-9000-' || lpad(r::text, 12, '0'))::uuid, 'group', 'room ' || r
         from generate_series(0, $1::int - 1) r`,
        [USERS / ROOM],
      );
      await db.query(
        `insert into members (conversation_id, user_id)
         select ('00000000-0000-4000-9000-' || lpad(((i - 1) / $1::int)::text, 12, '0'))::uuid,
                ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid
         from generate_series(1, $2::int) i`,
        [ROOM, USERS],
      );
      await db.query(
        `insert into log_events (conversation_id, seq, id, kind, sender_id, cid, ts, data)
         select ('00000000-0000-4000-9000-' || lpad((k % $1::int)::text, 12, '0'))::uuid, k / $1::int + 1, gen_random_uuid(), 'message',
                ('00000000-0000-4000-8000-' || lpad(((k % $1::int) * $2::int + 1)::text, 12, '0'))::uuid, 'cid' || k, now(), '{"body":"x"}'
         from generate_series(0, $3::int - 1) k`,
        [USERS / ROOM, ROOM, EVENTS],
      );
      await db.query(`set plan_cache_mode = force_generic_plan`, []);
    });
    after(async () => {
      await db?.close();
      await env?.cleanup();
    });

    const someUser = async (n: number) => {
      const id = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
      const [s] = await db.query<{ id: string }>(`select id from sessions where user_id = $1`, [id]);
      return { id, sessionId: s!.id };
    };

    const plan = async (text: string, params: unknown[]) =>
      (await db.query<{ 'QUERY PLAN': string }>(`explain ${text}`, params)).map((r) => r['QUERY PLAN']).join('\n');

    test('socket login: the members by index, never a sequential scan', async () => {
      const u = await someUser(777);
      assert.doesNotMatch(await plan(SOCKET_LOGIN_SQL, [u.id, u.sessionId, 200]), /Seq Scan/);
    });

    test('read cursors of a resume batch: one key lookup per pair, never a sequential scan', async () => {
      const pairs = [1, 26, 51].map((n) => ({
        u: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
        c: `00000000-0000-4000-9000-${String((n - 1) / ROOM).padStart(12, '0')}`,
      }));
      assert.doesNotMatch(await plan(READ_CURSORS_SQL, [JSON.stringify(pairs)]), /Seq Scan/);
      const rows = await db.query<{ user_id: string; read_seq: string | number }>(READ_CURSORS_SQL, [JSON.stringify(pairs)]);
      assert.deepEqual(rows.map((r) => r.user_id).sort(), pairs.map((p) => p.u).sort());
    });

    test("a sender's events in a conversation (erasure) come through the cid index's leading columns, never a scan of log_events", async () => {
      const conv = '00000000-0000-4000-9000-000000000003';
      const sender = '00000000-0000-4000-8000-000000000076';
      // The statement PostgresMessageStore.seqsBySender builds with drizzle.
      const q = db.db
        .select({ seq: logEvents.seq })
        .from(logEvents)
        .where(and(eq(logEvents.conversationId, conv), eq(logEvents.senderId, sender), eq(logEvents.kind, 'message')))
        .toSQL();
      const p = await plan(q.sql, q.params);
      assert.doesNotMatch(p, /Seq Scan/);
      assert.match(p, /log_events_cid_uq/);
      const seqs = await new PostgresMessageStore(db).seqsBySender(conv, sender);
      assert.equal(seqs.length, EVENTS / (USERS / ROOM));
    });

    test('append: the duplicate check probes the cid index, never scans log_events', async () => {
      const row = {
        i: 0,
        conv: '00000000-0000-4000-9000-000000000003',
        id: '00000000-0000-4000-a000-000000000001',
        kind: 'message',
        sender: '00000000-0000-4000-8000-000000000076',
        cid: 'new',
        ts: new Date().toISOString(),
        data: { body: 'hi' },
      };
      assert.doesNotMatch(await plan(APPEND_SQL, [JSON.stringify([row])]), /Seq Scan on log_events/);
      const one = [row.conv, row.id, row.kind, row.sender, row.cid, row.ts, JSON.stringify(row.data)];
      const p = await plan(APPEND_ONE_SQL, one);
      assert.doesNotMatch(p, /Seq Scan/);
      assert.match(p, /log_events_cid_uq/);
    });

    test('conversation heads (history, feeds): one key lookup per conversation, never a scan of log_heads', async () => {
      await db.query(`insert into log_heads (conversation_id, last_seq) select conversation_id, max(seq) from log_events group by 1`, []);
      const convs = [0, 5, 9].map((r) => `00000000-0000-4000-9000-${String(r).padStart(12, '0')}`);
      assert.doesNotMatch(await plan(LAST_SEQS_SQL, [JSON.stringify(convs)]), /Seq Scan/);
      const rows = await db.query<{ conversation_id: string; last_seq: string | number }>(LAST_SEQS_SQL, [JSON.stringify(convs)]);
      assert.deepEqual(
        rows.map((r) => [r.conversation_id, Number(r.last_seq)]).sort(),
        convs.map((c) => [c, EVENTS / (USERS / ROOM)]).sort(),
      );
    });

    test('membership check of a socket (a conversation it does not know): key lookups only, with the block of a direct conversation', async () => {
      const [u, v] = ['00000000-0000-4000-8000-000000000101', '00000000-0000-4000-8000-000000000102'];
      const dm = '00000000-0000-4000-9000-0000000d0001';
      await db.query(`insert into conversations (id, kind, direct_key) values ($1, 'direct', $2)`, [dm, `${u}:${v}`]);
      await db.query(`insert into members (conversation_id, user_id) values ($1, $2), ($1, $3)`, [dm, u, v]);
      const room = '00000000-0000-4000-9000-000000000004'; // users 101..125
      const asked = JSON.stringify([dm, room, '00000000-0000-4000-9000-000000000005']);
      assert.doesNotMatch(await plan(ACCESS_SQL, [u, asked]), /Seq Scan/);
      const access = async (user: string) =>
        Object.fromEntries(
          (await db.query<{ conversation_id: string; blocked: string | null }>(ACCESS_SQL, [user, asked])).map((r) => [
            r.conversation_id,
            r.blocked,
          ]),
        );
      assert.deepEqual(await access(u), { [dm]: null, [room]: null }, 'member of the DM and the room, not of the other room');
      await db.query(`insert into blocks (blocker_id, blocked_id) values ($1, $2)`, [v, u]);
      assert.deepEqual(await access(u), { [dm]: 'theirs', [room]: null });
      assert.deepEqual((await access(v))[dm], 'mine');
      await db.query(`insert into blocks (blocker_id, blocked_id) values ($1, $2)`, [u, v]);
      assert.deepEqual((await access(u))[dm], 'mine', 'blocked both ways: each side sees its own block');
      // The socket login reads the same, for the user's every blocked direct conversation.
      const auth = new SocketAuthenticator({
        tokens: new AccessTokens('x'.repeat(40), { issuer: 'i', audience: 'a', ttlSeconds: 60 }),
        database: db,
      });
      assert.doesNotMatch(await plan(SOCKET_LOGIN_SQL, [u, (await someUser(101)).sessionId, 200]), /Seq Scan/);
      assert.deepEqual((await auth.login(await someUser(101), 200)).blocked, { [dm]: 'mine' });
      await db.query(`delete from blocks where blocker_id = $1`, [u]);
      assert.deepEqual((await auth.login(await someUser(102), 200)).blocked, { [dm]: 'mine' });
      assert.deepEqual((await auth.login(await someUser(101), 200)).blocked, { [dm]: 'theirs' });
      assert.deepEqual((await auth.login(await someUser(777), 200)).blocked, {});
    });

    test('returns the identity, the conversation and the room mates as contacts (capped), or nothing for a revoked session', async () => {
      const auth = new SocketAuthenticator({
        tokens: new AccessTokens('x'.repeat(40), { issuer: 'i', audience: 'a', ttlSeconds: 60 }),
        database: db,
      });
      const u = await someUser(777); // room 31 holds users 776..800
      const login = await auth.login(u, 200);
      assert.equal(login.info.username, 'sl777');
      assert.deepEqual(login.convs, ['00000000-0000-4000-9000-000000000031']);
      const mates = Array.from({ length: ROOM }, (_, k) => 776 + k).filter((n) => n !== 777);
      assert.deepEqual([...login.contacts].sort(), mates.map((n) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`).sort());
      assert.equal((await auth.login(u, 5)).contacts.length, 5);
      await db.query(`update sessions set revoked_at = now() where id = $1`, [u.sessionId]);
      await assert.rejects(auth.login(u, 200), /session ended/);
    });
  });
}
