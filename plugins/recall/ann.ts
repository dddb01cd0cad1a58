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
  add(keys: bigint | BigUint64Array, vectors: Float32Array | Int8Array, threads?: number): void;
  search(vector: Float32Array | Int8Array, k: number, threads: number): { keys: BigUint64Array; distances: Float32Array };
  remove(keys: bigint): number;
  size(): number;
  save(path: string): void;
  load(path: string): void;
}
interface UsearchModule {
  Index: new (config: { dimensions: number; metric: string; quantization: string; connectivity: number; expansion_add: number; expansion_search: number; multi: boolean }) => UsearchIndex;
}

/**
 * The graph's own copy of the vectors: 8-bit integers (cosine only; the default there), half
 * precision (the default for dot and L2) or single.
 *
 * `i8` vectors are quantized here, not by usearch: each vector is scaled so that its largest
 * |component| is 127 and rounded. Cosine does not see a vector's scale, so this loses nothing but
 * rounding and uses the whole 8-bit range (usearch's own cast scales every vector to length 127,
 * which leaves a 384-dimension vector's components around ±6; in the benchmark ours gave recall@10
 * 0.959 against 0.953 after the re-rank). Either way the graph's own order keeps only ~0.75 of the
 * top 10 on clustered vectors — neighbours differ by less than 8 bits resolve — so the candidates
 * are re-ranked with the exact f32 vectors (`Rescorer`), and the scores returned are exact. A saved graph records its quantization and is
 * rebuilt when it differs from the options; dgent wrote no i8 graph before this coding, and a
 * change to it must come with a new name.
 */
export type Quantization = "i8" | "f16" | "f32";

/** The exact best `k` of `ids` for `query` (the exact index's scores). */
export type Rescorer = (query: Float32Array, ids: readonly string[], k: number) => Hit[];

export interface AnnSettings {
  /** Graph degree (usearch `connectivity`, HNSW's M). */
  readonly connectivity: number;
  /** Candidates kept while inserting (efConstruction). */
  readonly expansionAdd: number;
  /** Candidates kept while searching (ef). */
  readonly expansionSearch: number;
  /** How the graph stores vectors (usearch `quantization`). */
  readonly quantization: Quantization;
  /**
   * Candidates per result re-ranked exactly: a search for k asks the graph for k × rerank and
   * returns the best k by exact score (needs a `Rescorer`). 0 or 1: the graph's own order.
   */
  readonly rerank: number;
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

/** `vector` as 8-bit integers, scaled so its largest |component| is 127 (all zeros stays zeros). */
export function quantizeI8(vector: Float32Array, out: Int8Array = new Int8Array(vector.length), offset = 0): Int8Array {
  let max = 0;
  for (let i = 0; i < vector.length; i++) {
    const a = Math.abs(vector[i] as number);
    if (a > max) max = a;
  }
  const scale = max > 0 && Number.isFinite(max) ? 127 / max : 0;
  for (let i = 0; i < vector.length; i++) {
    const x = (vector[i] as number) * scale;
    // The store truncates toward zero: ±0.5 first rounds half away from zero.
    out[offset + i] = x < 0 ? x - 0.5 : x + 0.5;
  }
  return out;
}

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
  readonly #rescore: Rescorer | null;
  #index: UsearchIndex;
  readonly #keyOf = new Map<string, bigint>();
  /** By `Number(key)`: keys stay far below 2^53, and number keys look up several times faster than bigint ones. */
  readonly #idOf = new Map<number, string>();
  #nextKey = 1n;

  constructor(lib: UsearchModule, dimensions: number, metric: Metric, settings: AnnSettings, rescore: Rescorer | null = null) {
    if (settings.quantization === "i8" && metric !== "cosine") {
      // Per-vector scaling keeps cosine's order only; dot and L2 see the scale.
      throw dgentError("DGENT_INVALID_OPTIONS", `quantization "i8" serves the cosine metric only, not ${metric}; use f16 or f32`, { unit: UNIT });
    }
    this.#lib = lib;
    this.dimensions = dimensions;
    this.metric = metric;
    this.#settings = settings;
    this.#rescore = settings.rerank > 1 ? rescore : null;
    this.#index = this.#make();
  }

  /** What the graph is given for `vector`: itself, or its i8 quantization. */
  #encode(vector: Float32Array): Float32Array | Int8Array {
    return this.#settings.quantization === "i8" ? quantizeI8(vector) : vector;
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
    const i8 = this.#settings.quantization === "i8";
    const matrix = i8 ? new Int8Array(entries.length * this.dimensions) : new Float32Array(entries.length * this.dimensions);
    entries.forEach((e, i) => {
      const key = this.#nextKey++;
      keys[i] = key;
      if (i8) quantizeI8(e.vector, matrix as Int8Array, i * this.dimensions);
      else (matrix as Float32Array).set(e.vector, i * this.dimensions);
      this.#keyOf.set(e.id, key);
      this.#idOf.set(Number(key), e.id);
    });
    this.#index.add(keys, matrix, this.#settings.buildThreads);
  }

  add(id: string, vector: Float32Array): void {
    this.delete(id);
    const key = this.#nextKey++;
    this.#index.add(key, this.#encode(vector), 1);
    this.#keyOf.set(id, key);
    this.#idOf.set(Number(key), id);
  }

  delete(id: string): boolean {
    const key = this.#keyOf.get(id);
    if (key === undefined) return false;
    this.#index.remove(key);
    this.#keyOf.delete(id);
    this.#idOf.delete(Number(key));
    return true;
  }

  /** The approximate best `k`, best first (re-ranked exactly when `rerank` is on). */
  search(query: Float32Array, k: number): Hit[] {
    if (this.#keyOf.size === 0) return [];
    const rescore = this.#rescore;
    const wanted = Math.min(rescore ? k * this.#settings.rerank : k, this.#keyOf.size);
    const { keys, distances } = this.#index.search(this.#encode(query), wanted, 1);
    if (rescore) {
      const ids: string[] = [];
      for (let i = 0; i < keys.length; i++) {
        const id = this.#idOf.get(Number(keys[i]));
        if (id !== undefined) ids.push(id);
      }
      return rescore(query, ids, k);
    }
    const hits: Hit[] = [];
    for (let i = 0; i < keys.length; i++) {
      const id = this.#idOf.get(Number(keys[i]));
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
      this.#idOf.set(Number(key), id);
      if (key > max) max = key;
    }
    this.#nextKey = max + 1n;
  }
}
