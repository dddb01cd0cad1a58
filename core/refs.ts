/**
 * Refs and transactions: the part of the protocol that moves. Datums stay immutable; a ref is a
 * named pointer to a datum id, moved only by compare-and-set, and a transaction commits puts,
 * deletes and ref moves all or nothing — the way git pairs immutable objects with refs.
 *
 * Adapters implement them natively behind two capabilities: `refs` (read, list, compare-and-set
 * and delete one ref atomically, with a reflog) and `transactions` (`commit` of many operations at
 * once). This file holds the shapes and the rules every adapter applies the same way, plus
 * `RefTable`, the in-memory implementation tiers with an in-memory index use.
 */
import { assertDatum, assertId, sameValue, type Datum } from "./datum.js";
import { conflictError, dgentError, type DgentError } from "./errors.js";
import { compareIds } from "./order.js";

/** A ref as stored. */
export interface Ref {
  /** The ref's name; the same rules as a datum id ("/" for hierarchy, e.g. `thread/42/head`). */
  readonly name: string;
  /** The id of the datum it points to. */
  readonly target: string;
  /** 1 when created, +1 on every move. A deleted and re-created ref starts again at 1. */
  readonly version: number;
  /** When it was last moved (epoch ms). */
  readonly updatedAt: number;
}

/**
 * What a ref must still hold for a move to apply: a version, a target, or absence. Leave it out
 * to move the ref whatever it holds (a plain set).
 */
export type RefExpectation = { readonly version: number } | { readonly target: string } | { readonly absent: true };

/** One move of a ref, newest first in `reflog`. */
export interface ReflogEntry {
  readonly name: string;
  /** The target before the move; `null` when the ref was created. */
  readonly from: string | null;
  /** The target after the move; `null` when the ref was deleted. */
  readonly to: string | null;
  /** The version after the move (the version that was deleted, for a delete). */
  readonly version: number;
  readonly at: number;
  /** Who moved it (the store's `actor`: by default `<hostname>:<pid>`). */
  readonly by: string;
}

/** How many moves each ref's reflog keeps (older ones are dropped as new ones come). */
export const REFLOG_LIMIT = 100;

/** One operation of a transaction. */
export type TxOp =
  | { readonly op: "put"; readonly datum: Datum }
  | { readonly op: "delete"; readonly id: string }
  | { readonly op: "setRef"; readonly name: string; readonly target: string; readonly expect?: RefExpectation }
  | { readonly op: "deleteRef"; readonly name: string; readonly expect?: RefExpectation };

/** What each operation of a committed transaction did, in the order of the operations. */
export type TxOpResult =
  | { readonly op: "put"; readonly id: string }
  | { readonly op: "delete"; readonly id: string; readonly existed: boolean }
  | { readonly op: "setRef"; readonly ref: Ref }
  | { readonly op: "deleteRef"; readonly name: string; readonly existed: boolean };

export interface TxResult {
  readonly results: readonly TxOpResult[];
}

/** Who moves refs and when: recorded in the reflog. */
export interface RefMove {
  readonly by: string;
  readonly at: number;
}

/** Throws `DGENT_INVALID_ID` unless `name` is a valid ref name (the id rules). */
export function assertRefName(name: unknown): asserts name is string {
  assertId(name, "ref name");
}

/** Throws `DGENT_INVALID_OPTIONS` unless `expect` is a ref expectation (or undefined). */
export function assertExpectation(expect: unknown): asserts expect is RefExpectation | undefined {
  if (expect === undefined) return;
  const e = expect as Record<string, unknown>;
  const keys = typeof expect === "object" && expect !== null ? Object.keys(e) : [];
  const ok =
    keys.length === 1 &&
    ((keys[0] === "version" && Number.isInteger(e.version) && (e.version as number) >= 1) ||
      (keys[0] === "target" && typeof e.target === "string") ||
      (keys[0] === "absent" && e.absent === true));
  if (!ok) {
    throw dgentError(
      "DGENT_INVALID_OPTIONS",
      `a ref expectation is { version: n } (n ≥ 1), { target: id } or { absent: true }, got ${JSON.stringify(expect)}`,
    );
  }
  if (keys[0] === "target") assertId(e.target, "expected target");
}

