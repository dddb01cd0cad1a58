import { join } from "node:path";
import { dgentError } from "../core/errors.js";
import { assertNamespace, DEFAULT_NAMESPACE, defaultDataDir, localPathFromUrl } from "../core/paths.js";
import type { Registry, UrlContext } from "../core/registry.js";
import { profileForUrl } from "../adapters/postgres/profile-for-url.js";
import { defaultRegistry } from "./catalogue.js";
import { createStore, type PluginUse, type Store, type StoreOptions } from "../core/store.js";
import type { UpgraderPolicy } from "../core/upgrader.js";

export interface DefaultStoreOptions {
  namespace?: string;
  /** Overrides the XDG data directory. */
  dataDir?: string;
  /** Environment to read (defaults to `process.env`). */
  env?: NodeJS.ProcessEnv;
  plugins?: readonly PluginUse<never>[];
  upgrader?: UpgraderPolicy | false;
  registry?: Registry;
}

/** Where the database URL came from, in the seed's resolution order. */
export type UrlSource = "DGENT_DATABASE_URL" | "DGENT_POSTGRES_URL" | "KGENTS_DATABASE_URL" | "KGENTS_POSTGRES_URL";

export interface ResolvedEnvironment {
  /** The database URL with SQLAlchemy-style driver suffixes removed (`postgresql+asyncpg://` → `postgres://`). */
  readonly url: string | null;
  readonly urlSource: UrlSource | null;
  /** A tier forced by `DGENT_BACKEND` / `KGENTS_DGENT_BACKEND`, lower-cased. */
  readonly backend: string | null;
  readonly namespace: string;
  readonly dataDir: string;
}

const URL_VARIABLES: readonly UrlSource[] = ["DGENT_DATABASE_URL", "DGENT_POSTGRES_URL", "KGENTS_DATABASE_URL", "KGENTS_POSTGRES_URL"];

/**
 * The environment, resolved as seed 003 orders it: `DGENT_DATABASE_URL` (canonical), then the
 * legacy `DGENT_POSTGRES_URL`, then the seed's `KGENTS_*` names; without a URL, SQLite under
 * `$XDG_DATA_HOME/dgent`, else `~/.local/share/dgent`.
 */
