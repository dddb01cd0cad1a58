import { closeSync, openSync, readSync } from "node:fs";
import { dirname } from "node:path";
import { walkCausalChainSync } from "../../core/causal.js";
import { sameValue, type Datum } from "../../core/datum.js";
import { dgentError, isDgentError, wrapError, type DgentError } from "../../core/errors.js";
import { Lifecycle } from "../../core/lifecycle.js";
import { ensureWritableDir } from "../../core/paths.js";
import type {
  Adapter,
  AdapterContext,
  AdapterEvents,
  AdapterStats,
  Capabilities,
  ResolvedListOptions,
} from "../../core/protocol.js";
import type { DatumHeader, ResolvedQuery } from "../../core/query.js";
import { checkPuts, deleteRefByCommit, setRefByCommit, txResults, type Ref, type RefExpectation, type RefMove, type ReflogEntry, type TxOp, type TxResult } from "../../core/refs.js";
import { conflictError } from "../../core/tiers.js";
import { chainTail } from "../shared-index/chain-tail.js";
import { QueryIndex } from "../shared-index/query-index.js";
import { compactLog, removeOrphanTemps, syncDir } from "./compact.js";
import { acquireLock, releaseLock, stillHeld, type AcquiredLock } from "./lock.js";
import { LogFile, type Durability } from "./log-file.js";
import { beginLine, commitLine, corruptRecord, decodePut, delLine, pushPut, refLine } from "./records.js";
import { LogRefs, txRecords } from "./refs.js";
import { replay, type Entry } from "./replay.js";

export type { Durability } from "./log-file.js";

export interface JsonlConfig {
  readonly unit: string;
  readonly rank: number;
  /** Absolute path of the log file. */
  readonly path: string;
  readonly durability: Durability;
  readonly groupCommitMs: number;
  /** Read an existing log only: no lock, nothing created or written (see `ReadOnlyLog`). */
  readonly readonly?: boolean;
  /** Tag keys indexed from the start (see `JsonlOptions.indexTags`). */
  readonly indexTags?: readonly string[];
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
  refs: true,
  transactions: true,
  query: true,
  queryCost: "indexed",
});

/** The index entry of a datum just written: its header (tags copied: the caller keeps its object) and place. */
function entryOf(d: Datum, offset: number, length: number): Entry {
  return { id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata: { ...d.metadata }, offset, length };
}

