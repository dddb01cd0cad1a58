/**
 * A key's states as a chain of datums: each state a datum whose causal parent is the state before
 * it, the current one named by the ref `state/<key>/head`, moved only by compare-and-set in the
 * same transaction as the put (and, with `keep`, the deletes that bound the chain). The
 * StateFunctor (functor.ts) and the bounded history (patterns/history) are both built on it.
 */
import type { Datum, Ref, RefExpectation, Store, TxOp } from "../../compose/index.js";
import { makeDatum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { uuidv7 } from "../../core/ids.js";
import { CODEC_KEY, assertCodec, decodeWith, encodeWith, type Codec } from "../codec/codec.js";
import { Committer, Retry, integerAtLeast, isRefConflict, serialized, type RetryOptions } from "./commit.js";

export type { RetryOptions } from "./commit.js";

export const UNIT = "state";

/** What a state chain needs from a store (a `Store` has all of it; refs and transactions are the tier's). */
export type StateHost = Pick<Store, "get" | "put" | "delete" | "refs" | "transaction" | "causalChain" | "query" | "deleteMany">;

export interface ChainOptions<S> {
  store: StateHost;
  /** Names the chain: ref `state/<key>/head`, datums `state/<key>/<depth>-<uuidv7>` ("/" and "%" in the key are escaped). */
  key: string;
  /** The state before the first step (not stored). */
  initial: S;
  codec: Codec<S>;
  /** Keep only the newest `keep` states: each write deletes the states that fall out, in its own transaction. */
  keep?: number;
  /** Tags every state datum carries. */
  metadata?: Readonly<Record<string, string>>;
  retry?: RetryOptions;
  /** Trust the last head this object saw and commit against it, re-reading only on a conflict (default true). */
  cache?: boolean;
}

/** A stored state. */
export interface StateEntry<S> {
  readonly id: string;
  readonly state: S;
  /** 1 for the first state stored under the key, +1 per state after it. */
  readonly depth: number;
  readonly datum: Datum;
}

/** The head as read: the stored state's datum (null before the first write) and its bytes. */
export interface HeadSnapshot {
  readonly target: string | null;
  readonly datum: Datum | null;
  readonly depth: number;
}

/** The last head seen of each (store object, ref), shared by every chain of this process over them. */
const lastHeads = new WeakMap<object, Map<string, HeadSnapshot>>();

const DEPTH_DIGITS = 12;
const MAX_DEPTH = 10 ** DEPTH_DIGITS - 1;

/** `/` and `%` escaped, so one key's prefix never covers another key's datums. */
export function escapeKey(key: string): string {
  return key.replaceAll("%", "%25").replaceAll("/", "%2F");
}

const positiveInteger = (value: unknown, what: string, min = 1): number => integerAtLeast(value, what, min, UNIT);

/** What a write did: the proposal's result, the head after it, the entry written (null when none) and the tries. */
export interface Written<S, R> {
  readonly result: R;
  readonly head: HeadSnapshot;
  readonly entry: StateEntry<S> | null;
  readonly attempts: number;
}

/** The outcome of one attempt of a write: a new state to commit, or none (the head stays). */
export type Proposal<S, R> =
  | { readonly write: true; readonly state: S; readonly result: R; /** The state already encoded (else it is encoded here). */ readonly bytes?: Uint8Array }
  | { readonly write: false; readonly result: R };

export class StateChain<S> {
  readonly store: StateHost;
  readonly key: string;
  readonly codec: Codec<S>;
  readonly keep: number | undefined;
  /** The head ref's name. */
  readonly ref: string;
  /** Every state datum's id starts with it. */
  readonly prefix: string;
  readonly #initial: Uint8Array;
  readonly #metadata: Readonly<Record<string, string>>;
  readonly #retry: Retry;
  readonly #committer: Committer;
  readonly #cacheOn: boolean;
  readonly #heads: Map<string, HeadSnapshot>;

  constructor(options: ChainOptions<S>) {
    if (options === null || typeof options !== "object") throw dgentError("DGENT_INVALID_OPTIONS", "options are required", { unit: UNIT });
    const { store, key, codec } = options;
    if (store === null || typeof store !== "object" || typeof store.transaction !== "function" || store.refs === undefined) {
      throw dgentError("DGENT_INVALID_OPTIONS", "store must be a dgent Store (createStore)", { unit: UNIT });
    }
    if (typeof key !== "string" || key.length === 0) throw dgentError("DGENT_INVALID_OPTIONS", "key must be a non-empty string", { unit: UNIT });
    assertCodec(codec);
    this.store = store;
    this.key = key;
    this.codec = codec;
    this.keep = options.keep === undefined ? undefined : positiveInteger(options.keep, "keep");
    this.prefix = `state/${escapeKey(key)}/`;
    this.ref = `${this.prefix}head`;
    this.#initial = encodeWith(options.initial, codec);
    decodeWith(makeDatum({ content: this.#initial, metadata: { [CODEC_KEY]: codec.name } }), codec);
    const metadata = { ...(options.metadata ?? {}) };
    if (Object.hasOwn(metadata, CODEC_KEY)) throw dgentError("DGENT_INVALID_METADATA", `metadata ${JSON.stringify(CODEC_KEY)} is reserved`, { unit: UNIT });
    metadata[CODEC_KEY] = codec.name;
    this.#metadata = metadata;
    this.#retry = new Retry(options.retry, UNIT);
    this.#committer = new Committer(store);
    this.#cacheOn = options.cache ?? true;
    let heads = lastHeads.get(store);
    if (!heads) lastHeads.set(store, (heads = new Map()));
    this.#heads = heads;
    // Fails early with the id rules' error when the key makes an invalid ref name.
    makeDatum({ id: this.ref, content: "" });
  }

  /** The depth recorded in a state datum's id. */
  depthOf(id: string): number {
    const digits = id.slice(this.prefix.length, this.prefix.length + DEPTH_DIGITS);
    if (!id.startsWith(this.prefix) || id[this.prefix.length + DEPTH_DIGITS] !== "-" || !/^\d+$/.test(digits)) {
      throw dgentError("DGENT_BACKEND_ERROR", `the head of ${JSON.stringify(this.key)} points to ${JSON.stringify(id)}, which is not one of its state datums (${this.prefix}<depth>-<id>)`, {
        unit: UNIT,
        details: { key: this.key, ref: this.ref, target: id },
      });
    }
    return Number(digits);
  }

  #levelPrefix(depth: number): string {
    return `${this.prefix}${String(depth).padStart(DEPTH_DIGITS, "0")}-`;
  }

  /** Decodes a state datum, naming it and the codec when it fails. */
  decode(datum: Datum): StateEntry<S> {
    return { id: datum.id, state: decodeWith(datum, this.codec), depth: this.depthOf(datum.id), datum };
  }

  /** The state a snapshot holds (the initial state before the first write), decoded afresh: logic may mutate it freely. */
  stateOf(head: HeadSnapshot): S {
    if (head.datum === null) return this.codec.decode(this.#initial);
    return decodeWith(head.datum, this.codec);
  }

  /** The stored bytes of a snapshot's state (the initial state's encoding before the first write). */
  bytesOf(head: HeadSnapshot): Uint8Array {
    return head.datum === null ? this.#initial : head.datum.content;
  }

  /** Reads the head now (and remembers it). */
  async read(): Promise<HeadSnapshot> {
    const ref = await this.store.refs.get(this.ref);
    return this.#remember(await this.#snapshot(ref));
  }

  /** The last head seen, or a fresh read when there is none (or caching is off). */
  async #current(): Promise<HeadSnapshot> {
    return (this.#cacheOn ? this.#heads.get(this.ref) : undefined) ?? this.read();
  }

  #remember(head: HeadSnapshot): HeadSnapshot {
    this.#heads.set(this.ref, head);
    return head;
  }

  async #snapshot(ref: Ref | null): Promise<HeadSnapshot> {
    if (ref === null) return { target: null, datum: null, depth: 0 };
    const depth = this.depthOf(ref.target);
    const datum = await this.store.get(ref.target);
    if (datum === null) {
      throw dgentError("DGENT_BACKEND_ERROR", `the head of ${JSON.stringify(this.key)} points to ${JSON.stringify(ref.target)}, which does not exist (deleted by hand?)`, {
        unit: UNIT,
        details: { key: this.key, ref: this.ref, target: ref.target },
      });
    }
    return { target: ref.target, datum, depth };
  }

  #expect(head: HeadSnapshot): RefExpectation {
    return head.target === null ? { absent: true } : { target: head.target };
  }

  /** The ids of the stored states at `depth` (one, unless a crash on a tier without transactions left a stray). */
  async #level(depth: number): Promise<string[]> {
    const page = await this.store.query({ prefix: this.#levelPrefix(depth), select: "ids", limit: 1000 });
    return page.items;
  }

  /**
   * Read → `propose(state, head)` → commit the proposed state as the head's child, expecting the
   * head read; on `DGENT_REF_CONFLICT` read again and propose again (so `propose` may run more than
   * once: it must not have effects of its own). A proposal that writes nothing is checked against
   * the stored head (when it came from the cache) before it is returned.
   */
  write<R>(propose: (state: S, head: HeadSnapshot) => Proposal<S, R> | Promise<Proposal<S, R>>): Promise<Written<S, R>> {
    return serialized(this.store, this.ref, () => this.#write(propose));
  }

  async #write<R>(propose: (state: S, head: HeadSnapshot) => Proposal<S, R> | Promise<Proposal<S, R>>): Promise<Written<S, R>> {
    let head = await this.#current();
    let fromCache = this.#cacheOn;
    for (let attempt = 1; ; attempt++) {
      const proposal = await propose(this.stateOf(head), head);
      if (!proposal.write) {
        if (fromCache) {
          const ref = await this.store.refs.get(this.ref);
          if ((ref?.target ?? null) !== head.target) {
            head = this.#remember(await this.#snapshot(ref));
            fromCache = false;
            continue;
          }
        }
        return { result: proposal.result, head, entry: null, attempts: attempt };
      }
      const depth = head.depth + 1;
      if (depth > MAX_DEPTH) throw dgentError("DGENT_INVALID_OPTIONS", `the chain of ${JSON.stringify(this.key)} is ${MAX_DEPTH} states deep; no more fit its ids`, { unit: UNIT });
      const id = `${this.#levelPrefix(depth)}${uuidv7()}`;
      const datum = makeDatum({ id, content: proposal.bytes ?? encodeWith(proposal.state, this.codec, id), causalParent: head.target, metadata: this.#metadata });
      const drop = this.keep !== undefined && depth - this.keep >= 1 ? await this.#level(depth - this.keep) : [];
      try {
        await this.#committer.commit([{ op: "put", datum }, { op: "setRef", name: this.ref, target: id, expect: this.#expect(head) }], drop);
      } catch (error) {
        if (!isRefConflict(error)) throw error;
        // A conflict on a cached head may only mean the cache was old: the first retry is at once.
        await this.#retry.afterConflict(error, attempt, this.ref, fromCache && attempt === 1);
        head = await this.read();
        fromCache = false;
        continue;
      }
      const next = this.#remember({ target: id, datum, depth });
      return { result: proposal.result, head: next, entry: { id, state: proposal.state, depth, datum }, attempts: attempt };
    }
  }

  /**
   * Moves the head back `steps` states (or to the state `to`), deleting the states after it in the
   * same transaction. Returns the new head entry (null when rolled back to before the first state).
   */
  rollback(target: { steps: number } | { to: string }): Promise<StateEntry<S> | null> {
    return serialized(this.store, this.ref, () => this.#rollback(target));
  }

  async #rollback(target: { steps: number } | { to: string }): Promise<StateEntry<S> | null> {
    for (let attempt = 1; ; attempt++) {
      const head = await this.read();
      if (head.target === null) {
        throw dgentError("DGENT_INVALID_OPTIONS", `${JSON.stringify(this.key)} has no stored state to roll back`, { unit: UNIT, details: { key: this.key } });
      }
      const steps = "steps" in target ? positiveInteger(target.steps, "steps", 0) : head.depth - this.#depthOfTarget(target.to);
      if (steps < 0) throw this.#offChain((target as { to: string }).to);
      if (steps === 0) return this.decode(head.datum as Datum);
      const chain = await this.store.causalChain(head.target, { tail: steps + 1 });
      const toStart = steps === head.depth && chain.length === steps;
      if (chain.length < steps + 1 && !toStart) {
        throw dgentError("DGENT_INVALID_OPTIONS", `cannot roll ${JSON.stringify(this.key)} back ${steps} states: ${chain.length - 1} older states are kept`, {
          unit: UNIT,
          details: { key: this.key, steps, available: chain.length - 1 },
        });
      }
      const back = toStart ? null : (chain[0] as Datum);
      if ("to" in target && back?.id !== target.to) throw this.#offChain(target.to);
      const discarded = (toStart ? chain : chain.slice(1)).map((d) => d.id);
      const move: TxOp = back === null ? { op: "deleteRef", name: this.ref, expect: { target: head.target } } : { op: "setRef", name: this.ref, target: back.id, expect: { target: head.target } };
      try {
        await this.#committer.commit([move], discarded);
      } catch (error) {
        if (!isRefConflict(error)) throw error;
        await this.#retry.afterConflict(error, attempt, this.ref);
        continue;
      }
      this.#remember(back === null ? { target: null, datum: null, depth: 0 } : { target: back.id, datum: back, depth: this.depthOf(back.id) });
      return back === null ? null : this.decode(back);
    }
  }

  #offChain(id: string) {
    return dgentError("DGENT_INVALID_OPTIONS", `${JSON.stringify(id)} is not a state on the current chain of ${JSON.stringify(this.key)}`, {
      unit: UNIT,
      details: { key: this.key, to: id },
    });
  }

  #depthOfTarget(id: string): number {
    if (typeof id !== "string" || !id.startsWith(this.prefix) || !/^\d+-/.test(id.slice(this.prefix.length))) throw this.#offChain(id);
    return this.depthOf(id);
  }

  /** The newest states, oldest first, ending with the head (`tail` of them; all that are kept without it). */
  async history(options: { tail?: number } = {}): Promise<StateEntry<S>[]> {
    const head = await this.read();
    if (head.target === null) return [];
    const tail = options.tail === undefined ? undefined : positiveInteger(options.tail, "tail");
    const chain = await this.store.causalChain(head.target, tail === undefined ? undefined : { tail });
    return chain.map((d) => this.decode(d));
  }

  /** Deletes the head ref and every state of the key; the state is the initial one again. How many states were deleted. */
  async reset(): Promise<number> {
    const head = await this.store.refs.get(this.ref);
    if (head !== null) await this.store.refs.delete(this.ref, { expect: { version: head.version } });
    this.#heads.delete(this.ref);
    return this.store.deleteMany({ idRange: { gte: `${this.prefix}0`, lt: `${this.prefix}:` } });
  }
}
