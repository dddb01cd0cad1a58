/**
 * CRDTs on a store: every write is an append-only delta datum, and the value is the join of the
 * snapshots and deltas found. No refs, no locks, no coordinator: any number of processes, on any
 * tier (and across a degraded lattice), write concurrently and converge.
 *
 * Layout (namespace-local, under `<prefix>`, default `crdt/<name>/`):
 * - a delta: datum `d/<replica>/<n, 12 digits>` — replica `replica`'s n-th write — holding
 *   `{ type, ctx, data }` (a small state: the write's dot in `ctx`), metadata
 *   `{ crdt: <name>, crdt.type, crdt.part: "delta", crdt.dot: "<replica>:<n>" }`;
 * - a snapshot: datum `s/<uuidv7>` holding the join of what a compaction read (its `ctx` lists
 *   every write it covers), metadata `{ crdt, crdt.type, crdt.part: "snapshot" }`.
 *
 * A read joins every delta, then every snapshot (deltas first: a compaction puts its snapshot
 * before it deletes what the snapshot covers, so whatever a read misses among the deltas is in a
 * snapshot it reads afterwards). Joining is idempotent, so a delta a snapshot already covers
 * changes nothing, and a delta it does not cover (a concurrent write, or one promoted from a lower
 * tier after the compaction) still applies. A compaction writes one snapshot of what it read and
 * deletes exactly what it read — in one transaction where the tier has them — so it never removes
 * a write no snapshot holds.
 */
import type { Datum } from "../../core/datum.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import { uuidv7 } from "../../core/ids.js";
import type { Store } from "../../core/store.js";
import { assertReplicaId, dotKey, processReplicaId, type CausalContext, type Dot, type Order } from "./clock.js";
import { emptyState, joinState, stateFromJson, stateToJson, type CrdtType, type DeltaInput, type Kind, type MapValueType, type State, type StateJson } from "./types.js";

export interface CrdtOptions {
  /** The value's name: 1-200 characters, no `/` and no control characters. */
  readonly name: string;
  /**
   * This writer's replica id (default: the process's, `processReplicaId()`, new in every process).
   * A replica id given here must never be used by two live writers at once; reusing it across
   * restarts is safe when the process reads the same storage it wrote (its next write number is
   * read from there before its first write).
   */
  readonly replica?: string;
  /** Where the value lives (default `crdt/<name>/`). */
  readonly prefix?: string;
  /** Epoch ms for datum times and the LWW types (default `Date.now`). */
  readonly clock?: () => number;
  /**
   * `value()` compacts once it has read at least this many deltas (default 1000; `Infinity`: only
   * an explicit `compact()`). This bounds what a read costs: the snapshots plus at most about this
   * many deltas, plus whatever was written since.
   */
  readonly compactEvery?: number;
}

/** What a read found. */
export interface CrdtRead<D> {
  readonly state: State<D>;
  /** Ids of the deltas and snapshots joined. */
  readonly deltas: readonly string[];
  readonly snapshots: readonly string[];
}

/** What a compaction did. */
export interface CompactResult {
  /** The new snapshot's id, or `null` when there was nothing to compact. */
  readonly snapshot: string | null;
  /** How many deltas and older snapshots it removed. */
  readonly deltas: number;
  readonly snapshots: number;
  /** True when the snapshot and the deletes were one transaction. */
  readonly atomic: boolean;
}

const PAD = 12;
/** Datums read per page. */
const PAGE = 10_000;
/** Deletes in flight at once on a tier without transactions. */
const DELETE_CONCURRENCY = 16;

/**
 * What one replica of one value has seen in this process: every handle on the same store, prefix
 * and replica id shares it, so two handles never take the same write number.
 */
