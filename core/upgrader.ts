import { sameValue, type Datum } from "./datum.js";
import { isDgentError } from "./errors.js";
import { isOutage, type Router, type TierState } from "./router.js";
import { promoteRefs } from "./store-refs.js";
import { deleteIds, putAll, scanTier } from "./tiers.js";

/** When data moves up the lattice on its own (seed: "Auto-Upgrade"). */
export interface UpgraderPolicy {
  /** Run the background loop, and promote at open (default true for a store of several tiers). */
  enabled?: boolean;
  /** How often the loop checks, in ms (default 60 000). The timer never keeps the process alive. */
  intervalMs?: number;
  /** Size trigger: a tier below the top holding more bytes than this moves up (default 10 MB). */
  sizeBytes?: number;
  /** Age trigger: datums older than this (ms) move one tier up (default one hour). */
  ageMs?: number;
}

export interface PromotionResult {
  readonly from: string;
  readonly to: string;
  readonly moved: number;
  /**
   * Ids left where they were: a different datum holds the id above, the upper tier refused the
   * datum, or the copy did not verify. A warning names them.
   */
  readonly kept: readonly string[];
}

/** What set a promotion going (core/LATTICE.md "The upgrader"). */
export type PromotionTrigger = "open" | "availability" | "explicit" | "size" | "age" | "retention";

/** Told each batch a promotion moved (verified above and removed below), with the tier it left. */
export type OnMoved = (moved: readonly Datum[], from: string) => void;

/** The current or last promotion, for `backend()`. */
export interface PromotionProgress {
  readonly running: boolean;
  readonly trigger: PromotionTrigger;
  readonly from: string;
  readonly to: string;
  /** Datums moved so far. */
  readonly moved: number;
  /** Datums left below so far (see `PromotionResult.kept`). */
  readonly kept: number;
  /** Datums the lower tier held when the run started, when it can count them. */
  readonly total: number | null;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  /** Datums moved per second so far. */
  readonly perSecond: number;
}

type Progress = { -readonly [K in keyof PromotionProgress]: PromotionProgress[K] };

/** Datums per move: one batch put above, one batch delete below. */
const BATCH = 1_000;
/** Verification reads in flight at once. */
const VERIFY_CONCURRENCY = 16;

/**
 * Moves datums up the lattice, copy → verify → remove below, so a crash at any step leaves each
 * datum readable in at least one tier (reads de-duplicate by id) and a re-run finishes the move
 * (an identical put is a no-op). Each batch holds its ids against deletes (`Router.lock`) from
 * the re-read below to the remove, so a delete is never undone by a copy.
 */
export class Upgrader {
  readonly #router: Router;
  readonly #policy: Required<UpgraderPolicy>;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> | null = null;
  #stopping = false;
  #progress: Progress | null = null;
  /**
   * Ids the upper tier refused or holds differently, by `<to>\u0000<id>`: background runs skip
   * them (they were announced once); an explicit `upgrade()` tries them again.
   */
  readonly #held = new Set<string>();

