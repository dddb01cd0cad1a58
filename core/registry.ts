import type { Adapter } from "./protocol.js";
import { dgentError, isDgentError } from "./errors.js";
import type { TapOnlyHooks } from "./hooks.js";
import { compileOptionsSchema, type JsonSchema, type OptionsValidator } from "./options-schema.js";

/** How an adapter is made from options; the registry and config files refer to it by `name`. */
export interface AdapterDefinition<Options = Record<string, unknown>> {
  readonly kind: "adapter";
  /** Folder name, registry key, error unit and config key, e.g. `"sqlite"`. */
  readonly name: string;
  /** Lattice rank of the adapters it makes (see `RANKS`). */
  readonly rank: number;
  readonly description?: string;
  /** JSON Schema of the options, checked with ajv before `create` runs. */
  readonly optionsSchema?: JsonSchema;
  /**
   * URL schemes this adapter accepts, without the colon (`["sqlite"]`, `["postgres", "postgresql"]`).
   * With `fromUrl`, a URL in `DGENT_DATABASE_URL`, `dgent migrate --from/--to` or a config file's
   * `url:` tier chooses this adapter: the registry looks the scheme up.
   */
  readonly urlSchemes?: readonly string[];
  /**
   * The options for `url` (one of `urlSchemes`), or `null` when the URL is not for this adapter
   * (another adapter of the same scheme takes it). Throw a `DgentError` for a malformed URL, with
   * any password redacted.
   */
  fromUrl?(url: string, context: UrlContext): Options | null;
  create(options: Options): Adapter;
}

/** What `fromUrl` knows besides the URL. */
export interface UrlContext {
  /** The namespace the store is for (`DGENT_NAMESPACE`, `--namespace`, or `"default"`). */
  readonly namespace: string;
  /** What the URL is for: the default store, or one end of a migration (read-only source). */
  readonly purpose: "store" | "migrate-source" | "migrate-target";
}

/** The adapter a URL chose, with the options `fromUrl` gave. */
export interface UrlChoice {
  readonly definition: AdapterDefinition<Record<string, unknown>>;
  readonly options: Record<string, unknown>;
}

/** A service a plugin can provide to its store (see `PluginDefinition.provides`). */
export type PluginService = "changes";
const PLUGIN_SERVICES: readonly string[] = ["changes"];

/** What a plugin's `apply` receives: hooks it can tap, never call. */
export interface PluginApi {
  readonly hooks: TapOnlyHooks;
  /** The plugin's own name (its taps and errors carry it). */
  readonly name: string;
  readonly namespace: string;
  /** The tiers of the store, most durable first. */
  readonly tiers: ReadonlyArray<{ readonly name: string; readonly rank: number }>;
  /** Reports through the store's `warning` hook. */
  warn(message: string, details?: Readonly<Record<string, unknown>>): void;
}

/**
 * A plugin: taps on a store's hooks. `apply` runs once per store when it opens; what it returns
 * (the plugin's handle: statistics, a change feed, `flush()`…) is what `store.plugin(definition)`
 * resolves to for that store.
 */
export interface PluginDefinition<Options = Record<string, unknown>, Handle = unknown> {
  readonly kind: "plugin";
  readonly name: string;
  readonly version?: string;
  readonly description?: string;
  /** Names of plugins that must be in the same store. */
  readonly dependsOn?: readonly string[];
  /**
   * Store services this plugin's handle implements, which the store then serves itself:
   * `"changes"` — the handle has `changes(options)` (an async iterable of changes) and
   * `subscribe(listener, options)` (returns the unsubscribe); `store.changes()` and
   * `store.subscribe()` call them.
   */
  readonly provides?: readonly PluginService[];
  readonly optionsSchema?: JsonSchema;
  apply(api: PluginApi, options: Options): Handle | Promise<Handle>;
}

const SCHEME = /^[a-z][a-z0-9+.-]*$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}(\/[a-z0-9][a-z0-9._-]{0,63})?$/;

