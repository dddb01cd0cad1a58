/**
 * Queries: what `store.query`, `count`, `getMany`, `deleteMany`, `children` and a chain's tail
 * take, validated once here, and the reference evaluation every tier without native queries falls
 * back on (and the memory and JSONL tiers use over their indexes). QUERIES.md is the contract.
 */
import type { Datum } from "./datum.js";
import { dgentError } from "./errors.js";
import { compareIds } from "./order.js";
import { EXPIRES_AT } from "./expiry.js";
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from "./limits.js";
import { decodeCursor, type Position } from "./query-cursor.js";

export { encodeCursor, type Position } from "./query-cursor.js";

/** One tag's condition: a string is shorthand for `{ eq }`. Exactly one operator per tag. */
export type TagFilter =
  | string
  | { readonly eq: string }
  | { readonly in: readonly string[] }
  | { readonly prefix: string }
  | { readonly exists: boolean };

/** Conditions on metadata tags, all of which must hold (AND). */
export type Where = Readonly<Record<string, TagFilter>>;

/** What a query returns per item: whole datums, datums without content, or ids. */
export type Select = "full" | "meta" | "ids";

/** Newest first (createdAt desc, then id desc) or oldest first (the reverse). */
export type Order = "newest" | "oldest";

/** A datum without its content: what `select: "meta"` returns. */
export type DatumHeader = Omit<Datum, "content">;

/** The filters shared by `query`, `count` and `deleteMany`. */
export interface QueryFilter {
  /** Only ids that start with this string. */
  prefix?: string;
  /** Only ids in this range, in code point order: `gte` inclusive, `lt` exclusive. */
  idRange?: { readonly gte?: string; readonly lt?: string };
  /** Only datums whose metadata meets every condition. */
  where?: Where;
  /** Only the children of this datum (those whose `causalParent` is it). */
  parent?: string;
  /** Only datums with `createdAt > after` (epoch ms). */
  after?: number;
  /** Only datums with `createdAt < before` (epoch ms). */
  before?: number;
}

/** Options of `store.query`: filters plus order, a page size, a cursor and a projection. */
export interface QueryOptions extends QueryFilter {
  /** Default `"newest"`. */
  order?: Order;
  /** At most this many items (default 100, at most `MAX_LIST_LIMIT`). */
  limit?: number;
  /** The `cursor` of an earlier page of the same filters: continue after its last item. */
  cursor?: string;
  /** Default `"full"`. */
  select?: Select;
}

/** One page: the items in order, and the cursor of the next page (`null` after the last). */
export interface QueryPage<T> {
  readonly items: T[];
  readonly cursor: string | null;
}

/** The item type of a projection. */
export type Selected<S extends Select> = S extends "ids" ? string : S extends "meta" ? DatumHeader : Datum;

/** A tag condition after validation. */
export type ResolvedTagFilter =
  | { readonly key: string; readonly op: "in"; readonly values: readonly string[] }
  | { readonly key: string; readonly op: "prefix"; readonly value: string }
  | { readonly key: string; readonly op: "exists"; readonly value: boolean };

/**
 * A query after validation and defaults: what adapters receive. `where` is sorted by key and
 * `eq` arrives as `in` with one value.
 */
export interface ResolvedQuery {
  readonly prefix: string;
  readonly idGte: string | null;
  readonly idLt: string | null;
  readonly where: readonly ResolvedTagFilter[];
  readonly parent: string | null;
  /** Exclusive; `null` for none. */
  readonly after: number | null;
  /** Exclusive; `null` for none. */
  readonly before: number | null;
  readonly order: Order;
  /** Items strictly beyond this position in `order`. */
  readonly cursor: Position | null;
  readonly limit: number;
  readonly select: Select;
}

/** Most values in one `in` condition, and most tags in one `where`. */
export const MAX_IN_VALUES = 1000;
export const MAX_WHERE_TAGS = 32;
/** Most ids in one `getMany`. */
export const MAX_GET_MANY = 10_000;

