import type { Datum } from "../../core/datum.js";
import { compareIds, compareNewestFirst } from "../../core/order.js";
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
 * newest first, one `createdAt` at a time, and reads the datums they name in parallel batches
 * until it holds `limit` datums that no unread marker can displace.
 *
 * Within one `createdAt` the markers sort by id ascending, but `list` orders ties by id
 * descending (`compareNewestFirst`). So the markers of a time are listed in full, by name only,
 * and read from the highest id down: a group of ties at the boundary costs GETs for the datums
 * that make the cut, not for the whole group. Hashed markers (ids too long to spell out; the id
 * is only known from the datum) are read first in their group, all of them once the group is
 * reached. Markers whose datum is missing, or has another `createdAt` (left by a writer that lost
 * a race or died), are skipped and returned as garbage; the walk then reads on.
 *
 * Cost: ceil(markers walked / page size) listings plus one GET per marker read. Markers walked =
 * those read, the rest of the boundary's `createdAt` group, and, when `prefix` does not end at an
 * indexed `/`, the non-matching markers of that directory (filtered by name). Markers read =
 * results + garbage + hashed markers of the boundary's group.
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
    let last = Number.NaN;
    let run = 0; // markers in a row with the createdAt of the last one
    do {
      // A group of ties running past the end of a page is listed to its end in full pages.
      const size = run > 1 ? 1000 : pageSize;
      const page = await ctx.attempt(() => ctx.backend.list(dirPrefix, cursor, size));
      result.pages++;
      for (const listed of page.objects) {
        const marker = layout.parseMarker(listed.key, dirPrefix);
        if (marker === null) continue;
        if (marker.createdAt <= after) return; // markers sort newest first: the rest are older
        run = marker.createdAt === last ? run + 1 : 1;
        last = marker.createdAt;
        if (marker.id !== null && !marker.id.startsWith(prefix)) continue;
        yield { marker, listed };
      }
      cursor = page.cursor;
    } while (cursor !== null);
  }

  const found = result.datums;
  const accepted = new Set<string>();
  const walk = markers();
  let listedNext: Candidate | undefined; // the first marker listed and not yet in `pending`
  let walked = false;
  let pending: Candidate[] = []; // one createdAt's markers in reading order, unread from `head` on
  let head = 0;

  const peekListed = async (): Promise<Candidate | undefined> => {
    if (listedNext === undefined && !walked) {
      const next = await walk.next();
      if (next.done) walked = true;
      else listedNext = next.value;
    }
    return listedNext;
  };
  /** Lists every marker of the next createdAt into `pending`, in reading order; false at the end. */
  const takeGroup = async (): Promise<boolean> => {
    const first = await peekListed();
    if (first === undefined) return false;
    const group: Candidate[] = [];
    for (let c: Candidate | undefined = first; c !== undefined && c.marker.createdAt === first.marker.createdAt; c = await peekListed()) {
      group.push(c);
      listedNext = undefined;
    }
    pending = readingOrder(group);
    head = 0;
    return true;
  };
  /** The next marker of `pending` to read, past stale markers of datums already listed. */
  const nextPending = (): Candidate | undefined => {
    while (head < pending.length) {
      const next = pending[head] as Candidate;
      if (!accepted.has(next.marker.hash)) return next;
      head++;
    }
    return undefined;
  };
  /** How many datums held sort before all that a marker at (`createdAt`, `id`) and those after it can yield. */
  const settled = (createdAt: number, id: string | null): number => {
    let n = 0;
    for (const datum of found) if (sortsBefore(datum, createdAt, id)) n++;
    return n;
  };

  for (;;) {
    let next = nextPending();
    if (next === undefined) {
      const listed = await peekListed();
      if (listed === undefined) break;
      // Settled by time alone: the next createdAt need not be listed in full.
      if (settled(listed.marker.createdAt, null) >= limit) break;
      await takeGroup();
      next = nextPending();
      if (next === undefined) continue;
    }
    const want = limit - settled(next.marker.createdAt, next.marker.id);
    if (want <= 0) break;
    const batch: Candidate[] = [];
    while (batch.length < want) {
      const c = nextPending();
      if (c === undefined) {
        if (await takeGroup()) continue;
        break;
      }
      batch.push(c);
      head++;
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
  }
  await walk.return(undefined);
  found.sort(compareNewestFirst);
  if (found.length > limit) found.length = limit;
  return result;
}

/** Hashed markers first (their ids are unknown until read), then the rest by id descending. */
function readingOrder(group: Candidate[]): Candidate[] {
  const hashed = group.filter((c) => c.marker.id === null);
  const named = group.filter((c) => c.marker.id !== null);
  named.sort((a, b) => compareIds(b.marker.id as string, a.marker.id as string));
  return hashed.length === 0 ? named : [...hashed, ...named];
}

/**
 * Whether `datum` comes before everything a marker at (`createdAt`, `id`) and the markers after it
 * in reading order can yield: it is newer, or tied with a higher id (with `id` null, unknown, only
 * newer counts).
 */
function sortsBefore(datum: Datum, createdAt: number, id: string | null): boolean {
  if (datum.createdAt !== createdAt) return datum.createdAt > createdAt;
  return id !== null && compareIds(datum.id, id) > 0;
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
