/**
 * Expiry over a tier that knows nothing of it (EXPIRY.md): the store puts this view in front of
 * every tier without `capabilities.expiry`. Every read hides datums whose `dgent.expiresAt` has
 * passed (a page short of its limit is refilled from the tier), a put over an expired datum
 * replaces it (the append-only law treats it as absent), and a background sweeper deletes expired
 * datums in batches once this view has seen one. A datum without the tag costs one property
 * lookup per read; a tier that never sees a tag never sweeps.
 */
import type { Datum } from "./datum.js";
import { dgentError, isDgentError } from "./errors.js";
import { EXPIRES_AT, isExpired, type Clock } from "./expiry.js";
import { MAX_LIST_LIMIT } from "./limits.js";
import type { Adapter, AdapterContext, ResolvedListOptions } from "./protocol.js";
import { compareIds } from "./order.js";
import { idPageOf, type DatumHeader, type IdPage, type ResolvedQuery, type ResolvedTagFilter } from "./query.js";
import type { TxOp } from "./refs.js";
import type { Router } from "./router.js";
import { deleteIds, scanTier, type DeletesIds } from "./tiers.js";

/** Default pause between two sweeps of a tier that has held an expiring datum. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
/** Expired datums deleted per batch by a sweep. */
export const SWEEP_BATCH = 500;

export interface ExpiryViewOptions {
  readonly clock: Clock;
  /** Pause between sweeps once the tier has held an expiring datum; `false`: never by itself. */
  readonly sweepIntervalMs: number | false;
  /** Where a failed background sweep is reported. */
  readonly warn: (message: string, details?: Readonly<Record<string, unknown>>) => void;
}

/** An adapter that hides expired datums of the tier below it, plus its sweeper. */
export interface ExpiryView extends Adapter {
  /** The tier below. */
  readonly inner: Adapter;
  /** Deletes the tier's expired datums now, in batches; how many it deleted. */
  sweep(): Promise<number>;
}

type Tagged = { readonly metadata: Readonly<Record<string, string>> };

/** `items` without those expired at `now`: the same array when none carries a tag that has passed. */
function live<T extends Tagged>(items: T[], now: number): T[] {
  let i = 0;
  for (; i < items.length; i++) if ((items[i] as T).metadata[EXPIRES_AT] !== undefined && isExpired(items[i] as T, now)) break;
  if (i === items.length) return items;
  const out = items.slice(0, i);
  for (i++; i < items.length; i++) if (!isExpired(items[i] as T, now)) out.push(items[i] as T);
  return out;
}

/** A chain (oldest first) cut after its last expired step: an expired ancestor ends it, as a missing one does. */
function cutChain(chain: Datum[], now: number): Datum[] {
  for (let i = chain.length - 1; i >= 0; i--) {
    const d = chain[i] as Datum;
    if (d.metadata[EXPIRES_AT] !== undefined && isExpired(d, now)) return chain.slice(i + 1);
  }
  return chain;
}

/** `q` narrowed to datums that carry an expiry, or `null` when `q` already excludes them. */
function taggedOnly(q: ResolvedQuery): ResolvedQuery | null {
  const own = q.where.find((w) => w.key === EXPIRES_AT);
  if (own !== undefined) return own.op === "exists" && !own.value ? null : q;
  const where: ResolvedTagFilter[] = [...q.where, { key: EXPIRES_AT, op: "exists", value: true }];
  where.sort((a, b) => compareIds(a.key, b.key));
  return { ...q, where };
}

