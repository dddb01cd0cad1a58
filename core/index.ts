/**
 * dgent core: the Datum, the five-method protocol, the lattice, hooks, registry and store.
 * Adapters live under `dgent/adapters/<name>`, plugins under `dgent/plugins/<name>`, the
 * conformance kit under `dgent/testing`.
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
  dgentError,
  isDgentError,
  wrapError,
} from "./errors.js";
export {
  type Adapter,
  type AdapterContext,
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
export { type BuiltInTier, RANKS, byDurability, rankLabel } from "./lattice.js";
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
  checkOptions,
  defaultRegistry,
  defineAdapter,
  definePlugin,
  instantiateAdapter,
  nearest,
} from "./registry.js";
export { type JsonSchema, formatAjvErrors } from "./options-schema.js";
export { walkCausalChain, walkCausalChainSync } from "./causal.js";
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
export { DEFAULT_NAMESPACE, assertNamespace, defaultDataDir, ensureWritableDir } from "./paths.js";
export {
  type DefaultStoreOptions,
  type ResolvedEnvironment,
  type TierChoice,
  type UrlSource,
  defaultStoreOptions,
  defaultTiers,
  openDefaultStore,
  postgresProfileFor,
  resolveEnvironment,
  sqlitePathFromUrl,
} from "./default-store.js";
export { type RouterEvents, type RouterOptions, type TierState, isOutage } from "./router.js";
export { type PromotionResult, type UpgraderPolicy } from "./upgrader.js";
export { type IndexEntry, OrderedIndex } from "./ordered-index.js";
export { Lifecycle } from "./lifecycle.js";
export { conflict as conflictError } from "./tiers.js";
export { type MigrateOptions, type MigrationReport, adapterForUrl, datumHash, migrate, redactPassword } from "./migrate.js";
export {
  CONFIG_FILE_NAMES,
  type ConfigFile,
  type ConfigOptions,
  type ConfigOrigin,
  type FoundConfig,
  type LoadedConfig,
  type LoadedModule,
  type ResolvedConfig,
  configSchema,
  createStoreFromConfig,
  dgentVersion,
  findConfig,
  loadConfig,
  redactConfig,
  resolveConfig,
} from "./config/index.js";
