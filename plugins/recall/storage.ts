/**
 * Where vectors persist. Three storages, one contract:
 *
 * - `datums` (every tier): one datum per vector under `dgent.vec/<model>/v/`, folded into a saved
 *   artefact (records + ANN graph, see artefact.ts) now and then, after which those datums go.
 *   Loading reads the newest artefact, then the vector datums written since.
 * - `sqlite-vec` (a SQLite tier): a vec0 table and an id table in the tier's database file
 *   (sqlite-vec.ts); the ANN graph is saved as an artefact.
 * - `pgvector` (a Postgres server that has it): a table with a vector column and an HNSW index
 *   (pgvector.ts); searched by the server, nothing kept in process.
 */
import { isDgentError } from "../../core/errors.js";
import type { Datum } from "../../core/datum.js";
import type { Store } from "../../core/store.js";
import { pruneArtefacts, readLatestArtefact, writeArtefact, PAGE, type GraphSettings } from "./artefact.js";
import type { Hit, Metric } from "./exact.js";
import {
  artefactPrefix,
  decodeVector,
  encodeVector,
  modelPrefix,
  TAG_AT,
  TAG_ID,
  TAG_KIND,
  TAG_MODEL,
  vectorDatumId,
  vectorPrefix,
  type ArtefactRecord,
  type StoredVector,
} from "./keys.js";

export type StorageKind = "datums" | "sqlite-vec" | "pgvector";

/** A saved ANN graph and the key, id and createdAt of each vector in it. */
export interface SavedGraph {
  readonly bytes: Buffer;
  readonly settings: GraphSettings;
  readonly keys: ReadonlyArray<{ readonly id: string; readonly key: bigint; readonly createdAt: number }>;
}

export interface Loaded {
  readonly vectors: StoredVector[];
  readonly graph: SavedGraph | null;
}

/** Searches the storage answers itself (sqlite-vec, pgvector). `candidates`: only these ids. */
export interface NativeSearch {
  readonly metrics: readonly Metric[];
  search(query: Float32Array, k: number, metric: Metric, candidates: readonly string[] | null): Promise<Hit[]>;
}

export interface VectorStorage {
  readonly kind: StorageKind;
  /** Every stored vector of the model, and the saved graph when there is one. */
  load(): Promise<Loaded>;
  /** Stores (or replaces) one vector or "not text" marker. */
  put(v: StoredVector): Promise<void>;
  /** Stores many (one transaction where the storage has them). */
  putMany(vs: readonly StoredVector[]): Promise<void>;
  delete(id: string): Promise<void>;
  /**
   * Saves the state of the index: `all` is every vector and marker (the datum storage folds them
   * into an artefact); `graph` the ANN graph, or null. Returns the artefact's generation, or null.
   */
  save(all: () => StoredVector[], graph: SavedGraph | null): Promise<string | null>;
  /**
   * Reorganizes the stored vectors for the storage's native search, when it has such a step
   * (sqlite-vec: trains its cells). Run by `reindex` only, never by a save: it may take seconds.
   */
  optimize?(): Promise<void>;
  /** Deletes everything stored for the model. */
  drop(): Promise<void>;
  close(): Promise<void>;
  readonly native?: NativeSearch;
}

export interface StorageContext {
  readonly store: Store;
  readonly key: string;
  readonly model: string;
  readonly dimensions: number;
  readonly chunkBytes: number;
  readonly warn: (message: string) => void;
}

/** What a stored vector datum is: its vector (or null) for datum `id` created at `createdAt`. */
export function vectorDatum(ctx: Pick<StorageContext, "key" | "model">, v: StoredVector): Datum {
  return {
    id: vectorDatumId(ctx.key, v.id),
    content: encodeVector(v.vector),
    createdAt: Date.now(),
    causalParent: null,
    metadata: { [TAG_KIND]: v.vector === null ? "skip" : "vector", [TAG_ID]: v.id, [TAG_AT]: String(v.createdAt), [TAG_MODEL]: ctx.model },
  };
}

/** The stored vector a vector datum holds, or null when the datum is not one. */
export function fromVectorDatum(d: Datum, dimensions: number): StoredVector | null {
  const kind = d.metadata[TAG_KIND];
  const id = d.metadata[TAG_ID];
  const at = Number(d.metadata[TAG_AT]);
  if ((kind !== "vector" && kind !== "skip") || id === undefined || !Number.isFinite(at)) return null;
  return { id, createdAt: at, vector: kind === "skip" ? null : decodeVector(d.content, dimensions, d.id) };
}

