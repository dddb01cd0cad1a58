/**
 * Random datums and filters for the queries suite, from the kit's seeded generator (`rng`), so a
 * failing case repeats from the seed its message prints. Ids hold the characters a query
 * implementation gets wrong (`%`, `_`, `\` of SQL LIKE, non-ASCII, an astral character that
 * sorts differently in UTF-16), createdAt takes few values (many ties), tags come from a small
 * vocabulary (so filters hit) and causal parents form branches.
 */
import type { Datum } from "../../core/datum.js";
import type { Order, QueryFilter, Select, TagFilter, Where } from "../../core/query.js";
import type { Store } from "../../core/store.js";
import { byBytes } from "./query-model.js";

export type Random = () => number;

/** Characters of generated ids: SQL LIKE's metacharacters, a path separator, non-ASCII, astral. */
export const ID_CHARS = ["a", "b", "Z", "0", "/", "%", "_", "\\", "é", "日", "\u{1F989}", "\uFFFD", "\uE000", " "] as const;

/** Tags and their values. Keys a SQL JSON path or an object lookup gets wrong are on purpose. */
export const TAGS: Readonly<Record<string, readonly string[]>> = {
  role: ["user", "assistant", "tool", "us_r", "us%r"],
  thread: ["t1", "t2", "t_1", "t%1", "t\\1", "日本", "\u{1F989}x", ""],
  "x.y": ["1", "2"],
  "it's": ["a", "b'"],
  constructor: ["c"],
};
const TAG_KEYS = Object.keys(TAGS);
/** How often each tag is present on a datum. */
const PRESENCE: Readonly<Record<string, number>> = { role: 0.8, thread: 0.7, "x.y": 0.4, "it's": 0.3, constructor: 0.15 };
/** Values no datum holds, or that only a wildcard or a case-insensitive match would hit. */
const MISSES = ["nobody", "USER", "t_", "us%", "t\\"];

/** Tag prefixes that hit more if `_`/`%` were wildcards or `\\` an escape. */
const WIDENED = ["t_", "t%", "us_", "us%", "t\\"];

/** The first time of generated datums; they take `T0 … T0 + SPAN - 1`. */
export const T0 = 1_000;
export const SPAN = 8;

export function pick<T>(random: Random, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)] as T;
}

export function chance(random: Random, p: number): boolean {
  return random() < p;
}

/** A random id key of 1–`max` characters. */
export function key(random: Random, max = 4): string {
  return Array.from({ length: 1 + Math.floor(random() * max) }, () => pick(random, ID_CHARS)).join("");
}

/** Random tags from the vocabulary. */
export function tags(random: Random): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of TAG_KEYS) if (chance(random, PRESENCE[k] ?? 0.5)) out[k] = pick(random, TAGS[k] as readonly string[]);
  return out;
}

/**
 * `n` datums with distinct ids under `base`, in no particular order of time. A datum's parent is
 * an earlier datum (the first few most often, so they have several children: branches), an id
 * never stored, or none.
 */
export function datums(random: Random, base: string, n: number): Datum[] {
  const out: Datum[] = [];
  const used = new Set<string>();
  while (out.length < n) {
    const id = base + key(random);
    if (used.has(id)) continue;
    used.add(id);
    const i = out.length;
    let causalParent: string | null = null;
    const r = random();
    if (i > 0 && r < 0.45) causalParent = (out[Math.floor(random() * random() * i)] as Datum).id;
    else if (r < 0.5) causalParent = `${base}gone/${i}`;
    out.push({
      id,
      content: new TextEncoder().encode(`content ${i} of ${id}`),
      createdAt: T0 + Math.floor(random() * SPAN),
      causalParent,
      metadata: tags(random),
    });
  }
  return out;
}

function condition(random: Random, k: string): TagFilter {
  const values = TAGS[k] as readonly string[];
  const value = () => (chance(random, 0.9) ? pick(random, values) : pick(random, MISSES));
  switch (Math.floor(random() * 5)) {
    case 0:
      return value();
    case 1:
      return { eq: value() };
    case 2:
      return { in: Array.from({ length: 1 + Math.floor(random() * 3) }, value) };
    case 3: {
      // Now and then a prefix a LIKE pattern without escapes would widen.
      if (chance(random, 0.3)) return { prefix: pick(random, WIDENED) };
      const points = [...value()];
      return { prefix: points.slice(0, Math.floor(random() * (points.length + 1))).join("") };
    }
    default:
      return { exists: chance(random, 0.6) };
  }
}

/** A random `where` of 1–2 tags. */
export function where(random: Random): Where {
  const out: Record<string, TagFilter> = {};
  const n = chance(random, 0.35) ? 2 : 1;
  for (let i = 0; i < n; i++) {
    const k = pick(random, TAG_KEYS);
    out[k] = condition(random, k);
  }
  return out;
}

/**
 * A random filter over `data` (ids under `base`). Without a prefix it spans the instance's whole
 * namespace, which `create()` guarantees holds only what the test wrote.
 */
export function filter(random: Random, base: string, data: readonly Datum[]): QueryFilter {
  const f: { -readonly [K in keyof QueryFilter]: QueryFilter[K] } = {};
  const ranged = chance(random, 0.3);
  if (ranged) {
    // A bound is an id that exists half the time: that is where inclusive and exclusive differ.
    const bound = () => (chance(random, 0.5) && data.length > 0 ? pick(random, data).id : base + key(random, 1));
    const range: { gte?: string; lt?: string } = {};
    if (chance(random, 0.7)) range.gte = bound();
    if (chance(random, 0.7)) range.lt = bound();
    // Mostly a range that holds something; now and then an empty one (gte ≥ lt).
    if (range.gte !== undefined && range.lt !== undefined && byBytes(range.gte, range.lt) > 0 && chance(random, 0.85)) {
      [range.gte, range.lt] = [range.lt, range.gte];
    }
    f.idRange = range;
  }
  // A sub-prefix is often one of LIKE's metacharacters, which must match literally.
  const sub = () => (chance(random, 0.5) ? pick(random, ["%", "_", "\\"]) : key(random, 1));
  if (chance(random, 0.85)) f.prefix = base + (ranged || chance(random, 0.6) ? "" : sub());
  if (chance(random, 0.55)) f.where = where(random);
  if (chance(random, 0.12)) {
    const parents = data.map((d) => d.causalParent).filter((p): p is string => p !== null);
    f.parent = parents.length > 0 && chance(random, 0.85) ? pick(random, parents) : `${base}no-children`;
  }
  if (chance(random, 0.25)) f.after = T0 - 1 + Math.floor(random() * SPAN);
  if (chance(random, 0.25)) f.before = T0 + 1 + Math.floor(random() * SPAN);
  if (f.after !== undefined && f.before !== undefined && f.after >= f.before && chance(random, 0.85)) {
    [f.after, f.before] = [f.before - 1, f.after + 1];
  }
  return f;
}

export function order(random: Random): Order {
  return chance(random, 0.5) ? "newest" : "oldest";
}

export function select(random: Random): Select {
  return pick(random, ["full", "meta", "ids"] as const);
}

/** Puts `data` a few at a time (a remote tier answers several puts at once). */
export async function putAll(store: Store, data: readonly Datum[]): Promise<void> {
  for (let i = 0; i < data.length; i += 16) await Promise.all(data.slice(i, i + 16).map((d) => store.put(d)));
}
