import type { Datum } from "../core/datum.js";

/**
 * Reference answers for property tests, written without the product's comparators
 * (`compareIds` / `compareNewestFirst` in core/order.ts, `sameValue` in core/datum.ts). A test
 * that asked the product for its own expected answer could not find a bug in it.
 */

/**
 * The protocol's id order: the byte order of the ids' UTF-8 encodings (Buffer does the encoding
 * and the comparison). Only for well-formed text: Buffer would turn a lone surrogate into U+FFFD,
 * which would make the answer wrong, so it is refused.
 */
export function referenceCompareIds(a: string, b: string): -1 | 0 | 1 {
  if (!a.isWellFormed() || !b.isWellFormed()) throw new Error("referenceCompareIds: ids are well-formed text");
  return Math.sign(Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))) as -1 | 0 | 1;
}

/** Plain `<` on JS strings: UTF-16 code unit order, which the protocol does not use. */
export function utf16Compare(a: string, b: string): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** True when UTF-16 code unit order and code point order put `a` and `b` differently. */
export function ordersDisagree(a: string, b: string): boolean {
  return utf16Compare(a, b) !== referenceCompareIds(a, b);
}

/** `list` order: createdAt descending, then id descending in UTF-8 byte order. */
export function referenceNewestFirst(
  a: { readonly id: string; readonly createdAt: number },
  b: { readonly id: string; readonly createdAt: number },
): number {
  if (a.createdAt > b.createdAt) return -1;
  if (a.createdAt < b.createdAt) return 1;
  return referenceCompareIds(b.id, a.id);
}

/** What `list({ prefix, after, limit })` returns from `datums`, by the reference order. */
export function referenceList<T extends { readonly id: string; readonly createdAt: number }>(
  datums: Iterable<T>,
  query: { readonly prefix: string; readonly after: number; readonly limit: number },
): T[] {
  return [...datums]
    .filter((d) => d.id.startsWith(query.prefix) && d.createdAt > query.after)
    .sort(referenceNewestFirst)
    .slice(0, Math.max(0, query.limit));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function entriesOf(m: Readonly<Record<string, string>>): [string, string][] {
  return Object.keys(m)
    .sort()
    .map((k) => [k, m[k] as string]);
}

function equalMetadata(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ea = entriesOf(a);
  const eb = entriesOf(b);
  if (ea.length !== eb.length) return false;
  for (let i = 0; i < ea.length; i++) {
    const [ka, va] = ea[i] as [string, string];
    const [kb, vb] = eb[i] as [string, string];
    if (ka !== kb || va !== vb) return false;
  }
  return true;
}

/**
 * The append-only law's "same value" (README, "The append-only law"): the same content bytes,
 * causal parent and metadata entries. `createdAt` is not part of the value, and neither is the
 * id: the law compares two datums stored under one id.
 */
export function referenceSameValue(a: Datum, b: Datum): boolean {
  return a.causalParent === b.causalParent && equalBytes(a.content, b.content) && equalMetadata(a.metadata, b.metadata);
}

/** The first field in which two datums differ (every field, id and createdAt included), or null. */
export function datumDifference(actual: Datum, expected: Datum): string | null {
  if (actual.id !== expected.id) return `id ${JSON.stringify(actual.id)} != ${JSON.stringify(expected.id)}`;
  if (actual.createdAt !== expected.createdAt) return `createdAt ${actual.createdAt} != ${expected.createdAt}`;
  if (actual.causalParent !== expected.causalParent) {
    return `causalParent ${JSON.stringify(actual.causalParent)} != ${JSON.stringify(expected.causalParent)}`;
  }
  if (!(actual.content instanceof Uint8Array)) return "content is not a Uint8Array";
  if (!equalBytes(actual.content, expected.content)) {
    return `content ${Buffer.from(actual.content).toString("hex")} != ${Buffer.from(expected.content).toString("hex")}`;
  }
  if (!equalMetadata(actual.metadata, expected.metadata)) {
    return `metadata ${JSON.stringify(entriesOf(actual.metadata))} != ${JSON.stringify(entriesOf(expected.metadata))}`;
  }
  return null;
}

/** Throws unless `actual` equals `expected` in every field. */
export function assertSameDatum(actual: Datum | null | undefined, expected: Datum, what = "datum"): void {
  if (actual === null || actual === undefined) throw new Error(`${what} ${JSON.stringify(expected.id)} is missing`);
  const difference = datumDifference(actual, expected);
  if (difference !== null) throw new Error(`${what} ${JSON.stringify(expected.id)}: ${difference}`);
}

/** What a store call should do, by the reference model. */
export type ExpectedOutcome = "stored" | "no-op" | "conflict" | "deleted" | "absent";

/**
 * The protocol's put/putMany/delete over a map, as a model to check a tier against: a put of a
 * live id with the same value is a no-op (the first createdAt stays), with another value a
 * conflict; a putMany is all or nothing; after a delete the id may be used again.
 */
export class ReferenceStore {
  readonly live = new Map<string, Datum>();

  put(d: Datum): ExpectedOutcome {
    const held = this.live.get(d.id);
    if (held !== undefined) return referenceSameValue(held, d) ? "no-op" : "conflict";
    this.live.set(d.id, snapshot(d));
    return "stored";
  }

  putMany(ds: readonly Datum[]): ExpectedOutcome {
    const fresh = new Map<string, Datum>();
    for (const d of ds) {
      const held = this.live.get(d.id) ?? fresh.get(d.id);
      if (held !== undefined) {
        if (!referenceSameValue(held, d)) return "conflict";
        continue;
      }
      fresh.set(d.id, d);
    }
    for (const d of fresh.values()) this.live.set(d.id, snapshot(d));
    return fresh.size > 0 ? "stored" : "no-op";
  }

  delete(id: string): ExpectedOutcome {
    return this.live.delete(id) ? "deleted" : "absent";
  }
}

/** A copy the caller cannot change afterwards. */
function snapshot(d: Datum): Datum {
  return {
    id: d.id,
    content: new Uint8Array(d.content),
    createdAt: d.createdAt,
    causalParent: d.causalParent,
    metadata: Object.freeze(Object.fromEntries(Object.keys(d.metadata).map((k) => [k, d.metadata[k] as string]))),
  };
}
