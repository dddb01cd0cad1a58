import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { compareIds } from "../../core/order.js";
import { compareInOrder, filtersNothing, headerOf, matchesQuery, type DatumHeader, type ResolvedQuery } from "../../core/query.js";
import type { ListedObject } from "./backend.js";
import { decodeEnvelope, decodeHead, ENVELOPE_PROBE_BYTES } from "./envelope.js";
import { queryDir, sha256Hex, timeKey } from "./keys.js";
import { mapLimit } from "./list.js";
import { byTime, newestFirst, oldestFirst, type Listed, type WalkContext, type WalkRange } from "./walk.js";

/**
 * Queries over the time index (QUERIES.md; cost in README.md, "Queries"). A query walks the
 * markers of one directory — the deepest indexed `/`-prefix of its id prefix (or of the common
 * prefix of its id range) — from the position its cursor or `before` gives (a `StartAfter`), in
 * its order, one `createdAt` at a time. Markers name the time and (for ids up to 100 bytes) the
 * id, so prefix, id range, time bounds and cursor are checked on names. Everything else is in the
 * datum's envelope, which is read for each remaining marker: a ranged read of the object's first
 * bytes (its header and envelope), a whole GET only where the content is wanted. Reads run
 * `concurrency` at a time, in the query's order, and stop once the page is full.
 */

export interface QueryContext extends WalkContext {
  readonly concurrency: number;
  /** The adapter's name, for errors. */
  readonly unit: string;
}

/** What a walk found beyond its items: markers pointing at nothing (for repair) and its requests. */
export interface QueryTally {
  readonly garbage: ListedObject[];
  lists: number;
  reads: number;
}

/** Bytes read from the start of each object when a tag or parent filter decides whether its content is wanted. */
export const FULL_PROBE_BYTES = 16 * 1024;
/** Most markers read at once between two checks of the page (bounds one query's memory). */
const MAX_BATCH = 256;

/** A datum's header as read, and the datum itself when the read held all of it. */
interface Loaded {
  readonly header: DatumHeader;
  readonly datum: Datum | null;
}

/** A marker whose id is known (from its name, or by reading a hashed one). */
interface Item extends Listed {
  readonly id: string;
  loaded?: Loaded | null;
}

/** How a candidate is read: whole (`null`), or its first `n` bytes. */
type ReadLength = number | null;

export function newTally(): QueryTally {
  return { garbage: [], lists: 0, reads: 0 };
}

function hasDataFilter(q: ResolvedQuery): boolean {
  return q.where.length > 0 || q.parent !== null;
}

/** The first `n` code points two strings share. */
function commonPrefix(a: string, b: string): string {
  const x = [...a];
  const y = [...b];
  let n = 0;
  while (n < x.length && n < y.length && x[n] === y[n]) n++;
  return x.slice(0, n).join("");
}

/**
 * The directory and key range a query walks, or null when nothing can match. Every id in
 * `[gte, lt)` starts with the common prefix of `gte` and `lt`, so an id range narrows the
 * directory as a prefix does.
 */
export function walkRange(q: ResolvedQuery, ctx: QueryContext, firstPage: number): WalkRange | null {
  let prefix = q.prefix;
  if (q.idGte !== null && q.idLt !== null) {
    if (compareIds(q.idGte, q.idLt) >= 0) return null;
    const common = commonPrefix(q.idGte, q.idLt);
    if (common.startsWith(prefix)) prefix = common;
    else if (!prefix.startsWith(common)) return null;
  }
  // createdAt is never negative: nothing is before 0.
  if (q.before !== null && q.before <= 0) return null;
  const cursor = q.cursor;
  if (cursor !== null && q.order === "newest" && cursor.createdAt < 0) return null;
  const dirPrefix = ctx.layout.dirPrefix(queryDir(prefix, ctx.layout.indexDepth).dir);
  // Keys sort newest first; within a time, named markers ("." + hex) before hashed ones ("~" + hash).
  let startAfter: string | null = null;
  if (q.before !== null && Number.isFinite(q.before)) startAfter = `${dirPrefix}${timeKey(q.before)}~~`; // past every marker at `before`
  if (cursor !== null && q.order === "newest" && cursor.createdAt >= 0) {
    const key = dirPrefix + timeKey(cursor.createdAt); // the start of the cursor's time
    if (startAfter === null || key > startAfter) startAfter = key;
  }
  const after = q.after;
  const from = q.order === "oldest" && cursor !== null ? cursor.createdAt : null;
  const stop = (createdAt: number): boolean => (after !== null && createdAt <= after) || (from !== null && createdAt < from);
  return { dirPrefix, startAfter, stop, firstPage };
}

