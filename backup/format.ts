/**
 * The backup archive format, version 1 (documented in `backup/FORMAT.md`): the manifest's shape
 * and digest, the record encodings of the four chunk kinds, and the state digest. Containers
 * (one packed file, or one object per chunk) are in `container.ts`.
 */
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import type { Datum } from "../core/datum.js";
import { dgentError } from "../core/errors.js";
import type { Ref } from "../core/refs.js";

export const UNIT = "backup";
export const FORMAT_NAME = "dgent-backup";
export const FORMAT_VERSION = 1;

export type ChunkKind = "datums" | "deletes" | "refs" | "index";
export type Compression = "gzip" | "brotli" | "none";

/** One chunk as the manifest lists it. */
export interface ChunkEntry {
  /** `<kind>-<6-digit sequence>`, unique in the archive, e.g. `datums-000003`. */
  readonly name: string;
  readonly kind: ChunkKind;
  /** Records in the chunk. */
  readonly records: number;
  /** Bytes before compression and encryption. */
  readonly rawBytes: number;
  /** Bytes as stored (after compression, then encryption). */
  readonly storedBytes: number;
  /** SHA-256 (hex) of the stored bytes. */
  readonly sha256: string;
}

export interface Manifest {
  readonly format: typeof FORMAT_NAME;
  readonly version: number;
  /** Sortable by time: `20261202T164410123Z-1a2b3c4d`. */
  readonly backupId: string;
  readonly kind: "full" | "incremental";
  /** The archive this one is an increment on, or null for a full backup. */
  readonly parent: { readonly backupId: string; readonly archiveDigest: string; readonly cut: number } | null;
  readonly namespace: string;
  readonly source: { readonly tier: string; readonly url: string | null };
  /** When the backup started (epoch ms). */
  readonly startedAt: number;
  readonly finishedAt: number;
  /** The cut: every datum with createdAt ≤ cut that the scan met is in the state. */
  readonly cut: number;
  readonly compression: Compression;
  readonly encryption: { readonly scheme: "age"; readonly recipients: readonly string[] } | null;
  readonly counts: {
    /** Datum records in this archive (all of the state for a full backup; what changed for an increment). */
    readonly datums: number;
    /** Datums in the state at the cut (the index). */
    readonly state: number;
    /** Ids of the parent's state that are gone from this one. */
    readonly deletes: number;
    readonly refs: number;
  };
  /** SHA-256 over the sorted (id, datum hash) pairs of the state: what a restore is checked against. */
  readonly stateDigest: string;
  readonly chunks: readonly ChunkEntry[];
  /** SHA-256 (hex) of this manifest's JSON without this field: covers every chunk through its sha256. */
  readonly archiveDigest: string;
}

/** The digest of a manifest: SHA-256 of its JSON with `archiveDigest` left out (key order as written). */
export function manifestDigest(manifest: Omit<Manifest, "archiveDigest"> & { archiveDigest?: string }): string {
  const { archiveDigest: _ignored, ...rest } = manifest;
  return createHash("sha256").update(JSON.stringify(rest)).digest("hex");
}

/** Parses and checks a manifest's bytes; `archive` names it in errors. */
export function parseManifest(bytes: Uint8Array, archive: string): Manifest {
  let value: Partial<Manifest>;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8")) as Partial<Manifest>;
  } catch (error) {
    throw dgentError("DGENT_BACKUP_CORRUPT", `the manifest of ${archive} is not JSON`, { unit: UNIT, cause: error, details: { archive, chunk: "manifest" } });
  }
  if (value === null || typeof value !== "object" || value.format !== FORMAT_NAME) {
    throw dgentError("DGENT_BACKUP_FORMAT", `${archive} is not a dgent backup archive`, { unit: UNIT, details: { archive } });
  }
  if (typeof value.version !== "number" || value.version > FORMAT_VERSION) {
    throw dgentError("DGENT_BACKUP_FORMAT", `${archive} is in backup format version ${String(value.version)}; this dgent reads versions up to ${FORMAT_VERSION}: upgrade dgent`, {
      unit: UNIT,
      details: { archive, version: value.version },
    });
  }
  if (typeof value.archiveDigest !== "string" || manifestDigest(value as Manifest) !== value.archiveDigest || !Array.isArray(value.chunks)) {
    throw dgentError("DGENT_BACKUP_CORRUPT", `the manifest of ${archive} does not match its own digest: it was changed or damaged`, {
      unit: UNIT,
      details: { archive, chunk: "manifest" },
    });
  }
  if (!["gzip", "brotli", "none"].includes(value.compression as string) || (value.encryption !== null && value.encryption?.scheme !== "age")) {
    throw dgentError("DGENT_BACKUP_FORMAT", `${archive} uses ${JSON.stringify(value.encryption?.scheme ?? value.compression)}, which this dgent cannot read: upgrade dgent`, {
      unit: UNIT,
      details: { archive, version: value.version },
    });
  }
  return value as Manifest;
}

