import type { ListedObject, ObjectBackend } from "./backend.js";
import { timeKey as timeKeyOf, type KeyLayout, type Marker } from "./keys.js";

/**
 * Walks of one directory's time index for queries: its markers in key order (newest first) or in
 * reverse (oldest first), between a start key and a stop time, grouped by `createdAt`.
 *
 * S3 and GCS list keys in ascending order only, from a `StartAfter`/`startOffset` key. Markers
 * sort newest first, so a newest-first walk is a plain listing that stops at the first marker out
 * of range. An oldest-first walk must begin at the far end: it lists the whole range once,
 * keeping the markers of its last pages and, of the others, only the key each page started after;
 * it then hands markers out from the end backwards, listing an earlier page again when it reaches
 * it. Memory stays at a few pages plus one key per 1000 markers; listings at most twice the
 * range's pages (once when it fits in the kept pages). From a cursor, a long range is walked in
 * windows of time going up from the cursor's instead (`oldestFirst`), so later pages do not list
 * everything newer than them.
 */

/** A marker as a listing showed it. */
export interface Listed {
  readonly marker: Marker;
  readonly listed: ListedObject;
}

export interface WalkContext {
  readonly backend: ObjectBackend;
  readonly layout: KeyLayout;
  /** Runs one backend call with the adapter's retry policy. */
  attempt<T>(fn: () => Promise<T>): Promise<T>;
  /** Counts listing requests (for the caller's figures). */
  onList?(): void;
}

/** What part of a directory a walk covers. */
export interface WalkRange {
  /** The directory's listing prefix (`KeyLayout.dirPrefix`). */
  readonly dirPrefix: string;
  /** Only keys after this one; null for the directory's start (its newest marker). */
  readonly startAfter: string | null;
  /** True for a marker time past the range's old end: it and every marker after it are out. */
  readonly stop: (createdAt: number) => boolean;
  /** Size of the first listing request (later ones are 1000). */
  readonly firstPage: number;
}

const PAGE = 1000;
/** Pages an oldest-first walk keeps whole from its first pass. */
const KEPT_PAGES = 4;
/** Markers the first time window of an oldest-first walk from a cursor aims to hold: one listing, with room. */
const WINDOW_MARKERS = 800;

/** One listing page of `range` after `after` (or at `cursor`), parsed; `end` when the range ends in it. */
async function listPage(
  ctx: WalkContext,
  range: WalkRange,
  cursor: string | null,
  after: string | null,
  size: number,
): Promise<{ markers: Listed[]; last: string | null; cursor: string | null; end: boolean }> {
  const page = await ctx.attempt(() => ctx.backend.list(range.dirPrefix, cursor, size, after ?? undefined));
  ctx.onList?.();
  const markers: Listed[] = [];
  let last: string | null = null;
  for (const listed of page.objects) {
    // A backend may ignore startAfter: drop what it should have skipped.
    if (range.startAfter !== null && listed.key <= range.startAfter) continue;
    last = listed.key;
    const marker = ctx.layout.parseMarker(listed.key, range.dirPrefix);
    if (marker === null) continue;
    if (range.stop(marker.createdAt)) return { markers, last, cursor: null, end: true };
    markers.push({ marker, listed });
  }
  return { markers, last, cursor: page.cursor, end: page.cursor === null };
}

/** The markers of `range` in key order: newest first, ties by id ascending (hashed markers after named ones). */
export async function* newestFirst(ctx: WalkContext, range: WalkRange): AsyncGenerator<Listed> {
  let cursor: string | null = null;
  let size = Math.min(PAGE, Math.max(1, range.firstPage));
  for (;;) {
    const page = await listPage(ctx, range, cursor, cursor === null ? range.startAfter : null, size);
    yield* page.markers;
    if (page.end) return;
    cursor = page.cursor;
    size = PAGE;
  }
}

interface FirstPass {
  readonly pages: Page[];
  /** The range was listed to its end. */
  readonly complete: boolean;
  /** The time of the newest marker listed. */
  readonly newest: number | null;
  /** Markers per millisecond near the last marker listed. */
  readonly density: number;
}

interface Page {
  /** The key this page's listing starts after. */
  readonly after: string | null;
  /** Its last key. */
  readonly last: string;
  markers: Listed[] | null;
}

/**
 * Lists `range` from its newest end, keeping the markers of the last `KEPT_PAGES` pages and the
 * start key of each. Gives up (`complete: false`) after `most` pages.
 */