const OPERATORS = ["eq", "in", "prefix", "exists"] as const;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function invalid(field: string, message: string): never {
  throw dgentError("DGENT_INVALID_QUERY", `${field}: ${message}`, { details: { field } });
}

function text(field: string, value: unknown, { control = true }: { control?: boolean } = {}): string {
  if (typeof value !== "string") invalid(field, `must be a string, got ${value === null ? "null" : typeof value}`);
  if (!value.isWellFormed()) invalid(field, `${JSON.stringify(value)} holds a lone surrogate`);
  if (control && CONTROL.test(value)) invalid(field, `${JSON.stringify(value)} holds a control character`);
  return value;
}

function time(field: string, value: unknown): number | null {
  if (value === undefined) return null;
  if (typeof value !== "number" || Number.isNaN(value)) invalid(field, `must be a number of epoch milliseconds, got ${String(value)}`);
  return value;
}

function resolveWhere(where: unknown): ResolvedTagFilter[] {
  if (where === undefined) return [];
  if (where === null || typeof where !== "object" || Array.isArray(where)) invalid("where", "must be an object of tag conditions");
  const keys = Object.keys(where).sort(compareIds);
  if (keys.length > MAX_WHERE_TAGS) invalid("where", `at most ${MAX_WHERE_TAGS} tags, got ${keys.length}`);
  return keys.map((key): ResolvedTagFilter => {
    const field = `where.${key}`;
    if (key.length === 0) invalid("where", "a tag name must not be empty");
    text(field, key);
    const condition = (where as Record<string, unknown>)[key];
    if (typeof condition === "string") return { key, op: "in", values: [text(field, condition, { control: false })] };
    if (condition === null || typeof condition !== "object" || Array.isArray(condition)) {
      invalid(field, `must be a string or one of { eq }, { in }, { prefix }, { exists }, got ${JSON.stringify(condition) ?? String(condition)}`);
    }
    const ops = Object.keys(condition);
    const unknown = ops.find((op) => !(OPERATORS as readonly string[]).includes(op));
    if (unknown !== undefined) invalid(`${field}.${unknown}`, `unknown operator; use one of ${OPERATORS.join(", ")}`);
    if (ops.length !== 1) invalid(field, `needs exactly one operator, got ${ops.length === 0 ? "none" : ops.join(", ")}`);
    const op = ops[0] as (typeof OPERATORS)[number];
    const value = (condition as Record<string, unknown>)[op];
    switch (op) {
      case "eq":
        return { key, op: "in", values: [text(`${field}.eq`, value, { control: false })] };
      case "in": {
        if (!Array.isArray(value)) invalid(`${field}.in`, "must be an array of strings");
        if (value.length === 0) invalid(`${field}.in`, "must hold at least one value");
        if (value.length > MAX_IN_VALUES) invalid(`${field}.in`, `at most ${MAX_IN_VALUES} values, got ${value.length}`);
        const values = [...new Set(value.map((v, i) => text(`${field}.in[${i}]`, v, { control: false })))].sort(compareIds);
        return { key, op: "in", values };
      }
      case "prefix":
        return { key, op: "prefix", value: text(`${field}.prefix`, value, { control: false }) };
      case "exists":
        if (typeof value !== "boolean") invalid(`${field}.exists`, `must be true or false, got ${JSON.stringify(value) ?? String(value)}`);
        return { key, op: "exists", value };
    }
  });
}

const FILTER_OPTIONS: ReadonlySet<string> = new Set(["prefix", "idRange", "where", "parent", "after", "before"]);
const PAGED_OPTIONS: ReadonlySet<string> = new Set([...FILTER_OPTIONS, "order", "limit", "cursor", "select"]);

