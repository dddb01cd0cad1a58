import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dgentError } from "./errors.js";
import { assertNamespace, DEFAULT_NAMESPACE, defaultDataDir } from "./paths.js";
import { defaultRegistry, type Registry } from "./registry.js";
import { createStore, type PluginUse, type Store, type StoreOptions } from "./store.js";
import type { UpgraderPolicy } from "./upgrader.js";

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
export function postgresProfileFor(url: string): "postgres-docker" | "postgres-kind" {
  let host = "";
  try {
    host = new URL(url).hostname;
  } catch {
    // An unparsable URL is reported by the Postgres tier itself, with the password redacted.
  }
  return /\.svc(\.cluster\.local)?$/i.test(host) ? "postgres-kind" : "postgres-docker";
}

/** A tier of the default chain: a registered adapter name and its options. */
export interface TierChoice {
  readonly adapter: string;
  readonly options: Record<string, unknown>;
}

/**
 * The tiers the environment asks for, most durable first: an explicit `DGENT_BACKEND` gives that
 * one tier; a Postgres URL gives Postgres, then SQLite, then memory; otherwise SQLite, then memory.
 */
export function defaultTiers(resolved: ResolvedEnvironment): TierChoice[] {
  const { url, backend, namespace, dataDir } = resolved;
  const sqlite: TierChoice =
    url?.startsWith("sqlite:") ? { adapter: "sqlite", options: { path: sqlitePathFromUrl(url) } } : { adapter: "sqlite", options: { namespace, dataDir } };
  const postgres = (name: string): TierChoice => ({ adapter: name, options: { namespace, ...(url && !url.startsWith("sqlite:") ? { url } : {}) } });
  if (backend !== null) {
    if (backend === "memory") return [{ adapter: "memory", options: {} }];
    if (backend === "jsonl") return [{ adapter: "jsonl", options: { namespace, dataDir } }];
    if (backend === "sqlite") return [sqlite];
    if (backend === "postgres") return [postgres(url ? postgresProfileFor(url) : "postgres-docker")];
    return [postgres(backend)];
  }
  if (url !== null && !url.startsWith("sqlite:")) {
    if (!/^postgres(ql)?:\/\//i.test(url)) {
      const scheme = url.split(":", 1)[0] ?? "";
      throw dgentError("DGENT_UNKNOWN_ADAPTER", `the database URL uses the "${scheme}:" scheme; dgent knows postgres:// and sqlite:///`, {
        details: { scheme },
      });
    }
    return [postgres(postgresProfileFor(url)), sqlite, { adapter: "memory", options: {} }];
  }
  return [sqlite, { adapter: "memory", options: {} }];
}

/** The store options of the embedded default (and of the CLI without a config file). */
export async function defaultStoreOptions(options: DefaultStoreOptions = {}): Promise<StoreOptions> {
  const env = options.env ?? process.env;
  const resolved = resolveEnvironment(env, {
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
  });
  const registry = options.registry ?? defaultRegistry;
  const choices = defaultTiers(resolved);
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
  // The seed writes `sqlite:///~/.local/share/...`: a leading "~" is the home directory.
  const home = /^sqlite:\/\/\/?~\//.exec(url);
  if (home) return join(homedir(), url.slice(home[0].length));
  if (url.startsWith("sqlite:///")) return fileURLToPath(`file:///${url.slice("sqlite:///".length)}`);
  if (url.startsWith("sqlite://")) return join(process.cwd(), url.slice("sqlite://".length));
  if (url.startsWith("sqlite:")) return url.slice("sqlite:".length);
  throw dgentError("DGENT_INVALID_OPTIONS", "a SQLite URL looks like sqlite:///absolute/path.db");
}
