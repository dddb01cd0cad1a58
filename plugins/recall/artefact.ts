/**
 * A saved index as datums of the store itself ("next to the data", on every tier): records
 * (ids, createdAt, and for the datum storage the vectors) and the ANN graph, in pieces of at most
 * `chunkBytes`, and a manifest written last — an artefact without its manifest does not exist, so
 * a crash while saving leaves the previous one in force. Each save is a new generation (a UUIDv7,
 * so they sort by time); older ones are deleted once a newer one is complete.
 */
import { type Datum } from "../../core/datum.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import { uuidv7 } from "../../core/ids.js";
import type { Store } from "../../core/store.js";
import type { Quantization } from "./ann.js";
import type { Metric } from "./exact.js";
import { artefactPrefix, decodeRecords, dimensionsError, encodeRecords, TAG_KIND, TAG_MODEL, type ArtefactRecord } from "./keys.js";

const UNIT = "recall";
const FORMAT = 1;
/** Ids per query page when listing the plugin's own datums. */
export const PAGE = 10_000;

export interface GraphSettings {
  readonly metric: Metric;
  readonly connectivity: number;
  readonly expansionAdd: number;
  readonly expansionSearch: number;
  /** Absent in artefacts saved before the option existed: those graphs are f32. `i8`: coded by `quantizeI8` (ann.ts). */
  readonly quantization?: Quantization;
}

export interface Manifest {
  readonly format: number;
  readonly model: string;
  readonly dimensions: number;
  readonly count: number;
  readonly withVectors: boolean;
  readonly recordChunks: number;
  readonly graph: (GraphSettings & { readonly chunks: number; readonly bytes: number }) | null;
  readonly savedAt: number;
}

export interface Artefact {
  readonly gen: string;
  readonly manifest: Manifest;
  readonly records: ArtefactRecord[];
  readonly graph: Buffer | null;
}

const textOf = (d: Datum) => Buffer.from(d.content.buffer, d.content.byteOffset, d.content.byteLength).toString("utf8");

/** Every id under `prefix` (the plugin's own datums), paged. */
export async function listIds(store: Store, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: string[]; cursor: string | null } = await store.query({ prefix, select: "ids", limit: PAGE, order: "oldest", ...(cursor ? { cursor } : {}) });
    ids.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return ids;
}

/** Writes an artefact; returns its generation. */
export async function writeArtefact(
  store: Store,
  key: string,
  model: string,
  dimensions: number,
  records: readonly ArtefactRecord[],
  withVectors: boolean,
  graph: { readonly bytes: Buffer; readonly settings: GraphSettings } | null,
  chunkBytes: number,
): Promise<string> {
  const gen = uuidv7();
  const base = `${artefactPrefix(key)}${gen}`;
  const metadata = { [TAG_KIND]: "artefact", [TAG_MODEL]: model };
  const now = Date.now();
  const datum = (id: string, content: Uint8Array): Datum => ({ id, content, createdAt: now, causalParent: null, metadata });
  const recordChunks = encodeRecords(records, dimensions, withVectors, chunkBytes);
  // Four pieces per call: bounded memory in the tier's batch, few round trips.
  const pieces: Datum[] = recordChunks.map((c, i) => datum(`${base}/r${i}`, c));
  const graphChunks: Buffer[] = [];
  if (graph) for (let o = 0; o < graph.bytes.byteLength; o += chunkBytes) graphChunks.push(graph.bytes.subarray(o, o + chunkBytes));
  graphChunks.forEach((c, i) => pieces.push(datum(`${base}/g${i}`, c)));
  for (let i = 0; i < pieces.length; i += 4) await store.putMany(pieces.slice(i, i + 4));
  const manifest: Manifest = {
    format: FORMAT,
    model,
    dimensions,
    count: records.length,
    withVectors,
    recordChunks: recordChunks.length,
    graph: graph ? { ...graph.settings, chunks: graphChunks.length, bytes: graph.bytes.byteLength } : null,
    savedAt: now,
  };
  await store.put(datum(base, Buffer.from(JSON.stringify(manifest), "utf8")));
  return gen;
}

