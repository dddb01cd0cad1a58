/**
 * Bounded history of a key (VolatileAgent-style): the last N states on one causal chain, a head
 * ref, cheap rollback. See README.md.
 */
export { boundedHistory, type BoundedHistory, type HistoryOptions } from "./history.js";
