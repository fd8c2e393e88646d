/**
 * Presence across every device of a user on every replica: online while any socket
 * is open anywhere, offline within seconds after the last closes or its replica dies.
 * In memory for one replica (presence.memory.ts); Redis across replicas (presence.redis.ts).
 */
export interface Presence {
  /**
   * Counts a socket: `first` when this made the user online (the first socket anywhere), and
   * which of `contacts` are online now (the snapshot a new socket is sent), in one call.
   */
  connected(userId: string, contacts: string[]): Promise<{ first: boolean; online: Set<string> }>;
  /** Uncounts a socket; true when this made the user offline (the last socket anywhere). */
  disconnected(userId: string): Promise<boolean>;
  /** Users among `userIds` who are online. */
  online(userIds: string[]): Promise<Set<string>>;
  /** Called for users who went offline because their replica stopped refreshing its presence. */
  onExpired(handler: (userId: string) => void): void;
  close(): Promise<void>;
}
