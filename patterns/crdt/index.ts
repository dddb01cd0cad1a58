/**
 * Replicated values without consensus: dotted version vectors and CRDTs (G-Counter, PN-Counter,
 * G-Set, OR-Set, LWW-Register, MV-Register, OR-Map) stored as append-only deltas with snapshot
 * compaction. patterns/crdt/README.md is the guide.
 */
export {
  CausalContext,
  assertReplicaId,
  compareVV,
  dotKey,
  mergeVV,
  parseDotKey,
  processReplicaId,
  vvHas,
  type CausalContextJson,
  type Dot,
  type Order,
  type VersionVector,
} from "./clock.js";
export { Replicated, type CompactResult, type CrdtOptions, type CrdtRead } from "./crdt.js";
export { GCounter, GSet, LWWRegister, MVRegister, ORMap, ORSet, PNCounter, gCounter, gSet, lwwRegister, mvRegister, orMap, orSet, pnCounter } from "./handles.js";
export {
  emptyState,
  gCounterKind,
  gSetKind,
  joinState,
  lwwKind,
  mvRegisterKind,
  orMapKind,
  orSetKind,
  pnCounterKind,
  sameState,
  stateFromJson,
  stateToJson,
  type CrdtType,
  type Json as CrdtJson,
  type Kind,
  type MapValueType,
  type MapValues,
  type State,
  type StateJson,
} from "./types.js";