/** The generations of `ids`, newest first: those with a manifest, and every generation any piece belongs to. */
function generations(key: string, ids: readonly string[]): { complete: string[]; all: Set<string> } {
  const prefix = artefactPrefix(key);
  const complete: string[] = [];
  const all = new Set<string>();
  for (const id of ids) {
    const rest = id.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (slash < 0) complete.push(rest);
    all.add(slash < 0 ? rest : rest.slice(0, slash));
  }
  complete.sort().reverse();
  return { complete, all };
}

/**
 * The newest complete artefact of the model, or null. A generation whose pieces are missing or
 * unreadable is skipped (with `warn`) for the one before it.
 */
export async function readLatestArtefact(store: Store, key: string, dimensions: number, warn: (message: string) => void, listed?: readonly string[]): Promise<Artefact | null> {
  const ids = listed ?? (await listIds(store, artefactPrefix(key)));
  for (const gen of generations(key, ids).complete) {
    try {
      return await readArtefact(store, key, gen, dimensions);
    } catch (error) {
      if (!isDgentError(error, "DGENT_BACKEND_ERROR")) throw error;
      warn(`the saved index ${gen} cannot be read (${error.message}); trying an older one`);
    }
  }
  return null;
}

async function readArtefact(store: Store, key: string, gen: string, dimensions: number): Promise<Artefact> {
  const base = `${artefactPrefix(key)}${gen}`;
  const bad = (why: string) => dgentError("DGENT_BACKEND_ERROR", `saved index ${gen}: ${why}`, { unit: UNIT });
  const [head] = await store.getMany([base]);
  if (!head) throw bad("the manifest is gone");
  let manifest: Manifest;
  try {
    manifest = JSON.parse(textOf(head)) as Manifest;
  } catch {
    throw bad("the manifest is not JSON");
  }
  if (manifest.format !== FORMAT) throw bad(`format ${String(manifest.format)}, this dgent reads ${FORMAT}`);
  if (manifest.dimensions !== dimensions) throw dimensionsError(`saved index ${gen}`, manifest.dimensions, dimensions);
  const recordIds = Array.from({ length: manifest.recordChunks }, (_, i) => `${base}/r${i}`);
  const graphIds = Array.from({ length: manifest.graph?.chunks ?? 0 }, (_, i) => `${base}/g${i}`);
  const pieces = await store.getMany([...recordIds, ...graphIds]);
  const missing = pieces.findIndex((p) => p === null);
  if (missing >= 0) throw bad(`piece ${[...recordIds, ...graphIds][missing]} is gone`);
  const records: ArtefactRecord[] = [];
  for (let i = 0; i < recordIds.length; i++) records.push(...decodeRecords((pieces[i] as Datum).content, dimensions, recordIds[i] as string));
  if (records.length !== manifest.count) throw bad(`${records.length} records, the manifest says ${manifest.count}`);
  let graph: Buffer | null = null;
  if (manifest.graph) {
    graph = Buffer.concat(pieces.slice(recordIds.length).map((p) => (p as Datum).content));
    if (graph.byteLength !== manifest.graph.bytes) throw bad(`the graph is ${graph.byteLength} bytes, the manifest says ${manifest.graph.bytes}`);
  }
  return { gen, manifest, records, graph };
}

/**
 * Deletes every artefact generation older than `keep` (complete or not) — a newer incomplete one
 * may be another process saving right now and is left alone. Returns how many datums went.
 */
export async function pruneArtefacts(store: Store, key: string, keep: string | null): Promise<number> {
  const prefix = artefactPrefix(key);
  // Manifests first: an old generation's manifest never outlives a piece it names.
  const ids = (await listIds(store, prefix)).sort((a, b) => Number(a.slice(prefix.length).includes("/")) - Number(b.slice(prefix.length).includes("/")));
  let n = 0;
  for (const id of ids) {
    const rest = id.slice(prefix.length);
    const gen = rest.includes("/") ? rest.slice(0, rest.indexOf("/")) : rest;
    if (keep === null || gen < keep) n += (await store.delete(id)) ? 1 : 0;
  }
  return n;
}
