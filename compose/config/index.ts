/** Config files: find, load, check and compose a store from `dgent.config.json` / `.yaml`. */
export { createStoreFromConfig, resolveConfig, type ConfigOptions, type ResolvedConfig, type ResolvedPlugin, type ResolvedTier } from "./compose.js";
export { CONFIG_FILE_NAMES, findConfig, loadConfig, type ConfigOrigin, type FindConfigOptions, type FoundConfig, type LoadConfigOptions, type LoadedConfig } from "./load.js";
export { RANGE_EXPORT, type ComposedRegistry, type LoadedModule } from "./modules.js";
export { REDACTED, isSecretKey, redactConfig, redactString } from "./redact.js";
export { type ConfigSource, type SourcePosition } from "./source.js";
export { parseDuration, parseSize } from "./units.js";
export { configSchema, type ConfigFile, type PluginEntry, type TierEntry } from "./validate.js";
export { dgentVersion } from "./version.js";
