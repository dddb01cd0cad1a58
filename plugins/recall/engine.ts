/**
 * The vector memory of one store: the in-process indexes (exact, and HNSW once large), the
 * storage the vectors persist in, and the catch-up that makes both agree with the datums after a
 * crash, a restart, or writes made while nothing was indexing.
 */
import type { Datum } from "../../core/datum.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import type { Store } from "../../core/store.js";
import { AnnIndex, loadUsearch, type Quantization } from "./ann.js";
import type { GraphSettings } from "./artefact.js";
import { catchUp, type CatchUpReport } from "./catch-up.js";
import { checkVector, embedChecked } from "./embedder.js";
import { ExactIndex, type Hit, type Metric } from "./exact.js";
import { isReserved, modelKey, type StoredVector } from "./keys.js";
import { openStorage } from "./open-storage.js";
import type { RecallConfig } from "./options.js";
import { checkSearchOptions, invalidQuery, runSearch, type VectorSearchOptions } from "./search.js";
import type { StorageKind, VectorStorage } from "./storage.js";
import { textOf } from "./text.js";

export type { CatchUpReport } from "./catch-up.js";
export type { IndexChoice, VectorSearchOptions } from "./search.js";

const UNIT = "recall";

export interface VectorRecallStats {
  readonly model: string;
  readonly dimensions: number;
  readonly metric: Metric;
  /** Where vectors persist; null before `attach`. */
  readonly storage: StorageKind | null;
  /** Why `storage` is not the native one the tier could have had (pgvector missing, sqlite-vec not installed…). */
  readonly storageNote: string | null;
  readonly attached: boolean;
  /** Vectors indexed (in process; on pgvector, on the server). */
  readonly vectors: number;
  /** Datums indexed as "not text". */
  readonly skipped: number;
  /** The HNSW graph: `buildMs` is the time it took to build, or (when `loadedFromArtefact`) to load and bring up to date. */
  readonly ann: { readonly active: boolean; readonly size: number; readonly threshold: number; readonly quantization: Quantization; readonly rerank: number; readonly loadedFromArtefact: boolean; readonly buildMs: number | null };
  /** Bytes of the exact index (vectors, norms, ids); the ANN graph is measured by the benchmark. */
  readonly exactBytes: number;
  readonly embedded: number;
  readonly lastCatchUp: CatchUpReport | null;
  readonly loadMs: number | null;
  readonly saves: number;
  readonly lastSave: { readonly gen: string | null; readonly ms: number } | null;
  /** Changes since the last save. */
  readonly unsaved: number;
  /** Puts seen before `attach`: the catch-up indexes them. */
  readonly unattachedWrites: number;
  /** Background errors (saves, builds, other processes' changes), newest last, at most 10. */
  readonly errors: readonly string[];
}

export class VectorRecall {
  readonly config: RecallConfig;
  readonly key: string;
  readonly #warn: (message: string, details?: Readonly<Record<string, unknown>>) => void;
  #store: Store | null = null;
  #storage: VectorStorage | null = null;
  /** Resolves to the storage once it is open (writes during the load wait for it, not for the catch-up). */
  #storageOpen: Promise<VectorStorage> | null = null;
  /** True when the graph was built here (not loaded): worth saving at once. */
  #graphBuilt = false;
  #storageNote: string | null = null;
  /** Resolves when attach (load + catch-up) is done. */
  #ready: Promise<void> | null = null;
  #closed = false;
  readonly #exact: ExactIndex;
  #ann: AnnIndex | null = null;
  #annFromArtefact = false;
  #annBuildMs: number | null = null;
  /** Every indexed datum id with its createdAt and whether it is text (vector) or not (skip marker). */
  readonly #catalog = new Map<string, { createdAt: number; text: boolean }>();
  /** Vectors given with `add()`, used by the `afterPut` that follows. */
  readonly #given = new Map<string, Float32Array>();
  /** What those `afterPut`s indexed: `add()` stores them in one batch after its `putMany`. */
  readonly #givenIndexed = new Map<string, StoredVector>();
  /** Ids put or deleted while a catch-up runs: the catch-up leaves them alone. */
  #touched: Set<string> | null = null;
  #unsaved = 0;
  #embedded = 0;
  #saves = 0;
  #lastSave: { gen: string | null; ms: number } | null = null;
  #lastCatchUp: CatchUpReport | null = null;
  #loadMs: number | null = null;
  #unattached = 0;
  readonly #errors: string[] = [];
  /** Background work (saves, the ANN build), one at a time. */
  #jobs: Promise<void> = Promise.resolve();
  #saveQueued = false;