/** True when a marker at (`createdAt`, `id`) may match on what its name says (`id` null: unknown). */
function nameMatches(q: ResolvedQuery, createdAt: number, id: string | null): boolean {
  if (q.after !== null && !(createdAt > q.after)) return false;
  if (q.before !== null && !(createdAt < q.before)) return false;
  if (q.cursor !== null) {
    if (id === null) {
      if (q.order === "newest" ? createdAt > q.cursor.createdAt : createdAt < q.cursor.createdAt) return false;
    } else if (compareInOrder(q.order, { createdAt, id }, q.cursor) <= 0) return false;
  }
  if (id === null) return true;
  if (q.prefix !== "" && !id.startsWith(q.prefix)) return false;
  if (q.idGte !== null && compareIds(id, q.idGte) < 0) return false;
  if (q.idLt !== null && compareIds(id, q.idLt) >= 0) return false;
  return true;
}

/** Reads the datum behind a marker: whole, or its first bytes (the envelope, and all of it when short). */
async function load(ctx: QueryContext, hash: string, length: ReadLength): Promise<Loaded | null> {
  const { backend, layout } = ctx;
  const key = layout.dataKeyOfHash(hash);
  const where = `${backend.location}/${key}`;
  if (length === null || backend.readHead === undefined) {
    const body = await ctx.attempt(() => backend.get(key));
    if (body === null) return null;
    const datum = decodeEnvelope(body, where, ctx.unit);
    return { header: datum, datum };
  }
  const readHead = backend.readHead.bind(backend);
  let want = length;
  for (let round = 1; ; round++) {
    const got = await ctx.attempt(() => readHead(key, want));
    if (got === null) return null;
    const complete = got.size !== null ? got.body.byteLength >= got.size : got.body.byteLength < want;
    const head = decodeHead(got.body, where, ctx.unit, complete);
    if ("header" in head) {
      const datum = complete ? { ...head.header, content: new Uint8Array(got.body.subarray(head.contentStart)) } : null;
      return { header: head.header, datum };
    }
    // The envelope is longer than the first read: read exactly that much. (More rounds only if
    // the object was replaced by one with a longer envelope in between.)
    if (round >= 3) {
      throw dgentError("DGENT_UNAVAILABLE", `${where} kept changing while its envelope was read`, { unit: ctx.unit, details: { where } });
    }
    want = head.need;
  }
}

/** True when what was read is the datum the marker names, at the marker's time. */
function current(item: Listed, loaded: Loaded | null): loaded is Loaded {
  return loaded !== null && timeKey(loaded.header.createdAt) === timeKey(item.marker.createdAt) && sha256Hex(loaded.header.id) === item.marker.hash;
}

/**
 * The markers of a query in its exact order, ids known: a time's markers are filtered by name,
 * hashed ones read (their ids are only in the datum), and the rest sorted by id in the order.
 */