async function firstPass(ctx: WalkContext, range: WalkRange, most: number): Promise<FirstPass> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  let after = range.startAfter;
  let newest: number | null = null;
  let density = 0;
  for (let n = 1; ; n++) {
    const page = await listPage(ctx, range, cursor, cursor === null ? range.startAfter : null, PAGE);
    if (page.last !== null) {
      pages.push({ after, last: page.last, markers: page.markers });
      const dropped = pages[pages.length - 1 - KEPT_PAGES];
      if (dropped !== undefined) dropped.markers = null;
      after = page.last;
    }
    const m = page.markers;
    if (m.length > 0) {
      newest ??= (m[0] as Listed).marker.createdAt;
      // Markers per millisecond in the older half of the page: the part nearest what comes next.
      const half = Math.floor(m.length / 2);
      const span = (m[half] as Listed).marker.createdAt - (m[m.length - 1] as Listed).marker.createdAt;
      density = (m.length - half) / Math.max(span, 1);
    }
    if (page.end) return { pages, complete: true, newest, density };
    if (n >= most) return { pages, complete: false, newest, density };
    cursor = page.cursor;
  }
}

/** The markers of pages from a first pass, from the last backwards, listing dropped pages again. */
async function* backwards(ctx: WalkContext, range: WalkRange, pages: Page[]): AsyncGenerator<Listed> {
  for (let i = pages.length - 1; i >= 0; i--) {
    const page = pages[i] as Page;
    const markers = page.markers ?? (await relist(ctx, range, page.after, page.last));
    page.markers = null;
    for (let j = markers.length - 1; j >= 0; j--) yield markers[j] as Listed;
  }
}

/**
 * The markers of `range` in reverse key order: oldest first. Without `from` the whole range is
 * listed once and handed out backwards (see the file's comment). With `from`, the time of a
 * cursor (a datum's time, so markers lie just above it), a range longer than one page is walked
 * in windows of time going up from `from` instead, each listed from its own top: the first window
 * is sized from the density of the older half of that page to hold about `WINDOW_MARKERS`
 * markers, each next one is twice as wide, so a page costs one listing, O(log) windows and the
 * listings of the markers it walks (at most about twice those it needs), not the whole range.
 */
export async function* oldestFirst(ctx: WalkContext, range: WalkRange, from: number | null = null): AsyncGenerator<Listed> {
  const first = await firstPass(ctx, range, from === null ? Number.POSITIVE_INFINITY : 1);
  if (first.complete || from === null || first.newest === null) {
    yield* backwards(ctx, range, first.pages);
    return;
  }
  const newest = first.newest;
  let gap = Math.max(WINDOW_MARKERS / Math.max(first.density, 1e-9), 1);
  for (let lo = Math.max(from, 0); ; gap *= 2) {
    const hi = lo + gap;
    const last = !(hi > lo) || hi > newest;
    let top = last ? range.startAfter : `${range.dirPrefix}${timeKeyOf(hi)}~~`; // past every marker at hi and newer
    if (range.startAfter !== null && top !== null && top < range.startAfter) top = range.startAfter;
    const bottom = lo;
    const window: WalkRange = { ...range, startAfter: top, stop: (t) => t < bottom || range.stop(t) };
    const pass = await firstPass(ctx, window, Number.POSITIVE_INFINITY);
    yield* backwards(ctx, window, pass.pages);
    if (last) return;
    lo = hi;
  }
}

/** The markers after `after` up to and including `last` (one page again, more if keys were added since). */
async function relist(ctx: WalkContext, range: WalkRange, after: string | null, last: string): Promise<Listed[]> {
  const out: Listed[] = [];
  let cursor: string | null = null;
  for (;;) {
    const page = await listPage(ctx, range, cursor, cursor === null ? after : null, PAGE);
    for (const m of page.markers) {
      if (after !== null && m.listed.key <= after) continue;
      if (m.listed.key > last) return out;
      out.push(m);
    }
    if (page.end || page.last === null || page.last >= last) return out;
    cursor = page.cursor;
  }
}

/** Consecutive markers with the same `createdAt`, as arrays. */
export async function* byTime(markers: AsyncIterable<Listed>): AsyncGenerator<Listed[]> {
  let group: Listed[] = [];
  for await (const m of markers) {
    if (group.length > 0 && (group[0] as Listed).marker.createdAt !== m.marker.createdAt) {
      yield group;
      group = [];
    }
    group.push(m);
  }
  if (group.length > 0) yield group;
}
