import { sameValue, type Datum } from "../../core/datum.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import type { Contender, TierSetup } from "../contender.js";
import { isSkipped, keyvMemory, keyvMemoryJson, unstorageMemory, type PeerResult } from "../peers.js";
import { dgentContender } from "./dgent.js";

/**
 * The raw baseline of the memory tier: what a careful hand-written store does for the same
 * semantics — a `Map` by id plus an array kept in (createdAt, id) order for newest-first lists,
 * the append-only check on put, and copies of content and tags in and out (without them a caller
 * could change stored data by mutating a buffer, which the protocol forbids). Synchronous.
 */
export class RawMemory {
  readonly #byId = new Map<string, Datum>();
  readonly #byTime: Datum[] = [];
  /** Copy in and out (the default), or keep and return the caller's objects (the zero-copy baseline). */
  readonly #copy: (d: Datum) => Datum;

  constructor(copy = true) {
    this.#copy = copy ? copyOf : (d) => d;
  }

  put(d: Datum): string {
    const prior = this.#byId.get(d.id);
    if (prior !== undefined) {
      if (!sameValue(prior, d)) throw new Error(`conflict on ${d.id}`);
      return d.id;
    }
    const copy = this.#copy(d);
    this.#byId.set(d.id, copy);
    const arr = this.#byTime;
    const last = arr[arr.length - 1];
    if (last === undefined || last.createdAt < d.createdAt || (last.createdAt === d.createdAt && last.id < d.id)) arr.push(copy);
    else {
      let lo = 0;
      let hi = arr.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const m = arr[mid] as Datum;
        if (m.createdAt < d.createdAt || (m.createdAt === d.createdAt && m.id < d.id)) lo = mid + 1;
        else hi = mid;
      }
      arr.splice(lo, 0, copy);
    }
    return d.id;
  }

  putMany(ds: readonly Datum[]): string[] {
    const ids = new Array<string>(ds.length);
    for (let i = 0; i < ds.length; i++) ids[i] = this.put(ds[i] as Datum);
    return ids;
  }

  get(id: string): Datum | null {
    const d = this.#byId.get(id);
    return d === undefined ? null : this.#copy(d);
  }

  list(limit: number): Datum[] {
    const out: Datum[] = [];
    const arr = this.#byTime;
    for (let i = arr.length - 1; i >= 0 && out.length < limit; i--) out.push(this.#copy(arr[i] as Datum));
    return out;
  }

  chain(id: string): Datum[] {
    const out: Datum[] = [];
    let next: string | null = id;
    while (next !== null && out.length <= 10_000) {
      const d = this.#byId.get(next);
      if (d === undefined) break;
      out.push(this.#copy(d));
      next = d.causalParent;
    }
    return out.reverse();
  }
}

/** The fastest copy Node offers for small buffers: `Buffer.allocUnsafe` takes a slice of a shared pool. */
function copyOf(d: Datum): Datum {
  const content = Buffer.allocUnsafe(d.content.byteLength);
  content.set(d.content);
  return { id: d.id, content, createdAt: d.createdAt, causalParent: d.causalParent, metadata: { ...d.metadata } };
}

export function rawMemoryContender(copy = true): Contender {
  const raw = new RawMemory(copy);
  return {
    name: copy ? "raw Map" : "raw Map (no copies)",
    kind: "raw",
    description: copy
      ? "Map by id + array in time order, append-only check, copies in and out; synchronous"
      : "Map by id + array in time order, append-only check, the caller's objects kept and returned; synchronous",
    put: (d) => raw.put(d),
    putMany: (ds) => raw.putMany(ds),
    get: (id) => raw.get(id),
    list: (limit) => raw.list(limit),
    chain: (id) => raw.chain(id),
    prefill: async (ds) => void raw.putMany(ds),
    close: async () => undefined,
  };
}

async function peersOf(makers: ReadonlyArray<() => Promise<PeerResult>>, contenders: Contender[]): Promise<{ name: string; reason: string }[]> {
  const skipped: { name: string; reason: string }[] = [];
  for (const peer of makers) {
    const c = await peer();
    if (isSkipped(c)) skipped.push({ name: c.name, reason: c.skipped });
    else contenders.push(c);
  }
  return skipped;
}

/**
 * The memory tier as it comes: it copies in and out, so its peers are the libraries that also
 * hand out independent values (Keyv with its JSON serialization, unstorage).
 */
export async function memoryTier(withPeers = true): Promise<TierSetup> {
  const contenders: Contender[] = [
    dgentContender(memoryAdapter(), "createStore({ tiers: [memoryAdapter()] })"),
    rawMemoryContender(),
  ];
  const skipped = await peersOf(withPeers ? [keyvMemoryJson, unstorageMemory] : [], contenders);
  return {
    tier: "memory",
    label: "memory (in-process, copies in and out)",
    contenders,
    ...(skipped.length ? { skipped } : {}),
    dispose: async () => undefined,
  };
}

/**
 * The zero-copy memory tier (`copy: false`): it keeps and returns the caller's objects, so its
 * raw baseline does the same and its peer is Keyv over a Map with serialization off.
 */
export async function memoryZeroCopyTier(withPeers = true): Promise<TierSetup> {
  const contenders: Contender[] = [
    dgentContender(memoryAdapter({ copy: false }), "createStore({ tiers: [memoryAdapter({ copy: false })] })"),
    rawMemoryContender(false),
  ];
  const skipped = await peersOf(withPeers ? [keyvMemory] : [], contenders);
  return {
    tier: "memory-zero-copy",
    label: "memory, copy: false (in-process, the caller's objects)",
    contenders,
    ...(skipped.length ? { skipped } : {}),
    dispose: async () => undefined,
  };
}
