import { createHash } from "node:crypto";

/**
 * The key layout of a namespace in a bucket. Everything lives under one root,
 * `<prefix><namespace>/`:
 *
 * ```
 * <root>dgent.json                               the manifest (layout version, index depth)
 * <root>d/<sha256(id)>                           one datum: envelope + content (see envelope.ts)
 * <root>t/<dir token>/<time key>.<hex(id)>       a time-index marker, empty but for a nonce
 * <root>t/<dir token>/<time key>~<sha256(id)>    the same, for ids too long to spell out
 * ```
 *
 * Data keys are hashes, so any id (up to 1024 UTF-8 bytes, any characters) maps to a short, safe
 * key. Markers make `list` cheap: every datum has one marker under the root directory `""` and
 * one under each `/`-ended prefix of its id up to `indexDepth` levels ("agent/", "agent/s1/").
 * Within a directory, marker keys sort newest first: the time key is the bit pattern of
 * `createdAt` (a non-negative double, whose IEEE 754 bits order like its value) subtracted from
 * 2^64-1, in 16 hex digits. Ties in time then sort by id ascending (hex of UTF-8 keeps byte
 * order), the reverse of `list`'s order: list.ts lists a time's markers in full and reads them
 * from the highest id down. Hex keeps every key in `[0-9a-f./~]`, which also sorts the same in
 * servers that keep objects as files (s3rver).
 */

/** Bumped when the layout changes incompatibly; recorded in the manifest. */
export const LAYOUT_VERSION = 1;

/** Ids whose hex spelling is longer than this get a hashed marker (the id is read from the datum). */
export const MAX_INLINE_ID_HEX = 200;

export const MANIFEST_NAME = "dgent.json";

/** A parsed marker key. */
export interface Marker {
  readonly key: string;
  readonly createdAt: number;
  /** Null for a hashed marker: the id is only known after reading the datum. */
  readonly id: string | null;
  /** sha256(id) in hex, i.e. the data key's last segment. */
  readonly hash: string;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

const MAX_U64 = 0xffff_ffff_ffff_ffffn;

/** Fixed-width hex that sorts newest first: 2^64-1 minus the IEEE 754 bits of `createdAt`. */
export function timeKey(createdAt: number): string {
  const buf = Buffer.alloc(8);
  buf.writeDoubleBE(createdAt === 0 ? 0 : createdAt); // -0 sorts with 0
  return (MAX_U64 - buf.readBigUInt64BE()).toString(16).padStart(16, "0");
}

export function parseTimeKey(key: string): number | null {
  if (!/^[0-9a-f]{16}$/.test(key)) return null;
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(MAX_U64 - BigInt(`0x${key}`));
  const value = buf.readDoubleBE();
  return Number.isFinite(value) && value >= 0 ? value : null;
}

/** The `/`-ended prefixes of `id` that are indexed: `""` and up to `depth` levels below it. */
export function indexedDirs(id: string, depth: number): string[] {
  const dirs = [""];
  let from = 0;
  while (dirs.length <= depth) {
    const slash = id.indexOf("/", from);
    if (slash < 0) break;
    dirs.push(id.slice(0, slash + 1));
    from = slash + 1;
  }
  return dirs;
}

/**
 * The directory whose markers answer `list({ prefix })`: the deepest indexed `/`-ended prefix of
 * `prefix`. `exact` when it is `prefix` itself, so no marker needs filtering.
 */
export function queryDir(prefix: string, depth: number): { dir: string; exact: boolean } {
  const dirs = indexedDirs(prefix, depth);
  const dir = dirs[dirs.length - 1] as string;
  return { dir, exact: dir === prefix };
}

export class KeyLayout {
  readonly root: string;
  readonly indexDepth: number;
  readonly manifestKey: string;
  readonly dataPrefix: string;
  readonly markerPrefix: string;

  constructor(root: string, indexDepth: number) {
    this.root = root;
    this.indexDepth = indexDepth;
    this.manifestKey = `${root}${MANIFEST_NAME}`;
    this.dataPrefix = `${root}d/`;
    this.markerPrefix = `${root}t/`;
  }

  dataKey(id: string): string {
    return this.dataPrefix + sha256Hex(id);
  }

  dataKeyOfHash(hash: string): string {
    return this.dataPrefix + hash;
  }

  /** The hash part of a data key, or null when `key` is not one. */
  hashOfDataKey(key: string): string | null {
    if (!key.startsWith(this.dataPrefix)) return null;
    const hash = key.slice(this.dataPrefix.length);
    return /^[0-9a-f]{64}$/.test(hash) ? hash : null;
  }

  /** Listing prefix of one directory's markers. */
  dirPrefix(dir: string): string {
    return `${this.markerPrefix}${sha256Hex(`dir:${dir}`).slice(0, 32)}/`;
  }

  /** Every marker key of a datum (one per indexed directory). */
  markerKeys(id: string, createdAt: number): string[] {
    const name = markerName(id, createdAt);
    return indexedDirs(id, this.indexDepth).map((dir) => this.dirPrefix(dir) + name);
  }

  /** Parses a marker key listed under `dirPrefix`; null for anything else. */
  parseMarker(key: string, dirPrefix: string): Marker | null {
    if (!key.startsWith(dirPrefix)) return null;
    const name = key.slice(dirPrefix.length);
    const createdAt = parseTimeKey(name.slice(0, 16));
    if (createdAt === null) return null;
    const kind = name[16];
    const rest = name.slice(17);
    if (kind === "~" && /^[0-9a-f]{64}$/.test(rest)) return { key, createdAt, id: null, hash: rest };
    if (kind === "." && /^(?:[0-9a-f]{2})+$/.test(rest)) {
      const id = Buffer.from(rest, "hex").toString("utf8");
      return { key, createdAt, id, hash: sha256Hex(id) };
    }
    return null;
  }
}

function markerName(id: string, createdAt: number): string {
  const hex = Buffer.from(id, "utf8").toString("hex");
  return hex.length <= MAX_INLINE_ID_HEX ? `${timeKey(createdAt)}.${hex}` : `${timeKey(createdAt)}~${sha256Hex(id)}`;
}

/** `<prefix><namespace>/`, with `prefix` given a trailing `/` when it has none. */
export function namespaceRoot(prefix: string, namespace: string): string {
  const p = prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
  return `${p}${namespace}/`;
}
