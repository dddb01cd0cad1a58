/**
 * Where an integration's store comes from: one you pass (yours to close), one tier named by a
 * dgent URL (`sqlite:///path.db`, `postgres://…`, `jsonl:///path.jsonl`, `s3://bucket/prefix/`,
 * `gs://bucket`, `memory:`, or a third-party adapter's scheme — as `DGENT_DATABASE_URL`), or, with
 * neither, the embedded default (`openDefaultStore`: SQLite under `$XDG_DATA_HOME/dgent/`, or what
 * `DGENT_DATABASE_URL` names). A store opened from a URL or the default belongs to the object
 * that opened it, which closes it in `close()`. Opening is lazy: on first use.
 */
import { defaultRegistry } from "../../compose/catalogue.js";
import { openDefaultStore, tierForUrl } from "../../compose/default-store.js";
import { dgentError } from "../../core/errors.js";
import { DEFAULT_NAMESPACE } from "../../core/paths.js";
import { createStore, isStore, type Store } from "../../core/store.js";

export interface StoreSource {
  /** A store you made and close yourself. */
  store?: Store;
  /** A dgent URL naming one tier (`sqlite:///path.db`, `postgres://…`, `memory:`, …): opened on first use, closed by `close()`. */
  url?: string;
  /** The namespace of a store opened from `url` or the default (default: `DGENT_NAMESPACE`, else `default`). */
  namespace?: string;
}

/** A store of the one tier `url` names (its scheme picks the adapter), opened. */
export async function storeForUrl(url: string, namespace?: string): Promise<Store> {
  const ns = namespace ?? (process.env.DGENT_NAMESPACE || DEFAULT_NAMESPACE);
  const tier = await tierForUrl(url, ns);
  const adapter = await defaultRegistry.createAdapter(tier.adapter, tier.options);
  const store = createStore({ tiers: [adapter], namespace: ns });
  await store.open();
  return store;
}

/** The store of a `StoreSource`, opened once on first use. */
export class StoreHandle {
  readonly #source: StoreSource;
  readonly #owned: boolean;
  #opening: Promise<Store> | null = null;

  constructor(source: StoreSource, unit: string) {
    if (source.store !== undefined && source.url !== undefined) {
      throw dgentError("DGENT_INVALID_OPTIONS", "give either store or url, not both", { unit });
    }
    if (source.store !== undefined && !isStore(source.store)) {
      throw dgentError("DGENT_INVALID_OPTIONS", "store must be a dgent Store (createStore, openDefaultStore, createStoreFromConfig)", { unit });
    }
    if (source.url !== undefined && (typeof source.url !== "string" || source.url.length === 0)) {
      throw dgentError("DGENT_INVALID_OPTIONS", `url must be a dgent URL such as sqlite:///path.db, got ${JSON.stringify(source.url)}`, { unit });
    }
    this.#source = source;
    this.#owned = source.store === undefined;
    if (source.store !== undefined) this.#opening = Promise.resolve(source.store);
  }

  /** The store (opened from the URL or the default on the first call). */
  get(): Promise<Store> {
    if (this.#opening === null) {
      const { url, namespace } = this.#source;
      this.#opening = url !== undefined ? storeForUrl(url, namespace) : openDefaultStore(namespace !== undefined ? { namespace } : {});
      // A failed open is tried again by the next call.
      this.#opening.catch(() => (this.#opening = null));
    }
    return this.#opening;
  }

  /** Closes the store when this handle opened it; a store you passed stays open. */
  async close(): Promise<void> {
    if (!this.#owned || this.#opening === null) return;
    const opening = this.#opening;
    const store = await opening.catch(() => null);
    if (store !== null) await store.close();
  }
}
