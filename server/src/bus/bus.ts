/**
 * Fanout between hub replicas. A payload is encoded once by the publisher; a subscriber
 * receives its bytes, once per hub, never once per socket, and passes slices of them on to
 * sockets without decoding them into a string.
 * In-process (bus.memory.ts) for a single replica; Redis pub/sub (bus.redis.ts) across replicas.
 */
export type BusHandler = (channel: string, payload: Buffer) => void;

export interface Bus {
  publish(channel: string, payload: string | Buffer): Promise<void>;
  /**
   * `publish`, resolving with how many subscribers received the message: with Redis, the
   * subscribed connections (one per hub that listens on the channel); in process, 1 or 0.
   */
  publishCounted(channel: string, payload: string | Buffer): Promise<number>;
  /** Resolves once messages published afterwards will reach `handler`. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /**
   * Every channel whose name starts with `prefix`, for as long as the bus lives (one pattern
   * subscription per replica instead of one SUBSCRIBE per user). Resolves once subscribed.
   */
  subscribePrefix(prefix: string): Promise<void>;
  /** The one handler for every subscribed channel (set by the hub). */
  onMessage(handler: BusHandler): void;
  /**
   * Called after the bus lost and regained its connection: messages may have been missed
   * meanwhile, so the hub re-reads what it tracks from the store.
   */
  onReconnect(handler: () => void): void;
  close(): Promise<void>;
}

/** Channel names: one per conversation, one per user (control: session revocation, plan limits). */
export const channels = {
  conv: (id: string) => `c:${id}`,
  user: (id: string) => `u:${id}`,
  /** Presence changes of every replica, batched (every hub listens). */
  presence: 'presence',
  /** Membership and block changes for a list of users, each confirmed by every hub that heard it. */
  membership: 'membership',
  /** One hub's confirmations of the membership messages it published. */
  confirm: (hubId: string) => `k:${hubId}`,
};
