import type { ResolvedListOptions } from "../../core/protocol.js";
import { compareInOrder, matchesQuery, type ResolvedQuery } from "../../core/query.js";
import { compareEntryIds, compareTime, compareTimeDesc, type IndexedEntry } from "./entry.js";
import { mergeWalkers } from "./merge.js";
import { highBound, lowBound, planQuery, type Plan } from "./plan.js";
import { SortedList, type Walker } from "./sorted-list.js";
import { TagIndex } from "./tag-index.js";

/**
 * The in-memory indexes of the memory and JSONL tiers, answering the protocol's `list` and the
 * native queries (`query`, `count`, the matches of `deleteMany`) without reading the whole
 * namespace:
 *
 * - by id (a `Map`), by time `(createdAt, id)` and by id order (sorted lists): always kept;
 * - per tag key, value → entries in time order, and the entries holding the key; built the first
 *   time a query names the key, then kept by every insert and delete;
 * - parent → children in time order; built by the first `parent` query, then kept.
 *
 * A query walks the source `plan.ts` chooses (the smallest posting set, a parent's children, the
 * id range of a prefix, or the time order) from its cursor, checks the other filters with
 * core's `matchesQuery` and stops at `limit`. README.md gives the costs.
 */
export class QueryIndex<T extends IndexedEntry> {
  readonly #byId = new Map<string, T>();
  readonly #byTime: SortedList<T>;
  readonly #byIdOrder: SortedList<T>;
  readonly #tags = new Map<string, TagIndex<T>>();
  #parents: Map<string, SortedList<T>> | null = null;
  readonly #chunk: number | undefined;
  /** Tag keys indexed from the start (kept from the first insert on, and across `clear`). */
  readonly #eagerTags: readonly string[];

