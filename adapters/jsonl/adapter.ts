import { dirname } from "node:path";
import { walkCausalChainSync } from "../../core/causal.js";
import { sameValue, type Datum } from "../../core/datum.js";
import { dgentError, wrapError } from "../../core/errors.js";
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
import { acquireLock, releaseLock, stillHeld, type AcquiredLock } from "./lock.js";
import { LogFile, type Durability } from "./log-file.js";
import { beginLine, commitLine, delLine, putLine } from "./records.js";
import type { Entry } from "./replay.js";

export type { Durability } from "./log-file.js";

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

/** Used when the adapter runs without a store: warnings still reach a human. */
const DEFAULT_EVENTS: AdapterEvents = {
  evicted: () => undefined,
  change: () => undefined,
  warning: (message) => process.emitWarning(message, { type: "DgentWarning", code: "DGENT_JSONL" }),
};

/** An append-only JSON Lines log with an in-memory index of record offsets. */
export class JsonlAdapter implements Adapter {
  readonly name: string;
  readonly rank: number;
  readonly capabilities = CAPABILITIES;
  /** The log file. */
  readonly path: string;
  readonly durability: Durability;
  readonly #unit: string;
  readonly #groupCommitMs: number;
  readonly #life: Lifecycle;
  readonly #index = new OrderedIndex<Entry>();
  #events = DEFAULT_EVENTS;
  #log: LogFile | null = null;
  #lock: AcquiredLock | null = null;
  /** Set while `compact` runs; writes wait for it, reads do not. */
  #gate: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  constructor(config: JsonlConfig) {
    this.name = config.unit;
    this.rank = config.rank;
    this.path = config.path;
    this.durability = config.durability;
    this.#unit = config.unit;
    this.#groupCommitMs = config.groupCommitMs;
    this.#life = new Lifecycle(config.unit);
  }

  async open(context?: AdapterContext): Promise<void> {
    if (!this.#life.beginOpen()) return;
    this.#events = context?.events ?? DEFAULT_EVENTS;
    // Synchronous from here to `opened()`, so no call can interleave with loading.
    ensureWritableDir(dirname(this.path), this.#unit);
    let lock: AcquiredLock;
    try {
      lock = acquireLock(`${this.path}.lock`, this.path, this.#unit);
    } catch (error) {
      throw wrapError(error, "DGENT_DATA_DIR_UNWRITABLE", `cannot create the lock file of ${this.path}`, { unit: this.#unit });
    }
    if (lock.tookOver) {
      const { pid, host } = lock.tookOver;
      this.#warn(`took over the stale lock of ${this.path} left by process ${pid}`, { path: this.path, pid, host });
    }
    let log: LogFile | null = null;
    try {
      const warn = (message: string, details: Readonly<Record<string, unknown>>) => this.#warn(message, details);
      const opened = LogFile.open(this.path, this.#unit, this.durability, this.#groupCommitMs, warn);
      log = opened.log;
      for (const e of opened.entries) this.#index.set(e);
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
      try {
        log?.close();
      } catch {
        // the open error below is the one worth reporting
      }
      releaseLock(lock);
      throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot open ${this.path}`, { unit: this.#unit });
    }
    this.#log = log;
    this.#lock = lock;
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
    const log = this.#log as LogFile;
    await log.drain();
    try {
      log.close();
    } finally {
      if (this.#lock !== null) releaseLock(this.#lock);
      this.#lock = null;
      this.#log = null;
      this.#index.clear();
    }
  }

  async put(datum: Datum): Promise<string> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    const log = this.#log as LogFile;
    const existing = this.#index.get(datum.id);
    if (existing !== undefined) {
      if (!sameValue(log.read(existing), datum)) throw conflict(datum.id, this.#unit);
      // Identical: a no-op, acknowledged once the original is as durable as a new write would be.
      const pending = log.settled(existing);
      if (pending !== undefined) await pending;
      return datum.id;
    }
    log.checkWritable();
    log.out.reset();
    const length = log.out.push(putLine(datum));
    const offset = log.append(1);
    this.#index.set({ id: datum.id, createdAt: datum.createdAt, offset, length });
    const synced = log.commit();
    if (synced !== undefined) await synced;
    return datum.id;
  }

  /** All or nothing, also across a crash: a batch is framed by `begin`/`commit` lines. */
  async putMany(datums: readonly Datum[]): Promise<string[]> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    const log = this.#log as LogFile;
    // Every conflict is found before anything is written.
    const fresh: Datum[] = [];
    const seen = new Map<string, Datum>();
    let older: Entry | null = null;
    for (const d of datums) {
      const existing = this.#index.get(d.id);
      if (existing !== undefined) {
        if (!sameValue(log.read(existing), d)) throw conflict(d.id, this.#unit);
        if (older === null || existing.offset > older.offset) older = existing;
        continue;
      }
      const prior = seen.get(d.id);
      if (prior !== undefined) {
        if (!sameValue(prior, d)) throw conflict(d.id, this.#unit);
        continue;
      }
      seen.set(d.id, d);
      fresh.push(d);
    }
    const ids = datums.map((d) => d.id);
    if (fresh.length === 0) {
      const pending = older === null ? undefined : log.settled(older);
      if (pending !== undefined) await pending;
      return ids;
    }
    log.checkWritable();
    const out = log.out;
    out.reset();
    const framed = fresh.length > 1; // one line is atomic already
    if (framed) out.push(beginLine(fresh.length));
    const starts = new Array<number>(fresh.length);
    const lengths = new Array<number>(fresh.length);
    for (let i = 0; i < fresh.length; i++) {
      starts[i] = out.length;
      lengths[i] = out.push(putLine(fresh[i] as Datum));
    }
    if (framed) out.push(commitLine(fresh.length));
    const base = log.append(fresh.length + (framed ? 2 : 0));
    out.shrink();
    for (let i = 0; i < fresh.length; i++) {
      const d = fresh[i] as Datum;
      this.#index.set({ id: d.id, createdAt: d.createdAt, offset: base + (starts[i] as number), length: lengths[i] as number });
    }
    const synced = log.commit();
    if (synced !== undefined) await synced;
    return ids;
  }

  async get(id: string): Promise<Datum | null> {
    this.#life.check();
    const entry = this.#index.get(id);
    return entry === undefined ? null : (this.#log as LogFile).read(entry);
  }

  /** Appends a tombstone; after it the id may be used again. */
  async delete(id: string): Promise<boolean> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    if (!this.#index.has(id)) return false;
    const log = this.#log as LogFile;
    log.checkWritable();
    log.out.reset();
    log.out.push(delLine(id));
    log.append(1);
    this.#index.delete(id);
    const synced = log.commit();
    if (synced !== undefined) await synced;
    return true;
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    this.#life.check();
    const log = this.#log as LogFile;
    const entries = this.#index.list(options);
    const out = new Array<Datum>(entries.length);
    for (let i = 0; i < entries.length; i++) out[i] = log.read(entries[i] as Entry);
    return out;
  }

  /** Walks parents through the in-memory index: one positioned read per ancestor. */
  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    this.#life.check();
    const index = this.#index;
    const log = this.#log as LogFile;
    return walkCausalChainSync(
      id,
      (next) => {
        const e = index.get(next);
        return e === undefined ? null : log.read(e);
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
      if (index.get(e.id) === e) yield (this.#log as LogFile).read(e); // skips datums deleted meanwhile
    }
  }

  /** `count` live datums; `bytes` file size; `records` lines in the file (compaction drops the dead ones). */
  async stats(): Promise<AdapterStats> {
    this.#life.check();
    const log = this.#log as LogFile;
    return { count: this.#index.size, bytes: log.size, records: log.lines, path: this.path, durability: this.durability };
  }

  async probe(): Promise<boolean> {
    return this.#life.isOpen && this.#log?.failed === null;
  }

  /**
   * Rewrites the log with only the live datums: temp file, fsync, atomic rename, fsync of the
   * directory. Writes wait while it runs; reads do not. A crash at any point leaves either the
   * old log or the new one, each complete.
   */
  async compact(): Promise<CompactResult> {
    this.#life.check();
    while (this.#gate !== null) await this.#gate;
    this.#life.check();
    let open!: () => void;
    this.#gate = new Promise<void>((resolve) => (open = resolve));
    try {
      const log = this.#log as LogFile;
      await log.drain();
      log.checkWritable();
      const entries = [...this.#index.values()].sort((a, b) => a.offset - b.offset);
      const before = log.size;
      const done = await compactLog(this.path, log.fd, entries);
      for (let i = 0; i < entries.length; i++) (entries[i] as Entry).offset = done.offsets[i] as number;
      log.replace(done.fd, done.bytes, entries.length);
      try {
        syncDir(dirname(this.path));
      } catch (error) {
        this.#warn(`could not fsync the directory of ${this.path} after compaction: ${String(error)}`, { path: this.path });
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

  #warn(message: string, details: Readonly<Record<string, unknown>>): void {
    this.#events.warning(message, details);
  }
}
