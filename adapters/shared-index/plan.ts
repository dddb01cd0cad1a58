import { compareIds } from "../../core/order.js";
import { prefixUpperBound, type ResolvedQuery } from "../../core/query.js";
import { compareTime, type IndexedEntry } from "./entry.js";
import type { Position, SortedList } from "./sorted-list.js";
import type { TagIndex } from "./tag-index.js";

/**
 * How a query is answered:
 * - `empty`: an index says nothing can match (a tag value, parent or id range holds no entry);
 * - `ordered`: walk the union of `lists` (each in time order) in the query's order, from its
 *   cursor, checking the other filters, and stop at `limit`;
 * - `ids`: collect the id range `[from, to)` of the id order, check, sort, cut to `limit`.
 *
 * `exact`: the walk itself enforces every filter (no check per entry). `counted`: `size` is the
 * exact number of matches (so `count` need not walk).
 */
export type Plan<T> =
  | { readonly kind: "empty" }
  | {
      readonly kind: "ordered";
      /** What is walked: `"time"`, `"parent"`, `"tag <key>"` (posting lists) or `"tag <key> present"`. */
      readonly source: string;
      readonly lists: readonly SortedList<T>[];
      readonly size: number;
      readonly exact: boolean;
      readonly counted: boolean;
    }
  | { readonly kind: "ids"; readonly from: Position; readonly to: Position; readonly size: number; readonly counted: boolean };

/** The indexes a plan may use. */
export interface PlanSources<T extends IndexedEntry> {
  readonly size: number;
  readonly byTime: SortedList<T>;
  readonly byIdOrder: SortedList<T>;
  /** The index of a tag key the query names (built before planning). */
  tag(key: string): TagIndex<T>;
  /** A parent's children in time order (the parent index is built before planning). */
  children(parent: string): SortedList<T> | undefined;
}

/** Most posting lists a tag `prefix` merges; with more values it walks every entry holding the key. */
const MAX_MERGE = 64;
/** Most values of a tag `prefix` whose posting sizes are summed for the estimate. */
const MAX_PREFIX_VALUES = 4096;

const EMPTY = { kind: "empty" } as const;

interface Candidate<T> {
  readonly source: string;
  readonly lists: readonly SortedList<T>[];
  /** Entries the walk visits (before time bounds narrow it). */
  readonly size: number;
  /** The walk enforces every filter. */
  readonly exact: boolean;
  /** The candidate is the time order itself. */
  readonly time: boolean;
}

/**
 * Chooses the cheapest way to answer `q`. Each indexed filter's match count is known exactly
 * (posting sizes, a parent's children, the id range) or bounded; assuming the filters are
 * independent, `expected` matches meet them all, and walking a source of `size` entries in order
 * costs about `size × limit / expected` before `limit` matches are found (all of `size` when
 * fewer are expected, or when nothing is paged). The id range is unordered: it costs its whole
 * size plus a sort of the matches.
 */
