import type { Presence } from './presence.ts';

export class MemoryPresence implements Presence {
  private counts = new Map<string, number>();

  async connected(userId: string, contacts: string[]) {
    const n = (this.counts.get(userId) ?? 0) + 1;
    this.counts.set(userId, n);
    return { first: n === 1, online: await this.online(contacts) };
  }
  async disconnected(userId: string) {
    const n = (this.counts.get(userId) ?? 0) - 1;
    if (n <= 0) this.counts.delete(userId);
    else this.counts.set(userId, n);
    return n <= 0;
  }
  async online(userIds: string[]) {
    return new Set(userIds.filter((u) => this.counts.has(u)));
  }
  onExpired() {}
  async close() {}
}
