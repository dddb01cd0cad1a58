/**
 * The StateFunctor (seed 002, pattern 2): lift `(input, state) → [output, newState]` into an agent
 * whose state is persisted after every step as a datum linked to the previous state by causal
 * parent, its head kept by a ref moved with compare-and-set, so several processes stepping the same
 * agent never lose an update.
 */
import { sameBytes } from "../../core/datum.js";
import { encodeWith, jsonCodec, type Codec } from "../codec/codec.js";
import { StateChain, type RetryOptions, type StateEntry, type StateHost } from "./chain.js";

/** One step of an agent's logic. It may run more than once for one step (see `liftLogic`): keep it pure. */
export type Logic<I, O, S> = (input: I, state: S) => readonly [O, S] | Promise<readonly [O, S]>;

export interface LiftOptions<S> {
  store: StateHost;
  /** Names the agent's state: ref `state/<key>/head`, datums `state/<key>/<depth>-<uuidv7>`. */
  key: string;
  /** The state before the first step (not stored until a step changes it). */
  initial: S;
  /** How states become bytes (default: strict JSON). */
  codec?: Codec<S>;
  /** Keep only the newest `keep` states (default: all; the chain is the agent's audit trail). */
  keep?: number;
  /** Tags every state datum carries. */
  metadata?: Readonly<Record<string, string>>;
  retry?: RetryOptions;
  /** Commit against the last head this agent saw, re-reading only on a conflict (default true). */
  cache?: boolean;
}

/** What one step did. */
export interface StepResult<O, S> {
  readonly output: O;
  /** The state after the step. */
  readonly state: S;
  /** The state datum the step wrote; null when the step left the state as it was (nothing written). */
  readonly entry: StateEntry<S> | null;
  /** How many times the logic ran (1 unless another writer moved the head first). */
  readonly attempts: number;
}

/** A lifted agent. */
export interface StateAgent<I, O, S> {
  readonly key: string;
  /** The head ref's name, `state/<key>/head`. */
  readonly ref: string;
  /** Runs one step and resolves once its state is stored (acknowledged): the output. */
  invoke(input: I): Promise<O>;
  /** `invoke`, with the new state, the datum written and the number of tries. */
  step(input: I): Promise<StepResult<O, S>>;
  /** The current state, read now (the initial state before any step). */
  state(): Promise<S>;
  /** The stored head, or null before the first step that changed the state. */
  head(): Promise<StateEntry<S> | null>;
  /** The states, oldest first, ending with the current one: the causal chain (`{ tail: n }`: the last n). */
  history(options?: { tail?: number }): Promise<StateEntry<S>[]>;
  /** Forgets every state of the key (deletes them and the head ref); the next step starts from `initial`. */
  reset(): Promise<number>;
}

/**
 * Lifts `logic` into a stateful agent. Each `invoke(input)` reads the head state, runs
 * `logic(input, state)`, stores the new state as a child of the head and moves the head to it by
 * compare-and-set in one transaction. When another writer moved the head in between, the step is
 * retried from the new head, so **the logic may run more than once per step**: it must be pure
 * (or idempotent) — no messages sent, no files written inside it; do effects with its output,
 * after `invoke` resolves. A step that returns the state unchanged (the same bytes) writes
 * nothing. The state is encoded anew for every step (logic receives a fresh copy it may mutate).
 */
export function liftLogic<I, O, S>(logic: Logic<I, O, S>, options: LiftOptions<S>): StateAgent<I, O, S> {
  const chain = new StateChain<S>({ ...options, codec: options.codec ?? jsonCodec<S>() });
  const step = async (input: I): Promise<StepResult<O, S>> => {
    const done = await chain.write(async (state, head) => {
      const [output, next] = await logic(input, state);
      const bytes = encodeWith(next, chain.codec);
      const result = { output, state: next };
      return sameBytes(chain.bytesOf(head), bytes) ? { write: false, result } : { write: true, state: next, bytes, result };
    });
    return { output: done.result.output, state: done.result.state, entry: done.entry, attempts: done.attempts };
  };
  return Object.freeze({
    key: chain.key,
    ref: chain.ref,
    invoke: async (input: I) => (await step(input)).output,
    step,
    state: async () => chain.stateOf(await chain.read()),
    async head() {
      const head = await chain.read();
      return head.datum === null ? null : chain.decode(head.datum);
    },
    history: (options?: { tail?: number }) => chain.history(options),
    reset: () => chain.reset(),
  });
}

/** The logic that returns its input and leaves the state alone: the unit of `composeLogic`. */
export function identityLogic<S, I = unknown>(): Logic<I, I, S> {
  return (input: I, state: S) => [input, state] as const;
}

/**
 * `f` then `g` in one step: `g` gets `f`'s output and the state `f` left. Lifting the composition
 * equals composing the lifts (`composeAgents`) on the same key — outputs and final state — when no
 * other writer steps the key in between (the composed lift is one atomic step, the composed lifts
 * are two).
 */
export function composeLogic<I, M, O, S>(f: Logic<I, M, S>, g: Logic<M, O, S>): Logic<I, O, S> {
  return async (input: I, state: S) => {
    const [middle, s1] = await f(input, state);
    return g(middle, s1);
  };
}

/** Runs `first`, then `second` on its output. */
export function composeAgents<I, M, O>(first: Pick<StateAgent<I, M, unknown>, "invoke">, second: Pick<StateAgent<M, O, unknown>, "invoke">): { invoke(input: I): Promise<O> } {
  return { invoke: async (input: I) => second.invoke(await first.invoke(input)) };
}