/** Validates a query's filters (and, for `query`, its order, limit, cursor and projection). */
export function resolveQuery(options: QueryOptions = {}, { paged = true }: { paged?: boolean } = {}): ResolvedQuery {
  if (options === null || typeof options !== "object" || Array.isArray(options)) invalid("options", "must be an object");
  const known = paged ? PAGED_OPTIONS : FILTER_OPTIONS;
  for (const key of Object.keys(options)) if (!known.has(key)) invalid(key, `unknown option; use one of ${[...known].join(", ")}`);
  const prefix = options.prefix === undefined ? "" : text("prefix", options.prefix);
  let idGte: string | null = null;
  let idLt: string | null = null;
  if (options.idRange !== undefined) {
    const range: unknown = options.idRange;
    if (range === null || typeof range !== "object" || Array.isArray(range)) invalid("idRange", "must be { gte?, lt? }");
    for (const key of Object.keys(range)) if (key !== "gte" && key !== "lt") invalid(`idRange.${key}`, "unknown bound; use gte or lt");
    const r = range as { gte?: unknown; lt?: unknown };
    if (r.gte !== undefined) idGte = text("idRange.gte", r.gte);
    if (r.lt !== undefined) idLt = text("idRange.lt", r.lt);
  }
  const parent = options.parent === undefined ? null : text("parent", options.parent);
  const after = time("after", options.after);
  const before = time("before", options.before);
  const where = resolveWhere(options.where);
  const order = options.order ?? "newest";
  if (order !== "newest" && order !== "oldest") invalid("order", `must be "newest" or "oldest", got ${JSON.stringify(order)}`);
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIST_LIMIT) {
    invalid("limit", `must be an integer from 0 to ${MAX_LIST_LIMIT}, got ${String(limit)}`);
  }
  const select = options.select ?? "full";
  if (select !== "full" && select !== "meta" && select !== "ids") invalid("select", `must be "full", "meta" or "ids", got ${JSON.stringify(select)}`);
  const resolved = { prefix, idGte, idLt, where, parent, after, before, order, cursor: null, limit, select } as const;
  if (options.cursor === undefined || options.cursor === null) return resolved;
  return { ...resolved, cursor: decodeCursor(options.cursor, resolved) };
}

/** Compares two items in a query's order (negative: `a` comes first). */
export function compareInOrder(order: Order, a: Position, b: Position): number {
  const newestFirst = a.createdAt !== b.createdAt ? b.createdAt - a.createdAt : compareIds(b.id, a.id);
  return order === "newest" ? newestFirst : -newestFirst;
}

/** True when `datum` meets every filter of `q` (the cursor included; order, limit and select aside). */
export function matchesQuery(q: ResolvedQuery, datum: DatumHeader): boolean {
  if (q.prefix !== "" && !datum.id.startsWith(q.prefix)) return false;
  if (q.idGte !== null && compareIds(datum.id, q.idGte) < 0) return false;
  if (q.idLt !== null && compareIds(datum.id, q.idLt) >= 0) return false;
  if (q.parent !== null && datum.causalParent !== q.parent) return false;
  if (q.after !== null && !(datum.createdAt > q.after)) return false;
  if (q.before !== null && !(datum.createdAt < q.before)) return false;
  if (q.cursor !== null && compareInOrder(q.order, datum, q.cursor) <= 0) return false;
  for (const f of q.where) {
    const value = Object.hasOwn(datum.metadata, f.key) ? datum.metadata[f.key] : undefined;
    if (f.op === "exists") {
      if ((value !== undefined) !== f.value) return false;
    } else if (value === undefined) return false;
    else if (f.op === "in" ? !f.values.includes(value) : !value.startsWith(f.value)) return false;
  }
  return true;
}

/** The header of a datum (no content), for `select: "meta"` / `"ids"`. */
export function headerOf(datum: DatumHeader): DatumHeader {
  return { id: datum.id, createdAt: datum.createdAt, causalParent: datum.causalParent, metadata: datum.metadata };
}

/**
 * What a tier's `query` must get right for `select: "ids"`: the id, `createdAt` (the cursor, the
 * merge of several tiers) and the `dgent.expiresAt` tag (the expiry view hides expired ids). A tier
 * may answer an ids page with such entries — `causalParent` null, `metadata` holding at most that
 * tag — so it reads no row it does not need (the SQL tiers read one index); whole headers do too.
 */
