import type { Bus, BusHandler } from './bus.ts';

/**
 * The in-process bus: a single replica, no Redis. Delivery is deferred to a microtask so that
 * publish never re-enters the publisher's own call stack, as with a real network bus.
 */
export class MemoryBus implements Bus {
  private subscribed = new Set<string>();
  private handler: BusHandler = () => {};

  async publish(channel: string, payload: string | Buffer) {
    if (!this.subscribed.has(channel)) return;
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    queueMicrotask(() => {
      if (this.subscribed.has(channel)) this.handler(channel, bytes);
    });
  }
  async subscribe(channel: string) {
    this.subscribed.add(channel);
  }
  async unsubscribe(channel: string) {
    this.subscribed.delete(channel);
  }
  onMessage(handler: BusHandler) {
    this.handler = handler;
  }
  onReconnect() {}
  async close() {
    this.subscribed.clear();
  }
}