interface Core<D> {
  /** Its own writes and the last read. `null` until first needed. */
  state: State<D> | null;
  /** The join of this replica's own stored writes and its first read (see `DeltaInput.own`). */
  own: State<D> | null;
  /** Dots of writes whose put failed: the next write's context covers them. */
  burned: Dot[];
  /** The replica's last write number. */
  last: number;
  /** Writes, one at a time (a write needs the state its predecessor left). */
  queue: Promise<unknown>;
  lastTime: number;
}

const CORES = new WeakMap<Store, Map<string, Core<unknown>>>();

interface Envelope extends StateJson {
  readonly type: CrdtType;
  readonly values?: MapValueType;
}

/** One replica's handle on one replicated value, of one CRDT type. */
export class Replicated<D, V> {
  readonly name: string;
  readonly prefix: string;
  readonly replica: string;
  readonly #store: Store;
  readonly #kind: Kind<D, V>;
  readonly #values: MapValueType | undefined;
  readonly #clock: () => number;
  readonly #compactEvery: number;
  /** Shared by every handle of this store, prefix, type and replica in the process. */
  readonly #core: Core<D>;

  constructor(store: Store, kind: Kind<D, V>, options: CrdtOptions, values?: MapValueType) {
    if (options === null || typeof options !== "object") throw invalid("options must be an object");
    const { name } = options;
    if (typeof name !== "string" || name.length === 0 || name.length > 200 || /[/\u0000-\u001f\u007f]/.test(name)) {
      throw invalid("name must be 1-200 characters without '/' or control characters", { name });
    }
    const replica = options.replica ?? processReplicaId();
    assertReplicaId(replica);
    const every = options.compactEvery ?? 1000;
    if (every !== Infinity && (!Number.isInteger(every) || every < 1)) throw invalid(`compactEvery must be a positive integer or Infinity, got ${String(every)}`);
    if (options.prefix !== undefined && (typeof options.prefix !== "string" || options.prefix.length === 0)) throw invalid("prefix must be a non-empty string");
    this.#store = store;
    this.#kind = kind;
    this.#values = values;
    this.name = name;
    this.prefix = options.prefix ?? `crdt/${name}/`;
    this.replica = replica;
    this.#clock = options.clock ?? Date.now;
    this.#compactEvery = every;
    let cores = CORES.get(store);
    if (cores === undefined) CORES.set(store, (cores = new Map()));
    // The type is part of the key: a handle of another type on the same name never shares a state
    // (its first read reports DGENT_CRDT_TYPE instead).
    const key = `${this.prefix}\u0000${kind.type}\u0000${values ?? ""}\u0000${replica}`;
    let core = cores.get(key) as Core<D> | undefined;
    if (core === undefined) cores.set(key, (core = { state: null, own: null, burned: [], last: 0, queue: Promise.resolve(), lastTime: 0 } as Core<D>));
    this.#core = core;
  }

