// Just over 400 lines: the page's controller, which wires the views to one session and one socket;
// each view (list, conversation, search, wallet, dialogs) is its own file.
import { type AttachmentMeta, SocketClient, type EventFrame, type PresenceFrame, type ReadFrame, type TypingFrame } from '@hubbub/client';
import { originAllowed } from './origin-check.ts';
import { applyToPreview, countFromTail } from './list-state.ts';
import { Outbox } from './outbox.ts';
import type { Session } from './session.ts';
import type { Connection, Conv, Profile } from './types.ts';
import { w } from './words.ts';

export type { Connection, Conv, Pending, Profile } from './types.ts';

/** The page's state and every action on it; views read it and call `changed()` listeners. */
export class Chat {
  convs = new Map<string, Conv>();
  events = new Map<string, Map<number, EventFrame>>();
  /** The lowest seq loaded per conversation, and whether older history exists. */
  oldest = new Map<string, { seq: number; more: boolean }>();
  profiles = new Map<string, Profile>();
  online = new Set<string>();
  cursors = new Map<string, Map<string, number>>();
  typing = new Map<string, Map<string, number>>();
  open: string | null = null;
  /** The message a search opened the conversation at: marked and scrolled to. */
  highlight: { conv: string; seq: number } | null = null;
  connection: Connection = 'connecting';
  lastClose: number | null = null;
  /** Whether the current connection attempt got as far as `ready` (a refused upgrade never does). */
  private reachedReady = false;
  socket: SocketClient;
  private outbox: Outbox;
  private listeners = new Set<(what: string) => void>();
  private loadingOlder = false;
  private lastTypingSent = 0;

  constructor(
    readonly session: Session,
    wsUrl: string,
  ) {
    this.socket = new SocketClient({
      url: wsUrl,
      // The DOM's WebSocket, passed explicitly: it fits the SDK's WebSocketLike with no cast.
      WebSocket,
      getToken: (req) => this.token(req.refresh),
      // Never give up on a send: it stays queued (same cid) until the hub acks it.
      sendTimeoutMs: 0,
      minDelayMs: 250,
      maxDelayMs: 8000,
    });
    this.outbox = new Outbox({ socket: this.socket, userId: () => this.me.id, changed: () => this.emit('messages') });
    this.socket.on('event', (e) => this.onEvent(e));
    this.socket.on('presence', (f) => this.onPresence(f));
    this.socket.on('typing', (f) => this.onTyping(f));
    this.socket.on('read', (f) => this.onRead(f));
    this.socket.on('conversation', () => void this.loadConvs());
    // The conversation was restored from a backup since we saw it: what we show is from the old
    // log. Drop it; the hub replays the events, and an open conversation reads its page again.
    this.socket.on('rewound', (r) => {
      this.events.delete(r.conv);
      this.oldest.delete(r.conv);
      if (this.open === r.conv) void this.openConv(r.conv);
      else this.emit('convs');
    });
    this.socket.on('connecting', () => (this.reachedReady = false));
    this.socket.on('connected', () => {
      this.reachedReady = true;
      this.connection = 'live';
      this.emit('connection');
      this.markOpenRead();
    });
    this.socket.on('disconnected', (c) => {
      // Kept in the console for bug reports (and the browser suite's failure artifacts).
      console.info(`socket closed ${c.code} ${c.reason}${c.willReconnect ? ', reconnecting' : ''}`);
      this.lastClose = c.code;
      // Presence is only known while connected: the hub sends it again after the reconnect.
      if (this.online.size) {
        this.online.clear();
        this.emit('presence');
      }
      if (c.willReconnect && this.connection !== 'refused') {
        this.connection = 'reconnecting';
        this.emit('connection');
      }
      if (!this.reachedReady && c.willReconnect) void this.checkOrigin();
    });
  }

  /**
   * A connect that closed before `ready` looks the same to a browser whether the network failed,
   * the token was refused or the origin was: the hub says which origins it accepts, and a
   * refused one is told to the person instead of retrying for ever.
   */
  private async checkOrigin() {
    if (this.connection === 'refused') return;
    const allowed = await originAllowed(location.origin).catch(() => true);
    if (allowed || this.socket.connected) return;
    this.connection = 'refused';
    this.socket.close();
    this.emit('connection');
  }

