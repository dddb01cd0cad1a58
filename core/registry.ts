import type { Adapter } from "./protocol.js";
import { dgentError } from "./errors.js";
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
  create(options: Options): Adapter;
}

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
  readonly optionsSchema?: JsonSchema;
  apply(api: PluginApi, options: Options): Handle | Promise<Handle>;
}

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

/**
 * Names to definitions. Built-in tiers are registered as lazy loaders so core never imports a
 * driver nobody uses.
 */
export class Registry {
  readonly #adapters = new Map<string, AdapterDefinition<never> | Loader<AdapterDefinition<never>>>();
  readonly #plugins = new Map<string, PluginDefinition<never> | Loader<PluginDefinition<never>>>();

  registerAdapter<O>(def: AdapterDefinition<O> | { name: string; load: Loader<AdapterDefinition<O>> }): this {
    checkName(def.name, "adapter");
    if (this.#adapters.has(def.name)) {
      throw dgentError("DGENT_DUPLICATE_NAME", `an adapter named "${def.name}" is already registered`);
    }
    this.#adapters.set(def.name, ("load" in def ? def.load : def) as never);
    return this;
  }

  registerPlugin<O>(def: PluginDefinition<O> | { name: string; load: Loader<PluginDefinition<O>> }): this {
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

/** The registry with dgent's built-in tiers. Third-party modules register into it too. */
export const defaultRegistry = new Registry()
  .registerAdapter({ name: "memory", load: async () => (await import("../adapters/memory/index.js")).memory })
  .registerAdapter({ name: "jsonl", load: async () => (await import("../adapters/jsonl/index.js")).jsonl })
  .registerAdapter({ name: "sqlite", load: async () => (await import("../adapters/sqlite/index.js")).sqlite })
  .registerAdapter({ name: "postgres-docker", load: async () => (await import("../adapters/postgres/index.js")).postgresDocker })
  .registerAdapter({ name: "postgres-kind", load: async () => (await import("../adapters/postgres/index.js")).postgresKind })
  .registerAdapter({ name: "s3", load: async () => (await import("../adapters/s3/index.js")).s3 })
  .registerAdapter({ name: "gcs", load: async () => (await import("../adapters/gcs/index.js")).gcs })
  .registerPlugin({ name: "cache", load: async () => (await import("../plugins/cache/index.js")).cache })
  .registerPlugin({ name: "entropy", load: async () => (await import("../plugins/entropy/index.js")).entropy })
  .registerPlugin({ name: "synergy", load: async () => (await import("../plugins/synergy/index.js")).synergy })
  .registerPlugin({ name: "lens", load: async () => (await import("../plugins/lens/index.js")).lens })
  .registerPlugin({ name: "reactive", load: async () => (await import("../plugins/reactive/index.js")).reactive })
  .registerPlugin({ name: "compression", load: async () => (await import("../plugins/compression/index.js")).compression })
  .registerPlugin({ name: "write-behind", load: async () => (await import("../plugins/write-behind/index.js")).writeBehind });
