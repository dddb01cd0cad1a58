/**
 * An event stream (seed 001, type VI): events appended in order, folded by a pure reducer into
 * the current state, replayed from any point, read as of any event or time (time travel), with
 * snapshots every N events so rebuilding a state never folds more than about N events, optimistic
 * appends against an expected version, and a subscription to new events.
 *
 * Layout in the store (namespace-local, all under `<prefix>`, default `stream/<name>/`):
 * - event n (1, 2, 3, …): datum `e/<n, 12 digits>`, causal parent the event before it, metadata
 *   `{ stream, seq, writer, dgent.codec }` and the event's `type` when it has one;
 * - snapshot at n (every `snapshotEvery` events): datum `c/<n, 12 digits>` holding the state
 *   (before events in id order, so appends add the highest id; streams written earlier have their
 *   snapshots at `s/<n>`, which are still read);
 * - the head: ref `<prefix>head` → an event at or before the last one (a hint, see below).
 *
 * **The event's id is its position's lock.** An append puts event n + 1 after seeing event n; the
 * append-only law lets one datum only take an id, so of two appenders racing for a position one
 * stores its event and the other gets `DGENT_CONFLICT` (and retries at the next position, or with
 * an expected version fails with `DGENT_REF_CONFLICT`). The law takes an identical datum as a
 * no-op, so every event carries its writer's random tag (`writer`, one per stream object, whose
 * appends run one at a time): two appenders' events never compare equal. Positions are therefore
 * taken one by one, contiguously from 1, and **the version is the highest stored position**. A
 * one-event append is one put when the store has a single tier that has transactions and no
 * plugin defers puts (the put then reaches the tier, which enforces the law atomically), else —
 * and for batches — one transaction of puts on the preferred tier. A crash leaves an event stored
 * whole or not at all; there is nothing else to keep consistent with it.
 *
 * The head ref only saves reading the version from the start: the transaction that crosses a
 * multiple of `HINT_EVERY` events moves it to its last event, and the version is the hint's
 * position plus the events stored after it (`count` over an id range of at most about
 * `HINT_EVERY` ids). A missing or lagging head (a store written before, by hand) costs a longer
 * count, never a wrong version. Streams written by the earlier layout — the head moved with every
 * event, by compare-and-set in the event's transaction — read and append the same way (their head
 * names their last event).
 *
 * A snapshot is written after its append and may be missing after a crash, which only costs the
 * next rebuild an older snapshot. The stream object folds the events it appended since its last
 * snapshot in memory, so the next one costs no read-back while it is the only appender.
 */
import type { Datum } from "../../core/datum.js";
import type { TxOp } from "../../core/refs.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import type { Store } from "../../core/store.js";
import { CODEC_KEY, decodeWith, encodeWith, jsonCodec, type Codec } from "../codec/index.js";

export interface EventStreamOptions<E, S> {
  /** The stream's name (used in ids and ref names). */
  readonly name: string;
  /** A pure function: the state after `event`. Called again on every rebuild. */
  readonly reducer: (state: S, event: E) => S;
  /** The state before the first event. */
  readonly initial: S;
  /** A snapshot every this many events (default 1000; `Infinity` for none). */
  readonly snapshotEvery?: number;
  /** How events are stored (default JSON). */
  readonly eventCodec?: Codec<E>;
  /** How snapshots are stored (default JSON). */
  readonly stateCodec?: Codec<S>;
  /** Where the stream lives (default `stream/<name>/`). */
  readonly prefix?: string;
}

/** An event as read back: its position, time and id with the decoded value. */
export interface StoredEvent<E> {
  readonly seq: number;
  readonly at: number;
  readonly id: string;
  readonly event: E;
}

/** Where to read a state: after event `seq`, after the event with id `eventId`, or as of a time. */
export type AsOf = { readonly seq: number } | { readonly eventId: string } | { readonly time: number };

export interface AppendOptions {
  /** The stream version (number of events) the append expects; a different one is `DGENT_REF_CONFLICT`. */
  readonly expectedVersion?: number;
  /** The event's time (default now; never before the previous event's). */
  readonly at?: number;
}