  /**
   * The token for the next connect. The SDK asks for a fresh one (`refresh`) after the hub closed
   * with 4001 or a connect never got `ready` (all a browser sees of a refused upgrade); when the
   * refresh token is refused too the session is over: back to sign-in, and null stops the socket.
   */
  private async token(refresh: boolean): Promise<string | null> {
    try {
      return refresh ? await this.session.refresh() : await this.session.accessToken();
    } catch (err) {
      if (!this.session.signedIn()) {
        this.emit('signedOut');
        return null;
      }
      throw err;
    }
  }

  on(fn: (what: string) => void) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(what: string) {
    for (const fn of this.listeners) fn(what);
  }

  get me() {
    return this.session.user!;
  }

  async start() {
    await this.loadConvs();
    for (const c of this.convs.values()) this.socket.seqs.set(c.id, c.lastSeq);
    // Sends that were never acked before the page closed go out again, with their cids: the hub
    // stores each cid once, so one that did arrive is not stored twice. Refused ones stay, to edit.
    this.outbox.restore((conv) => this.convs.has(conv));
    // Rejects only when the socket gives up (signed out), which `token` has already shown.
    void this.socket.connect().catch(() => undefined);
  }

  stop() {
    this.socket.close();
  }

  async loadConvs() {
    const list = await this.session.api.conversations.list.query();
    const next = new Map<string, Conv>();
    const tails: Promise<void>[] = [];
    for (const c of list) {
      const prev = this.convs.get(c.id);
      // This page saw everything the server counts: its own count and preview stand.
      if (prev && prev.readSeq >= c.readSeq && prev.lastSeq >= c.lastSeq) {
        next.set(c.id, {
          ...c,
          lastSeq: prev.lastSeq,
          readSeq: prev.readSeq,
          unread: prev.unread,
          unreadMore: prev.unreadMore,
          lastMessage: prev.lastMessage,
        });
        continue;
      }
      const conv: Conv = { ...c, lastSeq: Math.max(c.lastSeq, prev?.lastSeq ?? 0) };
      next.set(c.id, conv);
      // The server counts every event after the cursor (a member note too) and previews a
      // message as first written: the newest page of events says what a person would count.
      if (c.unread > 0 || (c.lastMessage && c.lastSeq > c.lastMessage.seq)) {
        const tail = this.session.api.conversations.history.query({ conversationId: c.id, limit: 100 });
        tails.push(tail.then((page) => countFromTail(conv, page.events, this.me.id)));
      }
    }
    await Promise.all(tails);
    this.convs = next;
    await this.loadProfiles(list.flatMap((c) => c.members.map((m) => m.userId)));
    if (this.open && !this.convs.has(this.open)) this.closeConv();
    this.emit('convs');
  }

  async loadProfiles(ids: string[]) {
    const missing = [...new Set(ids)].filter((id) => !this.profiles.has(id));
    const got = await Promise.all(missing.map((userId) => this.session.api.profiles.get.query({ userId }).catch(() => null)));
    for (const p of got) if (p) this.profiles.set(p.id, p);
  }

  /** A person as the subject of a sentence ("You", for the signed-in user). */
  name(userId: string | null) {
    if (!userId) return w.appName;
    if (userId === this.me.id) return w.you;
    return this.profiles.get(userId)?.displayName ?? w.someone;
  }

  /** A person as an object ("you"). */
  nameObject(userId: string | null) {
    return userId === this.me.id ? w.youObject : this.name(userId);
  }

  title(c: Conv) {
    if (c.kind === 'group') return c.title ?? w.group;
    const other = c.members.find((m) => m.userId !== this.me.id);
    return other ? (this.profiles.get(other.userId)?.displayName ?? w.someone) : w.justYou;
  }

  /** For a direct conversation, the other person. */
  peer(c: Conv) {
    return c.kind === 'direct' ? c.members.find((m) => m.userId !== this.me.id)?.userId : undefined;
  }

