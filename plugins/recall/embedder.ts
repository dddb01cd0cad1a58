/**
 * Embedders: anything that turns texts into vectors of a declared size, under a model id that is
 * recorded with every vector. The built-in `hashingEmbedder` is deterministic and offline — and
 * NOT semantic: it hashes character n-grams and words, so texts that share spellings score close
 * and synonyms do not. Good for tests, for keyword-ish similarity, and for trying the plugin out.
 */
import { pathToFileURL } from "node:url";
import { isAbsolute, resolve } from "node:path";
import { dgentError, isDgentError } from "../../core/errors.js";

/** Folder name, registry key, tap name and error unit (also in index.ts). */
const UNIT = "recall";

/** Turns texts into vectors. One embedder, one model id: vectors of two models never share an index. */
export interface Embedder {
  /** The model id stored with each vector (e.g. `"text-embedding-3-small"`). Changing it starts a new index. */
  readonly id: string;
  /** Every vector has exactly this many components. */
  readonly dimensions: number;
  /** One vector per text, in order. */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
}

export interface HashingEmbedderOptions {
  /** Vector size (default 384). */
  dimensions?: number;
  /** Character n-gram length (default 3); words are hashed whole as well. */
  ngram?: number;
}

/** FNV-1a over UTF-16 code units: fast, deterministic, good enough to spread n-grams. */
function fnv1a(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const WORD = /[\p{L}\p{N}_]+/gu;

/**
 * A deterministic, offline embedder: lower-cased words and the character n-grams of each word
 * (padded with a space at both ends) are hashed into `dimensions` buckets with a ±1 sign (the
 * hashing trick), then the vector is L2-normalised. Cosine similarity between two texts then
 * measures how many words and spellings they share. It knows nothing of meaning: "car" and
 * "automobile" are unrelated to it. Model id: `dgent-hashing-v1-d<dimensions>-n<ngram>`.
 */
export function hashingEmbedder(options: HashingEmbedderOptions = {}): Embedder {
  const dimensions = options.dimensions ?? 384;
  const ngram = options.ngram ?? 3;
  if (!Number.isInteger(dimensions) || dimensions < 2 || dimensions > 65_536) {
    throw dgentError("DGENT_INVALID_OPTIONS", `hashingEmbedder: dimensions must be an integer from 2 to 65536, got ${String(dimensions)}`, { unit: UNIT });
  }
  if (!Number.isInteger(ngram) || ngram < 1 || ngram > 16) {
    throw dgentError("DGENT_INVALID_OPTIONS", `hashingEmbedder: ngram must be an integer from 1 to 16, got ${String(ngram)}`, { unit: UNIT });
  }
  const add = (v: Float32Array, token: string, weight: number): void => {
    const h = fnv1a(token, ngram);
    v[h % dimensions] = (v[h % dimensions] as number) + (h & 0x80000000 ? -weight : weight);
  };
  const one = (text: string): Float32Array => {
    const v = new Float32Array(dimensions);
    for (const [word] of text.toLowerCase().matchAll(WORD)) {
      add(v, `w:${word}`, 1);
      const padded = ` ${word} `;
      const chars = Array.from(padded);
      if (chars.length <= ngram) add(v, padded, 0.5);
      else for (let i = 0; i + ngram <= chars.length; i++) add(v, chars.slice(i, i + ngram).join(""), 0.5);
    }
    let norm = 0;
    for (let i = 0; i < dimensions; i++) norm += (v[i] as number) ** 2;
    if (norm > 0) {
      const scale = 1 / Math.sqrt(norm);
      for (let i = 0; i < dimensions; i++) v[i] = (v[i] as number) * scale;
    }
    return v;
  };
  return Object.freeze({
    id: `dgent-hashing-v1-d${dimensions}-n${ngram}`,
    dimensions,
    embed: async (texts: readonly string[]) => texts.map(one),
  });
}

/** An embedder named in a config file: the built-in one, or a module's export. */
export type EmbedderSpec =
  | { readonly hashing: HashingEmbedderOptions }
  | { readonly module: string; readonly export?: string; readonly options?: Readonly<Record<string, unknown>> };

export function isEmbedder(value: unknown): value is Embedder {
  const e = value as Partial<Embedder> | null;
  return typeof e === "object" && e !== null && typeof e.id === "string" && typeof e.dimensions === "number" && typeof e.embed === "function";
}

/**
 * The embedder of the options: an `Embedder` as given; `{ hashing: {…} }` the built-in one;
 * `{ module, export?, options? }` imports the module (a path relative to the working directory —
 * anchor it with `${DGENT_CONFIG_DIR}` in a config file — or a package name) and calls its export
 * (default: `default`) with `options`, or takes it as the embedder when it already is one.
 */
export async function resolveEmbedder(spec: Embedder | EmbedderSpec | undefined): Promise<Embedder> {
  if (spec === undefined) return hashingEmbedder();
  if (isEmbedder(spec)) return checkEmbedder(spec);
  if ("hashing" in spec) return hashingEmbedder(spec.hashing);
  const specifier = spec.module.startsWith(".") || isAbsolute(spec.module) ? pathToFileURL(resolve(spec.module)).href : spec.module;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    throw dgentError("DGENT_MISSING_DEPENDENCY", `the recall plugin cannot import the embedder module ${JSON.stringify(spec.module)}: ${(error as Error).message}`, {
      unit: UNIT,
      cause: error,
      details: { module: spec.module },
    });
  }
  const name = spec.export ?? "default";
  const exported = mod[name];
  const made = typeof exported === "function" ? await (exported as (o: unknown) => unknown)(spec.options ?? {}) : exported;
  if (!isEmbedder(made)) {
    throw dgentError("DGENT_INVALID_OPTIONS", `the export ${JSON.stringify(name)} of ${JSON.stringify(spec.module)} is not an embedder ({ id, dimensions, embed }) nor a function returning one`, {
      unit: UNIT,
      details: { module: spec.module, export: name },
    });
  }
  return checkEmbedder(made);
}

