/**
 * Retention policies (core/RETENTION.md): which datums go after N days, which move to a more
 * durable tier after N days (the upgrader's age rule, per policy), which are kept forever. `plan`
 * reads and changes nothing; `apply` deletes in batches and moves through the upgrader
 * (copy → verify → remove below). Both classify every datum with the same function and the same
 * `now`, so on an unchanged store they agree exactly.
 */
import type { Datum } from "./datum.js";
import { dgentError, isDgentError } from "./errors.js";
import type { StoreHooks } from "./hooks.js";
export type { RetentionEvent } from "./hooks.js";
import { matchesQuery, resolveQuery, type ResolvedQuery, type Where } from "./query.js";
import type { Router, TierState } from "./router.js";
import { routeDeleteIds, routeGetMany } from "./router-query.js";
import { scanTier } from "./tiers.js";
import type { Upgrader } from "./upgrader.js";

/**
 * One policy. It governs the datums it matches (an id `prefix` and/or `where` tag conditions, as
 * in queries; neither matches every datum) and says what happens to them: kept forever, deleted
 * `deleteAfterMs` after `createdAt`, and/or moved up to the tier `moveTo` `moveAfterMs` after it.
 */
export interface RetentionPolicy {
  /** Names the policy in plans, results, hooks and errors (default `policy-<n>`, n from 1). */
  readonly name?: string;
  /** Only ids starting with this string. */
  readonly prefix?: string;
  /** Only datums whose metadata meets every condition (QUERIES.md "Filters"). */
  readonly where?: Where;
  /** Never deleted or moved by retention; exempts its datums from every other policy. */
  readonly keepForever?: boolean;
  /** Deleted once older than this (ms since `createdAt`). */
  readonly deleteAfterMs?: number;
  /** The tier (adapter name) datums move up to once older than `moveAfterMs`. */
  readonly moveTo?: string;
  /** Moved up to `moveTo` once older than this (ms since `createdAt`). */
  readonly moveAfterMs?: number;
}

/** A policy after validation. */
export interface ResolvedRetentionPolicy {
  readonly name: string;
  readonly index: number;
  readonly query: ResolvedQuery;
  readonly keepForever: boolean;
  readonly deleteAfterMs: number | null;
  readonly moveTo: string | null;
  readonly moveAfterMs: number | null;
}

export interface RetentionOptions {
  /** The policies (default: the store's own, from `createStore({ retention })` or the config file). */
  policies?: readonly RetentionPolicy[];
  /** The time ages are measured at, in epoch ms (default `Date.now()`): the injectable clock. */
  now?: number;
  /** Datums per delete batch (default 1 000, at most 10 000). */
  batchSize?: number;
}

/** A number of datums and the bytes of their contents. */
export interface Amount {
  readonly count: number;
  readonly bytes: number;
}

/** What one policy governs and does. */
export interface PolicyReport {
  readonly name: string;
  readonly action: "keep" | "delete" | "move" | "move+delete";
  /** Distinct datums this policy governs (after precedence), whatever their age. */
  readonly matched: Amount;
  /** Plan: what would be deleted. Apply: what was deleted. */
  readonly delete: Amount;
  /**
   * Plan: the copies that would move up to `moveTo` (a datum on two tiers below it counts twice,
   * as the upgrader moves each copy). Apply: what moved.
   */
  readonly move: Amount & { readonly to: string | null };
  /** Apply only: ids left below because the upper tier holds a different datum or refused it. */
  readonly kept: readonly string[];
}

export interface RetentionReport {
  /** True for `plan` (nothing changed). */
  readonly dryRun: boolean;
  /** The time ages were measured at. */
  readonly now: number;
  readonly policies: readonly PolicyReport[];
  /** Datums no policy matches (left alone). */
  readonly unmatched: Amount;
  readonly total: { readonly delete: Amount; readonly move: Amount };
  /** Tiers that were down: what only they hold was not seen (deletes for them are journaled). */
  readonly tiersDown: readonly string[];
}

/** What `backend()` reports of retention in this store since it was created. */
export interface RetentionTotals {
  readonly deleted: number;
  readonly deletedBytes: number;
  readonly moved: number;
  readonly movedBytes: number;
  /** When the last `applyRetention` finished (epoch ms, the real clock), `null` before the first. */
  readonly lastAppliedAt: number | null;
}

export type MutableRetentionTotals = { -readonly [K in keyof RetentionTotals]: RetentionTotals[K] };

export function emptyRetentionTotals(): MutableRetentionTotals {
  return { deleted: 0, deletedBytes: 0, moved: 0, movedBytes: 0, lastAppliedAt: null };
}

