/**
 * The CRDT types as join-semilattices: a state is `{ ctx, data }`, where `ctx` is the causal
 * context (every write the state includes, as dots) and `data` the type's payload. `join` is
 * commutative, associative and idempotent for every type (crdt.properties.test.ts checks it), so
 * states and deltas can be merged in any order, any number of times.
 *
 * The operations build **deltas**: small states holding one write's dot. Joining a delta into any
 * state that has seen its causal past gives the state after the operation.
 */
import { CausalContext, dotKey, parseDotKey, type CausalContextJson, type Dot } from "./clock.js";
import { canonicalJson, emptyStore, joinStore, storeDots, storeFromJson, storeToJson, type DotFun, type DotMap, type DotStore, type Json, type Shape } from "./dotstore.js";

export type { Json } from "./dotstore.js";

/** A CRDT state (or delta): the writes it includes, and its payload. */
export interface State<D> {
  readonly ctx: CausalContext;
  readonly data: D;
}

/** What one type of CRDT is: its empty payload, join, value and JSON form. */
export interface Kind<D, V> {
  readonly type: CrdtType;
  empty(): D;
  /** The payload of the join of two states (`ca`, `cb`: their contexts, for the causal types). */
  join(a: D, ca: CausalContext, b: D, cb: CausalContext): D;
  value(data: D): V;
  toJson(data: D): Json;
  fromJson(json: Json): D;
}

export type CrdtType = "gcounter" | "pncounter" | "gset" | "orset" | "lww" | "mvregister" | "ormap";
/** The values an OR-Map can hold. */
export type MapValueType = "counter" | "lww" | "mvregister" | "orset";

export function emptyState<D>(kind: Kind<D, unknown>): State<D> {
  return { ctx: new CausalContext(), data: kind.empty() };
}

/** The join of two states of one kind. */
export function joinState<D>(kind: Kind<D, unknown>, a: State<D>, b: State<D>): State<D> {
  return { ctx: a.ctx.clone().join(b.ctx), data: kind.join(a.data, a.ctx, b.data, b.ctx) };
}

/** A state as stored: `{ ctx, data }` in JSON. */
export interface StateJson {
  readonly ctx: CausalContextJson;
  readonly data: Json;
}

export function stateToJson<D>(kind: Kind<D, unknown>, s: State<D>): StateJson {
  return { ctx: s.ctx.toJson(), data: kind.toJson(s.data) };
}

export function stateFromJson<D>(kind: Kind<D, unknown>, json: StateJson): State<D> {
  return { ctx: CausalContext.fromJson(json.ctx), data: kind.fromJson(json.data) };
}

/** Two states of a kind hold the same writes and payload. */
export function sameState<D>(kind: Kind<D, unknown>, a: State<D>, b: State<D>): boolean {
  return canonicalJson(stateToJson(kind, a)) === canonicalJson(stateToJson(kind, b));
}

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------------------------------------
// Counters: a dot store holding, for each replica, the dot of its latest write with its running
// totals. Each write's context covers every earlier dot of its replica (1..n: one version-vector
// entry), so the latest write replaces the earlier ones in any delivery order, and a write whose
// put failed is replaced by the replica's next write, which was built without it (see crdt.ts).

/** dot → total (G-Counter). */
export type GCounterData = DotStore;
/** dot → [increments, decrements] (PN-Counter). */
export type PNCounterData = DotStore;

// ---------------------------------------------------------------------------------------------
// G-Set: elements by canonical JSON, joined by union.

export type GSetData = Set<string>;

export const gSetKind: Kind<GSetData, Json[]> = {
  type: "gset",
  empty: () => new Set(),
  join: (a, _ca, b) => new Set([...a, ...b]),
  value: (d) => [...d].sort(byKey).map((k) => JSON.parse(k) as Json),
  toJson: (d) => [...d].sort(byKey),
  fromJson: (j) => new Set((j ?? []) as string[]),
};

// ---------------------------------------------------------------------------------------------
// LWW-Register: the write with the highest (at, replica, n) wins. A replica's write is stamped
// after every write it has seen (at = max(now, seen + 1)), so a later write never loses to one it
// followed, whatever the clocks say.

export interface LwwEntry {
  readonly at: number;
  readonly r: string;
  readonly n: number;
  readonly v: Json;
}
export type LwwData = LwwEntry | null;

export function lwwNewer(a: LwwEntry, b: LwwEntry): boolean {
  return a.at !== b.at ? a.at > b.at : a.r !== b.r ? a.r > b.r : a.n > b.n;
}

export const lwwKind: Kind<LwwData, Json | undefined> = {
  type: "lww",
  empty: () => null,
  join: (a, _ca, b) => (a === null ? b : b === null ? a : lwwNewer(b, a) ? b : a),
  value: (d) => (d === null ? undefined : d.v),
  toJson: (d) => (d === null ? null : { at: d.at, r: d.r, n: d.n, v: d.v }),
  fromJson: (j) => (j === null ? null : (j as unknown as LwwEntry)),
};

