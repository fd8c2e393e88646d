import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import postgres from 'postgres';
import { PasswordHasher } from '../../server/src/auth/passwords.ts';
import { AccessTokens } from '../../server/src/auth/tokens.ts';

/**
 * What the generator, the peers and the scenarios read (one JSON file): users[i] = {id, u: username, t: access token};
 * per group, rooms {id, m: [user index, …]} of its own users (every user is in exactly one room).
 */
export interface SeedFile {
  password: string;
  users: { id: string; u: string; t: string }[];
  rooms: { id: string; m: number[] }[];
  prooms: { id: string; m: number[] }[];
  [group: string]: { id: string; m: number[] }[] | SeedFile['users'] | string;
}
export type Rooms = SeedFile['rooms'];

const BENCH_PASSWORD = 'bench correct horse battery staple';
const chunks = <T>(xs: T[], n = 1000) => Array.from({ length: Math.ceil(xs.length / n) }, (_, k) => xs.slice(k * n, k * n + n));

/**
 * Seeds users, sessions and group rooms straight into PostgreSQL (registering thousands through the API would spend
 * minutes in argon2), and signs one access token per user with the hubs' secret, as a login would. One argon2id hash
 * (the hubs' parameters) serves every user, so `auth.login` still does the real verify.
 */
export async function seedDatabase(
  databaseUrl: string,
  jwtSecret: string,
  groups: { name: string; users: number; roomSize: number }[],
  file?: string,
) {
  const sql = postgres(databaseUrl, { max: 4, onnotice: () => {} });
  try {
    const hash = await new PasswordHasher({ memoryCost: 19_456, timeCost: 2 }).hash(BENCH_PASSWORD);
    const tokens = new AccessTokens(jwtSecret, { issuer: 'hubbub', audience: 'hubbub', ttlSeconds: 12 * 3600 });
    const seed: SeedFile = { password: BENCH_PASSWORD, users: [], rooms: [], prooms: [] };
    const sessions: { id: string; user_id: string }[] = [];
    for (const g of groups) {
      const rooms: Rooms = (seed[g.name] = []) as Rooms;
      for (let i = 0; i < g.users; i += g.roomSize) {
        const m: number[] = [];
        for (let k = i; k < Math.min(i + g.roomSize, g.users); k++) {
          const id = randomUUID();
          const sid = randomUUID();
          m.push(seed.users.push({ id, u: `u${seed.users.length}`, t: await tokens.sign({ sub: id, sid }) }) - 1);
          sessions.push({ id: sid, user_id: id });
        }
        if (m.length >= 2) rooms.push({ id: randomUUID(), m });
      }
    }
    for (const c of chunks(seed.users)) {
      await sql`insert into users ${sql(c.map((u) => ({ id: u.id, email: `${u.u}@bench.invalid`, username: u.u })))}`;
      await sql`insert into credentials ${sql(c.map((u) => ({ user_id: u.id, password_hash: hash })))}`;
      await sql`insert into profiles ${sql(c.map((u) => ({ user_id: u.id, display_name: u.u })))}`;
    }
    for (const c of chunks(sessions)) await sql`insert into sessions ${sql(c)}`;
    const all = groups.flatMap((g) => seed[g.name] as Rooms);
    for (const c of chunks(all)) {
      await sql`insert into conversations ${sql(c.map((r, k) => ({ id: r.id, kind: 'group', title: `room ${k}`, created_by: seed.users[r.m[0]!]!.id })))}`;
    }
    const members = all.flatMap((r) =>
      r.m.map((u, k) => ({ conversation_id: r.id, user_id: seed.users[u]!.id, role: k === 0 ? 'owner' : 'member' })),
    );
    for (const c of chunks(members, 2000)) await sql`insert into members ${sql(c)}`;
    if (file) writeFileSync(file, JSON.stringify(seed));
    return seed;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
