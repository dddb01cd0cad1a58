/**
 * Hybrid search: reciprocal rank fusion (RRF) of a vector handle's results (plugins/recall) and a
 * text handle's (this plugin). Each datum scores Σ 1 / (rrfK + rank) over the lists it is in
 * (rank from 1); ranks, not scores, are fused, so BM25 and cosine need no common scale.
 */
import { dgentError } from "../../core/errors.js";
import type { QueryFilter } from "../../core/query.js";
import type { Store } from "../../core/store.js";
import { checkSearchOptions } from "./engine.js";

/** What hybrid search needs of a handle: `search(query, { k, filter })` → `[{ id, score }]`, best first. */
export interface SearchHandle {
  search(query: string, options?: { k?: number; filter?: QueryFilter }): Promise<ReadonlyArray<{ id: string; score: number }>>;
}

export interface HybridOptions {
  /** Results wanted, 1–1000 (default 10). */
  readonly k?: number;
  readonly filter?: QueryFilter;
  /** The vector handle (default: the store's `recall` plugin). */
  readonly vector?: SearchHandle;
  /** The text handle (default: the store's `fulltext` plugin). */
  readonly text?: SearchHandle;
  /** RRF's constant (default 60, as in Cormack et al. 2009): larger flattens the weight of top ranks. */
  readonly rrfK?: number;
  /** How many results each handle is asked for (default max(k × 3, 50), at most 1000). */
  readonly depth?: number;
}

export interface HybridHit {
  readonly id: string;
  /** The fused score Σ 1 / (rrfK + rank). */
  readonly score: number;
  /** The datum's rank (from 1) in each list, or null when absent. */
  readonly ranks: { readonly vector: number | null; readonly text: number | null };
}

const invalid = (field: string, message: string) => dgentError("DGENT_INVALID_QUERY", `${field}: ${message}`, { unit: "fulltext", details: { field } });

export async function hybridSearch(store: Store, query: string, options: HybridOptions = {}): Promise<HybridHit[]> {
  const { vector, text, rrfK = 60, depth, ...rest } = options;
  const { k } = checkSearchOptions(rest);
  if (typeof query !== "string") throw invalid("query", "must be a string");
  if (typeof rrfK !== "number" || !Number.isFinite(rrfK) || rrfK < 0) throw invalid("rrfK", `must be a finite number ≥ 0, got ${String(rrfK)}`);
  const want = depth ?? Math.min(1000, Math.max(k * 3, 50));
  if (!Number.isInteger(want) || want < k || want > 1000) throw invalid("depth", `must be an integer from k to 1000, got ${String(depth)}`);
  const handleOf = async (given: SearchHandle | undefined, name: string): Promise<SearchHandle> => {
    if (given !== undefined) {
      if (typeof given?.search !== "function") throw dgentError("DGENT_INVALID_OPTIONS", `${name === "recall" ? "vector" : "text"}: must be a handle with search(query, { k, filter })`, { unit: "fulltext" });
      return given;
    }
    const h = (await store.plugin(name)) as (SearchHandle & { attach?: (s: Store) => Promise<void> }) | undefined;
    if (!h || typeof h.search !== "function") throw dgentError("DGENT_INVALID_OPTIONS", `hybridSearch: the store has no ${name} plugin; compose it or pass the handle`, { unit: "fulltext" });
    await h.attach?.(store);
    return h;
  };
  const [v, t] = await Promise.all([handleOf(vector, "recall"), handleOf(text, "fulltext")]);
  const searchOptions = rest.filter === undefined ? { k: want } : { k: want, filter: rest.filter };
  const [vh, th] = await Promise.all([v.search(query, searchOptions), t.search(query, searchOptions)]);
  const fused = new Map<string, { score: number; vector: number | null; text: number | null }>();
  const add = (hits: ReadonlyArray<{ id: string }>, which: "vector" | "text") => {
    hits.forEach((h, i) => {
      const e = fused.get(h.id) ?? { score: 0, vector: null, text: null };
      if (e[which] !== null) return;
      e[which] = i + 1;
      e.score += 1 / (rrfK + i + 1);
      fused.set(h.id, e);
    });
  };
  add(vh, "vector");
  add(th, "text");
  return [...fused]
    .map(([id, e]) => ({ id, score: e.score, ranks: { vector: e.vector, text: e.text } }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, k);
}
