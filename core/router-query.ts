/**
 * Queries over the tiers of a store: a tier with `capabilities.query` answers natively; any other
 * tier (a third-party adapter with the five methods) is answered from `scan()` — or one `list` —
 * and `get`, in O(namespace). Over several tiers holding data, pages are merged in order with the
 * most durable copy of an id kept, which is exact because a cursor is a position in one total
 * order every tier shares.
 */
import type { Datum } from "./datum.js";
import { dgentError } from "./errors.js";
import type { Adapter } from "./protocol.js";
import { compareInOrder, countQuery, evaluateQuery, headerOf, idPageOf, unpaged, type DatumHeader, type IdPage, type ResolvedQuery } from "./query.js";
import type { Router } from "./router.js";
import { deleteIds, scanTier, type TierState } from "./tiers.js";

/** Every datum of a tier without native queries (its `scan`, or one `list` at the largest limit). */
async function everything(tier: Adapter): Promise<Datum[]> {
  const out: Datum[] = [];
  for await (const d of scanTier(tier)) out.push(d);
  return out;
}

/** One page of `q` from one tier. */
export async function tierQuery(tier: Adapter, q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
  if (q.limit === 0) return [];
  if (tier.capabilities.query && tier.query) return tier.query(q);
  return evaluateQuery(q, await everything(tier));
}

/** How many datums of one tier meet `q`. */
export async function tierCount(tier: Adapter, q: ResolvedQuery): Promise<number> {
  if (tier.capabilities.query && tier.count) return tier.count(q);
  return countQuery(q, await everything(tier));
}

/** The datums of `ids` on one tier, in order, `null` where absent. */
export async function tierGetMany(tier: Adapter, ids: readonly string[]): Promise<Array<Datum | null>> {
  if (ids.length === 0) return [];
  if (tier.capabilities.query && tier.getMany) return tier.getMany(ids);
  const out: Array<Datum | null> = new Array<Datum | null>(ids.length).fill(null);
  // Bounded concurrency: a remote tier answers several gets at once, a local one does not mind.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const i = next++;
      out[i] = await tier.get(ids[i] as string);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, ids.length) }, worker));
  return out;
}

/** Deletes what meets `q` on one tier; the ids that were there. */
export async function tierDeleteMany(tier: Adapter, q: ResolvedQuery): Promise<string[]> {
  if (tier.capabilities.query && tier.deleteMany) return tier.deleteMany(q);
  const ids = (await tierQuery(tier, unpaged(q)) as DatumHeader[]).map((d) => d.id);
  return deleteIds(tier, ids);
}

/** The last `n` steps of a chain on one tier, oldest first. */
export async function tierChainTail(tier: Adapter, id: string, n: number): Promise<Datum[]> {
  if (tier.capabilities.query && tier.chainTail) return tier.chainTail(id, n);
  return walkTail(id, (next) => tier.get(next), n, tier.name);
}

/** The last `n` steps of a chain through `get`: never deeper than `n`, so no depth limit applies. */
export async function walkTail(id: string, get: (id: string) => Promise<Datum | null>, n: number, unit = "core"): Promise<Datum[]> {
  const chain: Datum[] = [];
  const seen = new Set<string>();
  let next: string | null = id;
  while (next !== null && chain.length < n) {
    if (seen.has(next)) {
      throw dgentError("DGENT_CAUSAL_CYCLE", `the causal chain of ${JSON.stringify(id)} loops back to ${JSON.stringify(next)}`, { unit, details: { id, repeated: next } });
    }
    seen.add(next);
    const datum = await get(next);
    if (datum === null) break;
    chain.push(datum);
    next = datum.causalParent;
  }
  return chain.reverse();
}

/** One page of `q` over the store's tiers. */
export async function routeQuery(router: Router, q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
  const sole = router.sole();
  if (sole) return tierQuery(sole, q);
  const byId = new Map<string, Datum | DatumHeader>();
  for (const state of router.readers()) {
    const found = await router.attempt(state, (a) => tierQuery(a, q));
    for (const d of found?.value ?? []) if (!byId.has(d.id)) byId.set(d.id, d);
  }
  const merged = [...byId.values()].sort((a, b) => compareInOrder(q.order, a, b)).slice(0, q.limit);
  return q.select === "full" ? (merged as Datum[]) : merged.map(headerOf);
}

const NO_IDS: IdPage = Object.freeze({ ids: [], last: null, expiresAt: null });

