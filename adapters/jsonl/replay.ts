import { isUtf8 } from "node:buffer";
import { fstatSync, readSync } from "node:fs";
import { dgentError } from "../../core/errors.js";
import type { ReflogEntry } from "../../core/refs.js";
import { compareIds } from "../../core/order.js";
import type { IndexedEntry } from "../shared-index/entry.js";
import { parseLine } from "./records.js";
import { LogRefs } from "./refs.js";

/**
 * One live datum in the index: its header (id, createdAt, parent, tags: what queries check and
 * `select: "meta"` returns) and where its record sits in the log (`get` reads exactly these bytes).
 */
export interface Entry extends IndexedEntry {
  /** Byte offset of the record's line; rewritten in place by compaction. */
  offset: number;
  /** Byte length of the line, newline excluded. */
  readonly length: number;
}

export interface Replayed {
  /** Live entries, oldest first (createdAt, then id), ready for the index. */
  readonly entries: Entry[];
  /** The refs and their reflogs, from the `ref` records of the good part of the log. */
  readonly refs: LogRefs;
  /** Lines in the good part of the log (puts, tombstones, batch frames). */
  readonly lines: number;
  /** Bytes of the good part of the log: the file is cut back to this when a tail is torn. */
  readonly end: number;
  /** The torn tail after `end`, dropped by the caller; null when the log ends cleanly. */
  readonly torn: { readonly line: number; readonly bytes: number; readonly reason: string } | null;
}

interface Bad {
  readonly line: number;
  readonly reason: string;
}

/** Every record line starts with this; a torn one starts with (a prefix of) it. */
const RECORD_START = Buffer.from('{"v":');

/** A line of NUL bytes only: space the file system allocated but whose data never landed. */
function allNul(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) if (line[i] !== 0) return false;
  return true;
}

function looksLikeRecord(line: Buffer): boolean {
  const n = Math.min(line.length, RECORD_START.length);
  return line.subarray(0, n).equals(RECORD_START.subarray(0, n));
}

/** What a batch holds until its commit: puts, deletes and ref moves (version 2), in order. */
type Staged = { readonly op: "put"; readonly entry: Entry } | { readonly op: "del"; readonly id: string } | { readonly op: "ref"; readonly entry: ReflogEntry };

interface OpenBatch {
  readonly line: number;
  readonly n: number;
  readonly staged: Staged[];
}

const CHUNK = 1 << 20;

/**
 * Reads the whole log once, in chunks, keeping only the datums' headers and offsets, and the refs.
 *
 * A torn tail — what one interrupted write leaves: at most one bad line (a last line without its
 * newline, or cut short), a batch without its commit, NUL-only lines — is reported for the
 * caller to cut off. Anything else is refused with the file untouched: a bad line followed by a
 * good one, or several bad lines at the end, is `DGENT_CORRUPT_LOG`; a file none of whose lines
 * is or starts like a record is `DGENT_NOT_A_DATABASE` (so a wrong `path` never truncates it).
 */
