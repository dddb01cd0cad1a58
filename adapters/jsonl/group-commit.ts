/**
 * Syncs quicker than this (ms) are never cut short: a sync also costs the event loop its start
 * and its completion, and overlapping a disk that fast gains less than that.
 */
const MIN_CUT_MS = 0.1;

/**
 * Group commit: every write made before `wait()` is covered by the sync that promise waits for.
 * When no sync is running, one starts at the end of the current job (or after `windowMs`), so
 * puts issued together share it; puts arriving while a sync runs share the next one. Under load
 * batches grow by themselves; a lone writer pays one sync.
 *
 * With `windowMs` 0, two more rules keep the disk and the event loop busy at the same time when
 * many callers put at once (README.md, "Group commit under concurrency"):
 * - Cut: a batch whose writes have kept the disk idle for as long as a sync takes (`#syncMs`,
 *   measured) starts its sync at once, inside `wait()`; the job's later writes queue for the
 *   next one and are made while it runs. When the callers just released took longer than a sync
 *   to write their last batch, the cut comes after half that time, so the two halves alternate.
 * - Merge: when a sync ends and the next batch waits, the next one starts at once if the two
 *   batches' writes took longer than a sync (the callers are the bottleneck: overlap them with
 *   the disk); otherwise it waits for the end of the job (`setImmediate`), so the callers just
 *   released join it instead of waiting one more sync (the disk is the bottleneck: fill it).
 */
export class GroupCommit {
  readonly #sync: (done: (error: Error | null) => void) => void;
  readonly #windowMs: number;
  #next: Batch | null = null;
  #running: Promise<void> | null = null;
  /** How long a sync takes (ms; moving average of the last few); Infinity before the first. */
  #syncMs = Number.POSITIVE_INFINITY;
  /** How long a batch may fill with the disk idle before its sync starts (ms). */
  #cutMs = Number.POSITIVE_INFINITY;

  /** `sync` must make every write issued before it was called durable, then call `done`. */
  constructor(sync: (done: (error: Error | null) => void) => void, windowMs: number) {
    this.#sync = sync;
    this.#windowMs = windowMs;
  }

  /** Resolves after a sync that started after this call; rejects with that sync's error. */
  wait(): Promise<void> {
    const now = performance.now();
    let next = this.#next;
    if (next === null) {
      next = this.#next = new Batch(now);
      if (this.#running === null) {
        next.idle = now;
        this.#schedule();
      }
    } else {
      next.last = now;
      // Cut: the disk has been idle for about a sync's time while this batch filled, or for half
      // the time the callers just released took to write the last batch, when that was longer.
      if (this.#running === null && this.#windowMs === 0 && now - next.idle >= this.#cutMs) this.#run();
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
    // Nothing waits, or the batch was cut and started already (its end schedules the next).
    if (batch === null || this.#running !== null) return;
    this.#next = null;
    this.#running = batch.promise;
    const started = performance.now();
    this.#sync((error) => {
      const now = performance.now();
      const took = now - started;
      this.#syncMs = this.#syncMs === Number.POSITIVE_INFINITY ? took : this.#syncMs + (took - this.#syncMs) / 8;
      this.#running = null;
      const fill = batch.last - batch.first;
      // Callers released together that wrote their last batch in longer than a sync: the next
      // batch starts when half of them wrote, and the other half overlaps its sync.
      // No cut where a sync is quicker than MIN_CUT_MS: one sync per job costs the loop least.
      this.#cutMs = this.#syncMs < MIN_CUT_MS ? Number.POSITIVE_INFINITY : fill > this.#syncMs ? Math.min(this.#syncMs, fill / 2) : this.#syncMs;
      if (error === null) batch.resolve();
      else batch.reject(error);
      const next = this.#next;
      if (next === null) return;
      next.idle = now;
      if (this.#windowMs > 0) this.#schedule();
      else if (fill + (next.last - next.first) < this.#syncMs) setImmediate(this.#run);
      else this.#run();
    });
  };
}

class Batch {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: Error) => void;
  /** When its first and last writes waited (performance.now()). */
  readonly first: number;
  last: number;
  /** Since when it could have been syncing: its first write, or the end of the sync before it. */
  idle = Number.POSITIVE_INFINITY;

  constructor(now: number) {
    this.first = this.last = now;
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Waiters handle the error; this keeps a batch nobody awaits any more from being "unhandled".
    this.promise.catch(() => undefined);
  }
}
