import type { Datum } from "../../core/datum.js";
import { compareNewestFirst } from "../../core/order.js";
import type { ResolvedListOptions } from "../../core/protocol.js";
import type { ListedObject, ObjectBackend } from "./backend.js";
import { queryDir, sha256Hex, timeKey, type KeyLayout, type Marker } from "./keys.js";

/** What `list` needs from the adapter around it. */
export interface ListContext {
  readonly backend: ObjectBackend;
  readonly layout: KeyLayout;
  readonly concurrency: number;
  /** Runs one backend call with the adapter's retry policy. */
  attempt<T>(fn: () => Promise<T>): Promise<T>;
  /** Reads and decodes the datum at a data key; null when absent. */
  readKey(key: string): Promise<Datum | null>;
}

/** The result of a list, and the markers it found pointing at nothing (for repair). */
export interface ListResult {
  readonly datums: Datum[];
  readonly garbage: ListedObject[];
  /** Requests-worth of work done: marker pages read and datums fetched. */
  readonly pages: number;
  readonly reads: number;
}

interface Candidate {
  readonly marker: Marker;
  readonly listed: ListedObject;
}

/**
 * `list` over the time index. Walks the markers of the deepest indexed directory of `prefix`
 * newest first, reads the datums they name in parallel batches, and stops as soon as it holds
 * `limit` datums plus every datum tied with the last one in `createdAt`. Markers whose datum is
 * missing, or has another `createdAt` (left by a writer that lost a race or died), are skipped and
 * returned as garbage. Cost: ceil(markers walked / page size) listings plus one GET per marker
 * read; markers walked = results + ties + garbage, plus, when `prefix` does not end at an indexed
 * `/`, the non-matching markers of that directory (filtered by name, without a GET).
 */
export async function listNewestFirst(ctx: ListContext, options: ResolvedListOptions): Promise<ListResult> {
  const { prefix, after, limit } = options;
  const result = { datums: [] as Datum[], garbage: [] as ListedObject[], pages: 0, reads: 0 };
  if (limit <= 0) return result;
  const { layout } = ctx;
  const { dir, exact } = queryDir(prefix, layout.indexDepth);
  const dirPrefix = layout.dirPrefix(dir);
  const pageSize = exact ? Math.min(1000, Math.max(limit + 1, 20)) : 1000;

  async function* markers(): AsyncGenerator<Candidate> {
    let cursor: string | null = null;
    do {
      const page = await ctx.attempt(() => ctx.backend.list(dirPrefix, cursor, pageSize));
      result.pages++;
      for (const listed of page.objects) {
        const marker = layout.parseMarker(listed.key, dirPrefix);
        if (marker === null) continue;
        if (marker.createdAt <= after) return; // markers sort newest first: the rest are older
        yield { marker, listed };
      }
      cursor = page.cursor;
    } while (cursor !== null);
  }

  const found = result.datums;
  const accepted = new Set<string>();
  const walk = markers();
  let boundary: number | undefined; // createdAt of the limit-th datum, once known
  let exhausted = false;
  while (!exhausted) {
    const batch: Candidate[] = [];
    const size = boundary === undefined ? limit - found.length : ctx.concurrency;
    while (batch.length < size) {
      const next = await walk.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const { marker } = next.value;
      if (boundary !== undefined && marker.createdAt !== boundary) {
        exhausted = true; // past the tie group: nothing further can make the cut
        break;
      }
      if (marker.id !== null && !marker.id.startsWith(prefix)) continue;
      if (accepted.has(marker.hash)) continue; // a stale marker of a datum already listed
      batch.push(next.value);
    }
    const checked = await mapLimit(batch, ctx.concurrency, async ({ marker, listed }) => {
      result.reads++;
      const datum = await ctx.readKey(layout.dataKeyOfHash(marker.hash));
      if (datum === null || timeKey(datum.createdAt) !== timeKey(marker.createdAt) || sha256Hex(datum.id) !== marker.hash) {
        result.garbage.push(listed);
        return null;
      }
      return datum.id.startsWith(prefix) ? datum : null;
    });
    for (const datum of checked) {
      if (datum === null) continue;
      const hash = sha256Hex(datum.id);
      if (accepted.has(hash)) continue;
      accepted.add(hash);
      found.push(datum);
    }
    if (boundary === undefined && found.length >= limit) boundary = (found[limit - 1] as Datum).createdAt;
  }
  await walk.return(undefined);
  found.sort(compareNewestFirst);
  if (found.length > limit) found.length = limit;
  return result;
}

/** `fn` over `items` with at most `limit` running at once; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