async function* items(ctx: QueryContext, q: ResolvedQuery, range: WalkRange, length: ReadLength, tally: QueryTally): AsyncGenerator<Item> {
  // Oldest first from a cursor: the walk goes up in windows of time from the cursor's (walk.ts).
  const from = q.cursor !== null ? Math.max(q.cursor.createdAt, q.after ?? 0) : null;
  const walk = q.order === "newest" ? newestFirst(ctx, range) : oldestFirst(ctx, range, from);
  for await (const group of byTime(walk)) {
    const createdAt = (group[0] as Listed).marker.createdAt;
    const named: Item[] = [];
    const hashed: Listed[] = [];
    for (const m of group) {
      if (!nameMatches(q, createdAt, m.marker.id)) continue;
      if (m.marker.id === null) hashed.push(m);
      else named.push({ ...m, id: m.marker.id });
    }
    if (hashed.length > 0) {
      const read = await mapLimit(hashed, ctx.concurrency, async (m) => {
        tally.reads++;
        const loaded = await load(ctx, m.marker.hash, length);
        if (!current(m, loaded)) {
          tally.garbage.push(m.listed);
          return null;
        }
        return nameMatches(q, createdAt, loaded.header.id) ? { ...m, id: loaded.header.id, loaded } : null;
      });
      for (const r of read) if (r !== null) named.push(r);
    }
    named.sort((a, b) => compareInOrder(q.order, { createdAt, id: a.id }, { createdAt, id: b.id }));
    yield* named;
  }
}

/**
 * Walks `q` and hands each matching datum (or header, when `length` is not null and the read did
 * not hold all of it) to `take` in order, until `limit` are taken. Full datums are read for
 * matches only when `full` is set and the first read did not hold them.
 */
async function walk(
  ctx: QueryContext,
  q: ResolvedQuery,
  options: { limit: number; length: ReadLength; full: boolean; firstPage: number },
  take: (found: Loaded) => void,
  tally: QueryTally,
): Promise<void> {
  const range = walkRange(q, ctx, options.firstPage);
  if (range === null || options.limit <= 0) return;
  const counted: QueryContext = { ...ctx, onList: () => tally.lists++ };
  const stream = items(counted, q, range, options.length, tally);
  // A datum may have two markers at its time (a named and a hashed one): taken once. Its markers
  // at other times are not current, so the set only spans one time.
  const taken = new Set<string>();
  let takenAt = Number.NaN;
  const filtering = hasDataFilter(q);
  let n = 0;
  try {
    while (n < options.limit) {
      const want = options.limit - n;
      const size = Math.min(MAX_BATCH, filtering ? Math.max(want, ctx.concurrency) : want);
      const batch: Item[] = [];
      while (batch.length < size) {
        const next = await stream.next();
        if (next.done) break;
        batch.push(next.value);
      }
      if (batch.length === 0) return;
      await mapLimit(batch, ctx.concurrency, async (item) => {
        if (item.loaded !== undefined) return;
        tally.reads++;
        item.loaded = await load(ctx, item.marker.hash, options.length);
      });
      const matches: Loaded[] = [];
      for (const item of batch) {
        const loaded = item.loaded ?? null;
        if (!current(item, loaded)) {
          tally.garbage.push(item.listed);
          continue;
        }
        if (item.marker.createdAt !== takenAt) {
          taken.clear();
          takenAt = item.marker.createdAt;
        }
        if (taken.has(item.marker.hash) || !matchesQuery(q, loaded.header)) continue;
        taken.add(item.marker.hash);
        matches.push(loaded);
      }
      // Whole datums for matches whose first read held only the envelope, as many as still fit.
      for (let i = 0; i < matches.length && n < options.limit; ) {
        const slice = matches.slice(i, i + (options.limit - n));
        i += slice.length;
        const done = await mapLimit(slice, ctx.concurrency, async (m): Promise<Loaded | null> => {
          if (!options.full || m.datum !== null) return m;
          tally.reads++;
          const whole = await load(ctx, sha256Hex(m.header.id), null);
          // Deleted or replaced since the first read: judged again on what is there now.
          return whole !== null && whole.header.id === m.header.id && timeKey(whole.header.createdAt) === timeKey(m.header.createdAt) && matchesQuery(q, whole.header) ? whole : null;
        });
        for (const m of done) {
          if (m === null || n >= options.limit) continue;
          take(m);
          n++;
        }
      }
    }
  } finally {
    await stream.return(undefined);
  }
}