/** One-shot SHA-256 (`crypto.hash`, Node ≥ 20.12): no Hash object per datum. */
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: "buffer" | "base64url") => Buffer | string }).hash;
/** The bytes a datum hash covers are laid out here (grown when a datum needs more). */
let scratch = Buffer.allocUnsafe(64 * 1024);

/** The text a datum hash covers before the content. */
export function datumHashHead(d: Pick<Datum, "id" | "createdAt" | "causalParent" | "metadata">): string {
  return d.id + datumHashTail(d);
}

/** `datumHashHead` after the id (the backup's chunk streams write the id's bytes apart: `worker.ts`). */
export function datumHashTail(d: Pick<Datum, "createdAt" | "causalParent" | "metadata">): string {
  let tail = `\0${d.createdAt}\0${d.causalParent ?? "\u0001"}\0`;
  const keys = Object.keys(d.metadata);
  if (keys.length > 1) keys.sort();
  for (const k of keys) tail += `${k}\0${d.metadata[k] as string}\0`;
  return tail;
}

/** A hash of a datum's whole value, createdAt included (the same as `dgent migrate` compares). */
export function datumHash(d: Datum): Buffer {
  return Buffer.from(datumKey(d), "base64url");
}

/**
 * `datumHash` as base64url text (43 characters), the form the index stores: backups and restores
 * compare and keep hashes as these strings, which one-shot hashing returns about twice as fast as
 * a Buffer (no buffer allocated per datum).
 */
export function datumKey(d: Datum): string {
  // The fields, then the content: the same bytes as migrate's field-by-field updates.
  const head = datumHashHead(d);
  if (oneShot === undefined) return createHash("sha256").update(head).update(d.content).digest("base64url");
  // One buffer, one call: the head (at most 3 bytes per UTF-16 unit) and the content side by side.
  const need = head.length * 3 + d.content.byteLength;
  if (need > scratch.length) {
    if (need > 16 * 2 ** 20) return createHash("sha256").update(head).update(d.content).digest("base64url");
    scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  }
  const at = scratch.write(head, 0, "utf8");
  scratch.set(d.content, at);
  return oneShot("sha256", scratch.subarray(0, at + d.content.byteLength), "base64url") as string;
}

/** Code point order, the order of the index and of the state digest. */
export const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * SHA-256 over the (id, datum hash) pairs sorted by id: the digest `dgent migrate` reports as
 * `sourceDigest`, so a backup's state digest and a migration's can be compared.
 */
export function stateDigest(entries: Iterable<readonly [string, Buffer]>): string {
  const sorted = [...entries].sort((a, b) => byCodePoint(a[0], b[0]));
  const h = createHash("sha256");
  for (const [id, hash] of sorted) h.update(id).update(hash);
  return h.digest("hex");
}

/**
 * `stateDigest` of (id, `datumKey`) pairs: the same bytes hashed (each id's UTF-8, then its
 * hash's 32 bytes), laid out in one buffer per 1 MiB instead of two updates per datum. Entries
 * already in code point order (an index as written) are not sorted again.
 */
export function stateDigestOfKeys(entries: Iterable<readonly [string, string]>): string {
  let list = Array.isArray(entries) ? (entries as ReadonlyArray<readonly [string, string]>) : [...entries];
  for (let i = 1; i < list.length; i++) {
    if (byCodePoint((list[i - 1] as readonly [string, string])[0], (list[i] as readonly [string, string])[0]) > 0) {
      list = [...list].sort((a, b) => byCodePoint(a[0], b[0]));
      break;
    }
  }
  const h = createHash("sha256");
  let buf = Buffer.allocUnsafe(2 ** 20);
  let at = 0;
  for (const [id, key] of list) {
    const need = id.length * 3 + 48;
    if (at + need > buf.length) {
      h.update(buf.subarray(0, at));
      at = 0;
      if (need > buf.length) buf = Buffer.allocUnsafe(need);
    }
    at += buf.write(id, at, "utf8");
    at += buf.write(key, at, "base64url");
  }
  h.update(buf.subarray(0, at));
  return h.digest("hex");
}

// ---- datum records: u32 header length, header JSON, u32 content length, content ----

