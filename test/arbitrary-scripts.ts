import fc from "fast-check";
import type { Datum } from "../core/datum.js";
import { astralChar, contentArb, copyBytes, createdAtArb, highBmpChar, idArb, metadataArb, metadataOf, text, type BytesForm } from "./arbitraries.js";
import { ordersDisagree, ReferenceStore, referenceSameValue } from "./references.js";

/**
 * Scripts of calls for property tests: store calls (put, putMany, delete, compact, reopen) and
 * ordered-index calls, built from the generators of ./arbitraries.ts. Each comes with a function
 * that runs a script against a plain model and says which edge cases it reached, which
 * test/arbitraries.test.ts uses to measure how often they come up.
 */

// ---------------------------------------------------------------------------------------------
// Scripts of store calls

export type StoreOp =
  | { readonly op: "put"; readonly datum: Datum }
  | { readonly op: "putMany"; readonly datums: readonly Datum[] }
  | { readonly op: "delete"; readonly id: string }
  | { readonly op: "compact" }
  | { readonly op: "reopen" };

const itemArb = fc.record({
  slot: fc.nat(),
  // Value 0 half the time, so a put of a live id is often identical rather than a conflict.
  value: fc.oneof(fc.constant(0), fc.nat()),
  parent: fc.option(fc.nat(), { nil: null }),
  createdAt: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 5 }), weight: 3 }, { arbitrary: createdAtArb, weight: 1 }),
  form: fc.constantFrom<BytesForm>("array", "buffer", "view"),
});

type Item = typeof itemArb extends fc.Arbitrary<infer T> ? T : never;

const stepArb = fc.oneof(
  { arbitrary: itemArb.map((item) => ({ op: "put" as const, item })), weight: 5 },
  { arbitrary: fc.array(itemArb, { minLength: 1, maxLength: 4 }).map((items) => ({ op: "putMany" as const, items })), weight: 2 },
  { arbitrary: fc.nat().map((slot) => ({ op: "delete" as const, slot })), weight: 4 },
  { arbitrary: fc.constant({ op: "compact" as const }), weight: 2 },
  { arbitrary: fc.constant({ op: "reopen" as const }), weight: 2 },
);

/**
 * A script of puts, batches, deletes, compactions and reopens over a few ids and values, so that
 * deletes hit live ids, ids are put again after their delete (with the same value or another,
 * before and after a compaction), puts of live ids conflict or are no-ops, and a reopen replays
 * tombstones followed by re-puts.
 */
export const storeScriptArb: fc.Arbitrary<readonly StoreOp[]> = fc
  .record({
    ids: fc.uniqueArray(idArb, { minLength: 2, maxLength: 4 }),
    values: fc.array(fc.record({ content: contentArb, metadata: metadataArb }), { minLength: 2, maxLength: 3 }),
    steps: fc.array(stepArb, { minLength: 6, maxLength: 30 }),
  })
  .map(({ ids, values, steps }) => {
    const make = (item: Item): Datum => {
      const id = ids[item.slot % ids.length] as string;
      const value = values[item.value % values.length] as { content: Uint8Array; metadata: Record<string, string> };
      const parent = item.parent === null ? null : (ids[item.parent % ids.length] as string);
      return {
        id,
        content: copyBytes(value.content, item.form),
        createdAt: item.createdAt,
        causalParent: parent === id ? null : parent,
        metadata: metadataOf(Object.keys(value.metadata).map((k) => [k, value.metadata[k] as string] as const)),
      };
    };
    return steps.map((s): StoreOp => {
      switch (s.op) {
        case "put":
          return { op: "put", datum: make(s.item) };
        case "putMany":
          return { op: "putMany", datums: s.items.map(make) };
        case "delete":
          return { op: "delete", id: ids[s.slot % ids.length] as string };
        default:
          return s;
      }
    });
  });

/** The edge cases a script reaches, found by running it against the reference model. */
export interface ScriptFeatures {
  deleteOfLive: boolean;
  reputAfterDelete: boolean;
  reputWithOtherValue: boolean;
  reputAfterDeleteAcrossCompaction: boolean;
  deleteAfterCompaction: boolean;
  reopenAfterDeleteAndReput: boolean;
  batchWithDeletedId: boolean;
  conflict: boolean;
  identicalReput: boolean;
}

