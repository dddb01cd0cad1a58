/**
 * The queries suite's reference model: what `store.query` must return, written here from
 * QUERIES.md without dgent's own evaluation (core/query.ts), so the kit checks the product rather
 * than the product against itself. Ids compare by their UTF-8 bytes (= code point order).
 */
import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import type { Order, QueryFilter, Select, TagFilter } from "../../core/query.js";
import { assertSameDatum } from "../support.js";

/** Where a page continues: the last item seen. */
export interface At {
  readonly createdAt: number;
  readonly id: string;
}

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");

/** Code point order of two ids, by their UTF-8 bytes. */
export function byBytes(a: string, b: string): number {
  return Buffer.compare(utf8(a), utf8(b));
}

/** Negative when `a` comes before `b` in `order`. */
export function before(order: Order, a: At, b: At): number {
  const newestFirst = a.createdAt === b.createdAt ? byBytes(b.id, a.id) : b.createdAt > a.createdAt ? 1 : -1;
  return order === "newest" ? newestFirst : -newestFirst;
}

function tagHolds(condition: TagFilter, value: string | undefined): boolean {
  if (typeof condition === "string") return value === condition;
  if ("eq" in condition) return value === condition.eq;
  if ("in" in condition) return value !== undefined && condition.in.includes(value);
  if ("prefix" in condition) return value !== undefined && value.slice(0, condition.prefix.length) === condition.prefix;
  return (value !== undefined) === condition.exists;
}

/** True when `d` meets every filter of `f` (AND). */
export function holds(f: QueryFilter, d: Datum): boolean {
  if (f.prefix !== undefined && d.id.slice(0, f.prefix.length) !== f.prefix) return false;
  if (f.idRange?.gte !== undefined && byBytes(d.id, f.idRange.gte) < 0) return false;
  if (f.idRange?.lt !== undefined && byBytes(d.id, f.idRange.lt) >= 0) return false;
  if (f.parent !== undefined && d.causalParent !== f.parent) return false;
  if (f.after !== undefined && !(d.createdAt > f.after)) return false;
  if (f.before !== undefined && !(d.createdAt < f.before)) return false;
  for (const [key, condition] of Object.entries(f.where ?? {})) {
    const value = Object.prototype.hasOwnProperty.call(d.metadata, key) ? d.metadata[key] : undefined;
    if (!tagHolds(condition, value)) return false;
  }
  return true;
}

/** Everything in `data` meeting `f`, in `order`. */
export function everything(data: Iterable<Datum>, f: QueryFilter, order: Order): Datum[] {
  return [...data].filter((d) => holds(f, d)).sort((a, b) => before(order, a, b));
}

/** The page after `at` (strictly beyond it in `order`; from the start when `at` is null) of at most `limit`. */
export function page(data: Iterable<Datum>, f: QueryFilter, order: Order, at: At | null, limit: number): Datum[] {
  return everything(data, f, order)
    .filter((d) => at === null || before(order, at, d) < 0)
    .slice(0, limit);
}

/** The id of a returned item of any projection. */
export function idOf(item: unknown): string {
  return typeof item === "string" ? item : (item as { id: string }).id;
}

/**
 * Asserts that `items` (what a query returned with `select`) are `expected`, in order and in the
 * projection's shape: ids as strings, headers `{ id, createdAt, causalParent, metadata }` and no
 * content, or whole datums.
 */
export function assertItems(items: readonly unknown[], expected: readonly Datum[], select: Select, what: string): void {
  assert.deepEqual(items.map(idOf), expected.map((d) => d.id), `${what}: the ids, in order`);
  expected.forEach((want, i) => {
    const item = items[i];
    if (select === "ids") {
      assert.equal(typeof item, "string", `${what}: select "ids" gives strings`);
      return;
    }
    if (select === "full") {
      assertSameDatum(item as Datum, want, `${what}: item ${i}`);
      return;
    }
    assert.ok(item !== null && typeof item === "object", `${what}: select "meta" gives objects`);
    assert.deepEqual(Object.keys(item).sort(), ["causalParent", "createdAt", "id", "metadata"], `${what}: a header has exactly id, createdAt, causalParent and metadata (no content)`);
    const header = item as Omit<Datum, "content">;
    assert.equal(header.createdAt, want.createdAt, `${what}: createdAt of ${want.id}`);
    assert.equal(header.causalParent, want.causalParent, `${what}: causalParent of ${want.id}`);
    assert.deepEqual({ ...header.metadata }, { ...want.metadata }, `${what}: metadata of ${want.id}`);
  });
}
