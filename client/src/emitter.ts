/** A typed event emitter: `on` returns the function that removes the listener. */
export class Emitter<Events extends { [K in keyof Events]: (arg: never) => void }> {
  private readonly listeners: { [K in keyof Events]?: Set<Events[K]> } = {};

  /** Calls `fn` for every `type` event until the returned function is called. */
  on<K extends keyof Events>(type: K, fn: Events[K]): () => void {
    (this.listeners[type] ??= new Set()).add(fn);
    return () => this.off(type, fn);
  }

  /** Calls `fn` for the next `type` event only. */
  once<K extends keyof Events>(type: K, fn: Events[K]): () => void {
    const off = this.on(type, ((arg: never) => {
      off();
      (fn as (a: never) => void)(arg);
    }) as Events[K]);
    return off;
  }

  off<K extends keyof Events>(type: K, fn: Events[K]) {
    this.listeners[type]?.delete(fn);
  }

  protected emit<K extends keyof Events>(type: K, arg: Parameters<Events[K]>[0]) {
    const set = this.listeners[type];
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as (a: typeof arg) => void)(arg);
      } catch (err) {
        // A listener's bug must not stop the others or the client's own bookkeeping; it is reported, not lost.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
