/**
 * The store's refs and transactions (`store.refs`, `store.transaction`). Refs live on one tier:
 * the store's preferred tier, the one that takes writes. While it is down, a ref move fails with
 * a retryable `DGENT_UNAVAILABLE` instead of forking into a lower tier; a tier that does not
 * declare `refs` (or `transactions`) is refused with `DGENT_UNSUPPORTED` naming it. Nothing is
 * emulated on top of the five methods: an emulation could not keep compare-and-set atomic.
 */
import { hostname } from "node:os";
import { assertId, type Datum } from "./datum.js";
import { dgentError, isDgentError } from "./errors.js";
import { beforePutDatum, type StoreHooks } from "./hooks.js";
import type { Adapter } from "./protocol.js";
import {
  REFLOG_LIMIT,
  assertExpectation,
  assertRefName,
  assertTxOps,
  type Ref,
  type RefExpectation,
  type RefMove,
  type ReflogEntry,
  type TxOp,
  type TxResult,
} from "./refs.js";
import type { Router } from "./router.js";

/**
 * What `RefsHost.ready` returns while the store is open: one promise, resolved, so the hot paths
 * (`refs.set`, `transaction`) can tell the store is open without waiting a tick for it.
 */
export const OPENED: Promise<void> = Promise.resolve();

/** What the refs API needs from its store. */
export interface RefsHost {
  /** Opens the store if needed (rejects once it is closed); `OPENED` itself when it is open. */
  ready(): Promise<void>;
  readonly router: Router;
  readonly hooks: Readonly<StoreHooks>;
  /** Recorded in reflogs as who moved a ref. */
  readonly actor: string;
  /** Reads a datum through the store (for `update`). */
  get(id: string): Promise<Datum | null>;
  /** Puts a datum through the store (for `update` on a tier without transactions). */
  put(datum: Datum): Promise<string>;
}

/** The default actor: this host and process. */
export function defaultActor(): string {
  return `${hostname()}:${process.pid}`;
}

/** Options of `refs.update`: how often and how patiently to retry when another writer moved the ref first. */
export interface UpdateOptions {
  /** Tries in all, the first included (default 16). */
  attempts?: number;
  /** Backoff between tries: random in [min, min·2^try], at most `max` (default 2 and 250 ms). */
  backoffMs?: { min?: number; max?: number };
}

/** What `refs.update`'s function sees: the ref and the datum it points to (both `null` when it does not exist). */
export interface RefState {
  readonly ref: Ref | null;
  readonly datum: Datum | null;
}

/** A transaction under construction: operations are added in order and committed together. */
export interface TxBuilder {
  put(datum: Datum): TxBuilder;
  delete(id: string): TxBuilder;
  setRef(name: string, target: string, options?: { expect?: RefExpectation }): TxBuilder;
  deleteRef(name: string, options?: { expect?: RefExpectation }): TxBuilder;
  /** Reads a ref now (outside the transaction; use `expect` to make the commit depend on it). */
  getRef(name: string): Promise<Ref | null>;
}

/** Named, versioned pointers to datums, moved only by compare-and-set. */
export class StoreRefs {
  readonly #host: RefsHost;

  constructor(host: RefsHost) {
    this.#host = host;
  }

  /** The ref, or `null`. */
  async get(name: string): Promise<Ref | null> {
    assertRefName(name);
    const tier = await this.#tier("refs");
    return (tier.getRef as NonNullable<Adapter["getRef"]>).call(tier, name);
  }

  /** Refs whose names start with `prefix` (default all), by name in code point order. */
  async list(prefix = ""): Promise<Ref[]> {
    if (typeof prefix !== "string") throw dgentError("DGENT_INVALID_OPTIONS", "a ref prefix is a string");
    const tier = await this.#tier("refs");
    return (tier.listRefs as NonNullable<Adapter["listRefs"]>).call(tier, prefix);
  }

  /** The ref's last moves, newest first (each tier keeps the last `REFLOG_LIMIT`, 100). */
  async log(name: string, limit = REFLOG_LIMIT): Promise<ReflogEntry[]> {
    assertRefName(name);
    if (!Number.isInteger(limit) || limit < 1 || limit > REFLOG_LIMIT) {
      throw dgentError("DGENT_INVALID_OPTIONS", `a reflog limit is an integer from 1 to ${REFLOG_LIMIT}, got ${String(limit)}`);
    }
    const tier = await this.#tier("refs");
    return (tier.reflog as NonNullable<Adapter["reflog"]>).call(tier, name, limit);
  }

