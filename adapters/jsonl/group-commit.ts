/**
 * Group commit: every write made before `wait()` is covered by the sync that promise waits for.
 * When no sync is running, one starts at the end of the current job (or after `windowMs`), so
 * puts issued together share it; puts arriving while a sync runs share the next one. Under load
 * batches grow by themselves; a lone writer pays one sync.
 */
export class GroupCommit {
  readonly #sync: (done: (error: Error | null) => void) => void;
  readonly #windowMs: number;
  #next: Batch | null = null;
  #running: Promise<void> | null = null;

  /** `sync` must make every write issued before it was called durable, then call `done`. */
  constructor(sync: (done: (error: Error | null) => void) => void, windowMs: number) {
    this.#sync = sync;
    this.#windowMs = windowMs;
  }

  /** Resolves after a sync that started after this call; rejects with that sync's error. */
  wait(): Promise<void> {
    let next = this.#next;
    if (next === null) {
      next = this.#next = new Batch();
      if (this.#running === null) this.#schedule();
    }
    return next.promise;
  }

  /** Resolves when no sync is pending or running (errors are the waiters' to see). */
  async drain(): Promise<void> {
    for (;;) {
      const pending = this.#next?.promise ?? this.#running;
      if (pending === null) return;
      await pending.catch(() => undefined);
    }
  }

  #schedule(): void {
    if (this.#windowMs > 0) setTimeout(this.#run, this.#windowMs);
    else queueMicrotask(this.#run);
  }

  readonly #run = (): void => {
    const batch = this.#next;
    if (batch === null) return;
    this.#next = null;
    this.#running = batch.promise;
    this.#sync((error) => {
      this.#running = null;
      if (error === null) batch.resolve();
      else batch.reject(error);
      if (this.#next !== null) this.#schedule();
    });
  };
}

class Batch {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: Error) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Waiters handle the error; this keeps a batch nobody awaits any more from being "unhandled".
    this.promise.catch(() => undefined);
  }
}