/** Puts `datum`, replacing a different one stored under its id (a vector datum is rewritten when its datum was re-put). */
export async function replace(store: Store, datum: Datum): Promise<void> {
  try {
    await store.put(datum);
  } catch (error) {
    if (!isDgentError(error, "DGENT_CONFLICT")) throw error;
    await store.delete(datum.id);
    await store.put(datum);
  }
}

/** Vectors as datums of the store: works on every tier, survives what the tier survives. */
export class DatumStorage implements VectorStorage {
  readonly kind = "datums" as const;
  readonly #ctx: StorageContext;
  /** The vector datums known to exist, by datum id, with the createdAt they were written for. */
  readonly #deltas = new Map<string, number>();

  constructor(ctx: StorageContext) {
    this.#ctx = ctx;
  }

  async load(): Promise<Loaded> {
    const { store, key, dimensions, warn } = this.#ctx;
    // One listing of the model's folder (headers only) finds both the artefacts and the vector
    // datums written since: on an object store, every listing reads the namespace's envelopes.
    const artefactIds: string[] = [];
    const deltaIds: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: Array<{ id: string }>; cursor: string | null } = await store.query({ prefix: modelPrefix(key), select: "meta", limit: PAGE, order: "oldest", ...(cursor ? { cursor } : {}) });
      for (const { id } of page.items) {
        if (id.startsWith(artefactPrefix(key))) artefactIds.push(id);
        else if (id.startsWith(vectorPrefix(key))) deltaIds.push(id);
      }
      cursor = page.cursor;
    } while (cursor);
    const artefact = await readLatestArtefact(store, key, dimensions, warn, artefactIds);
    const byId = new Map<string, StoredVector>();
    let graph: SavedGraph | null = null;
    if (artefact) {
      for (const r of artefact.records) byId.set(r.id, { id: r.id, createdAt: r.createdAt, vector: r.vector });
      const g = artefact.manifest.graph;
      if (g && artefact.graph) {
        const keys = artefact.records.filter((r) => r.key !== 0n).map((r) => ({ id: r.id, key: r.key, createdAt: r.createdAt }));
        graph = { bytes: artefact.graph, settings: { metric: g.metric, connectivity: g.connectivity, expansionAdd: g.expansionAdd, expansionSearch: g.expansionSearch, quantization: g.quantization ?? "f32" }, keys };
      }
    }
    for (let i = 0; i < deltaIds.length; i += 1000) {
      for (const d of await store.getMany(deltaIds.slice(i, i + 1000))) {
        const v = d && fromVectorDatum(d, dimensions);
        if (!v) continue;
        byId.set(v.id, v);
        this.#deltas.set(v.id, v.createdAt);
      }
    }
    return { vectors: [...byId.values()], graph };
  }

  async put(v: StoredVector): Promise<void> {
    await replace(this.#ctx.store, vectorDatum(this.#ctx, v));
    this.#deltas.set(v.id, v.createdAt);
  }

  async putMany(vs: readonly StoredVector[]): Promise<void> {
    if (vs.length === 0) return;
    try {
      await this.#ctx.store.putMany(vs.map((v) => vectorDatum(this.#ctx, v)));
    } catch (error) {
      // One of them replaces an older vector (a re-put datum): one by one.
      if (!isDgentError(error, "DGENT_CONFLICT")) throw error;
      for (const v of vs) await replace(this.#ctx.store, vectorDatum(this.#ctx, v));
    }
    for (const v of vs) this.#deltas.set(v.id, v.createdAt);
  }

  async delete(id: string): Promise<void> {
    this.#deltas.delete(id);
    await this.#ctx.store.delete(vectorDatumId(this.#ctx.key, id));
  }

  async save(all: () => StoredVector[], graph: SavedGraph | null): Promise<string> {
    const { store, key, model, dimensions, chunkBytes } = this.#ctx;
    const vectors = all();
    const keyOf = new Map(graph?.keys.map((k) => [k.id, k.key]) ?? []);
    const records: ArtefactRecord[] = vectors.map((v) => ({ ...v, key: keyOf.get(v.id) ?? 0n }));
    const gen = await writeArtefact(store, key, model, dimensions, records, true, graph && { bytes: graph.bytes, settings: graph.settings }, chunkBytes);
    // The vector datums the artefact now holds are redundant; one re-put since the snapshot is not.
    for (const v of vectors) {
      if (this.#deltas.get(v.id) !== v.createdAt) continue;
      this.#deltas.delete(v.id);
      await store.delete(vectorDatumId(key, v.id));
    }
    await pruneArtefacts(store, key, gen);
    return gen;
  }

  async drop(): Promise<void> {
    await this.#ctx.store.deleteMany({ prefix: modelPrefix(this.#ctx.key) });
    this.#deltas.clear();
  }

  async close(): Promise<void> {}
}

export { PAGE };