/** Validates every operation of a transaction (and the datums it puts). */
export function assertTxOps(ops: unknown): asserts ops is readonly TxOp[] {
  if (!Array.isArray(ops)) throw dgentError("DGENT_INVALID_OPTIONS", "a transaction is an array of operations");
  for (const [i, op] of ops.entries()) {
    const o = op as Record<string, unknown> | null;
    switch (o?.op) {
      case "put":
        assertDatum(o.datum);
        break;
      case "delete":
        assertId(o.id);
        break;
      case "setRef":
        assertRefName(o.name);
        assertId(o.target, "ref target");
        assertExpectation(o.expect);
        break;
      case "deleteRef":
        assertRefName(o.name);
        assertExpectation(o.expect);
        break;
      default:
        throw dgentError("DGENT_INVALID_OPTIONS", `operation ${i} of the transaction is not put, delete, setRef or deleteRef: ${JSON.stringify(o?.op)}`);
    }
  }
}

/** `DGENT_REF_CONFLICT`: what was expected and what the ref holds now. */
export function refConflict(name: string, expected: RefExpectation | undefined, actual: Ref | null, unit = "core"): DgentError {
  const now = actual === null ? "does not exist" : `is at version ${actual.version}, target ${JSON.stringify(actual.target)}`;
  return dgentError("DGENT_REF_CONFLICT", `ref ${JSON.stringify(name)} was expected to hold ${describeExpectation(expected)}, but it ${now}; nothing was changed`, {
    unit,
    details: { name, expected: expected ?? null, actual },
  });
}

function describeExpectation(expect: RefExpectation | undefined): string {
  if (expect === undefined) return "anything";
  if ("version" in expect) return `version ${expect.version}`;
  if ("target" in expect) return `target ${JSON.stringify(expect.target)}`;
  return "nothing (not to exist)";
}

/** True when `current` meets `expect` (no expectation always does). */
export function meets(current: Ref | null, expect: RefExpectation | undefined): boolean {
  if (expect === undefined) return true;
  if ("absent" in expect) return current === null;
  if (current === null) return false;
  return "version" in expect ? current.version === expect.version : current.target === expect.target;
}

/** The ref after moving `current` to `target`. */
export function movedRef(name: string, current: Ref | null, target: string, at: number): Ref {
  return { name, target, version: (current?.version ?? 0) + 1, updatedAt: at };
}

/**
 * Refs, their reflogs and the rules of a commit, held in memory: the memory tier's refs, and
 * what tiers with an in-memory index (JSONL) rebuild from their log. `plan` checks a whole
 * transaction against the current state without changing anything; `apply` then makes it so.
 */
export class RefTable {
  readonly #refs = new Map<string, Ref>();
  readonly #logs = new Map<string, ReflogEntry[]>();

  get(name: string): Ref | null {
    return this.#refs.get(name) ?? null;
  }