export function idEntryOf(datum: DatumHeader): DatumHeader {
  const expiresAt = datum.metadata[EXPIRES_AT];
  return { id: datum.id, createdAt: datum.createdAt, causalParent: null, metadata: expiresAt === undefined ? {} : { [EXPIRES_AT]: expiresAt } };
}

/**
 * An ids page from a tier (`queryIds`, core/protocol.ts): the ids in the query's order, the
 * position of the last (the next page's cursor) and each id's `dgent.expiresAt` tag, which the
 * expiry view needs — `null` when none of them has one, so a tier whose namespace holds no
 * expiring datum reads ids from an index and nothing else.
 */
export interface IdPage {
  readonly ids: string[];
  /** (createdAt, id) of the last id; `null` when there is none. */
  readonly last: Position | null;
  /** The expiry tag of each id (`null` without one), or `null` when no id has one. */
  readonly expiresAt: Array<string | null> | null;
}

/** The ids page of a page of headers (or datums). */
export function idPageOf(items: readonly DatumHeader[]): IdPage {
  const ids = items.map((d) => d.id);
  const last = items.at(-1);
  let expiresAt: Array<string | null> | null = null;
  for (const d of items) {
    if (d.metadata[EXPIRES_AT] === undefined) continue;
    expiresAt = items.map((x) => x.metadata[EXPIRES_AT] ?? null);
    break;
  }
  return { ids, last: last === undefined ? null : { createdAt: last.createdAt, id: last.id }, expiresAt };
}

/**
 * The reference evaluation: one page of `q` from candidate datums (any order, any superset of the
 * result), sorted and cut to `limit`. Full datums for `select: "full"`, headers otherwise.
 */
export function evaluateQuery(q: ResolvedQuery, candidates: Iterable<Datum>): Datum[] | DatumHeader[] {
  const hits: Datum[] = [];
  for (const d of candidates) if (matchesQuery(q, d)) hits.push(d);
  hits.sort((a, b) => compareInOrder(q.order, a, b));
  const page = hits.slice(0, q.limit);
  return q.select === "full" ? page : page.map(headerOf);
}

/** The number of candidates that meet `q`'s filters. */
export function countQuery(q: ResolvedQuery, candidates: Iterable<DatumHeader>): number {
  let n = 0;
  for (const d of candidates) if (matchesQuery(q, d)) n++;
  return n;
}

/** `q` without cursor and limit: the whole filtered set (for `count` and `deleteMany`). */
export function unpaged(q: ResolvedQuery): ResolvedQuery {
  return { ...q, cursor: null, limit: Number.MAX_SAFE_INTEGER, order: "newest", select: "ids" };
}

/** True when `q` filters on nothing: `deleteMany` refuses it unless asked for everything. */
export function filtersNothing(q: ResolvedQuery): boolean {
  return q.prefix === "" && q.idGte === null && q.idLt === null && q.where.length === 0 && q.parent === null && q.after === null && q.before === null;
}

/**
 * The SQL `LIKE` pattern of a prefix, with `%`, `_` and the escape character matched literally
 * (use with `ESCAPE '\'`).
 */
export function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * The smallest string greater than every string that starts with `prefix` in code point order,
 * or `null` when there is none: `id >= prefix AND id < upper` is an index range for a prefix.
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = [...prefix];
  while (points.length > 0) {
    const last = (points.pop() as string).codePointAt(0) as number;
    if (last >= 0xd800 && last <= 0xdfff) {
      // A lone surrogate (only an adapter called directly sees one: the store refuses them). In
      // code point order every unit after it ranks above it, and the surrogates of one kind rank
      // together (core/order.ts), so the next unit of the same kind bounds the prefix.
      if (last !== 0xdbff && last !== 0xdfff) return points.join("") + String.fromCharCode(last + 1);
      continue;
    }
    if (last < 0x10ffff) {
      let next = last + 1;
      if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
      return points.join("") + String.fromCodePoint(next);
    }
  }
  return null;
}

export { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT };
