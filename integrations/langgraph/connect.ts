/**
 * The stores a saver or a long-term store opens for itself: the embedded default, one tier named
 * by a URL (the schemes of the registry: `sqlite:///path.db`, `postgres://…`, `jsonl:///path`,
 * `s3://bucket/prefix/`, `gs://bucket`, `memory:`, or a third-party adapter's), or a config file.
 * A store opened here belongs to its opener, which closes it in `end()`.
 */
import { createStoreFromConfig, findConfig } from "../../compose/config/index.js";
import { defaultRegistry } from "../../compose/catalogue.js";
import { openDefaultStore, tierForUrl } from "../../compose/default-store.js";
import { DEFAULT_NAMESPACE } from "../../core/paths.js";
import { createStore, type Store } from "../../core/store.js";

export interface OpenOptions {
  /** The store's namespace (default: `DGENT_NAMESPACE`, else `default`). */
  namespace?: string;
}

/** The embedded default: SQLite under `$XDG_DATA_HOME/dgent/`, or what `DGENT_DATABASE_URL` names. */
export function defaultStore(options: OpenOptions = {}): Promise<Store> {
  return openDefaultStore(options.namespace !== undefined ? { namespace: options.namespace } : {});
}

/** A store of the one tier `url` names (its scheme picks the adapter, as `DGENT_DATABASE_URL` does). */
export async function storeForUrl(url: string, options: OpenOptions = {}): Promise<Store> {
  const namespace = options.namespace ?? (process.env.DGENT_NAMESPACE || DEFAULT_NAMESPACE);
  const tier = await tierForUrl(url, namespace);
  const adapter = await defaultRegistry.createAdapter(tier.adapter, tier.options);
  const store = createStore({ tiers: [adapter], namespace });
  await store.open();
  return store;
}

/** The store of a config file (a path, or the object itself); without one, the file dgent finds, else the embedded default. */
export async function storeForConfig(pathOrObject?: string | object, options: OpenOptions = {}): Promise<Store> {
  const source = pathOrObject ?? findConfig()?.path;
  if (source === undefined) return defaultStore(options);
  const store = await createStoreFromConfig(source);
  await store.open();
  return store;
}
