import type { UserShare } from './user-share.ts';

/** The user share of the in-process scheduler (one hub, no Redis). */
export class MemoryUserShare implements UserShare {
  private leases = new Map<string, Map<string, number>>();

  constructor(private readonly now: () => number = Date.now) {}

  async acquire(key: string, holder: string, cap: number, leaseMs: number) {
    const now = this.now();
    const held = this.leases.get(key) ?? new Map<string, number>();
    for (const [h, until] of held) if (until <= now) held.delete(h);
    if (!held.has(holder) && held.size >= cap) return false;
    held.set(holder, now + leaseMs);
    this.leases.set(key, held);
    return true;
  }

  async release(key: string, holder: string) {
    const held = this.leases.get(key);
    held?.delete(holder);
    if (held?.size === 0) this.leases.delete(key);
  }
}
