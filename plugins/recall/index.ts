import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { definePlugin } from "../../core/registry.js";
import type { PluginUse, Store } from "../../core/store.js";
import { embedChecked, resolveEmbedder } from "./embedder.js";
import { VectorRecall, type CatchUpReport, type VectorRecallStats, type VectorSearchOptions } from "./engine.js";
import type { Hit } from "./exact.js";
import { OPTIONS_SCHEMA, resolveConfig, type RecallOptions } from "./options.js";

export { hashingEmbedder, type Embedder, type EmbedderSpec, type HashingEmbedderOptions } from "./embedder.js";
export type { CatchUpReport, IndexChoice, VectorRecallStats, VectorSearchOptions } from "./engine.js";
export type { Hit, Metric } from "./exact.js";
export type { Quantization } from "./ann.js";
export type { StorageKind } from "./storage.js";
export { RESERVED_PREFIX } from "./keys.js";
export type { RecallOptions } from "./options.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "recall";

/** What `store.plugin(recall)` resolves to. */
export interface RecallHandle {
  /** The embedder's model id and size. */
  readonly model: { readonly id: string; readonly dimensions: number };
  /**
   * The `k` nearest datums to a text (embedded with the plugin's embedder) or a vector, best first,
   * `{ id, score }`; filters apply during the search. Waits for the catch-up of `attach`.
   */
  search(query: string | Float32Array, options?: VectorSearchOptions): Promise<Hit[]>;
  /**
   * Binds the plugin to its store, loads the index and catches up with the datums (once;
   * `vectorMemory(store)` does it); resolves to what the catch-up did. `rebuild: true` drops every
   * vector stored for the model first and embeds all datums again.
   */
  attach(store: Store, options?: { readonly rebuild?: boolean }): Promise<CatchUpReport>;
  /** Puts datums with their vectors given (not embedded, so they must come from the plugin's model): one `putMany`, then the vectors stored in one batch. */
  add(items: ReadonlyArray<{ readonly datum: Datum; readonly vector: Float32Array }>): Promise<string[]>;
  /** The plugin's embedder, checked (one vector per text, the declared size, finite). */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  /** Catches up again and rebuilds the graph; `full` re-embeds every datum. Then saves. */
  reindex(options?: { readonly full?: boolean }): Promise<CatchUpReport>;
  /** Saves the index now. */
  save(): Promise<void>;
  /** Resolves when background work (saves, a graph build) is done. */
  idle(): Promise<void>;
  stats(): VectorRecallStats;
}

/**
 * Vector memory: each datum's text is embedded when it is stored (the `afterPut` hook) and its
 * vector dropped when it is deleted; `search` finds the nearest datums by text or vector, with
 * the store's filters applied during the search. Indexes: exact (the reference), HNSW (usearch)
 * once large; vectors persist on every tier (see README.md).
 */
export const recall = definePlugin<RecallOptions, RecallHandle>({
  name: PLUGIN_NAME,
  description: "Vector memory: embeds datums on put, k-nearest search by text or vector with filters, exact and HNSW (usearch) indexes, sqlite-vec / pgvector storage.",
  optionsSchema: OPTIONS_SCHEMA,
  async apply(api, options) {
    const embedder = await resolveEmbedder(options.embedder);
    const config = resolveConfig(options, embedder);
    const engine = new VectorRecall(config, (message, details) => api.warn(message, details));
    const tap = { name: PLUGIN_NAME, stage: 0 };
    api.hooks.afterPut.tapPromise(tap, (datum, info) => engine.onPut(datum, info.input));
    api.hooks.afterDelete.tapPromise(tap, (id) => engine.onDelete(id));
    api.hooks.externalChange.tap(tap, (event) => engine.onExternal(event.op, event.id));
    // Last: a write buffer flushing at close (-100) is still indexed.
    api.hooks.close.tapPromise({ name: PLUGIN_NAME, stage: 100 }, () => engine.close());

    let store: Store | null = null;
    const handle: RecallHandle = {
      model: Object.freeze({ id: embedder.id, dimensions: embedder.dimensions }),
      search: (query, searchOptions) => engine.search(query, searchOptions),
      async attach(target, attachOptions) {
        if (store !== target) {
          // The store must be the one this plugin was applied to: it answers with this handle.
          if ((await target.plugin(PLUGIN_NAME)) !== handle) {
            throw dgentError("DGENT_INVALID_OPTIONS", "attach(store): this store's recall plugin is another instance; attach each handle to its own store", { unit: PLUGIN_NAME });
          }
          store = target;
        }
        return engine.attach(target, attachOptions?.rebuild === true);
      },
      add: (items) => engine.add(items),
      embed: (texts) => embedChecked(embedder, texts),
      reindex: (o) => engine.reindex(o?.full === true),
      save: () => engine.save(),
      idle: () => engine.idle(),
      stats: () => engine.stats(),
    };
    return handle;
  },
});

/** `plugins: [recallPlugin({ … })]`: the plugin with its options type-checked (checked with ajv again at composition). */
export function recallPlugin(options: RecallOptions = {}): PluginUse<never> {
  return { plugin: recall, options: options as never };
}

/**
 * The store's vector memory, ready: opens the store, attaches the recall plugin to it (loading
 * the index and catching up with the datums, once) and returns its handle.
 */
export async function vectorMemory(store: Store): Promise<RecallHandle> {
  const handle = await store.plugin(recall);
  await handle.attach(store);
  return handle;
}