export function expiryView(inner: Adapter, options: ExpiryViewOptions): ExpiryView {
  const { clock } = options;
  let timer: NodeJS.Timeout | null = null;
  let sweeping: Promise<number> | null = null;
  let closed = false;
  // A tier that is neither persistent nor shared holds only what this store put on it, so until
  // an expiring datum passes by, `get` can hand the tier's answer back untouched (the hot path
  // of the memory tier). Any other tier may hold expiring datums written elsewhere: always armed.
  let armed = inner.capabilities.persistent || inner.capabilities.multiProcess;

  /** Arms `get` and starts the sweeper the first time an expiring datum passes by. */
  const seen = (): void => {
    armed = true;
    if (timer !== null || closed || options.sweepIntervalMs === false) return;
    timer = setInterval(() => {
      if (sweeping === null) void view.sweep().catch((error: unknown) => options.warn(`expiry sweep failed: ${error instanceof Error ? error.message : String(error)}`));
    }, options.sweepIntervalMs);
    timer.unref();
  };
  const note = (items: readonly Tagged[]): void => {
    if (armed && (timer !== null || options.sweepIntervalMs === false)) return;
    for (const d of items) if (d.metadata[EXPIRES_AT] !== undefined) return seen();
  };

  /** Deletes those of `ids` whose stored datum has expired; true when it deleted any. */
  const clearExpired = async (ids: readonly string[]): Promise<boolean> => {
    const now = clock();
    const gone: string[] = [];
    for (const id of ids) {
      const stored = await inner.get(id);
      if (stored !== null && isExpired(stored, now)) gone.push(id);
    }
    if (gone.length) await deleteIds(inner, gone);
    return gone.length > 0;
  };
  /**
   * Runs a write; on `DGENT_CONFLICT`, replaces expired datums under the ids it puts and tries once
   * more. The write's own promise is handed on (no `async` frame on the path that succeeds).
   */
  const replacing = <T>(ids: readonly string[], write: () => Promise<T>): Promise<T> => {
    const retry = async (error: unknown): Promise<T> => {
      if (!isDgentError(error, "DGENT_CONFLICT") || !(await clearExpired(ids))) throw error;
      return write();
    };
    let written: Promise<T>;
    try {
      written = write();
    } catch (error) {
      return retry(error);
    }
    return written.catch(retry);
  };

  /** An ids page some of whose ids carry the expiry tag: as it is while none has expired, else `query`'s refill. */
  const liveIds = async (page: IdPage, q: ResolvedQuery): Promise<IdPage> => {
    seen();
    const now = clock();
    if (!(page.expiresAt as Array<string | null>).some((tag) => tag !== null && Number(tag) <= now)) return page;
    return idPageOf((await (view.query as NonNullable<Adapter["query"]>)(q)) as DatumHeader[]);
  };

  /** A page refilled past the expired datums it held, through `next` (the page after an item). */
  const refill = async <T extends Tagged & { readonly id: string; readonly createdAt: number }>(
    first: T[],
    limit: number,
    next: (after: T, limit: number) => Promise<T[]>,
  ): Promise<T[]> => {
    const now = clock();
    const kept = live(first, now);
    if (kept === first) return first;
    seen();
    const out = kept.slice();
    let page = first;
    while (out.length < limit && page.length === limit) {
      page = await next(page[page.length - 1] as T, limit);
      for (const d of live(page, now)) if (out.length < limit) out.push(d);
    }
    return out;
  };

  // The hot paths' callbacks, made once per view rather than per call.
  const unlessExpired = (d: Datum | null): Datum | null => {
    if (d === null || d.metadata[EXPIRES_AT] === undefined) return d;
    seen();
    return isExpired(d, clock()) ? null : d;
  };
  const putAgain = async (datum: Datum, error: unknown): Promise<string> => {
    if (!isDgentError(error, "DGENT_CONFLICT") || !(await clearExpired([datum.id]))) throw error;
    return inner.put(datum);
  };

  const view: ExpiryView = {
    inner,
    // Read through: a tier may settle its facts at open (Redis reads its persistence then).
    get name() {
      return inner.name;
    },
    get rank() {
      return inner.rank;
    },
    get capabilities() {
      return inner.capabilities;
    },
    open: (context?: AdapterContext) => inner.open(context),
    close: async () => {
      closed = true;
      if (timer !== null) clearInterval(timer);
      timer = null;
      await sweeping?.catch(() => undefined);
      return inner.close();
    },
    put: (datum) => {
      if (datum.metadata[EXPIRES_AT] !== undefined) seen();
      // `replacing`, inlined for the hot path: one closure, not three and an array.
      const again = (error: unknown) => putAgain(datum, error);
      try {
        return inner.put(datum).catch(again);
      } catch (error) {
        return again(error);
      }
    },
    get: (id) => (armed ? inner.get(id).then(unlessExpired) : inner.get(id)),
    delete: (id) => inner.delete(id),
    list: async (o: ResolvedListOptions) => {
      const first = await inner.list(o);
      const now = clock();
      let kept = live(first, now);
      if (kept === first) return first;
      seen();
      // Newest first has no cursor: ask again for more, up to the largest page.
      for (let got = first, ask = o.limit; kept.length < o.limit && got.length === ask && ask < MAX_LIST_LIMIT; ) {
        ask = Math.min(MAX_LIST_LIMIT, ask * 2);
        got = await inner.list({ ...o, limit: ask });
        kept = live(got, now);
      }
      return kept.length > o.limit ? kept.slice(0, o.limit) : kept;
    },
    ...(inner.causalChain ? { causalChain: async (id: string, maxDepth: number) => cutChain(await (inner.causalChain as NonNullable<Adapter["causalChain"]>).call(inner, id, maxDepth), clock()) } : {}),
    ...(inner.putMany
      ? {
          putMany: (datums: readonly Datum[]) => {
            note(datums);
            return replacing(
              datums.map((d) => d.id),
              () => (inner.putMany as NonNullable<Adapter["putMany"]>).call(inner, datums),
            );
          },
        }
      : {}),
    ...(inner.scan
      ? {
          scan: async function* () {
            const now = clock();
            for await (const d of (inner.scan as NonNullable<Adapter["scan"]>).call(inner)) {
              if (d.metadata[EXPIRES_AT] !== undefined && isExpired(d, now)) continue;
              yield d;
            }
          },
        }
      : {}),
    ...(inner.stats ? { stats: () => (inner.stats as NonNullable<Adapter["stats"]>).call(inner) } : {}),
    ...(inner.probe ? { probe: () => (inner.probe as NonNullable<Adapter["probe"]>).call(inner) } : {}),
    ...(inner.getRef ? { getRef: (name: string) => (inner.getRef as NonNullable<Adapter["getRef"]>).call(inner, name) } : {}),
    ...(inner.listRefs ? { listRefs: (prefix: string) => (inner.listRefs as NonNullable<Adapter["listRefs"]>).call(inner, prefix) } : {}),
    ...(inner.reflog ? { reflog: (name: string, limit: number) => (inner.reflog as NonNullable<Adapter["reflog"]>).call(inner, name, limit) } : {}),
    ...(inner.setRef ? { setRef: (...a: Parameters<NonNullable<Adapter["setRef"]>>) => (inner.setRef as NonNullable<Adapter["setRef"]>).apply(inner, a) } : {}),
    ...(inner.deleteRef ? { deleteRef: (...a: Parameters<NonNullable<Adapter["deleteRef"]>>) => (inner.deleteRef as NonNullable<Adapter["deleteRef"]>).apply(inner, a) } : {}),
    ...(inner.commit
      ? {
          commit: (ops: readonly TxOp[], move: Parameters<NonNullable<Adapter["commit"]>>[1]) => {
            const puts = ops.flatMap((op) => (op.op === "put" ? [op.datum] : []));
            note(puts);
            return replacing(
              puts.map((d) => d.id),
              () => (inner.commit as NonNullable<Adapter["commit"]>).call(inner, ops, move),
            );
          },
        }
      : {}),
    ...(inner.query
      ? {
          query: async (q: ResolvedQuery) => {
            const query = inner.query as NonNullable<Adapter["query"]>;
            const first = (await query.call(inner, q)) as Array<Datum | DatumHeader>;
            return refill(first, q.limit, (after, limit) => query.call(inner, { ...q, limit, cursor: { createdAt: after.createdAt, id: after.id } }) as Promise<Array<Datum | DatumHeader>>) as Promise<Datum[] | DatumHeader[]>;
          },
        }
      : {}),
    ...(inner.query && inner.queryIds
      ? {
          // The tier's ids page as it is while none of its ids expires (always, on a tier that
          // never held an expiring datum: no row is read for the check); else `query`'s refill.
          // (`then`, not an `async` frame: the common page passes through without one.)
          queryIds: (q: ResolvedQuery): Promise<IdPage> =>
            (inner.queryIds as NonNullable<Adapter["queryIds"]>).call(inner, q).then((page) => (page.expiresAt === null ? page : liveIds(page, q))),
        }
      : {}),
    ...(inner.count
      ? {
          count: async (q: ResolvedQuery) => {
            // Unarmed (the tier holds only what this store put, none of it expiring): the tier's own answer.
            if (!armed) return (inner.count as NonNullable<Adapter["count"]>).call(inner, q);
            // A tier whose tag filters are scans counts by reading anyway: one pass over the
            // headers, counting the live ones, instead of a count and then a second pass.
            if (inner.capabilities.queryCost !== "indexed" && inner.query) return countLive(inner, q, clock());
            const n = await (inner.count as NonNullable<Adapter["count"]>).call(inner, q);
            const tagged = n === 0 ? null : taggedOnly(q);
            if (tagged === null) return n;
            return n - (await countExpired(inner, tagged, clock()));
          },
        }
      : {}),
    ...(inner.getMany
      ? {
          getMany: async (ids: readonly string[]) => {
            const found = await (inner.getMany as NonNullable<Adapter["getMany"]>).call(inner, ids);
            const now = clock();
            return found.map((d) => (d === null || d.metadata[EXPIRES_AT] === undefined ? d : (seen(), isExpired(d, now) ? null : d)));
          },
        }
      : {}),
    ...(inner.deleteMany ? { deleteMany: (q: ResolvedQuery) => (inner.deleteMany as NonNullable<Adapter["deleteMany"]>).call(inner, q) } : {}),
    ...(inner.chainTail ? { chainTail: async (id: string, n: number) => cutChain(await (inner.chainTail as NonNullable<Adapter["chainTail"]>).call(inner, id, n), clock()) } : {}),
    ...(typeof (inner as Adapter & Partial<DeletesIds>).deleteIds === "function"
      ? { deleteIds: (ids: readonly string[]) => deleteIds(inner, ids) }
      : {}),
    sweep: () => {
      sweeping ??= sweepTier(inner, clock()).finally(() => (sweeping = null));
      return sweeping;
    },
  };
  return view;
}