  closeConv() {
    if (this.open === null) return;
    this.open = null;
    this.emit('open');
  }

  async openConv(id: string) {
    if (!this.convs.has(id)) return;
    this.open = id;
    this.emit('open');
    if (!this.oldest.has(id)) {
      const [page, cursors] = await Promise.all([
        this.session.api.conversations.history.query({ conversationId: id, limit: 50 }),
        this.session.api.conversations.readCursors.query({ conversationId: id }),
      ]);
      this.addEvents(id, page.events);
      const min = page.events.reduce((m, e) => Math.min(m, e.seq), Infinity);
      this.oldest.set(id, { seq: Number.isFinite(min) ? min : page.lastSeq + 1, more: Number.isFinite(min) && min > 1 });
      const map = this.cursorsOf(id);
      for (const [u, s] of Object.entries(cursors)) map.set(u, Math.max(map.get(u) ?? 0, s));
      await this.loadProfiles(page.events.flatMap((e) => (e.from ? [e.from] : [])));
    }
    this.markOpenRead();
    this.emit('messages');
  }

  /**
   * Opens a conversation at one message (a search hit), which is then marked: the events around
   * it are loaded, and those between it and what was already loaded, so scrolling has no hole.
   */
  async openAt(id: string, seq: number) {
    this.highlight = { conv: id, seq };
    if (!this.oldest.has(id)) await this.openConv(id);
    const o = this.oldest.get(id);
    if (!this.events.get(id)?.has(seq) && o && seq < o.seq) {
      const api = this.session.api.conversations.history;
      const page = await api.query({ conversationId: id, aroundSeq: seq, limit: 50 });
      this.addEvents(id, page.events);
      let after = page.events.reduce((m, e) => Math.max(m, e.seq), seq);
      for (let i = 0; i < 20 && after < o.seq - 1; i++) {
        const next = await api.query({ conversationId: id, afterSeq: after, limit: 100 });
        if (!next.events.length) break;
        this.addEvents(id, next.events);
        after = next.events.reduce((m, e) => Math.max(m, e.seq), after);
      }
      const min = page.events.reduce((m, e) => Math.min(m, e.seq), o.seq);
      this.oldest.set(id, { seq: min, more: min > 1 });
      await this.loadProfiles([...(this.events.get(id)?.values() ?? [])].flatMap((e) => (e.from ? [e.from] : [])));
    }
    this.emit('messages');
  }

  /** Pages older history in (scrolling up). Returns how many events came. */
  async loadOlder(): Promise<number> {
    const id = this.open;
    const o = id ? this.oldest.get(id) : undefined;
    if (!id || !o?.more || this.loadingOlder) return 0;
    this.loadingOlder = true;
    try {
      const page = await this.session.api.conversations.history.query({ conversationId: id, beforeSeq: o.seq, limit: 50 });
      this.addEvents(id, page.events);
      const min = page.events.reduce((m, e) => Math.min(m, e.seq), o.seq);
      this.oldest.set(id, { seq: min, more: page.events.length > 0 && min > 1 });
      await this.loadProfiles(page.events.flatMap((e) => (e.from ? [e.from] : [])));
      this.emit('older');
      return page.events.length;
    } finally {
      this.loadingOlder = false;
    }
  }

  private addEvents(conv: string, events: EventFrame[]) {
    let m = this.events.get(conv);
    if (!m) this.events.set(conv, (m = new Map()));
    for (const e of events) m.set(e.seq, e);
  }

  cursorsOf(conv: string) {
    let m = this.cursors.get(conv);
    if (!m) this.cursors.set(conv, (m = new Map()));
    return m;
  }

  /** Marks the open conversation read, while the page is visible (a background tab reads nothing). */
  markOpenRead() {
    const c = this.open ? this.convs.get(this.open) : undefined;
    if (!c || this.connection !== 'live' || document.visibilityState === 'hidden') return;
    if (c.lastSeq > c.readSeq || c.unread) {
      c.readSeq = c.lastSeq;
      c.unread = 0;
      c.unreadMore = false;
      this.socket.markRead(c.id, c.lastSeq);
      this.emit('convs');
    }
  }

