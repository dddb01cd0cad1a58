/**
 * The approximate index: an HNSW graph from `usearch` (an optional peer dependency with prebuilt
 * binaries for Linux, macOS and Windows in its npm package, maintained, and able to save and load
 * a graph). Keys are numbers the graph knows vectors by; this wrapper maps them to datum ids.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importOptional } from "../../core/adapter-support.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import type { Hit, Metric } from "./exact.js";

const UNIT = "recall";

/** The part of usearch this plugin uses. */
interface UsearchIndex {
  add(keys: bigint | BigUint64Array, vectors: Float32Array, threads?: number): void;
  search(vector: Float32Array, k: number, threads: number): { keys: BigUint64Array; distances: Float32Array };
  remove(keys: bigint): number;
  size(): number;
  save(path: string): void;
  load(path: string): void;
}
interface UsearchModule {
  Index: new (config: { dimensions: number; metric: string; quantization: string; connectivity: number; expansion_add: number; expansion_search: number; multi: boolean }) => UsearchIndex;
}

/** The graph's own copy of the vectors: half precision (default) or single. */
export type Quantization = "f16" | "f32";

export interface AnnSettings {
  /** Graph degree (usearch `connectivity`, HNSW's M). */
  readonly connectivity: number;
  /** Candidates kept while inserting (efConstruction). */
  readonly expansionAdd: number;
  /** Candidates kept while searching (ef). */
  readonly expansionSearch: number;
  /** How the graph stores vectors (usearch `quantization`). */
  readonly quantization: Quantization;
  /** Threads for bulk builds (0: all cores). Searches and single inserts use one. */
  readonly buildThreads: number;
}

let loaded: Promise<UsearchModule> | null = null;

/** usearch, or `DGENT_MISSING_DEPENDENCY` naming it. */
export function loadUsearch(): Promise<UsearchModule> {
  loaded ??= importOptional<{ default?: UsearchModule } & Partial<UsearchModule>>("usearch", UNIT)
    .then((m) => (m.Index ? (m as UsearchModule) : (m.default as UsearchModule)))
    .catch((error: unknown) => {
      loaded = null;
      if (isDgentError(error, "DGENT_MISSING_DEPENDENCY")) {
        throw dgentError("DGENT_MISSING_DEPENDENCY", 'the recall plugin\'s ANN index needs the package "usearch", which is not installed; run: npm install usearch (or set ann: false for exact search only)', {
          unit: UNIT,
          cause: error,
          details: { package: "usearch" },
        });
      }
      throw error;
    });
  return loaded;
}

const USEARCH_METRIC: Record<Metric, string> = { cosine: "cos", dot: "ip", l2: "l2sq" };

/** A usearch distance as this plugin's score (higher is closer), matching `ExactIndex`. */
function scoreOf(metric: Metric, distance: number): number {
  if (metric === "l2") return -Math.sqrt(Math.max(0, distance));
  return 1 - distance;
}

export class AnnIndex {
  readonly metric: Metric;
  readonly dimensions: number;
  readonly #settings: AnnSettings;
  readonly #lib: UsearchModule;
  #index: UsearchIndex;
  readonly #keyOf = new Map<string, bigint>();
  readonly #idOf = new Map<bigint, string>();
  #nextKey = 1n;

  constructor(lib: UsearchModule, dimensions: number, metric: Metric, settings: AnnSettings) {
    this.#lib = lib;
    this.dimensions = dimensions;
    this.metric = metric;
    this.#settings = settings;
    this.#index = this.#make();
  }

  #make(): UsearchIndex {
    const s = this.#settings;
    return new this.#lib.Index({
      dimensions: this.dimensions,
      metric: USEARCH_METRIC[this.metric],
      quantization: s.quantization,
      connectivity: s.connectivity,
      expansion_add: s.expansionAdd,
      expansion_search: s.expansionSearch,
      multi: false,
    });
  }

  get size(): number {
    return this.#keyOf.size;
  }

  has(id: string): boolean {
    return this.#keyOf.has(id);
  }

  /** Adds many vectors at once (the build path; uses `buildThreads`). Ids already present are replaced. */
  addMany(entries: ReadonlyArray<{ readonly id: string; readonly vector: Float32Array }>): void {
    if (entries.length === 0) return;
    for (const e of entries) this.delete(e.id);
    const keys = new BigUint64Array(entries.length);
    const matrix = new Float32Array(entries.length * this.dimensions);
    entries.forEach((e, i) => {
      const key = this.#nextKey++;
      keys[i] = key;
      matrix.set(e.vector, i * this.dimensions);
      this.#keyOf.set(e.id, key);
      this.#idOf.set(key, e.id);
    });
    this.#index.add(keys, matrix, this.#settings.buildThreads);
  }

  add(id: string, vector: Float32Array): void {
    this.delete(id);
    const key = this.#nextKey++;
    this.#index.add(key, vector, 1);
    this.#keyOf.set(id, key);
    this.#idOf.set(key, id);
  }

  delete(id: string): boolean {
    const key = this.#keyOf.get(id);
    if (key === undefined) return false;
    this.#index.remove(key);
    this.#keyOf.delete(id);
    this.#idOf.delete(key);
    return true;
  }

  /** The approximate best `k`, best first. */
  search(query: Float32Array, k: number): Hit[] {
    if (this.#keyOf.size === 0) return [];
    const { keys, distances } = this.#index.search(query, Math.min(k, this.#keyOf.size), 1);
    const hits: Hit[] = [];
    for (let i = 0; i < keys.length; i++) {
      const id = this.#idOf.get(keys[i] as bigint);
      if (id !== undefined) hits.push({ id, score: scoreOf(this.metric, distances[i] as number) });
    }
    return hits;
  }

  /**
   * The graph as bytes (usearch's own file format, written through a temporary file: its binding
   * saves to paths only) and the key of each id.
   */
  serialize(): { graph: Buffer; keys: Array<[string, bigint]> } {
    const dir = mkdtempSync(join(tmpdir(), "dgent-recall-"));
    try {
      const file = join(dir, "graph.usearch");
      this.#index.save(file);
      return { graph: readFileSync(file), keys: [...this.#keyOf] };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Replaces the graph with saved bytes and their keys. */
  restore(graph: Uint8Array, keys: ReadonlyArray<readonly [string, bigint]>): void {
    const dir = mkdtempSync(join(tmpdir(), "dgent-recall-"));
    try {
      const file = join(dir, "graph.usearch");
      writeFileSync(file, graph);
      const index = this.#make();
      index.load(file);
      if (index.size() !== keys.length) {
        throw dgentError("DGENT_BACKEND_ERROR", `the saved ANN graph holds ${index.size()} vectors but its key list ${keys.length}`, { unit: UNIT });
      }
      this.#index = index;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    this.#keyOf.clear();
    this.#idOf.clear();
    let max = 0n;
    for (const [id, key] of keys) {
      this.#keyOf.set(id, key);
      this.#idOf.set(key, id);
      if (key > max) max = key;
    }
    this.#nextKey = max + 1n;
  }
}
