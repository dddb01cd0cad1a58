/**
 * How a store connects its hooks to what happens below it: the router's tier events and warnings,
 * each adapter's events (evictions, warnings, changes made elsewhere), and each plugin's `apply`
 * with its tap-only view; and what a volatile tier still holds when the store closes. A hook
 * with no taps costs one length check.
 */
import { dgentError } from "./errors.js";
import type { PluginApi, PluginService, ResolvedPluginUse } from "./registry.js";
import { tapOnlyView, type StoreHooks } from "./hooks.js";
import type { Adapter, AdapterContext, ChangeInterest } from "./protocol.js";
import type { Router, RouterEvents } from "./router.js";
import type { Upgrader } from "./upgrader.js";

export type Warn = (unit: string, message: string, details?: Readonly<Record<string, unknown>>) => void;

/** Reports through the `warning` hook, or as a process warning when nothing taps it. */
export function warner(hooks: Readonly<StoreHooks>): Warn {
  return (unit, message, details) => {
    if (hooks.warning.taps.length) {
      hooks.warning.call({ unit, message, ...(details ? { details } : {}) });
    } else {
      process.emitWarning(`[dgent:${unit}] ${message}`, { type: "DgentWarning" });
    }
  };
}

/** The router's events, as hook calls; falling to a lower tier is also a warning. */
export function routerEvents(hooks: Readonly<StoreHooks>, warn: Warn): RouterEvents {
  return {
    tierFailed: (e) => void (hooks.tierFailed.taps.length && hooks.tierFailed.call(e)),
    degraded: (e) => {
      if (hooks.degraded.taps.length) hooks.degraded.call(e);
      warn("router", `tier "${e.tier}" is down; writes land on "${e.landing}" until it returns`, { ...e });
    },
    restored: (e) => void (hooks.restored.taps.length && hooks.restored.call(e)),
    promoted: (e) => void (hooks.promoted.taps.length && hooks.promoted.call(e)),
    warn,
  };
}

/** What `open(context)` gives one adapter: its events, attributed to the tier. */
export function adapterContext(hooks: Readonly<StoreHooks>, warn: Warn, tier: Adapter, clock?: () => number): AdapterContext {
  return {
    ...(clock !== undefined ? { clock } : {}),
    changeInterest: changeInterest(hooks, warn),
    events: {
      evicted: (datum, reason) => {
        if (hooks.evicted.taps.length) hooks.evicted.call(datum, { tier: tier.name, reason });
      },
      warning: (message, details) => warn(tier.name, message, details),
      change: (event) => {
        if (hooks.externalChange.taps.length) hooks.externalChange.call(event, { tier: tier.name });
      },
    },
  };
}

/**
 * Tells the tiers when the `externalChange` hook gets its first tap (a `register` interceptor:
 * it runs when a tap is added, never when the hook is called, so calls cost nothing more).
 */
export function changeInterest(hooks: Readonly<StoreHooks>, warn: Warn): ChangeInterest {
  let interest = interests.get(hooks);
  if (interest === undefined) {
    interest = newInterest(hooks, warn);
    interests.set(hooks, interest);
  }
  return interest;
}

/** One per store (its hooks), shared by its tiers. */
const interests = new WeakMap<Readonly<StoreHooks>, ChangeInterest>();

function newInterest(hooks: Readonly<StoreHooks>, warn: Warn): ChangeInterest {
  const hook = hooks.externalChange;
  let wanted = hook.taps.length > 0;
  const waiting = new Set<() => void>();
  hook.intercept({
    register(tap) {
      if (!wanted) {
        wanted = true;
        // After the tap is in place, and never inside the caller's `tap()`; a listener cancelled
        // meanwhile is not called, and one that throws is reported without stopping the others.
        queueMicrotask(() => {
          for (const listener of [...waiting]) {
            if (!waiting.delete(listener)) continue;
            try {
              listener();
            } catch (error) {
              warn("store", `a tier's change listener failed to start: ${error instanceof Error ? error.message : String(error)}`);
            }
          }
        });
      }
      return tap;
    },
  });
  return {
    get wanted() {
      return wanted;
    },
    onWanted(listener) {
      if (wanted) return () => undefined;
      waiting.add(listener);
      return () => void waiting.delete(listener);
    },
  };
}

/**
 * Applies plugins in order, each with its own tap-only view, and records what each `apply`
 * returned in `handles`. Returns how many were applied: a retried open resumes after them, so
 * no plugin taps twice.
 */
export async function applyPlugins(
  plugins: readonly ResolvedPluginUse[],
  hooks: Readonly<StoreHooks>,
  store: Pick<PluginApi, "namespace" | "tiers">,
  warn: Warn,
  handles: Map<string, unknown>,
  onApplied: () => void,
): Promise<void> {
  for (const { plugin, options } of plugins) {
    const api: PluginApi = {
      hooks: tapOnlyView(hooks, plugin.name),
      name: plugin.name,
      namespace: store.namespace,
      tiers: store.tiers,
      warn: (message, details) => warn(plugin.name, message, details),
    };
    handles.set(plugin.name, await plugin.apply(api, options as never));
    onApplied();
  }
}

/** On close, data on a volatile tier moves to a durable one that is up, or is announced as lost. */
export async function rescueVolatile(router: Router, upgrader: Upgrader, warn: Warn): Promise<void> {
  const durable = router.states.find((s) => s.up && s.adapter.capabilities.persistent);
  for (const state of router.states) {
    if (state.adapter.capabilities.persistent || !state.up || !state.holds || router.single) continue;
    const count = state.adapter.stats ? (await state.adapter.stats()).count : 1;
    if (count === 0) continue;
    if (durable) await upgrader.promote(state, durable).catch((error: unknown) => warn("upgrader", String(error)));
    const left = state.adapter.stats ? (await state.adapter.stats()).count : 0;
    if (left > 0) warn("router", `${left} datums on the volatile tier "${state.adapter.name}" are lost with this close: no durable tier is up`);
  }
}

/** What a plugin that `provides: ["changes"]` hands out: the store's change stream. */
export interface ChangeService {
  changes(options?: unknown): AsyncIterable<unknown>;
  subscribe(listener: unknown, options?: unknown): () => void;
}

/** The handle of the plugin that provides `service`; `DGENT_UNKNOWN_PLUGIN` when none does. */
export function serviceOf(service: PluginService, plugins: readonly ResolvedPluginUse[], handles: ReadonlyMap<string, unknown>): unknown {
  const provider = plugins.find(({ plugin }) => plugin.provides?.includes(service));
  if (!provider) {
    throw dgentError(
      "DGENT_UNKNOWN_PLUGIN",
      `no plugin of this store provides "${service}"; compose the store with one that does (dgent's own: the reactive plugin, dgent/plugins/reactive)`,
      { details: { service, plugins: plugins.map(({ plugin }) => plugin.name) } },
    );
  }
  return handles.get(provider.plugin.name);
}

/** The fast path's validation: `null` when `value` passes, else the rejection the full path would give. */
export function valid<T>(check: (value: T) => void, value: T): Promise<never> | null {
  try {
    check(value);
    return null;
  } catch (error) {
    return Promise.reject(error);
  }
}

export function closedError() {
  return dgentError("DGENT_CLOSED", "this store is closed; create a new one to continue");
}