// ---------------------------------------------------------------------------------------------
// The causal types: a dot store of a fixed shape.

function causalKind<V>(type: CrdtType, shape: Shape, value: (s: DotStore) => V): Kind<DotStore, V> {
  return {
    type,
    empty: emptyStore,
    join: (a, ca, b, cb) => joinStore(shape, a, ca, b, cb),
    value,
    toJson: (s) => storeToJson(shape, s),
    fromJson: (j) => storeFromJson(shape, j),
  };
}

/** OR-Set: element (canonical JSON) → the dots of the adds not yet removed. */
export const OR_SET_SHAPE: Shape = { map: "fun" };
/** MV-Register: dot → value of each write no other write has seen. */
export const MV_SHAPE: Shape = "fun";

function orSetValue(s: DotStore): Json[] {
  return [...(s as DotMap).keys()].sort(byKey).map((k) => JSON.parse(k) as Json);
}

function mvValue(s: DotStore): Json[] {
  return [...(s as DotFun).entries()].sort(([a], [b]) => byKey(a, b)).map(([, v]) => v);
}

export const gCounterKind: Kind<GCounterData, number> = causalKind("gcounter", "fun", counterValue);
export const pnCounterKind: Kind<PNCounterData, number> = causalKind("pncounter", "fun", (s) => {
  let sum = 0;
  for (const v of (s as DotFun).values()) sum += (v as [number, number])[0] - (v as [number, number])[1];
  return sum;
});
export const orSetKind: Kind<DotStore, Json[]> = causalKind("orset", OR_SET_SHAPE, orSetValue);
export const mvRegisterKind: Kind<DotStore, Json[]> = causalKind("mvregister", MV_SHAPE, mvValue);

// Values inside an OR-Map, each a dot store sharing the map's causal context, so removing a key
// removes exactly the writes under it that the remover had seen (an observed reset).

/** Counter in a map: dot → the replica's running total (increments minus decrements). */
function counterValue(s: DotStore): number {
  let sum = 0;
  for (const v of (s as DotFun).values()) sum += v as number;
  return sum;
}

/** LWW in a map: dot → `{ at, v }`; the highest (at, dot) wins. */
function lwwInMapValue(s: DotStore): Json | undefined {
  let best: { at: number; key: string; v: Json } | null = null;
  for (const [key, e] of s as DotFun) {
    const { at, v } = e as { at: number; v: Json };
    if (best === null || at > best.at || (at === best.at && key > best.key)) best = { at, key, v };
  }
  return best?.v;
}

export const MAP_VALUES: Readonly<Record<MapValueType, { readonly shape: Shape; readonly value: (s: DotStore) => unknown }>> = {
  counter: { shape: "fun", value: counterValue },
  lww: { shape: "fun", value: lwwInMapValue },
  mvregister: { shape: MV_SHAPE, value: mvValue },
  orset: { shape: OR_SET_SHAPE, value: orSetValue },
};

/** The value an OR-Map holds under each key, by value type. */
export interface MapValues {
  counter: number;
  lww: Json | undefined;
  mvregister: Json[];
  orset: Json[];
}

