import type { JsonSchema } from "../../core/options-schema.js";
import type { PluginUse } from "../../core/store.js";
import { definePlugin, type PluginApi } from "../../core/registry.js";
import { PROCESS_ORIGIN, synergyBus, type BusStats, type SynergyBus } from "./bus.js";
import type { EventBase, SynergyEvent } from "./events.js";
import { bridgeFor, describe, releaseBridge, type BridgeReporter } from "./postgres-bridge.js";

export { PROCESS_ORIGIN, SynergyBus, synergyBus, type BusStats, type EmitReport } from "./bus.js";
export { PostgresBridge } from "./postgres-bridge.js";
export * from "./events.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "synergy";

export interface SynergyOptions {
  /** Name of the process-wide bus to emit on (`synergyBus(name)`), default `"default"`. */
  bus?: string;
  /** Longest a write waits for the bus's listeners (and the NOTIFY), in ms (default 1000). */
  timeoutMs?: number;
  /** Wait for listeners (bounded by `timeoutMs`) before the write returns (default true); `false` emits in the background. */
  wait?: boolean;
  /** Cross-process bus: publish events over Postgres `NOTIFY` on `channel` and deliver other processes' events. */
  postgres?: { url: string; channel?: string };
  /** Also emit `stored`/`deleted` (with `remote: true`) for changes a tier saw other processes make (default false). */
  externalChanges?: boolean;
}

export interface SynergyHandle {
  /** The bus this store emits on; `bus.on(type, listener)` to listen. */
  readonly bus: SynergyBus;
  /** True when the cross-process bus is configured and its connection is up. */
  readonly crossProcess: boolean;
  stats(): BusStats & { readonly published: number; readonly received: number; readonly reported: number };
}

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    bus: { type: "string", minLength: 1, default: "default" },
    timeoutMs: { type: "integer", minimum: 1, default: 1000 },
    wait: { type: "boolean", default: true },
    postgres: {
      type: "object",
      additionalProperties: false,
      required: ["url"],
      properties: {
        url: { type: "string", pattern: "^postgres(ql)?://" },
        channel: { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]{0,62}$", default: "dgent_synergy" },
      },
    },
    externalChanges: { type: "boolean", default: false },
  },
};

/** Observers band (core/HOOKS.md). */
const STAGE = 0;

/**
 * Synergy events (seed 000, "Synergy Bus"): `stored`, `deleted`, `promoted`, `degraded` and
 * `restored`, emitted on a named in-process bus and, optionally, to other processes over Postgres
 * `LISTEN/NOTIFY`. A listener that fails or hangs is reported through the `warning` hook; it never
 * fails the write and never holds it longer than `timeoutMs`.
 */
export const synergy = definePlugin<SynergyOptions, SynergyHandle>({
  name: PLUGIN_NAME,
  description: "Typed events (stored, deleted, promoted, degraded, restored) on an in-process bus and across processes over Postgres LISTEN/NOTIFY.",
  optionsSchema: OPTIONS_SCHEMA,
  async apply(api, options) {
    const bus = synergyBus(options.bus ?? "default");
    const timeoutMs = options.timeoutMs ?? 1000;
    const wait = options.wait !== false;
    let reported = 0;
    const warn: PluginApi["warn"] = (message, details) => {
      reported++;
      api.warn(message, details);
    };
    const reporter: BridgeReporter = { warn };
    const pgOptions = options.postgres;
    const bridge = pgOptions ? bridgeFor(bus, pgOptions.url, pgOptions.channel ?? "dgent_synergy") : null;
    if (bridge) {
      bridge.addReporter(reporter);
      await bridge.start();
    }
    const base = (): EventBase => ({ source: "dgent", target: "*", namespace: api.namespace, at: Date.now(), origin: PROCESS_ORIGIN, remote: false });

    const deliver = async (event: SynergyEvent): Promise<void> => {
      const frozen = Object.freeze(event);
      const publishing = bridge && !event.remote ? withTimeout(bridge.publish(frozen), timeoutMs) : null;
      const report = await bus.emit(frozen, timeoutMs);
      for (const f of report.failures) {
        warn(`a synergy listener failed on ${event.type} ${"id" in event ? event.id : ""}; the operation was not affected`, {
          type: event.type,
          error: describe(f.error),
        });
      }
      if (report.timeouts > 0) {
        warn(`${report.timeouts} synergy listener(s) took longer than ${timeoutMs} ms on ${event.type}; the operation went on without them`, {
          type: event.type,
          timeouts: report.timeouts,
        });
      }
      if (publishing) {
        try {
          await publishing;
        } catch (error) {
          warn(`a ${event.type} event was not published to other processes: ${describe(error)}`, { type: event.type });
        }
      }
    };
    const emit = (event: SynergyEvent): Promise<void> | void => {
      const delivery = deliver(event);
      if (wait) return delivery;
      void delivery;
    };
    // Sync hooks (router events) cannot wait: their events go out in the background.
    const emitLater = (event: SynergyEvent): void => void deliver(event);

    const { hooks } = api;
    const tap = { name: PLUGIN_NAME, stage: STAGE };
    hooks.afterPut.tapPromise(tap, async (datum, info) =>
      emit({ ...base(), type: "stored", id: datum.id, metadata: { ...info.input.metadata }, tier: info.tier }),
    );
    hooks.afterDelete.tapPromise(tap, async (id, existed) => {
      if (existed) await emit({ ...base(), type: "deleted", id });
    });
    hooks.promoted.tap(tap, (e) => emitLater({ ...base(), type: "promoted", id: e.id, from: e.from, to: e.to }));
    hooks.degraded.tap(tap, (e) => emitLater({ ...base(), type: "degraded", tier: e.tier, rank: e.rank, ...(e.landing ? { landing: e.landing } : {}) }));
    hooks.restored.tap(tap, (e) => emitLater({ ...base(), type: "restored", tier: e.tier, rank: e.rank }));
    if (options.externalChanges) {
      hooks.externalChange.tap(tap, (e, info) => {
        const remote = { ...base(), remote: true, origin: e.origin ?? "unknown" };
        emitLater(e.op === "put" ? { ...remote, type: "stored", id: e.id, metadata: {}, tier: info.tier } : { ...remote, type: "deleted", id: e.id });
      });
    }
    // Last on close: events of a write buffer flushing at close (-100) still go out.
    hooks.close.tapPromise({ name: PLUGIN_NAME, stage: 100 }, async () => {
      if (bridge) await releaseBridge(bridge, reporter);
    });

    return {
      bus,
      get crossProcess() {
        return bridge?.connected ?? false;
      },
      stats: () => ({ ...bus.stats(), published: bridge?.published ?? 0, received: bridge?.received ?? 0, reported }),
    };
  },
});

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Postgres within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** `plugins: [synergyPlugin({ … })]`: the plugin with its options type-checked (they are checked with ajv again at composition). */
export function synergyPlugin(options: SynergyOptions = {}): PluginUse<never> {
  return { plugin: synergy, options: options as never };
}
