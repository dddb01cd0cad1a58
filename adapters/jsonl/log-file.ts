import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  openSync,
  readSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import type { Datum } from "../../core/datum.js";
import { dgentError, isDgentError, wrapError, type DgentError } from "../../core/errors.js";
import { syncDir } from "./compact.js";
import { GroupCommit } from "./group-commit.js";
import { corruptRecord, decodePut, LineBuffer } from "./records.js";
import type { LogRefs } from "./refs.js";
import { replay, type Entry } from "./replay.js";

/** When an acknowledged write survives what; see README.md "Durability". */
export type Durability = "fsync" | "group" | "none";

const LOG_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT;
/** Records larger than this are read into a buffer of their own instead of growing the shared one. */
const SHARED_READ_MAX = 1 << 20;
/** `"group"`: an append larger than this is written at once (after the queue) rather than copied into it. */
const QUEUE_MAX = 1 << 20;

type Warn = (message: string, details: Readonly<Record<string, unknown>>) => void;

/**
 * The log file's descriptor and byte bookkeeping: appends from one encoded buffer, positioned
 * reads of single records, and syncing as the durability mode promises. The caller holds the lock.
 */
export class LogFile {
  readonly path: string;
  readonly durability: Durability;
  /** Lines are encoded here, then `append` writes them in one call (or queues them, in `"group"`). */
  readonly out = new LineBuffer();
  /** The log's logical size: the offset of the next record (written, or queued for the next sync). */
  size: number;
  /** Lines in the log (live puts, tombstones, superseded puts, ref moves, batch frames). */
  lines: number;
  /** Set when the file may no longer match the index; writes refuse until reopened. */
  failed: DgentError | null = null;
  #fd: number;
  /** Bytes known to be on stable storage. */
  #synced: number;
  /** Bytes written to the file; `size - written` wait in `#pending`. */
  #written: number;
  readonly #unit: string;
  readonly #group: GroupCommit | null;
  /**
   * `"group"` only: the lines appended since the last sync started, in file order. The sync
   * writes them in one call, then syncs; so concurrent puts cost one `write` and one `fdatasync`
   * per batch instead of one `write` each. Reads of a queued record are served from here.
   */
  readonly #pending: LineBuffer | null;
  #readBuf = Buffer.allocUnsafe(16 * 1024);

  private constructor(path: string, unit: string, durability: Durability, groupMs: number, fd: number, size: number, lines: number) {
    this.path = path;
    this.#unit = unit;
    this.durability = durability;
    this.#fd = fd;
    this.size = this.#synced = this.#written = size;
    this.lines = lines;
    this.#group = durability === "group" ? new GroupCommit((done) => this.#syncAsync(done), groupMs) : null;
    this.#pending = durability === "group" ? new LineBuffer() : null;
  }

