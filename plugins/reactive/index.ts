import { cloneDatum, type Datum } from "../../core/datum.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { definePlugin } from "../../core/registry.js";
import type { PluginUse, Store } from "../../core/store.js";
import { Feed, type FeedOptions, type OverflowPolicy } from "./feed.js";

export { Feed, type FeedOptions, type OverflowPolicy } from "./feed.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "reactive";

/** One change to a store's data. */
export interface Change {
  /** 1, 2, 3… per store, in the order the store saw the changes complete. A gap means events were dropped. */
  readonly seq: number;
  readonly op: "put" | "delete";
  readonly id: string;
  /** `local`: through this store. `external`: another process, reported by a tier (Postgres LISTEN/NOTIFY). */
  readonly source: "local" | "external";
  /** The tier that stored the datum, or that reported the external change. */
  readonly tier: string;
  /** Epoch ms when the store saw the change. */
  readonly at: number;
  /** Local puts: the datum as the caller passed it (shared by all consumers: do not mutate). Absent with `includeDatum: false`. */
  readonly datum?: Datum;
  /** External changes: who made them, when the tier knows. */
  readonly origin?: string;
}

export interface ReactiveOptions {
  /** Events buffered per consumer (default 1024). */
  bufferSize?: number;
  /** When a consumer's buffer is full: `error` (default) or `drop-oldest`. */
  overflow?: OverflowPolicy;
  /** Carry a copy of the datum in local put events (default true). */
  includeDatum?: boolean;
  /** Report changes other processes made, when a tier observes them (default true). */
  external?: boolean;
}

export type Listener = (change: Change) => void | Promise<void>;

/** What `store.plugin(reactive)` resolves to. */
export interface ReactiveHandle {
  /** An async iterator over changes from now on. Break out of the loop (or abort `signal`) to stop. */
  changes(options?: FeedOptions): AsyncIterableIterator<Change>;
  /**
   * Calls `listener` for each change from now on, one at a time, in order (an async listener is
   * awaited before the next change). A listener that throws is reported through the `warning` hook
   * and keeps its subscription. Returns the unsubscribe.
   */
  subscribe(listener: Listener, options?: Omit<FeedOptions, "signal">): () => void;
  stats(): { readonly seq: number; readonly consumers: number; readonly dropped: number };
}

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    bufferSize: { type: "integer", minimum: 1, default: 1024 },
    overflow: { enum: ["error", "drop-oldest"], default: "error" },
    includeDatum: { type: "boolean", default: true },
    external: { type: "boolean", default: true },
  },
};

/** Observers band (core/HOOKS.md). */
const STAGE = 0;

/**
 * The change stream (seed 000, "Reactive Substrate"): every put and delete of a store, in order,
 * as an async iterator or a subscription, with a bounded buffer per consumer.
 */
export const reactive = definePlugin<ReactiveOptions, ReactiveHandle>({
  provides: ["changes"],
  name: PLUGIN_NAME,
  description: "Change stream: changes() async iterator and subscribe(), ordered per store, bounded buffer per consumer.",
  optionsSchema: OPTIONS_SCHEMA,
  apply(api, options) {
    const defaults = { bufferSize: options.bufferSize ?? 1024, overflow: options.overflow ?? "error" };
    const includeDatum = options.includeDatum !== false;
    const feeds = new Set<Feed<Change>>();
    let seq = 0;
    let dropped = 0;
    let closed = false;
    const detach = (feed: Feed<Change>): void => {
      if (feeds.delete(feed)) dropped += feed.dropped;
    };
    const publish = (change: Omit<Change, "seq" | "at">): void => {
      const event = Object.freeze({ ...change, seq: ++seq, at: Date.now() });
      for (const feed of feeds) feed.push(event);
    };
    const { hooks } = api;
    const tap = { name: PLUGIN_NAME, stage: STAGE };

    hooks.afterPut.tap(tap, (datum, info) => {
      if (feeds.size === 0) {
        seq++;
        return;
      }
      publish({ op: "put", id: datum.id, source: "local", tier: info.tier, ...(includeDatum ? { datum: cloneDatum(info.input) } : {}) });
    });
    hooks.afterDelete.tap(tap, (id, existed) => {
      if (!existed) return;
      if (feeds.size === 0) seq++;
      else publish({ op: "delete", id, source: "local", tier: api.tiers[0]?.name ?? "" });
    });
    if (options.external !== false) {
      hooks.externalChange.tap(tap, (event, info) => {
        if (feeds.size === 0) seq++;
        else publish({ op: event.op, id: event.id, source: "external", tier: info.tier, ...(event.origin ? { origin: event.origin } : {}) });
      });
    }
    // Last on close: a write buffer flushing at close (-100) still reaches the consumers.
    hooks.close.tap({ name: PLUGIN_NAME, stage: 100 }, () => {
      closed = true;
      for (const feed of [...feeds]) feed.end();
    });

    const open = (feedOptions: FeedOptions, onOverflow?: (error: Error) => void): Feed<Change> => {
      const feed = new Feed<Change>({ ...defaults, ...feedOptions }, PLUGIN_NAME, detach, onOverflow);
      if (closed) feed.end();
      else feeds.add(feed);
      return feed;
    };
    const changes = (feedOptions: FeedOptions = {}): Feed<Change> => open(feedOptions);

    const subscribe = (listener: Listener, feedOptions: Omit<FeedOptions, "signal"> = {}): (() => void) => {
      const controller = new AbortController();
      // Reported when it happens: a listener that never returns would never see it otherwise.
      const overflowed = (error: Error): void =>
        api.warn(`a change subscription ended: ${error.message}`, { code: (error as { code?: string }).code });
      const feed = open({ ...feedOptions, signal: controller.signal }, overflowed);
      void (async () => {
        try {
          for await (const change of feed) {
            try {
              await listener(change);
            } catch (error) {
              api.warn(`a change listener failed on seq ${change.seq} (${change.op} ${change.id}); it stays subscribed`, {
                error: error instanceof Error ? error.message : String(error),
                seq: change.seq,
              });
            }
          }
        } catch {
          // The overflow that ends the loop was reported when it happened.
        }
      })();
      return () => controller.abort();
    };

    return {
      changes,
      subscribe,
      stats: () => ({ seq, consumers: feeds.size, dropped: dropped + [...feeds].reduce((n, f) => n + f.dropped, 0) }),
    };
  },
});

// `store.changes()` and `store.subscribe()` are core's; importing this module types them.
declare module "../../core/store.js" {
  interface Store {
    changes(options?: FeedOptions): AsyncGenerator<Change, void, undefined>;
    subscribe(listener: Listener, options?: Omit<FeedOptions, "signal">): Promise<() => void>;
  }
}

/** `changes(store)`: the store's change stream, for a store composed with the reactive plugin. */
export async function* changes(store: Store, options?: FeedOptions): AsyncGenerator<Change, void, undefined> {
  yield* (await store.plugin(reactive)).changes(options);
}

/** `plugins: [reactivePlugin({ … })]`: the plugin with its options type-checked (they are checked with ajv again at composition). */
export function reactivePlugin(options: ReactiveOptions = {}): PluginUse<never> {
  return { plugin: reactive, options: options as never };
}
