/**
 * Committing a move of a head ref with the datums it brings and the deletes it allows, and retrying
 * when another writer moved the ref first. Shared by the state chain (StateFunctor, bounded history)
 * and conversation memory.
 */
import type { Store, TxOp } from "../../compose/index.js";
import { dgentError, isDgentError } from "../../core/errors.js";

/** What committing needs from a store (a `Store` has all of it). */
export type CommitHost = Pick<Store, "put" | "delete" | "refs" | "transaction">;

/** How patiently a write retries when another writer moved the head first. */
export interface RetryOptions {
  /** Tries in all, the first included (default 64). */
  attempts?: number;
  /** Backoff between tries after a conflict: random in [min, min·2^try], at most `max` ms (default 1 and 100). */
  backoffMs?: { min?: number; max?: number };
}

/** Checks `value` is an integer ≥ `min` (`DGENT_INVALID_OPTIONS` naming `what` otherwise). */
export function integerAtLeast(value: unknown, what: string, min: number, unit: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw dgentError("DGENT_INVALID_OPTIONS", `${what} must be an integer ≥ ${min}, got ${String(value)}`, { unit });
  }
  return value;
}

/** The retry policy of one writer. */
export class Retry {
  readonly attempts: number;
  readonly min: number;
  readonly max: number;
  readonly #unit: string;

  constructor(options: RetryOptions | undefined, unit: string) {
    this.#unit = unit;
    this.attempts = integerAtLeast(options?.attempts ?? 64, "retry.attempts", 1, unit);
    this.min = options?.backoffMs?.min ?? 1;
    this.max = options?.backoffMs?.max ?? 100;
  }

  /**
   * After the `attempt`-th try lost to `error` (a `DGENT_REF_CONFLICT`): throws it (with
   * `details.attempts`) when the tries are used up, else waits a random, growing time so that
   * writers spread out — or not at all when `immediate` (the head read was only an old cache).
   */
  async afterConflict(error: Error & { details?: Readonly<Record<string, unknown>> }, attempt: number, ref: string, immediate = false): Promise<void> {
    if (attempt >= this.attempts) {
      throw dgentError("DGENT_REF_CONFLICT", `${error.message} (gave up after ${this.attempts} tries: other writers kept moving ${ref})`, {
        unit: this.#unit,
        cause: error,
        details: { ...error.details, attempts: this.attempts },
      });
    }
    if (immediate) return;
    const wait = Math.min(this.max, this.min * 2 ** (attempt - 1) * (1 + Math.random()));
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** The tail of each (store, ref) queue: writes of one ref through one store run one at a time. */
const queues = new WeakMap<object, Map<string, Promise<unknown>>>();

/**
 * Runs `fn` after every earlier call for the same store object and ref name has settled. Writers
 * in one process then never race each other for a head (they would only make each other retry);
 * compare-and-set still settles races between processes, or between two stores on one database.
 */
export function serialized<T>(store: object, ref: string, fn: () => Promise<T>): Promise<T> {
  let byRef = queues.get(store);
  if (!byRef) queues.set(store, (byRef = new Map()));
  const before = byRef.get(ref) ?? Promise.resolve();
  const run = before.then(fn, fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  byRef.set(ref, tail);
  void tail.then(() => {
    if (byRef.get(ref) === tail) byRef.delete(ref);
  });
  return run;
}

/** True for the conflict a retry loop handles. */
export function isRefConflict(error: unknown): error is Error & { details?: Readonly<Record<string, unknown>> } {
  return isDgentError(error, "DGENT_REF_CONFLICT");
}

/**
 * Commits `ops` (puts and ref moves) and the deletes of `drop`, all or nothing where the refs tier
 * has transactions. Where it has refs but no transactions (S3, GCS), the puts go first, then the
 * ref moves by compare-and-set; puts whose move lost are deleted again, and the deletes follow the
 * moves (a crash in between leaves unreferenced datums, never a wrong head).
 */
export class Committer {
  readonly store: CommitHost;
  #noTransactions = false;

  constructor(store: CommitHost) {
    this.store = store;
  }

  async commit(ops: readonly TxOp[], drop: readonly string[] = []): Promise<void> {
    if (!this.#noTransactions) {
      try {
        await this.store.transaction([...ops, ...drop.map((id): TxOp => ({ op: "delete", id }))]);
        return;
      } catch (error) {
        if (!(isDgentError(error, "DGENT_UNSUPPORTED") && error.details.capability === "transactions")) throw error;
        this.#noTransactions = true;
      }
    }
    const puts = ops.filter((op): op is Extract<TxOp, { op: "put" }> => op.op === "put");
    for (const put of puts) await this.store.put(put.datum);
    for (const op of ops) {
      try {
        if (op.op === "setRef") await this.store.refs.set(op.name, op.target, op.expect ? { expect: op.expect } : {});
        else if (op.op === "deleteRef") await this.store.refs.delete(op.name, op.expect ? { expect: op.expect } : {});
      } catch (error) {
        if (isRefConflict(error)) for (const put of puts) await this.store.delete(put.datum.id);
        throw error;
      }
    }
    for (const id of drop) await this.store.delete(id);
  }
}