function checkName(name: unknown, what: string): void {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw dgentError(
      "DGENT_INVALID_OPTIONS",
      `${what} name ${JSON.stringify(name)} must be lower-case letters, digits, ".", "_" or "-" (optionally "scope/name")`,
    );
  }
}

const validators = new WeakMap<object, OptionsValidator>();

function validatorFor(def: { readonly name: string; readonly optionsSchema?: JsonSchema }): OptionsValidator | null {
  if (!def.optionsSchema) return null;
  let v = validators.get(def);
  if (!v) {
    v = compileOptionsSchema(def.optionsSchema, def.name);
    validators.set(def, v);
  }
  return v;
}

/** Makes an adapter definition; the factory you export from an adapter package. */
export function defineAdapter<Options = Record<string, unknown>>(
  def: Omit<AdapterDefinition<Options>, "kind">,
): AdapterDefinition<Options> {
  checkName(def.name, "adapter");
  if (def.urlSchemes !== undefined) {
    if (!Array.isArray(def.urlSchemes) || def.urlSchemes.some((x) => typeof x !== "string" || !SCHEME.test(x))) {
      throw dgentError("DGENT_INVALID_OPTIONS", `adapter "${def.name}": urlSchemes must be URL schemes without the colon, e.g. ["dir"] for dir:// URLs`);
    }
    if (typeof def.fromUrl !== "function") {
      throw dgentError("DGENT_INVALID_OPTIONS", `adapter "${def.name}" declares urlSchemes but no fromUrl(url, context)`);
    }
  }
  if (typeof def.rank !== "number" || !Number.isFinite(def.rank)) {
    throw dgentError("DGENT_INVALID_OPTIONS", `adapter "${def.name}" must declare a finite numeric rank`);
  }
  const full = Object.freeze({ ...def, kind: "adapter" as const });
  validatorFor(full);
  return full;
}

/** Makes a plugin definition; the factory you export from a plugin package. */
export function definePlugin<Options = Record<string, unknown>, Handle = void>(
  def: Omit<PluginDefinition<Options, Handle>, "kind">,
): PluginDefinition<Options, Handle> {
  checkName(def.name, "plugin");
  for (const service of def.provides ?? []) {
    if (!PLUGIN_SERVICES.includes(service)) {
      throw dgentError("DGENT_INVALID_OPTIONS", `plugin "${def.name}" provides ${JSON.stringify(service)}; the services a plugin can provide are ${PLUGIN_SERVICES.join(", ")}`);
    }
  }
  const full = Object.freeze({ ...def, kind: "plugin" as const });
  validatorFor(full);
  return full;
}

/** Validates `options` against a definition's schema and applies its defaults. */
export function checkOptions<O>(
  def: { readonly name: string; readonly optionsSchema?: JsonSchema },
  options: unknown,
): O {
  const v = validatorFor(def);
  const value = options ?? {};
  return (v ? v(value) : value) as O;
}

/** Creates an adapter from its definition after checking the options. */
export function instantiateAdapter<O>(def: AdapterDefinition<O>, options?: unknown): Adapter {
  return def.create(checkOptions<O>(def, options));
}

type Loader<T> = () => Promise<T>;

/** A lazily loaded adapter: its name and URL schemes are known before its module is imported. */
export interface LazyAdapter<O = Record<string, unknown>> {
  readonly name: string;
  readonly urlSchemes?: readonly string[];
  load: Loader<AdapterDefinition<O>>;
}

/** A lazily loaded plugin. */
export interface LazyPlugin<O = Record<string, unknown>> {
  readonly name: string;
  load: Loader<PluginDefinition<O>>;
}

/**
 * Names to definitions. Entries may be lazy loaders, so a registry of many tiers imports only
 * the drivers that are used. The kernel's registry holds nothing; the composition layer's
 * `defaultRegistry` holds dgent's built-in tiers and plugins.
 */
export class Registry {
  readonly #adapters = new Map<string, AdapterDefinition<never> | Loader<AdapterDefinition<never>>>();
  /** Scheme → adapter names, in registration order. */
  readonly #schemes = new Map<string, string[]>();
  readonly #plugins = new Map<string, PluginDefinition<never> | Loader<PluginDefinition<never>>>();

