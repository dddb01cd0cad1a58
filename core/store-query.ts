/**
 * The store's query operations (QUERIES.md): `query`, `count`, `getMany`, `deleteMany`,
 * `children` and a chain's tail, with the store's hooks around them. The tiers answer through
 * core/router-query.ts.
 */
import { assertId, type Datum } from "./datum.js";
import { dgentError } from "./errors.js";
import { readDatums } from "./hooks.js";
import {
  encodeCursor,
  filtersNothing,
  MAX_GET_MANY,
  resolveQuery,
  unpaged,
  type DatumHeader,
  type QueryFilter,
  type QueryOptions,
  type QueryPage,
  type ResolvedQuery,
  type Select,
  type Selected,
} from "./query.js";
import { routeChainTail, routeCount, routeDeleteMany, routeGetMany, routeIds, routeQuery } from "./router-query.js";
import type { RefsHost } from "./store-refs.js";
import { applyRetentionOn, planRetentionOn, type ResolvedRetentionPolicy, type RetentionHost, type RetentionOptions, type RetentionReport } from "./retention.js";

/** `list` options that make it a query: everything but `cursor` and `select`. */
export type ListQuery = Omit<QueryOptions, "cursor" | "select">;

const PLAIN_LIST = new Set(["prefix", "after", "limit"]);

/** True when `list` options go beyond a plain list's `prefix`, `after` and `limit`. */
export function isQueryList(options: unknown): options is ListQuery {
  if (options === null || typeof options !== "object") return false;
  for (const key in options) if (!PLAIN_LIST.has(key)) return true;
  return false;
}

/** Options of `deleteMany`: filters, or `all: true` to empty the namespace. */
export interface DeleteManyOptions extends QueryFilter {
  /** Required to delete with no filter at all (every datum of the namespace). */
  all?: boolean;
}

/** The query operations of a `Store`, and retention (the store supplies the hosts). */
export abstract class StoreQueries {
  protected abstract get queryHost(): RefsHost;
  protected abstract get retentionHost(): RetentionHost;

  /** One page of datums (or headers, or ids) meeting filters, in either order, with a cursor to the next (QUERIES.md). */
  query<S extends Select = "full">(options: QueryOptions & { select?: S } = {}): Promise<QueryPage<Selected<S>>> {
    return runQuery(this.queryHost, options);
  }

  /** How many datums meet the filters. */
  count(filter: QueryFilter = {}): Promise<number> {
    return runCount(this.queryHost, filter);
  }

  /** The datums of `ids` in the same order, `null` where there is none. */
  getMany(ids: readonly string[]): Promise<Array<Datum | null>> {
    return runGetMany(this.queryHost, ids);
  }

  /** Deletes every datum meeting the filters (`{ all: true }` for all); how many there were. */
  deleteMany(options: DeleteManyOptions): Promise<number> {
    return runDeleteMany(this.queryHost, options);
  }

  /** The datums whose causal parent is `id` (its branches): one page, as `query`. */
  children<S extends Select = "full">(id: string, options: Omit<QueryOptions, "parent"> & { select?: S } = {}): Promise<QueryPage<Selected<S>>> {
    return runQuery(this.queryHost, { ...options, parent: id });
  }

  /** The store's own retention policies, validated (`createStore({ retention })` or the config file). */
  get retentionPolicies(): readonly ResolvedRetentionPolicy[] {
    return this.retentionHost.policies;
  }

  /**
   * What the retention policies (the store's own, or `options.policies`) would delete and move at
   * `options.now` (default now), per policy, with counts and content bytes. Changes nothing.
   */
  planRetention(options?: RetentionOptions): Promise<RetentionReport> {
    return planRetentionOn(this.retentionHost, options);
  }

  /**
   * Applies the retention policies at `options.now`: deletes what is due in batches, then moves
   * what is due up to its tier (copy → verify → remove below). Each batch fires `retained` and
   * counts in `backend().retention`. Idempotent; see core/RETENTION.md.
   */
  applyRetention(options?: RetentionOptions): Promise<RetentionReport> {
    return applyRetentionOn(this.retentionHost, options);
  }
}