export function replay(fd: number, path: string, unit: string): Replayed {
  const size = fstatSync(fd).size;
  const live = new Map<string, Entry>();
  const refs = new LogRefs();
  let chunk = Buffer.allocUnsafe(Math.max(64 * 1024, Math.min(size, CHUNK)));
  let chunkStart = 0; // file offset of chunk[0]
  let filled = 0;
  let pos = 0;
  let lineNo = 0;
  let goodEnd = 0;
  let goodLines = 0;
  let bad: Bad | null = null; // the first bad line after the last good one
  let badLines = 0; // bad lines since then, NUL-only ones not counted
  let sawRecord = false;
  let batch: OpenBatch | null = null;

  const fail = (line: number, reason: string, bytes: Buffer | null): void => {
    if (bad === null) bad = { line, reason };
    if (bytes === null || !allNul(bytes)) badLines++;
    if (bytes !== null && bytes.length > 0 && (looksLikeRecord(bytes) || allNul(bytes))) sawRecord = true;
  };

  for (;;) {
    const n = readSync(fd, chunk, filled, chunk.length - filled, pos);
    pos += n;
    filled += n;
    const view = chunk.subarray(0, filled);
    let start = 0;
    for (let nl = view.indexOf(10, start); nl !== -1; nl = view.indexOf(10, start)) {
      lineNo++;
      const offset = chunkStart + start;
      const line = view.subarray(start, nl);
      start = nl + 1;
      const rec = isUtf8(line) ? parseLine(line.toString("utf8")) : "not valid UTF-8";
      if (typeof rec === "string") {
        if (rec.startsWith("too new")) throw tooNew(path, lineNo, rec, unit);
        fail(lineNo, rec, line);
        continue;
      }
      if (bad !== null) throw corrupt(path, bad, unit, "valid records follow it");
      sawRecord = true;
      const end = chunkStart + start;
      switch (rec.op) {
        case "put": {
          const entry: Entry = { id: rec.id, createdAt: rec.createdAt, causalParent: rec.causalParent, metadata: rec.metadata, offset, length: line.length };
          if (batch === null) {
            live.set(rec.id, entry);
            goodEnd = end;
            goodLines = lineNo;
          } else if (batch.staged.length < batch.n) {
            batch.staged.push({ op: "put", entry });
          } else {
            fail(lineNo, `batch of ${batch.n} from line ${batch.line} has more records than announced`, null);
          }
          break;
        }
        case "del":
        case "ref":
          if (batch === null) {
            if (rec.op === "del") live.delete(rec.id);
            else refs.apply([rec.entry]);
            goodEnd = end;
            goodLines = lineNo;
          } else if (batch.staged.length < batch.n) {
            batch.staged.push(rec.op === "del" ? { op: "del", id: rec.id } : { op: "ref", entry: rec.entry });
          } else {
            fail(lineNo, `batch of ${batch.n} from line ${batch.line} has more records than announced`, null);
          }
          break;
        case "begin":
          if (batch !== null) fail(lineNo, `batch inside the batch from line ${batch.line}`, null);
          else batch = { line: lineNo, n: rec.n, staged: [] };
          break;
        case "commit":
          if (batch === null || batch.n !== rec.n || batch.staged.length !== rec.n) {
            fail(lineNo, "commit without a matching batch", null);
            break;
          }
          for (const r of batch.staged) {
            if (r.op === "put") live.set(r.entry.id, r.entry);
            else if (r.op === "del") live.delete(r.id);
            else refs.apply([r.entry]);
          }
          batch = null;
          goodEnd = end;
          goodLines = lineNo;
          break;
      }
    }
    if (n === 0) {
      if (start < filled) fail(lineNo + 1, "last line has no newline (a write cut short)", view.subarray(start, filled));
      break;
    }
    // Keep the unfinished line at the front; grow when one line is longer than the chunk.
    chunk.copy(chunk, 0, start, filled);
    chunkStart += start;
    filled -= start;
    if (filled === chunk.length) {
      const bigger = Buffer.allocUnsafe(chunk.length * 2);
      chunk.copy(bigger, 0, 0, filled);
      chunk = bigger;
    }
  }

  const openBatch = batch as OpenBatch | null;
  const first = bad as Bad | null;
  if (size > 0 && !sawRecord) {
    throw dgentError("DGENT_NOT_A_DATABASE", `${path} is not a dgent JSONL log (no line is a record); it was left untouched`, {
      unit,
      details: { path },
    });
  }
  if (first !== null && badLines > 1) {
    throw corrupt(path, first, unit, `${badLines} bad lines end the log, more than one interrupted write leaves`);
  }
  if (openBatch !== null && first === null) {
    bad = { line: openBatch.line, reason: `batch of ${openBatch.n} records without its commit (a write cut short)` };
  }
  // Oldest first, so building the index appends instead of inserting.
  const entries = [...live.values()].sort((a, b) => a.createdAt - b.createdAt || compareIds(a.id, b.id));
  const tail = bad as Bad | null;
  const torn =
    goodEnd < size ? { line: goodLines + 1, bytes: size - goodEnd, reason: tail?.reason ?? "unknown" } : null;
  return { entries, refs, lines: goodLines, end: goodEnd, torn };
}

function corrupt(path: string, bad: Bad, unit: string, why: string) {
  return dgentError(
    "DGENT_CORRUPT_LOG",
    `${path} line ${bad.line} is not a valid record (${bad.reason}) and ${why}; the log was left untouched. Repair or remove the bad line(s) by hand`,
    { unit, details: { path, line: bad.line, reason: bad.reason } },
  );
}

function tooNew(path: string, line: number, reason: string, unit: string) {
  return dgentError(
    "DGENT_SCHEMA_TOO_NEW",
    `${path} line ${line} was written by a newer dgent (${reason}); upgrade dgent to open this log`,
    { unit, details: { path, line } },
  );
}
