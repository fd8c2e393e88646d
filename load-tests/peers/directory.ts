import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { jwtVerify } from 'jose';

/**
 * What a peer knows without a database: who is in which room (from the bench's seed file) and
 * how to check the same access tokens Hubbub issues (HS256, iss/aud `hubbub`, typ `at+jwt`).
 * Peers keep everything in memory: no durability, no history, no resume. That is the point of
 * the comparison: Hubbub pays for those, the peers do not.
 */
export class Directory {
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
      const set = new Set<string>();
      for (const i of r.m) {
        const u = seed.users[i]!.id;
        set.add(u);
        let list = this.roomsOfUser.get(u);
        if (!list) this.roomsOfUser.set(u, (list = []));
        list.push(r.id);
      }
      this.members.set(r.id, set);
    }
    this.key = new TextEncoder().encode(secret);
  }

  roomsOf(userId: string): string[] {
    return this.roomsOfUser.get(userId) ?? [];
  }

  isMember(room: string, userId: string): boolean {
    return this.members.get(room)?.has(userId) ?? false;
  }

  /** The user id of a valid token, or null. */
  async verify(token: unknown): Promise<string | null> {
    if (typeof token !== 'string' || token.length > 4096) return null;
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], issuer: 'hubbub', audience: 'hubbub', typ: 'at+jwt' });
      return typeof payload.sub === 'string' ? payload.sub : null;
    } catch {
      return null;
    }
  }
}

/** Peers read their settings from the environment the bench gives them. */
export function peerEnv() {
  const need = (k: string) => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is required`);
    return v;
  };
  return {
    port: Number(process.env.PORT ?? 0),
    host: process.env.HOST ?? '127.0.0.1',
    seedFile: need('SEED_FILE'),
    secret: need('JWT_SECRET'),
    redisUrl: process.env.REDIS_URL,
    redisPrefix: process.env.REDIS_PREFIX ?? 'sio',
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
 * The protocol subset the peers speak, the same for all of them: `send` → the event to every
 * room member (through `fanout`, encoded once) and then `ack`; `resume` → `resumed` with the
 * heads from `ready`; `ping` → `pong`; anything else an error frame. `nextSeq` gives the event's
 * seq: at once for the in-memory peers, once it is stored for the durable floor (which answers
 * `INTERNAL` when the store refuses).
 */
export function handlePeerFrame(
  text: string,
  ctx: {
    user: string;
    convs: Record<string, number>;
    directory: Directory;
    /** The seq of a room's next event, or a promise of it once the event is stored. */
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
  switch (f.type) {
    case 'send': {
      const { conv, cid, body, ref } = f;
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
      return;
    }
    case 'resume':
      return ctx.reply({ type: 'resumed', ref: f.ref, convs: ctx.convs, cursors: {} });
    case 'ping':
      return ctx.reply({ type: 'pong', ref: f.ref });
    default:
      return ctx.reply({ type: 'error', ref: f.ref, code: 'BAD_REQUEST', message: 'unknown frame type' });
  }
}
