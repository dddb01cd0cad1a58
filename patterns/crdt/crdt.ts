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
 *   every write it covers), metadata `{ crdt, crdt.type, crdt.part: "snapshot" }`;
 * - a replica marker (counters only): datum `r/<replica>`, put after the replica's first write in
 *   a process, holding the empty state (joining it changes nothing), metadata
 *   `{ crdt, crdt.type, crdt.part: "replica" }`; a counter's deltas also carry `crdt.replica`.
 *   They let `value()` read one delta per replica.
 *
 * A read joins every delta, then every snapshot (deltas first: a compaction puts its snapshot
 * before it deletes what the snapshot covers, so whatever a read misses among the deltas is in a
 * snapshot it reads afterwards). Joining is idempotent, so a delta a snapshot already covers
 * changes nothing, and a delta it does not cover (a concurrent write, or one promoted from a lower
 * tier after the compaction) still applies. A compaction writes one snapshot of what it read and
 * deletes exactly what it read — in one transaction where the tier has them — so it never removes
 * a write no snapshot holds.
 *
 * A counter's delta of write n covers its replica's writes 1..n, so a counter's `value()` reads
 * only each marked replica's newest delta (`#heads`), after checking that no delta lies outside the
 * marked replicas' id ranges; else (a writer that left no marker) it reads everything as above.
 */
import type { Datum } from "../../core/datum.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import { uuidv7 } from "../../core/ids.js";
import type { Store } from "../../core/store.js";
import { compareIds } from "../../core/order.js";
import { CausalContext, assertReplicaId, dotKey, processReplicaId, type Dot, type Order } from "./clock.js";
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

/** Options of `read()` and `refresh()`. */
export interface ReadOptions {
  /** Read every delta and snapshot again (the cold path) instead of only what arrived since the last read. */
  readonly fresh?: boolean;
}

