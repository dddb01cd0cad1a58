import { walkCausalChain } from "./causal.js";
import { sameValue, type Datum } from "./datum.js";
import { dgentError } from "./errors.js";
import type { PromotionEvent, TierEvent } from "./hooks.js";
import { byDurability } from "./lattice.js";
import { compareNewestFirst } from "./order.js";
import { PendingDeletes } from "./pending-deletes.js";
import type { Adapter, AdapterContext, ResolvedListOptions } from "./protocol.js";
import { conflictError, IdLocks, isOutage, scanTier, unknownDelete, type TierState } from "./tiers.js";

export { isOutage, type TierState } from "./tiers.js";

/** What the router tells the store (which turns it into hooks). */
export interface RouterEvents {
  tierFailed(event: TierEvent): void;
  degraded(event: TierEvent): void;
  restored(event: TierEvent): void;
  promoted(event: PromotionEvent): void;
  warn(unit: string, message: string, details?: Readonly<Record<string, unknown>>): void;
}

export interface RouterOptions {
  /** The tier writes should land on when it is up (default: the most durable). */
  landing?: string;
  /** Where deletes made while a tier is down are journaled (a file path); memory only without it. */
  journalPath?: string;
  /** Re-probe backoff of a failed tier: first delay and cap, in ms (default 250 and 30 000). */
  probeBackoffMs?: { min?: number; max?: number };
}

/**
 * The tiers of one store: writes land on the preferred tier or the next one down that is up, reads
 * consult every tier that may hold data, deletes for a tier that is down are journaled and applied
 * when it returns, a failed tier is re-probed with backoff. With one tier, calls go straight to it.
 */
export class Router {
  readonly all: readonly Adapter[];
  readonly states: readonly TierState[];
  /** The one tier, when there is only one (the fast path). */
  readonly single: Adapter | null;
  readonly preferred: TierState;
  readonly pending: PendingDeletes;
  /** Called when a tier more durable than the landing one comes back (promotion trigger). */
  onRestored: ((state: TierState) => void) | null = null;
  readonly #events: RouterEvents;
  readonly #backoff: { min: number; max: number };
  #context: ((tier: Adapter) => AdapterContext) | null = null;
  #closed = false;
  /** `#readers()` cached until a tier goes up or down or starts or stops holding data. */
  #readersCache: TierState[] | null = null;
  /** Ids a delete or a promotion is working on: the two never interleave on one id. */
  readonly locks = new IdLocks();

  constructor(tiers: readonly Adapter[], events: RouterEvents, options: RouterOptions = {}) {
    if (tiers.length === 0) throw dgentError("DGENT_NO_TIERS", "a store needs at least one tier");
    const names = new Set<string>();
    for (const t of tiers) {
      if (names.has(t.name)) {
        throw dgentError("DGENT_DUPLICATE_NAME", `two tiers are named "${t.name}"; give each tier of a store its own adapter name`);
      }
      names.add(t.name);
      if (t.capabilities.projection && tiers.length > 1) throw dgentError("DGENT_INVALID_OPTIONS", `tier "${t.name}" projects data it does not own (capabilities.projection); give it a store of its own`);
    }
    this.all = Object.freeze(byDurability(tiers));
    this.states = this.all.map((adapter) => ({ adapter, up: false, opened: false, holds: true, failures: 0, lastError: null, timer: null }));
    this.single = this.all.length === 1 ? (this.all[0] as Adapter) : null;
    const preferred = options.landing === undefined ? this.states[0] : this.states.find((s) => s.adapter.name === options.landing);
    if (!preferred) {
      throw dgentError("DGENT_UNKNOWN_ADAPTER", `landing tier "${options.landing}" is not one of this store's tiers (${[...names].join(", ")})`);
    }
    this.preferred = preferred;
    this.pending = new PendingDeletes(options.journalPath);
    this.#events = events;
    this.#backoff = { min: options.probeBackoffMs?.min ?? 250, max: options.probeBackoffMs?.max ?? 30_000 };
  }

