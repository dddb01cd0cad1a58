/**
 * The StateFunctor: lift `(input, state) → [output, newState]` into an agent whose states are a
 * causal chain of datums with a head ref moved by compare-and-set. See README.md.
 */
export type { StateEntry, StateHost } from "./chain.js";
export type { RetryOptions } from "./commit.js";
export { composeAgents, composeLogic, identityLogic, liftLogic, type LiftOptions, type Logic, type StateAgent, type StepResult } from "./functor.js";
