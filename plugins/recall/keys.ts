/**
 * Where the recall plugin keeps its own datums in the store, and how it encodes them. Every id it
 * writes starts with `dgent.vec/`; each embedding model has its own folder under it, so vectors of
 * two models never meet:
 *
 *   dgent.vec/<model>/v/<id>              one vector (or a "not text" marker) of datum <id>
 *   dgent.vec/<model>/a/<gen>             the manifest of a saved artefact (JSON), written last
 *   dgent.vec/<model>/a/<gen>/r<i>        its records: ids, createdAt and (for the datum storage) vectors
 *   dgent.vec/<model>/a/<gen>/g<i>        its ANN graph (usearch's file, in pieces)
 */
import { createHash } from "node:crypto";
import { endianness } from "node:os";
import { MAX_ID_BYTES } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";

const UNIT = "recall";

/** Every id the plugin writes starts with this. */
export const RESERVED_PREFIX = "dgent.vec/";
/** The first id after the reserved range ("/" + 1 = "0"): `idRange: { gte: RESERVED_END }` skips it. */
export const RESERVED_END = "dgent.vec0";

/** Metadata tags of the plugin's datums. `dgent.recall` is `vector`, `skip` (not text) or `artefact`. */
export const TAG_KIND = "dgent.recall";
export const TAG_ID = "dgent.recall.id";
export const TAG_AT = "dgent.recall.at";
export const TAG_MODEL = "dgent.recall.model";

export function isReserved(id: string): boolean {
  return id.startsWith(RESERVED_PREFIX);
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/** A folder name for a model id: readable, and unique by a hash of the id. */
export function modelKey(modelId: string): string {
  const slug = modelId.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40) || "model";
  return `${slug}-${sha256(modelId).slice(0, 10)}`;
}

/** The model's folder, `dgent.vec/<model>/`. */
export const modelPrefix = (key: string) => `${RESERVED_PREFIX}${key}/`;
export const vectorPrefix = (key: string) => `${modelPrefix(key)}v/`;
export const artefactPrefix = (key: string) => `${modelPrefix(key)}a/`;

/** The id of datum `id`'s vector: the id itself under the folder, or its SHA-256 when that would be too long. */
export function vectorDatumId(key: string, id: string): string {
  const plain = vectorPrefix(key) + id;
  return Buffer.byteLength(plain, "utf8") <= MAX_ID_BYTES ? plain : `${vectorPrefix(key)}#${sha256(id)}`;
}

const LITTLE_ENDIAN = endianness() === "LE";

/** Writes `v` as float32 little-endian at `offset` of `target`. */
function writeFloats(v: Float32Array, target: Buffer, offset: number): void {
  if (LITTLE_ENDIAN) target.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), offset);
  else for (let i = 0; i < v.length; i++) target.writeFloatLE(v[i] as number, offset + i * 4);
}

/** Reads `n` float32 little-endian numbers at `offset` of `source` into a new array. */
function readFloats(source: Buffer, offset: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(source.subarray(offset, offset + n * 4));
  else for (let i = 0; i < n; i++) out[i] = source.readFloatLE(offset + i * 4);
  return out;
}

/** A vector (or `null`: the datum is not text) as datum content: float32 little-endian, or no bytes. */
export function encodeVector(vector: Float32Array | null): Uint8Array {
  if (vector === null) return new Uint8Array(0);
  const out = Buffer.allocUnsafe(vector.length * 4);
  writeFloats(vector, out, 0);
  return out;
}

/** Vectors stored under the embedder's model id have other dimensions: the id must change with them, or everything be embedded again. */
export function dimensionsError(where: string, stored: number, wanted: number): Error {
  return dgentError(
    "DGENT_INVALID_OPTIONS",
    `${where}: stored with ${stored} dimensions under this model id, but the embedder gives ${wanted}; give the embedder a new id (each model id has its own index), or run \`dgent reindex --full\` (attach(store, { rebuild: true })) to embed everything again`,
    { unit: UNIT, details: { stored, wanted } },
  );
}

export function decodeVector(bytes: Uint8Array, dimensions: number, where: string): Float32Array {
  if (bytes.byteLength !== dimensions * 4) {
    throw dimensionsError(where, bytes.byteLength / 4, dimensions);
  }
  return readFloats(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, dimensions);
}