  /** Writes land here: the preferred tier if up, else the next one down the lattice that is up. */
  get landing(): Adapter {
    return (this.#landingState() ?? this.preferred).adapter;
  }

  #landingState(): TierState | undefined {
    const states = this.states;
    const start = states.indexOf(this.preferred);
    for (let i = start; i < states.length; i++) if ((states[i] as TierState).up) return states[i];
    return undefined;
  }

  /** Opens every tier; a tier that is out (a retryable error) is marked down and re-probed. */
  async open(context: (tier: Adapter) => AdapterContext): Promise<void> {
    this.#context = context;
    this.pending.load();
    let lastOutage: unknown = null;
    try {
      for (const state of this.states) {
        try {
          await state.adapter.open(context(state.adapter));
          state.opened = true;
          state.up = true;
          this.#readersCache = null;
        } catch (error) {
          if (this.single || !isOutage(error)) throw error;
          lastOutage = error;
          this.#markDown(state, error, false);
        }
      }
    } catch (error) {
      await this.#closeOpened();
      throw error;
    }
    const landing = this.#landingState();
    if (!landing) {
      await this.#closeOpened();
      throw lastOutage instanceof Error ? lastOutage : dgentError("DGENT_UNAVAILABLE", "no tier of this store could be opened");
    }
    for (const state of this.states) {
      if (state.up) await this.pending.drain(state.adapter, () => this.#closed).catch((error: unknown) => this.#markDown(state, error));
    }
    if (!this.single) await this.#refreshHolds();
    if (landing !== this.preferred) {
      this.#events.degraded({ tier: this.preferred.adapter.name, rank: this.preferred.adapter.rank, landing: landing.adapter.name });
    }
    this.#announceVolatile(landing);
  }

  /**
   * Which tiers hold data: an empty tier below the landing one that only this process writes to
   * is skipped by reads until something lands on it, so a fallback tier costs nothing until used.
   */
  async #refreshHolds(): Promise<void> {
    const landing = this.#landingState();
    for (const state of this.states) {
      if (state === landing || !state.up || !state.adapter.stats) continue;
      if (state.adapter.capabilities.multiProcess) continue; // another process may write to it any time
      const stats = await state.adapter.stats().catch(() => null);
      this.markHolds(state, stats === null || stats.count > 0);
    }
    this.#readersCache = null;
  }