interface RecordHeader {
  id: string;
  createdAt: number;
  causalParent: string | null;
  metadata: Record<string, string>;
  /** Reserved for expiry (epoch ms); v1 writers leave it out. */
  expiresAt?: number;
}

/** The header JSON of a datum record (the content follows it). */
export function recordHeader(d: Datum): string {
  // The same text as JSON.stringify of a RecordHeader with these keys in this order, without
  // building the object: {"id":…,"createdAt":…,"causalParent":…,"metadata":…}.
  return `{"id":${JSON.stringify(d.id)},"createdAt":${JSON.stringify(d.createdAt)},"causalParent":${JSON.stringify(d.causalParent)},"metadata":${JSON.stringify(d.metadata)}}`;
}

/** A datum read back from a chunk, with the reserved expiry when a writer set it. */
export interface DecodedDatum {
  readonly datum: Datum;
  readonly expiresAt: number | null;
}

export function* decodeDatums(raw: Buffer, archive: string, chunk: string): Generator<DecodedDatum> {
  let at = 0;
  const bad = (why: string) => dgentError("DGENT_BACKUP_CORRUPT", `chunk ${chunk} of ${archive} does not decode: ${why}`, { unit: UNIT, details: { archive, chunk } });
  while (at < raw.length) {
    if (at + 4 > raw.length) throw bad("a record header is cut");
    const headerLength = raw.readUInt32BE(at);
    at += 4;
    if (at + headerLength + 4 > raw.length) throw bad("a record is cut");
    let header: RecordHeader;
    try {
      header = JSON.parse(raw.toString("utf8", at, at + headerLength)) as RecordHeader;
    } catch {
      throw bad("a record header is not JSON");
    }
    at += headerLength;
    const contentLength = raw.readUInt32BE(at);
    at += 4;
    if (at + contentLength > raw.length) throw bad("a record's content is cut");
    // A view into the chunk, not a copy: the chunk lives as long as its datums are referenced.
    const content = new Uint8Array(raw.buffer, raw.byteOffset + at, contentLength);
    at += contentLength;
    if (typeof header.id !== "string" || typeof header.createdAt !== "number") throw bad("a record has no id or createdAt");
    yield {
      datum: { id: header.id, content, createdAt: header.createdAt, causalParent: header.causalParent ?? null, metadata: header.metadata ?? {} },
      expiresAt: typeof header.expiresAt === "number" ? header.expiresAt : null,
    };
  }
}

// ---- index records: one line per datum of the state, `<hash base64url>\t<createdAt>\t<id>` ----

export function encodeIndexLine(id: string, createdAt: number, key: string): string {
  return `${key}\t${createdAt}\t${id}\n`;
}

export function* decodeLines(raw: Buffer): Generator<string> {
  const text = raw.toString("utf8");
  let start = 0;
  for (;;) {
    const end = text.indexOf("\n", start);
    if (end < 0) break;
    yield text.slice(start, end);
    start = end + 1;
  }
}

/** A datum hash in an index line: 43 base64url characters, the last one canonical (its 2 spare bits zero). */
const INDEX_KEY = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** An index line as (id, createdAt, `datumKey`); `key` is checked to be a canonical encoding of 32 bytes. */
export function decodeIndexLine(line: string, archive: string, chunk: string): { id: string; createdAt: number; key: string } {
  const a = line.indexOf("\t");
  const b = line.indexOf("\t", a + 1);
  const key = line.slice(0, 43);
  if (a !== 43 || b < 0 || !INDEX_KEY.test(key)) throw dgentError("DGENT_BACKUP_CORRUPT", `chunk ${chunk} of ${archive} has a malformed index line`, { unit: UNIT, details: { archive, chunk } });
  return { key, createdAt: Number(line.slice(a + 1, b)), id: line.slice(b + 1) };
}

// ---- refs records: one JSON object per line; deletes: one id per line ----

/** One move of a ref as an archive records it (a `ReflogEntry` without the name). */
export interface RecordedMove {
  readonly from: string | null;
  readonly to: string | null;
  readonly version: number;
  readonly at: number;
  readonly by: string;
}

/** A ref as an archive records it: with its reflog, oldest move first, when the tier keeps one. */
export interface RecordedRef extends Ref {
  /** Absent in archives written before reflogs were recorded, and for tiers without a reflog. */
  readonly reflog?: readonly RecordedMove[];
}

export function encodeRefLine(ref: Ref, reflog?: readonly RecordedMove[]): string {
  const line: RecordedRef = { name: ref.name, target: ref.target, version: ref.version, updatedAt: ref.updatedAt, ...(reflog ? { reflog } : {}) };
  return `${JSON.stringify(line)}\n`;
}