export function scriptFeatures(script: readonly StoreOp[]): ScriptFeatures {
  const model = new ReferenceStore();
  const f: ScriptFeatures = {
    deleteOfLive: false,
    reputAfterDelete: false,
    reputWithOtherValue: false,
    reputAfterDeleteAcrossCompaction: false,
    deleteAfterCompaction: false,
    reopenAfterDeleteAndReput: false,
    batchWithDeletedId: false,
    conflict: false,
    identicalReput: false,
  };
  const deleted = new Map<string, { value: Datum; compactedSince: boolean }>();
  let compacted = false;
  let deleteAndReput = false;
  const reput = (d: Datum) => {
    const gone = deleted.get(d.id);
    if (gone === undefined) return;
    f.reputAfterDelete = true;
    if (!referenceSameValue(gone.value, d)) f.reputWithOtherValue = true;
    if (gone.compactedSince) f.reputAfterDeleteAcrossCompaction = true;
    deleteAndReput = true;
    deleted.delete(d.id);
  };
  for (const s of script) {
    switch (s.op) {
      case "put": {
        const outcome = model.put(s.datum);
        if (outcome === "conflict") f.conflict = true;
        if (outcome === "no-op") f.identicalReput = true;
        if (outcome === "stored") reput(s.datum);
        break;
      }
      case "putMany": {
        const wasDeleted = s.datums.some((d) => deleted.has(d.id));
        const outcome = model.putMany(s.datums);
        if (outcome === "conflict") f.conflict = true;
        else {
          if (wasDeleted) f.batchWithDeletedId = true;
          for (const d of s.datums) reput(d);
        }
        break;
      }
      case "delete": {
        const held = model.live.get(s.id);
        if (model.delete(s.id) === "deleted") {
          f.deleteOfLive = true;
          if (compacted) f.deleteAfterCompaction = true;
          deleted.set(s.id, { value: held as Datum, compactedSince: false });
        }
        break;
      }
      case "compact":
        compacted = true;
        for (const d of deleted.values()) d.compactedSince = true;
        break;
      case "reopen":
        if (deleteAndReput) f.reopenAfterDeleteAndReput = true;
        break;
    }
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// Operations on an ordered index (core/ordered-index.ts)

/** A small alphabet so ids share prefixes and collide, with U+E000–U+FFFF and astral characters. */
export const INDEX_CHARS: readonly string[] = Object.freeze(["a", "b", "/", "é", "\ue000", "\uffff", "\u{10000}", "\u{1f989}"]);

export type IndexOp =
  | { readonly kind: "set"; readonly id: string; readonly createdAt: number }
  | { readonly kind: "delete"; readonly id: string }
  | { readonly kind: "list"; readonly prefix: string; readonly after: number; readonly limit: number };

const indexChar = fc.oneof(
  { arbitrary: fc.constantFrom(...INDEX_CHARS), weight: 6 },
  { arbitrary: highBmpChar, weight: 1 },
  { arbitrary: astralChar, weight: 1 },
);

/**
 * Sets, deletes and lists over a pool of up to 40 ids (many sharing a first character): deletes and replacing sets hit held ids,
 * createdAt ties are common (0–5), and lists ask for prefixes of held ids, so results hold ties
 * whose ids UTF-16 order and code point order would sort differently, and some prefixes match
 * too many ids to be answered from the id order (the index then walks the time order).
 */
export const indexOpsArb: fc.Arbitrary<readonly IndexOp[]> = fc
  .record({
    keys: fc.uniqueArray(
      fc.oneof(text(indexChar, 1, 4), fc.tuple(fc.constantFrom("a", "a", "a/", "\uffff", "\u{10000}"), text(indexChar, 0, 3)).map(([stem, tail]) => stem + tail)),
      { minLength: 16, maxLength: 48 },
    ),
    /** Every id starts with "a": a one-character prefix then matches too many to read by id order. */
    crowded: fc.boolean(),
    ops: fc.array(
      fc.oneof(
        { arbitrary: fc.record({ kind: fc.constant("set" as const), slot: fc.nat(), createdAt: fc.integer({ min: 0, max: 5 }) }), weight: 4 },
        { arbitrary: fc.record({ kind: fc.constant("delete" as const), slot: fc.nat() }), weight: 2 },
        {
          arbitrary: fc.record({
            kind: fc.constant("list" as const),
            slot: fc.option(fc.nat(), { nil: null, freq: 4 }),
            cut: fc.oneof(fc.constant(0), fc.nat()),
            after: fc.integer({ min: -1, max: 5 }),
            limit: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 50 })),
          }),
          weight: 2,
        },
      ),
      { minLength: 20, maxLength: 120 },
    ),
  })
  .map(({ keys, crowded, ops }) => ({ keys: crowded ? keys.map((k) => `a${k}`) : keys, ops }))
  .map(({ keys, ops }) =>
    ops.map((o): IndexOp => {
      if (o.kind === "list") {
        let prefix = "";
        if (o.slot !== null) {
          const chars = [...(keys[o.slot % keys.length] as string)];
          prefix = chars.slice(0, 1 + (o.cut % chars.length)).join("");
        }
        return { kind: "list", prefix, after: o.after, limit: o.limit };
      }
      const id = keys[o.slot % keys.length] as string;
      return o.kind === "set" ? { kind: "set", id, createdAt: o.createdAt } : { kind: "delete", id };
    }),
  );

/** What the edge cases of an index script are, found by running it against a plain map. */
export interface IndexScriptFeatures {
  deleteOfHeld: boolean;
  replacingSet: boolean;
  /** A list whose expected answer holds two ids of one createdAt that UTF-16 order would swap. */
  tieInSurrogateOrder: boolean;
  /** A prefix list with more matches than the index's id-order budget (answered by a time walk). */
  broadPrefix: boolean;
  highBmpId: boolean;
}

export function indexScriptFeatures(ops: readonly IndexOp[]): IndexScriptFeatures {
  const held = new Map<string, number>();
  const f: IndexScriptFeatures = { deleteOfHeld: false, replacingSet: false, tieInSurrogateOrder: false, broadPrefix: false, highBmpId: false };
  for (const o of ops) {
    if (o.kind === "set") {
      if (held.has(o.id)) f.replacingSet = true;
      if (/[\ue000-\uffff]/.test(o.id)) f.highBmpId = true;
      held.set(o.id, o.createdAt);
    } else if (o.kind === "delete") {
      if (held.delete(o.id)) f.deleteOfHeld = true;
    } else {
      const hits = [...held].filter(([id, t]) => id.startsWith(o.prefix) && t > o.after);
      const matching = [...held.keys()].filter((id) => id.startsWith(o.prefix)).length;
      if (o.prefix !== "" && o.limit > 0 && matching > Math.max(o.limit * 8, held.size >>> 3)) f.broadPrefix = true;
      if (!f.tieInSurrogateOrder) {
        for (const [x, tx] of hits) for (const [y, ty] of hits) if (tx === ty && x < y && ordersDisagree(x, y)) f.tieInSurrogateOrder = true;
      }
    }
  }
  return f;
}
