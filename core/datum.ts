import { nodeCrypto } from "./lazy.js";
import { dgentError } from "./errors.js";
import { uuidv7 } from "./ids.js";
import { assertExpiryTag, EXPIRES_AT, expiryTag, type ExpiryInput } from "./expiry.js";

/** The atomic unit of persisted data: bytes with an identity and an optional causal link. */
export interface Datum {
  /** 1..1024 bytes of UTF-8, no control characters; "/" may be used for hierarchy. */
  readonly id: string;
  /** Raw bytes, schema-free. A Buffer is accepted (it is a Uint8Array). */
  readonly content: Uint8Array;
  /** Unix epoch milliseconds. */
  readonly createdAt: number;
  /** The id of the datum that caused this one, or null. */
  readonly causalParent: string | null;
  /** String tags; no schema. Keys and values hold no U+0000 and no lone surrogate. */
  readonly metadata: Readonly<Record<string, string>>;
}

export const MAX_ID_BYTES = 1024;

// C0 controls, DEL and C1 controls.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** Throws `DGENT_INVALID_ID` unless `id` is a valid datum id. */
export function assertId(id: unknown, what = "id"): asserts id is string {
  if (typeof id !== "string") {
    throw dgentError("DGENT_INVALID_ID", `${what} must be a string, got ${describe(id)}`);
  }
  if (id.length === 0) throw dgentError("DGENT_INVALID_ID", `${what} must not be empty`);
  // Up to 341 UTF-16 units cannot exceed 1024 UTF-8 bytes, so most ids skip the byte count.
  if (id.length > 341 && Buffer.byteLength(id, "utf8") > MAX_ID_BYTES) {
    throw dgentError(
      "DGENT_INVALID_ID",
      `${what} is ${Buffer.byteLength(id, "utf8")} bytes of UTF-8; the limit is ${MAX_ID_BYTES}`,
    );
  }
  if (CONTROL_CHARS.test(id)) {
    throw dgentError("DGENT_INVALID_ID", `${what} ${JSON.stringify(id)} contains a control character`);
  }
  if (!id.isWellFormed()) {
    throw dgentError("DGENT_INVALID_ID", `${what} contains a lone UTF-16 surrogate (not valid UTF-8)`);
  }
}

/** Throws a coded validation error unless `value` is a well-formed Datum. */
export function assertDatum(value: unknown): asserts value is Datum {
  if (value === null || typeof value !== "object") {
    throw dgentError("DGENT_INVALID_DATUM", `a datum must be an object, got ${describe(value)}`);
  }
  const d = value as Record<string, unknown>;
  assertId(d.id);
  if (!(d.content instanceof Uint8Array)) {
    throw dgentError(
      "DGENT_INVALID_CONTENT",
      `content of datum ${JSON.stringify(d.id)} must be a Uint8Array or Buffer, got ${describe(d.content)}`,
    );
  }
  const createdAt = d.createdAt;
  if (typeof createdAt !== "number" || !Number.isFinite(createdAt) || createdAt < 0) {
    throw dgentError(
      "DGENT_INVALID_DATUM",
      `createdAt of datum ${JSON.stringify(d.id)} must be a finite, non-negative number of epoch milliseconds, got ${describe(createdAt)}`,
    );
  }
  if (d.causalParent !== null) {
    if (d.causalParent === undefined) {
      throw dgentError(
        "DGENT_INVALID_DATUM",
        `causalParent of datum ${JSON.stringify(d.id)} must be an id or null, got undefined`,
      );
    }
    assertId(d.causalParent, "causalParent");
    if (d.causalParent === d.id) {
      throw dgentError("DGENT_CAUSAL_CYCLE", `datum ${JSON.stringify(d.id)} names itself as its causal parent`);
    }
  }
  assertMetadata(d.metadata, d.id as string);
  assertExpiryTag(d.metadata as Record<string, string>, d.id as string);
}

export function assertMetadata(metadata: unknown, id = "?"): asserts metadata is Record<string, string> {
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
    throw dgentError(
      "DGENT_INVALID_METADATA",
      `metadata of datum ${JSON.stringify(id)} must be a plain object, got ${describe(metadata)}`,
    );
  }
  for (const key in metadata) {
    if (!Object.hasOwn(metadata, key)) continue;
    const v = (metadata as Record<string, unknown>)[key];
    if (typeof v !== "string") {
      throw dgentError(
        "DGENT_INVALID_METADATA",
        `metadata ${JSON.stringify(key)} of datum ${JSON.stringify(id)} must be a string, got ${describe(v)}`,
      );
    }
    if (!storableText(key) || !storableText(v)) {
      throw dgentError(
        "DGENT_INVALID_METADATA",
        `metadata ${JSON.stringify(key)} of datum ${JSON.stringify(id)} holds U+0000 or a lone UTF-16 surrogate; ` +
          "no tier stores those (Postgres text and JSONB cannot hold U+0000, and a lone surrogate is not UTF-8)",
        { details: { id, key } },
      );
    }
  }
}

// U+0000 and the surrogate range: a cheap first look before the exact check.
const SUSPECT_TEXT = /[\u0000\ud800-\udfff]/;