  /**
   * Points `name` at datum `target`. With `expect`, only if the ref still holds that version or
   * target, or does not exist (`{ absent: true }`); otherwise `DGENT_REF_CONFLICT`, nothing changed.
   */
  set(name: string, target: string, options: { expect?: RefExpectation } = {}): Promise<Ref> {
    // Not async: while the store is open the tier's own promise is handed back (no extra frame or tick).
    try {
      assertRefName(name);
      assertId(target, "ref target");
      assertExpectation(options.expect);
      const ready = this.#host.ready();
      if (ready !== OPENED) return ready.then(() => this.#set(name, target, options.expect));
      return this.#set(name, target, options.expect);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #set(name: string, target: string, expect: RefExpectation | undefined): Promise<Ref> {
    const tier = refTier(this.#host.router, "refs");
    return Promise.resolve((tier.setRef as NonNullable<Adapter["setRef"]>).call(tier, name, target, expect, this.#move()));
  }

  /** Deletes the ref (if it meets `expect`); true when it existed. */
  async delete(name: string, options: { expect?: RefExpectation } = {}): Promise<boolean> {
    assertRefName(name);
    assertExpectation(options.expect);
    const tier = await this.#tier("refs");
    return (tier.deleteRef as NonNullable<Adapter["deleteRef"]>).call(tier, name, options.expect, this.#move());
  }

  /**
   * Read → compute → compare-and-set, retried when another writer moved the ref in between: `fn`
   * gets the ref and its datum and returns the next datum (or `null` to leave the ref as it is).
   * The datum is put and the ref moved to it expecting the version that was read (or absence), in
   * one transaction where the tier has them. Resolves to the ref as left; after `attempts` tries
   * the last `DGENT_REF_CONFLICT` is thrown (with `details.attempts`).
   */
  async update(name: string, fn: (state: RefState) => Datum | null | Promise<Datum | null>, options: UpdateOptions = {}): Promise<Ref | null> {
    assertRefName(name);
    const attempts = options.attempts ?? 16;
    const min = options.backoffMs?.min ?? 2;
    const max = options.backoffMs?.max ?? 250;
    if (!Number.isInteger(attempts) || attempts < 1) throw dgentError("DGENT_INVALID_OPTIONS", `attempts must be a positive integer, got ${String(attempts)}`);
    for (let attempt = 1; ; attempt++) {
      const ref = await this.get(name);
      const datum = ref === null ? null : await this.#host.get(ref.target);
      const next = await fn({ ref, datum });
      if (next === null) return ref;
      const expect: RefExpectation = ref === null ? { absent: true } : { version: ref.version };
      try {
        const tier = await this.#tier("refs");
        if (tier.capabilities.transactions && tier.commit) {
          const result = await commitOn(this.#host, tier, [{ op: "put", datum: next }, { op: "setRef", name, target: next.id, expect }], this.#move(), false);
          return (result.results[1] as { ref: Ref }).ref;
        }
        await this.#host.put(next);
        return await this.set(name, next.id, { expect });
      } catch (error) {
        if (!isDgentError(error, "DGENT_REF_CONFLICT")) throw error;
        if (attempt >= attempts) {
          throw dgentError("DGENT_REF_CONFLICT", `${error.message} (gave up after ${attempts} tries)`, {
            unit: error.unit,
            cause: error,
            details: { ...error.details, attempts },
          });
        }
        const wait = Math.min(max, min * 2 ** (attempt - 1) * (1 + Math.random()));
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  #move(): RefMove {
    return { by: this.#host.actor, at: Date.now() };
  }

  async #tier(capability: "refs" | "transactions"): Promise<Adapter> {
    await this.#host.ready();
    return refTier(this.#host.router, capability);
  }
}

/**
 * Commits puts, deletes and ref moves all or nothing, on the store's preferred tier. `ops` is an
 * array of operations, or a function that adds them to a builder (and may read refs first).
 */
export function transaction(host: RefsHost, ops: readonly TxOp[] | ((tx: TxBuilder) => void | Promise<void>)): Promise<TxResult> {
  const ready = host.ready();
  // An array on an open store: no frame of its own, the commit's promise handed back.
  if (typeof ops !== "function" && ready === OPENED) {
    try {
      assertTxOps(ops);
      return commitOn(host, refTier(host.router, "transactions"), ops, { by: host.actor, at: Date.now() }, true);
    } catch (error) {
      return Promise.reject(error);
    }
  }
  return collectAndCommit(host, ready, ops);
}

async function collectAndCommit(host: RefsHost, ready: Promise<void>, ops: readonly TxOp[] | ((tx: TxBuilder) => void | Promise<void>)): Promise<TxResult> {
  await ready;
  let list: readonly TxOp[];
  if (typeof ops === "function") {
    const collected: TxOp[] = [];
    const refs = new StoreRefs(host);
    const builder: TxBuilder = {
      put: (datum) => (collected.push({ op: "put", datum }), builder),
      delete: (id) => (collected.push({ op: "delete", id }), builder),
      setRef: (name, target, options = {}) => (collected.push({ op: "setRef", name, target, ...(options.expect ? { expect: options.expect } : {}) }), builder),
      deleteRef: (name, options = {}) => (collected.push({ op: "deleteRef", name, ...(options.expect ? { expect: options.expect } : {}) }), builder),
      getRef: (name) => refs.get(name),
    };
    await ops(builder);
    list = collected;
  } else {
    list = ops;
  }
  assertTxOps(list);
  const tier = refTier(host.router, "transactions");
  return commitOn(host, tier, list, { by: host.actor, at: Date.now() }, true);
}

/**
 * A commit with the store's hooks: `beforePut` / `beforeDelete` before, `afterPut` / `afterDelete`
 * after. `checked`: the caller has validated `ops` already (what the hooks return is validated
 * again). With no taps on those hooks, the tier's own promise is handed back.
 */
function commitOn(host: RefsHost, tier: Adapter, ops: readonly TxOp[], move: RefMove, checked: boolean): Promise<TxResult> {
  const hooks = host.hooks;
  if (hooks.beforePut.taps.length || hooks.beforeDelete.taps.length || hooks.afterPut.taps.length || hooks.afterDelete.taps.length) {
    return commitWithHooks(hooks, tier, ops, move);
  }
  try {
    if (!checked) assertTxOps(ops);
    return Promise.resolve((tier.commit as NonNullable<Adapter["commit"]>).call(tier, ops, move));
  } catch (error) {
    return Promise.reject(error);
  }
}

async function commitWithHooks(hooks: Readonly<StoreHooks>, tier: Adapter, ops: readonly TxOp[], move: RefMove): Promise<TxResult> {
  let final = ops;
  if (hooks.beforePut.taps.length || hooks.beforeDelete.taps.length) {
    const out: TxOp[] = [];
    for (const op of ops) {
      if (op.op === "put" && hooks.beforePut.taps.length) out.push({ op: "put", datum: await beforePutDatum(hooks.beforePut, op.datum) });
      else {
        if (op.op === "delete" && hooks.beforeDelete.taps.length) await hooks.beforeDelete.promise(op.id);
        out.push(op);
      }
    }
    final = out;
  }
  assertTxOps(final);
  const result = await (tier.commit as NonNullable<Adapter["commit"]>).call(tier, final, move);
  if (hooks.afterPut.taps.length || hooks.afterDelete.taps.length) {
    for (const [i, r] of result.results.entries()) {
      const op = final[i] as TxOp;
      if (r.op === "put" && op.op === "put" && hooks.afterPut.taps.length) await hooks.afterPut.promise(op.datum, { tier: tier.name, input: (ops[i] as { datum: Datum }).datum });
      if (r.op === "delete" && hooks.afterDelete.taps.length) await hooks.afterDelete.promise(r.id, r.existed);
    }
  }
  return result;
}

/** The tier refs live on: the preferred tier, if it is up and declares the capability. */
export function refTier(router: Router, capability: "refs" | "transactions"): Adapter {
  const state = router.preferred;
  const tier = state.adapter;
  if (!tier.capabilities[capability]) {
    throw dgentError("DGENT_UNSUPPORTED", `the tier "${tier.name}" does not support ${capability}; compose the store with a tier that does (its capabilities.${capability})`, {
      details: { tier: tier.name, capability },
    });
  }
  if (!state.up) {
    throw dgentError("DGENT_UNAVAILABLE", `refs live on the tier "${tier.name}", which is down; ref moves and transactions are refused until it returns rather than forked onto a lower tier`, {
      details: { tier: tier.name, capability },
      cause: state.lastError ?? undefined,
    });
  }
  return tier;
}

/**
 * Moves every ref of `from` up to `to` (the upgrader does this when it promotes a tier's datums,
 * so refs follow their targets). A ref `to` does not hold is created there; one `to` already
 * holds under the same name is left as `to` has it, and the lower one is reported through
 * `warn` (the tier that takes writes decides). Each ref leaves `from` only after it is on `to`.
 * Returns how many moved.
 */
export async function promoteRefs(from: Adapter, to: Adapter, move: RefMove, warn: (message: string, details: Readonly<Record<string, unknown>>) => void): Promise<number> {
  if (!from.capabilities.refs || !from.listRefs || !from.deleteRef) return 0;
  const refs = await from.listRefs("");
  if (refs.length === 0) return 0;
  if (!to.capabilities.refs || !to.setRef) {
    warn(`${refs.length} refs on "${from.name}" stay there: "${to.name}" does not support refs`, { tier: to.name, refs: refs.length });
    return 0;
  }
  let moved = 0;
  const kept: string[] = [];
  for (const ref of refs) {
    try {
      await to.setRef(ref.name, ref.target, { absent: true }, move);
      moved++;
    } catch (error) {
      if (!isDgentError(error, "DGENT_REF_CONFLICT")) throw error;
      kept.push(ref.name);
    }
    await from.deleteRef(ref.name, { version: ref.version }, move).catch((error: unknown) => {
      if (!isDgentError(error, "DGENT_REF_CONFLICT")) throw error;
    });
  }
  if (kept.length > 0) {
    warn(`${kept.length} refs on "${from.name}" were not promoted: "${to.name}" already holds refs of the same names, which win: ${kept.slice(0, 20).join(", ")}${kept.length > 20 ? ", …" : ""}`, {
      from: from.name,
      to: to.name,
      names: kept,
    });
  }
  return moved;
}
