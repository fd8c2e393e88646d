import { CloseCodes, type CloseReason } from '@hubbub/client/protocol';
import type { ClientFrame } from '../protocol/frames.ts';
import type { DirectBlock, SocketUser, UserControl } from './ports.ts';
import { TokenBucket } from '../limits/token-bucket.ts';

/** The part of a uWS WebSocket the hub uses (so the hub can be driven by anything socket-like). */
export interface SocketLike {
  /** 1 sent, 0 sent but buffered (backpressure), 2 dropped. */
  send(message: string | Uint8Array, isBinary?: boolean): number;
  getBufferedAmount(): number;
  end(code?: number, reason?: string): void;
  /** uWS: sends made inside the callback leave in one write (outside a uWS handler each send is a syscall). */
  cork?(cb: () => void): unknown;
}

/** Where a socket stands in one conversation. */
export interface ConvCursor {
  /** The last seq this socket was sent (everything up to it was sent, in order). */
  last: number;
  /** Live: new events are sent as they arrive. Not live: a catch-up from the store is due or running. */
  live: boolean;
  catching: boolean;
  /** A blocked direct conversation: nothing new may be sent in it (see DirectBlock). */
  blocked?: DirectBlock;
  /** Joined through a membership check, before its `added` message came: that message still sends its frame. */
  adopted?: boolean;
}

/**
 * One open socket and its state. Other files read the state; only the methods here change it.
 */
export class Connection {
  readonly convs = new Map<string, ConvCursor>();
  readonly bucket: TokenBucket;
  /**
   * Conversations this socket named without being known there as a member, while the database
   * is asked: their frames wait here in order, then are handled (or refused) by its answer.
   */
  readonly checking = new Map<string, ClientFrame[]>();
  private isClosed = false;
  /** Frames that arrived before `ready` was sent; handled in order once it is. */
  private frames: ClientFrame[] | null = [];
  /** Waiting for the client's first frame (normally `resume`) before live delivery starts. */
  private hold: NodeJS.Timeout | null = null;
  private strikeCount = 0;
  /** Control messages that arrived before setup applied the login snapshot; null afterwards. */
  private controls: UserControl[] | null = null;
  /** Membership messages for this socket's user heard so far (a membership check compares it before and after). */
  private controlsHeard = 0;
  /** Presence updates of this socket, in order (connected before disconnected). */
  private presenceOp: Promise<unknown> = Promise.resolve();
  private counted = false;
  /** Frames posted this loop turn (Outbox.post); sent together in one corked write. */
  private queued: (string | Uint8Array)[] | null = null;

  constructor(
    readonly id: number,
    readonly user: SocketUser,
    readonly ws: SocketLike,
    private readonly opts: {
      maxBuffered: number;
      ratePerS: number;
      burst: number;
      wire: { framesOut: number };
      onClose: (reason: CloseReason) => void;
    },
    /** The client said at the upgrade that it will send `resume` (`/ws?resume=1`). */
    readonly resumeAnnounced = false,
  ) {
    this.bucket = new TokenBucket(opts.ratePerS, opts.burst);
  }

  get closed() {
    return this.isClosed;
  }
  /** The socket is gone (closed by either side, or about to be ended by the caller): nothing more is sent. */
  markClosed() {
    this.isClosed = true;
    this.endHold();
  }

  /** True while frames are kept for after `ready`. */
  get backlogging() {
    return this.frames !== null;
  }
  /** Keeps a frame that arrived before `ready`; false once frames are handled as they come. */
  keep(f: ClientFrame): boolean {
    if (!this.frames) return false;
    this.frames.push(f);
    return true;
  }
  /** The frames kept so far; from now on frames are handled as they come. */
  takeBacklog(): ClientFrame[] {
    const out = this.frames ?? [];
    this.frames = null;
    return out;
  }

  get holdTimer() {
    return this.hold;
  }
  holdUntil(timer: NodeJS.Timeout) {
    this.endHold();
    this.hold = timer;
  }
  endHold() {
    if (this.hold) clearTimeout(this.hold);
    this.hold = null;
  }

  /** Counts a refused frame; true when the socket has now been refused more often than its burst. */
  strike(): boolean {
    return ++this.strikeCount > this.bucket.capacity;
  }

  /** Queues the control messages heard for this socket's user until setup applies them. */
  queueControls(queue: UserControl[]) {
    this.controls = queue;
  }
  /** Queues one control message if setup has not applied them yet; false when it should be applied now. */
  queueControl(msg: UserControl): boolean {
    if (!this.controls) return false;
    this.controls.push(msg);
    return true;
  }
  /** The next queued control message, for setup to apply in order. */
  nextQueuedControl(): UserControl | undefined {
    return this.controls?.shift();
  }
  stopQueueingControls() {
    this.controls = null;
  }
  get controlVersion() {
    return this.controlsHeard;
  }
  heardControl() {
    this.controlsHeard++;
  }

  get presenceCounted() {
    return this.counted;
  }
  countPresence() {
    this.counted = true;
  }
  /** Runs `step` after this socket's earlier presence updates, so `connected` always precedes `disconnected`. */
  afterPresence(step: () => Promise<unknown>, onError?: (err: unknown) => void) {
    const next = this.presenceOp.then(step);
    this.presenceOp = onError ? next.catch(onError) : next;
  }

  /** Posts a frame for the end of this turn; true when it is the first, so the caller schedules the flush. */
  post(frame: string | Uint8Array): boolean {
    if (this.queued) {
      this.queued.push(frame);
      return false;
    }
    this.queued = [frame];
    return true;
  }

  /**
   * Sends a pre-encoded frame. A socket whose buffer passes its limit is closed with 4009
   * (too slow) rather than slowing the fanout for everyone else; it catches up by resume.
   */
  send(frame: string | Uint8Array): boolean {
    if (this.isClosed) return false;
    // Frames posted earlier this turn are still waiting: this one goes after them.
    if (this.queued) {
      this.queued.push(frame);
      return true;
    }
    return this.write(frame);
  }

  /** Sends whatever was posted this turn: one frame as it is, several in one corked write. */
  flush() {
    const frames = this.queued;
    this.queued = null;
    if (!frames) return;
    if (frames.length === 1) return void this.write(frames[0]!);
    this.batch(() => {
      for (const f of frames) if (!this.write(f)) return;
    });
  }

  private write(frame: string | Uint8Array): boolean {
    if (this.closed) return false;
    const r = this.ws.send(frame, false);
    this.opts.wire.framesOut++;
    // 1: written with nothing buffered, so the buffer size need not be asked for.
    if (r === 1) return true;
    if (r === 2 || this.ws.getBufferedAmount() > this.opts.maxBuffered) {
      this.close('TOO_SLOW', 'send buffer full: reconnect and resume');
      return false;
    }
    return true;
  }

  /**
   * Runs `fn`, whose sends to this socket leave together in one write: for the bursts sent
   * from async code (after a store or Redis reply), where uWS would otherwise make a syscall
   * per frame (a presence snapshot, a catch-up page).
   */
  batch(fn: () => void) {
    if (this.closed || !this.ws.cork) return fn();
    let ran = false;
    try {
      this.ws.cork(() => {
        ran = true;
        fn();
      });
    } catch (err) {
      // cork on a socket uWS has just closed throws before running the callback.
      if (ran) throw err;
    }
  }

  close(reason: CloseReason, text: string) {
    if (this.isClosed) return;
    this.isClosed = true;
    this.opts.onClose(reason);
    try {
      this.ws.end(CloseCodes[reason].code, text);
    } catch {
      // Already closed by the peer: nothing to do.
    }
  }
}