/** One page of a query, through the store's hooks. */
export async function runQuery<S extends Select = "full">(host: RefsHost, options: QueryOptions & { select?: S } = {}): Promise<QueryPage<Selected<S>>> {
  const q = resolveQuery(options);
  await host.ready();
  if (q.select === "ids") {
    // Ids and the last one's position only: a tier with `queryIds` reads one index.
    const ids = await routeIds(host.router, q);
    return { items: ids.ids as Selected<S>[], cursor: ids.last !== null && ids.ids.length === q.limit ? encodeCursor(q, ids.last) : null };
  }
  const page = await queryPage(host, q);
  const last = page.at(-1);
  // A full page may have more after it; a short one is the last.
  const cursor = last !== undefined && page.length === q.limit ? encodeCursor(q, last) : null;
  if (q.select === "meta") return { items: page as Selected<S>[], cursor };
  const items = await readDatums(host.hooks.read, page as Datum[], { op: "query", source: host.router.landing.name });
  return { items: items as Selected<S>[], cursor };
}

/** The datums of a resolved query (for `list` with filters): `beforeList`/`afterList` do not apply. */
export async function queryPage(host: RefsHost, q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
  if (q.limit === 0) return [];
  return routeQuery(host.router, q);
}

/** How many datums meet the filters. */
export async function runCount(host: RefsHost, filter: QueryFilter = {}): Promise<number> {
  const q = resolveQuery(filter, { paged: false });
  await host.ready();
  return routeCount(host.router, unpaged(q));
}

/** The datums of `ids`, in the same order, `null` where there is none (one round trip where the tier can). */
export async function runGetMany(host: RefsHost, ids: readonly string[]): Promise<Array<Datum | null>> {
  if (!Array.isArray(ids)) throw dgentError("DGENT_INVALID_QUERY", "ids: getMany takes an array of ids", { details: { field: "ids" } });
  if (ids.length > MAX_GET_MANY) {
    throw dgentError("DGENT_INVALID_QUERY", `ids: getMany takes at most ${MAX_GET_MANY} ids, got ${ids.length}`, { details: { field: "ids" } });
  }
  for (const id of ids) assertId(id);
  await host.ready();
  if (ids.length === 0) return [];
  const found = await routeGetMany(host.router, ids);
  const read = host.hooks.read;
  if (!read.taps.length) return found;
  const present = found.filter((d): d is Datum => d !== null);
  const transformed = await readDatums(read, present, { op: "getMany", source: host.router.landing.name });
  let k = 0;
  return found.map((d) => (d === null ? null : (transformed[k++] as Datum)));
}

/**
 * Deletes every datum that meets the filters and returns how many there were: in one transaction
 * on a tier with transactions when no delete hook is tapped; with `beforeDelete`/`afterDelete`
 * taps, each id goes through them as a `delete` would.
 */
export async function runDeleteMany(host: RefsHost, options: DeleteManyOptions): Promise<number> {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw dgentError("DGENT_INVALID_QUERY", "options: deleteMany takes an object of filters", { details: { field: "options" } });
  }
  const { all, ...filter } = options;
  if (all !== undefined && typeof all !== "boolean") {
    throw dgentError("DGENT_INVALID_QUERY", `all: must be true or false, got ${JSON.stringify(all)}`, { details: { field: "all" } });
  }
  const q = unpaged(resolveQuery(filter, { paged: false }));
  if (filtersNothing(q) && all !== true) {
    throw dgentError("DGENT_INVALID_QUERY", "options: deleteMany with no filter would delete every datum of the namespace; pass { all: true } to mean it", {
      details: { field: "all" },
    });
  }
  await host.ready();
  const hooks = host.hooks;
  if (!hooks.beforeDelete.taps.length && !hooks.afterDelete.taps.length) return (await routeDeleteMany(host.router, q)).length;
  const ids = (await routeQuery(host.router, q)).map((d) => d.id);
  let n = 0;
  for (const id of ids) {
    await hooks.beforeDelete.promise(id);
    const existed = await host.router.delete(id);
    await hooks.afterDelete.promise(id, existed);
    if (existed) n++;
  }
  return n;
}

/** The last `n` steps of a causal chain (the datum and its `n − 1` nearest ancestors), oldest first. */
export async function runChainTail(host: RefsHost, id: string, n: number): Promise<Datum[]> {
  assertId(id);
  if (!Number.isInteger(n) || n < 1) {
    throw dgentError("DGENT_INVALID_QUERY", `tail: must be a positive integer, got ${String(n)}`, { details: { field: "tail" } });
  }
  await host.ready();
  const hooks = host.hooks;
  if (hooks.beforeCausalChain.taps.length) await hooks.beforeCausalChain.promise(id);
  const chain = await routeChainTail(host.router, id, n);
  return readDatums(hooks.read, chain, { op: "causalChain", source: host.router.landing.name });
}
