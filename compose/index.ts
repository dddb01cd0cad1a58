/**
 * `dgent`: the package for applications. Make datums, compose a store from tiers and plugins
 * (in code, from a config file, or the embedded default from the environment), read the errors,
 * migrate between tiers. Adapter and plugin authors import `dgent/extend` (the kernel); each tier
 * and plugin also has its own entry, `dgent/adapters/<name>` and `dgent/plugins/<name>`.
 */

// The datum.
export { type Datum, type IdStrategy, type MakeDatumInput, MAX_ID_BYTES, contentId, contentText, makeDatum } from "../core/datum.js";
export { uuidv7, uuidv7Time } from "../core/ids.js";
export { type Clock, EXPIRES_AT, type ExpiryInput, expiresAtOf, isExpired, withTtl } from "../core/expiry.js";

// The store.
export {
  type AnyPluginUse,
  type BackendReport,
  type PluginUse,
  Store,
  type StoreOptions,
  type TierReport,
  createStore,
  isStore,
} from "../core/store.js";
export type { Capabilities, ChangeEvent, DatumStore, ListOptions } from "../core/protocol.js";
export type { PromotionEvent, TierEvent, WarningInfo } from "../core/hooks.js";
export type { PromotionResult, UpgraderPolicy } from "../core/upgrader.js";
export { applyRetention, planRetention } from "./retention.js";
export type { Amount, PolicyReport, RetentionEvent, RetentionOptions, RetentionPolicy, RetentionReport, RetentionTotals } from "../core/retention.js";
export { REFLOG_LIMIT, type Ref, type RefExpectation, type ReflogEntry, type TxOp, type TxOpResult, type TxResult } from "../core/refs.js";
export type { RefState, StoreRefs, TxBuilder, UpdateOptions } from "../core/store-refs.js";
export {
  MAX_GET_MANY,
  MAX_IN_VALUES,
  MAX_WHERE_TAGS,
  type DatumHeader,
  type Order,
  type QueryFilter,
  type QueryOptions,
  type QueryPage,
  type Select,
  type Selected,
  type TagFilter,
  type Where,
} from "../core/query.js";
export type { DeleteManyOptions, ListQuery } from "../core/store-query.js";
export { type DurabilityLabel, RANK_BANDS, rankLabel } from "../core/lattice.js";
export { DEFAULT_NAMESPACE, defaultDataDir } from "../core/paths.js";

// Errors.
export {
  BackendError,
  BudgetError,
  ConfigError,
  ConflictError,
  DgentError,
  ERROR_CODES,
  type ErrorCode,
  type ErrorKind,
  LifecycleError,
  UnavailableError,
  ValidationError,
  isDgentError,
} from "../core/errors.js";

// The built-in tiers and plugins, and the embedded tiers' factories.
export { type BuiltInTier, RANKS } from "../adapters/ranks.js";
export { defaultRegistry } from "./catalogue.js";
export { type MemoryOptions, memoryAdapter } from "../adapters/memory/index.js";
export { type JsonlOptions, jsonlAdapter } from "../adapters/jsonl/index.js";
export { type SqliteOptions, sqliteAdapter } from "../adapters/sqlite/index.js";

// The embedded default and the environment.
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
  tierForUrl,
} from "./default-store.js";

// Redaction: the one implementation every printed URL, error and config goes through.
export { isSecretKey, redactText, redactUrl } from "../core/redact.js";

// Migration between tiers.
export { type MigrateOptions, type MigrationReport, adapterForUrl, datumHash, migrate, redactPassword } from "./migrate.js";

// Config files.
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

