import fc from "fast-check";
import type { Datum } from "../core/datum.js";
import { ordersDisagree, referenceSameValue } from "./references.js";

/**
 * fast-check arbitraries that reach the cases where stores go wrong, shared by the property
 * tests. Each one names the edge cases it is meant to reach; test/arbitraries.test.ts samples
 * them with a fixed seed and checks that each case comes up often enough to matter.
 */

// ---------------------------------------------------------------------------------------------
// Characters and ids

/**
 * Characters on either side of every boundary where encodings part: 1-, 2-, 3- and 4-byte UTF-8,
 * and the range U+E000–U+FFFF, which UTF-16 code unit order puts after the astral characters
 * (their surrogates are 0xD800–0xDFFF) while code point and UTF-8 byte order put it before.
 */
export const BOUNDARY_CHARS: readonly string[] = Object.freeze([
  "a",
  "b",
  "/",
  "~",
  "\u00a0",
  "é",
  "\u07ff",
  "\u0800",
  "\ud7ff",
  "\ue000",
  "\uf8ff",
  "\ufb01",
  "\ufffd",
  "\uffff",
  "\u{10000}",
  "\u{1f989}",
  "\u{10ffff}",
]);

const char = (min: number, max: number) => fc.integer({ min, max }).map((n) => String.fromCodePoint(n));

/** The private-use and specials block, U+E000–U+FFFF (after the surrogates in code point order). */
export const highBmpChar = char(0xe000, 0xffff);
/** A character outside the BMP: a surrogate pair in UTF-16. */
export const astralChar = char(0x10000, 0x10ffff);

/** One character an id may hold (no control characters), boundaries weighted heavily. */
export const idChar: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom(...BOUNDARY_CHARS), weight: 5 },
  { arbitrary: char(0x20, 0x7e), weight: 2 },
  { arbitrary: char(0xa0, 0xd7ff), weight: 1 },
  { arbitrary: highBmpChar, weight: 2 },
  { arbitrary: astralChar, weight: 2 },
);

/** Strings of `minLength`–`maxLength` characters drawn from `unit`. */
export const text = (unit: fc.Arbitrary<string>, minLength: number, maxLength: number) =>
  fc.array(unit, { minLength, maxLength }).map((cs) => cs.join(""));

/** A valid id of 1–6 characters (at most 24 bytes of UTF-8). */
export const idArb: fc.Arbitrary<string> = text(idChar, 1, 6);

export type IdPairKind = "equal" | "prefix" | "surrogate-order" | "independent";

/**
 * Two ids, reaching: equal ids; one a proper prefix of the other; ids that share a prefix and
 * then differ so that UTF-16 code unit order and code point order disagree (a U+E000–U+FFFF
 * character against an astral one, e.g. U+FFFF vs U+10000); and independent ids.
 */
export const idPairArb: fc.Arbitrary<readonly [string, string]> = fc.oneof(
  fc.tuple(idArb, idArb),
  idArb.map((a) => [a, a] as const),
  fc.tuple(text(idChar, 0, 3), idArb, fc.boolean()).map(([p, t, swap]) => (swap ? ([p + t, p] as const) : ([p, p + t] as const))).filter(([a, b]) => a !== "" && b !== ""),
  fc
    .tuple(text(idChar, 0, 3), highBmpChar, astralChar, text(idChar, 0, 2), text(idChar, 0, 2), fc.boolean())
    .map(([p, bmp, astral, ta, tb, swap]) => {
      const a = p + bmp + ta;
      const b = p + astral + tb;
      return swap ? ([b, a] as const) : ([a, b] as const);
    }),
);

export function classifyIdPair(a: string, b: string): IdPairKind {
  if (a === b) return "equal";
  if (a.startsWith(b) || b.startsWith(a)) return "prefix";
  if (ordersDisagree(a, b)) return "surrogate-order";
  return "independent";
}

// ---------------------------------------------------------------------------------------------
// Metadata and content

/** Keys that behave unlike others on a JS object: prototype names, integer-like keys, "". */
export const AWKWARD_KEYS: readonly string[] = Object.freeze(["__proto__", "constructor", "toString", "0", "10", ""]);

/** Characters metadata may hold: anything but U+0000 and lone surrogates, so controls and JSON escapes too. */
const metadataChar = fc.oneof(
  { arbitrary: idChar, weight: 4 },
  { arbitrary: fc.constantFrom("\n", "\u0001", "\u007f", "\u2028", '"', "\\"), weight: 1 },
);