/** What a read found. */
export interface CrdtRead<D> {
  readonly state: State<D>;
  /** Ids of the deltas and snapshots the state joins (all that are stored, as far as the read saw). */
  readonly deltas: readonly string[];
  readonly snapshots: readonly string[];
  /**
   * How the read was answered: `"full"` read every delta and snapshot; `"incremental"` only the
   * deltas that arrived since the previous read in this process; `"repaired"` also found late
   * deltas stamped before the newest one it knew.
   */
  readonly via: "full" | "incremental" | "repaired";
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
/**
 * Datums per page of an incremental read: usually all there is. Smaller than `PAGE` because the
 * SQL tiers size the candidate indexes up to about a page before they choose one.
 */
const NEW_PAGE = 1000;
/** Deletes in flight at once on a tier without transactions. */
const DELETE_CONCURRENCY = 16;
/**
 * How far behind the newest delta it knows a read looks for late ones when the count says there
 * are some — first the last second, then the last minute — before it reads everything: a writer's
 * commit rarely lags its stamp by more.
 */
const REPAIR_WINDOWS_MS = [1_000, 60_000] as const;

/**
 * The stored join of one value as this process last read it (the materialised view behind
 * `read()`): every handle of one store, prefix and type shares it.
 */
interface View<D> {
  /** The join of `known` and `snapshots`; `null` until the first read, and after a failed compaction. */
  state: State<D> | null;
  /** The deltas joined: id → `createdAt`. */
  known: Map<string, number>;
  /** The snapshots joined, sorted. */
  snapshots: string[];
  /** The newest `createdAt` among the deltas joined (`-Infinity`: none). */
  mark: number;
  /** Reads and compactions of the value, one at a time. */
  queue: Promise<unknown>;
}

/** The types whose delta of a replica's write n covers that replica's writes 1..n (types.ts, the counters). */
const PREFIX_DELTAS: ReadonlySet<CrdtType> = new Set(["gcounter", "pncounter"]);

const VIEWS = new WeakMap<Store, Map<string, View<unknown>>>();

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
  /** True once this replica's marker is known to be stored (counters). */
  marked: boolean;
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
  /** Shared by every handle of this store, prefix and type in the process. */
  readonly #view: View<D>;

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
    if (core === undefined) cores.set(key, (core = { state: null, own: null, burned: [], last: 0, queue: Promise.resolve(), lastTime: 0, marked: false } as Core<D>));
    this.#core = core;
    let views = VIEWS.get(store);
    if (views === undefined) VIEWS.set(store, (views = new Map()));
    const viewKey = `${this.prefix}\u0000${kind.type}\u0000${values ?? ""}`;
    let view = views.get(viewKey) as View<D> | undefined;
    if (view === undefined) views.set(viewKey, (view = { state: null, known: new Map(), snapshots: [], mark: -Infinity, queue: Promise.resolve() }));
    this.#view = view;
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
    const read = await this.#inView(async (view) => {
      const heads = PREFIX_DELTAS.has(this.#kind.type) ? await this.#heads() : null;
      if (heads !== null) return heads;
      const via = view.state === null ? await this.#full(view) : await this.#incremental(view);
      return { state: view.state as State<D>, deltas: view.known.size, via };
    });
    const state = this.#state === null ? read.state : joinState(this.#kind, this.#state, read.state);
    this.#state = state;
    if (read.deltas >= this.#compactEvery) {
      // A compaction that cannot run now (the landing tier is down) costs the next read, nothing
      // else: the value is already read. Any other failure is reported.
      await this.compact().catch((error: unknown) => {
        if (!(isDgentError(error) && error.retryable)) throw error;
      });
    }
    return this.#kind.value(state.data);
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

  /** Reads the store (`read`) and joins it into what this replica has seen. */
  async refresh(options: ReadOptions = {}): Promise<CrdtRead<D>> {
    const read = await this.read(options);
    this.#state = this.#state === null ? read.state : joinState(this.#kind, this.#state, read.state);
    return { ...read, state: this.#state };
  }

  /**
   * The join of everything stored (deltas and snapshots), without this replica's unsaved view.
   * Incremental: the first read of a value in this process joins everything (`via: "full"`); later
   * reads, by any handle of the same store, value and type, fetch and join only the deltas that
   * arrived since (`"incremental"`, or `"repaired"` when a late delta was found behind the newest
   * one), and read everything again when a snapshot appeared or went, or a delta went
   * (`"full"`). `{ fresh: true }` always reads everything (and rebuilds the view).
   */
  read(options: ReadOptions = {}): Promise<CrdtRead<D>> {
    const fresh = options?.fresh === true;
    return this.#inView(async (view) => {
      const via = fresh || view.state === null ? await this.#full(view) : await this.#incremental(view);
      return { state: view.state as State<D>, deltas: [...view.known.keys()], snapshots: [...view.snapshots], via };
    });
  }

  /** Runs `f` on this value's view, after every other read or compaction of it in this process. */
  #inView<T>(f: (view: View<D>) => Promise<T>): Promise<T> {
    const view = this.#view;
    const run = view.queue.then(() => f(view));
    view.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * A counter's merged state from one delta per replica: the replicas' markers, a check that no
   * delta lies outside the marked replicas' id ranges (an empty id range is one index seek), each
   * marked replica's newest delta (which covers its earlier ones; found through its
   * `crdt.replica` tag where the tiers index tags, else by its id prefix), then the snapshots.
   * `null` when a delta lies outside (a writer that left no marker): the caller then reads
   * everything. About two queries per replica, whatever the number of deltas. `deltas` is how
   * many writes the replicas made beyond what the snapshots cover (what the deltas stored hold,
   * less the failed writes), for `compactEvery`.
   */
  async #heads(): Promise<{ state: State<D>; deltas: number; via: "heads" } | null> {
    const base = this.prefix + "d/";
    const start = this.prefix.length + 2;
    const replicas = (await this.#ids(this.prefix + "r/", {})).map((id) => id.slice(start));
    // Each replica's deltas are the ids `d/<replica>/…`: the range [`d/<replica>/`, `d/<replica>0`)
    // ('0' follows '/'). Replica ids hold no '/', so the ranges are disjoint; sorted by start, the
    // gaps between them (and before the first and after the last) must hold no delta.
    const ranges = replicas.map((r) => `${base}${r}/`).sort(compareIds);
    const bounds: [string, string][] = [];
    let from = base;
    for (const lo of ranges) {
      bounds.push([from, lo]);
      from = `${lo.slice(0, -1)}0`;
    }
    bounds.push([from, `${this.prefix}d0`]);
    const indexed = this.#store.tiers.every((tier) => tier.capabilities.queryCost === "indexed");
    const [strays, found] = await Promise.all([
      Promise.all(bounds.map(([gte, lt]) => (gte < lt ? this.#store.count({ prefix: base, idRange: { gte, lt } }) : 0))),
      Promise.all(
        replicas.map(async (replica) => {
          const q = indexed ? { prefix: base, where: { "crdt.replica": replica } } : { prefix: `${base}${replica}/` };
          return (await this.#store.query({ ...q, order: "newest", limit: 1 })).items[0] ?? null;
        }),
      ),
    ]);
    if (strays.some((n) => n > 0)) return null;
    // Snapshots after the deltas: a compaction deletes deltas only with (or after) its snapshot.
    const ctx = new CausalContext();
    let data = this.#kind.empty();
    const join = (datum: Datum) => {
      const delta = this.#decode(datum);
      data = this.#kind.join(data, ctx, delta.data, delta.ctx);
      ctx.join(delta.ctx);
    };
    let cursor: string | null = null;
    do {
      const page: { items: Datum[]; cursor: string | null } = await this.#store.query({ prefix: this.prefix + "s/", order: "oldest", limit: PAGE, ...(cursor === null ? {} : { cursor }) });
      for (const datum of page.items) join(datum);
      cursor = page.cursor;
    } while (cursor !== null);
    let deltas = 0;
    for (const [i, head] of found.entries()) {
      if (head === null) continue;
      const n = Number(head.id.slice(head.id.lastIndexOf("/") + 1));
      deltas += Math.max(0, n - ctx.max(replicas[i] as string));
      join(head);
    }
    return { state: { ctx, data }, deltas, via: "heads" };
  }

  /**
   * The cold path: every delta, then every snapshot; the view becomes exactly what was read. A
   * counter's deltas are read newest first, so each replica's latest one is decoded and the
   * earlier ones it replaces are skipped (`#covered`).
   */
  async #full(view: View<D>): Promise<"full"> {
    const ctx = new CausalContext();
    let data = this.#kind.empty();
    const known = new Map<string, number>();
    const snapshots: string[] = [];
    let mark = -Infinity;
    const order = PREFIX_DELTAS.has(this.#kind.type) ? "newest" : "oldest";
    for (const part of ["d/", "s/"] as const) {
      let cursor: string | null = null;
      do {
        const page: { items: Datum[]; cursor: string | null } = await this.#store.query({ prefix: this.prefix + part, order, limit: PAGE, ...(cursor === null ? {} : { cursor }) });
        for (const datum of page.items) {
          if (part === "d/") {
            known.set(datum.id, datum.createdAt);
            if (datum.createdAt > mark) mark = datum.createdAt;
            if (this.#covered(datum.id, ctx)) continue;
          }
          // The join, accumulated in place: the context is this read's own, so it is not copied per delta.
          const delta = this.#decode(datum);
          data = this.#kind.join(data, ctx, delta.data, delta.ctx);
          ctx.join(delta.ctx);
          if (part === "s/") snapshots.push(datum.id);
        }
        cursor = page.cursor;
      } while (cursor !== null);
    }
    view.state = { ctx, data };
    view.known = known;
    view.snapshots = snapshots.sort(compareIds);
    view.mark = mark;
    return "full";
  }

  /**
   * The warm path, checked: (1) the deltas stamped from the newest known delta's millisecond on
   * (a delta stamped in that millisecond may have committed after it); (2) the snapshot ids — any
   * change (another replica compacted) means a full read; (3) how many deltas are stamped before
   * the new newest one, against how many the view knows: fewer means a delta went (full read);
   * more means a late one (another writer's commit that took longer than its stamp, a clock
   * behind, a delta promoted from a lower tier), looked for among the last second, then
   * minute (`REPAIR_WINDOWS_MS`) and counted again, else a full read.
   */
  async #incremental(view: View<D>): Promise<"incremental" | "repaired" | "full"> {
    const deltas = this.prefix + "d/";
    const from = view.mark - 1;
    const fresh = new Map<string, Datum>();
    let again = 0;
    let mark = view.mark;
    let cursor: string | null = null;
    do {
      const page: { items: Datum[]; cursor: string | null } = await this.#store.query({
        prefix: deltas,
        order: "oldest",
        limit: NEW_PAGE,
        ...(Number.isFinite(from) ? { after: from } : {}),
        ...(cursor === null ? {} : { cursor }),
      });
      for (const datum of page.items) {
        if (view.known.has(datum.id)) again++;
        else fresh.set(datum.id, datum);
        if (datum.createdAt > mark) mark = datum.createdAt;
      }
      cursor = page.cursor;
    } while (cursor !== null);
    const snapshots = (await this.#ids(this.prefix + "s/", {})).sort(compareIds);
    if (snapshots.length !== view.snapshots.length || snapshots.some((id, i) => id !== view.snapshots[i])) return this.#full(view);
    // Every known delta stamped after `from` was just read again, or it went.
    let knownAfter = 0;
    let knownBefore = 0;
    for (const at of view.known.values()) {
      if (at > from) knownAfter++;
      if (at < mark) knownBefore++;
    }
    if (again !== knownAfter) return this.#full(view);
    for (const datum of fresh.values()) if (datum.createdAt < mark) knownBefore++;
    // Usually nothing was written meanwhile: every delta stored is known (a count with the same
    // filters every time, whose plan the SQL tiers keep). Otherwise count those stamped before the
    // mark: more of them than known are late deltas.
    // With no delta read at all (mark -Infinity), none can be stamped before the mark.
    if (mark === -Infinity || (await this.#count(deltas)) === view.known.size + fresh.size) {
      this.#join(view, fresh, mark);
      return "incremental";
    }
    const counted = await this.#count(deltas, mark);
    let via: "incremental" | "repaired" = "incremental";
    if (counted !== knownBefore) {
      if (counted < knownBefore) return this.#full(view);
      // Late deltas: look among the recent ones, fetch the unknown ones, and count again.
      let found = false;
      for (const window of REPAIR_WINDOWS_MS) {
        const missing = (await this.#ids(deltas, { after: mark - window, before: mark })).filter((id) => !view.known.has(id) && !fresh.has(id));
        for (let i = 0; i < missing.length; i += PAGE) {
          for (const datum of await this.#store.getMany(missing.slice(i, i + PAGE))) {
            if (datum === null || datum.createdAt >= mark) continue;
            fresh.set(datum.id, datum);
            knownBefore++;
          }
        }
        if ((found = (await this.#count(deltas, mark)) === knownBefore)) break;
      }
      if (!found) return this.#full(view);
      via = "repaired";
    }
    this.#join(view, fresh, mark);
    return via;
  }

  /** Joins `fresh` deltas into the view (into a copy: a delta that fails to decode leaves the view as it was). */
  #join(view: View<D>, fresh: ReadonlyMap<string, Datum>, mark: number): void {
    if (fresh.size > 0) {
      const ctx = (view.state as State<D>).ctx.clone();
      let data = (view.state as State<D>).data;
      for (const datum of fresh.values()) {
        if (this.#covered(datum.id, ctx)) continue;
        const delta = this.#decode(datum);
        data = this.#kind.join(data, ctx, delta.data, delta.ctx);
        ctx.join(delta.ctx);
      }
      for (const datum of fresh.values()) view.known.set(datum.id, datum.createdAt);
      view.state = { ctx, data };
    }
    view.mark = mark;
  }

  /**
   * True when joining the delta `id` into a state with context `ctx` changes nothing, known from
   * its id alone: for the counters, whose delta of write n holds only its own dot and covers its
   * replica's writes 1..n, a delta whose dot `ctx` holds is replaced by what was joined already (a
   * later write of its replica, or a snapshot). Always false for the other types.
   */
  #covered(id: string, ctx: CausalContext): boolean {
    if (!PREFIX_DELTAS.has(this.#kind.type)) return false;
    const slash = id.lastIndexOf("/");
    const start = this.prefix.length + 2;
    if (slash <= start) return false;
    const n = Number(id.slice(slash + 1));
    return Number.isSafeInteger(n) && n > 0 && ctx.hasDot(id.slice(start, slash), n);
  }

  /** Every id under `prefix` meeting `filter`. */
  async #ids(prefix: string, filter: { after?: number; before?: number }): Promise<string[]> {
    const out: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: string[]; cursor: string | null } = await this.#store.query({ prefix, ...filter, select: "ids", limit: PAGE, ...(cursor === null ? {} : { cursor }) });
      out.push(...page.items);
      cursor = page.cursor;
    } while (cursor !== null);
    return out;
  }

  /**
   * How many deltas are stored (stamped before `before` when given). Where every tier indexes
   * metadata, through the `crdt` tag (an index range of the tag, index only on SQL tiers);
   * elsewhere by id prefix and time alone (checked on object names on S3 and GCS, no object read).
   */
  #count(prefix: string, before?: number): Promise<number> {
    const indexed = this.#store.tiers.every((tier) => tier.capabilities.queryCost === "indexed");
    return this.#store.count({ prefix, ...(before === undefined ? {} : { before }), ...(indexed ? { where: { crdt: this.name } } : {}) });
  }

  /**
   * Writes one snapshot of what it reads and deletes what it read (the deltas and older
   * snapshots), in one transaction where the store's tier has them; elsewhere (S3, GCS) the
   * snapshot is put first and the deletes follow, so a crash in between leaves covered deltas
   * that later reads join to no effect and the next compaction removes. It reads everything
   * (`read({ fresh: true })`), whatever the view holds.
   */
  compact(): Promise<CompactResult> {
    return this.#inView(async (view) => {
      await this.#full(view);
      const state = view.state as State<D>;
      const deltas = [...view.known.keys()];
      const snapshots = view.snapshots;
      if (deltas.length === 0 && snapshots.length <= 1) return { snapshot: null, deltas: 0, snapshots: 0, atomic: false };
      const id = `${this.prefix}s/${uuidv7()}`;
      const datum = this.#encode(id, state, "snapshot", null, this.#clock());
      const removed = [...deltas, ...snapshots];
      // From here the view is rebuilt by the next read unless the compaction is known to be done.
      view.state = null;
      try {
        await this.#store.transaction([{ op: "put", datum }, ...removed.map((r) => ({ op: "delete" as const, id: r }))]);
        // Exactly what was read is now one snapshot: the view holds the same state, and no delta.
        view.state = state;
        view.known = new Map();
        view.snapshots = [id];
        return { snapshot: id, deltas: deltas.length, snapshots: snapshots.length, atomic: true };
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
      return { snapshot: id, deltas: deltas.length, snapshots: snapshots.length, atomic: false };
    });
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
      const marking = !core.marked && PREFIX_DELTAS.has(this.#kind.type);
      if (marking) await this.#resumeTime(core);
      const state = this.#state as State<D>;
      core.own ??= state;
      const dot: Dot = [this.replica, Math.max(state.ctx.max(this.replica), core.last) + 1];
      core.last = dot[1];
      const now = Math.max(this.#clock(), core.lastTime);
      core.lastTime = now;
      const delta = build({ state, own: core.own, dot, burned: core.burned, now });
      const id = `${this.prefix}d/${this.replica}/${String(dot[1]).padStart(PAD, "0")}`;
      try {
        await this.#store.put(this.#encode(id, delta, "delta", dotKey(dot), now));
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
      if (marking) await this.#mark(core, now);
      return dot;
    });
    this.#core.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Starts this replica's write times at its newest stored delta's, so that its newest delta by
   * time is its highest write (what `#heads` reads) even when this process's clock is behind the
   * last one's.
   */
  async #resumeTime(core: Core<D>): Promise<void> {
    const [newest] = (await this.#store.query({ prefix: `${this.prefix}d/${this.replica}/`, order: "newest", limit: 1 })).items;
    if (newest !== undefined && newest.createdAt > core.lastTime) core.lastTime = newest.createdAt;
  }

  /**
   * Stores this replica's marker after its first write in this process (an existing marker is
   * kept: a put at another time conflicts). After the write, so a marker always has a delta of
   * this code's (tagged `crdt.replica`) that covers the replica's older ones. A marker that cannot
   * be stored now is tried again at the next write; until then `value()` reads everything.
   */
  async #mark(core: Core<D>, at: number): Promise<void> {
    try {
      await this.#store.put(this.#encode(`${this.prefix}r/${this.replica}`, emptyState(this.#kind), "replica", null, at));
    } catch (error) {
      if (!isDgentError(error, "DGENT_CONFLICT")) return;
    }
    core.marked = true;
  }

  #encode(id: string, state: State<D>, part: "delta" | "snapshot" | "replica", dot: string | null, at: number): Datum {
    const envelope: Envelope = { type: this.#kind.type, ...(this.#values === undefined ? {} : { values: this.#values }), ...stateToJson(this.#kind, state) };
    return {
      id,
      content: Buffer.from(JSON.stringify(envelope)),
      createdAt: at,
      causalParent: null,
      metadata: {
        crdt: this.name,
        "crdt.type": this.#kind.type,
        "crdt.part": part,
        ...(dot === null ? {} : { "crdt.dot": dot, ...(PREFIX_DELTAS.has(this.#kind.type) ? { "crdt.replica": this.replica } : {}) }),
      },
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