// Kept for code written before `dgent/extend` existed: these are the kernel's names for adapter
// and plugin authors, re-exported unchanged. New code imports them from "dgent/extend".
export {
  /** @deprecated import from "dgent/extend" */ type Adapter,
  /** @deprecated import from "dgent/extend" */ type AdapterContext,
  /** @deprecated import from "dgent/extend" */ type AdapterDefinition,
  /** @deprecated import from "dgent/extend" */ type AdapterEvents,
  /** @deprecated import from "dgent/extend" */ type AdapterStats,
  /** @deprecated import from "dgent/extend" */ type CommitResult,
  /** @deprecated import from "dgent/extend" */ DEFAULT_LIST_LIMIT,
  /** @deprecated import from "dgent/extend" */ DEFAULT_MAX_CHAIN_DEPTH,
  /** @deprecated import from "dgent/extend" */ type DeferInfo,
  /** @deprecated import from "dgent/extend" */ type DeferredWrite,
  /** @deprecated import from "dgent/extend" */ type DgentErrorOptions,
  /** @deprecated import from "dgent/extend" */ type EvictionInfo,
  /** @deprecated import from "dgent/extend" */ HOOK_NAMES,
  /** @deprecated import from "dgent/extend" */ type HookName,
  /** @deprecated import from "dgent/extend" */ type IndexEntry,
  /** @deprecated import from "dgent/extend" */ type JsonSchema,
  /** @deprecated import from "dgent/extend" */ Lifecycle,
  /** @deprecated import from "dgent/extend" */ MAX_LIST_LIMIT,
  /** @deprecated import from "dgent/extend" */ OrderedIndex,
  /** @deprecated import from "dgent/extend" */ type PluginApi,
  /** @deprecated import from "dgent/extend" */ type PluginDefinition,
  /** @deprecated import from "dgent/extend" */ type ReadInfo,
  /** @deprecated import from "dgent/extend" */ Registry,
  /** @deprecated import from "dgent/extend" */ type ResolvedListOptions,
  /** @deprecated import from "dgent/extend" */ type RouterEvents,
  /** @deprecated import from "dgent/extend" */ type RouterOptions,
  /** @deprecated import from "dgent/extend" */ SILENT_EVENTS,
  /** @deprecated import from "dgent/extend" */ type TapOnly,
  /** @deprecated import from "dgent/extend" */ type TapOnlyHooks,
  /** @deprecated import from "dgent/extend" */ type TierState,
  /** @deprecated import from "dgent/extend" */ type WriteInfo,
  /** @deprecated import from "dgent/extend" */ assertDatum,
  /** @deprecated import from "dgent/extend" */ assertId,
  /** @deprecated import from "dgent/extend" */ assertMetadata,
  /** @deprecated import from "dgent/extend" */ assertNamespace,
  /** @deprecated import from "dgent/extend" */ byDurability,
  /** @deprecated import from "dgent/extend" */ checkOptions,
  /** @deprecated import from "dgent/extend" */ cloneDatum,
  /** @deprecated import from "dgent/extend" */ cloneDatums,
  /** @deprecated import from "dgent/extend" */ compareIds,
  /** @deprecated import from "dgent/extend" */ compareNewestFirst,
  /** @deprecated import from "dgent/extend" */ conflictError,
  /** @deprecated import from "dgent/extend" */ copyBytes,
  /** @deprecated import from "dgent/extend" */ defineAdapter,
  /** @deprecated import from "dgent/extend" */ definePlugin,
  /** @deprecated import from "dgent/extend" */ dgentError,
  /** @deprecated import from "dgent/extend" */ ensureWritableDir,
  /** @deprecated import from "dgent/extend" */ formatAjvErrors,
  /** @deprecated import from "dgent/extend" */ instantiateAdapter,
  /** @deprecated import from "dgent/extend" */ isOutage,
  /** @deprecated import from "dgent/extend" */ nearest,
  /** @deprecated import from "dgent/extend" */ resolveListOptions,
  /** @deprecated import from "dgent/extend" */ sameBytes,
  /** @deprecated import from "dgent/extend" */ sameMetadata,
  /** @deprecated import from "dgent/extend" */ sameValue,
  /** @deprecated import from "dgent/extend" */ walkCausalChain,
  /** @deprecated import from "dgent/extend" */ walkCausalChainSync,
  /** @deprecated import from "dgent/extend" */ wrapError,
} from "../core/index.js";