export const metadataKeyArb = fc.oneof(fc.constantFrom(...AWKWARD_KEYS), text(metadataChar, 1, 6));
export const metadataValueArb = fc.oneof(fc.constant(""), text(metadataChar, 1, 8));

/** Builds metadata as own properties, also for "__proto__" (an assignment would set the prototype). */
export function metadataOf(entries: Iterable<readonly [string, string]>): Record<string, string> {
  const m: Record<string, string> = {};
  for (const [k, v] of entries) Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
  return m;
}

export const metadataArb: fc.Arbitrary<Record<string, string>> = fc
  .uniqueArray(fc.tuple(metadataKeyArb, metadataValueArb), { selector: (e) => e[0], maxLength: 4 })
  .map(metadataOf);

export const contentArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 8 }),
  fc.uint8Array({ maxLength: 300 }),
);

/** How a copy holds its bytes: a plain array, a Buffer, or a view inside a larger buffer at an offset. */
export type BytesForm = "array" | "buffer" | "view";

export function copyBytes(bytes: Uint8Array, form: BytesForm, offset = 3): Uint8Array {
  if (form === "array") return new Uint8Array(bytes);
  if (form === "buffer") return Buffer.from(bytes);
  // Different bytes around the view, so a comparison that ignores byteOffset sees a difference.
  const backing = new Uint8Array(bytes.length + offset + 2).fill(0xa5);
  backing.set(bytes, offset);
  return backing.subarray(offset, offset + bytes.length);
}

// ---------------------------------------------------------------------------------------------
// Datums

export const createdAtArb = fc.oneof(
  fc.integer({ min: 0, max: 5 }),
  fc.integer({ min: 0, max: 4_102_444_800_000 }),
  fc.double({ min: 0, max: 1e15, noNaN: true, noDefaultInfinity: true }),
);

export const datumArb: fc.Arbitrary<Datum> = fc
  .record({
    id: idArb,
    content: contentArb,
    createdAt: createdAtArb,
    causalParent: fc.option(idArb, { nil: null, freq: 3 }),
    metadata: metadataArb,
  })
  .map((d) => (d.causalParent === d.id ? { ...d, causalParent: null } : d));

/** A copy of `d` in fresh objects: new content bytes in `form`, metadata rebuilt in reverse key order. */
export function freshCopy(d: Datum, form: BytesForm): Datum {
  const entries = Object.keys(d.metadata).map((k) => [k, d.metadata[k] as string] as const);
  return {
    id: d.id.slice(0),
    content: copyBytes(d.content, form),
    createdAt: d.createdAt,
    causalParent: d.causalParent,
    metadata: metadataOf(entries.reverse()),
  };
}

/** How the second datum of a pair differs from the first. */
export type PairKind =
  | "equal"
  | "id"
  | "createdAt"
  | "causalParent"
  | "metadata-key"
  | "metadata-value"
  | "metadata-extra"
  | "content-byte"
  | "content-length"
  | "independent";

export interface DatumPair {
  readonly a: Datum;
  readonly b: Datum;
  readonly kind: PairKind;
  /** How b's bytes are held. */
  readonly form: BytesForm;
}

/** Kinds whose b has the same value as a (the law ignores id and createdAt). */
export const SAME_VALUE_KINDS: ReadonlySet<PairKind> = new Set(["equal", "id", "createdAt"]);

/** How often each kind comes up: equal-but-distinct and the parent cases weigh more. */
const PAIR_KIND_WEIGHTS: Readonly<Record<PairKind, number>> = {
  equal: 3,
  id: 1,
  createdAt: 1,
  causalParent: 2,
  "metadata-key": 1,
  "metadata-value": 1,
  "metadata-extra": 1,
  "content-byte": 1,
  "content-length": 1,
  independent: 1,
};

const pairKindArb: fc.Arbitrary<PairKind> = fc.oneof(
  ...Object.entries(PAIR_KIND_WEIGHTS).map(([kind, weight]) => ({ arbitrary: fc.constant(kind as PairKind), weight })),
);

function otherThan(x: string, candidate: string, avoid: string | null = null): string {
  let y = candidate === x ? `${candidate}\u{10000}` : candidate;
  if (y === avoid) y = `${y}\uffff`;
  return y;
}

/**
 * Two distinct datum objects: equal in value but held in fresh objects and buffers (bytes as a
 * plain array, a Buffer, or a view at an offset into a larger buffer; metadata keys in another
 * order), or differing in exactly one field — id, createdAt, causal parent (null vs an id, or
 * two ids that differ only in surrogate order), one metadata key, one metadata value, one
 * metadata entry more, one content byte, the content length — or independent of each other.
 */