const DIGITS = 12;
/** The head hint moves to the newest event whenever an append crosses a multiple of this many events. */
const HINT_EVERY = 64;
const pad = (n: number) => String(n).padStart(DIGITS, "0");
/** Tries of one append while other writers keep winning. */
const MAX_ATTEMPTS = 64;
/** Events read per round trip while folding or replaying. */
const BATCH = 1000;
/** Most appended events an object keeps in memory for its next snapshot (beyond that it reads them back). */
const MAX_PENDING = 10_000;

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw dgentError("DGENT_INVALID_OPTIONS", `event stream: ${message}`, { details });
}

/** An event this object appended or read: its position, id and time. */
interface Last {
  readonly seq: number;
  readonly id: string;
  readonly at: number;
}

export class EventStream<E, S> {
  readonly name: string;
  readonly prefix: string;
  readonly #store: Store;
  readonly #reducer: (state: S, event: E) => S;
  readonly #initial: S;
  readonly #every: number;
  readonly #events: Codec<E>;
  readonly #states: Codec<S>;

  constructor(store: Store, options: EventStreamOptions<E, S>) {
    if (typeof options?.name !== "string" || options.name.length === 0 || /[/\u0000-\u001f]/.test(options.name)) {
      invalid("name must be a non-empty string without '/' or control characters", { name: options?.name });
    }
    if (typeof options.reducer !== "function") invalid("reducer must be a function");
    const every = options.snapshotEvery ?? 1000;
    if (every !== Infinity && (!Number.isInteger(every) || every < 1)) invalid(`snapshotEvery must be a positive integer or Infinity, got ${String(every)}`);
    this.#store = store;
    this.name = options.name;
    this.prefix = options.prefix ?? `stream/${options.name}/`;
    this.#reducer = options.reducer;
    this.#initial = options.initial;
    this.#every = every;
    this.#events = options.eventCodec ?? jsonCodec<E>();
    this.#states = options.stateCodec ?? jsonCodec<S>();
  }

