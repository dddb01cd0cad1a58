/**
 * Causality for replicated values: replica ids, dots, version vectors and the causal context
 * (a version vector plus a dot cloud) that dgent's CRDTs carry.
 *
 * dgent uses **dotted version vectors**: every write is one *dot* `(replica, n)` — the replica's
 * n-th write to that value — and a value's history is the *set* of dots it has seen. That set is
 * kept compact as a version vector (every dot up to `vv[r]`) plus the dots beyond it (the
 * "cloud"). A plain version vector could not describe a set with holes, and holes happen: a write
 * whose put failed after its dot was taken, or a write still sitting in a degraded lower tier while
 * a snapshot is taken above. With dots, a snapshot records exactly the writes it covers and every
 * other write still applies on top of it, whatever order they arrive in.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { dgentError } from "../../core/errors.js";

/** One write: replica `r`'s `n`-th write (n ≥ 1) to one value. */
export type Dot = readonly [replica: string, n: number];

/** A version vector: for each replica, the number of its writes seen (absent means 0). */
export type VersionVector = Readonly<Record<string, number>>;

/** How two version vectors (or causal contexts) relate. */
export type Order = "before" | "after" | "equal" | "concurrent";

/** Replica ids: 1–64 characters of `A–Z a–z 0–9 . _ -`. */
const REPLICA_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function assertReplicaId(id: unknown): asserts id is string {
  if (typeof id !== "string" || !REPLICA_ID.test(id)) {
    throw dgentError("DGENT_INVALID_OPTIONS", `a replica id must be 1-64 characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(id)}`, {
      details: { replica: id },
    });
  }
}

let processReplica: string | null = null;

/**
 * This process's replica id: `<host>-<pid>-<8 random hex>`, made once per process and kept for
 * its life. A new process (a restart) is a new replica, so it never needs to know what an earlier
 * one wrote before it may write.
 */
export function processReplicaId(): string {
  if (processReplica === null) {
    const host = hostname().replace(/[^A-Za-z0-9.-]/g, "-").slice(0, 32) || "host";
    processReplica = `${host}-${process.pid}-${randomBytes(4).toString("hex")}`;
  }
  return processReplica;
}

/** `"r:n"`: a dot as a map key (a replica id holds no `:`). */
export function dotKey(dot: Dot): string {
  return `${dot[0]}:${dot[1]}`;
}

export function parseDotKey(key: string): Dot {
  const i = key.lastIndexOf(":");
  return [key.slice(0, i), Number(key.slice(i + 1))];
}

/** `has` for a dot key, without building the dot. */
export function hasDotKey(ctx: CausalContext, key: string): boolean {
  const i = key.lastIndexOf(":");
  return ctx.hasDot(key.slice(0, i), Number(key.slice(i + 1)));
}

// ---------------------------------------------------------------------------------------------
// Version vectors

/** `a` compared with `b`: `before` (every entry ≤, one <), `after`, `equal` or `concurrent`. */
export function compareVV(a: VersionVector, b: VersionVector): Order {
  let less = false;
  let greater = false;
  for (const r of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[r] ?? 0;
    const y = b[r] ?? 0;
    if (x < y) less = true;
    else if (x > y) greater = true;
    if (less && greater) return "concurrent";
  }
  return less ? "before" : greater ? "after" : "equal";
}

/** The entry-wise maximum: everything either has seen. */
export function mergeVV(a: VersionVector, b: VersionVector): VersionVector {
  const out: Record<string, number> = { ...a };
  for (const [r, n] of Object.entries(b)) if (n > (out[r] ?? 0)) out[r] = n;
  return out;
}

/** True when `vv` has seen `dot`. */
export function vvHas(vv: VersionVector, dot: Dot): boolean {
  return (vv[dot[0]] ?? 0) >= dot[1];
}

// ---------------------------------------------------------------------------------------------
// Causal context: a set of dots, kept as a version vector plus a cloud

/** A causal context as stored (JSON): `{ vv, cloud }`, the cloud's dots listed per replica. */
export interface CausalContextJson {
  readonly vv: Record<string, number>;
  readonly cloud: Record<string, number[]>;
}

/**
 * A set of dots. `has`, `add` and `join` keep it compact: a dot that extends a replica's
 * contiguous prefix moves into the version vector, with any cloud dots it makes contiguous.
 */