/** What the store lends retention. */
export interface RetentionHost {
  ready(): Promise<void>;
  readonly router: Router;
  readonly upgrader: Upgrader;
  readonly hooks: Readonly<StoreHooks>;
  readonly totals: MutableRetentionTotals;
  readonly policies: readonly ResolvedRetentionPolicy[];
}

const DEFAULT_BATCH = 1_000;
const MAX_BATCH = 10_000;
const POLICY_KEYS = new Set(["name", "prefix", "where", "keepForever", "deleteAfterMs", "moveTo", "moveAfterMs"]);

function invalid(field: string, message: string): never {
  throw dgentError("DGENT_INVALID_OPTIONS", `${field}: ${message}`, { unit: "retention", details: { field } });
}

function duration(field: string, value: unknown): number | null {
  if (value === undefined) return null;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) invalid(field, `must be a whole number of milliseconds ≥ 0, got ${JSON.stringify(value) ?? String(value)}`);
  return value;
}

/**
 * Checks policies and resolves their filters. `tiers` are the store's tier names, most durable
 * first: `moveTo` must name one. Bad input is `DGENT_INVALID_OPTIONS` with `details.field`
 * (`retention[2].moveTo`).
 */
export function resolveRetentionPolicies(policies: readonly RetentionPolicy[], tiers: readonly string[]): ResolvedRetentionPolicy[] {
  if (!Array.isArray(policies)) invalid("retention", "must be a list of policies");
  const names = new Set<string>();
  return policies.map((raw: unknown, index) => {
    const at = `retention[${index}]`;
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) invalid(at, "must be an object");
    const p = raw as Record<string, unknown>;
    for (const key of Object.keys(p)) if (!POLICY_KEYS.has(key)) invalid(`${at}.${key}`, `unknown key; use one of ${[...POLICY_KEYS].join(", ")}`);
    const name = p.name === undefined ? `policy-${index + 1}` : p.name;
    if (typeof name !== "string" || name === "") invalid(`${at}.name`, "must be a non-empty string");
    if (names.has(name)) invalid(`${at}.name`, `two policies are named ${JSON.stringify(name)}; give each its own name`);
    names.add(name);
    let query: ResolvedQuery;
    try {
      query = resolveQuery({ ...(p.prefix !== undefined ? { prefix: p.prefix as string } : {}), ...(p.where !== undefined ? { where: p.where as Where } : {}) }, { paged: false });
    } catch (error) {
      if (!isDgentError(error, "DGENT_INVALID_QUERY")) throw error;
      const field = String(error.details.field ?? "");
      throw dgentError("DGENT_INVALID_OPTIONS", `${at}.${error.message}`, { unit: "retention", cause: error, details: { field: `${at}.${field}` } });
    }
    if (p.keepForever !== undefined && p.keepForever !== true) invalid(`${at}.keepForever`, "must be true when given (leave it out otherwise)");
    const keepForever = p.keepForever === true;
    const deleteAfterMs = duration(`${at}.deleteAfterMs`, p.deleteAfterMs);
    const moveAfterMs = duration(`${at}.moveAfterMs`, p.moveAfterMs);
    const moveTo = p.moveTo === undefined ? null : p.moveTo;
    if (moveTo !== null && (typeof moveTo !== "string" || !tiers.includes(moveTo))) {
      invalid(`${at}.moveTo`, `${JSON.stringify(moveTo)} is not one of this store's tiers (${tiers.join(", ")})`);
    }
    if ((moveTo === null) !== (moveAfterMs === null)) invalid(moveTo === null ? `${at}.moveTo` : `${at}.moveAfterMs`, "moveTo and moveAfterMs go together: name the tier and the age");
    if (keepForever && (deleteAfterMs !== null || moveTo !== null)) invalid(`${at}.keepForever`, "a keepForever policy neither deletes nor moves; put deleteAfterMs/moveTo in a policy of their own");
    if (!keepForever && deleteAfterMs === null && moveTo === null) invalid(at, "says nothing to do: give keepForever: true, deleteAfterMs, or moveTo with moveAfterMs");
    if (deleteAfterMs !== null && moveAfterMs !== null && moveAfterMs >= deleteAfterMs) {
      invalid(`${at}.moveAfterMs`, `is ${moveAfterMs} ms, not less than deleteAfterMs (${deleteAfterMs} ms): the datums would be deleted before they move`);
    }
    return { name, index, query, keepForever, deleteAfterMs, moveTo: moveTo as string | null, moveAfterMs };
  });
}

/** What retention does with one datum at `now`. */
interface Verdict {
  /** The governing policy, or null when none matches. */
  readonly policy: ResolvedRetentionPolicy | null;
  readonly remove: boolean;
  readonly move: boolean;
}

const UNMATCHED: Verdict = { policy: null, remove: false, move: false };

