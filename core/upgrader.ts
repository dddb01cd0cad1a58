import { sameValue, type Datum } from "./datum.js";
import { isDgentError } from "./errors.js";
import type { Router, TierState } from "./router.js";
import { scanTier } from "./tiers.js";

/** When data moves up the lattice on its own (seed: "Auto-Upgrade"). */
export interface UpgraderPolicy {
  /** Run the background loop (default true for a store of several tiers). */
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
  /** Ids left where they were: a different datum holds the id above, or the copy did not verify. */
  readonly kept: readonly string[];
}

const BATCH = 500;

/**
 * Moves datums up the lattice, copy → verify → remove below, so a crash at any step leaves each
 * datum readable in at least one tier (reads de-duplicate by id) and a re-run finishes the move
 * (an identical put is a no-op).
 */
export class Upgrader {
  readonly #router: Router;
  readonly #policy: Required<UpgraderPolicy>;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> | null = null;

  constructor(router: Router, policy: UpgraderPolicy = {}) {
    this.#router = router;
    this.#policy = {
      enabled: policy.enabled ?? router.states.length > 1,
      intervalMs: policy.intervalMs ?? 60_000,
      sizeBytes: policy.sizeBytes ?? 10_000_000,
      ageMs: policy.ageMs ?? 3_600_000,
    };
    router.onRestored = (state) => void this.#serialised(() => this.promoteInto(state)).catch((error: unknown) => this.#report(error));
  }

  get policy(): Readonly<Required<UpgraderPolicy>> {
    return this.#policy;
  }

  start(): void {
    if (!this.#policy.enabled || this.#timer || this.#router.states.length < 2) return;
    this.#timer = setInterval(() => void this.#serialised(() => this.tick()).catch((error: unknown) => this.#report(error)), this.#policy.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
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
      const r = await this.promote(state, target, oversized ? undefined : (d) => d.createdAt < cutoff);
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
      for (const state of this.#router.states) {
        if (state === landing || !state.up || !state.holds || state.adapter.rank >= landing.adapter.rank) continue;
        results.push(await this.promote(state, landing));
      }
      return results;
    });
  }

  /** The availability trigger: a more durable tier is back; what landed below it during the outage moves up. */
  async promoteInto(target: TierState): Promise<PromotionResult[]> {
    const results: PromotionResult[] = [];
    for (const state of this.#router.states) {
      if (state === target || !state.up || !state.holds || state.adapter.rank >= target.adapter.rank) continue;
      results.push(await this.promote(state, target));
    }
    return results;
  }

  /** Moves every datum of `from` (that `filter` accepts) to `to`. */
  async promote(from: TierState, to: TierState, filter?: (d: Datum) => boolean): Promise<PromotionResult> {
    const kept = new Set<string>();
    let moved = 0;
    for (;;) {
      // Collect a batch, then stop scanning before writing: some tiers cannot be written to
      // while a scan of theirs is open. Moved datums are gone from `from`, kept ones are skipped.
      const batch: Datum[] = [];
      for await (const d of scanTier(from.adapter)) {
        if (kept.has(d.id) || (filter && !filter(d))) continue;
        batch.push(d);
        if (batch.length >= BATCH) break;
      }
      if (batch.length === 0) break;
      moved += await this.#move(batch, from, to, kept);
      if (!to.up || !from.up) break;
    }
    if (moved > 0 && from.adapter.stats) {
      const stats = await from.adapter.stats().catch(() => null);
      if (stats && stats.count === 0 && from !== this.#router.states.find((s) => s.adapter === this.#router.landing)) this.#router.markHolds(from, false);
    }
    return { from: from.adapter.name, to: to.adapter.name, moved, kept: [...kept] };
  }

  async #move(batch: readonly Datum[], from: TierState, to: TierState, kept: Set<string>): Promise<number> {
    const events = this.#router.events;
    // Copy (an identical datum already above is a no-op).
    for (const d of batch) {
      try {
        await to.adapter.put(d);
      } catch (error) {
        if (isDgentError(error, "DGENT_CONFLICT")) {
          kept.add(d.id);
          events.warn("upgrader", `datum ${JSON.stringify(d.id)} differs on ${to.adapter.name}; the copy on ${from.adapter.name} stays where it is`, {
            id: d.id,
            from: from.adapter.name,
            to: to.adapter.name,
          });
          continue;
        }
        throw error;
      }
    }
    this.#router.markHolds(to, true);
    let moved = 0;
    for (const d of batch) {
      if (kept.has(d.id)) continue;
      // Verify, then remove below.
      const copy = await to.adapter.get(d.id);
      if (copy === null || !sameValue(copy, d)) {
        kept.add(d.id);
        events.warn("upgrader", `copy of ${JSON.stringify(d.id)} on ${to.adapter.name} did not verify; kept on ${from.adapter.name}`);
        continue;
      }
      await from.adapter.delete(d.id);
      moved++;
      events.promoted({ id: d.id, from: from.adapter.name, to: to.adapter.name });
    }
    return moved;
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
