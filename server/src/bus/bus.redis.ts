import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import type { Bus, BusHandler } from './bus.ts';

/**
 * Redis pub/sub across replicas: one connection publishes, one subscribes. ioredis re-subscribes
 * after a reconnect; pub/sub keeps nothing for the time in between, so reconnect is reported and
 * the hub heals from the message store (seqs come from the store, never from Redis).
 */
export class RedisBus implements Bus {
  private pub: Redis;
  private sub: Redis;
  private handler: BusHandler = () => {};
  private reconnectHandlers: (() => void)[] = [];
  private prefix: string;
  private everReady = false;
  private corked = false;

  constructor(url: string, opts: { logger: Logger; prefix?: string }) {
    this.prefix = opts.prefix ?? 'hubbub:';
    const common = {
      lazyConnect: false,
      maxRetriesPerRequest: 2,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      enableAutoPipelining: true,
    };
    // Publishes fail fast while Redis is away (the caller sees the error; the store has the event).
    // No auto-pipelining on it: `publish` corks the socket for the turn instead, which gives the
    // same one write for a burst without a pipeline object per publish (most turns make one).
    this.pub = new Redis(url, { ...common, enableOfflineQueue: false, enableAutoPipelining: false });
    this.sub = new Redis(url, { ...common, autoResubscribe: true });
    this.pub.on('error', (err) => opts.logger.warn({ err: err.message }, 'redis bus (pub) error'));
    this.sub.on('error', (err) => opts.logger.warn({ err: err.message }, 'redis bus (sub) error'));
    const n = this.prefix.length;
    // Buffers, not strings: ioredis decodes a payload only when a 'message' listener exists, and
    // the hub forwards the frame bytes to sockets as they are.
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.handler(channel.toString('latin1', n), message));
    this.sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) =>
      this.handler(channel.toString('latin1', n), message),
    );
    this.sub.on('ready', () => {
      if (this.everReady) for (const h of this.reconnectHandlers) h();
      this.everReady = true;
    });
  }

  async ready() {
    const wait = (r: Redis) => (r.status === 'ready' ? Promise.resolve() : new Promise<void>((res) => r.once('ready', () => res())));
    await Promise.all([wait(this.pub), wait(this.sub)]);
  }

  async publish(channel: string, payload: string | Buffer) {
    await this.publishCounted(channel, payload);
  }
  async publishCounted(channel: string, payload: string | Buffer) {
    // The publishes of one turn leave in one write: the socket is corked until the next tick.
    const stream = this.pub.stream;
    if (!this.corked && stream?.writable) {
      this.corked = true;
      stream.cork();
      process.nextTick(() => {
        this.corked = false;
        stream.uncork();
      });
    }
    return this.pub.publish(this.prefix + channel, payload);
  }
  async subscribe(channel: string) {
    await this.sub.subscribe(this.prefix + channel);
  }
  async unsubscribe(channel: string) {
    await this.sub.unsubscribe(this.prefix + channel);
  }
  async subscribePrefix(prefix: string) {
    // Glob metacharacters in the prefix are escaped: it matches literally, then anything.
    await this.sub.psubscribe((this.prefix + prefix).replace(/[\\*?[\]]/g, '\\$&') + '*');
  }
  onMessage(handler: BusHandler) {
    this.handler = handler;
  }
  onReconnect(handler: () => void) {
    this.reconnectHandlers.push(handler);
  }
  async ping() {
    await this.pub.ping();
  }
  async close() {
    this.pub.disconnect();
    this.sub.disconnect();
  }
}