  /** Refs whose names start with `prefix`, by name (code point order). */
  list(prefix: string): Ref[] {
    const out: Ref[] = [];
    for (const ref of this.#refs.values()) if (ref.name.startsWith(prefix)) out.push(ref);
    return out.sort((a, b) => compareIds(a.name, b.name));
  }

  reflog(name: string, limit: number): ReflogEntry[] {
    return (this.#logs.get(name) ?? []).slice(-limit).reverse();
  }

  get size(): number {
    return this.#refs.size;
  }

  /**
   * Checks the ref operations of `ops` in order (a later operation sees an earlier one's move)
   * and returns the moves they make, or throws `DGENT_REF_CONFLICT` naming the first that fails.
   */
  plan(ops: readonly TxOp[], move: RefMove, unit: string): ReflogEntry[] {
    const view = new Map<string, Ref | null>();
    const current = (name: string) => (view.has(name) ? (view.get(name) as Ref | null) : this.get(name));
    const entries: ReflogEntry[] = [];
    for (const op of ops) {
      if (op.op !== "setRef" && op.op !== "deleteRef") continue;
      const now = current(op.name);
      if (!meets(now, op.expect)) throw refConflict(op.name, op.expect, now, unit);
      if (op.op === "setRef") {
        const next = movedRef(op.name, now, op.target, move.at);
        view.set(op.name, next);
        entries.push({ name: op.name, from: now?.target ?? null, to: op.target, version: next.version, at: move.at, by: move.by });
      } else if (now !== null) {
        view.set(op.name, null);
        entries.push({ name: op.name, from: now.target, to: null, version: now.version, at: move.at, by: move.by });
      }
    }
    return entries;
  }

  /** Makes the moves `plan` returned (or that a log replays). */
  apply(entries: readonly ReflogEntry[]): void {
    for (const e of entries) {
      if (e.to === null) this.#refs.delete(e.name);
      else this.#refs.set(e.name, { name: e.name, target: e.to, version: e.version, updatedAt: e.at });
      let log = this.#logs.get(e.name);
      if (!log) this.#logs.set(e.name, (log = []));
      log.push(e);
      if (log.length > REFLOG_LIMIT) log.splice(0, log.length - REFLOG_LIMIT);
    }
  }

  /** Every ref, for a snapshot (compaction, promotion). */
  all(): Ref[] {
    return [...this.#refs.values()];
  }

  clear(): void {
    this.#refs.clear();
    this.#logs.clear();
  }
}

/**
 * The results of a transaction once its ref moves are planned: puts return their ids; deletes
 * say whether the id existed (`existed(id)`, asked in order, seeing earlier puts and deletes of
 * the same transaction); ref moves return the new ref, or whether the ref existed.
 */
export function txResults(ops: readonly TxOp[], moves: readonly ReflogEntry[], existed: (id: string) => boolean): TxResult {
  const results: TxOpResult[] = [];
  let m = 0;
  const gone = new Set<string>();
  const added = new Set<string>();
  for (const op of ops) {
    if (op.op === "put") {
      added.add(op.datum.id);
      gone.delete(op.datum.id);
      results.push({ op: "put", id: op.datum.id });
    } else if (op.op === "delete") {
      const was = !gone.has(op.id) && (added.has(op.id) || existed(op.id));
      gone.add(op.id);
      added.delete(op.id);
      results.push({ op: "delete", id: op.id, existed: was });
    } else if (op.op === "setRef") {
      const e = moves[m++] as ReflogEntry;
      results.push({ op: "setRef", ref: { name: e.name, target: e.to as string, version: e.version, updatedAt: e.at } });
    } else {
      const e = moves[m];
      const hit = e !== undefined && e.name === op.name && e.to === null;
      if (hit) m++;
      results.push({ op: "deleteRef", name: op.name, existed: hit });
    }
  }
  return { results };
}

/** The datums a transaction puts must obey the append-only law against what is stored and each other. */
export function checkPuts(ops: readonly TxOp[], stored: (id: string) => Datum | null, unit: string): void {
  // What each id holds as the transaction goes: a datum it put, or null after it deleted the id.
  const seen = new Map<string, Datum | null>();
  for (const op of ops) {
    if (op.op === "delete") {
      seen.set(op.id, null);
      continue;
    }
    if (op.op !== "put") continue;
    const d = op.datum;
    const before = seen.has(d.id) ? seen.get(d.id) : stored(d.id);
    if (before && !sameValue(before, d)) throw conflictError(d.id, unit);
    seen.set(d.id, d);
  }
}


/** `setRef` for a tier whose `commit` already does it all: a one-operation transaction. */
export async function setRefByCommit(
  commit: (ops: readonly TxOp[], move: RefMove) => Promise<TxResult>,
  name: string,
  target: string,
  expect: RefExpectation | undefined,
  move: RefMove,
): Promise<Ref> {
  const result = await commit([{ op: "setRef", name, target, ...(expect ? { expect } : {}) }], move);
  return (result.results[0] as { ref: Ref }).ref;
}

/** `deleteRef` for a tier whose `commit` already does it all: a one-operation transaction. */
export async function deleteRefByCommit(
  commit: (ops: readonly TxOp[], move: RefMove) => Promise<TxResult>,
  name: string,
  expect: RefExpectation | undefined,
  move: RefMove,
): Promise<boolean> {
  const result = await commit([{ op: "deleteRef", name, ...(expect ? { expect } : {}) }], move);
  return (result.results[0] as { existed: boolean }).existed;
}
