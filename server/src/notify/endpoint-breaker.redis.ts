import type { Redis } from 'ioredis';
import type { BreakerOptions, EndpointBreaker } from './endpoint-breaker.ts';

// Redis time, so that workers on several machines agree on when a pause ends.
const NOW = `local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)`;

// KEYS: state hash, probe key. ARGV: probeMs. Returns {1} or {0, until}.
const ADMIT = `${NOW}
local open = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
if open > now then return {0, open} end
if tonumber(redis.call('HGET', KEYS[1], 'trips') or '0') == 0 then return {1} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {1} end
return {0, now + math.max(0, redis.call('PTTL', KEYS[2]))}
`;

// KEYS: state hash, probe key. ARGV: failures, cooldownMs, maxCooldownMs, keepMs. Returns the
// end of the pause this failure started, or 0.
const FAILURE = `${NOW}
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local trips = tonumber(redis.call('HGET', KEYS[1], 'trips') or '0')
local open = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
local ends = 0
if (trips > 0 and open <= now) or fails >= tonumber(ARGV[1]) then
  trips = trips + 1
  ends = math.floor(now + math.min(tonumber(ARGV[2]) * 2 ^ (trips - 1), tonumber(ARGV[3])))
  redis.call('HSET', KEYS[1], 'fails', 0, 'trips', trips, 'openUntil', ends)
  redis.call('DEL', KEYS[2])
end
redis.call('PEXPIRE', KEYS[1], math.max(ends - now, 0) + tonumber(ARGV[4]))
return ends
`;

/** A quiet endpoint's failures are forgotten after this long. */
const KEEP_MS = 24 * 3600_000;

/** The breaker of the BullMQ workers: shared by every worker through Redis, read by the hubs. */
export class RedisEndpointBreaker implements EndpointBreaker {
  constructor(
    private readonly redis: Redis,
    private readonly o: BreakerOptions,
    private readonly prefix = 'hubbub:',
  ) {}

  private keys(target: string) {
    return [`${this.prefix}notify:breaker:${target}`, `${this.prefix}notify:probe:${target}`];
  }

  async admit(target: string): Promise<{ ok: true } | { ok: false; until: number }> {
    const [ok, until] = (await this.redis.eval(ADMIT, 2, ...this.keys(target), this.o.probeMs)) as [number, number?];
    return ok ? { ok: true } : { ok: false, until: Number(until) };
  }

  async success(target: string) {
    await this.redis.del(...this.keys(target));
  }

  async failure(target: string) {
    const until = Number(
      await this.redis.eval(FAILURE, 2, ...this.keys(target), this.o.failures, this.o.cooldownMs, this.o.maxCooldownMs, KEEP_MS),
    );
    return until ? { until } : {};
  }

  async pausedUntil(targets: string[]) {
    const out = new Map<string, number>();
    if (!targets.length) return out;
    const [sec, micro] = await this.redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    const pipe = this.redis.pipeline();
    for (const t of targets) pipe.hget(this.keys(t)[0]!, 'openUntil');
    const res = (await pipe.exec()) ?? [];
    targets.forEach((t, i) => {
      const [err, v] = res[i] ?? [null, null];
      if (err) throw err;
      const until = Number(v ?? 0);
      if (until > now) out.set(t, until);
    });
    return out;
  }
}
