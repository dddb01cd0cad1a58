/**
 * The durable change sequence behind `/v1/ns/:ns/changes`.
 *
 * Every change to a served namespace — a put or delete through its store (from HTTP or from
 * code in the same process), a ref move through the API — gets the next number of that
 * namespace's sequence and is written to the **change log** before it is delivered or the write
 * that caused it is acknowledged. The change log is a dgent store of its own: one datum per event,
 * id `<namespace>/<seq, 16 digits>`, `createdAt` = seq, content = the event as JSON. With a
 * persistent change log (`dgent serve` keeps it in SQLite beside the data) a client resumes with
 * `Last-Event-ID` after a server restart: events up to the last one written are read back from the
 * log, later ones arrive live, each exactly once and in order.
 */
import type { Datum } from "../core/datum.js";
import type { NumberedChange } from "../core/protocol.js";
import { dgentError } from "../core/errors.js";
import type { Store } from "../core/store.js";

export type ChangeOp = NumberedChange["op"];

/** One event of the stream (the SSE `data:` line; the SSE `id:` is `seq`; `at`: when the server or the tier recorded it). */
export type Change = NumberedChange;

export type ChangeInput = Omit<Change, "seq" | "at">;

/** What a subscriber wants: ids (or ref names) starting with `prefix`, datums carrying every tag of `tags`. */
export interface ChangeFilter {
  readonly prefix: string;
  readonly tags: readonly (readonly [string, string])[];
}

export function matches(filter: ChangeFilter, change: Change): boolean {
  if (!change.key.startsWith(filter.prefix)) return false;
  if (filter.tags.length === 0) return true;
  const meta = change.metadata;
  if (meta === undefined) return false;
  for (const [k, v] of filter.tags) if (!Object.hasOwn(meta, k) || meta[k] !== v) return false;
  return true;
}

export type Listener = (change: Change) => void;

/**
 * One namespace's change stream, whatever keeps it: `ChangeFeed` (events written to a change-log
 * store by the server) or `TableFeed` (server/table-feed.ts: the tier's own change table).
 */
export interface Feed {
  readonly namespace: string;
  /** Resolves once the last number is known. */
  ready(): Promise<void>;
  /** The last number delivered (every event up to it can be read back). */
  readonly lastSeq: number;
  readonly subscribers: number;
  /** Whether deletes must read the datum first to report its tags (the table knows them itself). */
  readonly wantsDeletedTags: boolean;
  /** A write of this process changed `input.key`; resolves once its event is logged (and delivered, in order). */
  record(input: ChangeInput): Promise<void>;
  /** Subscribes to events after the returned watermark; every event up to it can be replayed. */
  subscribe(listener: Listener): { watermark: number; unsubscribe: () => void };
  /** The logged events with `from < seq <= to`, oldest first. */
  replay(from: number, to: number): AsyncGenerator<Change>;
  /** The oldest number still held (0 when empty). */
  oldest(): Promise<number>;
  /** Stops what the feed runs on its own (timers); the store stays open. */
  close(): void;
}

const PRUNE_EVERY = 1000;
const pad = (seq: number) => String(seq).padStart(16, "0");

/** One namespace's sequence: numbering, the log, delivery in order. */
export class ChangeFeed implements Feed {
  readonly namespace: string;
  readonly wantsDeletedTags = true;
  readonly #log: Store;
  readonly #listeners = new Set<Listener>();
  /** The last number handed out. */
  #next = 0;
  /** Every event up to this number is in the log and was delivered. */
  #delivered = 0;
  /** Written to the log, waiting for an earlier number to be written. */
  readonly #ready = new Map<number, Change | null>();
  readonly #init: Promise<void>;

  /** Events kept in the log per namespace; older ones are pruned every `PRUNE_EVERY` events. */
  readonly #retain: number;

  constructor(namespace: string, log: Store, retain = Infinity) {
    this.namespace = namespace;
    this.#log = log;
    this.#retain = retain;
    this.#init = this.#load();
    this.#init.catch(() => undefined);
  }

