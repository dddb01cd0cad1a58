/**
 * An ordered, per-session log of values on a dgent store: what LangChain's chat message history
 * and the OpenAI Agents `Session` are made of. Framework-free (both integrations import it).
 *
 * Layout under `<prefix><session>` (the session id with `%` and `/` escaped):
 *
 * - each item is a datum `…/item/<clock>-<random>`: `clock` is 16 digits of a hybrid logical
 *   clock in microseconds, `max(now·1000, clock of the item before + 1)`, so ids sort in log order
 *   within one session whatever the clocks of the writers; `createdAt = ⌊clock / 1000⌋` never
 *   goes back, so `order: "newest"` / `"oldest"` queries (createdAt, then id) return log order;
 *   the causal parent is the item before (`causalChain` walks the log);
 * - the ref `…/head` names the newest item; every change of the log (append, pop, rewrite, clear)
 *   moves it by compare-and-set, expecting the target it read. Item ids never repeat (the random
 *   part), so a `{ target }` expectation cannot be fooled by a head that left and came back —
 *   unless the log came back to exactly what was read (an append then a pop), when the change
 *   still applies to the log it was planned on.
 *
 * A change is planned on a snapshot (the head read first, then the items it needs) and committed
 * in one `store.transaction` with the head move; when the head moved meanwhile the commit fails
 * with `DGENT_REF_CONFLICT` and the change is planned again on a fresh snapshot. Within one
 * process, changes of one session through one store object queue.
 */
import { randomBytes } from "node:crypto";
import type { Datum, Store, TxOp } from "../../compose/index.js";
import { makeDatum } from "../../core/datum.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import type { Ref } from "../../core/refs.js";
import { CODEC_KEY, decodeWith, encodeWith, type Codec } from "../../patterns/codec/codec.js";
import { escapeKey } from "../../patterns/state/chain.js";
import { Retry, isRefConflict, serialized, type RetryOptions } from "../../patterns/state/commit.js";

/** What a log needs from a store (a `Store` has all of it). */
export type LogHost = Pick<Store, "put" | "get" | "delete" | "refs" | "transaction" | "query">;

/** Digits of the clock in an item id: microseconds since the epoch fit in 16 until the year 2286. */
export const CLOCK_DIGITS = 16;
/** Items per page when the whole log is read. */
export const PAGE = 10_000;

/** One item of the log. */
export interface Entry<T> {
  readonly id: string;
  readonly value: T;
  readonly datum: Datum;
}

/** What the planner of a change sees: the head it read and the items it may read. */
export interface Snapshot<T> {
  /** The head ref as read at the start of this try (`null`: the log is empty). */
  readonly head: Ref | null;
  /** The last `n` items, oldest first. */
  last(n: number): Promise<Entry<T>[]>;
  /** Every item, oldest first. */
  all(): Promise<Entry<T>[]>;
}

/** A planned change: drop some items, append values after `after`, put extra datums, all at once. */
export interface Change<T, R> {
  /** The item the new values follow (`null`: they start the log; default: the head). */
  readonly after?: string | null;
  /** Ids of items to delete (they must all come after `after`). */
  readonly drop?: readonly string[];
  readonly append?: readonly T[];
  /** Other datums committed with the change (an operation record). */
  readonly puts?: readonly Datum[];
  /** What the change resolves to. */
  readonly result: R;
}

export interface SessionLogOptions<T> {
  readonly store: LogHost;
  /** Ids and the ref start with it, then the escaped session id. */
  readonly prefix: string;
  readonly session: string;
  readonly codec: Codec<T>;
  /** Tags of one item (besides `session` and `dgent.codec`). */
  readonly tags?: (value: T) => Record<string, string>;
  readonly retry?: RetryOptions | undefined;
  /** Names the integration in errors. */
  readonly unit: string;
}

/** Escapes a session id for ids: `%` → `%25`, `/` → `%2F` (so one session's prefix never covers another's). */
export function escapeSession(session: string, unit: string): string {
  if (typeof session !== "string" || session.length === 0) {
    throw dgentError("DGENT_INVALID_OPTIONS", `a session id is a non-empty string, got ${JSON.stringify(session)}`, { unit });
  }
  return escapeKey(session);
}

/** The clock in an item id (`…/item/<clock>-<random>`), or null when the id is not one. */
export function clockOf(id: string, itemPrefix: string): number | null {
  if (!id.startsWith(itemPrefix)) return null;
  const digits = id.slice(itemPrefix.length, itemPrefix.length + CLOCK_DIGITS);
  return /^\d{16}$/.test(digits) ? Number(digits) : null;
}

