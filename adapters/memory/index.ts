import { cloneDatum, cloneDatums, sameValue, type Datum } from "../../core/datum.js";
import { walkCausalChainSync } from "../../core/causal.js";
import { RANKS } from "../ranks.js";
import { Lifecycle } from "../../core/lifecycle.js";
import {
  SILENT_EVENTS,
  type Adapter,
  type AdapterContext,
  type AdapterEvents,
  type Capabilities,
  type ResolvedListOptions,
} from "../../core/protocol.js";
import { headerOf, type DatumHeader, type ResolvedQuery } from "../../core/query.js";
import { defineAdapter, instantiateAdapter } from "../../core/registry.js";
import { conflictError } from "../../core/tiers.js";
import { chainTail } from "../shared-index/chain-tail.js";
import type { IndexedEntry } from "../shared-index/entry.js";
import { QueryIndex } from "../shared-index/query-index.js";
import { RefTable, checkPuts, deleteRefByCommit, setRefByCommit, txResults, type Ref, type RefExpectation, type RefMove, type ReflogEntry, type TxOp, type TxResult } from "../../core/refs.js";

export const ADAPTER_NAME = "memory";

export interface MemoryOptions {
  /** Keep at most this many datums; the oldest (by createdAt) are evicted first. */
  maxDatums?: number;
  /** Keep at most this many bytes (content plus id and metadata); oldest evicted first. */
  maxBytes?: number;
  /**
   * `false`: keep the datums as given and return them as stored, without copying content or
   * metadata (the tier declares `zeroCopy`). Several times faster, for callers that treat datums
   * as immutable; a caller that mutates a datum after `put`, or one it read, changes what is
   * stored. Default `true`: the tier keeps its own copy and returns copies.
   */
  copy?: boolean;
  /**
   * Tag keys indexed from the start, so the first query filtering on one costs no more than the
   * next. Other keys are indexed by the first query that names them (one pass over the tier).
   */
  indexTags?: readonly string[];
}