export function resolveEnvironment(env: NodeJS.ProcessEnv = process.env, overrides: { namespace?: string; dataDir?: string } = {}): ResolvedEnvironment {
  let url: string | null = null;
  let urlSource: UrlSource | null = null;
  for (const name of URL_VARIABLES) {
    const value = env[name];
    if (value) {
      url = value.replace(/^postgres(ql)?\+[a-z0-9]+:\/\//i, "postgres://").replace(/^sqlite\+[a-z0-9]+:/i, "sqlite:");
      urlSource = name;
      break;
    }
  }
  const backend = (env.DGENT_BACKEND || env.KGENTS_DGENT_BACKEND || "").toLowerCase() || null;
  const namespace = overrides.namespace ?? (env.DGENT_NAMESPACE || DEFAULT_NAMESPACE);
  assertNamespace(namespace);
  return { url, urlSource, backend, namespace, dataDir: overrides.dataDir ?? defaultDataDir(env) };
}

/** `postgres-kind` for in-cluster service DNS (`*.svc`, `*.svc.cluster.local`), else `postgres-docker`. */
export const postgresProfileFor: (url: string) => "postgres-docker" | "postgres-kind" = profileForUrl;

/** A tier of the default chain: a registered adapter name and its options. */
export interface TierChoice {
  readonly adapter: string;
  readonly options: Record<string, unknown>;
}

/** `postgresql+asyncpg://…` → `postgresql://…`: SQLAlchemy-style driver suffixes name no tier. */
export function withoutDriverSuffix(url: string): string {
  return url.replace(/^([a-z][a-z0-9.-]*)\+[a-z0-9]+:/i, "$1:");
}

/**
 * The tier a URL names, by a registry lookup of its scheme (`sqlite:`, `postgres:`, `s3:`… or a
 * third-party adapter's own): what `DGENT_DATABASE_URL`, `dgent migrate` and config files use.
 */
export async function tierForUrl(
  url: string,
  namespace: string,
  purpose: UrlContext["purpose"] = "store",
  registry: Registry = defaultRegistry,
): Promise<TierChoice & { readonly rank: number }> {
  const { definition, options } = await registry.adapterForUrl(withoutDriverSuffix(url), { namespace, purpose });
  return { adapter: definition.name, options, rank: definition.rank };
}

/**
 * The options a tier chosen by name alone gets: the namespace and data directory, where its
 * options schema declares them (so a third-party tier named by `DGENT_BACKEND` gets them too).
 */
async function byName(name: string, resolved: ResolvedEnvironment, registry: Registry): Promise<TierChoice & { readonly rank: number }> {
  const definition = await registry.adapter(name);
  const known = (definition.optionsSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
  const options: Record<string, unknown> = {};
  if ("namespace" in known) options.namespace = resolved.namespace;
  if ("dataDir" in known) options.dataDir = resolved.dataDir;
  return { adapter: name, options, rank: definition.rank };
}

/**
 * The tiers the environment asks for, most durable first: an explicit `DGENT_BACKEND` gives that
 * one tier (with the URL's options when the URL names it; `postgres` means the Postgres profile
 * of the URL); a URL gives the tier its scheme names, then the embedded SQLite and memory below
 * it; otherwise SQLite, then memory.
 */
export async function defaultTiers(resolved: ResolvedEnvironment, registry: Registry = defaultRegistry): Promise<TierChoice[]> {
  const { url, backend, namespace } = resolved;
  const fromUrl = url !== null ? await tierForUrl(url, namespace, "store", registry) : null;
  const strip = ({ adapter, options }: TierChoice): TierChoice => ({ adapter, options });
  if (backend !== null) {
    if (fromUrl && (fromUrl.adapter === backend || (backend === "postgres" && fromUrl.adapter.startsWith("postgres-")))) return [strip(fromUrl)];
    return [strip(await byName(backend === "postgres" ? "postgres-docker" : backend, resolved, registry))];
  }
  const below = [await byName("sqlite", resolved, registry), await byName("memory", resolved, registry)];
  if (fromUrl === null) return below.map(strip);
  return [fromUrl, ...below.filter((t) => t.rank < fromUrl.rank)].map(strip);
}

/** The store options of the embedded default (and of the CLI without a config file). */
export async function defaultStoreOptions(options: DefaultStoreOptions = {}): Promise<StoreOptions> {
  const env = options.env ?? process.env;
  const resolved = resolveEnvironment(env, {
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
  });
  const registry = options.registry ?? defaultRegistry;
  const choices = await defaultTiers(resolved, registry);
  const tiers = [];
  for (const choice of choices) tiers.push(await registry.createAdapter(choice.adapter, choice.options));
  return {
    tiers,
    namespace: resolved.namespace,
    plugins: options.plugins ?? [],
    ...(choices.length > 1 ? { journalPath: join(resolved.dataDir, `${resolved.namespace}.pending-deletes.jsonl`) } : {}),
    ...(options.upgrader !== undefined ? { upgrader: options.upgrader } : {}),
  };
}

/**
 * The embedded default, opened: SQLite at `$XDG_DATA_HOME/dgent/<namespace>.db` with memory as
 * the last resort, or what `DGENT_DATABASE_URL` / `DGENT_BACKEND` ask for (see `defaultTiers`).
 */
export async function openDefaultStore(options: DefaultStoreOptions = {}): Promise<Store> {
  const store = createStore(await defaultStoreOptions(options));
  await store.open();
  return store;
}

/** `sqlite:///abs/path.db` → `/abs/path.db`; `sqlite://relative.db` → `relative.db` under the working directory. */
export function sqlitePathFromUrl(url: string): string {
  if (!url.startsWith("sqlite:")) throw dgentError("DGENT_INVALID_OPTIONS", "a SQLite URL looks like sqlite:///absolute/path.db");
  return localPathFromUrl(url);
}
