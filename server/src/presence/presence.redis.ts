import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import type { Presence } from './presence.ts';

/*
 * Keys (prefix hubbub:pr:):
 *   u:<user>         hash replica -> open sockets of that user on that replica
 *   r:<replica>      heartbeat, expires after ttlMs unless the replica refreshes it
 *   ru:<replica>     set of users with sockets on that replica
 *   replicas         set of replicas that ever registered
 * A user's live count sums only replicas whose heartbeat exists, so a dead replica's sockets
 * stop counting when its heartbeat expires; a surviving replica then claims the dead one
 * (SREM wins once) and reports its users who are now offline.
 */
const LIVE_SUM = `
local total = 0
local h = redis.call('HGETALL', KEYS[1])
for i = 1, #h, 2 do
  if redis.call('EXISTS', ARGV[1] .. h[i]) == 1 then total = total + tonumber(h[i + 1]) end
end
return total
`;
// Counts the socket, then returns the user's live count followed by the live count of every
// contact (KEYS[3..]: their u: keys), so a new socket's snapshot costs no second call.
const CONNECT = `
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('SADD', KEYS[2], ARGV[3])
local out = {}
for k = 1, #KEYS do
  if k ~= 2 then
    local total = 0
    local h = redis.call('HGETALL', KEYS[k])
    for i = 1, #h, 2 do
      if redis.call('EXISTS', ARGV[1] .. h[i]) == 1 then total = total + tonumber(h[i + 1]) end
    end
    out[#out + 1] = total
  end
end
return out`;
const DISCONNECT = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[2], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('SREM', KEYS[2], ARGV[3])
end
${LIVE_SUM}`;
// Live counts of many users in one call (KEYS: their u: keys), for the presence snapshot.
const LIVE_MANY = `
local out = {}
for k = 1, #KEYS do
  local total = 0
  local h = redis.call('HGETALL', KEYS[k])
  for i = 1, #h, 2 do
    if redis.call('EXISTS', ARGV[1] .. h[i]) == 1 then total = total + tonumber(h[i + 1]) end
  end
  out[k] = total
end
return out
`;
const DROP_REPLICA = `
redis.call('HDEL', KEYS[1], ARGV[2])
${LIVE_SUM}`;

/** The scripts, sent once and then called by sha (ioredis falls back to EVAL after a SCRIPT FLUSH). */
interface PresenceCommands {
  hubbubPresenceConnect(...args: string[]): Promise<number[]>;
  hubbubPresenceDisconnect(k1: string, k2: string, prefix: string, replica: string, user: string): Promise<number>;
  hubbubPresenceLiveMany(...args: string[]): Promise<number[]>;
}
type ScriptedRedis = Redis & PresenceCommands;

/** Above this many users, the snapshot is read in several calls so one script never runs long. */
const LIVE_MANY_CHUNK = 500;

export class RedisPresence implements Presence {
  private handlers: ((u: string) => void)[] = [];
  private timer: NodeJS.Timeout;
  private p: string;

  constructor(
    private readonly redis: Redis,
    private readonly opts: { replicaId: string; logger: Logger; ttlMs?: number; prefix?: string },
  ) {
    this.p = (opts.prefix ?? 'hubbub:') + 'pr:';
    // defineCommand is idempotent per name on a client, so two instances can share one.
    if (!('hubbubPresenceConnect' in redis)) {
      redis.defineCommand('hubbubPresenceConnect', { lua: CONNECT });
      redis.defineCommand('hubbubPresenceDisconnect', { numberOfKeys: 2, lua: DISCONNECT });
      redis.defineCommand('hubbubPresenceLiveMany', { lua: LIVE_MANY });
    }
    const ttl = opts.ttlMs ?? 6000;
    const beat = async () => {
      try {
        await this.redis
          .multi()
          .set(this.p + 'r:' + opts.replicaId, '1', 'PX', ttl)
          .sadd(this.p + 'replicas', opts.replicaId)
          .exec();
        await this.reapDead();
      } catch (err) {
        opts.logger.warn({ err: (err as Error).message }, 'presence heartbeat failed');
      }
    };
    void beat();
    this.timer = setInterval(beat, Math.max(200, Math.floor(ttl / 3))).unref();
  }

  private keys(userId: string) {
    return [this.p + 'u:' + userId, this.p + 'ru:' + this.opts.replicaId];
  }

  private get scripted() {
    return this.redis as ScriptedRedis;
  }

  async connected(userId: string, contacts: string[]) {
    // Past one chunk, the rest of the snapshot is read separately so one script never runs long.
    const now = contacts.slice(0, LIVE_MANY_CHUNK);
    const [counts, rest] = await Promise.all([
      this.scripted.hubbubPresenceConnect(
        String(2 + now.length),
        ...this.keys(userId),
        ...now.map((u) => this.p + 'u:' + u),
        this.p + 'r:',
        this.opts.replicaId,
        userId,
      ),
      contacts.length > now.length ? this.online(contacts.slice(now.length)) : new Set<string>(),
    ]);
    const online = rest;
    now.forEach((u, i) => {
      if (Number(counts[i + 1]) > 0) online.add(u);
    });
    return { first: Number(counts[0]) === 1, online };
  }

  async disconnected(userId: string) {
    const [k1, k2] = this.keys(userId);
    const n = await this.scripted.hubbubPresenceDisconnect(k1!, k2!, this.p + 'r:', this.opts.replicaId, userId);
    return Number(n) <= 0;
  }

  async online(userIds: string[]) {
    const out = new Set<string>();
    const chunks: string[][] = [];
    for (let i = 0; i < userIds.length; i += LIVE_MANY_CHUNK) chunks.push(userIds.slice(i, i + LIVE_MANY_CHUNK));
    await Promise.all(
      chunks.map(async (chunk) => {
        const counts = await this.scripted.hubbubPresenceLiveMany(
          String(chunk.length),
          ...chunk.map((u) => this.p + 'u:' + u),
          this.p + 'r:',
        );
        chunk.forEach((u, i) => {
          if (Number(counts[i]) > 0) out.add(u);
        });
      }),
    );
    return out;
  }

  onExpired(handler: (userId: string) => void) {
    this.handlers.push(handler);
  }

  /** Claims replicas whose heartbeat expired and reports their users who are now offline. */
  private async reapDead() {
    const replicas = await this.redis.smembers(this.p + 'replicas');
    for (const r of replicas) {
      if (r === this.opts.replicaId) continue;
      if (await this.redis.exists(this.p + 'r:' + r)) continue;
      if ((await this.redis.srem(this.p + 'replicas', r)) !== 1) continue; // another replica claimed it
      const users = await this.redis.smembers(this.p + 'ru:' + r);
      for (const u of users) {
        const n = (await this.redis.eval(DROP_REPLICA, 1, this.p + 'u:' + u, this.p + 'r:', r)) as number;
        if (n <= 0) for (const h of this.handlers) h(u);
      }
      await this.redis.del(this.p + 'ru:' + r);
    }
  }

  async close() {
    clearInterval(this.timer);
    // A clean shutdown removes its heartbeat so the others report its users at once.
    // Failing that, the heartbeat expires after ttlMs and the others report them then.
    await this.redis
      .del(this.p + 'r:' + this.opts.replicaId)
      .catch((err: Error) => this.opts.logger.warn({ err: err.message }, 'removing the presence heartbeat failed'));
  }
}