  constructor(router: Router, policy: UpgraderPolicy = {}) {
    this.#router = router;
    this.#policy = {
      enabled: policy.enabled ?? router.states.length > 1,
      intervalMs: policy.intervalMs ?? 60_000,
      sizeBytes: policy.sizeBytes ?? 10_000_000,
      ageMs: policy.ageMs ?? 3_600_000,
    };
    router.onRestored = (state) =>
      void this.#serialised(() => this.promoteInto(state, "availability")).catch((error: unknown) => this.#report(error));
  }

  get policy(): Readonly<Required<UpgraderPolicy>> {
    return this.#policy;
  }

  /**
   * Starts the background loop and, when the preferred tier is up, moves up at once what an
   * earlier process left below it (the availability trigger at open: a process that wrote during
   * an outage and died does not leave its datums waiting for the age rule).
   */
  start(): void {
    if (!this.#policy.enabled || this.#timer || this.#router.states.length < 2) return;
    this.#stopping = false;
    this.#timer = setInterval(() => void this.#serialised(() => this.tick()).catch((error: unknown) => this.#report(error)), this.#policy.intervalMs);
    this.#timer.unref();
    const preferred = this.#router.preferred;
    if (preferred.up && this.#below(preferred).length > 0) {
      void this.#serialised(() => this.promoteInto(preferred, "open")).catch((error: unknown) => this.#report(error));
    }
  }

  /** Stops the loop; a promotion in progress stops after its current batch. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#stopping = true;
    await this.#running?.catch(() => undefined);
  }

  /** The current or last promotion (null before the first). */
  progress(): PromotionProgress | null {
    const p = this.#progress;
    if (p === null) return null;
    const seconds = ((p.finishedAt ?? Date.now()) - p.startedAt) / 1_000;
    return { ...p, perSecond: seconds > 0 ? Math.round(p.moved / seconds) : 0 };
  }

  #report(error: unknown): void {
    this.#router.events.warn("upgrader", `promotion stopped: ${error instanceof Error ? error.message : String(error)}`);
  }

  /** One promotion at a time. */
  async #serialised<T>(work: () => Promise<T>): Promise<T> {
    while (this.#running) await this.#running.catch(() => undefined);
    const run = work();
    this.#running = run;
    try {
      return await run;
    } finally {
      this.#running = null;
    }
  }

  /** The next tier up from `state` that is up, if any. */
  #above(state: TierState): TierState | undefined {
    const states = this.#router.states;
    for (let i = states.indexOf(state) - 1; i >= 0; i--) if ((states[i] as TierState).up) return states[i];
    return undefined;
  }

  /** Tiers less durable than `target` that are up and may hold data. */
  #below(target: TierState): TierState[] {
    return this.#router.states.filter((s) => s !== target && s.up && s.holds && s.adapter.rank < target.adapter.rank);
  }

  /** The size and age triggers, once. */
  async tick(now = Date.now()): Promise<PromotionResult[]> {
    const results: PromotionResult[] = [];
    const filled = new Set<TierState>(); // one tier up per tick: what just arrived waits for the next
    for (const state of [...this.#router.states].reverse()) {
      const target = this.#above(state);
      if (!state.up || !state.holds || !target || filled.has(state)) continue;
      const stats = state.adapter.stats ? await state.adapter.stats().catch(() => null) : null;
      const cutoff = now - this.#policy.ageMs;
      const oversized = stats?.bytes !== undefined && stats.bytes > this.#policy.sizeBytes;
      const r = await this.promote(state, target, oversized ? undefined : (d) => d.createdAt < cutoff, oversized ? "size" : "age");
      if (r.moved > 0) filled.add(target);
      if (r.moved || r.kept.length) results.push(r);
    }
    return results;
  }

  /** The explicit trigger: everything below the landing tier moves up to it. */
  async upgradeAll(): Promise<PromotionResult[]> {
    return this.#serialised(async () => {
      const landing = this.#router.states.find((s) => s.adapter === this.#router.landing);
      if (!landing?.up) return [];
      const results: PromotionResult[] = [];
      for (const state of this.#below(landing)) results.push(await this.promote(state, landing, undefined, "explicit"));
      return results;
    });
  }

  /** The availability trigger: a more durable tier is back (or found up at open); what landed below it moves up. */
  async promoteInto(target: TierState, trigger: PromotionTrigger = "availability"): Promise<PromotionResult[]> {
    const results: PromotionResult[] = [];
    for (const state of this.#below(target)) results.push(await this.promote(state, target, undefined, trigger));
    return results;
  }

  /**
   * A retention policy's age rule (core/RETENTION.md): the datums `filter` accepts on every tier
   * below `target` move up to it, one promotion at a time with the upgrader's own runs.
   */
  async promoteMatching(target: TierState, filter: (d: Datum) => boolean, onMoved?: OnMoved): Promise<PromotionResult[]> {
    return this.#serialised(async () => {
      const results: PromotionResult[] = [];
      if (!target.up) return results;
      for (const state of this.#below(target)) results.push(await this.promote(state, target, filter, "retention", onMoved));
      return results;
    });
  }

  /**
   * Moves every datum of `from` (that `filter` accepts) to `to`; when the whole tier moves to the
   * tier refs live on, its refs follow (`promoteRefs`).
   */
  async promote(from: TierState, to: TierState, filter?: (d: Datum) => boolean, trigger: PromotionTrigger = "explicit", onMoved?: OnMoved): Promise<PromotionResult> {
    const result = await this.#promoteDatums(from, to, filter, trigger, onMoved);
    if (filter === undefined && to === this.#router.preferred && from.up && to.up && from.adapter.capabilities.refs) {
      await promoteRefs(from.adapter, to.adapter, { by: "upgrader", at: Date.now() }, (message, details) => this.#router.events.warn("upgrader", message, details));
    }
    return result;
  }

  async #promoteDatums(from: TierState, to: TierState, filter: ((d: Datum) => boolean) | undefined, trigger: PromotionTrigger, onMoved: OnMoved | undefined): Promise<PromotionResult> {
    const kept = new Set<string>();
    const skipHeld = trigger !== "explicit";
    const total = from.adapter.stats ? ((await from.adapter.stats().catch(() => null))?.count ?? null) : null;
    if (total === 0) return { from: from.adapter.name, to: to.adapter.name, moved: 0, kept: [] };
    const progress: Progress = (this.#progress = {
      running: true,
      trigger,
      from: from.adapter.name,
      to: to.adapter.name,
      moved: 0,
      kept: 0,
      total,
      startedAt: Date.now(),
      finishedAt: null,
      perSecond: 0,
    });
    try {
      while (!this.#stopping || trigger === "explicit") {
        // Collect a batch, then stop scanning before writing: some tiers cannot be written to
        // while a scan of theirs is open. Moved datums are gone from `from`, kept ones are skipped.
        const batch: Datum[] = [];
        for await (const d of scanTier(from.adapter)) {
          if (kept.has(d.id) || (filter && !filter(d)) || (skipHeld && this.#held.has(`${to.adapter.name}\u0000${d.id}`))) continue;
          batch.push(d);
          if (batch.length >= BATCH) break;
        }
        if (batch.length === 0 || !to.up || !from.up) break;
        progress.moved += await this.#move(batch, from, to, kept, onMoved);
        progress.kept = kept.size;
      }
    } finally {
      progress.running = false;
      progress.finishedAt = Date.now();
    }
    if (progress.moved > 0 && from.adapter.stats) {
      const stats = await from.adapter.stats().catch(() => null);
      if (stats && stats.count === 0 && from !== this.#router.states.find((s) => s.adapter === this.#router.landing)) this.#router.markHolds(from, false);
    }
    return { from: from.adapter.name, to: to.adapter.name, moved: progress.moved, kept: [...kept] };
  }

  /** One batch: hold the ids, re-read below, copy, verify, remove below. */
  async #move(batch: readonly Datum[], from: TierState, to: TierState, kept: Set<string>, onMoved: OnMoved | undefined): Promise<number> {
    const router = this.#router;
    const release = await router.locks.lock(batch.map((d) => d.id));
    try {
      if (!to.up || !from.up) return 0;
      // Re-read under the lock: a datum deleted since the scan is not copied up.
      const current = (await inParallel(batch, (d) => from.adapter.get(d.id))).filter((d): d is Datum => d !== null);
      const { copied, checked } = await this.#copy(current, from, to, kept);
      if (copied.length === 0) return 0;
      router.markHolds(to, true);
      // Verify: a native batch put that resolved has compared every datum with what the tier
      // holds, in the same atomic statement (the append-only law, checked by the conformance
      // kit); anything else is read back and compared.
      const verified: Datum[] = [];
      const unverified: string[] = [];
      const copies = checked ? null : await this.#guard(to, () => inParallel(copied, (d) => to.adapter.get(d.id)));
      copied.forEach((d, i) => {
        const copy = copies === null ? d : (copies[i] ?? null);
        if (copy !== null && sameValue(copy, d)) verified.push(d);
        else {
          kept.add(d.id);
          unverified.push(d.id);
        }
      });
      if (unverified.length > 0) {
        router.events.warn("upgrader", `${unverified.length} copies on ${to.adapter.name} did not verify; kept on ${from.adapter.name}: ${listIds(unverified)}`, {
          ids: unverified,
          from: from.adapter.name,
          to: to.adapter.name,
        });
      }
      await deleteIds(from.adapter, verified.map((d) => d.id));
      onMoved?.(verified, from.adapter.name);
      for (const d of verified) router.events.promoted({ id: d.id, from: from.adapter.name, to: to.adapter.name });
      return verified.length;
    } finally {
      release();
    }
  }

  /**
   * Copies a batch up in one call. If the upper tier refuses it, datum by datum: a datum whose id
   * holds a different value above (a conflicting put made while the upper tier was down) or that
   * the upper tier refuses stays below, announced by one warning listing the ids; the rest move.
   */
  async #copy(datums: readonly Datum[], from: TierState, to: TierState, kept: Set<string>): Promise<{ copied: Datum[]; checked: boolean }> {
    try {
      await this.#guard(to, () => putAll(to.adapter, datums));
      return { copied: [...datums], checked: to.adapter.capabilities.batch && to.adapter.putMany !== undefined };
    } catch (error) {
      if (isOutage(error)) throw error;
    }
    const copied: Datum[] = [];
    const conflicts: string[] = [];
    const refused: { id: string; reason: string }[] = [];
    for (const d of datums) {
      try {
        await this.#guard(to, () => to.adapter.put(d));
        copied.push(d);
      } catch (error) {
        if (isOutage(error)) throw error;
        if (isDgentError(error, "DGENT_CONFLICT")) conflicts.push(d.id);
        else refused.push({ id: d.id, reason: error instanceof Error ? error.message : String(error) });
        kept.add(d.id);
        this.#held.add(`${to.adapter.name}\u0000${d.id}`);
      }
    }
    const events = this.#router.events;
    const where = { from: from.adapter.name, to: to.adapter.name };
    if (conflicts.length > 0) {
      events.warn(
        "upgrader",
        `${conflicts.length === 1 ? `datum ${listIds(conflicts)} differs` : `${conflicts.length} datums differ`} on ${to.adapter.name}: a different value was put under ${conflicts.length === 1 ? "its id" : "their ids"} while it was down; reads return the value on ${to.adapter.name}, the copy on ${from.adapter.name} stays where it is${conflicts.length === 1 ? "" : `: ${listIds(conflicts)}`}`,
        { ...where, ids: conflicts, reason: "conflict" },
      );
    }
    if (refused.length > 0) {
      events.warn(
        "upgrader",
        `${to.adapter.name} refused ${refused.length === 1 ? "datum" : `${refused.length} datums`} ${listIds(refused.map((r) => r.id))}; ${refused.length === 1 ? "it stays" : "they stay"} on ${from.adapter.name} and every other datum moves on (${refused[0]?.reason})`,
        { ...where, ids: refused.map((r) => r.id), reason: "refused", errors: refused },
      );
    }
    return { copied, checked: false };
  }

  /** Runs a call on the upper tier; an outage there marks it down so the router re-probes it. */
  async #guard<T>(to: TierState, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (error) {
      if (isOutage(error)) this.#router.markFailed(to, error);
      throw error;
    }
  }

  /** Datums waiting below the most durable tier that is up. */
  async pending(): Promise<number> {
    const states = this.#router.states;
    const top = states.find((s) => s.up);
    let n = 0;
    for (const s of states) {
      if (s === top || !s.up || !s.holds || !s.adapter.stats) continue;
      n += (await s.adapter.stats().catch(() => ({ count: 0 }))).count;
    }
    return n;
  }
}

/** `fn` over `items` with at most VERIFY_CONCURRENCY calls in flight; results in order. */
async function inParallel<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(VERIFY_CONCURRENCY, items.length) }, worker));
  return out;
}

/** Ids for a message: all of them up to 20, then a count of the rest (`details.ids` has all). */
function listIds(ids: readonly string[]): string {
  const shown = ids.slice(0, 20).map((id) => JSON.stringify(id)).join(", ");
  return ids.length > 20 ? `${shown} and ${ids.length - 20} more` : shown;
}
