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
import { walkCausalChain } from "../../core/causal.js";
import { sameValue, type Datum } from "../../core/datum.js";
import { dgentError, wrapError, type DgentError } from "../../core/errors.js";
import { Lifecycle } from "../../core/lifecycle.js";
import { OrderedIndex } from "../../core/ordered-index.js";
import { ensureWritableDir } from "../../core/paths.js";
import type {
  Adapter,
  AdapterContext,
  AdapterEvents,
  AdapterStats,
  Capabilities,
  ResolvedListOptions,
} from "../../core/protocol.js";
import { conflict } from "../../core/tiers.js";
import { compactLog, removeOrphanTemps, syncDir } from "./compact.js";
import { GroupCommit } from "./group-commit.js";
import { acquireLock, releaseLock, stillHeld, type AcquiredLock } from "./lock.js";
import { beginLine, commitLine, decodePut, delLine, LineBuffer, putLine } from "./records.js";
import { replay, type Entry } from "./replay.js";

/** When an acknowledged write survives what; see README.md "Durability". */
export type Durability = "fsync" | "group" | "none";

export interface JsonlConfig {
  readonly unit: string;
  readonly rank: number;
  /** Absolute path of the log file. */
  readonly path: string;
  readonly durability: Durability;
  readonly groupCommitMs: number;
}

export interface CompactResult {
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** Live datums in the rewritten log. */
  readonly datums: number;
}

const CAPABILITIES: Capabilities = Object.freeze({
  persistent: true,
  multiProcess: false,
  nativeCausalChain: true,
  batch: true,
  scan: true,
  evicts: false,
});

const DEFAULT_EVENTS: AdapterEvents = {
  evicted: () => undefined,
  change: () => undefined,
  warning: (message) => process.emitWarning(message, { type: "DgentWarning", code: "DGENT_JSONL" }),
};

const LOG_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT;
/** Records larger than this are read into a buffer of their own instead of growing the shared one. */
const SHARED_READ_MAX = 1 << 20;

/** An append-only JSON Lines log with an in-memory index of record offsets. */
export class JsonlAdapter implements Adapter {
  readonly name: string;
  readonly rank: number;
  readonly capabilities = CAPABILITIES;
  /** The log file. */
  readonly path: string;
  readonly durability: Durability;
  readonly #unit: string;
  readonly #life: Lifecycle;
  readonly #index = new OrderedIndex<Entry>();
  readonly #out = new LineBuffer();
  readonly #group: GroupCommit | null;
  #readBuf = Buffer.allocUnsafe(16 * 1024);
  #events = DEFAULT_EVENTS;
  #fd = -1;
  #lock: AcquiredLock | null = null;
  /** File size: the offset of the next record. */
  #size = 0;
  /** Bytes known to be on stable storage. */
  #synced = 0;
  /** Lines in the log (live puts, tombstones, superseded puts, batch frames). */
  #lines = 0;
  /** Set while `compact` runs; writes wait for it. */
  #gate: Promise<void> | null = null;
  /** Set when the file may no longer match the index; writes refuse until reopened. */
  #failed: DgentError | null = null;
  #closing: Promise<void> | null = null;