/** A header for `select: "meta"`/`"ids"`, with its own tags object (the index keeps its own). */
function headerCopy(e: Entry): DatumHeader {
  return { id: e.id, createdAt: e.createdAt, causalParent: e.causalParent, metadata: { ...e.metadata } };
}

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
  readonly #readonly: boolean;
  readonly #index: QueryIndex<Entry>;
  /** The refs and reflogs, rebuilt from the log's `ref` records on open. */
  #refs = new LogRefs();
  #events = DEFAULT_EVENTS;
  /**
   * The open log. A `ReadOnlyLog` has LogFile's reading half and refuses in `checkWritable()`,
   * which every write path calls before it touches the file; so the `as LogFile` below is safe.
   */
  #log: LogFile | ReadOnlyLog | null = null;
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
    this.#readonly = config.readonly === true;
    this.#index = new QueryIndex<Entry>({ tags: config.indexTags ?? [] });
  }

  async open(context?: AdapterContext): Promise<void> {
    if (!this.#life.beginOpen()) return;
    this.#events = context?.events ?? DEFAULT_EVENTS;
    if (this.#readonly) return this.#openReadonly();
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
      this.#refs = opened.refs;
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
      this.#refs = new LogRefs();
    }
  }

  async put(datum: Datum): Promise<string> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    const log = this.#log as LogFile;
    const existing = this.#index.get(datum.id);
    if (existing !== undefined) {
      if (!sameValue(log.read(existing), datum)) throw conflictError(datum.id, this.#unit);
      // Identical: a no-op, acknowledged once the original is as durable as a new write would be.
      const pending = log.settled(existing);
      if (pending !== undefined) await pending;
      return datum.id;
    }
    log.checkWritable();
    log.out.reset();
    const length = pushPut(log.out, datum);
    const offset = log.append(1);
    this.#index.set(entryOf(datum, offset, length));
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
        if (!sameValue(log.read(existing), d)) throw conflictError(d.id, this.#unit);
        if (older === null || existing.offset > older.offset) older = existing;
        continue;
      }
      const prior = seen.get(d.id);
      if (prior !== undefined) {
        if (!sameValue(prior, d)) throw conflictError(d.id, this.#unit);
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
      lengths[i] = pushPut(out, fresh[i] as Datum);
    }
    if (framed) out.push(commitLine(fresh.length));
    const base = log.append(fresh.length + (framed ? 2 : 0));
    out.shrink();
    for (let i = 0; i < fresh.length; i++) {
      const d = fresh[i] as Datum;
      this.#index.set(entryOf(d, base + (starts[i] as number), lengths[i] as number));
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

  /** One page from the in-memory indexes; `meta`/`ids` never touch the file, `full` reads only the page. */
  async query(q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
    this.#life.check();
    const entries = this.#index.query(q);
    if (q.select !== "full") return entries.map(headerCopy);
    const log = this.#log as LogFile;
    const out = new Array<Datum>(entries.length);
    for (let i = 0; i < entries.length; i++) out[i] = log.read(entries[i] as Entry);
    return out;
  }

  async count(q: ResolvedQuery): Promise<number> {
    this.#life.check();
    return this.#index.count(q);
  }

  async getMany(ids: readonly string[]): Promise<Array<Datum | null>> {
    this.#life.check();
    const log = this.#log as LogFile;
    return ids.map((id) => {
      const e = this.#index.get(id);
      return e === undefined ? null : log.read(e);
    });
  }

  /**
   * Deletes every match with one `write` of their tombstones, framed by `begin`/`commit` (record
   * version 2) when there are several: a crash anywhere in it keeps all of them or none.
   */
  async deleteMany(q: ResolvedQuery): Promise<string[]> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    return this.#deleteEntries(this.#index.matching(q));
  }

  /** Deletes `ids` as one frame (the router's batch delete, a promotion's cleanup); the ids that were there. */
  async deleteIds(ids: readonly string[]): Promise<string[]> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    const entries: Entry[] = [];
    for (const id of new Set(ids)) {
      const e = this.#index.get(id);
      if (e !== undefined) entries.push(e);
    }
    return this.#deleteEntries(entries);
  }

  /** Synchronous up to the append (no other write interleaves), then waits for the durability mode. */
  async #deleteEntries(entries: readonly Entry[]): Promise<string[]> {
    if (entries.length === 0) return [];
    const log = this.#log as LogFile;
    log.checkWritable();
    const out = log.out;
    out.reset();
    const framed = entries.length > 1;
    if (framed) out.push(beginLine(entries.length, 2));
    for (const e of entries) out.push(delLine(e.id));
    if (framed) out.push(commitLine(entries.length, 2));
    log.append(entries.length + (framed ? 2 : 0));
    out.shrink();
    const ids = entries.map((e) => e.id);
    this.#index.deleteAll(entries);
    const synced = log.commit();
    if (synced !== undefined) await synced;
    return ids;
  }

  /** The chain's last `n` steps through the index; reads exactly those `n` records. */
  async chainTail(id: string, n: number): Promise<Datum[]> {
    this.#life.check();
    const index = this.#index;
    const steps = chainTail(id, n, (next) => index.get(next), this.#unit);
    const log = this.#log as LogFile;
    return steps.map((e) => log.read(e));
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

  async getRef(name: string): Promise<Ref | null> {
    this.#life.check();
    return this.#refs.get(name);
  }

  async listRefs(prefix: string): Promise<Ref[]> {
    this.#life.check();
    return this.#refs.list(prefix);
  }

  async reflog(name: string, limit: number): Promise<ReflogEntry[]> {
    this.#life.check();
    return this.#refs.reflog(name, limit);
  }

  setRef(name: string, target: string, expect: RefExpectation | undefined, move: RefMove): Promise<Ref> {
    return setRefByCommit((ops, m) => this.commit(ops, m), name, target, expect, move);
  }

  deleteRef(name: string, expect: RefExpectation | undefined, move: RefMove): Promise<boolean> {
    return deleteRefByCommit((ops, m) => this.commit(ops, m), name, expect, move);
  }

  /**
   * Checks everything against the index (the append-only law, every ref expectation), then
   * appends the puts, deletes and ref moves in one write, framed by `begin`/`commit` when there
   * is more than one record (so a crash keeps all of it or none), then updates the index and the
   * refs. Synchronous from the checks to the append, so no other write interleaves.
   */
  async commit(ops: readonly TxOp[], move: RefMove): Promise<TxResult> {
    this.#life.check();
    if (this.#gate !== null) await this.#waitGate();
    const log = this.#log as LogFile;
    const index = this.#index;
    checkPuts(ops, (id) => {
      const e = index.get(id);
      return e === undefined ? null : log.read(e);
    }, this.#unit);
    const moves = this.#refs.plan(ops, move, this.#unit);
    const live = (id: string) => index.has(id);
    const result = txResults(ops, moves, live);
    const records = txRecords(ops, moves, live);
    if (records.length === 0) {
      // Only identical re-puts (or nothing): acknowledged once what they match is durable.
      let pending: Promise<void> | undefined;
      for (const op of ops) {
        const e = op.op === "put" ? index.get(op.datum.id) : undefined;
        if (e !== undefined) pending = log.settled(e) ?? pending;
      }
      if (pending !== undefined) await pending;
      return result;
    }
    log.checkWritable();
    const out = log.out;
    out.reset();
    const framed = records.length > 1;
    const v = records.some((r) => r.op !== "put") ? 2 : 1;
    if (framed) out.push(beginLine(records.length, v));
    const placed: Array<{ start: number; length: number }> = [];
    for (const r of records) {
      const start = out.length;
      const length = r.op === "put" ? pushPut(out, (ops[r.index] as { datum: Datum }).datum) : out.push(r.op === "del" ? delLine(r.id) : refLine(r.entry));
      placed.push({ start, length });
    }
    if (framed) out.push(commitLine(records.length, v));
    const base = log.append(records.length + (framed ? 2 : 0));
    out.shrink();
    for (const [i, r] of records.entries()) {
      if (r.op === "put") {
        const d = (ops[r.index] as { datum: Datum }).datum;
        const { start, length } = placed[i] as { start: number; length: number };
        index.set(entryOf(d, base + start, length));
      } else if (r.op === "del") {
        index.delete(r.id);
      }
    }
    this.#refs.apply(moves);
    const synced = log.commit();
    if (synced !== undefined) await synced;
    return result;
  }

  /**
   * Rewrites the log with only the live datums, then the refs (each name's last `REFLOG_LIMIT`
   * moves, so refs and reflogs survive it): temp file, fsync, atomic rename, fsync of the
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
      const refLines = this.#refs.snapshot().map(refLine);
      const before = log.size;
      const done = await compactLog(this.path, log.fd, entries, refLines);
      for (let i = 0; i < entries.length; i++) (entries[i] as Entry).offset = done.offsets[i] as number;
      log.replace(done.fd, done.bytes, entries.length + refLines.length);
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

  #openReadonly(): void {
    const { log, entries, refs, torn } = ReadOnlyLog.open(this.path, this.#unit);
    for (const e of entries) this.#index.set(e);
    this.#refs = refs;
    if (torn !== null) {
      this.#warn(`${this.path} ends with a torn tail of ${torn.bytes} bytes from line ${torn.line}; read-only, it is left as it is`, { path: this.path, ...torn });
    }
    this.#log = log;
    this.#life.opened();
  }

  async #waitGate(): Promise<void> {
    while (this.#gate !== null) await this.#gate;
    this.#life.check();
  }

  #warn(message: string, details: Readonly<Record<string, unknown>>): void {
    this.#events.warning(message, details);
  }
}

/**
 * The log opened with `readonly: true` (a migration's source, both ends of a dry run): read with
 * a read-only descriptor, no lock taken, no file or directory created, a torn tail left in place
 * (the records before it are read), nothing written. Every write is refused.
 */
class ReadOnlyLog {
  readonly failed = null;
  readonly #fd: number;
  readonly #refusal: DgentError;

  private constructor(
    readonly path: string,
    readonly size: number,
    readonly lines: number,
    fd: number,
    unit: string,
  ) {
    this.#fd = fd;
    this.#refusal = dgentError("DGENT_BACKEND_ERROR", `${unit}: ${path} was opened read-only (readonly: true); it takes no writes`, {
      unit,
      details: { path },
    });
  }

  static open(path: string, unit: string): { log: ReadOnlyLog; entries: Entry[]; refs: LogRefs; torn: { line: number; bytes: number; reason: string } | null } {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        throw dgentError("DGENT_INVALID_OPTIONS", `${unit}: ${path} does not exist (opened read-only: nothing was created)`, {
          unit,
          details: { path, missing: true },
        });
      }
      throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot open ${path} for reading`, { unit, details: { path } });
    }
    try {
      const loaded = replay(fd, path, unit);
      return { log: new ReadOnlyLog(path, loaded.end, loaded.lines, fd, unit), entries: loaded.entries, refs: loaded.refs, torn: loaded.torn };
    } catch (error) {
      closeSync(fd);
      throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot open ${path}`, { unit });
    }
  }

  read(e: Entry): Datum {
    const buf = Buffer.allocUnsafe(e.length);
    let got = 0;
    while (got < e.length) {
      const r = readSync(this.#fd, buf, got, e.length - got, e.offset + got);
      if (r === 0) break;
      got += r;
    }
    let d: Datum | null = null;
    try {
      if (got === e.length) d = decodePut(buf.toString("utf8"), e.id);
    } catch (error) {
      if (isDgentError(error, "DGENT_CORRUPT")) throw corruptRecord(error, this.path, e, "jsonl");
      d = null;
    }
    if (d === null || d.id !== e.id) {
      throw dgentError("DGENT_BACKEND_ERROR", `${this.path} changed while it was read: the record of ${JSON.stringify(e.id)} at byte ${e.offset} is gone`, {
        details: { path: this.path, id: e.id, offset: e.offset },
      });
    }
    return d;
  }

  checkWritable(): void {
    throw this.#refusal;
  }

  settled(): undefined {
    return undefined;
  }

  async drain(): Promise<void> {}

  close(): void {
    closeSync(this.#fd);
  }
}
