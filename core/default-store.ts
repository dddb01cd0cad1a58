import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dgentError } from "./errors.js";
import { assertNamespace, DEFAULT_NAMESPACE, defaultDataDir } from "./paths.js";
import { defaultRegistry } from "./registry.js";
import { createStore, type PluginUse, type Store } from "./store.js";

export interface DefaultStoreOptions {
  namespace?: string;
  /** Overrides the XDG data directory. */
  dataDir?: string;
  /** Environment to read (defaults to `process.env`). */
  env?: NodeJS.ProcessEnv;
  plugins?: readonly PluginUse<never>[];
}

/** Reads a variable by its dgent name, then its seed-era `KGENTS_*` alias. */
export function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[`DGENT_${name}`] ?? env[`KGENTS_${name}`] ?? (name === "BACKEND" ? env.KGENTS_DGENT_BACKEND : undefined);
  return value === "" ? undefined : value;
}

/**
 * The embedded default: SQLite at `$XDG_DATA_HOME/dgent/<namespace>.db`. `DGENT_BACKEND`
 * (`memory`, `jsonl`, `sqlite`) forces a local tier; `DGENT_DATABASE_URL=sqlite:///path.db`
 * picks the file. Other URL schemes are served by the tiers that register them.
 */
export async function openDefaultStore(options: DefaultStoreOptions = {}): Promise<Store> {
  const env = options.env ?? process.env;
  const namespace = options.namespace ?? env.DGENT_NAMESPACE ?? DEFAULT_NAMESPACE;
  assertNamespace(namespace);
  const dataDir = options.dataDir ?? defaultDataDir(env);
  const backend = envValue(env, "BACKEND");
  const url = envValue(env, "DATABASE_URL");

  let adapterName = backend ?? "sqlite";
  let adapterOptions: Record<string, unknown> = { namespace, dataDir };
  if (url !== undefined && (backend === undefined || backend === "sqlite")) {
    if (!url.startsWith("sqlite:")) {
      const scheme = url.split(":", 1)[0] ?? "";
      throw dgentError(
        "DGENT_UNKNOWN_ADAPTER",
        `DGENT_DATABASE_URL uses the "${scheme}:" scheme, which no registered tier serves in this version`,
        { unit: "core", details: { scheme } },
      );
    }
    adapterName = "sqlite";
    adapterOptions = { namespace, path: sqlitePathFromUrl(url) };
  }
  if (adapterName === "memory") adapterOptions = {};
  const tier = await defaultRegistry.createAdapter(adapterName, adapterOptions);
  const store = createStore({ tiers: [tier], namespace, plugins: options.plugins ?? [] });
  await store.open();
  return store;
}

/** `sqlite:///abs/path.db` → `/abs/path.db`; `sqlite://relative.db` → `relative.db`. */
export function sqlitePathFromUrl(url: string): string {
  if (url.startsWith("sqlite:///")) return fileURLToPath(`file:///${url.slice("sqlite:///".length)}`);
  if (url.startsWith("sqlite://")) return join(process.cwd(), url.slice("sqlite://".length));
  if (url.startsWith("sqlite:")) return url.slice("sqlite:".length);
  throw dgentError("DGENT_INVALID_OPTIONS", "a SQLite URL looks like sqlite:///absolute/path.db");
}