  constructor(config: JsonlConfig) {
    this.name = config.unit;
    this.rank = config.rank;
    this.path = config.path;
    this.durability = config.durability;
    this.#unit = config.unit;
    this.#life = new Lifecycle(config.unit);
    this.#group =
      config.durability === "group" ? new GroupCommit((done) => this.#syncAsync(done), config.groupCommitMs) : null;
  }

  async open(context?: AdapterContext): Promise<void> {
    if (!this.#life.beginOpen()) return;
    this.#events = context?.events ?? DEFAULT_EVENTS;
    // Synchronous from here to `opened()`, so nothing can interleave with loading.
    const dir = dirname(this.path);
    ensureWritableDir(dir, this.#unit);
    let lock: AcquiredLock;
    try {
      lock = acquireLock(`${this.path}.lock`, this.path, this.#unit);
    } catch (error) {
      throw wrapError(error, "DGENT_DATA_DIR_UNWRITABLE", `cannot create the lock file of ${this.path}`, {
        unit: this.#unit,
      });
    }
    if (lock.tookOver) {
      this.#warn(`took over the stale lock of ${this.path} left by process ${lock.tookOver.pid}`, {
        path: this.path,
        pid: lock.tookOver.pid,
      });
    }
    let fd = -1;
    try {
      const existed = existsSync(this.path);
      fd = openSync(this.path, LOG_FLAGS, 0o644);
      if (!existed) syncDir(dir);
      const loaded = replay(fd, this.path, this.#unit);
      if (loaded.torn !== null) {
        const { line, bytes, reason } = loaded.torn;
        ftruncateSync(fd, loaded.end);
        fdatasyncSync(fd);
        this.#warn(`dropped a torn tail of ${bytes} bytes from line ${line} of ${this.path}: ${reason}`, {
          path: this.path,
          line,
          bytes,
          reason,
        });
      }
      for (const e of loaded.entries) this.#index.set(e);
      this.#size = this.#synced = loaded.end;
      this.#lines = loaded.lines;
      for (const orphan of removeOrphanTemps(this.path)) {
        this.#warn(`removed ${orphan}, left by a compaction that did not finish`, { path: orphan });
      }
      if (!stillHeld(lock)) {
        throw dgentError("DGENT_LOCKED", `another process took the lock of ${this.path} while it was opening`, {
          unit: this.#unit,
          details: { path: this.path },
        });
      }
    } catch (error) {
      this.#index.clear();
      if (fd >= 0) closeSync(fd);
      releaseLock(lock);
      throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot open ${this.path}`, { unit: this.#unit });
    }
    this.#fd = fd;
    this.#lock = lock;
    this.#failed = null;
    this.#life.opened();
  }

  close(): Promise<void> {
    if (this.#closing === null) {
      const wasOpen = this.#life.beginClose();
      this.#closing = wasOpen ? this.#release() : Promise.resolve();
    }
    return this.#closing;
  }

  async #release(): Promise<void> {
    while (this.#gate !== null) await this.#gate;
    await this.#group?.drain();
    let error: unknown = null;
    try {
      if (this.#synced < this.#size) fdatasyncSync(this.#fd);
    } catch (e) {
      error = e;
    }
    closeSync(this.#fd);
    this.#fd = -1;
    if (this.#lock !== null) releaseLock(this.#lock);
    this.#lock = null;
    this.#index.clear();
    if (error !== null) throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot flush ${this.path}`, { unit: this.#unit });
  }

  async put(datum: Datum): Promise<string> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    const existing = this.#index.get(datum.id);
    if (existing !== undefined) {
      if (!sameValue(this.#read(existing), datum)) throw conflict(datum.id, this.#unit);
      // Identical: a no-op, acknowledged once the original is as durable as a new write would be.
      if (this.#group !== null && existing.offset + existing.length >= this.#synced) await this.#group.wait();
      return datum.id;
    }
    if (this.#failed !== null) throw this.#failed;
    const out = this.#out;
    out.reset();
    const length = out.push(putLine(datum));
    const offset = this.#append();
    this.#lines++;
    this.#index.set({ id: datum.id, createdAt: datum.createdAt, offset, length });
    if (this.durability !== "none") await this.#commit();
    return datum.id;
  }

  async putMany(datums: readonly Datum[]): Promise<string[]> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    // All or nothing: every conflict is found before anything is written.
    const fresh: Datum[] = [];
    const seen = datums.length > 1 ? new Map<string, Datum>() : null;
    let waitForOlder = false;
    for (const d of datums) {
      const existing = this.#index.get(d.id);
      if (existing !== undefined) {
        if (!sameValue(this.#read(existing), d)) throw conflict(d.id, this.#unit);
        if (existing.offset + existing.length >= this.#synced) waitForOlder = true;
        continue;
      }
      const prior = seen?.get(d.id);
      if (prior !== undefined) {
        if (!sameValue(prior, d)) throw conflict(d.id, this.#unit);
        continue;
      }
      seen?.set(d.id, d);
      fresh.push(d);
    }
    const ids = datums.map((d) => d.id);
    if (fresh.length === 0) {
      if (waitForOlder && this.#group !== null) await this.#group.wait();
      return ids;
    }
    if (this.#failed !== null) throw this.#failed;
    const out = this.#out;
    out.reset();
    const framed = fresh.length > 1; // a lone put needs no frame: one line is atomic already
    if (framed) out.push(beginLine(fresh.length));
    const starts = new Array<number>(fresh.length);
    const lengths = new Array<number>(fresh.length);
    for (let i = 0; i < fresh.length; i++) {
      starts[i] = out.length;
      lengths[i] = out.push(putLine(fresh[i] as Datum));
    }
    if (framed) out.push(commitLine(fresh.length));
    const base = this.#append();
    out.shrink();
    this.#lines += fresh.length + (framed ? 2 : 0);
    for (let i = 0; i < fresh.length; i++) {
      const d = fresh[i] as Datum;
      this.#index.set({ id: d.id, createdAt: d.createdAt, offset: base + (starts[i] as number), length: lengths[i] as number });
    }
    if (this.durability !== "none") await this.#commit();
    return ids;
  }

  async get(id: string): Promise<Datum | null> {
    this.#life.check();
    const entry = this.#index.get(id);
    return entry === undefined ? null : this.#read(entry);
  }

  async delete(id: string): Promise<boolean> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    if (!this.#index.has(id)) return false;
    if (this.#failed !== null) throw this.#failed;
    const out = this.#out;
    out.reset();
    out.push(delLine(id));
    this.#append();
    this.#lines++;
    this.#index.delete(id);
    if (this.durability !== "none") await this.#commit();
    return true;
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    this.#life.check();
    const entries = this.#index.list(options);
    const out = new Array<Datum>(entries.length);
    for (let i = 0; i < entries.length; i++) out[i] = this.#read(entries[i] as Entry);
    return out;
  }

  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    this.#life.check();
    const index = this.#index;
    return walkCausalChain(
      id,
      async (next) => {
        const e = index.get(next);
        return e === undefined ? null : this.#read(e);
      },
      maxDepth,
      this.#unit,
    );
  }

  async *scan(): AsyncIterable<Datum> {
    this.#life.check();
    const index = this.#index;
    for (const e of [...index.values()]) {
      this.#life.check();
      if (index.get(e.id) === e) yield this.#read(e); // skip datums deleted meanwhile
    }
  }

  async stats(): Promise<AdapterStats> {
    this.#life.check();
    return {
      count: this.#index.size,
      bytes: this.#size,
      records: this.#lines,
      path: this.path,
      durability: this.durability,
    };
  }

  async probe(): Promise<boolean> {
    return this.#life.isOpen && this.#failed === null;
  }

  /**
   * Rewrites the log with only the live datums (to a temp file, fsync, atomic rename, fsync of
   * the directory). Writes wait while it runs; reads do not. A crash at any point leaves either
   * the old log or the new one, both complete.
   */
  async compact(): Promise<CompactResult> {
    this.#life.check();
    while (this.#gate !== null) await this.#gate;
    this.#life.check();
    let open!: () => void;
    this.#gate = new Promise<void>((resolve) => (open = resolve));
    try {
      await this.#group?.drain();
      const entries = [...this.#index.values()].sort((a, b) => a.offset - b.offset);
      const before = this.#size;
      const done = await compactLog(this.path, this.#fd, entries);
      const old = this.#fd;
      this.#fd = done.fd;
      for (let i = 0; i < entries.length; i++) (entries[i] as Entry).offset = done.offsets[i] as number;
      this.#size = this.#synced = done.bytes;
      this.#lines = entries.length;
      closeSync(old);
      try {
        syncDir(dirname(this.path));
      } catch (error) {
        this.#warn(`could not fsync the directory of ${this.path} after compaction: ${String(error)}`, {});
      }
      return { bytesBefore: before, bytesAfter: done.bytes, datums: entries.length };
    } catch (error) {
      throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot compact ${this.path}`, { unit: this.#unit });
    } finally {
      this.#gate = null;
      open();
    }
  }

  async #waitGate(): Promise<void> {
    while (this.#gate !== null) await this.#gate;
    this.#life.check();
  }

  /** Writes the encoded lines in `#out` at the end of the log; returns their offset. */
  #append(): number {
    const { buf, length } = this.#out;
    const offset = this.#size;
    try {
      let done = 0;
      while (done < length) done += writeSync(this.#fd, buf, done, length - done);
    } catch (error) {
      // Cut a partial record off so the next append does not follow garbage.
      try {
        ftruncateSync(this.#fd, offset);
      } catch {
        this.#failed = dgentError(
          "DGENT_BACKEND_ERROR",
          `${this.path} may end with a partial record after a failed write; close and reopen to recover`,
          { unit: this.#unit, cause: error },
        );
      }
      throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot append to ${this.path}`, { unit: this.#unit });
    }
    this.#size = offset + length;
    return offset;
  }

  /** Makes the writes so far durable as the mode promises. */
  #commit(): Promise<void> | undefined {
    if (this.#group !== null) return this.#group.wait();
    try {
      fdatasyncSync(this.#fd);
    } catch (error) {
      throw this.#syncFailed(error);
    }
    this.#synced = this.#size;
    return undefined;
  }

  #syncAsync(done: (error: Error | null) => void): void {
    const mark = this.#size;
    fdatasync(this.#fd, (error) => {
      if (error === null) {
        if (mark > this.#synced) this.#synced = mark;
        done(null);
      } else {
        done(this.#syncFailed(error));
      }
    });
  }

  /** After a failed sync the kernel may have dropped the dirty pages: stop writing. */
  #syncFailed(error: unknown): DgentError {
    const wrapped = wrapError(error, "DGENT_BACKEND_ERROR", `cannot sync ${this.path}`, { unit: this.#unit });
    this.#failed ??= wrapped;
    return wrapped;
  }

  /** Reads and decodes one record with a positioned read. */
  #read(e: Entry): Datum {
    const n = e.length;
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
    let d: Datum | null = null;
    try {
      if (got === n) d = decodePut(buf.toString("utf8", 0, n));
    } catch {
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

  #warn(message: string, details: Readonly<Record<string, unknown>>): void {
    this.#events.warning(message, details);
  }
}
