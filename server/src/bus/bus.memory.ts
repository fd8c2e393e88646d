import type { Bus, BusHandler } from './bus.ts';

/**
 * The in-process bus: a single replica, no Redis. Delivery is deferred to a microtask so that
 * publish never re-enters the publisher's own call stack, as with a real network bus.
 */
export class MemoryBus implements Bus {
  private subscribed = new Set<string>();
  private prefixes: string[] = [];
  private handler: BusHandler = () => {};

  private wants(channel: string) {
    return this.subscribed.has(channel) || this.prefixes.some((p) => channel.startsWith(p));
  }

  async publish(channel: string, payload: string | Buffer) {
    await this.publishCounted(channel, payload);
  }
  async publishCounted(channel: string, payload: string | Buffer) {
    if (!this.wants(channel)) return 0;
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    queueMicrotask(() => {
      if (this.wants(channel)) this.handler(channel, bytes);
    });
    return 1;
  }
  async subscribePrefix(prefix: string) {
    if (!this.prefixes.includes(prefix)) this.prefixes.push(prefix);
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
    this.prefixes = [];
  }
}
