import { pauseMs, type BreakerOptions, type EndpointBreaker } from './endpoint-breaker.ts';

interface State {
  fails: number;
  trips: number;
  openUntil: number;
  probeUntil: number;
}

/** The breaker of the in-process scheduler (one hub, no Redis). */
export class MemoryEndpointBreaker implements EndpointBreaker {
  private states = new Map<string, State>();

  constructor(
    private readonly o: BreakerOptions,
    private readonly now: () => number = Date.now,
  ) {}

  async admit(target: string): Promise<{ ok: true } | { ok: false; until: number }> {
    const s = this.states.get(target);
    const now = this.now();
    if (!s || s.trips === 0) return { ok: true };
    if (s.openUntil > now) return { ok: false, until: s.openUntil };
    if (s.probeUntil > now) return { ok: false, until: s.probeUntil };
    s.probeUntil = now + this.o.probeMs;
    return { ok: true };
  }

  async success(target: string) {
    this.states.delete(target);
  }

  async failure(target: string): Promise<{ until?: number }> {
    const now = this.now();
    const s = this.states.get(target) ?? { fails: 0, trips: 0, openUntil: 0, probeUntil: 0 };
    this.states.set(target, s);
    s.fails++;
    const probeFailed = s.trips > 0 && s.openUntil <= now;
    if (!probeFailed && s.fails < this.o.failures) return {};
    s.trips++;
    s.fails = 0;
    s.probeUntil = 0;
    s.openUntil = now + pauseMs(this.o, s.trips);
    return { until: s.openUntil };
  }

  async pausedUntil(targets: string[]) {
    const now = this.now();
    const out = new Map<string, number>();
    for (const t of targets) {
      const s = this.states.get(t);
      if (s && s.openUntil > now) out.set(t, s.openUntil);
    }
    return out;
  }
}
