/**
 * Dot stores (Almeida, Shoker, Baquero, "Delta state replicated data types", 2018): the payload of
 * the causal CRDTs. A `DotFun` maps dots to values; a `DotMap` maps keys to nested dot stores.
 * Joined with their causal contexts, a dot survives when both sides hold it or when the other side
 * has never seen it — so a remove (a context holding the dots, with no payload) beats exactly the
 * adds it observed, and a concurrent add wins.
 */
import type { CausalContext } from "./clock.js";
import { hasDotKey } from "./clock.js";

/** JSON values, as stored. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** dot key (`"r:n"`) → value. */
export type DotFun = Map<string, Json>;
/** key → nested dot store. */
export type DotMap = Map<string, DotStore>;
export type DotStore = DotFun | DotMap;

/** Which dot store a value is: `"fun"`, or a map of a nested shape. */
export type Shape = "fun" | { readonly map: Shape };

export function emptyStore(): DotStore {
  return new Map();
}

/** The join of two dot stores of `shape`, each with its causal context. */
export function joinStore(shape: Shape, a: DotStore, ca: CausalContext, b: DotStore, cb: CausalContext): DotStore {
  if (shape === "fun") {
    const fa = a as DotFun;
    const fb = b as DotFun;
    const out: DotFun = new Map();
    for (const [d, v] of fa) if (fb.has(d) || !hasDotKey(cb, d)) out.set(d, v);
    for (const [d, v] of fb) if (!fa.has(d) && !hasDotKey(ca, d)) out.set(d, v);
    return out;
  }
  const ma = a as DotMap;
  const mb = b as DotMap;
  const out: DotMap = new Map();
  const none = emptyStore();
  for (const k of new Set([...ma.keys(), ...mb.keys()])) {
    const j = joinStore(shape.map, ma.get(k) ?? none, ca, mb.get(k) ?? none, cb);
    if (j.size > 0) out.set(k, j);
  }
  return out;
}

/** Every dot held in a dot store (at any depth). */
export function* storeDots(shape: Shape, s: DotStore): IterableIterator<string> {
  if (shape === "fun") yield* (s as DotFun).keys();
  else for (const nested of (s as DotMap).values()) yield* storeDots(shape.map, nested);
}

export function storeToJson(shape: Shape, s: DotStore): Json {
  const out: { [key: string]: Json } = {};
  const keys = [...s.keys()].sort();
  if (shape === "fun") for (const k of keys) out[k] = (s as DotFun).get(k) as Json;
  else for (const k of keys) out[k] = storeToJson(shape.map, (s as DotMap).get(k) as DotStore);
  return out;
}

export function storeFromJson(shape: Shape, json: Json): DotStore {
  const obj = (json ?? {}) as { [key: string]: Json };
  if (shape === "fun") return new Map(Object.entries(obj));
  return new Map(Object.entries(obj).map(([k, v]) => [k, storeFromJson(shape.map, v)]));
}

/** JSON with object keys sorted: equal values give equal strings (used as set elements' keys). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}
