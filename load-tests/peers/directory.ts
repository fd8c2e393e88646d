import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { jwtVerify } from 'jose';

/**
 * What every peer knows without a database: who is in which room (the bench's seed file) and how to check the tokens
 * Hubbub issues (HS256, iss/aud `hubbub`, typ `at+jwt`). Peers keep everything in memory: no history, no resume. That
 * is the point of the comparison: Hubbub pays for those, the peers do not.
 */
class Directory {
  private readonly roomsOfUser = new Map<string, string[]>();
  private readonly members = new Map<string, Set<string>>();
  private readonly key: Uint8Array;

  constructor(seedFile: string, secret: string) {
    const seed = JSON.parse(readFileSync(seedFile, 'utf8')) as {
      users: { id: string }[];
      rooms: { id: string; m: number[] }[];
      prooms: { id: string; m: number[] }[];
    };
    for (const r of [...seed.rooms, ...seed.prooms]) {
      const ids = r.m.map((i) => seed.users[i]!.id);
      this.members.set(r.id, new Set(ids));
      for (const u of ids) this.roomsOfUser.set(u, [...(this.roomsOfUser.get(u) ?? []), r.id]);
    }
    this.key = new TextEncoder().encode(secret);
  }

  roomsOf = (user: string) => this.roomsOfUser.get(user) ?? [];
  isMember = (room: string, user: string) => this.members.get(room)?.has(user) ?? false;

  /** The user id of a valid token, or null. */
  async verify(token: unknown): Promise<string | null> {
    if (typeof token !== 'string' || token.length > 4096) return null;
    const checks = { algorithms: ['HS256'], issuer: 'hubbub', audience: 'hubbub', typ: 'at+jwt' };
    const { payload } = await jwtVerify(token, this.key, checks).catch(() => ({ payload: { sub: null } }));
    return typeof payload.sub === 'string' ? payload.sub : null;
  }
}

/** The settings the bench gives a peer (PORT, HOST, SEED_FILE, JWT_SECRET; REDIS_URL for those that replicate). */
export function peerEnv() {
  const env = process.env;
  const need = (k: string) => {
    if (!env[k]) throw new Error(`${k} is required`);
    return env[k];
  };
  const directory = new Directory(need('SEED_FILE'), need('JWT_SECRET'));
  return {
    port: Number(env.PORT ?? 0),
    host: env.HOST ?? '127.0.0.1',
    directory,
    redisUrl: env.REDIS_URL,
    redisPrefix: env.REDIS_PREFIX ?? 'sio',
    need,
  };
}

/** What a peer stores for a `send` (the durable floor writes it; the in-memory peers only count). */
export interface PeerEvent {
  id: string;
  ts: number;
  from: string;
  cid: string;
  body: string;
}

/**
 * The protocol subset every peer speaks: `send` → the event to every room member (through `fanout`, encoded once), then
 * `ack`; `resume` → `resumed` with the heads of `ready`; `ping` → `pong`; anything else an error frame. `nextSeq` gives
 * the seq at once (in memory) or once the event is stored (the durable floor, which answers INTERNAL if the store fails).
 */
export function handlePeerFrame(
  text: string,
  ctx: {
    user: string;
    convs: Record<string, number>;
    directory: Directory;
    nextSeq(room: string, e: PeerEvent): number | Promise<number>;
    fanout(room: string, frame: string): void;
    reply(frame: object): void;
  },
) {
  let f: { type?: string; ref?: string; conv?: string; cid?: string; body?: string };
  try {
    f = JSON.parse(text);
  } catch {
    return ctx.reply({ type: 'error', code: 'BAD_REQUEST', message: 'bad json' });
  }
  const { conv, cid, body, ref } = f;
  if (f.type === 'resume') return ctx.reply({ type: 'resumed', ref, convs: ctx.convs, cursors: {} });
  if (f.type === 'ping') return ctx.reply({ type: 'pong', ref });
  if (f.type !== 'send') return ctx.reply({ type: 'error', ref, code: 'BAD_REQUEST', message: 'unknown frame type' });
  if (typeof conv !== 'string' || typeof body !== 'string' || typeof cid !== 'string' || !ctx.directory.isMember(conv, ctx.user)) {
    return ctx.reply({ type: 'error', ref, code: 'FORBIDDEN', message: 'not a member' });
  }
  const e: PeerEvent = { id: randomUUID(), ts: Date.now(), from: ctx.user, cid, body };
  const deliver = (seq: number) => {
    ctx.fanout(conv, JSON.stringify({ body, type: 'event', conv, seq, kind: 'message', id: e.id, from: e.from, ts: e.ts, cid }));
    ctx.reply({ type: 'ack', conv, cid, seq, id: e.id, ts: e.ts, ref });
  };
  const seq = ctx.nextSeq(conv, e);
  if (typeof seq === 'number') return deliver(seq);
  seq.then(deliver, (err: Error) => ctx.reply({ type: 'error', ref, code: 'INTERNAL', message: err.message }));
}
