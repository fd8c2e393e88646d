import type { Connection } from './connection.ts';
import type { Frame, OwnRead } from './wire.ts';

/**
 * One conversation as this replica sees it: the highest seq delivered in order here, the
 * events that arrived early (another replica's publish overtook an earlier seq), and the local
 * sockets that receive it. Every socket thus sees one order: the seq order.
 */
export class Feed {
  /** Highest seq delivered to local sockets; every seq up to it was delivered, in order. */
  delivered = 0;
  /** The log's epoch as read with the head (a rewind is done with the hubs stopped, so it holds while the feed lives). */
  epoch = 1;
  /** The head the log's last rewind left, if it was ever rewound. */
  restoredSeq: number | undefined;
  isReady = false;
  readonly ready: Promise<void>;
  markReady!: () => void;
  readonly pending = new Map<number, { frame: Frame; acceptedAt: number; read?: OwnRead; reachedAt?: number }>();
  readonly subscribers = new Set<Connection>();
  gapTimer: NodeJS.Timeout | null = null;
  gapAttempts = 0;
  lingerTimer: NodeJS.Timeout | null = null;

  constructor(readonly conv: string) {
    this.ready = new Promise((r) => (this.markReady = r));
  }

  highestPending(): number {
    let max = 0;
    for (const s of this.pending.keys()) if (s > max) max = s;
    return max;
  }
}
