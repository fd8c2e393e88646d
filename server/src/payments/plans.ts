import { z } from 'zod';
import type { Config } from '../config.ts';
import { ConfigError } from '../config.ts';

/** The real-time limits a plan gives its user (send rate and burst, connections per user, group size, history depth). */
export const planLimits = z.strictObject({
  /** Socket frames per second, per connection. */
  sendRatePerS: z.number().int().min(1).max(100_000),
  /** Frames a connection may send at once before the rate applies. */
  sendBurst: z.number().int().min(1).max(100_000),
  /** Open sockets per user (per replica). */
  connectionsPerUser: z.number().int().min(1).max(10_000),
  /** Most members of a group the user creates or adds to. */
  groupMembers: z.number().int().min(2).max(100_000),
  /** How many of a conversation's newest events the user can read through `conversations.history`. */
  historyDepth: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** Largest attachment, in bytes (absent in PAYMENTS_PLANS: the free plan's). */
  maxFileBytes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  /** Bytes of attachments the user may keep stored at once (absent: the free plan's). */
  storageBytes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
});
export type PlanLimits = Required<z.infer<typeof planLimits>>;

export const paidPlan = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/),
  name: z.string().min(1).max(64),
  /** Minor units of PAYMENTS_CURRENCY per period. */
  price: z.number().int().min(1).max(1_000_000_000),
  periodDays: z.number().int().min(1).max(366),
  limits: planLimits,
});
type PaidPlan = Omit<z.infer<typeof paidPlan>, 'limits'> & { limits: PlanLimits };
export type Plan = PaidPlan | (Omit<PaidPlan, 'price' | 'periodDays'> & { price: 0; periodDays: 0 });

export const FREE_PLAN_ID = 'free';

/**
 * The plan catalogue: `free` from the socket limits of the configuration (WS_RATE_PER_S,
 * WS_RATE_BURST, WS_MAX_CONNECTIONS_PER_USER, MAX_GROUP_MEMBERS, 10,000 events of history,
 * ATTACHMENT_MAX_BYTES, ATTACHMENT_QUOTA_BYTES),
 * then the paid plans of PAYMENTS_PLANS (a JSON array), by default one `premium` plan.
 */
export function loadPlans(config: Config): Plan[] {
  const free: Plan = {
    id: FREE_PLAN_ID,
    name: 'Free',
    price: 0,
    periodDays: 0,
    limits: {
      sendRatePerS: config.WS_RATE_PER_S,
      sendBurst: config.WS_RATE_BURST,
      connectionsPerUser: config.WS_MAX_CONNECTIONS_PER_USER,
      groupMembers: config.MAX_GROUP_MEMBERS,
      historyDepth: 10_000,
      maxFileBytes: config.ATTACHMENT_MAX_BYTES,
      storageBytes: config.ATTACHMENT_QUOTA_BYTES,
    },
  };
  let paid: PaidPlan[];
  if (config.PAYMENTS_PLANS) {
    let raw: unknown;
    try {
      raw = JSON.parse(config.PAYMENTS_PLANS);
    } catch {
      throw new ConfigError('invalid configuration:\n  PAYMENTS_PLANS: not JSON');
    }
    const parsed = z.array(paidPlan).max(20).safeParse(raw);
    if (!parsed.success)
      throw new ConfigError(
        `invalid configuration:\n  PAYMENTS_PLANS: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    if (parsed.data.some((p) => p.id === FREE_PLAN_ID))
      throw new ConfigError('invalid configuration:\n  PAYMENTS_PLANS: `free` is built in');
    if (new Set(parsed.data.map((p) => p.id)).size !== parsed.data.length)
      throw new ConfigError('invalid configuration:\n  PAYMENTS_PLANS: duplicate plan id');
    paid = parsed.data.map((p) => ({
      ...p,
      limits: {
        ...p.limits,
        maxFileBytes: p.limits.maxFileBytes ?? free.limits.maxFileBytes,
        storageBytes: p.limits.storageBytes ?? free.limits.storageBytes,
      },
    }));
  } else {
    const f = free.limits;
    paid = [
      {
        id: 'premium',
        name: 'Premium',
        price: 499,
        periodDays: 30,
        limits: {
          sendRatePerS: Math.max(f.sendRatePerS, 50),
          sendBurst: Math.max(f.sendBurst, 200),
          connectionsPerUser: Math.max(f.connectionsPerUser, 50),
          groupMembers: Math.max(f.groupMembers, 5000),
          historyDepth: Number.MAX_SAFE_INTEGER,
          maxFileBytes: Math.max(f.maxFileBytes, 100 * 1024 * 1024),
          storageBytes: Math.max(f.storageBytes, 10 * 1024 ** 3),
        },
      },
    ];
  }
  return [free, ...paid];
}