export class SessionLog<T> {
  readonly store: LogHost;
  readonly session: string;
  /** `<prefix><escaped session>` */
  readonly base: string;
  /** Items' ids start with it. */
  readonly itemPrefix: string;
  /** The head ref's name. */
  readonly headRef: string;
  readonly codec: Codec<T>;
  readonly unit: string;
  readonly #tags: (value: T) => Record<string, string>;
  readonly #retry: Retry;
  #noTransactions = false;

  constructor(options: SessionLogOptions<T>) {
    this.store = options.store;
    this.session = options.session;
    this.unit = options.unit;
    this.base = `${options.prefix}${escapeSession(options.session, options.unit)}`;
    this.itemPrefix = `${this.base}/item/`;
    this.headRef = `${this.base}/head`;
    this.codec = options.codec;
    this.#tags = options.tags ?? (() => ({}));
    this.#retry = new Retry(options.retry, options.unit);
  }

  /** Every item, oldest first. A log longer than a page is read again if it changed while being paged. */
  async all(): Promise<Entry<T>[]> {
    for (let attempt = 1; ; attempt++) {
      const first = await this.store.query({ prefix: this.itemPrefix, order: "oldest", limit: PAGE });
      if (first.cursor === null) return first.items.map((d) => this.entry(d));
      // More than one page: the pages are one snapshot only if the head did not move meanwhile.
      const before = await this.store.refs.get(this.headRef);
      const datums = [...first.items];
      let cursor: string | null = first.cursor;
      while (cursor !== null) {
        const page: { items: Datum[]; cursor: string | null } = await this.store.query({ prefix: this.itemPrefix, order: "oldest", limit: PAGE, cursor });
        datums.push(...page.items);
        cursor = page.cursor;
      }
      const after = await this.store.refs.get(this.headRef);
      if (sameRef(before, after) || attempt >= this.#retry.attempts) return datums.map((d) => this.entry(d));
    }
  }

  /** The last `n` items, oldest first (one query, newest first, reversed). */
  async last(n: number): Promise<Entry<T>[]> {
    if (n <= 0) return [];
    const page = await this.store.query({ prefix: this.itemPrefix, order: "newest", limit: Math.min(n, 100_000) });
    return page.items.reverse().map((d) => this.entry(d));
  }

  /** The datum of an item, decoded. */
  entry(datum: Datum): Entry<T> {
    return { id: datum.id, value: decodeWith(datum, this.codec), datum };
  }

  /** Appends `values` after the newest item, in order, all or nothing. */
  append(values: readonly T[], puts: readonly Datum[] = []): Promise<void> {
    if (values.length === 0 && puts.length === 0) return Promise.resolve();
    return this.change(() => ({ append: values, puts, result: undefined }));
  }

  /**
   * Removes the newest item and returns it (`undefined` when the log is empty). The newest item is
   * the head's target and the one before it its causal parent, so the head's compare-and-set
   * decides which pop gets an item: two pops never return the same one, with or without
   * transactions (a query could still list an item whose delete has not happened yet).
   */
  pop(): Promise<T | undefined> {
    return this.change(async (s) => {
      if (s.head === null) return null;
      const newest = await this.store.get(s.head.target);
      if (newest === null) {
        // A head without its item (a tier without transactions, after a crash): fall back to the items listed.
        const [before, last] = padLast(await s.last(2));
        if (last === undefined) return { after: null, drop: [], result: undefined };
        return { after: before?.id ?? null, drop: [last.id], result: last.value };
      }
      return { after: newest.causalParent, drop: [newest.id], result: this.entry(newest).value };
    });
  }

  /** Deletes every item, the head, and the datums under `alsoUnder` (prefixes), at once; how many items there were. */
  clear(alsoUnder: readonly string[] = []): Promise<number> {
    return this.change(async (s) => {
      const ids = await this.idsUnder(this.itemPrefix);
      const extra: string[] = [];
      for (const prefix of alsoUnder) extra.push(...(await this.idsUnder(prefix)));
      if (s.head === null && ids.length === 0 && extra.length === 0) return null;
      return { after: null, drop: [...ids, ...extra], result: ids.length };
    }).then((n) => n ?? 0);
  }

  /**
   * Plans a change on a fresh snapshot and commits it with the head move; again on a fresh
   * snapshot when another writer moved the head first. `plan` returning `null` changes nothing
   * (the promise resolves to `undefined`).
   */
  change<R>(plan: (snapshot: Snapshot<T>) => Change<T, R> | null | Promise<Change<T, R> | null>): Promise<R> {
    return serialized(this.store, this.headRef, async () => {
      for (let attempt = 1; ; attempt++) {
        const head = await this.store.refs.get(this.headRef);
        const snapshot: Snapshot<T> = { head, last: (n) => this.last(n), all: () => this.all() };
        const change = await plan(snapshot);
        if (change === null) return undefined as R;
        try {
          await this.#commit(head, change);
          return change.result;
        } catch (error) {
          if (!isRefConflict(error)) throw error;
          await this.#retry.afterConflict(error, attempt, this.headRef);
        }
      }
    });
  }

  /** The datums of `values` following `after`, ids and clocks in log order. */
  datums(values: readonly T[], after: string | null): Datum[] {
    let clock = Math.max(Date.now() * 1000, (after === null ? 0 : (clockOf(after, this.itemPrefix) ?? 0)) + 1);
    let parent = after;
    const out: Datum[] = [];
    for (const value of values) {
      const id = `${this.itemPrefix}${String(clock).padStart(CLOCK_DIGITS, "0")}-${randomBytes(4).toString("hex")}`;
      const datum = makeDatum({
        id,
        content: encodeWith(value, this.codec, id),
        causalParent: parent,
        createdAt: Math.floor(clock / 1000),
        metadata: { ...this.#tags(value), session: this.session, [CODEC_KEY]: this.codec.name },
      });
      out.push(datum);
      parent = id;
      clock++;
    }
    return out;
  }

  async #commit(head: Ref | null, change: Change<T, unknown>): Promise<void> {
    const after = change.after === undefined ? (head?.target ?? null) : change.after;
    const datums = this.datums(change.append ?? [], after);
    const newHead = datums.length > 0 ? (datums[datums.length - 1] as Datum).id : after;
    const expect = head === null ? ({ absent: true } as const) : { target: head.target };
    const ops: TxOp[] = [];
    // The head move first: a lost race is reported as the ref conflict it is.
    if (newHead !== null) ops.push({ op: "setRef", name: this.headRef, target: newHead, expect });
    else if (head !== null) ops.push({ op: "deleteRef", name: this.headRef, expect });
    for (const datum of [...datums, ...(change.puts ?? [])]) ops.push({ op: "put", datum });
    const drop = change.drop ?? [];
    if (ops.length === 0 && drop.length === 0) return;
    if (!this.#noTransactions) {
      try {
        await this.store.transaction([...ops, ...drop.map((id): TxOp => ({ op: "delete", id }))]);
        return;
      } catch (error) {
        if (!(isDgentError(error, "DGENT_UNSUPPORTED") && error.details.capability === "transactions")) throw error;
        this.#noTransactions = true;
      }
    }
    await this.#commitInSteps(ops, drop);
  }

  /**
   * On a tier with refs but no transactions (S3, GCS): the new datums first, then the head move
   * by compare-and-set, then the deletes. When a put fails or the move loses, the datums already
   * put are deleted again (a crash in between leaves them behind, never a wrong head).
   */
  async #commitInSteps(ops: readonly TxOp[], drop: readonly string[]): Promise<void> {
    const put: string[] = [];
    try {
      for (const op of ops) {
        if (op.op !== "put") continue;
        await this.store.put(op.datum);
        put.push(op.datum.id);
      }
      for (const op of ops) {
        if (op.op === "setRef") await this.store.refs.set(op.name, op.target, op.expect ? { expect: op.expect } : {});
        else if (op.op === "deleteRef") await this.store.refs.delete(op.name, op.expect ? { expect: op.expect } : {});
      }
    } catch (error) {
      for (const id of put) await this.store.delete(id).catch(() => undefined);
      throw error;
    }
    for (const id of drop) await this.store.delete(id);
  }

  /** The ids of every datum under `prefix`. */
  async idsUnder(prefix: string): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: string[]; cursor: string | null } = await this.store.query({ prefix, select: "ids", limit: PAGE, ...(cursor !== null ? { cursor } : {}) });
      ids.push(...page.items);
      cursor = page.cursor;
    } while (cursor !== null);
    return ids;
  }
}

function sameRef(a: Ref | null, b: Ref | null): boolean {
  return a === null ? b === null : b !== null && a.target === b.target && a.version === b.version;
}

/** `[before, newest]` of the last two items (`before` undefined when there is one). */
function padLast<E>(items: E[]): [E | undefined, E | undefined] {
  if (items.length === 0) return [undefined, undefined];
  if (items.length === 1) return [undefined, items[0]];
  return [items[0], items[1]];
}