/** One stored vector: the datum's id and createdAt, and its vector or `null` (not text: nothing to embed). */
export interface StoredVector {
  readonly id: string;
  readonly createdAt: number;
  readonly vector: Float32Array | null;
}

/** A record of a saved artefact: a stored vector and the key the ANN graph knows it by (0: not in the graph). */
export interface ArtefactRecord extends StoredVector {
  readonly key: bigint;
}

const MAGIC = 0x31524744; // "DGR1" little-endian
const HAS_VECTOR = 1;
const IS_TEXT = 2;

/**
 * Records as chunks of at most `chunkBytes`: a header (magic, dimensions, count) and per record a
 * flags byte, the key (u64), createdAt (f64), the id (u32 length + UTF-8) and, with `withVectors`,
 * the vector (float32 LE).
 */
export function encodeRecords(records: readonly ArtefactRecord[], dimensions: number, withVectors: boolean, chunkBytes: number): Buffer[] {
  const chunks: Buffer[] = [];
  let parts: Buffer[] = [];
  let size = 12;
  let count = 0;
  const flush = (): void => {
    const header = Buffer.allocUnsafe(12);
    header.writeUInt32LE(MAGIC, 0);
    header.writeUInt32LE(dimensions, 4);
    header.writeUInt32LE(count, 8);
    chunks.push(Buffer.concat([header, ...parts]));
    parts = [];
    size = 12;
    count = 0;
  };
  for (const r of records) {
    const id = Buffer.from(r.id, "utf8");
    const vectorBytes = withVectors && r.vector !== null ? dimensions * 4 : 0;
    const record = Buffer.allocUnsafe(1 + 8 + 8 + 4 + id.byteLength + vectorBytes);
    record.writeUInt8((r.vector !== null ? IS_TEXT : 0) | (vectorBytes ? HAS_VECTOR : 0), 0);
    record.writeBigUInt64LE(r.key, 1);
    record.writeDoubleLE(r.createdAt, 9);
    record.writeUInt32LE(id.byteLength, 17);
    id.copy(record, 21);
    if (vectorBytes) writeFloats(r.vector as Float32Array, record, 21 + id.byteLength);
    if (count > 0 && size + record.byteLength > chunkBytes) flush();
    parts.push(record);
    size += record.byteLength;
    count++;
  }
  if (count > 0 || chunks.length === 0) flush();
  return chunks;
}

/**
 * Records decoded from one chunk. A record without a vector in an artefact that stores none
 * (`vector` is then a zero-length array standing for "text, vector kept elsewhere") is told
 * apart from a "not text" marker (`vector: null`).
 */
export function decodeRecords(chunk: Uint8Array, dimensions: number, where: string): ArtefactRecord[] {
  const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const bad = (why: string) => dgentError("DGENT_BACKEND_ERROR", `${where}: ${why}`, { unit: UNIT });
  if (b.byteLength < 12 || b.readUInt32LE(0) !== MAGIC) throw bad("not a records chunk");
  if (b.readUInt32LE(4) !== dimensions) throw bad(`records of ${b.readUInt32LE(4)} dimensions, expected ${dimensions}`);
  const count = b.readUInt32LE(8);
  const out: ArtefactRecord[] = [];
  let o = 12;
  for (let n = 0; n < count; n++) {
    if (o + 21 > b.byteLength) throw bad("truncated");
    const flags = b.readUInt8(o);
    const key = b.readBigUInt64LE(o + 1);
    const createdAt = b.readDoubleLE(o + 9);
    const idBytes = b.readUInt32LE(o + 17);
    o += 21;
    if (o + idBytes > b.byteLength) throw bad("truncated");
    const id = b.toString("utf8", o, o + idBytes);
    o += idBytes;
    let vector: Float32Array | null = flags & IS_TEXT ? new Float32Array(0) : null;
    if (flags & HAS_VECTOR) {
      if (o + dimensions * 4 > b.byteLength) throw bad("truncated");
      vector = readFloats(b, o, dimensions);
      o += dimensions * 4;
    }
    out.push({ id, createdAt, key, vector });
  }
  return out;
}