  /**
   * `tags`: tag keys to index from the start instead of on the first query naming them.
   * `chunk`: keys per chunk of every sorted list (default 512; tests use tiny ones).
   */
  constructor({ tags = [], chunk }: { tags?: readonly string[]; chunk?: number } = {}) {
    this.#chunk = chunk;
    this.#eagerTags = [...new Set(tags)];
    this.#byTime = new SortedList<T>(compareTime, chunk);
    this.#byIdOrder = new SortedList<T>(compareEntryIds, chunk);
    for (const key of this.#eagerTags) this.#tags.set(key, new TagIndex<T>(key, chunk));
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): T | undefined {
    return this.#byId.get(id);
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** Adds an entry whose id the index does not hold (the caller checked). */
  insert(entry: T): void {
    this.#byId.set(entry.id, entry);
    this.#byTime.insert(entry);
    this.#byIdOrder.insert(entry);
    if (this.#tags.size > 0) {
      const m = entry.metadata;
      for (const [key, index] of this.#tags) if (Object.hasOwn(m, key)) index.add(entry, m[key] as string);
    }
    if (this.#parents !== null && entry.causalParent !== null) addChild(this.#parents, entry, this.#chunk);
  }

  /** Adds or replaces the entry for `entry.id`. */
  set(entry: T): void {
    if (this.#byId.has(entry.id)) this.delete(entry.id);
    this.insert(entry);
  }

  delete(id: string): T | undefined {
    const entry = this.#byId.get(id);
    if (entry === undefined) return undefined;
    this.#byId.delete(id);
    this.#byTime.remove(entry);
    this.#byIdOrder.remove(entry);
    if (this.#tags.size > 0) {
      const m = entry.metadata;
      for (const [key, index] of this.#tags) if (Object.hasOwn(m, key)) index.remove(entry, m[key] as string);
    }
    if (this.#parents !== null && entry.causalParent !== null) {
      const children = this.#parents.get(entry.causalParent);
      if (children !== undefined && children.remove(entry) && children.size === 0) this.#parents.delete(entry.causalParent);
    }
    return entry;
  }

  /**
   * Deletes many held entries at once (what `deleteMany` found): one by one when they are few;
   * when they are more than a 32nd of the index, one pass over each sorted list instead.
   */
  deleteAll(entries: readonly T[]): void {
    if (entries.length * 32 <= this.#byId.size) {
      for (const e of entries) this.delete(e.id);
      return;
    }
    const doomed = new Set<T>();
    for (const e of entries) if (this.#byId.get(e.id) === e) doomed.add(e);
    for (const e of doomed) this.#byId.delete(e.id);
    const gone = (e: T): boolean => doomed.has(e);
    this.#byTime.removeIf(gone);
    this.#byIdOrder.removeIf(gone);
    for (const index of this.#tags.values()) index.removeAll(doomed);
    const parents = this.#parents;
    if (parents !== null) {
      const touched = new Set<string>();
      for (const e of doomed) if (e.causalParent !== null) touched.add(e.causalParent);
      for (const parent of touched) {
        const children = parents.get(parent);
        if (children !== undefined && children.removeIf(gone) > 0 && children.size === 0) parents.delete(parent);
      }
    }
  }

  /** The oldest entry (smallest createdAt, then id). */
  oldest(): T | undefined {
    return this.#byTime.first();
  }

  clear(): void {
    this.#byId.clear();
    this.#byTime.clear();
    this.#byIdOrder.clear();
    this.#tags.clear();
    for (const key of this.#eagerTags) this.#tags.set(key, new TagIndex<T>(key, this.#chunk));
    this.#parents = null;
  }

  values(): IterableIterator<T> {
    return this.#byId.values();
  }

  /** The tag keys and parent links indexed so far (built by the queries that named them). */
  built(): { readonly tags: string[]; readonly parents: boolean } {
    return { tags: [...this.#tags.keys()], parents: this.#parents !== null };
  }

  /** The protocol's `list`: prefix, createdAt > after, newest first, at most limit. */
  list(options: ResolvedListOptions): T[] {
    const { prefix, after, limit } = options;
    if (limit <= 0) return [];
    if (prefix === "") {
      // The time order from its newest end, down to `after`: no plan needed.
      const out: T[] = [];
      const walker = this.#byTime.walk(this.#byTime.start, this.#byTime.end, false);
      for (let e = walker.next(); e !== undefined && out.length < limit; e = walker.next()) {
        if (e.createdAt <= after) break;
        out.push(e);
      }
      return out;
    }
    // createdAt is never negative, so the default `after` of -1 is no bound.
    const q = { prefix, idGte: null, idLt: null, where: [], parent: null, after: after < 0 ? null : after, before: null, order: "newest", cursor: null, limit, select: "full" } as const;
    return this.query(q);
  }

  /** One page of `q`: the entries meeting its filters, in `q.order`, beyond `q.cursor`, at most `q.limit`. */
  query(q: ResolvedQuery): T[] {
    if (q.limit <= 0 || this.#byId.size === 0) return [];
    const plan = this.#plan(q, true);
    const out: T[] = [];
    if (plan.kind === "empty") return out;
    if (plan.kind === "ids") {
      const walker = this.#byIdOrder.walk(plan.from, plan.to, true);
      for (let e = walker.next(); e !== undefined; e = walker.next()) if (matchesQuery(q, e)) out.push(e);
      out.sort((a, b) => compareInOrder(q.order, a, b));
      if (out.length > q.limit) out.length = q.limit;
      return out;
    }
    const walker = this.#walkOrdered(plan.lists, q);
    const limit = q.limit;
    if (plan.exact) {
      for (let e = walker.next(); e !== undefined && out.length < limit; e = walker.next()) out.push(e);
    } else {
      for (let e = walker.next(); e !== undefined && out.length < limit; e = walker.next()) if (matchesQuery(q, e)) out.push(e);
    }
    return out;
  }

  /** How many entries meet `q`'s filters (its cursor and limit aside). */
  count(query: ResolvedQuery): number {
    const q = unpagedQuery(query);
    if (this.#byId.size === 0) return 0;
    const plan = this.#plan(q, false);
    if (plan.kind === "empty") return 0;
    if (plan.counted) return plan.size;
    let n = 0;
    this.#each(plan, q, () => n++);
    return n;
  }

  /** Every entry meeting `q`'s filters (its cursor and limit aside), in no particular order. */
  matching(query: ResolvedQuery): T[] {
    const q = unpagedQuery(query);
    const out: T[] = [];
    if (this.#byId.size === 0) return out;
    const plan = this.#plan(q, false);
    if (plan.kind !== "empty") this.#each(plan, q, (e) => out.push(e));
    return out;
  }

  /**
   * How `q` would be answered (the plan's source and how many entries it holds): `"empty"`,
   * `"ids"` (the id range of a prefix or idRange), or an ordered source (`"time"`, `"parent"`,
   * `"tag <key>"`, `"tag <key> present"`). For tests and diagnostics; builds indexes as a query would.
   */
  explain(q: ResolvedQuery): { readonly source: string; readonly size: number; readonly exact: boolean } {
    if (this.#byId.size === 0) return { source: "empty", size: 0, exact: true };
    const plan = this.#plan(q, q.limit < Number.MAX_SAFE_INTEGER);
    if (plan.kind === "empty") return { source: "empty", size: 0, exact: true };
    if (plan.kind === "ids") return { source: "ids", size: plan.size, exact: false };
    return { source: plan.source, size: plan.size, exact: plan.exact };
  }

  #each(plan: Exclude<Plan<T>, { kind: "empty" }>, q: ResolvedQuery, visit: (e: T) => void): void {
    const walker = plan.kind === "ids" ? this.#byIdOrder.walk(plan.from, plan.to, true) : this.#walkOrdered(plan.lists, q);
    const check = plan.kind === "ids" || !plan.exact;
    for (let e = walker.next(); e !== undefined; e = walker.next()) if (!check || matchesQuery(q, e)) visit(e);
  }

  #plan(q: ResolvedQuery, paged: boolean): Plan<T> {
    for (const f of q.where) if (!this.#tags.has(f.key)) this.#buildTag(f.key);
    if (q.parent !== null && this.#parents === null) this.#buildParents();
    return planQuery(q, paged, {
      size: this.#byId.size,
      byTime: this.#byTime,
      byIdOrder: this.#byIdOrder,
      tag: (key) => this.#tags.get(key) as TagIndex<T>,
      children: (parent) => (this.#parents as Map<string, SortedList<T>>).get(parent),
    });
  }

  /** Walks the union of `lists` (disjoint, each in time order) in `q.order`, within q's time bounds and beyond its cursor. */
  #walkOrdered(lists: readonly SortedList<T>[], q: ResolvedQuery): Walker<T> {
    const ascending = q.order === "oldest";
    const low = lowBound(q);
    const high = highBound(q);
    const walkers = lists.map((list) => list.walk(low === null ? list.start : list.seek(low), high === null ? list.end : list.seek(high), ascending));
    return walkers.length === 1 ? (walkers[0] as Walker<T>) : mergeInOrder(walkers, ascending);
  }

  #buildTag(key: string): void {
    const index = new TagIndex<T>(key, this.#chunk);
    const walker = this.#byTime.walk(this.#byTime.start, this.#byTime.end, true);
    for (let e = walker.next(); e !== undefined; e = walker.next()) {
      if (Object.hasOwn(e.metadata, key)) index.add(e, e.metadata[key] as string);
    }
    this.#tags.set(key, index);
  }

  #buildParents(): void {
    const parents = new Map<string, SortedList<T>>();
    const walker = this.#byTime.walk(this.#byTime.start, this.#byTime.end, true);
    for (let e = walker.next(); e !== undefined; e = walker.next()) if (e.causalParent !== null) addChild(parents, e, this.#chunk);
    this.#parents = parents;
  }
}

function mergeInOrder<T extends IndexedEntry>(walkers: Walker<T>[], ascending: boolean): Walker<T> {
  return mergeWalkers(walkers, ascending ? compareTime : compareTimeDesc);
}

function addChild<T extends IndexedEntry>(parents: Map<string, SortedList<T>>, entry: T, chunk: number | undefined): void {
  const parent = entry.causalParent as string;
  let children = parents.get(parent);
  if (children === undefined) {
    children = new SortedList<T>(compareTime, chunk);
    parents.set(parent, children);
  }
  children.insert(entry);
}

function unpagedQuery(q: ResolvedQuery): ResolvedQuery {
  return q.cursor === null ? q : { ...q, cursor: null };
}
