import { cloneDatum, sameValue, type Datum } from "../../core/datum.js";
import { dgentError, isDgentError, type DgentError } from "../../core/errors.js";
import type { CommitResult, DeferredWrite } from "../../core/hooks.js";
import type { ResolvedListOptions } from "../../core/protocol.js";
import { compareNewestFirst } from "../../core/order.js";
import { conflictError } from "../../core/tiers.js";

export const UNIT = "write-behind";

export type Commit = (writes: readonly DeferredWrite[]) => Promise<CommitResult>;

/** A write the tiers refused at flush time, for good (the append-only law): it is dropped. */
export interface Refusal {
  readonly ids: readonly string[];
  readonly error: DgentError;
}

export interface FlushReport {
  /** Datums written by this flush. */
  readonly written: number;
  /** Writes refused for good (conflicts): dropped from the buffer. */
  readonly refused: readonly Refusal[];
  /** Datums kept for the next flush because the tiers failed (e.g. down). */
  readonly kept: number;
  /** The error that made the tiers fail, when `kept > 0`. */
  readonly error?: unknown;
}

export interface Reporter {
  warn(message: string, details?: Readonly<Record<string, unknown>>): void;
}

/**
 * Writes acknowledged but not yet on a tier, as units (one `put`, or one `putMany` kept whole),
 * in the order they were acknowledged. Reads see them; flushes write them in one batch and, when
 * the batch fails, unit by unit so one refused write does not hold back the others.
 */
export class WriteBuffer {
  readonly #units: DeferredWrite[][] = [];
  readonly #byId = new Map<string, DeferredWrite>();
  readonly #reporter: Reporter;
  /** Flushes run one at a time, in order. */
  #chain: Promise<unknown> = Promise.resolve();
  #commit: Commit | null = null;
  counts = { flushes: 0, batches: 0, written: 0, refused: 0, failedFlushes: 0 };
  lastError: unknown = null;
  /** Errors of `afterPut` taps at flush time, not thrown to anyone yet. */
  readonly observerErrors: unknown[] = [];

  constructor(reporter: Reporter) {
    this.#reporter = reporter;
  }

  get size(): number {
    return this.#byId.size;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** A copy of the buffered datum (as stored), or undefined. */
  get(id: string): Datum | undefined {
    const w = this.#byId.get(id);
    return w ? cloneDatum(w.datum) : undefined;
  }

  /**
   * Takes writes over. A different datum under an id already buffered is `DGENT_CONFLICT` at once
   * (nothing buffered); an identical one is a no-op. Returns the unit buffered (empty if none).
   */
  add(writes: readonly DeferredWrite[], commit: Commit, limit: number): DeferredWrite[] {
    this.#commit = commit;
    const fresh = new Map<string, DeferredWrite>();
    for (const w of writes) {
      const id = w.datum.id;
      const prior = this.#byId.get(id) ?? fresh.get(id);
      if (prior) {
        if (!sameValue(prior.datum, w.datum)) throw conflictError(id, UNIT);
        continue;
      }
      fresh.set(id, w);
    }
    if (fresh.size === 0) return [];
    if (this.#byId.size + fresh.size > limit) {
      const cause = this.lastError;
      throw dgentError(
        "DGENT_UNAVAILABLE",
        `the write buffer holds ${this.#byId.size} datums and takes at most ${limit}: flushes are failing or too slow${cause ? ` (${describe(cause)})` : ""}`,
        { unit: UNIT, details: { buffered: this.#byId.size, maxPending: limit }, ...(cause ? { cause } : {}) },
      );
    }
    const unit = [...fresh.values()];
    this.#units.push(unit);
    for (const w of unit) this.#byId.set(w.datum.id, w);
    return unit;
  }

  /** Buffered datums that `list(options)` should see, newest first. */
  merge(listed: readonly Datum[], options: ResolvedListOptions): Datum[] {
    if (this.#byId.size === 0) return listed as Datum[];
    const byId = new Map<string, Datum>();
    for (const d of listed) byId.set(d.id, d);
    let added = false;
    for (const w of this.#byId.values()) {
      const d = w.datum;
      if (byId.has(d.id) || !d.id.startsWith(options.prefix) || !(d.createdAt > options.after)) continue;
      byId.set(d.id, cloneDatum(d));
      added = true;
    }
    if (!added) return listed as Datum[];
    return [...byId.values()].sort(compareNewestFirst).slice(0, options.limit);
  }

  /** Queues a flush of everything buffered when it starts; flushes never overlap. */
  flush(): Promise<FlushReport> {
    const run = this.#chain.then(() => this.#flushOnce());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #flushOnce(): Promise<FlushReport> {
    const commit = this.#commit;
    if (this.#units.length === 0 || !commit) return { written: 0, refused: [], kept: 0 };
    const batch = this.#units.splice(0);
    this.counts.flushes++;
    const all = batch.flat();
    try {
      this.#observed(await commit(all));
      this.#written(all);
      this.counts.batches++;
      return { written: all.length, refused: [], kept: 0 };
    } catch (batchError) {
      // One batch failed: write unit by unit, so a refused write does not hold back the rest.
      let written = 0;
      const refused: Refusal[] = [];
      const kept: DeferredWrite[][] = [];
      let lastError: unknown = batchError;
      for (const unit of batch) {
        try {
          this.#observed(await commit(unit));
          this.#written(unit);
          written += unit.length;
        } catch (error) {
          lastError = error;
          if (isDgentError(error, "DGENT_CONFLICT")) {
            for (const w of unit) this.#byId.delete(w.datum.id);
            refused.push({ ids: unit.map((w) => w.datum.id), error });
          } else {
            kept.push(unit);
          }
        }
      }
      // Kept units go back in front, in their order, ahead of what was buffered meanwhile.
      this.#units.unshift(...kept);
      const keptCount = kept.reduce((n, u) => n + u.length, 0);
      this.counts.refused += refused.reduce((n, r) => n + r.ids.length, 0);
      for (const r of refused) {
        this.#reporter.warn(`a buffered write was refused at flush time and dropped: ${r.error.message}`, { ids: r.ids, code: r.error.code });
      }
      if (keptCount > 0) {
        this.counts.failedFlushes++;
        this.lastError = lastError;
        this.#reporter.warn(`a flush failed; ${keptCount} datums stay buffered for the next one: ${describe(lastError)}`, {
          kept: keptCount,
          code: (lastError as { code?: string }).code,
        });
      }
      return { written, refused, kept: keptCount, ...(keptCount > 0 ? { error: lastError } : {}) };
    }
  }

  /** `afterPut` taps that failed on stored writes: reported, never swallowed, never retried. */
  #observed(result: CommitResult): void {
    for (const error of result.observerErrors) {
      this.observerErrors.push(error);
      this.#reporter.warn(`an afterPut tap failed on a flushed write (the write is stored): ${describe(error)}`, {
        code: (error as { code?: string }).code,
      });
    }
  }

  #written(unit: readonly DeferredWrite[]): void {
    this.counts.written += unit.length;
    for (const w of unit) if (this.#byId.get(w.datum.id) === w) this.#byId.delete(w.datum.id);
    if (this.#byId.size === 0) this.lastError = null;
  }
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