  get #state(): State<D> | null {
    return this.#core.state;
  }

  set #state(state: State<D> | null) {
    this.#core.state = state;
  }

  get type(): CrdtType {
    return this.#kind.type;
  }

  /** The merged value: everything stored, joined with this replica's own writes. */
  async value(): Promise<V> {
    const read = await this.refresh();
    if (read.deltas.length >= this.#compactEvery) {
      // A compaction that cannot run now (the landing tier is down) costs the next read, nothing
      // else: the value is already read. Any other failure is reported.
      await this.compact().catch((error: unknown) => {
        if (!(isDgentError(error) && error.retryable)) throw error;
      });
    }
    return this.#kind.value(read.state.data);
  }

  /** The value this replica has seen, without reading the store (after a `value()` or writes). */
  get local(): V {
    return this.#kind.value((this.#state ?? emptyState(this.#kind)).data);
  }

  /** The causal context of what this replica has seen: every write, as dots. */
  get seen(): CausalContext {
    return (this.#state ?? emptyState(this.#kind)).ctx.clone();
  }

  /** How what this replica has seen relates to `other`'s (see `CausalContext.compare`). */
  compare(other: Replicated<D, V>): Order {
    return this.seen.compare(other.seen);
  }

  /**
   * Calls `listener` with the merged value after each change to this value's datums (a write of
   * any replica, a compaction), once per distinct value, in order — also for writes of other
   * processes when the store's change stream reports them. Needs the store's change stream
   * (`dgent/plugins/reactive`); resolves to the unsubscribe.
   */
  async subscribe(listener: (value: V) => void | Promise<void>): Promise<() => void> {
    let running: Promise<void> = Promise.resolve();
    let stopped = false;
    let last: string | undefined;
    const unsubscribe = await this.#store.subscribe((change: never) => {
      const id = (change as { id?: unknown }).id;
      if (typeof id !== "string" || !id.startsWith(this.prefix)) return undefined;
      running = running.then(async () => {
        if (stopped) return;
        const value = await this.value();
        const seen = JSON.stringify(value);
        if (seen === last) return; // a compaction, or a write already delivered
        last = seen;
        await listener(value);
      });
      return running;
    });
    return () => {
      stopped = true;
      unsubscribe();
    };
  }

  /** Reads the store and joins it into what this replica has seen. */
  async refresh(): Promise<CrdtRead<D>> {
    const read = await this.read();
    this.#state = this.#state === null ? read.state : joinState(this.#kind, this.#state, read.state);
    return { ...read, state: this.#state };
  }

  /** The join of everything stored (deltas, then snapshots), without this replica's unsaved view. */
  async read(): Promise<CrdtRead<D>> {
    const { ctx } = emptyState(this.#kind);
    let { data } = emptyState(this.#kind);
    const deltas: string[] = [];
    const snapshots: string[] = [];
    for (const [part, ids] of [["d/", deltas], ["s/", snapshots]] as const) {
      let cursor: string | null = null;
      do {
        const page: { items: Datum[]; cursor: string | null } = await this.#store.query({ prefix: this.prefix + part, order: "oldest", limit: PAGE, ...(cursor === null ? {} : { cursor }) });
        for (const datum of page.items) {
          // The join, accumulated in place: the context is this read's own, so it is not copied per delta.
          const delta = this.#decode(datum);
          data = this.#kind.join(data, ctx, delta.data, delta.ctx);
          ctx.join(delta.ctx);
          ids.push(datum.id);
        }
        cursor = page.cursor;
      } while (cursor !== null);
    }
    return { state: { ctx, data }, deltas, snapshots };
  }

  /**
   * Writes one snapshot of what it reads and deletes what it read (the deltas and older
   * snapshots), in one transaction where the store's tier has them; elsewhere (S3, GCS) the
   * snapshot is put first and the deletes follow, so a crash in between leaves covered deltas
   * that later reads join to no effect and the next compaction removes.
   */
  async compact(): Promise<CompactResult> {
    const read = await this.read();
    if (read.deltas.length === 0 && read.snapshots.length <= 1) return { snapshot: null, deltas: 0, snapshots: 0, atomic: false };
    const id = `${this.prefix}s/${uuidv7()}`;
    const datum = this.#encode(id, read.state, "snapshot", null);
    const removed = [...read.deltas, ...read.snapshots];
    try {
      await this.#store.transaction([{ op: "put", datum }, ...removed.map((r) => ({ op: "delete" as const, id: r }))]);
      return { snapshot: id, deltas: read.deltas.length, snapshots: read.snapshots.length, atomic: true };
    } catch (error) {
      if (!isDgentError(error, "DGENT_UNSUPPORTED")) throw error;
    }
    await this.#store.put(datum);
    for (let i = 0; i < removed.length; i += DELETE_CONCURRENCY) {
      await Promise.all(
        removed.slice(i, i + DELETE_CONCURRENCY).map((r) =>
          this.#store.delete(r).catch((error: unknown) => {
            if (!isDgentError(error, "DGENT_DELETE_UNKNOWN")) throw error; // journaled: it goes when the tier returns
          }),
        ),
      );
    }
    return { snapshot: id, deltas: read.deltas.length, snapshots: read.snapshots.length, atomic: false };
  }

  /**
   * One write: builds its delta from what this replica has seen, puts it, and joins it in.
   * Resolves once the delta is stored (the tier's guarantee); a failed put rejects, and the
   * replica's next write covers the failed one's dot, so it never counts even if it landed.
   */
  protected write(build: (input: DeltaInput<D>) => State<D>): Promise<Dot> {
    const run = this.#core.queue.then(async () => {
      if (this.#state === null) await this.refresh();
      const core = this.#core;
      const state = this.#state as State<D>;
      core.own ??= state;
      const dot: Dot = [this.replica, Math.max(state.ctx.max(this.replica), core.last) + 1];
      core.last = dot[1];
      const now = Math.max(this.#clock(), core.lastTime);
      core.lastTime = now;
      const delta = build({ state, own: core.own, dot, burned: core.burned, now });
      const id = `${this.prefix}d/${this.replica}/${String(dot[1]).padStart(PAD, "0")}`;
      try {
        await this.#store.put(this.#encode(id, delta, "delta", dotKey(dot)));
      } catch (error) {
        core.burned.push(dot);
        if (isDgentError(error, "DGENT_CONFLICT")) {
          throw dgentError("DGENT_CRDT_REPLICA_CLASH", `${this.type} ${this.name}: write ${dotKey(dot)} is already stored with other content; two live writers use replica id ${this.replica}`, {
            cause: error,
            unit: "crdt",
            details: { name: this.name, replica: this.replica, dot: dotKey(dot) },
          });
        }
        throw error;
      }
      core.burned = [];
      core.own = joinState(this.#kind, core.own, delta);
      this.#state = joinState(this.#kind, this.#state as State<D>, delta);
      return dot;
    });
    this.#core.queue = run.catch(() => undefined);
    return run;
  }

  #encode(id: string, state: State<D>, part: "delta" | "snapshot", dot: string | null): Datum {
    const envelope: Envelope = { type: this.#kind.type, ...(this.#values === undefined ? {} : { values: this.#values }), ...stateToJson(this.#kind, state) };
    return {
      id,
      content: Buffer.from(JSON.stringify(envelope)),
      createdAt: this.#clock(),
      causalParent: null,
      metadata: { crdt: this.name, "crdt.type": this.#kind.type, "crdt.part": part, ...(dot === null ? {} : { "crdt.dot": dot }) },
    };
  }

  #decode(datum: Datum): State<D> {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(Buffer.from(datum.content.buffer, datum.content.byteOffset, datum.content.byteLength).toString("utf8")) as Envelope;
    } catch (error) {
      throw dgentError("DGENT_INVALID_CONTENT", `${this.type} ${this.name}: ${datum.id} is not a CRDT state (not JSON)`, { cause: error, unit: "crdt", details: { id: datum.id } });
    }
    if (envelope?.type !== this.#kind.type || envelope.values !== this.#values || typeof envelope.ctx !== "object") {
      const stored = envelope?.type === "ormap" ? `ormap of ${String(envelope.values)}` : String(envelope?.type);
      const wanted = this.#values === undefined ? this.#kind.type : `ormap of ${this.#values}`;
      throw dgentError("DGENT_CRDT_TYPE", `${this.name}: ${datum.id} holds a ${stored}, not a ${wanted}`, {
        unit: "crdt",
        details: { name: this.name, id: datum.id, stored: envelope?.type ?? null, expected: this.#kind.type },
      });
    }
    return stateFromJson(this.#kind, envelope);
  }
}

/** `DGENT_INVALID_OPTIONS` from the crdt unit. */
export function invalid(message: string, details: Record<string, unknown> = {}) {
  return dgentError("DGENT_INVALID_OPTIONS", `crdt: ${message}`, { unit: "crdt", details });
}