  #announceVolatile(landing: TierState): void {
    if (!landing.adapter.capabilities.persistent && this.states.some((s) => s.adapter.capabilities.persistent)) {
      this.#events.warn(
        "router",
        `writes now land on the volatile tier "${landing.adapter.name}": they are lost if the process exits before a durable tier is back`,
        { landing: landing.adapter.name },
      );
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.states) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
    }
    try {
      await this.#closeOpened();
    } finally {
      this.pending.close();
    }
  }

  async #closeOpened(): Promise<void> {
    const results = await Promise.allSettled(this.states.filter((s) => s.opened).map((s) => s.adapter.close()));
    for (const s of this.states) s.opened = false;
    for (const r of results) if (r.status === "rejected") throw r.reason;
  }

  /** Marks a tier down, tells the hooks, and schedules a re-probe with backoff. */
  #markDown(state: TierState, error: unknown, announce = true): void {
    const wasLanding = announce && this.#landingState() === state;
    state.up = false;
    this.#readersCache = null;
    state.failures++;
    state.lastError = error instanceof Error ? error : new Error(String(error));
    const event = { tier: state.adapter.name, rank: state.adapter.rank, error: state.lastError };
    this.#events.tierFailed(event);
    if (wasLanding) {
      const next = this.#landingState();
      this.#events.degraded({ tier: state.adapter.name, rank: state.adapter.rank, landing: next?.adapter.name ?? "none" });
      if (next) this.#announceVolatile(next);
    }
    this.#scheduleProbe(state);
  }

  #scheduleProbe(state: TierState): void {
    if (this.#closed || state.timer) return;
    const delay = Math.min(this.#backoff.max, this.#backoff.min * 2 ** Math.min(state.failures - 1, 20));
    state.timer = setTimeout(() => {
      state.timer = null;
      void this.reprobe(state);
    }, delay * (0.75 + Math.random() * 0.5));
    state.timer.unref();
  }

  /** Probes a tier that is up; one that does not answer is marked down (and re-probed later). */
  async check(state: TierState): Promise<void> {
    if (!state.up || !state.adapter.probe) return;
    if (await state.adapter.probe()) return;
    this.#markDown(state, dgentError("DGENT_UNAVAILABLE", `tier "${state.adapter.name}" did not answer its probe`, { unit: state.adapter.name }));
  }

  /** A tier that failed outside the router (the upgrader's copy): marked down and re-probed. */
  markFailed(state: TierState, error: unknown): void {
    if (state.up) this.#markDown(state, error);
  }

  /**
   * Probes a down tier now; on success applies its journaled deletes and brings it back only when
   * none is pending: the last check and `up = true` are one synchronous step, so every journaled
   * delete reaches the tier before any later write (core/LATTICE.md "Journaled deletes").
   */
  async reprobe(state: TierState): Promise<boolean> {
    if (state.up || this.#closed) return state.up;
    const name = state.adapter.name;
    let resume: (() => void) | null = null;
    try {
      if (!state.opened) await state.adapter.open(this.#context?.(state.adapter));
      if (this.#closed) return (await state.adapter.close().catch(() => undefined), false); // closed meanwhile: close() missed it
      state.opened = true;
      const ok = state.adapter.probe ? await state.adapter.probe() : true;
      if (!ok) throw dgentError("DGENT_UNAVAILABLE", `tier "${name}" did not answer its probe`, { unit: name });
      this.pending.adopt(); // journals of stores that died meanwhile
      for (;;) {
        await this.pending.drain(state.adapter, () => this.#closed);
        if (this.#closed || !this.pending.has(name)) break; // no await from here to `state.up = true`
        resume ??= this.locks.pause(); // more were journaled meanwhile: new deletes wait for the rest
      }
    } catch (error) {
      resume?.();
      state.failures++;
      state.lastError = error instanceof Error ? error : new Error(String(error));
      if (!isOutage(error)) this.#events.warn(state.adapter.name, `re-probe failed: ${state.lastError.message}`);
      this.#scheduleProbe(state);
      return false;
    }
    if (this.#closed) {
      resume?.();
      return false;
    }
    const before = this.#landingState();
    state.up = true;
    state.holds = true;
    resume?.();
    this.#readersCache = null;
    state.failures = 0;
    state.lastError = null;
    this.#events.restored({ tier: state.adapter.name, rank: state.adapter.rank });
    if (before && before.adapter.rank < state.adapter.rank) this.onRestored?.(state);
    return true;
  }

  /** Runs `op` on a tier; an outage marks it down and returns `undefined` instead of throwing. */
  async attempt<T>(state: TierState, op: (a: Adapter) => Promise<T>): Promise<{ value: T } | undefined> {
    try {
      return { value: await op(state.adapter) };
    } catch (error) {
      if (!isOutage(error)) throw error;
      this.#markDown(state, error);
      return undefined;
    }
  }

  /** Records whether a tier may hold data (the upgrader empties and fills tiers). */
  markHolds(state: TierState, holds: boolean): void {
    if (state.holds === holds) return;
    state.holds = holds;
    this.#readersCache = null;
  }

  /** Tiers a read must consult, landing first. */
  readers(): TierState[] {
    return (this.#readersCache ??= this.#computeReaders());
  }

  #computeReaders(): TierState[] {
    const landing = this.#landingState();
    const out: TierState[] = landing ? [landing] : [];
    for (const s of this.states) if (s !== landing && s.up && s.holds) out.push(s);
    return out;
  }

  /** The only tier holding data, when there is exactly one (then its native operations apply). */
  sole(): Adapter | null {
    if (this.single) return this.single;
    const readers = this.readers();
    return readers.length === 1 && this.states.every((s) => s.up || !s.holds) ? (readers[0] as TierState).adapter : null;
  }

  async put(datum: Datum): Promise<string> {
    if (this.single) return this.single.put(datum);
    const landing = this.#landingState();
    for (const state of this.readers()) {
      if (state === landing) continue;
      const found = await this.attempt(state, (a) => a.get(datum.id));
      if (!found || found.value === null) continue;
      if (!sameValue(found.value, datum)) throw conflictError(datum.id, state.adapter.name);
      return datum.id;
    }
    return this.#land((a) => a.put(datum), datum.id);
  }

  async putMany(datums: readonly Datum[]): Promise<string[]> {
    const single = this.single;
    if (single?.putMany) return single.putMany(datums);
    if (single) {
      const ids: string[] = [];
      for (const d of datums) ids.push(await single.put(d));
      return ids;
    }
    if (this.readers().length === 1) {
      return this.#land(async (a) => {
        if (a.putMany) return a.putMany(datums);
        const ids: string[] = [];
        for (const d of datums) ids.push(await a.put(d));
        return ids;
      }, "batch");
    }
    const ids: string[] = [];
    for (const d of datums) ids.push(await this.put(d));
    return ids;
  }

  /** Writes on the landing tier, falling down the lattice while tiers are out. */
  async #land<T>(op: (a: Adapter) => Promise<T>, what: string): Promise<T> {
    let lastError: unknown = null;
    for (let state = this.#landingState(); state; state = this.#landingState()) {
      const done = await this.attempt(state, op);
      if (done) {
        if (!state.holds) this.markHolds(state, true);
        return done.value;
      }
      lastError = state.lastError;
    }
    throw dgentError("DGENT_UNAVAILABLE", `no tier is up to take ${what}`, { cause: lastError });
  }

  async get(id: string): Promise<{ datum: Datum; tier: Adapter } | null> {
    const single = this.single;
    if (single) {
      const datum = await single.get(id);
      return datum === null ? null : { datum, tier: single };
    }
    for (const state of this.readers()) {
      const found = await this.attempt(state, (a) => a.get(id));
      if (found && found.value !== null) return { datum: found.value, tier: state.adapter };
    }
    return null;
  }

  /**
   * Deletes on every tier that is up; journals it for each persistent tier that may hold the id
   * and is down (or failed during the call). `true` when a tier that is up held the id, `false`
   * when no tier can; otherwise the answer depends on a tier that is down: `DGENT_DELETE_UNKNOWN`.
   */
  async delete(id: string): Promise<boolean> {
    if (this.single) return this.single.delete(id);
    const release = await this.locks.lock([id]);
    try {
      let existed = false;
      const tried = new Set<TierState>();
      const failed = new Set<TierState>(); // down now: the delete may or may not have reached it
      for (let progressed = true; progressed; ) { // a tier that comes back meanwhile gets it directly
        progressed = false;
        for (const state of this.states) {
          if (tried.has(state) || !state.up || !state.holds) continue;
          tried.add(state);
          progressed = true;
          const done = await this.attempt(state, (a) => a.delete(id));
          if (done) existed ||= done.value;
          else failed.add(state);
        }
      }
      // No await from here on: the tiers' states cannot change under the decision.
      const unknown = this.states.filter((s) => (!tried.has(s) || failed.has(s)) && !s.up && s.holds && s.adapter.capabilities.persistent);
      if (unknown.length === 0) return existed;
      for (const s of unknown) this.pending.add(s.adapter.name, id);
      if (existed) return true;
      throw unknownDelete(id, unknown.map((s) => s.adapter.name));
    } finally {
      release();
    }
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    const sole = this.sole();
    if (sole) return sole.list(options);
    const byId = new Map<string, Datum>();
    for (const state of this.readers()) {
      const found = await this.attempt(state, (a) => a.list(options));
      for (const d of found?.value ?? []) if (!byId.has(d.id)) byId.set(d.id, d);
    }
    return [...byId.values()].sort(compareNewestFirst).slice(0, options.limit);
  }

  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    const sole = this.sole();
    if (sole?.causalChain) return sole.causalChain(id, maxDepth);
    return walkCausalChain(id, async (next) => (await this.get(next))?.datum ?? null, maxDepth);
  }

  async *scan(): AsyncIterable<Datum> {
    const seen = this.single ? null : new Set<string>();
    for (const state of this.single ? this.states : this.readers()) {
      for await (const d of scanTier(state.adapter)) {
        if (seen) {
          if (seen.has(d.id)) continue;
          seen.add(d.id);
        }
        yield d;
      }
    }
  }

  get events(): RouterEvents {
    return this.#events;
  }
}