  registerAdapter<O>(def: AdapterDefinition<O> | LazyAdapter<O>): this {
    checkName(def.name, "adapter");
    if (this.#adapters.has(def.name)) {
      throw dgentError("DGENT_DUPLICATE_NAME", `an adapter named "${def.name}" is already registered`);
    }
    this.#adapters.set(def.name, ("load" in def ? def.load : def) as never);
    for (const scheme of def.urlSchemes ?? []) {
      const names = this.#schemes.get(scheme) ?? [];
      names.push(def.name);
      this.#schemes.set(scheme, names);
    }
    return this;
  }

  /** Every URL scheme some registered adapter accepts, sorted. */
  urlSchemes(): string[] {
    return [...this.#schemes.keys()].sort();
  }

  /**
   * The adapter a URL names, by its scheme: the first adapter registered for that scheme whose
   * `fromUrl` accepts the URL. `DGENT_UNKNOWN_ADAPTER` when no adapter takes the scheme.
   */
  async adapterForUrl(url: string, context: UrlContext): Promise<UrlChoice> {
    const match = /^([a-z][a-z0-9+.-]*):/i.exec(url);
    const scheme = match ? (match[1] as string).toLowerCase() : "";
    for (const name of this.#schemes.get(scheme) ?? []) {
      const definition = await this.adapter(name);
      const options = definition.fromUrl?.(url, context) ?? null;
      if (options !== null) return { definition, options };
    }
    const known = this.urlSchemes();
    throw dgentError(
      "DGENT_UNKNOWN_ADAPTER",
      `no registered adapter accepts ${scheme ? `the "${scheme}:" scheme` : "a URL without a scheme"}; known schemes: ${known.map((k) => `${k}:`).join(", ") || "none"}`,
      { details: { scheme, known } },
    );
  }

  registerPlugin<O>(def: PluginDefinition<O> | LazyPlugin<O>): this {
    checkName(def.name, "plugin");
    if (this.#plugins.has(def.name)) {
      throw dgentError("DGENT_DUPLICATE_NAME", `a plugin named "${def.name}" is already registered`);
    }
    this.#plugins.set(def.name, ("load" in def ? def.load : def) as never);
    return this;
  }

  adapterNames(): string[] {
    return [...this.#adapters.keys()].sort();
  }

  pluginNames(): string[] {
    return [...this.#plugins.keys()].sort();
  }

  async adapter(name: string): Promise<AdapterDefinition<Record<string, unknown>>> {
    const entry = this.#adapters.get(name);
    if (!entry) {
      throw dgentError("DGENT_UNKNOWN_ADAPTER", unknownMessage("adapter", name, this.adapterNames()), {
        details: { name, known: this.adapterNames() },
      });
    }
    return (typeof entry === "function" ? await entry() : entry) as AdapterDefinition<Record<string, unknown>>;
  }

  async plugin(name: string): Promise<PluginDefinition<Record<string, unknown>>> {
    const entry = this.#plugins.get(name);
    if (!entry) {
      throw dgentError("DGENT_UNKNOWN_PLUGIN", unknownMessage("plugin", name, this.pluginNames()), {
        details: { name, known: this.pluginNames() },
      });
    }
    return (typeof entry === "function" ? await entry() : entry) as PluginDefinition<Record<string, unknown>>;
  }

  /** Creates an adapter by registered name. */
  async createAdapter(name: string, options?: unknown): Promise<Adapter> {
    return instantiateAdapter(await this.adapter(name), options);
  }
}

function unknownMessage(what: string, name: string, known: string[]): string {
  const near = nearest(name, known);
  const hint = near ? ` Did you mean "${near}"?` : "";
  return `no ${what} named "${name}" is registered.${hint} Known: ${known.join(", ") || "none"}.`;
}

/** The closest known name by edit distance, when it is close enough to be a typo. */
export function nearest(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== null && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] as number;
}

/** A plugin with its options, or a plugin definition used with default options. */
export type PluginUse<O = Record<string, unknown>> = PluginDefinition<O> | { plugin: PluginDefinition<O>; options?: O };

/**
 * Any plugin with any options, as `StoreOptions.plugins` takes them. Options are checked against
 * the plugin's JSON Schema with ajv when the store is created; plugins' typed factories
 * (`cachePlugin({ … })`) also check them at compile time.
 */
export type AnyPluginUse = PluginDefinition<never> | { readonly plugin: PluginDefinition<never>; readonly options?: unknown };

/** A plugin ready to apply: its definition and its checked options. */
export interface ResolvedPluginUse {
  readonly plugin: PluginDefinition<never>;
  readonly options: unknown;
}

/**
 * The one check of a store's plugins, for `createStore` and config files alike: each made by
 * `definePlugin`, options valid against its schema (defaults applied), no name twice, every
 * `dependsOn` present, no dependency cycle. Returns them in the order they apply: dependencies
 * first, otherwise as given. Errors carry `details.index`, the position of the plugin at fault.
 */
export function resolvePlugins(uses: readonly AnyPluginUse[]): ResolvedPluginUse[] {
  if (!Array.isArray(uses)) throw dgentError("DGENT_INVALID_OPTIONS", "plugins must be an array");
  const index = new Map<string, number>();
  const resolved = uses.map((use, i) => {
    const plugin = (use !== null && typeof use === "object" && "plugin" in use ? use.plugin : use) as PluginDefinition<never>;
    if (!plugin || plugin.kind !== "plugin") {
      throw dgentError("DGENT_INVALID_OPTIONS", `plugins[${i}] was not made with definePlugin()`, { details: { index: i } });
    }
    const earlier = index.get(plugin.name);
    if (earlier !== undefined) {
      throw dgentError("DGENT_DUPLICATE_NAME", `plugin "${plugin.name}" is used twice in one store (plugins[${earlier}] and plugins[${i}])`, {
        unit: plugin.name,
        details: { index: i, earlier, name: plugin.name },
      });
    }
    index.set(plugin.name, i);
    const raw = use !== null && typeof use === "object" && "plugin" in use ? use.options : undefined;
    try {
      return { plugin, options: checkOptions(plugin, raw) as unknown };
    } catch (error) {
      if (!isDgentError(error)) throw error;
      throw dgentError(error.code, error.message, { unit: error.unit, cause: error.cause, details: { ...error.details, index: i } });
    }
  });
  for (const [i, { plugin }] of resolved.entries()) {
    for (const dep of plugin.dependsOn ?? []) {
      if (!index.has(dep)) {
        throw dgentError("DGENT_PLUGIN_DEPENDENCY", `plugin "${plugin.name}" depends on plugin "${dep}", which is not in this store`, {
          unit: plugin.name,
          details: { index: i, plugin: plugin.name, missing: dep },
        });
      }
    }
  }
  return orderByDependencies(resolved, index);
}

/** Dependencies apply first; a cycle is a `DGENT_PLUGIN_DEPENDENCY` error. */
function orderByDependencies<T extends { readonly plugin: PluginDefinition<never> }>(items: readonly T[], index: ReadonlyMap<string, number>): T[] {
  const byName = new Map(items.map((i) => [i.plugin.name, i]));
  const out: T[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (item: T, path: string[]): void => {
    const name = item.plugin.name;
    if (state.get(name) === "done") return;
    if (state.get(name) === "visiting") {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw dgentError("DGENT_PLUGIN_DEPENDENCY", `plugins depend on each other in a cycle: ${cycle.join(" → ")}`, {
        unit: name,
        details: { index: index.get(cycle[0] as string), cycle },
      });
    }
    state.set(name, "visiting");
    for (const dep of item.plugin.dependsOn ?? []) visit(byName.get(dep) as T, [...path, name]);
    state.set(name, "done");
    out.push(item);
  };
  for (const item of items) visit(item, []);
  return out;
}
