/**
 * A backup's datum record headers, written straight into the chunk's buffer on the main thread:
 * the same bytes as `recordHeader` (format.ts) gives, but laid out byte by byte where the text is
 * ASCII, without building the string first (a million per million datums). The tests compare the two.
 */
import type { Datum } from "../core/datum.js";
import { recordHeader } from "./format.js";

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
 * Bytes that `putRecordHeader` needs at most for `d`, or -1
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