/**
 * True when every tier can store `text` as it is: no U+0000 and no lone surrogate. Every tier
 * accepts exactly the same datums, so a datum that one tier (Postgres) could not hold is refused
 * at `put` on all of them, and promotion never meets one (see core/LATTICE.md).
 */
export function storableText(text: string): boolean {
  return !SUSPECT_TEXT.test(text) || (!text.includes("\u0000") && text.isWellFormed());
}

/** True when two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export function sameMetadata(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k] || !Object.hasOwn(b, k)) return false;
  return true;
}

/**
 * The append-only law's notion of "the same datum": equal content bytes, causal parent and
 * metadata. `createdAt` records when a value first appeared and is not compared, so re-putting a
 * content-addressed datum later is the no-op it should be. (See README "The append-only law".)
 */
export function sameValue(a: Datum, b: Datum): boolean {
  return (
    a.causalParent === b.causalParent && sameBytes(a.content, b.content) && sameMetadata(a.metadata, b.metadata)
  );
}

export type IdStrategy = "time" | "content";

export interface MakeDatumInput extends ExpiryInput {
  /** Bytes, or a string stored as UTF-8. */
  content: Uint8Array | string;
  causalParent?: string | null;
  metadata?: Record<string, string>;
  /** Defaults to `Date.now()`. */
  createdAt?: number;
  /** An explicit id; otherwise one is generated by `idStrategy`. */
  id?: string;
  /** `time` (default): UUIDv7, ids sort by creation. `content`: SHA-256 over content, parent and metadata. */
  idStrategy?: IdStrategy;
  /** Prepended to a generated id, e.g. `"agent-7/"` for hierarchy and prefix listing. */
  idPrefix?: string;
}

/** Makes a valid datum, generating its id. Throws the same coded errors as `put` would. */
export function makeDatum(input: MakeDatumInput): Datum {
  const content = typeof input.content === "string" ? new TextEncoder().encode(input.content) : input.content;
  const causalParent = input.causalParent ?? null;
  const metadata = { ...(input.metadata ?? {}) };
  const createdAt = input.createdAt ?? Date.now();
  const expiry = expiryTag(input, createdAt);
  if (expiry !== undefined) metadata[EXPIRES_AT] = expiry;
  const generated = input.idStrategy === "content" ? contentId(content, causalParent, metadata) : uuidv7();
  const datum: Datum = {
    id: input.id ?? (input.idPrefix ?? "") + generated,
    content,
    createdAt,
    causalParent,
    metadata,
  };
  assertDatum(datum);
  return datum;
}

/** SHA-256 (hex) over a length-prefixed encoding of content, causal parent and sorted metadata. */
export function contentId(
  content: Uint8Array,
  causalParent: string | null,
  metadata: Readonly<Record<string, string>>,
): string {
  const hash = nodeCrypto().createHash("sha256");
  const field = (bytes: Uint8Array | string): void => {
    const b = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(b.byteLength));
    hash.update(len);
    hash.update(b);
  };
  field(content);
  field(causalParent === null ? "\u0000null" : `p:${causalParent}`);
  for (const key of Object.keys(metadata).sort()) {
    field(key);
    field(metadata[key] as string);
  }
  return hash.digest("hex");
}

/**
 * A copy of content. Small copies come from Node's Buffer pool (about 2.5× faster than
 * `Uint8Array.prototype.slice` for 1 KiB), so the result is a Buffer whose `.buffer` may be shared
 * with other pooled Buffers — use `byteOffset`/`byteLength`, as with any Buffer.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const copy = Buffer.allocUnsafe(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/** A copy whose content and metadata the caller may mutate without touching the original. */
export function cloneDatum(d: Datum): Datum {
  return {
    id: d.id,
    content: copyBytes(d.content),
    createdAt: d.createdAt,
    causalParent: d.causalParent,
    metadata: { ...d.metadata },
  };
}

/**
 * Copies of many datums at once: their contents are copied into one allocation and handed out
 * as separate views (disjoint ranges, so mutating one changes no other and nothing stored).
 * One allocation instead of one per datum: a list of 100 copies in a few microseconds.
 */
export function cloneDatums(datums: readonly Datum[]): Datum[] {
  let total = 0;
  for (const d of datums) total += d.content.byteLength;
  const block = Buffer.allocUnsafeSlow(total);
  const out: Datum[] = new Array(datums.length);
  let offset = 0;
  for (let i = 0; i < datums.length; i++) {
    const d = datums[i] as Datum;
    const n = d.content.byteLength;
    block.set(d.content, offset);
    out[i] = { id: d.id, content: block.subarray(offset, offset + n), createdAt: d.createdAt, causalParent: d.causalParent, metadata: { ...d.metadata } };
    offset += n;
  }
  return out;
}

/** Decodes content as UTF-8 text. */
export function contentText(d: Datum): string {
  return Buffer.from(d.content.buffer, d.content.byteOffset, d.content.byteLength).toString("utf8");
}

export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (typeof value === "object") return `an object (${value.constructor?.name ?? "no prototype"})`;
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}
