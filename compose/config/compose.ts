import { join, resolve } from "node:path";
import { isDgentError, type DgentError } from "../../core/errors.js";
import { assertNamespace, DEFAULT_NAMESPACE, defaultDataDir } from "../../core/paths.js";
import type { Adapter } from "../../core/protocol.js";
import { byDurability } from "../../core/lattice.js";
import { checkOptions, instantiateAdapter, nearest, resolvePlugins, type AdapterDefinition, type PluginDefinition, type Registry } from "../../core/registry.js";
import { defaultRegistry } from "../catalogue.js";
import { createStore, type Store, type StoreOptions } from "../../core/store.js";
import type { UpgraderPolicy } from "../../core/upgrader.js";
import { resolveRetentionPolicies, type RetentionPolicy } from "../../core/retention.js";
import { pointer } from "./expand.js";
import { loadConfig, type LoadedConfig } from "./load.js";
import { composeRegistry, type LoadedModule } from "./modules.js";
import { configProblem, type ConfigPath } from "./problem.js";
import { parseDuration, parseSize } from "./units.js";
import { coerceReferences, describeAjvErrors, problemsError } from "./validate.js";

export interface ConfigOptions {
  /** Environment for `${VAR}` expansion and defaults (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Where a relative config path, and a config object's relative paths, start (default `process.cwd()`). */
  cwd?: string;
  /** Names resolve here first (default `defaultRegistry`); the config's modules are layered on top, never into it. */
  registry?: Registry;
  /** Overrides the file's `namespace` (the CLI's `--namespace`). */
  namespace?: string;
  /** Overrides the file's `dataDir` (the CLI's `--data-dir`). */
  dataDir?: string;
}

/** One tier as the config resolved it. */
export interface ResolvedTier {
  readonly adapter: string;
  readonly rank: number;
  /** Options after defaults: what the adapter was created with. */
  readonly options: Record<string, unknown>;
}

export interface ResolvedPlugin {
  readonly plugin: string;
  readonly options: Record<string, unknown>;
}

/** A config file turned into store options, with what it took to get there. */
export interface ResolvedConfig extends LoadedConfig {
  readonly namespace: string;
  readonly dataDir: string;
  readonly tiers: readonly ResolvedTier[];
  readonly landing: string;
  readonly plugins: readonly ResolvedPlugin[];
  readonly modules: readonly LoadedModule[];
  readonly upgrader: UpgraderPolicy;
  readonly journalPath: string | null;
  /** The `retention` policies, durations in ms (core/RETENTION.md). */
  readonly retention: readonly RetentionPolicy[];
  readonly registry: Registry;
  /** Ready for `createStore` (adapters created, not opened). */
  readonly storeOptions: StoreOptions;
}

/**
 * Reads, checks and resolves a config file (or object) without opening anything: loads its
 * modules, finds every adapter and plugin by name, checks their options against their schemas,
 * creates the adapters, orders the tiers by rank (most durable first, as `createStore` does), and
 * checks the landing tier and plugin dependencies with the store's own check.
 */