const CAPABILITIES: Capabilities = Object.freeze({
  persistent: false,
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


/** A stored datum in the indexes: its header fields (what queries check) and the datum itself. */
interface Entry extends IndexedEntry {
  readonly datum: Datum;
  readonly bytes: number;
}

function sizeOf(d: Datum): number {
  let bytes = d.content.byteLength + d.id.length * 2 + 16;
  for (const k in d.metadata) bytes += (k.length + (d.metadata[k] as string).length) * 2;
  return bytes;
}

class MemoryAdapter implements Adapter {
  readonly name = ADAPTER_NAME;
  readonly rank = RANKS.memory;
  readonly capabilities: Capabilities;
  readonly #index: QueryIndex<Entry>;
  readonly #life = new Lifecycle(ADAPTER_NAME);
  readonly #maxDatums: number;
  readonly #maxBytes: number;
  /** Whether a cap applies: an unbounded tier skips sizing and eviction on put. */
  readonly #bounded: boolean;
  /** Bytes held, kept on every put while bounded; computed by `stats()` otherwise. */
  #bytes = 0;
  #events: AdapterEvents = SILENT_EVENTS;
  /** Copies in and out (the default), or the caller's objects as they are (`copy: false`). */
  readonly #copy: boolean;
  readonly #refs = new RefTable();

  constructor(options: MemoryOptions) {
    this.#maxDatums = options.maxDatums ?? Infinity;
    this.#maxBytes = options.maxBytes ?? Infinity;
    const bounded = this.#maxDatums !== Infinity || this.#maxBytes !== Infinity;
    this.#bounded = bounded;
    const copy = options.copy ?? true;
    this.#copy = copy;
    this.#index = new QueryIndex<Entry>({ tags: options.indexTags ?? [] });
    this.capabilities = Object.freeze({ ...CAPABILITIES, evicts: bounded, ...(copy ? {} : { zeroCopy: true }) });
  }

  open(context?: AdapterContext): Promise<void> {
    return this.#life.open(() => {
      this.#events = context?.events ?? SILENT_EVENTS;
    });
  }

  close(): Promise<void> {
    return this.#life.close(() => {
      this.#index.clear();
      this.#refs.clear();
      this.#bytes = 0;
    });
  }

  // get and put are plain functions returning settled promises: the work is synchronous, and an
  // `async` frame would add a promise of its own on the hottest paths of the lattice.
  put(datum: Datum): Promise<string> {
    try {
      this.#life.check();
      this.#putSync(datum);
      if (this.#bounded) this.#evict();
      return Promise.resolve(datum.id);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Stores `datum` unless its id is held (same value: nothing to do); true when it was added. */
  #putSync(datum: Datum): boolean {
    const existing = this.#index.get(datum.id);
    if (existing !== undefined) {
      if (!sameValue(existing.datum, datum)) throw conflictError(datum.id, ADAPTER_NAME);
      return false;
    }
    const stored = this.#copy ? cloneDatum(datum) : datum;
    const bytes = this.#bounded ? sizeOf(stored) : 0;
    this.#index.insert({ id: stored.id, createdAt: stored.createdAt, causalParent: stored.causalParent, metadata: stored.metadata, datum: stored, bytes });
    this.#bytes += bytes;
    return true;
  }

  async putMany(datums: readonly Datum[]): Promise<string[]> {
    this.#life.check();
    // All or nothing: write in order, and on a conflict (with a stored datum or an earlier one of
    // this batch) take back what this batch added before rethrowing. Conflicts are rare, so this
    // is one lookup per datum where checking first would be two.
    const added: string[] = [];
    try {
      for (const d of datums) if (this.#putSync(d)) added.push(d.id);
    } catch (error) {
      for (let i = added.length - 1; i >= 0; i--) {
        const entry = this.#index.delete(added[i] as string);
        if (entry !== undefined) this.#bytes -= entry.bytes;
      }
      throw error;
    }
    if (this.#bounded) this.#evict();
    return datums.map((d) => d.id);
  }

  #evict(): void {
    while (this.#index.size > this.#maxDatums || this.#bytes > this.#maxBytes) {
      const oldest = this.#index.oldest();
      if (oldest === undefined) break;
      const reason = this.#index.size > this.#maxDatums ? "maxDatums" : "maxBytes";
      this.#index.delete(oldest.id);
      this.#bytes -= oldest.bytes;
      this.#events.evicted(oldest.datum, reason);
    }
  }

  get(id: string): Promise<Datum | null> {
    try {
      this.#life.check();
    } catch (error) {
      return Promise.reject(error);
    }
    const entry = this.#index.get(id);
    return Promise.resolve(entry === undefined ? null : this.#copy ? cloneDatum(entry.datum) : entry.datum);
  }

  async delete(id: string): Promise<boolean> {
    this.#life.check();
    const entry = this.#index.delete(id);
    if (entry === undefined) return false;
    this.#bytes -= entry.bytes;
    return true;
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    this.#life.check();
    const entries = this.#index.list(options);
    const datums: Datum[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) datums[i] = (entries[i] as Entry).datum;
    return this.#copy ? cloneDatums(datums) : datums;
  }

  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    this.#life.check();
    // Walk the stored datums without copying, then copy the chain in one go.
    const index = this.#index;
    const chain = walkCausalChainSync(id, (next) => index.get(next)?.datum ?? null, maxDepth, ADAPTER_NAME);
    return this.#copy ? cloneDatums(chain) : chain;
  }

  /** One page from the indexes (see adapters/shared-index); headers only for `meta`/`ids`. */
  async query(q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
    this.#life.check();
    const entries = this.#index.query(q);
    if (q.select !== "full") return entries.map((e) => this.#header(e));
    const datums: Datum[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) datums[i] = (entries[i] as Entry).datum;
    return this.#copy ? cloneDatums(datums) : datums;
  }

  async count(q: ResolvedQuery): Promise<number> {
    this.#life.check();
    return this.#index.count(q);
  }

  async getMany(ids: readonly string[]): Promise<Array<Datum | null>> {
    this.#life.check();
    const index = this.#index;
    return ids.map((id) => {
      const entry = index.get(id);
      return entry === undefined ? null : this.#copy ? cloneDatum(entry.datum) : entry.datum;
    });
  }

  /** Deletes every match at once (nothing runs between the lookup and the last delete). */
  async deleteMany(q: ResolvedQuery): Promise<string[]> {
    this.#life.check();
    return this.#deleteEntries(this.#index.matching(q));
  }

  /** Deletes `ids` at once; the ids that were there (the router's batch delete). */
  async deleteIds(ids: readonly string[]): Promise<string[]> {
    this.#life.check();
    const found: Entry[] = [];
    for (const id of new Set(ids)) {
      const entry = this.#index.get(id);
      if (entry !== undefined) found.push(entry);
    }
    return this.#deleteEntries(found);
  }

  #deleteEntries(entries: readonly Entry[]): string[] {
    const ids: string[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry;
      this.#bytes -= entry.bytes;
      ids[i] = entry.id;
    }
    this.#index.deleteAll(entries);
    return ids;
  }

  async chainTail(id: string, n: number): Promise<Datum[]> {
    this.#life.check();
    const index = this.#index;
    const chain = chainTail(id, n, (next) => index.get(next)?.datum, ADAPTER_NAME);
    return this.#copy ? cloneDatums(chain) : chain;
  }

  #header(e: Entry): DatumHeader {
    return this.#copy ? { id: e.id, createdAt: e.createdAt, causalParent: e.causalParent, metadata: { ...e.metadata } } : headerOf(e);
  }

  async *scan(): AsyncIterable<Datum> {
    this.#life.check();
    for (const e of [...this.#index.values()]) yield this.#copy ? cloneDatum(e.datum) : e.datum;
  }

  async stats() {
    this.#life.check();
    if (this.#bounded) return { count: this.#index.size, bytes: this.#bytes };
    let bytes = 0;
    for (const e of this.#index.values()) bytes += sizeOf(e.datum);
    return { count: this.#index.size, bytes };
  }

  async probe(): Promise<boolean> {
    return this.#life.isOpen;
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

  /** Checks everything first (the append-only law, every ref expectation), then applies it all. */
  async commit(ops: readonly TxOp[], move: RefMove): Promise<TxResult> {
    this.#life.check();
    checkPuts(ops, (id) => this.#index.get(id)?.datum ?? null, ADAPTER_NAME);
    const moves = this.#refs.plan(ops, move, ADAPTER_NAME);
    const result = txResults(ops, moves, (id) => this.#index.get(id) !== undefined);
    for (const op of ops) {
      if (op.op === "put") this.#putSync(op.datum);
      else if (op.op === "delete") {
        const entry = this.#index.delete(op.id);
        if (entry !== undefined) this.#bytes -= entry.bytes;
      }
    }
    this.#refs.apply(moves);
    if (this.#bounded) this.#evict();
    return result;
  }
}

export const memory = defineAdapter<MemoryOptions>({
  name: ADAPTER_NAME,
  rank: RANKS.memory,
  urlSchemes: ["memory"],
  fromUrl: () => ({}),
  description: "Volatile, in-process; optionally bounded by datum count or bytes (oldest evicted first).",
  optionsSchema: {
    type: "object",
    additionalProperties: false,
    properties: {
      maxDatums: { type: "integer", minimum: 1 },
      maxBytes: { type: "integer", minimum: 1 },
      copy: { type: "boolean" },
      indexTags: { type: "array", items: { type: "string", minLength: 1 }, maxItems: 64, uniqueItems: true },
    },
  },
  create: (options) => new MemoryAdapter(options),
});

/** A memory tier. `memoryAdapter({ maxDatums: 100 })` keeps only the newest 100. */
export function memoryAdapter(options: MemoryOptions = {}): Adapter {
  return instantiateAdapter(memory, options);
}
