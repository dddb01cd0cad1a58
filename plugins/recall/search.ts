/**
 * One search, once its options are checked and its query is a vector: which index answers it,
 * and how a filter is applied during the search.
 */
import { dgentError } from "../../core/errors.js";
import { filtersNothing, matchesQuery, MAX_GET_MANY, resolveQuery, type QueryFilter, type ResolvedQuery } from "../../core/query.js";
import type { Store } from "../../core/store.js";
import type { AnnIndex } from "./ann.js";
import { PAGE } from "./artefact.js";
import { METRICS, type ExactIndex, type Hit, type Metric } from "./exact.js";
import { isReserved } from "./keys.js";
import type { VectorStorage } from "./storage.js";

const UNIT = "recall";
const MAX_K = 1000;

/** Which index answers a search. */
export type IndexChoice = "auto" | "exact" | "ann" | "native";

export interface VectorSearchOptions {
  /** How many results, 1–1000 (default 10). */
  readonly k?: number;
  /** Only datums meeting these filters (core/QUERIES.md), applied during the search. */
  readonly filter?: QueryFilter;
  /** Default: the plugin's `metric`. The ANN graph serves only its own metric; others are searched exactly. */
  readonly metric?: Metric;
  /** `auto` (default): ANN when built and the metric is its own, else exact. `exact`: brute force. `ann`, `native`: that index or `DGENT_UNSUPPORTED`. */
  readonly index?: IndexChoice;
}

export interface CheckedSearch {
  readonly k: number;
  readonly metric: Metric;
  readonly index: IndexChoice;
  /** The filter and its resolved form; null when there is none (or it filters nothing). */
  readonly filter: { readonly options: QueryFilter; readonly q: ResolvedQuery } | null;
}

export function invalidQuery(field: string, message: string): Error {
  return dgentError("DGENT_INVALID_QUERY", `${field}: ${message}`, { unit: UNIT, details: { field } });
}

/** Options of one search, validated (synchronously: nothing is read before they pass). */
export function checkSearchOptions(options: VectorSearchOptions | undefined, defaultMetric: Metric): CheckedSearch {
  const o = options ?? {};
  if (typeof o !== "object" || o === null) throw invalidQuery("options", "must be an object");
  for (const key of Object.keys(o)) if (!["k", "filter", "metric", "index"].includes(key)) throw invalidQuery(key, "unknown search option (k, filter, metric, index)");
  const k = o.k ?? 10;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw invalidQuery("k", `must be an integer from 1 to ${MAX_K}, got ${String(k)}`);
  const metric = o.metric ?? defaultMetric;
  if (!METRICS.includes(metric)) throw invalidQuery("metric", `must be one of ${METRICS.join(", ")}, got ${JSON.stringify(metric)}`);
  const index = o.index ?? "auto";
  if (!["auto", "exact", "ann", "native"].includes(index)) throw invalidQuery("index", `must be auto, exact, ann or native, got ${JSON.stringify(index)}`);
  if (o.filter === undefined) return { k, metric, index, filter: null };
  const q = resolveQuery(o.filter, { paged: false });
  return { k, metric, index, filter: filtersNothing(q) ? null : { options: o.filter, q } };
}

/** Every id meeting `filter`, paged (the candidates of a filtered search). */
export async function idsMeeting(store: Store, filter: QueryFilter): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: string[]; cursor: string | null } = await store.query({ ...filter, select: "ids", limit: PAGE, ...(cursor ? { cursor } : {}) });
    for (const id of page.items) if (!isReserved(id)) ids.push(id);
    cursor = page.cursor;
  } while (cursor);
  return ids;
}

export interface SearchIndexes {
  readonly store: Store;
  readonly storage: VectorStorage;
  readonly exact: ExactIndex;
  readonly ann: AnnIndex | null;
  /** False on pgvector: the server holds the vectors. */
  readonly inProcess: boolean;
  readonly exactCandidates: number;
  /** Why there is no graph, for the error of `index: "ann"`. */
  readonly noAnn: string;
}

/** Answers one checked search for `vector`. */
export async function runSearch(ix: SearchIndexes, vector: Float32Array, s: CheckedSearch): Promise<Hit[]> {
  const { storage, exact, ann } = ix;
  const { k, metric, index } = s;
  const native = storage.native;
  const useNative = index === "native" || !ix.inProcess;
  if (useNative) {
    if (!native) throw dgentError("DGENT_UNSUPPORTED", `the ${storage.kind} storage has no native index; search with index "exact", "ann" or "auto"`, { unit: UNIT });
    if (!native.metrics.includes(metric)) throw dgentError("DGENT_UNSUPPORTED", `the native ${storage.kind} index does not search by ${metric}`, { unit: UNIT });
  }
  if (index === "ann") {
    if (!ann) throw dgentError("DGENT_UNSUPPORTED", `no ANN index is built (${ix.noAnn}); search with index "auto" or "exact"`, { unit: UNIT });
    if (metric !== ann.metric) throw dgentError("DGENT_UNSUPPORTED", `the ANN graph is built for ${ann.metric}, not ${metric}; search with index "exact"`, { unit: UNIT });
  }
  const graph = !useNative && index !== "exact" && ann !== null && metric === ann.metric ? ann : null;
  if (s.filter === null) {
    if (useNative && native) return native.search(vector, k, metric, null);
    return graph ? graph.search(vector, k) : exact.search(vector, k, metric);
  }
  const { options: filter, q } = s.filter;
  const exactOver = async (): Promise<Hit[]> => {
    const candidates = await idsMeeting(ix.store, filter);
    return useNative && native ? native.search(vector, k, metric, candidates) : exact.search(vector, k, metric, candidates);
  };
  // A selective filter (or no graph): exact over the datums that meet it — k results whenever k exist.
  const count = graph ? await ix.store.count(filter) : 0;
  if (graph === null || count <= ix.exactCandidates) return exactOver();
  // A broad one: walk the graph's results, checking each against the filter, widening until k pass.
  const total = graph.size;
  let want = Math.min(total, Math.max(k * 2, Math.ceil(((k * total) / Math.max(1, count)) * 2)));
  while (want <= MAX_GET_MANY) {
    const hits = graph.search(vector, want);
    const datums = await ix.store.getMany(hits.map((h) => h.id));
    const out: Hit[] = [];
    hits.forEach((h, i) => {
      const d = datums[i];
      if (d && out.length < k && matchesQuery(q, d)) out.push(h);
    });
    if (out.length >= k) return out;
    if (want >= total) break;
    want = Math.min(total, want * 4);
  }
  return exactOver();
}
