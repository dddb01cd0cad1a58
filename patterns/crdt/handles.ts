/**
 * The CRDT types as handles on a store: each operation builds its delta (types.ts) and writes it
 * through `Replicated` (crdt.ts).
 */
import type { Store } from "../../core/store.js";
import { Replicated, invalid, type CrdtOptions } from "./crdt.js";
import type { DotStore } from "./dotstore.js";
import {
  causalDelta,
  gCounterDelta,
  gCounterKind,
  gSetDelta,
  gSetKind,
  lwwDelta,
  lwwKind,
  mvRegisterKind,
  orMapDelta,
  orMapKind,
  orSetKind,
  pnCounterDelta,
  pnCounterKind,
  type Json,
  type LwwData,
  type MapValues,
  type MapValueType,
} from "./types.js";

function assertAmount(by: unknown, min: number): number {
  if (typeof by !== "number" || !Number.isSafeInteger(by) || by < min) {
    throw invalid(`an increment must be a safe integer${min === 0 ? " ≥ 0" : ""}, got ${String(by)}`, { by });
  }
  return by;
}

function assertJson(value: unknown, what: string): Json {
  try {
    if (value === undefined || JSON.stringify(value) === undefined) throw new Error("not JSON");
    const back = JSON.parse(JSON.stringify(value)) as Json;
    return back;
  } catch {
    throw invalid(`${what} must be a JSON value`);
  }
}

// ---------------------------------------------------------------------------------------------
// The types

/** A grow-only counter: `increment(n ≥ 0)`. */
export class GCounter extends Replicated<DotStore, number> {
  /** Adds `by` (default 1); resolves once stored. */
  async increment(by = 1): Promise<void> {
    const n = assertAmount(by, 0);
    await this.write((input) => gCounterDelta(input, n));
  }
}

/** A counter that goes both ways: `increment(n)`, `decrement(n)`. */
export class PNCounter extends Replicated<DotStore, number> {
  async increment(by = 1): Promise<void> {
    const n = assertAmount(by, -Number.MAX_SAFE_INTEGER);
    await this.write((input) => pnCounterDelta(input, n));
  }

  async decrement(by = 1): Promise<void> {
    await this.increment(-assertAmount(by, 0));
  }
}

/** A grow-only set of JSON values. */
export class GSet extends Replicated<Set<string>, Json[]> {
  async add(element: Json): Promise<void> {
    const e = assertJson(element, "an element");
    await this.write((input) => gSetDelta(input, e));
  }
}

/** An observed-remove set, add-wins: a remove takes back the adds its replica had seen, never a concurrent one. */
export class ORSet extends Replicated<DotStore, Json[]> {
  async add(element: Json): Promise<void> {
    const e = assertJson(element, "an element");
    await this.write((input) => causalDelta("orset", input, { op: "add", element: e }));
  }

  async remove(element: Json): Promise<void> {
    const e = assertJson(element, "an element");
    await this.write((input) => causalDelta("orset", input, { op: "remove", element: e }));
  }

  /** Removes every element this replica has seen. */
  async clear(): Promise<void> {
    await this.write((input) => causalDelta("orset", input, { op: "clear" }));
  }
}

/** A last-writer-wins register: the write with the latest time (then replica id) wins. */
export class LWWRegister extends Replicated<LwwData, Json | undefined> {
  async set(value: Json): Promise<void> {
    const v = assertJson(value, "a value");
    await this.write((input) => lwwDelta(input, v));
  }
}

/** A multi-value register: `value()` lists every write no other write has seen (one when there was no conflict). */
export class MVRegister extends Replicated<DotStore, Json[]> {
  /** Replaces every value this replica has seen. */
  async set(value: Json): Promise<void> {
    const v = assertJson(value, "a value");
    await this.write((input) => causalDelta("mvregister", input, { op: "set", value: v }));
  }
}

/** An observed-remove map from string keys to CRDT values of one type (counter, lww, mvregister or orset). */
export class ORMap<T extends MapValueType> extends Replicated<DotStore, Record<string, MapValues[T]>> {
  readonly values: T;

  constructor(store: Store, options: CrdtOptions, values: T) {
    super(store, orMapKind(values), options, values);
    this.values = values;
  }

  #expect(type: MapValueType, op: string): void {
    if (this.values !== type) throw invalid(`${op} needs an ormap of ${type}; ${this.name} holds ${this.values}`);
  }

  #key(key: unknown): string {
    if (typeof key !== "string") throw invalid(`a map key must be a string, got ${typeof key}`);
    return key;
  }

  /** Counter values: adds `by` (may be negative) under `key`. */
  async increment(key: string, by = 1): Promise<void> {
    this.#expect("counter", "increment");
    const n = assertAmount(by, -Number.MAX_SAFE_INTEGER);
    await this.write((input) => orMapDelta(this.values, input, this.#key(key), { op: "increment", by: n }));
  }

  /** Register values (lww, mvregister): sets the value under `key`. */
  async set(key: string, value: Json): Promise<void> {
    if (this.values !== "lww" && this.values !== "mvregister") this.#expect("lww", "set");
    const v = assertJson(value, "a value");
    await this.write((input) => orMapDelta(this.values, input, this.#key(key), { op: "set", value: v }));
  }

  /** Set values: adds `element` to the set under `key`. */
  async add(key: string, element: Json): Promise<void> {
    this.#expect("orset", "add");
    const e = assertJson(element, "an element");
    await this.write((input) => orMapDelta(this.values, input, this.#key(key), { op: "add", element: e }));
  }

  /** Set values: removes `element` (the adds this replica has seen) from the set under `key`. */
  async remove(key: string, element: Json): Promise<void> {
    this.#expect("orset", "remove");
    const e = assertJson(element, "an element");
    await this.write((input) => orMapDelta(this.values, input, this.#key(key), { op: "remove", element: e }));
  }

  /** Removes `key` with everything this replica has seen under it; a concurrent write under it survives. */
  async delete(key: string): Promise<void> {
    await this.write((input) => orMapDelta(this.values, input, this.#key(key), null));
  }
}

export const gCounter = (store: Store, options: CrdtOptions): GCounter => new GCounter(store, gCounterKind, options);
export const pnCounter = (store: Store, options: CrdtOptions): PNCounter => new PNCounter(store, pnCounterKind, options);
export const gSet = (store: Store, options: CrdtOptions): GSet => new GSet(store, gSetKind, options);
export const orSet = (store: Store, options: CrdtOptions): ORSet => new ORSet(store, orSetKind, options);
export const lwwRegister = (store: Store, options: CrdtOptions): LWWRegister => new LWWRegister(store, lwwKind, options);
export const mvRegister = (store: Store, options: CrdtOptions): MVRegister => new MVRegister(store, mvRegisterKind, options);
export function orMap<T extends MapValueType>(store: Store, options: CrdtOptions & { readonly values: T }): ORMap<T> {
  if (!["counter", "lww", "mvregister", "orset"].includes(options?.values)) throw invalid(`values must be counter, lww, mvregister or orset, got ${String(options?.values)}`);
  return new ORMap(store, options, options.values);
}