  async #load(): Promise<void> {
    const page = await this.#log.query({ prefix: `${this.namespace}/`, order: "newest", limit: 1, select: "ids" });
    const last = page.items[0];
    const seq = last === undefined ? 0 : Number(last.slice(this.namespace.length + 1));
    this.#next = seq;
    this.#delivered = seq;
  }

  /** Resolves once the log's last number is known. */
  ready(): Promise<void> {
    return this.#init;
  }

  /** The last number delivered (every event up to it can be read back). */
  get lastSeq(): number {
    return this.#delivered;
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  /**
   * Numbers `input`, writes it to the log, then delivers it after every earlier event; resolves
   * once it is in the log. Events recorded while a write is in flight go to the log together in
   * the next one (one `putMany`: one transaction on a transactional tier).
   */
  async record(input: ChangeInput): Promise<void> {
    await this.#init;
    const seq = ++this.#next;
    const change: Change = { seq, ...input, at: Date.now() };
    return new Promise<void>((resolve, reject) => {
      this.#batch.push({ change, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  readonly #batch: { change: Change; resolve: () => void; reject: (error: unknown) => void }[] = [];
  #flushing = false;

  async #flush(): Promise<void> {
    this.#flushing = true;
    while (this.#batch.length > 0) {
      const batch = this.#batch.splice(0, 512);
      const datums = batch.map(({ change }) => ({ id: `${this.namespace}/${pad(change.seq)}`, content: Buffer.from(JSON.stringify(change)), createdAt: change.seq, causalParent: null, metadata: {} }));
      try {
        await this.#log.putMany(datums);
      } catch (error) {
        for (const b of batch) {
          this.#settle(b.change.seq, null);
          b.reject(dgentError("DGENT_BACKEND_ERROR", `the change log refused event ${b.change.seq} of ${this.namespace}`, { unit: "server", cause: error }));
        }
        continue;
      }
      for (const b of batch) {
        this.#settle(b.change.seq, b.change);
        b.resolve();
        if (b.change.seq % PRUNE_EVERY === 0 && Number.isFinite(this.#retain)) void this.prune(this.#retain).catch(() => undefined);
      }
    }
    this.#flushing = false;
  }

  #settle(seq: number, change: Change | null): void {
    this.#ready.set(seq, change);
    while (this.#ready.has(this.#delivered + 1)) {
      const next = this.#ready.get(this.#delivered + 1) ?? null;
      this.#ready.delete(++this.#delivered);
      if (next !== null) for (const listener of this.#listeners) listener(next);
    }
  }

  /**
   * Subscribes `listener` to events after the current watermark and returns that watermark:
   * every event up to it is in the log (read it with `replay`), every later one reaches `listener`.
   */
  subscribe(listener: Listener): { watermark: number; unsubscribe: () => void } {
    this.#listeners.add(listener);
    return { watermark: this.#delivered, unsubscribe: () => void this.#listeners.delete(listener) };
  }

  /** The logged events with `from < seq <= to`, oldest first, page by page. */
  async *replay(from: number, to: number): AsyncGenerator<Change> {
    let cursor: string | undefined;
    while (from < to) {
      const page = await this.#log.query({ prefix: `${this.namespace}/`, after: from, before: to + 1, order: "oldest", limit: 256, ...(cursor ? { cursor } : {}) });
      for (const datum of page.items as Datum[]) yield JSON.parse(Buffer.from(datum.content).toString("utf8")) as Change;
      if (page.cursor === null) return;
      cursor = page.cursor;
    }
  }

  /** The oldest number the log still holds (0 when empty). */
  async oldest(): Promise<number> {
    const page = await this.#log.query({ prefix: `${this.namespace}/`, order: "oldest", limit: 1, select: "ids" });
    const first = page.items[0];
    return first === undefined ? 0 : Number(first.slice(this.namespace.length + 1));
  }

  close(): void {
    // Nothing runs on its own.
  }

  /** Drops events older than the newest `keep` from the log. */
  async prune(keep: number): Promise<number> {
    const before = this.#delivered - keep + 1;
    if (before <= 1) return 0;
    return this.#log.deleteMany({ prefix: `${this.namespace}/`, before });
  }
}

/**
 * Where a store's hooks send their changes. A store is tapped once for its lifetime (taps cannot
 * be removed); a server that starts over the same store takes the slot over, one that closes
 * empties it.
 */
export interface FeedSlot {
  feed: Feed | null;
}

const SLOTS = new WeakMap<Store, FeedSlot>();

/** The store's slot if it was tapped already (never taps). */
export function tappedFeedSlot(store: Store): FeedSlot | undefined {
  return SLOTS.get(store);
}

export function feedSlot(store: Store): FeedSlot {
  let slot = SLOTS.get(store);
  if (slot !== undefined) return slot;
  const s: FeedSlot = { feed: null };
  slot = s;
  SLOTS.set(store, s);
  const deleting = new Map<string, Readonly<Record<string, string>>>();
  store.hooks.afterPut.tapPromise({ name: "serve", stage: 0 }, async (datum: Datum) => {
    await s.feed?.record({ op: "put", key: datum.id, metadata: datum.metadata, createdAt: datum.createdAt, causalParent: datum.causalParent });
  });
  store.hooks.beforeDelete.tapPromise({ name: "serve", stage: 0 }, async (id: string) => {
    if (s.feed === null || !s.feed.wantsDeletedTags) return;
    const datum = await store.get(id);
    if (datum !== null) deleting.set(id, datum.metadata);
  });
  store.hooks.afterDelete.tapPromise({ name: "serve", stage: 0 }, async (id: string, existed: boolean) => {
    const metadata = deleting.get(id);
    deleting.delete(id);
    if (existed) await s.feed?.record({ op: "delete", key: id, ...(metadata ? { metadata } : {}) });
  });
  return slot;
}
