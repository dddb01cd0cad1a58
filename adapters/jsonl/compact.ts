import { randomBytes } from "node:crypto";
import { closeSync, constants, fsync, fsyncSync, openSync, readdirSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { LineBuffer } from "./records.js";
import type { Entry } from "./replay.js";

const TEMP_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL;
const CHUNK = 1 << 20;

export interface Compacted {
  /** An O_APPEND descriptor of the new log (already renamed into place). */
  readonly fd: number;
  /** New offset of each entry, in the order given. */
  readonly offsets: number[];
  readonly bytes: number;
}

function tempPrefix(path: string): string {
  return `${basename(path)}.compact-`;
}

/**
 * Copies the records of `entries` (sorted by offset) byte for byte from `fd` into a temp file
 * next to `path`, then `trailer` (lines without their newlines: the refs and reflogs), fsyncs it
 * and renames it over `path`. Until the rename the old log is untouched; the rename is atomic;
 * the caller fsyncs the directory afterwards.
 */
export async function compactLog(path: string, fd: number, entries: readonly Entry[], trailer: readonly string[] = []): Promise<Compacted> {
  const temp = join(dirname(path), `${tempPrefix(path)}${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  const out = openSync(temp, TEMP_FLAGS, 0o644);
  try {
    const buffer = new LineBuffer(CHUNK);
    const offsets = new Array<number>(entries.length);
    let written = 0;
    const flush = (): void => {
      let done = 0;
      while (done < buffer.length) done += writeSync(out, buffer.buf, done, buffer.length - done);
      written += buffer.length;
      buffer.reset();
    };
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      if (buffer.length > 0 && buffer.length + e.length + 1 > CHUNK) flush();
      const buf = buffer.reserve(e.length + 1);
      let got = 0;
      while (got < e.length) {
        const r = readSync(fd, buf, buffer.length + got, e.length - got, e.offset + got);
        if (r === 0) throw new Error(`the record of ${JSON.stringify(e.id)} at byte ${e.offset} is cut short`);
        got += r;
      }
      buf[buffer.length + e.length] = 10;
      offsets[i] = written + buffer.length;
      buffer.length += e.length + 1;
    }
    for (const line of trailer) {
      if (buffer.length > CHUNK) flush();
      buffer.push(line);
    }
    flush();
    await new Promise<void>((resolve, reject) => fsync(out, (error) => (error ? reject(error) : resolve())));
    renameSync(temp, path);
    return { fd: out, offsets, bytes: written };
  } catch (error) {
    closeSync(out);
    try {
      unlinkSync(temp);
    } catch {
      // already gone
    }
    throw error;
  }
}

/** Removes temp files of compactions that did not finish (the caller holds the lock). */
export function removeOrphanTemps(path: string): string[] {
  const dir = dirname(path);
  const prefix = tempPrefix(path);
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith(".tmp")) continue;
    const full = join(dir, name);
    try {
      unlinkSync(full);
      removed.push(full);
    } catch {
      // not ours to remove after all (permissions): leave it
    }
  }
  return removed;
}

/** fsyncs a directory so a file created or renamed in it survives a power loss. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
