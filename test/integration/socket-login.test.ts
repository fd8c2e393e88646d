import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AccessTokens } from '../../server/src/auth/tokens.ts';
import { SOCKET_LOGIN_SQL, SocketAuthenticator } from '../../server/src/auth/socket-authenticator.ts';
import { openDatabase, type Database } from '../../server/src/db/database.ts';
import { dbKinds, testEnv, type TestEnv } from '../helpers/server.ts';

/*
 * The statement every socket open runs. 2,000 users in rooms of 25 are inserted in one burst
 * and nothing has analysed the tables since, as after a wave of sign-ups: the plan must still
 * reach the members through their indexes. As a plain join the planner chose a sequential
 * scan of all members per socket (2 ms of backend CPU each at 11k members, growing with the
 * table), which the 10k-socket connect storm of the bench paid 10,000 times.
 */
const USERS = 2000;
const ROOM = 25;

for (const kind of dbKinds) {
  describe(`socket login statement on ${kind}`, () => {
    let env: TestEnv;
    let db: Database;
    before(async () => {
      env = await testEnv(kind);
      db = await openDatabase({ databaseUrl: env.env.DATABASE_URL, dataDir: env.env.DATA_DIR! });
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

    test('uses the members indexes, never a sequential scan, on tables not yet analysed', async () => {
      const u = await someUser(777);
      const plan = (await db.query<{ 'QUERY PLAN': string }>(`explain ${SOCKET_LOGIN_SQL}`, [u.id, u.sessionId, 200]))
        .map((r) => r['QUERY PLAN'])
        .join('\n');
      assert.doesNotMatch(plan, /Seq Scan on members/, plan);
    });

    test('returns the identity, the conversation and the room mates as contacts (capped), or nothing for a revoked session', async () => {
      const auth = new SocketAuthenticator({ tokens: new AccessTokens('x'.repeat(40), { issuer: 'i', audience: 'a', ttlSeconds: 60 }), database: db });
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
