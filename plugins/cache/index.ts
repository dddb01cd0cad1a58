import { LRUCache } from "lru-cache";
import { cloneDatum, type Datum } from "../../core/datum.js";
import type { JsonSchema } from "../../core/options-schema.js";
import type { PluginUse } from "../../core/store.js";
import { definePlugin } from "../../core/registry.js";
import { FillGuard } from "./guard.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "cache";

export interface CacheOptions {
  /** Most datums kept (default 10 000). */
  maxEntries?: number;
  /** Most bytes kept, counted as content + id + metadata + 64 per entry (default 64 MiB). */
  maxBytes?: number;
  /** Forget an entry this long after it was cached (ms). Default 0: never (datums are immutable). */
  ttlMs?: number;
  /** Cache each datum as it is stored (default true); otherwise only what reads bring in. */
  fillOnPut?: boolean;
  /**
   * The clock `ttlMs` is measured with, in milliseconds (default: `performance.now`). Inject one
   * to test expiry without waiting, or to share a clock with the rest of a program. Only
   * differences between its readings count; it must not go backwards.
   */
  now?: () => number;
}

export interface CacheStats {
  /** Gets answered from the cache. */
  readonly hits: number;
  /** Gets that went to the tiers. */
  readonly misses: number;
  /** `hits / (hits + misses)`, 0 before the first get. */
  readonly hitRate: number;
  /** Datums added (on put and on a read from a tier). */
  readonly fills: number;
  /** Fills refused because a delete of the same id raced them. */
  readonly skippedFills: number;
  /** Entries dropped to stay within `maxEntries` / `maxBytes`, or expired by `ttlMs`. */
  readonly evictions: number;
  /** Entries dropped because the datum was deleted (here, by another process, or evicted by a tier). */
  readonly invalidations: number;
  readonly entries: number;
  readonly bytes: number;
}

/** What `store.plugin(cache)` resolves to. */
export interface CacheHandle {
  stats(): CacheStats;
  /** True when `id` is cached now. */
  has(id: string): boolean;
  /** Drops every entry (statistics are kept). */
  clear(): void;
}

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    maxEntries: { type: "integer", minimum: 1, default: 10_000 },
    maxBytes: { type: "integer", minimum: 1, default: 64 * 1024 * 1024 },
    ttlMs: { type: "integer", minimum: 0, default: 0 },
    fillOnPut: { type: "boolean", default: true },
    // A function: JSON Schema has no type for it, so "no JSON value" (a config file cannot set it).
    now: { description: "() => number, in milliseconds", not: { type: ["string", "number", "boolean", "null", "array", "object"] } },
  },
};

/** Storage-side short-circuit band (core/HOOKS.md): last of the `beforeGet` answers. */
const STAGE = 190;

/** Bytes an entry is charged: content, id and metadata as UTF-16 (their size in memory), plus overhead. */
export function entrySize(d: Datum): number {
  let bytes = d.content.byteLength + d.id.length * 2 + 64;
  for (const k in d.metadata) bytes += (k.length + (d.metadata[k] as string).length) * 2;
  return bytes;
}

/**
 * lru-cache options that measure TTLs with `now`. lru-cache treats a start time of 0 as "no TTL",
 * so readings are shifted to start at 1; and it would otherwise reuse a reading for 1 ms of real
 * time (`ttlResolution`), which a clock that is not the real one must not depend on.
 */
function injectedClock(now: () => number): { perf: { now: () => number }; ttlResolution: number } {
  const origin = now();
  return { perf: { now: () => now() - origin + 1 }, ttlResolution: 0 };
}

/**
 * A read-through LRU cache of datums, bounded by count and bytes. Datums are immutable, so an
 * entry never goes stale except by a delete, which invalidates it (also one reported by another
 * process through `externalChange`, and a bounded tier's eviction).
 */
export const cache = definePlugin<CacheOptions, CacheHandle>({
  name: PLUGIN_NAME,
  description: "Read-through LRU cache of datums (lru-cache), bounded by count and bytes, with hit/miss statistics.",
  optionsSchema: OPTIONS_SCHEMA,
  apply(api, options) {
    const counts = { hits: 0, misses: 0, fills: 0, skippedFills: 0, evictions: 0, invalidations: 0 };
    const lru = new LRUCache<string, Datum>({
      max: options.maxEntries ?? 10_000,
      maxSize: options.maxBytes ?? 64 * 1024 * 1024,
      sizeCalculation: entrySize,
      ...(options.ttlMs ? { ttl: options.ttlMs, ...(options.now ? injectedClock(options.now) : {}) } : {}),
      dispose: (_value, _key, reason) => {
        if (reason === "evict" || reason === "expire") counts.evictions++;
      },
    });
    const guard = new FillGuard();
    const fill = (d: Datum): void => {
      lru.set(d.id, cloneDatum(d));
      counts.fills++;
    };
    const invalidate = (id: string): void => {
      guard.deleted(id);
      if (lru.delete(id)) counts.invalidations++;
    };
    const tap = { name: PLUGIN_NAME, stage: STAGE };
    const { hooks } = api;

    hooks.beforeGet.tap(tap, (id) => {
      const hit = lru.get(id);
      if (hit !== undefined) {
        counts.hits++;
        return cloneDatum(hit);
      }
      counts.misses++;
      guard.readStarted(id);
      return undefined;
    });
    hooks.afterGet.tap(tap, (id, datum) => {
      const allowed = guard.readFinished(id);
      if (datum === null) return;
      if (allowed) fill(datum);
      else counts.skippedFills++;
    });
    if (options.fillOnPut !== false) {
      hooks.beforePut.tap({ name: PLUGIN_NAME, stage: 200 }, (datum) => {
        guard.writeStarted(datum);
        return datum;
      });
      hooks.afterPut.tap(tap, (datum) => {
        if (!guard.writeFinished(datum)) counts.skippedFills++;
        // An identical re-put keeps the first createdAt (the law): keep the entry already cached.
        else if (!lru.has(datum.id)) fill(datum);
      });
    }
    hooks.beforeDelete.tap(tap, invalidate);
    hooks.afterDelete.tap(tap, (id) => invalidate(id));
    hooks.externalChange.tap(tap, (event) => {
      if (event.op === "delete") invalidate(event.id);
    });
    hooks.evicted.tap(tap, (datum) => invalidate(datum.id));

    return {
      stats: () => {
        const lookups = counts.hits + counts.misses;
        return { ...counts, hitRate: lookups === 0 ? 0 : counts.hits / lookups, entries: lru.size, bytes: lru.calculatedSize };
      },
      has: (id) => lru.has(id),
      clear: () => lru.clear(),
    };
  },
});

/** `plugins: [cachePlugin({ … })]`: the plugin with its options type-checked (they are checked with ajv again at composition). */
export function cachePlugin(options: CacheOptions = {}): PluginUse<never> {
  return { plugin: cache, options: options as never };
}