export async function resolveConfig(pathOrObject: string | object, options: ConfigOptions = {}): Promise<ResolvedConfig> {
  const env = options.env ?? process.env;
  const loaded = loadConfig(pathOrObject, { env, ...(options.cwd !== undefined ? { cwd: options.cwd } : {}) });
  const { source, config, dir, references } = loaded;
  const { registry, modules } = await composeRegistry(source, config.modules ?? [], dir, options.registry ?? defaultRegistry);

  const namespace = options.namespace ?? config.namespace ?? (env.DGENT_NAMESPACE || DEFAULT_NAMESPACE);
  try {
    assertNamespace(namespace);
  } catch (error) {
    throw configProblem("DGENT_INVALID_OPTIONS", source, ["namespace"], (error as Error).message, { cause: error });
  }
  const dataDir = options.dataDir !== undefined ? resolve(options.cwd ?? process.cwd(), options.dataDir) : config.dataDir !== undefined ? resolve(dir, config.dataDir) : defaultDataDir(env);

  // Tiers: by name, options checked, adapters created; listed most durable first.
  const tiers: ResolvedTier[] = [];
  const adapters: Adapter[] = [];
  const tierIndex = new Map<string, number>();
  for (const [index, entry] of config.tiers.entries()) {
    const name = typeof entry === "string" ? entry : entry.adapter;
    const namePath: ConfigPath = typeof entry === "string" ? ["tiers", index] : ["tiers", index, "adapter"];
    const optionsPath: ConfigPath = ["tiers", index, "options"];
    const earlier = tierIndex.get(name);
    if (earlier !== undefined) {
      throw configProblem("DGENT_DUPLICATE_NAME", source, namePath, `the tier "${name}" is already listed at tiers[${earlier}]; a store has each adapter once`, { details: { name } });
    }
    tierIndex.set(name, index);
    const def = await lookup(() => registry.adapter(name), source, namePath);
    const raw: Record<string, unknown> = { ...(typeof entry === "string" ? {} : (entry.options ?? {})) };
    const properties = (def.optionsSchema?.properties ?? {}) as Record<string, unknown>;
    if ("namespace" in properties && raw.namespace === undefined) raw.namespace = namespace;
    if ("dataDir" in properties && raw.dataDir === undefined && raw.path === undefined) raw.dataDir = dataDir;
    const checked = checkWithReferences(def, raw, optionsPath, loaded);
    let adapter: Adapter;
    try {
      adapter = instantiateAdapter(def as AdapterDefinition<Record<string, unknown>>, checked);
    } catch (error) {
      if (!isDgentError(error)) throw error;
      throw configProblem(error.code, source, guessOptionPath(error, optionsPath, checked), `the ${name} tier refused its options: ${error.message}`, { cause: error, unit: error.unit });
    }
    tiers.push({ adapter: name, rank: def.rank, options: checked });
    adapters.push(adapter);
  }
  // The store's one order rule: most durable first by rank, tiers of equal rank as listed.
  const ordered = byDurability(tiers);

  const landing = config.landing ?? (ordered[0] as ResolvedTier).adapter;
  if (!tierIndex.has(landing)) {
    const near = nearest(landing, [...tierIndex.keys()]);
    throw configProblem("DGENT_CONFIG_INVALID", source, ["landing"], `"${landing}" is not one of the tiers listed${near ? `; did you mean "${near}"?` : ""} Tiers: ${[...tierIndex.keys()].join(", ")}.`, {
      details: { landing },
    });
  }

  // Plugins: by name, options checked, dependencies present and acyclic.
  const plugins: ResolvedPlugin[] = [];
  const uses: { plugin: PluginDefinition<never>; options: unknown }[] = [];
  const pluginIndex = new Map<string, number>();
  for (const [index, entry] of (config.plugins ?? []).entries()) {
    const name = typeof entry === "string" ? entry : entry.plugin;
    const namePath: ConfigPath = typeof entry === "string" ? ["plugins", index] : ["plugins", index, "plugin"];
    const earlier = pluginIndex.get(name);
    if (earlier !== undefined) {
      throw configProblem("DGENT_DUPLICATE_NAME", source, namePath, `the plugin "${name}" is already listed at plugins[${earlier}]; a store applies each plugin once`, { details: { name } });
    }
    pluginIndex.set(name, index);
    const def = await lookup(() => registry.plugin(name), source, namePath);
    const raw = { ...(typeof entry === "string" ? {} : (entry.options ?? {})) };
    const checked = checkWithReferences(def, raw, ["plugins", index, "options"], loaded);
    plugins.push({ plugin: name, options: checked });
    uses.push({ plugin: def as PluginDefinition<never>, options: checked });
  }
  // The store's one plugin check (dependencies present, no cycle), with the place in the file.
  try {
    resolvePlugins(uses);
  } catch (error) {
    if (!isDgentError(error) || typeof error.details.index !== "number") throw error;
    const missing = typeof error.details.missing === "string" ? `; add it under plugins (- plugin: ${error.details.missing})` : "";
    throw configProblem(error.code, source, ["plugins", error.details.index], `${error.message}${missing}`, { cause: error, unit: error.unit, details: { ...error.details } });
  }

  const upgrader: UpgraderPolicy = {};
  const u = config.upgrader ?? {};
  if (u.enabled !== undefined) upgrader.enabled = u.enabled;
  if (u.intervalMs !== undefined) upgrader.intervalMs = parseDuration(u.intervalMs);
  if (u.ageMs !== undefined) upgrader.ageMs = parseDuration(u.ageMs);
  if (u.sizeBytes !== undefined) upgrader.sizeBytes = parseSize(u.sizeBytes);
  const journalPath =
    config.journalPath !== undefined ? resolve(dir, config.journalPath) : tiers.length > 1 ? join(dataDir, `${namespace}.pending-deletes.jsonl`) : null;
  const backoff = config.probeBackoffMs;

  // Retention: durations to ms, then the store's own check (moveTo a listed tier, …) at its place in the file.
  const retention: RetentionPolicy[] = (config.retention ?? []).map((entry) => {
    const { deleteAfterMs, moveAfterMs, ...rest } = entry;
    return {
      ...rest,
      ...(deleteAfterMs !== undefined ? { deleteAfterMs: parseDuration(deleteAfterMs) } : {}),
      ...(moveAfterMs !== undefined ? { moveAfterMs: parseDuration(moveAfterMs) } : {}),
    } as RetentionPolicy;
  });
  try {
    resolveRetentionPolicies(retention, [...tierIndex.keys()]);
  } catch (error) {
    if (!isDgentError(error) || typeof error.details.field !== "string") throw error;
    const path: ConfigPath = error.details.field
      .split(/[.[\]]+/)
      .filter((s) => s !== "")
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const message = error.message.replace(/^\S+: /, "");
    throw configProblem("DGENT_CONFIG_INVALID", source, path, message, { cause: error, details: { field: error.details.field } });
  }

  const storeOptions: StoreOptions = {
    tiers: adapters,
    plugins: uses as never,
    namespace,
    landing,
    upgrader,
    ...(retention.length ? { retention } : {}),
    ...(journalPath !== null ? { journalPath } : {}),
    ...(config.maxChainDepth !== undefined ? { maxChainDepth: config.maxChainDepth } : {}),
    ...(backoff
      ? {
          probeBackoffMs: {
            ...(backoff.min !== undefined ? { min: parseDuration(backoff.min) } : {}),
            ...(backoff.max !== undefined ? { max: parseDuration(backoff.max) } : {}),
          },
        }
      : {}),
  };
  return { ...loaded, namespace, dataDir, tiers: ordered, landing, plugins, modules, upgrader, journalPath, retention, registry, storeOptions };
}