export function orMapKind<T extends MapValueType>(values: T): Kind<DotStore, Record<string, MapValues[T]>> {
  const nested = MAP_VALUES[values];
  const shape: Shape = { map: nested.shape };
  return causalKind("ormap", shape, (s) => {
    const out: Record<string, MapValues[T]> = {};
    for (const k of [...s.keys()].sort(byKey)) out[k] = nested.value((s as DotMap).get(k) as DotStore) as MapValues[T];
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Delta builders: one write's delta, given the state the replica has seen and the write's dot.
// `cover` lists extra dots the delta's context includes (writes it replaces or removes).

export interface DeltaInput<D> {
  readonly state: State<D>;
  /**
   * The join of this replica's own stored writes (and what it found at its first read): the
   * counters take the replica's running total from here, so a failed write is never built upon.
   */
  readonly own: State<D>;
  readonly dot: Dot;
  /** Dots this replica took for writes that failed: the delta covers them, so they never count. */
  readonly burned: readonly Dot[];
  /** The write's time (epoch ms), for the LWW types. */
  readonly now: number;
}

function deltaCtx(dot: Dot, burned: readonly Dot[], cover: Iterable<string> = []): CausalContext {
  const ctx = CausalContext.of([dot, ...burned]);
  for (const k of cover) ctx.add(parseDotKey(k));
  return ctx;
}

/** The replica's own entries of a counter (normally one: its latest write). */
function ownEntries(s: DotStore, replica: string): Json[] {
  return [...(s as DotFun)].filter(([k]) => parseDotKey(k)[0] === replica).map(([, v]) => v);
}

/** Every dot of `dot`'s replica up to it: one version-vector entry. */
function replicaPrefix(dot: Dot): CausalContext {
  return CausalContext.fromJson({ vv: { [dot[0]]: dot[1] }, cloud: {} });
}

export function gCounterDelta(input: DeltaInput<GCounterData>, by: number): State<GCounterData> {
  const total = ownEntries(input.own.data, input.dot[0]).reduce<number>((sum, v) => sum + (v as number), 0) + by;
  return { ctx: replicaPrefix(input.dot), data: new Map<string, Json>([[dotKey(input.dot), total]]) };
}

export function pnCounterDelta(input: DeltaInput<PNCounterData>, by: number): State<PNCounterData> {
  let [p, q] = [0, 0];
  for (const v of ownEntries(input.own.data, input.dot[0])) [p, q] = [p + (v as number[])[0]!, q + (v as number[])[1]!];
  const entry = by >= 0 ? [p + by, q] : [p, q - by];
  return { ctx: replicaPrefix(input.dot), data: new Map<string, Json>([[dotKey(input.dot), entry]]) };
}

export function gSetDelta(input: DeltaInput<GSetData>, element: Json): State<GSetData> {
  return { ctx: deltaCtx(input.dot, input.burned), data: new Set([canonicalJson(element)]) };
}

export function lwwDelta(input: DeltaInput<LwwData>, value: Json): State<LwwData> {
  const [r, n] = input.dot;
  const seen = input.state.data;
  const at = seen === null ? input.now : Math.max(input.now, seen.at + 1);
  return { ctx: deltaCtx(input.dot, input.burned), data: { at, r, n, v: value } };
}

/** The nested write of an OR-Map value (or of a standalone OR-Set / MV-Register). */
export type NestedOp =
  | { readonly op: "add"; readonly element: Json }
  | { readonly op: "remove"; readonly element: Json }
  | { readonly op: "clear" }
  | { readonly op: "set"; readonly value: Json }
  | { readonly op: "increment"; readonly by: number };

/** A nested write on `current` (a dot store of type `values`): its payload and the dots it replaces. */
export function nestedDelta(values: MapValueType, current: DotStore, dot: Dot, now: number, op: NestedOp): { store: DotStore; cover: Iterable<string> } {
  const key = dotKey(dot);
  const shape = MAP_VALUES[values].shape;
  switch (values) {
    case "orset": {
      const sets = current as DotMap;
      if (op.op === "clear") return { store: emptyStore(), cover: storeDots(shape, current) };
      if (op.op !== "add" && op.op !== "remove") break;
      const element = canonicalJson(op.element);
      const seen = [...((sets.get(element) as DotFun | undefined)?.keys() ?? [])];
      if (op.op === "remove") return { store: emptyStore(), cover: seen };
      return { store: new Map([[element, new Map<string, Json>([[key, 1]])]]), cover: seen };
    }
    case "mvregister": {
      if (op.op === "clear") return { store: emptyStore(), cover: storeDots(shape, current) };
      if (op.op !== "set") break;
      return { store: new Map<string, Json>([[key, op.value]]), cover: [...(current as DotFun).keys()] };
    }
    case "lww": {
      if (op.op === "clear") return { store: emptyStore(), cover: storeDots(shape, current) };
      if (op.op !== "set") break;
      let at = now;
      for (const e of (current as DotFun).values()) at = Math.max(at, (e as { at: number }).at + 1);
      return { store: new Map<string, Json>([[key, { at, v: op.value }]]), cover: [...(current as DotFun).keys()] };
    }
    case "counter": {
      if (op.op === "clear") return { store: emptyStore(), cover: storeDots(shape, current) };
      if (op.op !== "increment") break;
      const own = [...(current as DotFun)].filter(([k]) => parseDotKey(k)[0] === dot[0]);
      const total = own.reduce((sum, [, v]) => sum + (v as number), 0) + op.by;
      return { store: new Map<string, Json>([[key, total]]), cover: own.map(([k]) => k) };
    }
  }
  throw new TypeError(`a ${values} has no ${op.op} operation`);
}

/** The delta of a standalone OR-Set or MV-Register write. */
export function causalDelta(values: "orset" | "mvregister", input: DeltaInput<DotStore>, op: NestedOp): State<DotStore> {
  const { store, cover } = nestedDelta(values, input.state.data, input.dot, input.now, op);
  return { ctx: deltaCtx(input.dot, input.burned, cover), data: store };
}

/** The delta of an OR-Map write: `op` on the value under `key`, or `null` to remove the key. */
export function orMapDelta(values: MapValueType, input: DeltaInput<DotStore>, key: string, op: NestedOp | null): State<DotStore> {
  const map = input.state.data as DotMap;
  const current = map.get(key) ?? emptyStore();
  if (op === null) return { ctx: deltaCtx(input.dot, input.burned, storeDots(MAP_VALUES[values].shape, current)), data: emptyStore() };
  const { store, cover } = nestedDelta(values, current, input.dot, input.now, op);
  const data: DotMap = store.size === 0 ? new Map() : new Map([[key, store]]);
  return { ctx: deltaCtx(input.dot, input.burned, cover), data };
}
