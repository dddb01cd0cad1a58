import { crc32 } from "node:zlib";
import { assertId, assertMetadata, type Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import type { ReflogEntry } from "../../core/refs.js";

/**
 * The record format of a JSONL log, version 3. One JSON object per line, every line carrying
 * `"v"` so a later version can be appended to an older log and told apart line by line:
 *
 *   {"v":1,"op":"put","id":"a","createdAt":1700000000000,"causalParent":null,"metadata":{},"content":"aGk="}
 *   {"v":1,"op":"del","id":"a"}
 *   {"v":1,"op":"begin","n":2}   ...n put lines...   {"v":1,"op":"commit","n":2}
 *   {"v":2,"op":"ref","name":"head","from":null,"to":"a","version":1,"at":1700000000000,"by":"host:42"}
 *   {"v":2,"op":"begin","n":3}   ...n put, del and ref lines...   {"v":2,"op":"commit","n":3}
 *   {"v":3,"op":"put","id":"a",…,"content":"aGk=","crc":"0a1b2c3d"}
 *
 * `content` is base64. `begin`/`commit` frame a `putMany` or a transaction so a crash inside it
 * loses the whole batch, never part of it. Version 2 added `ref` records (one move of a ref: a
 * reflog entry) and deletes inside a frame. Version 3 puts end with `"crc"`: the CRC-32 (8 hex
 * digits) of the line's UTF-8 bytes before `,"crc":`; a read whose line does not match it fails
 * with `DGENT_CORRUPT` instead of returning wrong bytes. Every put is now written as version 3
 * (so a reader that knows only versions 1–2 refuses a log written since with
 * `DGENT_SCHEMA_TOO_NEW`); tombstones and frames keep the lowest version that can say them, and
 * version 1 puts (no checksum) in older logs are still read. See README.md "Record format".
 */
export const RECORD_VERSION = 3;

/** `,"crc":"` + 8 hex digits + `"}`: how every version 3 put line ends. */
const CRC_TAIL = 18;
const CRC_KEY = ',"crc":"';
const HEX8 = /^[0-9a-f]{8}$/;

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** A record as replay needs it: a put keeps only what the index holds (the header), never the content. */
export type LogRecord =
  | {
      readonly op: "put";
      readonly id: string;
      readonly createdAt: number;
      readonly causalParent: string | null;
      readonly metadata: Readonly<Record<string, string>>;
    }
  | { readonly op: "del"; readonly id: string }
  | { readonly op: "begin"; readonly n: number }
  | { readonly op: "commit"; readonly n: number }
  | { readonly op: "ref"; readonly entry: ReflogEntry };

const NL = 10;

/** The line of a put record, without its newline. */
export function putLine(d: Datum): string {
  const c = d.content;
  const b64 = Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString("base64");
  const parent = d.causalParent === null ? "null" : JSON.stringify(d.causalParent);
  const body = `{"v":3,"op":"put","id":${JSON.stringify(d.id)},"createdAt":${d.createdAt},"causalParent":${parent},"metadata":${metadataJson(d.metadata)},"content":"${b64}"`;
  return `${body}${CRC_KEY}${hex8(crc32(body))}"}`;
}

/**
 * Appends the put line of `d` and its newline to `out`, encoding it once: the checksum is taken
 * over the bytes just written. Byte for byte what `out.push(putLine(d))` writes, with one copy
 * and one UTF-8 encoding of the line fewer. Returns the line's byte length (newline excluded).
 */
export function pushPut(out: LineBuffer, d: Datum): number {
  const c = d.content;
  const b64 = Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString("base64");
  const parent = d.causalParent === null ? "null" : JSON.stringify(d.causalParent);
  const head = `{"v":3,"op":"put","id":${JSON.stringify(d.id)},"createdAt":${d.createdAt},"causalParent":${parent},"metadata":${metadataJson(d.metadata)},"content":"`;
  const start = out.length;
  // UTF-8 needs at most 3 bytes per UTF-16 unit of the head; base64 and the tail are ASCII.
  const buf = out.reserve(head.length * 3 + b64.length + 1 + CRC_TAIL + 1);
  let at = start + buf.write(head, start, "utf8");
  at += buf.write(b64, at, "latin1");
  buf[at++] = 34; // the closing quote of content
  const crc = crc32(buf.subarray(start, at));
  at += buf.write(`${CRC_KEY}${hex8(crc)}"}`, at, "latin1");
  buf[at] = NL;
  out.length = at + 1;
  return at - start;
}

/**
 * Whether a put line matches its checksum: `true` for a version 3 line whose CRC-32 matches,
 * `false` for one that does not (or lost its checksum), `null` for an older line without one.
 */
export function checksumOk(text: string): boolean | null {
  const n = text.length;
  const tail = n >= CRC_TAIL && text.charCodeAt(n - 1) === 125 /* } */ && text.startsWith(CRC_KEY, n - CRC_TAIL);
  if (!tail) return text.startsWith('{"v":3,') ? false : null;
  const hex = text.slice(n - CRC_TAIL + CRC_KEY.length, n - 2);
  return HEX8.test(hex) && crc32(text.slice(0, n - CRC_TAIL)) === Number.parseInt(hex, 16);
}

export function delLine(id: string): string {
  return `{"v":1,"op":"del","id":${JSON.stringify(id)}}`;
}

/** `v` is 2 when the frame holds a delete or a ref move (a transaction), else 1 (a putMany). */
export function beginLine(n: number, v: 1 | 2 = 1): string {
  return `{"v":${v},"op":"begin","n":${n}}`;
}

export function commitLine(n: number, v: 1 | 2 = 1): string {
  return `{"v":${v},"op":"commit","n":${n}}`;
}

/** One move of a ref (a reflog entry); `to: null` deletes the ref. */
export function refLine(e: ReflogEntry): string {
  const from = e.from === null ? "null" : JSON.stringify(e.from);
  const to = e.to === null ? "null" : JSON.stringify(e.to);
  return `{"v":2,"op":"ref","name":${JSON.stringify(e.name)},"from":${from},"to":${to},"version":${e.version},"at":${e.at},"by":${JSON.stringify(e.by)}}`;
}

function metadataJson(m: Readonly<{ [key: string]: string }>): string {
  for (const _ in m) return JSON.stringify(m);
  return "{}";
}

/**
 * A growable byte buffer lines are encoded into before one `write` call, so a put costs no
 * allocation beyond its strings, and a batch goes to the file in one piece.
 */
export class LineBuffer {
  buf: Buffer;
  length = 0;

  constructor(size = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

  reset(): void {
    this.length = 0;
  }

  /** Appends `line` and a newline; returns the line's byte length (newline excluded). */
  push(line: string): number {
    // UTF-8 needs at most 3 bytes per UTF-16 unit; grow only when that bound could overflow.
    const need = this.length + line.length * 3 + 1;
    if (need > this.buf.length) this.#grow(need);
    const n = this.buf.write(line, this.length, "utf8");
    this.buf[this.length + n] = NL;
    this.length += n + 1;
    return n;
  }

  /** Appends the first `n` bytes of `src` (lines already encoded elsewhere). */
  pushBytes(src: Buffer, n: number): void {
    if (this.length + n > this.buf.length) this.#grow(this.length + n);
    src.copy(this.buf, this.length, 0, n);
    this.length += n;
  }

  /** Makes room for `n` bytes at `length` and returns the buffer (for direct reads into it). */
  reserve(n: number): Buffer {
    if (this.length + n > this.buf.length) this.#grow(this.length + n);
    return this.buf;
  }

  #grow(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** Gives large buffers back after a big batch so one huge write does not pin memory. */
  shrink(size = 64 * 1024): void {
    if (this.buf.length > size * 16) this.buf = Buffer.allocUnsafe(size);
    this.length = 0;
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Parses one line; returns a reason string when it is not a valid record. */
export function parseLine(text: string): LogRecord | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return `not JSON (${(error as Error).message})`;
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return "not a JSON object";
  const r = raw as { [key: string]: unknown };
  if (r.v !== 1 && r.v !== 2 && r.v !== RECORD_VERSION) {
    return typeof r.v === "number" && r.v > RECORD_VERSION ? `too new: record version ${r.v}` : "no valid \"v\"";
  }
  switch (r.op) {
    case "put":
      return parsePut(r);
    case "del":
      if (typeof r.id !== "string" || r.id === "") return "del record without an id";
      return problem(() => assertId(r.id)) ?? { op: "del", id: r.id };
    case "begin":
    case "commit":
      return Number.isSafeInteger(r.n) && (r.n as number) > 0 ? { op: r.op, n: r.n as number } : `${r.op} without a count`;
    case "ref":
      return r.v !== 1 ? parseRef(r) : "ref record before version 2";
    default:
      return `unknown op ${JSON.stringify(r.op)}`;
  }
}

function parsePut(r: { [key: string]: unknown }): LogRecord | string {
  const { id, createdAt, causalParent, metadata, content } = r;
  if (typeof id !== "string" || id === "") return "put record without an id";
  // The same rules as put: a hand-edited id or metadata value put would refuse is not loaded.
  const invalid = problem(() => {
    assertId(id);
    if (causalParent !== null) assertId(causalParent, "causalParent");
    assertMetadata(metadata);
  });
  if (invalid !== null) return invalid;
  if (typeof createdAt !== "number" || !Number.isFinite(createdAt) || createdAt < 0) return "bad createdAt";
  if (causalParent !== null && (typeof causalParent !== "string" || causalParent === "")) return "bad causalParent";
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) return "bad metadata";
  for (const k in metadata) {
    if (typeof (metadata as { [key: string]: unknown })[k] !== "string") return "bad metadata";
  }
  if (typeof content !== "string" || content.length % 4 !== 0 || !BASE64.test(content)) return "bad content";
  return { op: "put", id, createdAt, causalParent: causalParent as string | null, metadata: metadata as Record<string, string> };
}

function parseRef(r: { [key: string]: unknown }): LogRecord | string {
  const { name, from, to, version, at, by } = r;
  if (typeof name !== "string" || name === "") return "ref record without a name";
  if (from !== null && (typeof from !== "string" || from === "")) return "bad ref from";
  if (to !== null && (typeof to !== "string" || to === "")) return "bad ref to";
  if (from === null && to === null) return "ref record that moves nothing";
  if (!Number.isSafeInteger(version) || (version as number) < 1) return "bad ref version";
  if (typeof at !== "number" || !Number.isFinite(at)) return "bad ref time";
  if (typeof by !== "string") return "bad ref actor";
  return { op: "ref", entry: { name, from: from as string | null, to: to as string | null, version: version as number, at, by } };
}

/**
 * Decodes a put line already validated at open (the hot path of `get`): no shape checks, but the
 * checksum of a version 3 line is verified first (`DGENT_CORRUPT`, naming `id`, when it does not
 * match). Returns null when the bytes are not a put record, which means the file changed under us.
 */
export function decodePut(text: string, id: string): Datum | null {
  if (checksumOk(text) === false) {
    throw dgentError("DGENT_CORRUPT", `the record of ${JSON.stringify(id)} does not match its checksum: its bytes changed on disk`, {
      unit: "jsonl",
      details: { id },
    });
  }
  const r = JSON.parse(text) as {
    op?: string;
    id: string;
    createdAt: number;
    causalParent: string | null;
    metadata: { [key: string]: string };
    content: string;
  };
  if (r.op !== "put") return null;
  return {
    id: r.id,
    content: Buffer.from(r.content, "base64"),
    createdAt: r.createdAt,
    causalParent: r.causalParent,
    metadata: r.metadata,
  };
}

/** What `check` throws, as a line's problem; `null` when it passes. */
function problem(check: () => void): string | null {
  try {
    check();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The `DGENT_CORRUPT` of `decodePut`, with where the record is: for a read of a live log. */
export function corruptRecord(error: Error, path: string, e: { readonly id: string; readonly offset: number }, unit: string): Error {
  return dgentError("DGENT_CORRUPT", `${path}: the record of ${JSON.stringify(e.id)} at byte ${e.offset} does not match its checksum: its bytes changed on disk`, {
    unit,
    cause: error,
    details: { path, id: e.id, offset: e.offset },
  });
}