  get #head(): string {
    return `${this.prefix}head`;
  }

  eventId(seq: number): string {
    return `${this.prefix}e/${pad(seq)}`;
  }

  /** `c/`: before `e/` in id order, so a stream's newest event is also its newest id (indexes insert it at their end). */
  #snapshotId(seq: number): string {
    return `${this.prefix}c/${pad(seq)}`;
  }

  /** Where snapshots were written before they moved to `c/` (still read). */
  #earlierSnapshotId(seq: number): string {
    return `${this.prefix}s/${pad(seq)}`;
  }

  /** The position of an event id of this stream, or `null` for any other id. */
  #seqOfId(id: string): number | null {
    const start = `${this.prefix}e/`;
    if (!id.startsWith(start)) return null;
    const digits = id.slice(start.length);
    return /^[0-9]{12}$/.test(digits) ? Number(digits) : null;
  }

  /**
   * The stream's version: how many events it holds. Events are stored contiguously from 1, so it
   * is the head hint's position plus the events stored past it (at most about `HINT_EVERY`).
   */
  async version(): Promise<number> {
    const head = await this.#store.refs.get(this.#head);
    const hint = head === null ? 0 : (this.#seqOfId(head.target) ?? 0);
    return hint + (await this.#store.count({ prefix: `${this.prefix}e/`, idRange: { gte: this.eventId(hint + 1) } }));
  }

  /**
   * Appends events in order, as one transaction: all of them land, at consecutive positions, or
   * none. With `expectedVersion`, the stream must be at that version (else `DGENT_REF_CONFLICT`
   * and nothing is appended); without it, an append that loses its position to another appender
   * retries at the next one. Appends through one stream object run one at a time, in call order.
   * Returns the version after the last event.
   */
  append(events: E | readonly E[], options: AppendOptions = {}): Promise<number> {
    const list = Array.isArray(events) ? (events as readonly E[]) : [events as E];
    const expected = options.expectedVersion;
    if (expected !== undefined && (!Number.isInteger(expected) || expected < 0)) {
      return Promise.reject(dgentError("DGENT_INVALID_OPTIONS", `event stream: expectedVersion must be a non-negative integer, got ${String(expected)}`, { details: { expectedVersion: expected } }));
    }
    const start = () => (list.length === 0 ? this.version() : this.#appendAll(list, expected, options.at));
    const run = this.#queued === 0 ? start() : this.#queue.then(start);
    this.#queued++;
    const settled = () => void this.#queued--;
    this.#queue = run.then(settled, settled);
    return run;
  }

  /** The appends of this object, chained: each starts after the one before it settled. */
  #queue: Promise<void> = Promise.resolve();
  /** Appends of this object not settled yet (when none, the next one starts at once). */
  #queued = 0;

  /**
   * The last event this object appended or read: the next append puts at the position after it
   * directly (one transaction, no reads); a conflict means someone else appended there, and the
   * version is read again. `undefined`: not known yet.
   */
  #last: Last | null | undefined = undefined;

  /** Tags every event this object writes, so two appenders' events always differ (see the module comment). */
  readonly #writer = globalThis.crypto.randomUUID().replace(/-/g, "").slice(0, 16);

  async #readLast(): Promise<Last | null> {
    const seq = await this.version();
    if (seq === 0) return (this.#last = null);
    const id = this.eventId(seq);
    const datum = await this.#store.get(id);
    if (datum === null) throw dgentError("DGENT_BACKEND_ERROR", `event stream ${this.name}: event ${seq} is missing`, { details: { stream: this.name, seq } });
    return (this.#last = { seq, id, at: datum.createdAt });
  }

  /**
   * Puts the events at the positions after the last one, in one transaction: each event's id is
   * its position, and the append-only law lets only one datum take an id, so a position another
   * appender took first fails the whole transaction with `DGENT_CONFLICT`. Retried at the new end
   * while others append, unless a version is expected.
   */
  async #appendAll(list: readonly E[], expected: number | undefined, at: number | undefined): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      let last: Last | null;
      if (attempt === 1 && this.#last !== undefined) {
        last = this.#last;
        // The cached end may be stale: with an expected version that differs, decide on the stored one.
        if (expected !== undefined && (last?.seq ?? 0) !== expected) last = await this.#readLast();
      } else {
        last = await this.#readLast();
      }
      const current = last?.seq ?? 0;
      if (expected !== undefined && current !== expected) {
        throw dgentError("DGENT_REF_CONFLICT", `event stream ${this.name}: expected version ${expected}, the stream is at ${current}`, {
          details: { name: this.#head, expected: { version: expected }, actual: current },
        });
      }
      // Times never go backwards within a stream, so "as of a time" is a position in it.
      const time = Math.max(at ?? Date.now(), last?.at ?? 0);
      const datums: Datum[] = [];
      let parent = last?.id ?? null;
      for (let i = 0; i < list.length; i++) {
        const event = list[i] as E;
        const seq = current + 1 + i;
        const id = this.eventId(seq);
        const tagged = event as unknown as { type?: unknown } | null;
        const metadata: Record<string, string> = { stream: this.name, seq: String(seq), writer: this.#writer, [CODEC_KEY]: this.#events.name };
        if (tagged !== null && typeof tagged === "object" && typeof tagged.type === "string") metadata.type = tagged.type;
        datums.push({ id, content: encodeWith(event, this.#events, id), createdAt: time, causalParent: parent, metadata });
        parent = id;
      }
      const end = current + list.length;
      // The head hint follows every HINT_EVERY events, in the transaction that crosses the mark.
      const hint = Math.floor(end / HINT_EVERY) > Math.floor(current / HINT_EVERY);
      try {
        if (datums.length === 1 && !hint && this.#putIsCommit()) await this.#store.put(datums[0] as Datum);
        else {
          const ops: TxOp[] = datums.map((datum) => ({ op: "put", datum }));
          if (hint) ops.push({ op: "setRef", name: this.#head, target: this.eventId(end) });
          await this.#store.transaction(ops);
        }
      } catch (error) {
        this.#last = undefined;
        // Another appender took one of these positions first.
        const lost = isDgentError(error, "DGENT_CONFLICT") || isDgentError(error, "DGENT_REF_CONFLICT");
        if (!lost) throw error;
        if (expected !== undefined || attempt >= MAX_ATTEMPTS) {
          throw dgentError("DGENT_REF_CONFLICT", `event stream ${this.name}: another append took version ${current + 1} first${expected === undefined ? ` (${attempt} attempts)` : ""}`, {
            cause: error,
            details: { name: this.#head, expected: { version: current }, attempts: attempt },
          });
        }
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 2 ** attempt)));
        continue;
      }
      this.#last = { seq: end, id: parent as string, at: time };
      const snapshot = this.#keep(current, datums);
      if (snapshot !== null) await this.#snapshots(snapshot, current, datums);
      return end;
    }
  }

  /**
   * Whether a plain `put` of one event takes its position as surely as a transaction does, and is
   * cheaper: the store has one tier, which has transactions (so appends need what they always
   * needed), and no plugin defers puts (write-behind), so the put reaches that tier, which enforces
   * the append-only law atomically. Checked per append: a plugin may be added later.
   */
  #putIsCommit(): boolean {
    const tiers = this.#store.tiers;
    return tiers.length === 1 && tiers[0]?.capabilities.transactions === true && !this.#store.hooks.deferPut.isUsed();
  }

  /**
   * The state after event `seq` that this object last folded for a snapshot, and the events it
   * appended since (contiguous after `seq`): the next snapshot folds those in memory instead of
   * reading them back. Dropped whenever another appender got in between.
   */
  #folded: { seq: number; state: S; pending: Datum[] } | undefined = undefined;

  /**
   * Keeps `appended` (the events just stored after position `from`) for the next snapshot; returns
   * the first snapshot position due among them, or `null` when none is (then nothing is awaited).
   */
  #keep(from: number, appended: readonly Datum[]): number | null {
    if (this.#every === Infinity) return null;
    const folded = this.#folded;
    if (folded !== undefined && folded.seq + folded.pending.length === from && folded.pending.length + appended.length <= MAX_PENDING) folded.pending.push(...appended);
    else this.#folded = undefined;
    const due = (Math.floor(from / this.#every) + 1) * this.#every;
    return due > from + appended.length ? null : due;
  }

  /** Writes the snapshots due from position `due` on (every `snapshotEvery`) among `appended`, the events just stored after position `from` and kept. */
  async #snapshots(due: number, from: number, appended: readonly Datum[]): Promise<void> {
    // From what this object folded before, or else from the store (a snapshot and at most snapshotEvery − 1 events).
    const base = this.#folded ?? { seq: from, state: await this.#rebuild(from), pending: [...appended] };
    let state = base.state;
    let seq = base.seq;
    for (const datum of base.pending) {
      state = this.#reducer(state, decodeWith(datum, this.#events));
      seq++;
      if (seq !== due) continue;
      const id = this.#snapshotId(seq);
      try {
        await this.#store.put({ id, content: encodeWith(state, this.#states, id), createdAt: Date.now(), causalParent: this.eventId(seq), metadata: { stream: this.name, snapshotOf: String(seq), [CODEC_KEY]: this.#states.name } });
      } catch (error) {
        // Another writer made the same snapshot first: the state at a seq is the same for everyone.
        if (!isDgentError(error, "DGENT_CONFLICT")) throw error;
      }
      this.#folded = { seq, state, pending: base.pending.slice(seq - base.seq) };
      due += this.#every;
    }
  }

  /** The events `from` (default 1) `to` (default the last), in order. */
  async *replay(options: { from?: number; to?: number } = {}): AsyncGenerator<StoredEvent<E>, void, undefined> {
    const from = Math.max(1, options.from ?? 1);
    const to = options.to ?? (await this.version());
    for (let start = from; start <= to; start += BATCH) yield* await this.#read(start, Math.min(to, start + BATCH - 1));
  }

  /** The events `from` to `to` (at most `MAX_GET_MANY`), decoded, in order: one `getMany`. */
  async #read(from: number, to: number): Promise<StoredEvent<E>[]> {
    const ids: string[] = [];
    for (let seq = from; seq <= to; seq++) ids.push(this.eventId(seq));
    const datums = await this.#store.getMany(ids);
    const out: StoredEvent<E>[] = [];
    for (let i = 0; i < datums.length; i++) {
      const d = datums[i];
      if (d === null || d === undefined) {
        throw dgentError("DGENT_BACKEND_ERROR", `event stream ${this.name}: event ${from + i} is missing`, { details: { stream: this.name, seq: from + i } });
      }
      out.push({ seq: from + i, at: d.createdAt, id: d.id, event: decodeWith(d, this.#events) });
    }
    return out;
  }

  /** `state` with the events `from` to `to` folded in, read a batch per round trip (no await per event). */
  async #fold(state: S, from: number, to: number): Promise<S> {
    for (let start = from; start <= to; start += BATCH) {
      for (const e of await this.#read(start, Math.min(to, start + BATCH - 1))) state = this.#reducer(state, e.event);
    }
    return state;
  }

  /** The current state. */
  async state(): Promise<S> {
    return this.#rebuild(await this.version());
  }

  /**
   * The state as of an event (`{ seq }` or `{ eventId }`) or a time (`{ time }`: after the last
   * event at or before it): the newest snapshot at or before that point, plus the events after it.
   */
  async stateAt(asOf: AsOf): Promise<S> {
    return this.#rebuild(await this.#seqOf(asOf));
  }

  /** The state after event `seq` (a position the stream holds): the newest snapshot at or before it, plus the events after it. */
  async #rebuild(seq: number): Promise<S> {
    let state = this.#initial;
    let from = 1;
    if (this.#every !== Infinity) {
      for (let n = Math.floor(seq / this.#every) * this.#every; n > 0; n -= this.#every) {
        const snap = (await this.#store.get(this.#snapshotId(n))) ?? (await this.#store.get(this.#earlierSnapshotId(n)));
        if (snap === null) continue; // not written (a crash after its append): an older one will do
        state = decodeWith(snap, this.#states);
        from = n + 1;
        break;
      }
    }
    return this.#fold(state, from, seq);
  }

  /** The folded state of every event, without snapshots (the reference the snapshots must agree with). */
  async foldAll(to?: number): Promise<S> {
    return this.#fold(this.#initial, 1, to ?? (await this.version()));
  }

  async #seqOf(asOf: AsOf): Promise<number> {
    if (asOf === null || typeof asOf !== "object") invalid("asOf must be { seq }, { eventId } or { time }");
    if ("seq" in asOf) {
      const version = await this.version();
      if (!Number.isInteger(asOf.seq) || asOf.seq < 0 || asOf.seq > version) invalid(`seq must be an integer from 0 to ${version}, got ${String(asOf.seq)}`, { seq: asOf.seq });
      return asOf.seq;
    }
    if ("eventId" in asOf) {
      const d = await this.#store.get(asOf.eventId);
      if (d === null || d.metadata.stream !== this.name || d.metadata.seq === undefined) invalid(`no event ${JSON.stringify(asOf.eventId)} in stream ${this.name}`, { eventId: asOf.eventId });
      return Number(d.metadata.seq);
    }
    if ("time" in asOf) {
      if (typeof asOf.time !== "number" || Number.isNaN(asOf.time)) invalid(`time must be epoch milliseconds, got ${String(asOf.time)}`);
      const page = await this.#store.query({ prefix: `${this.prefix}e/`, before: asOf.time + 1, order: "newest", limit: 1, select: "meta" });
      const last = page.items[0];
      return last === undefined ? 0 : Number(last.metadata.seq);
    }
    return invalid("asOf must be { seq }, { eventId } or { time }");
  }

  /**
   * Calls `listener` with each event appended from now on (or from `from`), in order, once each,
   * also for appends made by other processes when the store's change stream reports them. Needs
   * the store's change stream (`dgent/plugins/reactive`); resolves to the unsubscribe.
   */
  async subscribe(listener: (event: StoredEvent<E>) => void | Promise<void>, options: { from?: number } = {}): Promise<() => void> {
    let delivered = options.from === undefined ? await this.version() : options.from - 1;
    let running: Promise<void> = Promise.resolve();
    let stopped = false;
    const catchUp = () => {
      running = running.then(async () => {
        if (stopped) return;
        for await (const e of this.replay({ from: delivered + 1 })) {
          if (stopped) return;
          await listener(e);
          delivered = e.seq;
        }
      });
      return running;
    };
    const prefix = `${this.prefix}e/`;
    const unsubscribe = await this.#store.subscribe((change: never) => {
      const id = (change as { id?: unknown }).id;
      if (typeof id === "string" && id.startsWith(prefix)) return catchUp();
      return undefined;
    });
    await catchUp(); // events appended between `from` and the subscription
    return () => {
      stopped = true;
      unsubscribe();
    };
  }
}

/** An event stream on a store (see `EventStream`). */
export function eventStream<E, S>(store: Store, options: EventStreamOptions<E, S>): EventStream<E, S> {
  return new EventStream(store, options);
}