/**
 * One ids page of `q` over the store's tiers: a sole tier's `queryIds` where it has one (its
 * promise handed on as it is: no `async` frame of its own on this path).
 */
export function routeIds(router: Router, q: ResolvedQuery): Promise<IdPage> {
  if (q.limit === 0) return Promise.resolve({ ...NO_IDS, ids: [] });
  let sole: ReturnType<Router["sole"]>;
  try {
    sole = router.sole();
  } catch (error) {
    return Promise.reject(error);
  }
  if (sole?.capabilities.query && sole.queryIds) return sole.queryIds(q);
  return routeQuery(router, q).then(idPageOf);
}

/** How many distinct datums of the store meet `q`. */
export async function routeCount(router: Router, q: ResolvedQuery): Promise<number> {
  const sole = router.sole();
  if (sole) return tierCount(sole, q);
  // A datum may sit on two tiers (a promotion in flight): count distinct ids.
  const ids = new Set<string>();
  for (const state of router.readers()) {
    const found = await router.attempt(state, (a) => tierQuery(a, unpaged(q)));
    for (const d of found?.value ?? []) ids.add(d.id);
  }
  return ids.size;
}

/** The datums of `ids` (most durable copy first, as `get`), in order, `null` where none. */
export async function routeGetMany(router: Router, ids: readonly string[]): Promise<Array<Datum | null>> {
  const sole = router.single;
  if (sole) return tierGetMany(sole, ids);
  const out = new Array<Datum | null>(ids.length).fill(null);
  let missing = ids.map((_, i) => i);
  for (const state of router.readers()) {
    if (missing.length === 0) break;
    const found = await router.attempt(state, (a) => tierGetMany(a, missing.map((i) => ids[i] as string)));
    if (!found) continue;
    found.value.forEach((d, k) => {
      if (d !== null) out[missing[k] as number] = d;
    });
    missing = missing.filter((i) => out[i] === null);
  }
  return out;
}

/**
 * Deletes every datum that meets `q`: natively (one transaction where the tier has them) when
 * one tier holds the data, else id by id through the router's delete, which journals the delete
 * for a tier that is down. Returns the ids that were deleted.
 */
export async function routeDeleteMany(router: Router, q: ResolvedQuery): Promise<string[]> {
  if (router.single) return tierDeleteMany(router.single, q);
  const ids = new Set<string>();
  for (const state of router.readers()) {
    const found = await router.attempt(state, (a) => tierQuery(a, unpaged(q)));
    for (const d of found?.value ?? []) ids.add(d.id);
  }
  const deleted: string[] = [];
  for (const id of ids) if (await router.delete(id)) deleted.push(id);
  return deleted;
}

/**
 * `delete` for many ids at once: one `deleteIds` call per tier that is up (one statement or
 * transaction where the tier has it), journaled for each persistent tier that may hold them and
 * is down or failed during the call, with the ids held against promotions as `delete` holds them.
 * Resolves to the ids a tier that is up held; an id whose answer depends on a tier that is down
 * is journaled and left out (not an error, unlike `delete`'s `DGENT_DELETE_UNKNOWN`).
 */
export async function routeDeleteIds(router: Router, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  if (router.single) return deleteIds(router.single, ids);
  const release = await router.locks.lock(ids);
  try {
    const existed = new Set<string>();
    const tried = new Set<TierState>();
    const failed = new Set<TierState>();
    for (let progressed = true; progressed; ) { // a tier that comes back meanwhile gets it directly
      progressed = false;
      for (const state of router.states) {
        if (tried.has(state) || !state.up || !state.holds) continue;
        tried.add(state);
        progressed = true;
        const done = await router.attempt(state, (a) => deleteIds(a, ids));
        if (done) for (const id of done.value) existed.add(id);
        else failed.add(state);
      }
    }
    const unknown = router.states.filter((s) => (!tried.has(s) || failed.has(s)) && !s.up && s.holds && s.adapter.capabilities.persistent);
    for (const s of unknown) for (const id of ids) router.pending.add(s.adapter.name, id);
    return ids.filter((id) => existed.has(id));
  } finally {
    release();
  }
}

/** The last `n` steps of a chain over the store's tiers. */
export async function routeChainTail(router: Router, id: string, n: number): Promise<Datum[]> {
  const sole = router.sole();
  if (sole) return tierChainTail(sole, id, n);
  return walkTail(id, async (next) => (await router.get(next))?.datum ?? null, n);
}