  /** Opens (creating) the log and replays it; cuts a torn tail off with a warning. */
  static open(path: string, unit: string, durability: Durability, groupMs: number, warn: Warn): { log: LogFile; entries: Entry[]; refs: LogRefs } {
    const existed = existsSync(path);
    const fd = openSync(path, LOG_FLAGS, 0o644);
    try {
      if (!existed) syncDir(dirname(path));
      const loaded = replay(fd, path, unit);
      if (loaded.torn !== null) {
        const { line, bytes, reason } = loaded.torn;
        ftruncateSync(fd, loaded.end);
        fdatasyncSync(fd);
        warn(`dropped a torn tail of ${bytes} bytes from line ${line} of ${path}: ${reason}`, { path, line, bytes, reason });
      }
      return { log: new LogFile(path, unit, durability, groupMs, fd, loaded.end, loaded.lines), entries: loaded.entries, refs: loaded.refs };
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  get fd(): number {
    return this.#fd;
  }

  /** Throws the error that stopped writes, if any. */
  checkWritable(): void {
    if (this.failed !== null) throw this.failed;
  }

  /**
   * Appends the lines encoded in `out` (`count` of them); returns their offset. Written at once,
   * except in `"group"`, where they are queued for the sync that `commit()` then waits for (a
   * large batch is written at once there too, after the queue, instead of being copied).
   */
  append(count: number): number {
    const { buf, length } = this.out;
    if (this.#pending !== null) {
      if (length <= QUEUE_MAX) {
        const offset = this.size;
        this.#pending.pushBytes(buf, length);
        this.size = offset + length;
        this.lines += count;
        return offset;
      }
      this.#flush();
    }
    const offset = this.size;
    try {
      let done = 0;
      while (done < length) done += writeSync(this.#fd, buf, done, length - done);
    } catch (error) {
      // Cut a partial record off so the next append does not follow garbage.
      try {
        ftruncateSync(this.#fd, offset);
      } catch {
        this.failed = dgentError(
          "DGENT_BACKEND_ERROR",
          `${this.path} may end with a partial record after a failed write; close and reopen to recover`,
          { unit: this.#unit, cause: error },
        );
      }
      throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot append to ${this.path}`, { unit: this.#unit });
    }
    this.size = this.#written = offset + length;
    this.lines += count;
    return offset;
  }

  /** Makes the writes so far durable as the mode promises: undefined when already done. */
  commit(): Promise<void> | undefined {
    if (this.#group !== null) return this.#group.wait();
    if (this.durability === "none") return undefined;
    try {
      fdatasyncSync(this.#fd);
    } catch (error) {
      throw this.#syncFailed(error);
    }
    this.#synced = this.size;
    return undefined;
  }

  /** Waits until `e` is as durable as a new write would be (for an identical re-put). */
  settled(e: Entry): Promise<void> | undefined {
    return this.#group !== null && e.offset + e.length >= this.#synced ? this.#group.wait() : undefined;
  }

  /** Resolves when no group sync is pending or running. */
  async drain(): Promise<void> {
    await this.#group?.drain();
  }

  /** Reads and decodes one record with a positioned read (from the queue when not written yet). */
  read(e: Entry): Datum {
    const n = e.length;
    if (e.offset >= this.#written && this.#pending !== null) return this.#decode(this.#pending.buf, e.offset - this.#written, n, n, e);
    let buf = this.#readBuf;
    if (n > buf.length) {
      buf = Buffer.allocUnsafe(n);
      if (n <= SHARED_READ_MAX) this.#readBuf = buf;
    }
    let got = 0;
    while (got < n) {
      const r = readSync(this.#fd, buf, got, n - got, e.offset + got);
      if (r === 0) break;
      got += r;
    }
    return this.#decode(buf, 0, got, n, e);
  }

  /** Decodes the `got` bytes at `start` of `buf` (`n` expected) as the put record of `e`. */
  #decode(buf: Buffer, start: number, got: number, n: number, e: Entry): Datum {
    let d: Datum | null = null;
    try {
      if (got === n) d = decodePut(buf.toString("utf8", start, start + n), e.id);
    } catch (error) {
      if (isDgentError(error, "DGENT_CORRUPT")) throw corruptRecord(error, this.path, e, this.#unit);
      d = null;
    }
    if (d === null || d.id !== e.id) {
      throw dgentError(
        "DGENT_BACKEND_ERROR",
        `${this.path} changed under the adapter: the record of ${JSON.stringify(e.id)} at byte ${e.offset} is gone`,
        { unit: this.#unit, details: { path: this.path, id: e.id, offset: e.offset } },
      );
    }
    return d;
  }

  /** Switches to a compacted log already renamed into place (and synced); closes the old one. */
  replace(fd: number, size: number, lines: number): void {
    const old = this.#fd;
    this.#fd = fd;
    this.size = this.#synced = this.#written = size;
    this.#pending?.reset();
    this.lines = lines;
    closeSync(old);
  }

  /** Writes and syncs what is not synced yet and closes; throws (after closing) when that fails. */
  close(): void {
    let error: unknown = null;
    try {
      if (this.failed === null) this.#flush();
      if (this.#synced < this.#written) fdatasyncSync(this.#fd);
    } catch (e) {
      error = e;
    }
    closeSync(this.#fd);
    this.#fd = -1;
    if (error !== null) throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot flush ${this.path}`, { unit: this.#unit });
  }

  /**
   * Writes the queued lines in one call, then syncs. After a failed write (or sync) the file no
   * longer holds what the index does, so every later batch fails too, until a reopen.
   */
  #syncAsync(done: (error: Error | null) => void): void {
    if (this.failed !== null) return done(this.failed);
    try {
      this.#flush();
    } catch (error) {
      return done(error as Error);
    }
    const mark = this.#written;
    fdatasync(this.#fd, (error) => {
      if (error === null) {
        if (mark > this.#synced) this.#synced = mark;
        done(null);
      } else {
        done(this.#syncFailed(error));
      }
    });
  }

  /** Writes the queued lines (`"group"`); a failure cuts any partial record off and stops writes. */
  #flush(): void {
    const pending = this.#pending;
    if (pending === null || pending.length === 0) return;
    const at = this.#written;
    try {
      let done = 0;
      while (done < pending.length) done += writeSync(this.#fd, pending.buf, done, pending.length - done);
    } catch (error) {
      try {
        ftruncateSync(this.#fd, at);
      } catch {
        // failed is set below either way: only a reopen can say what the file holds
      }
      // The queue stays, so reads still match the index until the reopen.
      this.failed ??= wrapError(error, "DGENT_BACKEND_ERROR", `cannot append to ${this.path}; writes are refused until it is closed and reopened`, {
        unit: this.#unit,
      });
      throw this.failed;
    }
    this.#written = at + pending.length;
    pending.shrink();
  }

  /** After a failed sync the kernel may have dropped the dirty pages: stop writing. */
  #syncFailed(error: unknown): DgentError {
    const wrapped = wrapError(error, "DGENT_BACKEND_ERROR", `cannot sync ${this.path}`, { unit: this.#unit });
    this.failed ??= wrapped;
    return wrapped;
  }
}