/**
 * A store composed from a config file or object, not yet opened (operations open it on first use,
 * or call `open()`): its tiers with their options, landing tier, upgrader policy and plugins, with
 * the third-party modules it names loaded first. Every error names the file, the path inside it
 * and the line.
 */
export async function createStoreFromConfig(pathOrObject: string | object, options: ConfigOptions = {}): Promise<Store> {
  const resolved = await resolveConfig(pathOrObject, options);
  try {
    return createStore(resolved.storeOptions);
  } catch (error) {
    if (!isDgentError(error)) throw error;
    throw configProblem(error.code, resolved.source, [], error.message, { cause: error, unit: error.unit });
  }
}

/** A registry lookup; an unknown name becomes an error at its place in the file (with "did you mean"). */
async function lookup<T>(find: () => Promise<T>, source: LoadedConfig["source"], path: ConfigPath): Promise<T> {
  try {
    return await find();
  } catch (error) {
    if (!isDgentError(error)) throw error;
    throw configProblem(error.code, source, path, error.message, { cause: error, unit: error.unit, details: { ...error.details } });
  }
}

/** Options checked against a definition's schema; `${VAR}` strings become the numbers or booleans asked for. */
function checkWithReferences(
  def: { readonly name: string; readonly optionsSchema?: AdapterDefinition["optionsSchema"] },
  raw: Record<string, unknown>,
  path: ConfigPath,
  loaded: LoadedConfig,
): Record<string, unknown> {
  for (let round = 0; ; round++) {
    try {
      return checkOptions<Record<string, unknown>>(def, raw);
    } catch (error) {
      const errors = isDgentError(error, "DGENT_INVALID_OPTIONS") ? ((error as DgentError).details.errors as never[] | undefined) : undefined;
      if (!errors) throw error;
      if (round < 4 && coerceReferences(raw, errors, loaded.references, pointer(path))) continue;
      throw problemsError("DGENT_INVALID_OPTIONS", loaded.source, describeAjvErrors(errors, def.optionsSchema ?? {}, raw, path).map((p) => ({
        ...p,
        message: `${p.message} (options of "${def.name}")`,
      })), error);
    }
  }
}

/** The option an adapter's own error is about, when its message names one of the keys. */
function guessOptionPath(error: DgentError, base: ConfigPath, options: Record<string, unknown>): ConfigPath {
  const key = Object.keys(options)
    .filter((k) => new RegExp(`(^|[^\\w])${k.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([^\\w]|$)`, "i").test(error.message))
    .sort((a, b) => b.length - a.length)[0];
  return key ? [...base, key] : base;
}