/** The expiring datums of a tier, a page of headers at a time, oldest first. */
async function* taggedHeaders(tier: Adapter, q: ResolvedQuery): AsyncIterable<DatumHeader[]> {
  if (!(tier.capabilities.query && tier.query)) {
    // No native queries: one pass over the tier.
    let batch: DatumHeader[] = [];
    for await (const d of scanTier(tier)) {
      if (d.metadata[EXPIRES_AT] === undefined) continue;
      batch.push(d);
      if (batch.length === SWEEP_BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
    return;
  }
  yield* headerPages(tier, q);
}

/** Every datum meeting `q` on a tier with native queries, as pages of headers, oldest first. */
async function* headerPages(tier: Adapter, q: ResolvedQuery): AsyncIterable<DatumHeader[]> {
  const page: ResolvedQuery = { ...q, order: "oldest", select: "meta", limit: SWEEP_BATCH, cursor: null };
  for (let cursor = page.cursor; ; ) {
    const got = (await (tier.query as NonNullable<Adapter["query"]>).call(tier, { ...page, cursor })) as DatumHeader[];
    if (got.length) yield got;
    if (got.length < SWEEP_BATCH) return;
    const last = got[got.length - 1] as DatumHeader;
    cursor = { createdAt: last.createdAt, id: last.id };
  }
}

/** How many datums meeting `q` are live at `now`, read as pages of headers. */
async function countLive(tier: Adapter, q: ResolvedQuery, now: number): Promise<number> {
  let n = 0;
  for await (const page of headerPages(tier, q)) for (const d of page) if (d.metadata[EXPIRES_AT] === undefined || !isExpired(d, now)) n++;
  return n;
}

/** How many datums meeting `tagged` (a query narrowed to expiring datums) have expired at `now`. */
async function countExpired(tier: Adapter, tagged: ResolvedQuery, now: number): Promise<number> {
  let n = 0;
  for await (const page of taggedHeaders(tier, tagged)) for (const d of page) if (isExpired(d, now)) n++;
  return n;
}

const ALL_TAGGED: ResolvedQuery = Object.freeze({
  prefix: "",
  idGte: null,
  idLt: null,
  where: Object.freeze([{ key: EXPIRES_AT, op: "exists", value: true }]) as readonly ResolvedTagFilter[],
  parent: null,
  after: null,
  before: null,
  order: "oldest",
  cursor: null,
  limit: SWEEP_BATCH,
  select: "meta",
});

/**
 * Deletes the expired datums of `tier` in batches; how many it deleted. The ids are gathered
 * first, so no tier is written while its scan or query is still open.
 */
export async function sweepTier(tier: Adapter, now: number): Promise<number> {
  const expired: string[] = [];
  for await (const page of taggedHeaders(tier, ALL_TAGGED)) for (const d of page) if (isExpired(d, now)) expired.push(d.id);
  let deleted = 0;
  for (let i = 0; i < expired.length; i += SWEEP_BATCH) deleted += (await deleteIds(tier, expired.slice(i, i + SWEEP_BATCH))).length;
  return deleted;
}

/** The store's expiry options, checked, and the tiers as the router should see them. */
export function viewTiers(
  tiers: readonly Adapter[],
  options: { clock?: Clock; expirySweepMs?: number | false },
  warn: (unit: string, message: string, details?: Readonly<Record<string, unknown>>) => void,
): { clock: Clock; viewed: Adapter[]; views: ExpiryView[] } {
  const clock = options.clock ?? Date.now;
  if (typeof clock !== "function") throw dgentError("DGENT_INVALID_OPTIONS", "clock must be a function returning epoch milliseconds");
  const sweepIntervalMs = options.expirySweepMs ?? DEFAULT_SWEEP_INTERVAL_MS;
  if (sweepIntervalMs !== false && (!Number.isInteger(sweepIntervalMs) || sweepIntervalMs < 1)) {
    throw dgentError("DGENT_INVALID_OPTIONS", `expirySweepMs must be a positive integer of milliseconds or false, got ${String(sweepIntervalMs)}`);
  }
  const views: ExpiryView[] = [];
  const viewed = tiers.map((tier) => {
    // Not an adapter at all: the router refuses it with its own message.
    if (tier === null || typeof tier !== "object" || tier.capabilities?.expiry === true) return tier;
    const view = expiryView(tier, { clock, sweepIntervalMs, warn: (message, details) => warn(tier.name, message, details) });
    views.push(view);
    return view;
  });
  return { clock, viewed, views };
}

/** Sweeps every tier of `router` that is up and has a view; how many datums were deleted. */
export async function sweepViews(router: Router, views: readonly ExpiryView[]): Promise<number> {
  let n = 0;
  for (const state of router.states) {
    const view = views.find((v) => v === state.adapter);
    if (view === undefined || !state.up) continue;
    n += (await router.attempt(state, () => view.sweep()))?.value ?? 0;
  }
  return n;
}