export function planQuery<T extends IndexedEntry>(q: ResolvedQuery, paged: boolean, s: PlanSources<T>): Plan<T> {
  const n = s.size;
  const idFiltered = q.prefix !== "" || q.idGte !== null || q.idLt !== null;
  const filters = (idFiltered ? 1 : 0) + (q.parent !== null ? 1 : 0) + q.where.length;
  const timeBounded = q.after !== null || q.before !== null;
  let expected = n;
  // A page needs only estimates of range sizes (O(1)); count and deleteMany may answer from them.
  const between = (list: SortedList<T>, from: Position, to: Position): number => (paged ? list.estimateBetween(from, to) : list.countBetween(from, to));
  const narrow = (matches: number): void => {
    expected *= matches / n;
  };

  let timeSize = n;
  if (timeBounded) {
    const range = { ...q, cursor: null };
    const low = lowBound(range);
    const high = highBound(range);
    timeSize = between(s.byTime, low === null ? s.byTime.start : s.byTime.seek(low), high === null ? s.byTime.end : s.byTime.seek(high));
    if (timeSize === 0) return EMPTY;
    narrow(timeSize);
  }
  const candidates: Candidate<T>[] = [{ source: "time", lists: [s.byTime], size: timeSize, exact: filters === 0, time: true }];
  const alone = filters === 1;

  if (q.parent !== null) {
    const children = s.children(q.parent);
    if (children === undefined || children.size === 0) return EMPTY;
    candidates.push({ source: "parent", lists: [children], size: children.size, exact: alone, time: false });
    narrow(children.size);
  }

  for (const f of q.where) {
    const tag = s.tag(f.key);
    if (f.op === "in") {
      const lists: SortedList<T>[] = [];
      let size = 0;
      for (const v of f.values) {
        const list = tag.postings(v);
        if (list === undefined) continue;
        lists.push(list);
        size += list.size;
      }
      if (size === 0) return EMPTY;
      candidates.push({ source: `tag ${f.key}`, lists, size, exact: alone, time: false });
      narrow(size);
    } else if (f.op === "exists" && !f.value) {
      const size = n - tag.present.size;
      if (size === 0) return EMPTY;
      narrow(size);
    } else if (f.op === "exists" || f.value === "") {
      const size = tag.present.size;
      if (size === 0) return EMPTY;
      candidates.push({ source: `tag ${f.key} present`, lists: [tag.present], size, exact: alone, time: false });
      narrow(size);
    } else {
      const lists: SortedList<T>[] = [];
      let size = 0;
      let values = 0;
      const walker = tag.valuesWithPrefix(f.value);
      for (let v = walker.next(); v !== undefined && values < MAX_PREFIX_VALUES; v = walker.next()) {
        values++;
        const list = tag.postings(v) as SortedList<T>;
        size += list.size;
        if (lists.length <= MAX_MERGE) lists.push(list);
      }
      if (values === 0) return EMPTY;
      if (values < MAX_PREFIX_VALUES && lists.length <= MAX_MERGE) {
        candidates.push({ source: `tag ${f.key}`, lists, size, exact: alone, time: false });
        narrow(size);
      } else {
        candidates.push({ source: `tag ${f.key} present`, lists: [tag.present], size: tag.present.size, exact: false, time: false });
        narrow(values < MAX_PREFIX_VALUES ? size : tag.present.size);
      }
    }
  }

  let ids: { from: Position; to: Position; size: number } | null = null;
  if (idFiltered) {
    let lo = q.prefix;
    if (q.idGte !== null && compareIds(q.idGte, lo) > 0) lo = q.idGte;
    let hi = q.prefix === "" ? null : prefixUpperBound(q.prefix);
    if (q.idLt !== null && (hi === null || compareIds(q.idLt, hi) < 0)) hi = q.idLt;
    const order = s.byIdOrder;
    const from = lo === "" ? order.start : order.seek((e) => compareIds(e.id, lo) >= 0);
    const upper = hi;
    const to = upper === null ? order.end : order.seek((e) => compareIds(e.id, upper) >= 0);
    const size = between(order, from, to);
    if (size === 0) return EMPTY;
    ids = { from, to, size };
    narrow(size);
  }

  const limit = paged ? q.limit : Infinity;
  const cost = (visits: number): number => (expected >= limit ? (visits * limit) / expected : visits);
  let best = candidates[0] as Candidate<T>;
  let bestCost = cost(timeSize);
  for (let i = 1; i < candidates.length; i++) {
    const c = candidates[i] as Candidate<T>;
    const visits = timeBounded ? (c.size * timeSize) / n : c.size;
    const cc = cost(visits);
    // On a tie, a source that enforces every filter itself saves the check per entry.
    if (cc < bestCost || (cc === bestCost && c.exact && !best.exact)) {
      best = c;
      bestCost = cc;
    }
  }
  if (ids !== null) {
    const sorted = Math.min(ids.size, expected);
    const idCost = ids.size + (paged ? (sorted * Math.log2(sorted + 2)) / 4 : 0);
    if (idCost < bestCost) return { kind: "ids", ...ids, counted: alone && !timeBounded };
  }
  return { kind: "ordered", source: best.source, lists: best.lists, size: best.size, exact: best.exact, counted: best.exact && (best.time || !timeBounded) };
}

/**
 * The lower bound of q's range in ascending time order, as a predicate true from the first entry
 * in range on: `createdAt > after`, and beyond the cursor when paging oldest first. `null`: none.
 */
export function lowBound(q: ResolvedQuery): ((e: IndexedEntry) => boolean) | null {
  const { after } = q;
  const cursor = q.order === "oldest" ? q.cursor : null;
  if (after === null && cursor === null) return null;
  return (e) => (after === null || e.createdAt > after) && (cursor === null || compareTime(e, cursor) > 0);
}

/**
 * The upper bound, as a predicate true from the first entry past the range on: `createdAt >=
 * before`, or at or beyond the cursor when paging newest first. `null`: none.
 */
export function highBound(q: ResolvedQuery): ((e: IndexedEntry) => boolean) | null {
  const { before } = q;
  const cursor = q.order === "newest" ? q.cursor : null;
  if (before === null && cursor === null) return null;
  return (e) => (before !== null && e.createdAt >= before) || (cursor !== null && compareTime(e, cursor) >= 0);
}
