/**
 * Bounded history of a key (seed 001, type I: VolatileAgent's `_history` bounded by
 * `_max_history`), on any tier: the last `keep` states are datums on one causal chain, the current
 * one named by a ref; saving prunes what falls out, rolling back moves the ref back.
 */
import { jsonCodec, type Codec } from "../codec/codec.js";
import { StateChain, type RetryOptions, type StateEntry, type StateHost } from "../state/chain.js";

export interface HistoryOptions<S> {
  /** Names the history: ref `state/<key>/head` (the same layout as a StateFunctor agent's key). */
  key: string;
  /** How many states to keep, the current one included (default 100, VolatileAgent's `_max_history`). */
  keep?: number;
  /** The state before the first save (not stored). */
  initial: S;
  /** How states become bytes (default: strict JSON). */
  codec?: Codec<S>;
  metadata?: Readonly<Record<string, string>>;
  retry?: RetryOptions;
}

/** A key's recent states. */
export interface BoundedHistory<S> {
  readonly key: string;
  readonly ref: string;
  readonly keep: number;
  /** The current state (`initial` when none is stored). */
  load(): Promise<S>;
  /** Stores `state` as the new current state (always, even when equal to the last); the oldest beyond `keep` is deleted in the same transaction. */
  save(state: S): Promise<StateEntry<S>>;
  /** Read → `fn` → save, retried when another writer saved in between (`fn` may run more than once: keep it pure). */
  update(fn: (state: S) => S | Promise<S>): Promise<StateEntry<S>>;
  /** The kept states, oldest first, ending with the current one. */
  states(): Promise<StateEntry<S>[]>;
  /** The current stored state, or null. */
  head(): Promise<StateEntry<S> | null>;
  /**
   * Moves the current state back `steps` states (default 1), or to the kept state `{ to: id }`,
   * deleting the states after it in the same transaction. Resolves to the state now current
   * (null when rolled back to before the first save: the state is `initial` again).
   */
  rollback(target?: number | { to: string }): Promise<StateEntry<S> | null>;
  /** Deletes every state and the ref. How many states there were. */
  clear(): Promise<number>;
}

/** The last `keep` states of `key` in `store`, with cheap rollback. */
export function boundedHistory<S>(store: StateHost, options: HistoryOptions<S>): BoundedHistory<S> {
  const chain = new StateChain<S>({ ...options, store, keep: options.keep ?? 100, codec: options.codec ?? jsonCodec<S>() });
  const keep = chain.keep as number;
  const write = async (fn: (state: S) => S | Promise<S>) => {
    const done = await chain.write(async (state) => {
      const next = await fn(state);
      return { write: true, state: next, result: null };
    });
    return done.entry as StateEntry<S>;
  };
  return Object.freeze({
    key: chain.key,
    ref: chain.ref,
    keep,
    load: async () => chain.stateOf(await chain.read()),
    save: (state: S) => write(() => state),
    update: (fn: (state: S) => S | Promise<S>) => write(fn),
    states: () => chain.history({ tail: keep }),
    async head() {
      const head = await chain.read();
      return head.datum === null ? null : chain.decode(head.datum);
    },
    rollback: (target: number | { to: string } = 1) => chain.rollback(typeof target === "number" ? { steps: target } : target),
    clear: () => chain.reset(),
  });
}