function checkEmbedder(e: Embedder): Embedder {
  if (e.id.length === 0 || e.id.length > 200) {
    throw dgentError("DGENT_INVALID_OPTIONS", `an embedder's id must be 1 to 200 characters, got ${JSON.stringify(e.id)}`, { unit: UNIT });
  }
  if (!Number.isInteger(e.dimensions) || e.dimensions < 1 || e.dimensions > 65_536) {
    throw dgentError("DGENT_INVALID_OPTIONS", `embedder ${JSON.stringify(e.id)}: dimensions must be an integer from 1 to 65536, got ${String(e.dimensions)}`, { unit: UNIT });
  }
  return e;
}

/** Throws unless `v` is a Float32Array of `dimensions` finite numbers. */
export function checkVector(v: unknown, dimensions: number, what: string, code: "DGENT_INVALID_QUERY" | "DGENT_INVALID_OPTIONS" | "DGENT_PLUGIN_FAILED"): Float32Array {
  if (!(v instanceof Float32Array)) throw dgentError(code, `${what} must be a Float32Array`, { unit: UNIT, details: { field: "vector" } });
  if (v.length !== dimensions) {
    throw dgentError(code, `${what} has ${v.length} components; the index holds vectors of ${dimensions}`, { unit: UNIT, details: { field: "vector", dimensions, got: v.length } });
  }
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) throw dgentError(code, `${what} holds a non-finite number at [${i}]`, { unit: UNIT, details: { field: "vector", index: i } });
  }
  return v;
}

/** Embeds `texts`, checking the embedder kept its word: one vector per text, the declared size, finite. */
export async function embedChecked(embedder: Embedder, texts: readonly string[]): Promise<Float32Array[]> {
  let vectors: Float32Array[];
  try {
    vectors = await embedder.embed(texts);
  } catch (error) {
    if (isDgentError(error)) throw error;
    throw dgentError("DGENT_PLUGIN_FAILED", `embedder ${JSON.stringify(embedder.id)} failed: ${(error as Error)?.message ?? String(error)}`, { unit: UNIT, cause: error });
  }
  if (!Array.isArray(vectors) || vectors.length !== texts.length) {
    throw dgentError("DGENT_PLUGIN_FAILED", `embedder ${JSON.stringify(embedder.id)} returned ${Array.isArray(vectors) ? vectors.length : "no"} vectors for ${texts.length} texts`, { unit: UNIT });
  }
  return vectors.map((v, i) => checkVector(v, embedder.dimensions, `embedder ${JSON.stringify(embedder.id)}'s vector for text ${i}`, "DGENT_PLUGIN_FAILED"));
}
