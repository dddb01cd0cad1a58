/**
 * A full backup's datum records and their hash heads, written straight into the chunk's buffers
 * on the main thread: the same bytes as `recordHeader` and `datumHashHead` (format.ts) give, but
 * laid out byte by byte where the text is ASCII, without building the strings first (a million
 * of each per million datums, and a `Buffer#write` call per string). The tests compare the two.
 */
import type { Datum } from "../core/datum.js";
import { datumHashTail, recordHeader } from "./format.js";

/** `text`'s UTF-8 at `at` (ASCII byte by byte, else one `Buffer#write`); the end. Room: 3 bytes per UTF-16 unit. */
export function putText(b: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128) return at - i + b.write(text, at - i, "utf8");
    b[at++] = c;
  }
  return at;
}

/** `JSON.stringify(text)`'s UTF-8 at `at`; the end. Room: 6 bytes per UTF-16 unit, and 2. */
function putJson(b: Buffer, at: number, text: string): number {
  b[at] = 34;
  let p = at + 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Control characters, the quote, the backslash and non-ASCII: JSON.stringify's own escaping.
    if (c < 32 || c === 34 || c === 92 || c >= 128) return at + b.write(JSON.stringify(text), at, "utf8");
    b[p++] = c;
  }
  b[p++] = 34;
  return p;
}

/**
 * Bytes that `putRecord` and `HeadsBuffer.add` need at most for `d` (without the content), or -1
 * when `d` is not of the usual shape (a string id, a string or null parent, string metadata
 * values): then the strings are built and written as before.
 */
export function recordRoom(d: Datum, keys: readonly string[]): number {
  if (typeof d.id !== "string" || (d.causalParent !== null && typeof d.causalParent !== "string") || typeof d.createdAt !== "number") return -1;
  let chars = d.id.length + (d.causalParent?.length ?? 0);
  const metadata = d.metadata as Record<string, unknown>;
  for (const k of keys) {
    const v = metadata[k];
    if (typeof v !== "string") return -1;
    chars += k.length + v.length;
  }
  return 128 + 6 * chars + 8 * keys.length;
}

/** `recordHeader(d)`'s UTF-8 at `at`; the end. `keys`: `Object.keys(d.metadata)`; room: `recordRoom`. */
export function putRecordHeader(b: Buffer, at: number, d: Datum, keys: readonly string[], room: number): number {
  if (room < 0) return at + b.write(recordHeader(d), at, "utf8");
  at = putText(b, at, '{"id":');
  at = putJson(b, at, d.id);
  at = putText(b, at, ',"createdAt":');
  at = putText(b, at, JSON.stringify(d.createdAt));
  at = putText(b, at, ',"causalParent":');
  at = d.causalParent === null ? putText(b, at, "null") : putJson(b, at, d.causalParent);
  at = putText(b, at, ',"metadata":{');
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    if (i > 0) b[at++] = 44;
    at = putJson(b, at, k);
    b[at++] = 58;
    at = putJson(b, at, d.metadata[k] as string);
  }
  b[at++] = 125;
  b[at++] = 125;
  return at;
}

/**
 * The hash heads (`datumHashHead`) of a datum chunk's records, written on the main thread, which
 * holds each datum's fields already, so that the chunk worker hashes the records without parsing
 * their header JSON again. Per record: u32 LE bytes of the id, u32 LE bytes of the rest of the
 * head (`datumHashTail`), f64 LE createdAt, then those bytes (UTF-8).
 */
export class HeadsBuffer {
  #buf = Buffer.allocUnsafeSlow(256 * 1024);
  #size = 0;

  /** `keys` and `room`: as for `putRecordHeader` (by default, worked out here). */
  add(d: Datum, keys: readonly string[] = Object.keys(d.metadata), room = recordRoom(d, keys)): void {
    const tail = room < 0 ? datumHashTail(d) : "";
    const need = 16 + (room < 0 ? 3 * (String(d.id).length + tail.length) : room);
    if (this.#size + need > this.#buf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.#buf.length * 2, this.#size + need));
      this.#buf.copy(bigger, 0, 0, this.#size);
      this.#buf = bigger;
    }
    const b = this.#buf;
    const start = this.#size;
    const idEnd = putText(b, start + 16, String(d.id));
    let at = idEnd;
    if (room < 0) at += b.write(tail, at, "utf8");
    else {
      // datumHashTail: \0 createdAt \0 (parent or \u0001) \0, then key \0 value \0 by key.
      b[at++] = 0;
      at = putText(b, at, `${d.createdAt}`);
      b[at++] = 0;
      if (d.causalParent === null) b[at++] = 1;
      else at = putText(b, at, d.causalParent);
      b[at++] = 0;
      const sorted = keys.length < 2 ? keys : keys.length === 2 ? ((keys[0] as string) > (keys[1] as string) ? [keys[1], keys[0]] : keys) : [...keys].sort();
      for (const k of sorted as readonly string[]) {
        at = putText(b, at, k);
        b[at++] = 0;
        at = putText(b, at, d.metadata[k] as string);
        b[at++] = 0;
      }
    }
    b.writeUInt32LE(idEnd - start - 16, start);
    b.writeUInt32LE(at - idEnd, start + 4);
    b.writeDoubleLE(d.createdAt, start + 8);
    this.#size = at;
  }

  /** The heads added since the last `take`, to hand to `ChunkWorker.run` (a new buffer starts). */
  take(): Buffer {
    const out = this.#buf.subarray(0, this.#size);
    this.#buf = Buffer.allocUnsafeSlow(this.#buf.length);
    this.#size = 0;
    return out;
  }
}
