/**
 * `dgent/patterns`: what an agent author touches — typed content, state that steps, event streams
 * with time travel, bounded history, conversation memory, the table bridge, a service registry and
 * the `self.data.*` paths — built only on the public store API, so each works on every tier and
 * every third-party adapter that passes the kit. patterns/README.md is the guide.
 */
export {
  ServiceRegistry,
  bootstrapServices,
  createServices,
  getService,
  injectService,
  resetServices,
  type Bootstrap,
  type Factory,
  type ServiceOptions,
  type StoreSpec,
} from "./services/index.js";
export { DATA_PATHS, invokePath, knownPaths, parsePath, type DataPath, type PathContext } from "./paths/index.js";
export { TableAdapter, tableAdapter, type Row, type RowValue, type TableOptions } from "./table/index.js";
export { EventStream, eventStream, type AppendOptions, type AsOf, type EventStreamOptions, type StoredEvent } from "./events/index.js";
export {
  CODEC_KEY,
  builtInCodecs,
  bytes,
  bytesCodec,
  codecOf,
  decodeDatum,
  decodeWith,
  encodeWith,
  json,
  jsonCodec,
  text,
  textCodec,
  typed,
  whyNotJson,
  type Codec,
  type Json,
  type JsonCodecOptions,
  type Typed,
  type TypedHost,
  type TypedOptions,
  type TypedPutOptions,
  type TypedQueryOptions,
  type TypedStore,
} from "./codec/index.js";
export { composeAgents, composeLogic, identityLogic, liftLogic, type LiftOptions, type Logic, type RetryOptions, type StateAgent, type StateEntry, type StateHost, type StepResult } from "./state/index.js";
export { boundedHistory, type BoundedHistory, type HistoryOptions } from "./history/index.js";
export { conversation, type AppendTurnOptions, type Conversation, type ConversationHost, type ConversationOptions, type Turn } from "./conversation/index.js";
export * from "./crdt/index.js";
