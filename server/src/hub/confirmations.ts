import type { Bus } from '../bus/bus.ts';
import type { Logger } from '../observability/logger.ts';

/** Where a hub that applied a confirmed message sends its confirmation. */
export interface ConfirmTo {
  /** The publishing hub's confirmation channel. */
  to: string;
  id: string;
}

/**
 * Publish-and-wait for messages that must have taken effect on every hub before their sender
 * answers (read-your-writes for membership). The bus says how many hubs received a message
 * (Redis PUBLISH counts the subscribed connections, one per hub); each of them applies it and
 * publishes the message's id on this hub's confirmation channel; `publish` resolves once as many
 * confirmations came back, or after `timeoutMs` (a hub that stalls or died after receiving it;
 * logged). A hub that never subscribed to the channel has no sockets and is not counted.
 */
export class Confirmations {
  private next = 0;
  private waiting = new Map<string, { expected: number | null; got: number; done: () => void }>();
  private subscribed: Promise<void> | null = null;

  constructor(private readonly d: { bus: Bus; channel: string; timeoutMs: number; logger: Logger }) {}

  /** Publishes `make(confirmTo)` on `channel`; resolves once every hub that received it confirmed. */
  async publish(channel: string, make: (confirm: ConfirmTo) => string): Promise<void> {
    await this.subscribe();
    const id = String(++this.next);
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const w = { expected: null as number | null, got: 0, done };
    this.waiting.set(id, w);
    let timer: NodeJS.Timeout | undefined;
    try {
      // Confirmations may come back before the publish's own reply: they are counted meanwhile.
      w.expected = await this.d.bus.publishCounted(channel, make({ to: this.d.channel, id }));
      if (w.got >= w.expected) return;
      const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.d.timeoutMs)));
      if (await Promise.race([all.then(() => false), timedOut])) {
        this.d.logger.warn(
          { channel, receivers: w.expected, confirmed: w.got, timeoutMs: this.d.timeoutMs },
          'not every hub confirmed a membership change in time',
        );
      }
    } finally {
      clearTimeout(timer);
      this.waiting.delete(id);
    }
  }

  /** A confirmation arrived on this hub's channel. */
  confirmed(id: string) {
    const w = this.waiting.get(id);
    if (!w) return;
    w.got++;
    if (w.expected !== null && w.got >= w.expected) w.done();
  }

  /** Subscribes this hub's confirmation channel once (a failed attempt is retried by the next publish). */
  private subscribe(): Promise<void> {
    if (!this.subscribed) {
      const sub = this.d.bus.subscribe(this.d.channel);
      this.subscribed = sub;
      sub.catch(() => {
        // The caller's publish fails with this error; the next one tries again.
        if (this.subscribed === sub) this.subscribed = null;
      });
    }
    return this.subscribed;
  }
}
