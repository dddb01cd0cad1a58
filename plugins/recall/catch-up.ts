/**
 * The catch-up: makes the stored vectors agree with the datums, after a crash, a restart, or
 * writes made while nothing was indexing. Reads headers only (`select: "meta"`), then the contents
 * of what must be embedded.
 */
import type { Datum } from "../../core/datum.js";
import type { DatumHeader, QueryFilter } from "../../core/query.js";
import type { Store } from "../../core/store.js";
import { embedChecked, type Embedder } from "./embedder.js";
import { RESERVED_END, RESERVED_PREFIX, type StoredVector } from "./keys.js";
import type { VectorStorage } from "./storage.js";

export interface CatchUpReport {
  /** Datums looked at. */
  readonly checked: number;
  /** Datums embedded because their vector was missing or stale. */
  readonly embedded: number;
  /** Datums that are not text (recorded so they are not read again). */
  readonly skipped: number;
  /** Vectors whose datum is gone, removed. */
  readonly removed: number;
  readonly ms: number;
}

/** What the catch-up needs of the engine. */
export interface CatchUpHost {
  readonly store: Store;
  readonly storage: VectorStorage;
  readonly embedder: Embedder;
  readonly batchSize: number;
  readonly prefix: string;
  /**
   * The tier reads every object for a filter (`queryCost: "scan"`, S3 and GCS): one pass over the
   * prefix, the plugin's own datums skipped here. Otherwise two id ranges around them, which the
   * tier's indexes skip.
   */
  readonly scan: boolean;
  /** Ids put or deleted since the catch-up began: their own hooks handle them. */
  readonly touched: ReadonlySet<string>;
  indexable(id: string): boolean;
  /** The createdAt recorded with `id`'s vector (or marker), if any. */
  known(id: string): number | undefined;
  /** Every id with a vector or marker. */
  knownIds(): string[];
  textOf(d: Datum): string | null;
  /** Records a stored vector in the in-process indexes. */
  indexed(v: StoredVector): void;
  /** Forgets `id` in the in-process indexes. */
  forgotten(id: string): void;
}

/** The id ranges to read: everything under `prefix` except the plugin's own datums. */
function ranges(prefix: string, scan: boolean): QueryFilter[] {
  if (prefix.startsWith(RESERVED_PREFIX)) return [];
  if (scan || !RESERVED_PREFIX.startsWith(prefix)) return [{ prefix }];
  return [
    { prefix, idRange: { lt: RESERVED_PREFIX } },
    { prefix, idRange: { gte: RESERVED_END } },
  ];
}

/**
 * A datum without a vector (or with one recorded for an earlier datum of the same id: deleted
 * and put again) is embedded; a vector whose datum is gone is deleted.
 */
export async function catchUp(h: CatchUpHost): Promise<CatchUpReport> {
  const started = performance.now();
  const seen = new Set<string>();
  let checked = 0;
  let embedded = 0;
  let skipped = 0;
  let pending: string[] = [];
  const flush = async (): Promise<void> => {
    const ids = pending.filter((id) => !h.touched.has(id));
    pending = [];
    if (ids.length === 0) return;
    const work = (await h.store.getMany(ids)).filter((d): d is Datum => d !== null && !h.touched.has(d.id)).map((datum) => ({ datum, text: h.textOf(datum) }));
    const texts = work.filter((w) => w.text !== null);
    const vectors = texts.length ? await embedChecked(h.embedder, texts.map((w) => w.text as string)) : [];
    const byId = new Map(texts.map((w, i) => [w.datum.id, vectors[i] as Float32Array]));
    const batch = work.filter(({ datum }) => !h.touched.has(datum.id)).map(({ datum }): StoredVector => ({ id: datum.id, createdAt: datum.createdAt, vector: byId.get(datum.id) ?? null }));
    await h.storage.putMany(batch);
    for (const v of batch) {
      if (h.touched.has(v.id)) continue;
      h.indexed(v);
      if (v.vector) embedded++;
      else skipped++;
    }
  };
  for (const range of ranges(h.prefix, h.scan)) {
    let cursor: string | null = null;
    do {
      const page: { items: DatumHeader[]; cursor: string | null } = await h.store.query({ ...range, select: "meta", order: "oldest", limit: 5000, ...(cursor ? { cursor } : {}) });
      for (const header of page.items) {
        if (!h.indexable(header.id)) continue;
        checked++;
        seen.add(header.id);
        if (h.touched.has(header.id) || h.known(header.id) === header.createdAt) continue;
        pending.push(header.id);
        if (pending.length >= h.batchSize) await flush();
      }
      cursor = page.cursor;
    } while (cursor);
  }
  await flush();
  let removed = 0;
  for (const id of h.knownIds()) {
    if (seen.has(id) || h.touched.has(id)) continue;
    h.forgotten(id);
    await h.storage.delete(id);
    removed++;
  }
  return { checked, embedded, skipped, removed, ms: performance.now() - started };
}
