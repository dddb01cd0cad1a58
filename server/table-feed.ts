/**
 * A change stream read from the tier's own change table (adapters/sqlite/changes.ts): the tier
 * logs every put, delete and ref move inside the writing transaction, numbered by the table, so
 * the server writes nothing of its own. After a write of this process the feed reads the rows
 * past its watermark and delivers them; writes of other processes or connections to the same
 * file are picked up by a poll every `POLL_MS` while someone is subscribed. Until the first
 * subscription the store is not even tapped: a write costs the feed nothing.
 */
import type { Store } from "../core/store.js";
import type { ChangeTable } from "../adapters/sqlite/changes.js";
import type { Change, ChangeInput, Feed, Listener } from "./changes.js";

/** How often, while someone listens, the table is read for other processes' writes (ms). */
export const POLL_MS = 200;
const PAGE = 256;
const PRUNE_EVERY = 1000;
/** How often the table is pruned to the retention besides every `PRUNE_EVERY` writes seen (ms). */
export const PRUNE_MS = 60_000;

/** The change table of a store whose one tier keeps one, or null. */
export function changeTableOf(store: Store): (() => ChangeTable | null) | null {
  const tiers = store.tiers;
  if (tiers.length !== 1) return null;
  const tier = tiers[0] as { changeTable?: () => ChangeTable | null };
  return typeof tier.changeTable === "function" ? () => (tier.changeTable as () => ChangeTable | null).call(tier) : null;
}

export class TableFeed implements Feed {
  readonly namespace: string;
  readonly wantsDeletedTags = false;
  readonly #store: Store;
  readonly #open: () => ChangeTable | null;
  readonly #retain: number;
  readonly #listeners = new Set<Listener>();
  readonly #init: Promise<void>;
  #table: ChangeTable | null = null;
  /** Every event up to this number was delivered to the listeners there were at the time. */
  #delivered = 0;
  #writes = 0;
  #timer: NodeJS.Timeout | null = null;
  #pruner: NodeJS.Timeout | null = null;

  readonly #attach: () => void;
  #attached = false;

  /** `attach` is called once, at the first subscription: it routes this process's writes to `record`. */
  constructor(store: Store, open: () => ChangeTable | null, retain = Infinity, attach: () => void = () => undefined) {
    this.namespace = store.namespace;
    this.#attach = attach;
    this.#store = store;
    this.#open = open;
    this.#retain = retain;
    this.#init = this.#load();
    this.#init.catch(() => undefined);
  }

  async #load(): Promise<void> {
    await this.#store.open();
    const table = this.#open();
    // A read-only file without a change table: nothing is ever written, so the stream stays empty.
    if (table === null) return;
    this.#table = table;
    this.#delivered = table.last();
    this.#prune();
    if (Number.isFinite(this.#retain)) {
      this.#pruner = setInterval(() => this.#prune(), PRUNE_MS);
      this.#pruner.unref();
    }
  }

  ready(): Promise<void> {
    return this.#init;
  }

  get lastSeq(): number {
    if (this.#table === null) return this.#delivered;
    return this.#listeners.size > 0 ? this.#delivered : this.#table.last();
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  async record(_input: ChangeInput): Promise<void> {
    await this.#init;
    if (this.#listeners.size > 0) this.#poll();
    if (++this.#writes % PRUNE_EVERY === 0) this.#prune();
  }

  subscribe(listener: Listener): { watermark: number; unsubscribe: () => void } {
    const table = this.#table;
    if (!this.#attached) {
      this.#attached = true;
      this.#attach();
    }
    if (table !== null && this.#listeners.size === 0) this.#delivered = table.last();
    else this.#poll();
    this.#listeners.add(listener);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#poll(), POLL_MS);
      this.#timer.unref();
    }
    return {
      watermark: this.#delivered,
      unsubscribe: () => {
        this.#listeners.delete(listener);
        if (this.#listeners.size === 0) this.#stop();
      },
    };
  }

  /** Delivers the rows past the watermark, in order. Synchronous, so deliveries never interleave. */
  #poll(): void {
    const table = this.#table;
    if (table === null || this.#listeners.size === 0) return;
    let rows;
    do {
      try {
        rows = table.since(this.#delivered, Number.MAX_SAFE_INTEGER, PAGE);
      } catch {
        return; // the store is closing or busy; the next write or poll reads on
      }
      for (const row of rows) {
        const change: Change = row;
        this.#delivered = row.seq;
        for (const listener of this.#listeners) listener(change);
      }
    } while (rows.length === PAGE);
  }

  async *replay(from: number, to: number): AsyncGenerator<Change> {
    await this.#init;
    const table = this.#table;
    while (table !== null && from < to) {
      const rows = table.since(from, to, PAGE);
      yield* rows;
      if (rows.length < PAGE) return;
      from = (rows[rows.length - 1] as { seq: number }).seq;
    }
  }

  async oldest(): Promise<number> {
    await this.#init;
    return this.#table?.oldest() ?? 0;
  }

  /** Keeps the newest `retain` events. */
  #prune(): void {
    const table = this.#table;
    if (table === null || !Number.isFinite(this.#retain)) return;
    try {
      const from = table.last() - this.#retain + 1;
      if (from > 1) table.prune(from);
    } catch {
      // Busy with another writer: the next prune catches up.
    }
  }

  #stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  close(): void {
    this.#listeners.clear();
    this.#stop();
    if (this.#pruner !== null) clearInterval(this.#pruner);
    this.#pruner = null;
  }
}
