import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import postgres from 'postgres';
import { PasswordHasher } from '../../server/src/auth/passwords.ts';
import { AccessTokens } from '../../server/src/auth/tokens.ts';

/**
 * What the load generator, the peers and conn-scale read (one JSON file):
 *   users[i]  = {id, u: username, t: access token}
 *   rooms[r]  = {id, m: [user index, …]}  fanout / connect / api / reconnect rooms
 *   prooms[r] = same, rooms of 2 for the persistence test (their own users)
 * Every user is in exactly one room.
 */
export interface SeedFile {
  password: string;
  users: { id: string; u: string; t: string }[];
  rooms: { id: string; m: number[] }[];
  prooms: { id: string; m: number[] }[];
}

export interface SeedPlan {
  groups: { name: 'rooms' | 'prooms'; users: number; roomSize: number }[];
}

export const BENCH_PASSWORD = 'bench correct horse battery staple';

/**
 * Seeds users, sessions and group rooms straight into PostgreSQL (registering thousands of
 * users through the API would spend minutes in argon2), and signs one access token per user
 * with the hubs' JWT secret, exactly as AuthService would after a login.
 */
export async function seedDatabase(databaseUrl: string, jwtSecret: string, plan: SeedPlan, file: string): Promise<SeedFile> {
  const sql = postgres(databaseUrl, { max: 4, onnotice: () => {} });
  try {
    // Same argon2id parameters as the hubs' defaults, so auth.login does the real work.
    const hash = await new PasswordHasher({ memoryCost: 19_456, timeCost: 2 }).hash(BENCH_PASSWORD);
    const tokens = new AccessTokens(jwtSecret, { issuer: 'hubbub', audience: 'hubbub', ttlSeconds: 12 * 3600 });
    const total = plan.groups.reduce((a, g) => a + g.users, 0);
    const users: SeedFile['users'] = [];
    const sessions: { id: string; user_id: string }[] = [];
    for (let i = 0; i < total; i++) {
      const id = randomUUID();
      const sid = randomUUID();
      users.push({ id, u: `u${i}`, t: await tokens.sign({ sub: id, sid }) });
      sessions.push({ id: sid, user_id: id });
    }
    const chunks = <T>(xs: T[], n = 1000) => Array.from({ length: Math.ceil(xs.length / n) }, (_, k) => xs.slice(k * n, k * n + n));
    for (const c of chunks(users)) {
      await sql`insert into users ${sql(c.map((u) => ({ id: u.id, email: `${u.u}@bench.invalid`, username: u.u })))}`;
      await sql`insert into credentials ${sql(c.map((u) => ({ user_id: u.id, password_hash: hash })))}`;
      await sql`insert into profiles ${sql(c.map((u) => ({ user_id: u.id, display_name: u.u })))}`;
    }
    for (const c of chunks(sessions)) await sql`insert into sessions ${sql(c)}`;

    const makeRooms = (from: number, count: number, size: number) => {
      const rooms: SeedFile['rooms'] = [];
      for (let i = 0; i < count; i += size) {
        const m: number[] = [];
        for (let k = i; k < Math.min(i + size, count); k++) m.push(from + k);
        if (m.length >= 2) rooms.push({ id: randomUUID(), m });
      }
      return rooms;
    };
    const seed: SeedFile = { password: BENCH_PASSWORD, users, rooms: [], prooms: [] };
    let from = 0;
    for (const g of plan.groups) {
      seed[g.name] = makeRooms(from, g.users, g.roomSize);
      from += g.users;
    }
    const all = [...seed.rooms, ...seed.prooms];
    for (const c of chunks(all)) {
      await sql`insert into conversations ${sql(c.map((r, k) => ({ id: r.id, kind: 'group', title: `room ${k}`, created_by: users[r.m[0]!]!.id })))}`;
    }
    const memberRows = all.flatMap((r) => r.m.map((u, k) => ({ conversation_id: r.id, user_id: users[u]!.id, role: k === 0 ? 'owner' : 'member' })));
    for (const c of chunks(memberRows, 2000)) await sql`insert into members ${sql(c)}`;

    writeFileSync(file, JSON.stringify(seed));
    return seed;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
