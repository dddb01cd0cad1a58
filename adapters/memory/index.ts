import { cloneDatum, cloneDatums, sameValue, type Datum } from "../../core/datum.js";
import { walkCausalChainSync } from "../../core/causal.js";
import { RANKS } from "../../core/lattice.js";
import { Lifecycle } from "../../core/lifecycle.js";
import { OrderedIndex } from "../../core/ordered-index.js";
import {
  SILENT_EVENTS,
  type Adapter,
  type AdapterContext,
  type AdapterEvents,
  type Capabilities,
  type ResolvedListOptions,
} from "../../core/protocol.js";
import { defineAdapter, instantiateAdapter } from "../../core/registry.js";
import { conflict } from "../../core/tiers.js";

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
}

const CAPABILITIES: Capabilities = Object.freeze({
  persistent: false,
  multiProcess: false,
  nativeCausalChain: true,
  batch: true,
  scan: true,
  evicts: false,
});


interface Entry {
  readonly id: string;
  readonly createdAt: number;
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
  readonly #index = new OrderedIndex<Entry>();
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

  constructor(options: MemoryOptions) {
    this.#maxDatums = options.maxDatums ?? Infinity;
    this.#maxBytes = options.maxBytes ?? Infinity;
    const bounded = this.#maxDatums !== Infinity || this.#maxBytes !== Infinity;
    this.#bounded = bounded;
    const copy = options.copy ?? true;
    this.#copy = copy;
    this.capabilities = Object.freeze({ ...CAPABILITIES, evicts: bounded, ...(copy ? {} : { zeroCopy: true }) });
  }

  async open(context?: AdapterContext): Promise<void> {
    if (!this.#life.beginOpen()) return;
    this.#events = context?.events ?? SILENT_EVENTS;
    this.#life.opened();
  }

  async close(): Promise<void> {
    if (this.#life.beginClose()) {
      this.#index.clear();
      this.#bytes = 0;
    }
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
      if (!sameValue(existing.datum, datum)) throw conflict(datum.id, ADAPTER_NAME);
      return false;
    }
    const stored = this.#copy ? cloneDatum(datum) : datum;
    const bytes = this.#bounded ? sizeOf(stored) : 0;
    this.#index.insert({ id: stored.id, createdAt: stored.createdAt, datum: stored, bytes });
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
}

export const memory = defineAdapter<MemoryOptions>({
  name: ADAPTER_NAME,
  rank: RANKS.memory,
  description: "Volatile, in-process; optionally bounded by datum count or bytes (oldest evicted first).",
  optionsSchema: {
    type: "object",
    additionalProperties: false,
    properties: {
      maxDatums: { type: "integer", minimum: 1 },
      maxBytes: { type: "integer", minimum: 1 },
      copy: { type: "boolean" },
    },
  },
  create: (options) => new MemoryAdapter(options),
});

/** A memory tier. `memoryAdapter({ maxDatums: 100 })` keeps only the newest 100. */
export function memoryAdapter(options: MemoryOptions = {}): Adapter {
  return instantiateAdapter(memory, options);
}