  constructor(config: RecallConfig, warn: (message: string, details?: Readonly<Record<string, unknown>>) => void) {
    this.config = config;
    this.key = modelKey(config.embedder.id);
    this.#warn = warn;
    this.#exact = new ExactIndex(config.embedder.dimensions);
  }

  get attached(): boolean {
    return this.#store !== null;
  }

  // -------------------------------------------------------------------------------------------
  // Attach: storage, load, ANN, catch-up
  // -------------------------------------------------------------------------------------------

  /**
   * Binds the engine to its store (once), loads the vectors and catches up with the datums.
   * With `rebuild`, everything stored for the model is dropped first and every datum embedded
   * again (what `reindex --full` does; it also gets past vectors stored with other dimensions).
   */
  async attach(store: Store, rebuild = false): Promise<CatchUpReport> {
    if (this.#store !== null && this.#store !== store) {
      throw dgentError("DGENT_INVALID_OPTIONS", "this recall plugin is already attached to another store", { unit: UNIT });
    }
    if (this.#closed) throw dgentError("DGENT_CLOSED", "the store of this recall plugin is closed", { unit: UNIT });
    if (this.#ready !== null && rebuild) return this.reindex(true);
    this.#store = store;
    this.#ready ??= this.#attach(store, rebuild).catch((error: unknown) => {
      // A failed attach can be retried (a tier that was down).
      this.#ready = null;
      this.#store = null;
      this.#storageOpen = null;
      throw error;
    });
    await this.#ready;
    if (rebuild) await this.save();
    return this.#lastCatchUp as CatchUpReport;
  }

  async #attach(store: Store, rebuild: boolean): Promise<void> {
    this.#touched = new Set();
    const started = performance.now();
    this.#storageOpen = this.#openStorage(store, rebuild);
    this.#storage = await this.#storageOpen;
    const loaded = await this.#storage.load();
    for (const v of loaded.vectors) {
      if (this.#touched.has(v.id) || !this.#indexable(v.id)) continue;
      this.#setLocal(v);
    }
    await this.#setUpAnn(loaded.graph);
    this.#loadMs = performance.now() - started;
    await this.#catchUp(store);
    if (this.config.saveEvery > 0 && (this.#graphBuilt || this.#unsaved >= this.config.saveEvery)) this.#queueSave();
  }

  async #openStorage(store: Store, rebuild: boolean): Promise<VectorStorage> {
    const { embedder } = this.config;
    const ctx = { store, key: this.key, model: embedder.id, dimensions: embedder.dimensions, chunkBytes: this.config.chunkBytes, warn: (message: string) => this.#warn(message) };
    const { storage, note } = await openStorage(store, ctx, this.config, rebuild);
    this.#storageNote = note;
    return storage;
  }

  get #inProcess(): boolean {
    return this.#storage?.kind !== "pgvector";
  }

  /** Records a loaded or new vector in the catalog and the in-process indexes (not the storage). */
  #setLocal(v: StoredVector): void {
    this.#catalog.set(v.id, { createdAt: v.createdAt, text: v.vector !== null });
    if (!this.#inProcess) return;
    if (v.vector !== null && v.vector.length === this.config.embedder.dimensions) {
      this.#exact.set(v.id, v.createdAt, v.vector);
      this.#ann?.add(v.id, v.vector);
    } else {
      this.#exact.delete(v.id);
      this.#ann?.delete(v.id);
    }
  }

  #deleteLocal(id: string): boolean {
    const had = this.#catalog.delete(id);
    this.#exact.delete(id);
    this.#ann?.delete(id);
    return had;
  }