/**
 * The precedence rule: a datum matched by any keepForever policy is governed by the first of
 * them (keep forever wins); otherwise by the first policy, in the order listed, that matches it.
 */
export function classify(policies: readonly ResolvedRetentionPolicy[], datum: Datum | Omit<Datum, "content">, now: number): Verdict {
  let first: ResolvedRetentionPolicy | null = null;
  for (const p of policies) {
    if (!matchesQuery(p.query, datum)) continue;
    if (p.keepForever) return { policy: p, remove: false, move: false };
    first ??= p;
  }
  if (first === null) return UNMATCHED;
  const age = now - datum.createdAt;
  const remove = first.deleteAfterMs !== null && age > first.deleteAfterMs;
  const move = !remove && first.moveAfterMs !== null && age > first.moveAfterMs;
  return { policy: first, remove, move };
}

function resolvedOptions(host: RetentionHost, options: RetentionOptions): { policies: readonly ResolvedRetentionPolicy[]; now: number; batch: number } {
  if (options === null || typeof options !== "object") invalid("options", "must be an object");
  const policies = options.policies === undefined ? host.policies : resolveRetentionPolicies(options.policies, host.router.all.map((t) => t.name));
  const now = options.now ?? Date.now();
  if (typeof now !== "number" || !Number.isFinite(now)) invalid("now", `must be epoch milliseconds, got ${String(now)}`);
  const batch = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) invalid("batchSize", `must be an integer from 1 to ${MAX_BATCH}, got ${String(batch)}`);
  return { policies, now, batch };
}

interface Tally {
  matched: { count: number; bytes: number };
  delete: { count: number; bytes: number };
  move: { count: number; bytes: number };
  kept: string[];
}

const tally = (): Tally => ({ matched: { count: 0, bytes: 0 }, delete: { count: 0, bytes: 0 }, move: { count: 0, bytes: 0 }, kept: [] });

/** A tier state by adapter name. */
function stateOf(router: Router, name: string): TierState {
  return router.states.find((s) => s.adapter.name === name) as TierState;
}

/** True when a datum on `on` would move up to the tier `to` (it is less durable and not that tier). */
function below(on: TierState, to: TierState): boolean {
  return on !== to && on.adapter.rank < to.adapter.rank;
}

/**
 * One pass over every tier that is up: per policy, what it governs and what is due, and (for
 * `apply`) the ids due for deletion, per policy, in the order met.
 */
async function survey(host: RetentionHost, policies: readonly ResolvedRetentionPolicy[], now: number, collect: boolean) {
  const router = host.router;
  const tallies = policies.map(tally);
  const unmatched = { count: 0, bytes: 0 };
  const doomed: string[][] = policies.map(() => []);
  const states = router.states.filter((s) => s.up && s.holds);
  const seen = states.length > 1 ? new Set<string>() : null;
  const targets = policies.map((p) => (p.moveTo === null ? null : stateOf(router, p.moveTo)));
  for (const state of states) {
    for await (const d of scanTier(state.adapter)) {
      const v = classify(policies, d, now);
      const bytes = d.content.byteLength;
      const first = seen === null || !seen.has(d.id);
      if (first) seen?.add(d.id);
      if (v.policy === null) {
        if (first) {
          unmatched.count++;
          unmatched.bytes += bytes;
        }
        continue;
      }
      const t = tallies[v.policy.index] as Tally;
      if (first) {
        t.matched.count++;
        t.matched.bytes += bytes;
        if (v.remove) {
          t.delete.count++;
          t.delete.bytes += bytes;
          if (collect) (doomed[v.policy.index] as string[]).push(d.id);
        }
      }
      const target = targets[v.policy.index];
      if (v.move && target && target.up && below(state, target)) {
        t.move.count++;
        t.move.bytes += bytes;
      }
    }
  }
  const tiersDown = router.states.filter((s) => !s.up && s.holds).map((s) => s.adapter.name);
  return { tallies, unmatched, doomed, tiersDown };
}

function report(dryRun: boolean, now: number, policies: readonly ResolvedRetentionPolicy[], tallies: readonly Tally[], unmatched: Amount, tiersDown: readonly string[]): RetentionReport {
  const sum = (pick: (t: Tally) => { count: number; bytes: number }): Amount => tallies.reduce((a, t) => ({ count: a.count + pick(t).count, bytes: a.bytes + pick(t).bytes }), { count: 0, bytes: 0 });
  return {
    dryRun,
    now,
    policies: policies.map((p, i) => {
      const t = tallies[i] as Tally;
      return {
        name: p.name,
        action: p.keepForever ? "keep" : p.moveTo !== null && p.deleteAfterMs !== null ? "move+delete" : p.moveTo !== null ? "move" : "delete",
        matched: { ...t.matched },
        delete: { ...t.delete },
        move: { ...t.move, to: p.moveTo },
        kept: [...t.kept],
      };
    }),
    unmatched: { ...unmatched },
    total: { delete: sum((t) => t.delete), move: sum((t) => t.move) },
    tiersDown: [...tiersDown],
  };
}

