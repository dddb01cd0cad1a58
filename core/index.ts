/**
 * `dgent/extend`: the kernel, for adapter and plugin authors. The Datum, the five-method
 * protocol, the lattice ordering (ranks as numbers), hooks, the registry, the store with its
 * router and upgrader, and errors, plus the helpers an adapter needs at its boundary. It names
 * no tier and no plugin. Applications import `dgent` instead.
 */
export {
  type Datum,
  type IdStrategy,
  type MakeDatumInput,
  MAX_ID_BYTES,
  assertDatum,
  assertId,
  assertMetadata,
  cloneDatum,
  cloneDatums,
  contentId,
  copyBytes,
  contentText,
  makeDatum,
  sameBytes,
  sameMetadata,
  sameValue,
} from "./datum.js";
export { uuidv7, uuidv7Time } from "./ids.js";
export { type Clock, EXPIRES_AT, type ExpiryInput, assertExpiryTag, expiresAtOf, isExpired, withTtl } from "./expiry.js";
export { DEFAULT_SWEEP_INTERVAL_MS, type ExpiryView, expiryView, sweepTier } from "./expiry-view.js";
export {
  BackendError,
  BudgetError,
  ConfigError,
  ConflictError,
  DgentError,
  type DgentErrorOptions,
  ERROR_CODES,
  type ErrorCode,
  type ErrorKind,
  LifecycleError,
  UnavailableError,
  ValidationError,
  conflictError,
  dgentError,
  isDgentError,
  wrapError,
} from "./errors.js";
export {
  type Adapter,
  type AdapterContext,
  type ChangeInterest,
  type AdapterEvents,
  type AdapterStats,
  type Capabilities,
  type ChangeEvent,
  type DatumStore,
  DEFAULT_LIST_LIMIT,
  DEFAULT_MAX_CHAIN_DEPTH,
  type ListOptions,
  MAX_LIST_LIMIT,
  type ResolvedListOptions,
  SILENT_EVENTS,
} from "./protocol.js";
export { type DurabilityLabel, RANK_BANDS, byDurability, rankLabel } from "./lattice.js";
export {
  type CommitResult,
  type DeferInfo,
  type DeferredWrite,
  type EvictionInfo,
  HOOK_NAMES,
  type HookName,
  type PromotionEvent,
  type ReadInfo,
  type TapOnly,
  type TapOnlyHooks,
  type TierEvent,
  type WarningInfo,
  type WriteInfo,
} from "./hooks.js";
export {
  type AdapterDefinition,
  type PluginApi,
  type PluginDefinition,
  Registry,
  type LazyAdapter,
  type LazyPlugin,
  type UrlChoice,
  type UrlContext,
  checkOptions,
  defineAdapter,
  definePlugin,
  instantiateAdapter,
  nearest,
} from "./registry.js";
export { type JsonSchema, formatAjvErrors } from "./options-schema.js";
export { cycleError, depthError, walkCausalChain, walkCausalChainSync } from "./causal.js";
export { compareIds, compareNewestFirst } from "./order.js";
export {
  type AnyPluginUse,
  type BackendReport,
  type PluginUse,
  Store,
  type StoreOptions,
  type TierReport,
  createStore,
  isStore,
  resolveListOptions,
} from "./store.js";
export { DEFAULT_NAMESPACE, assertNamespace, defaultDataDir, ensureWritableDir, localPathFromUrl } from "./paths.js";
export { type RouterEvents, type RouterOptions, type TierState, isOutage } from "./router.js";
export { type OnMoved, type PromotionProgress, type PromotionResult, type PromotionTrigger, type UpgraderPolicy } from "./upgrader.js";
export {
  type Amount,
  type PolicyReport,
  type ResolvedRetentionPolicy,
  type RetentionEvent,
  type RetentionOptions,
  type RetentionPolicy,
  type RetentionReport,
  type RetentionTotals,
  classify as classifyRetention,
  resolveRetentionPolicies,
} from "./retention.js";
export { type IndexEntry, OrderedIndex } from "./ordered-index.js";
export { Lifecycle } from "./lifecycle.js";
export { NETWORK_ERROR_CODES, importOptional, isNetworkErrorCode } from "./adapter-support.js";
export {
  REFLOG_LIMIT,
  RefTable,
  type Ref,
  type RefExpectation,
  type RefMove,
  type ReflogEntry,
  type TxOp,
  type TxOpResult,
  type TxResult,
  assertExpectation,
  assertRefName,
  assertTxOps,
  checkPuts,
  meets,
  movedRef,
  deleteRefByCommit,
  refConflict,
  setRefByCommit,
  txResults,
} from "./refs.js";
export { StoreRefs, type RefState, type TxBuilder, type UpdateOptions } from "./store-refs.js";
export {
  MAX_GET_MANY,
  MAX_IN_VALUES,
  MAX_WHERE_TAGS,
  type DatumHeader,
  type Order,
  type Position,
  type QueryFilter,
  type QueryOptions,
  type QueryPage,
  type ResolvedQuery,
  type ResolvedTagFilter,
  type Select,
  type Selected,
  type TagFilter,
  type Where,
  compareInOrder,
  countQuery,
  evaluateQuery,
  filtersNothing,
  headerOf,
  likePrefix,
  matchesQuery,
  prefixUpperBound,
  resolveQuery,
  unpaged,
} from "./query.js";
export { type DeleteManyOptions, type ListQuery, StoreQueries } from "./store-query.js";
export { walkTail } from "./router-query.js";
export { REDACTED, isSecretKey, redactText, redactUrl } from "./redact.js";
