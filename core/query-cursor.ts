/**
 * Query cursors (QUERIES.md "Order, pages and cursors"): the position of a page's last item and
 * the fingerprint of the query's filters, as base64url JSON. core/query.ts re-exports
 * `encodeCursor` and decodes a cursor it is given through `decodeCursor`.
 */
import { dgentError } from "./errors.js";

/** A position in the order of a listing: the item a page continues after. */
export interface Position {
  readonly createdAt: number;
  readonly id: string;
}

/**
 * What a cursor's fingerprint covers: the filters of a `ResolvedQuery` (core/query.ts), which
 * this file does not import (the kernel's import graph has no circle).
 */
interface Filters {
  readonly prefix: string;
  readonly idGte: string | null;
  readonly idLt: string | null;
  readonly where: ReadonlyArray<{ readonly key: string; readonly op: string; readonly values?: readonly string[] }>;
  readonly parent: string | null;
  readonly after: number | null;
  readonly before: number | null;
}

function invalid(message: string): never {
  throw dgentError("DGENT_INVALID_QUERY", `cursor: ${message}`, { details: { field: "cursor" } });
}

/** A query's filters as one canonical string: a cursor is valid only for the same filters. */
function filterKey(q: Filters): string {
  return JSON.stringify([q.prefix, q.idGte, q.idLt, q.where, q.parent, q.after, q.before]);
}

/** FNV-1a over UTF-16 units, 32 bits, as 8 hex digits: tells one query's cursors from another's. */
function fingerprint(value: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/**
 * The fingerprints of recent one-tag-equality filters (`where: { key: value }` and nothing else,
 * the listing a page loop repeats), by key then value: such a filter's fingerprint costs two map
 * reads instead of its JSON and hash. Short keys and values only, and at most `PRINTS_KEPT`
 * (then it starts over), so it stays small.
 */
const prints = new Map<string, Map<string, string>>();
let printsKept = 0;
const PRINTS_KEPT = 1024;
const PRINT_TEXT_MAX = 256;

/** The fingerprint of `q`'s filters. */
function printOf(q: Filters): string {
  const f = q.where[0];
  if (
    q.where.length !== 1 || f === undefined || f.op !== "in" || f.values?.length !== 1 ||
    q.prefix !== "" || q.idGte !== null || q.idLt !== null || q.parent !== null || q.after !== null || q.before !== null
  ) {
    return fingerprint(filterKey(q));
  }
  const value = (f.values as readonly string[])[0] as string;
  let byValue = prints.get(f.key);
  let print = byValue?.get(value);
  if (print !== undefined) return print;
  print = fingerprint(filterKey(q));
  if (f.key.length + value.length > PRINT_TEXT_MAX) return print;
  if (printsKept >= PRINTS_KEPT) {
    prints.clear();
    printsKept = 0;
    byValue = undefined;
  }
  if (byValue === undefined) prints.set(f.key, (byValue = new Map()));
  byValue.set(value, print);
  printsKept++;
  return print;
}

const CURSOR_VERSION = 1;

/**
 * Where a cursor's JSON is written as UTF-8 before its base64url: one buffer for every cursor
 * instead of one each. A text of up to a third of its size in UTF-16 units always fits.
 */
const scratch = Buffer.allocUnsafe(8192);

/**
 * An opaque cursor: the position of a page's last item and the fingerprint of its filters,
 * base64url-encoded JSON. It holds no order, so the same cursor pages on in either direction.
 */
export function encodeCursor(q: Filters, last: Position): string {
  // JSON.stringify([CURSOR_VERSION, fingerprint, createdAt, id]), without the array (the fingerprint is hex).
  const json = `[${CURSOR_VERSION},"${printOf(q)}",${JSON.stringify(last.createdAt)},${JSON.stringify(last.id)}]`;
  if (json.length * 3 > scratch.length) return Buffer.from(json, "utf8").toString("base64url");
  return scratch.toString("base64url", 0, scratch.write(json, 0, "utf8"));
}

/** The position a cursor holds, after checking it was made for `q`'s filters. */
export function decodeCursor(cursor: unknown, q: Filters): Position {
  if (typeof cursor !== "string" || cursor.length === 0 || cursor.length > 8192 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    invalid("is not a cursor dgent made (pass back the `cursor` of a page unchanged)");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64url(cursor)));
  } catch {
    invalid("is not a cursor dgent made (pass back the `cursor` of a page unchanged)");
  }
  if (!Array.isArray(parsed) || parsed.length !== 4 || parsed[0] !== CURSOR_VERSION) {
    invalid("is not a cursor dgent made, or one from another version");
  }
  const [, print, createdAt, id] = parsed as [number, unknown, unknown, unknown];
  if (typeof createdAt !== "number" || !Number.isFinite(createdAt) || typeof id !== "string" || !id.isWellFormed()) {
    invalid("is not a cursor dgent made");
  }
  if (print !== printOf(q)) {
    invalid("was made for a query with other filters (prefix, idRange, where, parent, after, before); use it with the same ones");
  }
  return { createdAt, id };
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function fromBase64url(text: string): Uint8Array {
  if (text.length % 4 === 1) throw new Error("bad length");
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let j = 0;
  for (const ch of text) {
    acc = (acc << 6) | B64.indexOf(ch);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, j);
}
