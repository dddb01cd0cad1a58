import type { Datum } from "../../core/datum.js";

/**
 * The record format of a JSONL log, version 1. One JSON object per line, every line carrying
 * `"v"` so a later version can be appended to an older log and told apart line by line:
 *
 *   {"v":1,"op":"put","id":"a","createdAt":1700000000000,"causalParent":null,"metadata":{},"content":"aGk="}
 *   {"v":1,"op":"del","id":"a"}
 *   {"v":1,"op":"begin","n":2}   ...n put lines...   {"v":1,"op":"commit","n":2}
 *
 * `content` is base64. `begin`/`commit` frame a `putMany` so a crash inside it loses the whole
 * batch, never part of it. See README.md "Record format".
 */
export const RECORD_VERSION = 1;

/** A record as replay needs it: a put keeps only what the index holds, never the content. */
export type LogRecord =
  | { readonly op: "put"; readonly id: string; readonly createdAt: number }
  | { readonly op: "del"; readonly id: string }
  | { readonly op: "begin"; readonly n: number }
  | { readonly op: "commit"; readonly n: number };

const NL = 10;

/** The line of a put record, without its newline. */
export function putLine(d: Datum): string {
  const c = d.content;
  const b64 = Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString("base64");
  const parent = d.causalParent === null ? "null" : JSON.stringify(d.causalParent);
  return `{"v":1,"op":"put","id":${JSON.stringify(d.id)},"createdAt":${d.createdAt},"causalParent":${parent},"metadata":${metadataJson(d.metadata)},"content":"${b64}"}`;
}

export function delLine(id: string): string {
  return `{"v":1,"op":"del","id":${JSON.stringify(id)}}`;
}

export function beginLine(n: number): string {
  return `{"v":1,"op":"begin","n":${n}}`;
}

export function commitLine(n: number): string {
  return `{"v":1,"op":"commit","n":${n}}`;
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
  if (r.v !== RECORD_VERSION) {
    return typeof r.v === "number" && r.v > RECORD_VERSION ? `too new: record version ${r.v}` : "no valid \"v\"";
  }
  switch (r.op) {
    case "put":
      return parsePut(r);
    case "del":
      return typeof r.id === "string" && r.id !== "" ? { op: "del", id: r.id } : "del record without an id";
    case "begin":
    case "commit":
      return Number.isSafeInteger(r.n) && (r.n as number) > 0 ? { op: r.op, n: r.n as number } : `${r.op} without a count`;
    default:
      return `unknown op ${JSON.stringify(r.op)}`;
  }
}

function parsePut(r: { [key: string]: unknown }): LogRecord | string {
  const { id, createdAt, causalParent, metadata, content } = r;
  if (typeof id !== "string" || id === "") return "put record without an id";
  if (typeof createdAt !== "number" || !Number.isFinite(createdAt) || createdAt < 0) return "bad createdAt";
  if (causalParent !== null && (typeof causalParent !== "string" || causalParent === "")) return "bad causalParent";
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) return "bad metadata";
  for (const k in metadata) {
    if (typeof (metadata as { [key: string]: unknown })[k] !== "string") return "bad metadata";
  }
  if (typeof content !== "string" || content.length % 4 !== 0 || !BASE64.test(content)) return "bad content";
  return { op: "put", id, createdAt };
}

/**
 * Decodes a put line already validated at open (the hot path of `get`): no shape checks.
 * Returns null when the bytes are not a put record, which means the file changed under us.
 */
export function decodePut(text: string): Datum | null {
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
