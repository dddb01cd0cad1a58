/**
 * `POST /v1/ns/:ns/search`: the store's search plugins over HTTP — by meaning (`recall`, vectors),
 * by words (`fulltext`), or both fused (`hybridSearch`, reciprocal rank fusion), with the store's
 * filters applied during the search. The same choice as `dgent search` (cli/search-commands.ts).
 * A store without the plugin a mode needs answers 501 `DGENT_UNSUPPORTED`.
 */
import type { Datum } from "../core/datum.js";
import { dgentError, isDgentError } from "../core/errors.js";
import type { DatumHeader, QueryFilter } from "../core/query.js";
import type { Store } from "../core/store.js";
import { toWire, type WireDatum } from "./wire.js";

export type SearchMode = "auto" | "vector" | "text" | "hybrid";
export const SEARCH_MODES: readonly SearchMode[] = ["auto", "vector", "text", "hybrid"];

/** The search request body. */
export interface SearchRequest {
  /** A text, or (vector mode) a vector of the embedder's size as an array of numbers. */
  readonly query: string | readonly number[];
  readonly mode?: SearchMode;
  readonly k?: number;
  readonly filter?: QueryFilter;
  /** Vector search only: `cosine`, `dot` or `l2`. */
  readonly metric?: string;
  /** What each hit carries besides id and score: nothing (`ids`, default), the header (`meta`) or the whole datum (`full`). */
  readonly select?: "ids" | "meta" | "full";
}

export interface SearchHit {
  readonly id: string;
  readonly score: number;
  /** Hybrid search: the hit's rank (from 1) in the vector and the text results, null where absent. */
  readonly ranks?: { readonly vector: number | null; readonly text: number | null };
  /** With `select: "meta"` or `"full"`: the datum (null when it was deleted since). */
  readonly datum?: WireDatum | DatumHeader | null;
}

export interface SearchAnswer {
  /** The search that ran: `vector`, `text` or `hybrid`. */
  readonly mode: "vector" | "text" | "hybrid";
  readonly items: readonly SearchHit[];
}

interface Handle {
  search(query: string | Float32Array, options?: Record<string, unknown>): Promise<ReadonlyArray<{ id: string; score: number }>>;
  attach?(store: Store): Promise<unknown>;
}
type Hybrid = (store: Store, query: string, options: Record<string, unknown>) => Promise<ReadonlyArray<{ id: string; score: number; ranks: { vector: number | null; text: number | null } }>>;

const VECTOR = "recall";
const TEXT = "fulltext";

const invalid = (field: string, message: string) => dgentError("DGENT_INVALID_QUERY", `${field}: ${message}`, { unit: "server", details: { field } });
const unsupported = (message: string, mode: SearchMode, needs: readonly string[]) =>
  dgentError("DGENT_UNSUPPORTED", message, { unit: "server", details: { capability: "search", mode, needs } });

/** The store's handle of plugin `name`, attached (idempotent); null when the store has no such plugin. */
async function handleOf(store: Store, name: string): Promise<Handle | null> {
  let handle: Handle;
  try {
    handle = (await store.plugin(name)) as Handle;
  } catch (error) {
    if (isDgentError(error, "DGENT_UNKNOWN_PLUGIN")) return null;
    throw error;
  }
  await handle.attach?.(store);
  return handle;
}

let hybrid: Promise<Hybrid> | null = null;
/** Loaded on the first hybrid search: servers that never fuse do not load the fulltext plugin. */
function loadHybrid(): Promise<Hybrid> {
  hybrid ??= import("../plugins/fulltext/hybrid.js").then((m) => m.hybridSearch as unknown as Hybrid);
  return hybrid;
}

export async function search(store: Store, body: Record<string, unknown>): Promise<SearchAnswer> {
  const mode = (body.mode ?? "auto") as SearchMode;
  if (!SEARCH_MODES.includes(mode)) throw invalid("mode", `must be auto, vector, text or hybrid, got ${JSON.stringify(body.mode)}`);
  const select = body.select ?? "ids";
  if (select !== "ids" && select !== "meta" && select !== "full") throw invalid("select", `must be ids, meta or full, got ${JSON.stringify(body.select)}`);
  let query: string | Float32Array;
  if (typeof body.query === "string") query = body.query;
  else if (Array.isArray(body.query) && body.query.length > 0 && body.query.every((x) => typeof x === "number" && Number.isFinite(x))) {
    if (mode === "text" || mode === "hybrid") throw invalid("query", `a vector query needs mode vector (or auto), not ${mode}`);
    query = Float32Array.from(body.query as number[]);
  } else throw invalid("query", "must be a text, or a non-empty array of finite numbers (a vector)");
  if (body.metric !== undefined && mode !== "vector" && mode !== "auto") throw invalid("metric", "applies to vector search only (mode vector)");

  const vector = mode === "text" ? null : await handleOf(store, VECTOR);
  const text = mode === "vector" || typeof query !== "string" ? null : await handleOf(store, TEXT);
  if (mode === "vector" && vector === null) throw unsupported(`vector search needs the "${VECTOR}" plugin in this store`, mode, [VECTOR]);
  if (mode === "text" && text === null) throw unsupported(`text search needs the "${TEXT}" plugin in this store`, mode, [TEXT]);
  if (mode === "hybrid" && (vector === null || text === null)) throw unsupported(`hybrid search needs both the "${VECTOR}" and "${TEXT}" plugins in this store`, mode, [VECTOR, TEXT]);
  if (vector === null && text === null) {
    throw unsupported(typeof query === "string" ? `this store has no search plugin ("${VECTOR}" or "${TEXT}")` : `a vector query needs the "${VECTOR}" plugin in this store`, mode, typeof query === "string" ? [VECTOR, TEXT] : [VECTOR]);
  }

  const options: Record<string, unknown> = {};
  if (body.k !== undefined) options.k = body.k;
  if (body.filter !== undefined) options.filter = body.filter;
  let used: SearchAnswer["mode"];
  let hits: ReadonlyArray<{ id: string; score: number; ranks?: { vector: number | null; text: number | null } }>;
  if (vector !== null && text !== null && typeof query === "string") {
    hits = await (await loadHybrid())(store, query, { ...options, vector, text });
    used = "hybrid";
  } else if (vector !== null) {
    hits = await vector.search(query, body.metric === undefined ? options : { ...options, metric: body.metric });
    used = "vector";
  } else {
    hits = await (text as Handle).search(query, options);
    used = "text";
  }
  const items: SearchHit[] = hits.map((h) => (h.ranks === undefined ? { id: h.id, score: h.score } : { id: h.id, score: h.score, ranks: h.ranks }));
  if (select === "ids" || items.length === 0) return { mode: used, items };
  const datums = await store.getMany(items.map((h) => h.id));
  return {
    mode: used,
    items: items.map((h, i) => ({ ...h, datum: datumOut(datums[i] ?? null, select) })),
  };
}

function datumOut(datum: Datum | null, select: "meta" | "full"): WireDatum | DatumHeader | null {
  if (datum === null) return null;
  if (select === "full") return toWire(datum);
  return { id: datum.id, createdAt: datum.createdAt, causalParent: datum.causalParent, metadata: datum.metadata };
}