  private onEvent(e: EventFrame) {
    this.addEvents(e.conv, [e]);
    const c = this.convs.get(e.conv);
    if (!c) {
      // A conversation we were just added to: its list entry comes with the `conversation` frame.
      void this.loadConvs();
      return;
    }
    c.lastSeq = Math.max(c.lastSeq, e.seq);
    applyToPreview(c, e);
    // A message someone deleted before it was read is no longer waiting to be read.
    if (e.kind === 'delete' && e.from !== this.me.id && e.target !== undefined && e.target > c.readSeq && c.unread) c.unread--;
    if (e.from && e.from !== this.me.id) {
      this.typingOf(e.conv).delete(e.from);
      if (!this.profiles.has(e.from)) void this.loadProfiles([e.from]).then(() => this.emit('messages'));
    }
    if (e.from === this.me.id) this.cursorsOf(e.conv).set(this.me.id, e.seq);
    if (this.open === e.conv) this.markOpenRead();
    const readNow = this.open === e.conv && c.readSeq >= e.seq;
    if (!readNow && e.from === this.me.id) c.readSeq = e.seq;
    else if (!readNow && e.kind === 'message' && !e.redacted) c.unread++;
    if (e.kind === 'member') void this.loadConvs();
    this.emit(this.open === e.conv ? 'messages' : 'convs');
    this.emit('convs');
  }

  private onPresence(f: PresenceFrame) {
    if (f.status === 'online') this.online.add(f.user);
    else this.online.delete(f.user);
    this.emit('presence');
  }

  private onTyping(f: TypingFrame) {
    if (f.user === this.me.id) return;
    this.typingOf(f.conv).set(f.user, Date.now() + 5000);
    this.emit('typing');
    setTimeout(() => this.emit('typing'), 5100);
  }

  private onRead(f: ReadFrame) {
    const m = this.cursorsOf(f.conv);
    m.set(f.user, Math.max(m.get(f.user) ?? 0, f.seq));
    const c = this.convs.get(f.conv);
    if (c && f.user === this.me.id && f.seq > c.readSeq) {
      // Read in another tab.
      c.readSeq = f.seq;
      c.unread = 0;
      c.unreadMore = false;
      this.emit('convs');
    }
    if (this.open === f.conv) this.emit('receipts');
  }

  typingOf(conv: string) {
    let m = this.typing.get(conv);
    if (!m) this.typing.set(conv, (m = new Map()));
    return m;
  }

  /** Who is typing in a conversation now. */
  typers(conv: string) {
    const now = Date.now();
    return [...this.typingOf(conv).entries()].filter(([, until]) => until > now).map(([u]) => u);
  }

  /** Tells the others we are typing, at most every 3 s. */
  typed() {
    if (!this.open || Date.now() - this.lastTypingSent < 3000) return;
    this.lastTypingSent = Date.now();
    this.socket.typing(this.open);
  }

  /** Sends a message from the composer (see Outbox); returns why not, if not. */
  send(body: string): string | null {
    if (!this.open) return w.openFirst;
    const problem = this.outbox.send(this.open, body);
    if (!problem) this.lastTypingSent = 0;
    return problem;
  }

  /** Sends uploaded files as a message of their own in `conv`, through the same outbox as text. */
  sendFiles(conv: string, files: AttachmentMeta[]): string | null {
    const problem = this.outbox.send(conv, '', files);
    if (!problem) this.lastTypingSent = 0;
    return problem;
  }

  retry(cid: string) {
    this.outbox.retry(cid);
  }

  takeBack(cid: string): string {
    return this.outbox.takeBack(cid);
  }

  pendingOf(conv: string) {
    return this.outbox.pendingOf(conv, this.events.get(conv));
  }

  async mute(on: boolean) {
    const c = this.open ? this.convs.get(this.open) : undefined;
    if (!c) return;
    const r = await this.session.api.conversations.mute.mutate({ conversationId: c.id, until: on ? undefined : null });
    c.muted = r.muted;
    this.emit('convs');
    this.emit('open');
  }
}
