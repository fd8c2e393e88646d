import { eq } from 'drizzle-orm';
import type { Db } from '../db/database.ts';
import { paymentSubscriptions } from '../../../db/schema/index.ts';
import type { LimitsDirectory, LoginSubscription, SocketLimits, UserControl } from '../hub/ports.ts';
import { encode } from '../hub/wire.ts';
import { FREE_PLAN_ID, type Plan, type PlanLimits } from './plans.ts';

export interface Entitlement {
  plan: string;
  /** End of the paid period (ISO), null on the free plan. */
  until: string | null;
  autoRenew: boolean;
  limits: PlanLimits;
}

/**
 * What a user's plan allows, read from their subscription row (a period in the past is the free
 * plan, whether or not the renewal job has run yet), and how a change reaches their sockets: a
 * `limits` control message on the user's bus channel, which every replica holding one of their
 * sockets applies at once.
 */
export class Entitlements implements LimitsDirectory {
  readonly byId: Map<string, Plan>;
  readonly free: Plan;

  constructor(
    private readonly d: {
      db: Db;
      plans: Plan[];
      now: () => number;
      controlUser(userId: string, msg: UserControl): Promise<void>;
    },
  ) {
    this.byId = new Map(d.plans.map((p) => [p.id, p]));
    this.free = this.byId.get(FREE_PLAN_ID)!;
  }

  async of(userId: string): Promise<Entitlement> {
    const [row] = await this.d.db.select().from(paymentSubscriptions).where(eq(paymentSubscriptions.userId, userId));
    return this.fromRow(row);
  }

  /** The plan a subscription gives now: its own while the period runs, else none (the free plan). */
  private activePlan(planId: string, periodEndMs: number): Plan | undefined {
    const plan = this.byId.get(planId);
    return plan && periodEndMs > this.d.now() ? plan : undefined;
  }

  fromRow(row: typeof paymentSubscriptions.$inferSelect | undefined): Entitlement {
    const plan = row && this.activePlan(row.planId, row.periodEnd.getTime());
    if (!row || !plan) return { plan: this.free.id, until: null, autoRenew: false, limits: this.free.limits };
    return { plan: plan.id, until: row.periodEnd.toISOString(), autoRenew: row.autoRenew, limits: plan.limits };
  }

  async limitsOf(userId: string): Promise<SocketLimits> {
    return socketLimits((await this.of(userId)).limits);
  }

  /** A new socket's limits from the subscription its login statement read (no query). */
  limitsOfSubscription(sub: LoginSubscription | null): SocketLimits {
    return socketLimits((sub && this.activePlan(sub.planId, sub.periodEnd))?.limits ?? this.free.limits);
  }

  /** Group size and history depth for the conversation service. */
  async conversationLimitsOf(userId: string) {
    const { limits } = await this.of(userId);
    return { groupMembers: limits.groupMembers, historyDepth: limits.historyDepth };
  }

  /** Tells every replica holding the user's sockets their current limits. */
  async announce(userId: string): Promise<Entitlement> {
    const e = await this.of(userId);
    await this.d.controlUser(userId, {
      k: 'limits',
      limits: socketLimits(e.limits),
      frame: encode({ type: 'limits', plan: e.plan, until: e.until, limits: e.limits }),
    });
    return e;
  }
}

export const socketLimits = (l: PlanLimits): SocketLimits => ({
  ratePerS: l.sendRatePerS,
  burst: l.sendBurst,
  maxConnections: l.connectionsPerUser,
});