export const datumPairArb: fc.Arbitrary<DatumPair> = fc
  .record({
    a: datumArb,
    kind: pairKindArb,
    form: fc.constantFrom<BytesForm>("array", "buffer", "view"),
    other: idArb,
    twin: fc.tuple(highBmpChar, astralChar),
    key: metadataKeyArb,
    value: metadataValueArb,
    pick: fc.nat(),
    delta: fc.integer({ min: 1, max: 255 }),
    independent: datumArb,
  })
  .map(({ a: base, kind, form, other, twin, key, value, pick, delta, independent }): DatumPair => {
    let a = base;
    const needsEntry = kind === "metadata-key" || kind === "metadata-value";
    if (needsEntry && Object.keys(a.metadata).length === 0) a = { ...a, metadata: metadataOf([[key, value]]) };
    if ((kind === "content-byte" || kind === "content-length") && a.content.length === 0) a = { ...a, content: new Uint8Array([pick % 256]) };
    // Parents that differ only in surrogate order: a U+E000–U+FFFF character against an astral one.
    let twinParent: string | null = null;
    if (kind === "causalParent" && pick % 3 === 1) {
      const stem = a.causalParent ?? other;
      const [bmp, astral] = twin;
      const mine = otherThan(a.id, `${stem}${bmp}`);
      twinParent = otherThan(a.id, `${stem}${astral}`, mine);
      a = { ...a, causalParent: mine };
    }
    const b: { -readonly [K in keyof Datum]: Datum[K] } = { ...freshCopy(a, form) };
    const keys = Object.keys(a.metadata);
    switch (kind) {
      case "equal":
        break;
      case "id":
        b.id = otherThan(a.id, other, a.causalParent);
        break;
      case "createdAt":
        b.createdAt = a.createdAt === 0 ? 1 : pick % 2 === 0 ? a.createdAt / 2 : a.createdAt + 1;
        break;
      case "causalParent":
        if (pick % 3 === 0) b.causalParent = a.causalParent === null ? otherThan(a.id, other) : null;
        else if (pick % 3 === 1) b.causalParent = twinParent as string;
        else b.causalParent = otherThan(a.id, `${a.causalParent ?? ""}${other}`, a.causalParent);
        break;
      case "metadata-key": {
        const k = keys[pick % keys.length] as string;
        let renamed = key;
        while (Object.hasOwn(a.metadata, renamed)) renamed = `${renamed}\ue000`;
        b.metadata = metadataOf(keys.map((x) => [x === k ? renamed : x, a.metadata[x] as string] as const));
        break;
      }
      case "metadata-value": {
        const k = keys[pick % keys.length] as string;
        const old = a.metadata[k] as string;
        const changed = value === old ? `${old}\u{10000}` : value;
        b.metadata = metadataOf(keys.map((x) => [x, x === k ? changed : (a.metadata[x] as string)] as const));
        break;
      }
      case "metadata-extra": {
        let extra = key;
        while (Object.hasOwn(a.metadata, extra)) extra = `${extra}\ue000`;
        b.metadata = metadataOf([...keys.map((x) => [x, a.metadata[x] as string] as const), [extra, value]]);
        break;
      }
      case "content-byte": {
        const bytes = new Uint8Array(a.content);
        const i = pick % bytes.length;
        bytes[i] = ((bytes[i] as number) + delta) % 256;
        b.content = copyBytes(bytes, form);
        break;
      }
      case "content-length":
        b.content = copyBytes(pick % 2 === 0 ? a.content.subarray(0, a.content.length - 1) : new Uint8Array([...a.content, 0]), form);
        break;
      case "independent":
        return { a, b: { ...independent, id: a.id, causalParent: independent.causalParent === a.id ? null : independent.causalParent }, kind, form };
    }
    return { a, b, kind, form };
  });

/** The second of two ids in a pair differing only in surrogate order: used to classify parents. */
export function parentsInSurrogateOrder(p: DatumPair): boolean {
  const x = p.a.causalParent;
  const y = p.b.causalParent;
  return x !== null && y !== null && x !== y && ordersDisagree(x, y);
}

/** Expected answer of the law for a pair, from how it was made (a third oracle beside the reference). */
export function pairHasSameValue(p: DatumPair): boolean {
  return p.kind === "independent" ? referenceSameValue(p.a, p.b) : SAME_VALUE_KINDS.has(p.kind);
}