export class CausalContext {
  readonly #vv = new Map<string, number>();
  readonly #cloud = new Map<string, Set<number>>();

  static of(dots: Iterable<Dot>): CausalContext {
    const c = new CausalContext();
    for (const d of dots) c.add(d);
    return c;
  }

  static fromJson(json: CausalContextJson): CausalContext {
    const c = new CausalContext();
    for (const [r, n] of Object.entries(json.vv)) if (n > 0) c.#vv.set(r, n);
    for (const [r, ns] of Object.entries(json.cloud)) for (const n of ns) c.add([r, n]);
    return c;
  }

  has(dot: Dot): boolean {
    return this.hasDot(dot[0], dot[1]);
  }

  hasDot(r: string, n: number): boolean {
    return (this.#vv.get(r) ?? 0) >= n || (this.#cloud.get(r)?.has(n) ?? false);
  }

  add(dot: Dot): this {
    const [r, n] = dot;
    const top = this.#vv.get(r) ?? 0;
    if (n <= top) return this;
    if (n === top + 1) {
      let next = n;
      const cloud = this.#cloud.get(r);
      while (cloud?.delete(next + 1)) next++;
      if (cloud !== undefined && cloud.size === 0) this.#cloud.delete(r);
      this.#vv.set(r, next);
      return this;
    }
    let cloud = this.#cloud.get(r);
    if (cloud === undefined) this.#cloud.set(r, (cloud = new Set()));
    cloud.add(n);
    return this;
  }

  /** Adds every dot of `other` (set union). */
  join(other: CausalContext): this {
    for (const [r, n] of other.#vv) {
      if (n > (this.#vv.get(r) ?? 0)) {
        this.#vv.set(r, n);
        const cloud = this.#cloud.get(r);
        if (cloud !== undefined) {
          for (const m of cloud) if (m <= n) cloud.delete(m);
          let next = n;
          while (cloud.delete(next + 1)) next++;
          this.#vv.set(r, next);
          if (cloud.size === 0) this.#cloud.delete(r);
        }
      }
    }
    for (const [r, ns] of other.#cloud) for (const n of ns) this.add([r, n]);
    return this;
  }

  /** The highest n seen from `replica` (0 when none): its next write is n + 1. */
  max(replica: string): number {
    let top = this.#vv.get(replica) ?? 0;
    for (const n of this.#cloud.get(replica) ?? []) if (n > top) top = n;
    return top;
  }

  /** How many dots the cloud holds (0 when the context is a plain version vector). */
  get cloudSize(): number {
    let size = 0;
    for (const s of this.#cloud.values()) size += s.size;
    return size;
  }

  /** The contiguous part as a version vector. */
  versionVector(): VersionVector {
    return Object.fromEntries([...this.#vv].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Every dot, for small contexts and tests. */
  *dots(): IterableIterator<Dot> {
    for (const [r, n] of this.#vv) for (let i = 1; i <= n; i++) yield [r, i];
    for (const [r, ns] of this.#cloud) for (const n of ns) yield [r, n];
  }

  /** How this set of dots relates to `other`'s: `before` is a strict subset, `concurrent` neither includes the other. */
  compare(other: CausalContext): Order {
    const sub = this.#within(other);
    const sup = other.#within(this);
    return sub && sup ? "equal" : sub ? "before" : sup ? "after" : "concurrent";
  }

  /** True when every dot of this context is in `other`. */
  #within(other: CausalContext): boolean {
    for (const [r, n] of this.#vv) {
      const top = other.#vv.get(r) ?? 0;
      if (top >= n) continue;
      const cloud = other.#cloud.get(r);
      for (let i = top + 1; i <= n; i++) if (!cloud?.has(i)) return false;
    }
    for (const [r, ns] of this.#cloud) for (const n of ns) if (!other.has([r, n])) return false;
    return true;
  }

  clone(): CausalContext {
    return new CausalContext().join(this);
  }

  toJson(): CausalContextJson {
    const cloud: Record<string, number[]> = {};
    for (const [r, ns] of [...this.#cloud].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) cloud[r] = [...ns].sort((a, b) => a - b);
    return { vv: { ...this.versionVector() }, cloud };
  }
}