  /** Loads a saved graph or builds one, when the ANN index is wanted. */
  async #setUpAnn(saved: { bytes: Buffer; settings: GraphSettings; keys: ReadonlyArray<{ id: string; key: bigint; createdAt: number }> } | null): Promise<void> {
    const { ann, annThreshold, metric, annSettings } = this.config;
    if (!this.#inProcess || ann === false) return;
    let lib;
    try {
      lib = await loadUsearch();
    } catch (error) {
      if (ann === true || !isDgentError(error, "DGENT_MISSING_DEPENDENCY")) throw error;
      this.#warn("usearch is not installed: searches are exact (brute force) at every size; npm install usearch for the ANN index");
      this.#storageNote ??= "usearch is not installed: exact search only";
      return;
    }
    if (ann === "auto" && this.#exact.size < annThreshold) {
      this.#annLib = lib;
      return;
    }
    const started = performance.now();
    const index = this.#newAnn(lib);
    const s = saved?.settings;
    if (saved && s && s.metric === metric && s.connectivity === annSettings.connectivity && s.expansionAdd === annSettings.expansionAdd && (s.quantization ?? "f32") === annSettings.quantization) {
      try {
        index.restore(saved.bytes, saved.keys.map((k) => [k.id, k.key] as const));
        // The graph may be older than the vectors: drop what changed, add what is missing.
        for (const k of saved.keys) if (this.#exact.createdAt(k.id) !== k.createdAt) index.delete(k.id);
        const missing = [...this.#exact.entries()].filter((e) => !index.has(e.id));
        index.addMany(missing);
        this.#unsaved += missing.length;
        this.#annFromArtefact = true;
      } catch (error) {
        if (!isDgentError(error)) throw error;
        this.#warn(`the saved ANN graph cannot be used (${error.message}); rebuilding it`);
        return this.#buildAnn(lib);
      }
    } else {
      return this.#buildAnn(lib);
    }
    this.#ann = index;
    this.#annBuildMs = performance.now() - started;
  }

  #annLib: Awaited<ReturnType<typeof loadUsearch>> | null = null;

  /** An empty graph with the configured settings, re-ranking (when on) with the exact index's vectors. */
  #newAnn(lib: Awaited<ReturnType<typeof loadUsearch>>): AnnIndex {
    const { metric, annSettings, embedder } = this.config;
    return new AnnIndex(lib, embedder.dimensions, metric, annSettings, (query, ids, k) => this.#exact.search(query, k, metric, ids));
  }

  /** Builds the graph from the exact index (all cores), and asks for a save: a build costs far more than a load. */
  #buildAnn(lib: Awaited<ReturnType<typeof loadUsearch>>): void {
    const started = performance.now();
    const index = this.#newAnn(lib);
    index.addMany([...this.#exact.entries()]);
    this.#ann = index;
    this.#annFromArtefact = false;
    this.#annBuildMs = performance.now() - started;
    this.#graphBuilt = true;
  }

  /** In `auto` mode: builds the graph once the exact index reaches the threshold (in the background). */
  #maybeStartAnn(): void {
    if (this.#ann || !this.#annLib || this.config.ann !== "auto" || this.#exact.size < this.config.annThreshold) return;
    const lib = this.#annLib;
    this.#annLib = null;
    this.#job("build the ANN index", async () => {
      if (this.#closed) return;
      this.#buildAnn(lib);
      if (this.config.saveEvery > 0) this.#queueSave();
    });
  }

  /** The datum ids this plugin indexes: not its own, and under `prefix`. */
  #indexable(id: string): boolean {
    return !isReserved(id) && id.startsWith(this.config.prefix);
  }

  /** Runs the catch-up (catch-up.ts) against this engine's indexes. */
  async #catchUp(store: Store): Promise<CatchUpReport> {
    const touched = (this.#touched ??= new Set());
    const report = await catchUp({
      store,
      storage: this.#storage as VectorStorage,
      embedder: this.config.embedder,
      batchSize: this.config.batchSize,
      prefix: this.config.prefix,
      scan: store.capabilities.queryCost === "scan",
      touched,
      indexable: (id) => this.#indexable(id),
      known: (id) => this.#catalog.get(id)?.createdAt,
      knownIds: () => [...this.#catalog.keys()],
      textOf: (d) => textOf(this.config, d),
      indexed: (v) => {
        this.#setLocal(v);
        this.#unsaved++;
        if (v.vector) this.#embedded++;
      },
      forgotten: (id) => {
        this.#deleteLocal(id);
        this.#unsaved++;
      },
    });
    this.#touched = null;
    this.#maybeStartAnn();
    this.#lastCatchUp = report;
    return report;
  }

  // -------------------------------------------------------------------------------------------
  // The hooks
  // -------------------------------------------------------------------------------------------

  /** `afterPut`: embeds and indexes `input` (the caller's datum), stores its vector. */
  async onPut(stored: Datum, input: Datum): Promise<void> {
    const id = stored.id;
    if (!this.#indexable(id)) return;
    if (this.#store === null) {
      this.#given.delete(id);
      this.#unattached++;
      return;
    }
    this.#touched?.add(id);
    const given = this.#given.get(id);
    this.#given.delete(id);
    if (given !== undefined) {
      const v: StoredVector = { id, createdAt: stored.createdAt, vector: given };
      this.#setLocal(v);
      this.#givenIndexed.set(id, v);
      return;
    }
    // An identical re-put (the law keeps the first createdAt): nothing changed.
    if (this.#catalog.get(id)?.createdAt === stored.createdAt) return;
    const text = textOf(this.config, input);
    const vector = text === null ? null : ((await embedChecked(this.config.embedder, [text]))[0] as Float32Array);
    const v: StoredVector = { id, createdAt: stored.createdAt, vector };
    const storage = await (this.#storageOpen as Promise<VectorStorage>);
    this.#setLocal(v);
    if (vector) this.#embedded++;
    try {
      await storage.put(v);
    } catch (error) {
      // A write flushed while the store closes (write-behind) cannot be stored any more; the
      // next catch-up embeds it again.
      if (!isDgentError(error, "DGENT_CLOSED")) throw error;
      this.#note(`the vector of ${JSON.stringify(id)} was not stored: the store was closing; the next catch-up stores it`);
      return;
    }
    this.#changed();
  }

  /** `afterDelete`: drops the vector. */
  async onDelete(id: string): Promise<void> {
    if (!this.#indexable(id) || this.#store === null) return;
    this.#touched?.add(id);
    this.#given.delete(id);
    const storage = await (this.#storageOpen as Promise<VectorStorage>);
    const had = this.#deleteLocal(id);
    // Even when not indexed here: another process may have stored one.
    await storage.delete(id);
    if (had) this.#changed();
  }

  /** A change another process made (Postgres LISTEN/NOTIFY): applied in the background. */
  onExternal(op: "put" | "delete", id: string): void {
    const store = this.#store;
    if (!this.#indexable(id) || store === null) return;
    this.#touched?.add(id);
    this.#job(`apply another process's ${op} of ${JSON.stringify(id)}`, async () => {
      await this.#ready;
      if (op === "delete") {
        if (this.#deleteLocal(id)) this.#changed();
        return;
      }
      const d = await store.get(id);
      if (d === null || this.#catalog.get(id)?.createdAt === d.createdAt) return;
      const text = textOf(this.config, d);
      const vector = text === null ? null : ((await embedChecked(this.config.embedder, [text]))[0] as Float32Array);
      const v = { id, createdAt: d.createdAt, vector };
      await (this.#storage as VectorStorage).put(v);
      this.#setLocal(v);
      this.#changed();
    });
  }

  /**
   * Puts datums with their vectors: one `putMany`, whose `afterPut`s index the given vectors
   * (nothing is embedded), then the vectors stored in one batch (one transaction on sqlite-vec).
   * A crash between the two leaves datums without vectors: the catch-up embeds them with the
   * plugin's embedder, which is why given vectors must come from that same model.
   */
  async add(items: ReadonlyArray<{ readonly datum: Datum; readonly vector: Float32Array }>): Promise<string[]> {
    const store = this.#requireStore();
    if (!Array.isArray(items)) throw dgentError("DGENT_INVALID_OPTIONS", "add() takes an array of { datum, vector }", { unit: UNIT });
    const vectors = items.map(({ datum, vector }) => checkVector(vector, this.config.embedder.dimensions, `the vector given for ${JSON.stringify(datum?.id)}`, "DGENT_INVALID_OPTIONS").slice());
    const storage = await (this.#storageOpen as Promise<VectorStorage>);
    items.forEach(({ datum }, i) => this.#given.set(datum.id, vectors[i] as Float32Array));
    let ids: string[];
    try {
      ids = await store.putMany(items.map((i) => i.datum));
    } finally {
      for (const { datum } of items) this.#given.delete(datum.id);
    }
    const batch: StoredVector[] = [];
    for (const { datum } of items) {
      const v = this.#givenIndexed.get(datum.id);
      this.#givenIndexed.delete(datum.id);
      if (v) batch.push(v);
    }
    await storage.putMany(batch);
    for (let i = 0; i < batch.length; i++) this.#changed();
    return ids;
  }

  #changed(): void {
    this.#unsaved++;
    this.#maybeStartAnn();
    if (this.config.saveEvery > 0 && this.#unsaved >= this.config.saveEvery) this.#queueSave();
  }

  // -------------------------------------------------------------------------------------------
  // Search
  // -------------------------------------------------------------------------------------------

  async search(query: string | Float32Array, options?: VectorSearchOptions): Promise<Hit[]> {
    const checked = checkSearchOptions(options, this.config.metric);
    if (typeof query !== "string" && !(query instanceof Float32Array)) throw invalidQuery("query", "must be a string or a Float32Array");
    const store = this.#requireStore();
    await this.#ready;
    const vector = typeof query === "string" ? ((await embedChecked(this.config.embedder, [query]))[0] as Float32Array) : checkVector(query, this.config.embedder.dimensions, "the query vector", "DGENT_INVALID_QUERY");
    return runSearch(
      {
        store,
        storage: this.#storage as VectorStorage,
        exact: this.#exact,
        ann: this.#ann,
        inProcess: this.#inProcess,
        exactCandidates: this.config.exactCandidates,
        noAnn: this.config.ann === false ? "ann: false" : `${this.#exact.size} vectors, threshold ${this.config.annThreshold}`,
      },
      vector,
      checked,
    );
  }

  #requireStore(): Store {
    if (this.#store === null) {
      throw dgentError("DGENT_NOT_OPEN", "the recall plugin is not attached to its store yet: call `await vectorMemory(store)` (or `handle.attach(store)`) once after creating the store", { unit: UNIT });
    }
    return this.#store;
  }

  // -------------------------------------------------------------------------------------------
  // Maintenance
  // -------------------------------------------------------------------------------------------

  /** Catches up again; with `full`, drops every stored vector of the model and embeds everything anew. Then rebuilds the graph and saves. */
  async reindex(full: boolean): Promise<CatchUpReport> {
    const store = this.#requireStore();
    await this.#ready;
    await this.idle();
    if (full) {
      await (this.#storage as VectorStorage).close();
      for (const id of [...this.#catalog.keys()]) this.#deleteLocal(id);
      this.#ann = null;
      this.#annLib = null;
      this.#ready = this.#attach(store, true);
      await this.#ready;
      await this.#optimize();
      await this.save();
      return this.#lastCatchUp as CatchUpReport;
    }
    this.#ann = null;
    this.#annLib = null;
    const report = await this.#catchUp(store);
    await this.#setUpAnn(null);
    await this.#optimize();
    await this.save();
    return report;
  }

  /** The storage's own reorganization for native search (sqlite-vec's cells), as one job. */
  async #optimize(): Promise<void> {
    const storage = this.#storage as VectorStorage;
    if (storage.optimize) await this.#job("optimize the stored vectors", () => (storage.optimize as () => Promise<void>).call(storage), true);
  }

  /** Saves the index now (the datum storage folds its vector datums into one artefact). */
  async save(): Promise<void> {
    this.#requireStore();
    await this.#ready;
    await this.#job("save the index", () => this.#save(), true);
  }

  #queueSave(): void {
    if (this.#saveQueued) return;
    this.#saveQueued = true;
    this.#job("save the index", async () => {
      this.#saveQueued = false;
      await this.#save();
    });
  }

  async #save(): Promise<void> {
    const storage = this.#storage;
    if (storage === null || this.#closed) return;
    const started = performance.now();
    const unsaved = this.#unsaved;
    const graph = this.#ann ? { ...this.#ann.serialize(), settings: { metric: this.#ann.metric, connectivity: this.config.annSettings.connectivity, expansionAdd: this.config.annSettings.expansionAdd, expansionSearch: this.config.annSettings.expansionSearch, quantization: this.config.annSettings.quantization } } : null;
    const savedGraph = graph && {
      bytes: graph.graph,
      settings: graph.settings,
      keys: graph.keys.map(([id, key]) => ({ id, key, createdAt: this.#catalog.get(id)?.createdAt ?? 0 })),
    };
    const all = (): StoredVector[] => {
      const out: StoredVector[] = [];
      for (const [id, c] of this.#catalog) {
        out.push({ id, createdAt: c.createdAt, vector: c.text ? (this.#exact.vector(id) ?? null) : null });
      }
      return out;
    };
    const gen = await storage.save(all, savedGraph);
    this.#unsaved = Math.max(0, this.#unsaved - unsaved);
    this.#graphBuilt = false;
    this.#saves++;
    this.#lastSave = { gen, ms: performance.now() - started };
  }

  /** Waits for background work (saves, an ANN build, other processes' changes) to finish. */
  async idle(): Promise<void> {
    let last: Promise<void>;
    do {
      last = this.#jobs;
      await last;
    } while (last !== this.#jobs);
  }

  /** Runs `work` after the jobs before it. Errors are reported (warning hook, `stats().errors`) — or thrown, with `rethrow`. */
  #job(what: string, work: () => Promise<void>, rethrow = false): Promise<void> {
    const run = this.#jobs.then(work);
    this.#jobs = run.catch((error: unknown) => {
      // Work cut short by the store closing is expected: the previous artefact stays in force.
      if (rethrow || (this.#closed && isDgentError(error, "DGENT_CLOSED"))) return;
      this.#note(`could not ${what}: ${(error as Error)?.message ?? String(error)}`);
    });
    return rethrow ? run : this.#jobs;
  }

  #note(message: string): void {
    this.#errors.push(message);
    if (this.#errors.length > 10) this.#errors.shift();
    this.#warn(message);
  }

  /** `close` hook: stops background work and closes the storage's own connections. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
    await this.#storage?.close();
  }

  stats(): VectorRecallStats {
    let skipped = 0;
    for (const c of this.#catalog.values()) if (!c.text) skipped++;
    return {
      model: this.config.embedder.id,
      dimensions: this.config.embedder.dimensions,
      metric: this.config.metric,
      storage: this.#storage?.kind ?? null,
      storageNote: this.#storageNote,
      attached: this.#store !== null,
      vectors: this.#catalog.size - skipped,
      skipped,
      ann: { active: this.#ann !== null, size: this.#ann?.size ?? 0, threshold: this.config.annThreshold, quantization: this.config.annSettings.quantization, rerank: this.config.annSettings.rerank, loadedFromArtefact: this.#annFromArtefact, buildMs: this.#annBuildMs },
      exactBytes: this.#exact.bytes(),
      embedded: this.#embedded,
      lastCatchUp: this.#lastCatchUp,
      loadMs: this.#loadMs,
      saves: this.#saves,
      lastSave: this.#lastSave,
      unsaved: this.#unsaved,
      unattachedWrites: this.#unattached,
      errors: [...this.#errors],
    };
  }
}