/** What applying the policies at `now` would delete and move, per policy; changes nothing. */
export async function planRetentionOn(host: RetentionHost, options: RetentionOptions = {}): Promise<RetentionReport> {
  const { policies, now } = resolvedOptions(host, options);
  await host.ready();
  const { tallies, unmatched, tiersDown } = await survey(host, policies, now, false);
  return report(true, now, policies, tallies, unmatched, tiersDown);
}

/**
 * Applies the policies at `now`: deletes what is due (batch by batch, each batch re-read and
 * re-checked first, so a datum put again since the survey is judged by what is stored now), then
 * moves what is due up to its tier through the upgrader. Each batch fires the `retained` hook
 * and is added to the store's `backend().retention`. Idempotent: a second run at the same `now`
 * finds nothing due; a run cut short (a crash) is finished by the next.
 */
export async function applyRetentionOn(host: RetentionHost, options: RetentionOptions = {}): Promise<RetentionReport> {
  const { policies, now, batch } = resolvedOptions(host, options);
  await host.ready();
  const { tallies: surveyed, unmatched, doomed, tiersDown } = await survey(host, policies, now, true);
  const done = policies.map((_, i) => ({ ...tally(), matched: (surveyed[i] as Tally).matched }));
  const { router, hooks, totals } = host;
  for (const p of policies) {
    const ids = doomed[p.index] as string[];
    const t = done[p.index] as Tally;
    for (let i = 0; i < ids.length; i += batch) {
      const slice = ids.slice(i, i + batch);
      // Re-read and re-judge: only what is still stored and still due under this policy goes.
      const current = await routeGetMany(router, slice);
      const due = new Map<string, number>();
      current.forEach((d) => {
        if (d === null) return;
        const v = classify(policies, d, now);
        if (v.policy === p && v.remove) due.set(d.id, d.content.byteLength);
      });
      const gone = await deleteBatch(host, [...due.keys()]);
      if (gone.length === 0) continue;
      let bytes = 0;
      for (const id of gone) bytes += due.get(id) ?? 0;
      t.delete.count += gone.length;
      t.delete.bytes += bytes;
      totals.deleted += gone.length;
      totals.deletedBytes += bytes;
      if (hooks.retained.taps.length) hooks.retained.call({ policy: p.name, action: "deleted", ids: gone, bytes });
    }
  }
  for (const p of policies) {
    if (p.moveTo === null) continue;
    const target = stateOf(router, p.moveTo);
    if (!target.up) continue;
    const t = done[p.index] as Tally;
    const filter = (d: Datum) => {
      const v = classify(policies, d, now);
      return v.policy === p && v.move;
    };
    const results = await host.upgrader.promoteMatching(target, filter, (moved, from) => {
      let bytes = 0;
      for (const d of moved) bytes += d.content.byteLength;
      t.move.count += moved.length;
      t.move.bytes += bytes;
      totals.moved += moved.length;
      totals.movedBytes += bytes;
      if (hooks.retained.taps.length) hooks.retained.call({ policy: p.name, action: "moved", ids: moved.map((d) => d.id), bytes, from, to: target.adapter.name });
    });
    for (const r of results) t.kept.push(...r.kept);
  }
  totals.lastAppliedAt = Date.now();
  return report(false, now, policies, done, unmatched, tiersDown);
}

/**
 * Deletes one batch; the ids that existed. With a `beforeDelete`/`afterDelete` tap, id by id
 * through them (as `deleteMany` does); otherwise one call per tier (`routeDeleteIds`: one
 * statement or transaction where the tier has it), journaled for a tier that is down.
 */
async function deleteBatch(host: RetentionHost, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const { router, hooks } = host;
  const hooked = hooks.beforeDelete.taps.length > 0 || hooks.afterDelete.taps.length > 0;
  if (!hooked) return routeDeleteIds(router, ids);
  const gone: string[] = [];
  for (const id of ids) {
    if (hooks.beforeDelete.taps.length) await hooks.beforeDelete.promise(id);
    // An answer that depends on a tier that is down: journaled for it, and not counted here.
    const existed = await router.delete(id).catch((error: unknown) => {
      if (isDgentError(error, "DGENT_DELETE_UNKNOWN")) return false;
      throw error;
    });
    if (hooks.afterDelete.taps.length) await hooks.afterDelete.promise(id, existed);
    if (existed) gone.push(id);
  }
  return gone;
}
