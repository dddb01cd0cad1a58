/** The plugin's options: their type, their JSON Schema (checked with ajv at composition), their defaults. */
import type { Datum } from "../../core/datum.js";
import type { JsonSchema } from "../../core/options-schema.js";
import type { AnnSettings, Quantization } from "./ann.js";
import type { Embedder, EmbedderSpec } from "./embedder.js";
import type { Metric } from "./exact.js";
import type { StorageKind } from "./storage.js";

export interface RecallOptions {
  /** The embedder (default: `hashingEmbedder()`, 384 dimensions — keyword-ish, not semantic). In a config file: `{ hashing: {…} }` or `{ module, export?, options? }`. */
  embedder?: Embedder | EmbedderSpec;
  /** The index's metric and the searches' default (default `cosine`). */
  metric?: Metric;
  /** Index only datums whose id starts with this (default: all). */
  prefix?: string;
  /** Embed this field of JSON content (dotted path, e.g. `"message.text"`) instead of the whole content. */
  field?: string;
  /** The text to embed for a datum, or null to skip it (code only; overrides `field`). */
  text?: (datum: Datum) => string | null;
  /** The HNSW index (usearch): `"auto"` (default) from `annThreshold` vectors on, `true` always (usearch required), `false` never. */
  ann?: boolean | "auto";
  /** Vectors before `ann: "auto"` builds the graph (default 10 000). */
  annThreshold?: number;
  /** HNSW degree M (default 16). */
  connectivity?: number;
  /** HNSW efConstruction (default 128). */
  expansionAdd?: number;
  /** HNSW ef at search time (default 64). */
  expansionSearch?: number;
  /** How the graph stores its own copy of the vectors: `i8` (the default for cosine; cosine only), `f16` (the default for dot and L2) or `f32`. */
  quantization?: Quantization;
  /** Graph candidates per result re-ranked exactly with the f32 vectors (default 4 with `i8`, else 0: the graph's order and scores). */
  rerank?: number;
  /** Threads for a bulk graph build (default 0: all cores). */
  buildThreads?: number;
  /** Where vectors persist (default `auto`: sqlite-vec on a SQLite tier, pgvector when `postgresUrl` reaches a server that has it, else datums). */
  storage?: "auto" | StorageKind;
  /** A Postgres URL for the pgvector storage (the tier's own connection is private). */
  postgresUrl?: string;
  /** Save the index after this many changes (default 10 000; 0: only `save()` and `reindex()`). */
  saveEvery?: number;
  /** Texts per `embed` call during a catch-up (default 64). */
  batchSize?: number;
  /** A filter met by at most this many datums is searched exactly over them (default 20 000). */
  exactCandidates?: number;
  /** Largest piece of a saved artefact, in bytes (default 4 MiB). */
  chunkBytes?: number;
}

/** Options after defaults: what the engine runs with. */
export interface RecallConfig {
  readonly embedder: Embedder;
  readonly metric: Metric;
  readonly prefix: string;
  readonly field: string | null;
  readonly text: ((datum: Datum) => string | null) | null;
  readonly ann: boolean | "auto";
  readonly annThreshold: number;
  readonly annSettings: AnnSettings;
  readonly storage: "auto" | StorageKind;
  readonly postgresUrl: string | null;
  readonly saveEvery: number;
  readonly batchSize: number;
  readonly exactCandidates: number;
  readonly chunkBytes: number;
}

const NOT_JSON = { not: { type: ["string", "number", "boolean", "null", "array", "object"] } };
const INT = (minimum: number, maximum: number, dflt: number) => ({ type: "integer", minimum, maximum, default: dflt });

export const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    embedder: {
      anyOf: [
        {
          type: "object",
          additionalProperties: false,
          required: ["hashing"],
          properties: { hashing: { type: "object", additionalProperties: false, properties: { dimensions: { type: "integer", minimum: 2, maximum: 65536 }, ngram: { type: "integer", minimum: 1, maximum: 16 } } } },
        },
        {
          type: "object",
          additionalProperties: false,
          required: ["module"],
          properties: { module: { type: "string", minLength: 1 }, export: { type: "string", minLength: 1 }, options: { type: "object" } },
        },
        { type: "object", required: ["id", "dimensions", "embed"], properties: { id: { type: "string" }, dimensions: { type: "integer" }, embed: NOT_JSON } },
      ],
    },
    metric: { enum: ["cosine", "dot", "l2"], default: "cosine" },
    prefix: { type: "string", default: "" },
    field: { type: "string", minLength: 1 },
    text: { description: "(datum) => string | null", ...NOT_JSON },
    ann: { enum: [true, false, "auto"], default: "auto" },
    annThreshold: INT(0, 2 ** 31, 10_000),
    connectivity: INT(2, 256, 16),
    expansionAdd: INT(1, 4096, 128),
    expansionSearch: INT(1, 4096, 64),
    // No schema default: it depends on the metric (resolveConfig).
    quantization: { enum: ["i8", "f16", "f32"] },
    rerank: { type: "integer", minimum: 0, maximum: 64 },
    buildThreads: INT(0, 1024, 0),
    storage: { enum: ["auto", "datums", "sqlite-vec", "pgvector"], default: "auto" },
    postgresUrl: { type: "string", minLength: 1 },
    saveEvery: INT(0, 2 ** 31, 10_000),
    batchSize: INT(1, 4096, 64),
    exactCandidates: INT(0, 2 ** 31, 20_000),
    chunkBytes: INT(65_536, 256 * 1024 * 1024, 4 * 1024 * 1024),
  },
  // i8 graphs hold each vector scaled to its own range: cosine's order only.
  if: { required: ["metric"], properties: { metric: { enum: ["dot", "l2"] } } },
  then: { properties: { quantization: { enum: ["f16", "f32"] } } },
};

/** The options with their defaults, and the embedder they resolved to. */
export function resolveConfig(options: RecallOptions, embedder: Embedder): RecallConfig {
  const metric = options.metric ?? "cosine";
  const quantization = options.quantization ?? (metric === "cosine" ? "i8" : "f16");
  return {
    embedder,
    metric,
    prefix: options.prefix ?? "",
    field: options.field ?? null,
    text: options.text ?? null,
    ann: options.ann ?? "auto",
    annThreshold: options.annThreshold ?? 10_000,
    annSettings: {
      connectivity: options.connectivity ?? 16,
      expansionAdd: options.expansionAdd ?? 128,
      expansionSearch: options.expansionSearch ?? 64,
      quantization,
      rerank: options.rerank ?? (quantization === "i8" ? 4 : 0),
      buildThreads: options.buildThreads ?? 0,
    },
    storage: options.storage ?? "auto",
    postgresUrl: options.postgresUrl ?? null,
    saveEvery: options.saveEvery ?? 10_000,
    batchSize: options.batchSize ?? 64,
    exactCandidates: options.exactCandidates ?? 20_000,
    chunkBytes: options.chunkBytes ?? 4 * 1024 * 1024,
  };
}
