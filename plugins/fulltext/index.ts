import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { definePlugin } from "../../core/registry.js";
import type { PluginUse, Store } from "../../core/store.js";
import { FulltextIndex, type CatchUpReport, type FulltextStats, type TextSearchOptions } from "./engine.js";
import type { StorageKind } from "./storage.js";
import type { Hit } from "./tokens.js";

export type { CatchUpReport, FulltextStats, TextSearchOptions } from "./engine.js";
export type { StorageKind } from "./storage.js";
export type { Hit } from "./tokens.js";
export { tokenize } from "./tokens.js";
export { hybridSearch, type HybridOptions, type HybridHit } from "./hybrid.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "fulltext";

export interface FulltextOptions {
  /** Index only datums whose id starts with this (default: all). */
  prefix?: string;
  /** Index this field of JSON content (dotted path, e.g. `"message.text"`) instead of the whole content. */
  field?: string;
  /** The text to index for a datum, or null to skip it (code only; overrides `field`). */
  text?: (datum: Datum) => string | null;
  /** Where the index lives (default `auto`: FTS5 sidecar on a SQLite file tier, Postgres when `postgresUrl` is given on a Postgres tier, else in process). */
  storage?: "auto" | StorageKind;
  /** A Postgres URL for the postgres storage (the tier's own connection is private). */
  postgresUrl?: string;
  /** Postgres text search configuration (default `simple`: no stemming, as the other storages). */
  language?: string;
  /** Datums read per `getMany` during a catch-up (default 1000). */
  batchSize?: number;
}

/** What `store.plugin(fulltext)` resolves to. */
export interface FulltextHandle {
  /**
   * The `k` best datums for the words of `query` (BM25 on SQLite and in process, ts_rank_cd on
   * Postgres), best first, `{ id, score }`; filters apply during the search. Waits for the catch-up of `attach`.
   */
  search(query: string, options?: TextSearchOptions): Promise<Hit[]>;
  /** Binds the plugin to its store, opens the index and catches up with the datums (once; `textIndex(store)` does it). */
  attach(store: Store): Promise<void>;
  /** Catches up again; `full` drops the index and indexes every datum anew. */
  reindex(options?: { readonly full?: boolean }): Promise<CatchUpReport>;
  /** Resolves when background work (other processes' changes) is done. */
  idle(): Promise<void>;
  stats(): FulltextStats;
}

const NOT_JSON = { not: { type: ["string", "number", "boolean", "null", "array", "object"] } };

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    prefix: { type: "string", default: "" },
    field: { type: "string", minLength: 1 },
    text: { description: "(datum) => string | null", ...NOT_JSON },
    storage: { enum: ["auto", "memory", "sqlite", "postgres"], default: "auto" },
    postgresUrl: { type: "string", minLength: 1 },
    language: { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]*$", default: "simple" },
    batchSize: { type: "integer", minimum: 1, maximum: 5000, default: 1000 },
  },
};

/**
 * Full-text search: each datum's text is indexed when it is stored (the `afterPut` hook) and
 * dropped when it is deleted; `search` ranks datums by the words of a query, with the store's
 * filters applied during the search. FTS5 on SQLite, tsvector + GIN on Postgres, an inverted
 * index in process elsewhere (see README.md).
 */
export const fulltext = definePlugin<FulltextOptions, FulltextHandle>({
  name: PLUGIN_NAME,
  description: "Full-text search: indexes datums' text on put, BM25-ranked search with filters; SQLite FTS5, Postgres tsvector/GIN, in-process inverted index.",
  optionsSchema: OPTIONS_SCHEMA,
  async apply(api, options) {
    const engine = new FulltextIndex(
      {
        prefix: options.prefix ?? "",
        field: options.field ?? null,
        text: options.text ?? null,
        storage: options.storage ?? "auto",
        postgresUrl: options.postgresUrl ?? null,
        language: options.language ?? "simple",
        batchSize: options.batchSize ?? 1000,
      },
      (message) => api.warn(message),
    );
    const tap = { name: PLUGIN_NAME, stage: 0 };
    api.hooks.afterPut.tapPromise(tap, (datum, info) => engine.onPut(datum, info.input));
    api.hooks.afterDelete.tapPromise(tap, (id) => engine.onDelete(id));
    api.hooks.externalChange.tap(tap, (event) => engine.onExternal(event.op, event.id));
    // Last: a write buffer flushing at close (-100) is still indexed.
    api.hooks.close.tapPromise({ name: PLUGIN_NAME, stage: 100 }, () => engine.close());
    let store: Store | null = null;
    const handle: FulltextHandle = {
      search: (query, o) => engine.search(query, o),
      async attach(target) {
        if (store !== target) {
          if ((await target.plugin(PLUGIN_NAME)) !== handle) {
            throw dgentError("DGENT_INVALID_OPTIONS", "attach(store): this store's fulltext plugin is another instance; attach each handle to its own store", { unit: PLUGIN_NAME });
          }
          store = target;
        }
        await engine.attach(target);
      },
      reindex: (o) => engine.reindex(o?.full === true),
      idle: () => engine.idle(),
      stats: () => engine.stats(),
    };
    return handle;
  },
});

/** `plugins: [fulltextPlugin({ … })]`: the plugin with its options type-checked (checked with ajv again at composition). */
export function fulltextPlugin(options: FulltextOptions = {}): PluginUse<never> {
  return { plugin: fulltext, options: options as never };
}

/** The store's full-text index, ready: attaches the fulltext plugin (opening the index and catching up, once) and returns its handle. */
export async function textIndex(store: Store): Promise<FulltextHandle> {
  const handle = await store.plugin(fulltext);
  await handle.attach(store);
  return handle;
}