/** One page of `q`: whole datums for `select: "full"`, headers otherwise. */
export async function queryPage(ctx: QueryContext, q: ResolvedQuery, tally: QueryTally): Promise<Datum[] | DatumHeader[]> {
  const full = q.select === "full";
  // Whole objects at once when every marker read is a likely result; the envelope first when a
  // tag or parent filter may turn it down (small datums come whole in that read anyway).
  const length: ReadLength = !full ? ENVELOPE_PROBE_BYTES : hasDataFilter(q) ? FULL_PROBE_BYTES : null;
  const exact = !hasDataFilter(q) && q.idGte === null && q.idLt === null && queryDir(q.prefix, ctx.layout.indexDepth).exact;
  const firstPage = exact ? Math.min(1000, Math.max(q.limit + 1, 20)) : 1000;
  const out: Array<Datum | DatumHeader> = [];
  await walk(ctx, q, { limit: q.limit, length, full, firstPage }, (m) => out.push(full ? (m.datum as Datum) : headerOf(m.header)), tally);
  return out as Datum[] | DatumHeader[];
}

/** Every datum meeting `q`'s filters (cursor, limit and order aside), as headers, handed to `take`. */
export async function forEachMatch(ctx: QueryContext, q: ResolvedQuery, take: (header: DatumHeader) => void, tally: QueryTally): Promise<void> {
  const all: ResolvedQuery = { ...q, cursor: null, order: "newest", limit: Number.MAX_SAFE_INTEGER, select: "ids" };
  await walk(ctx, all, { limit: Number.MAX_SAFE_INTEGER, length: ENVELOPE_PROBE_BYTES, full: false, firstPage: 1000 }, (m) => take(m.header), tally);
}

/** How many datums meet `q`'s filters: the datum objects counted by listing when nothing is filtered. */
export async function countMatching(ctx: QueryContext, q: ResolvedQuery, tally: QueryTally): Promise<number> {
  if (filtersNothing(q)) {
    let n = 0;
    let cursor: string | null = null;
    do {
      const page = await ctx.attempt(() => ctx.backend.list(ctx.layout.dataPrefix, cursor, 1000));
      tally.lists++;
      for (const o of page.objects) if (ctx.layout.hashOfDataKey(o.key) !== null) n++;
      cursor = page.cursor;
    } while (cursor !== null);
    return n;
  }
  let n = 0;
  await forEachMatch(ctx, q, () => n++, tally);
  return n;
}

/**
 * Deletes every datum meeting `q`'s filters and returns their ids: found by a walk, then deleted
 * in batches of 1000 where the backend has `deleteKeys` (S3 `DeleteObjects`), else one by one,
 * `concurrency` at a time. Not atomic (an object store has no multi-object transaction); a
 * failure part way leaves what was deleted so far deleted. Markers stay, as with `delete`.
 */
export async function deleteMatching(ctx: QueryContext, q: ResolvedQuery, tally: QueryTally): Promise<string[]> {
  const ids: string[] = [];
  await forEachMatch(ctx, q, (h) => ids.push(h.id), tally);
  const { backend, layout } = ctx;
  if (backend.deleteKeys !== undefined) {
    const deleteKeys = backend.deleteKeys.bind(backend);
    for (let i = 0; i < ids.length; i += 1000) {
      const keys = ids.slice(i, i + 1000).map((id) => layout.dataKey(id));
      await ctx.attempt(() => deleteKeys(keys));
    }
    return ids;
  }
  const gone = await mapLimit(ids, ctx.concurrency, (id) => ctx.attempt(() => backend.delete(layout.dataKey(id))));
  return ids.filter((_, i) => gone[i]);
}
