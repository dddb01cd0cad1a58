import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Datum } from "../../core/datum.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { definePlugin, type PluginApi } from "../../core/registry.js";
import type { ResolvedListOptions } from "../../core/protocol.js";
import type { PluginUse, Store } from "../../core/store.js";
import { Pending, quantileFromBuckets } from "./pending.js";
import { HistogramTallies, Tallies, type Observer, type Tally } from "./tally.js";

export { quantileFromBuckets } from "./pending.js";
export { sampleValue } from "./text.js";
export { HistogramTallies, Tallies, type Observer, type Tally } from "./tally.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "metrics";

/** Latency buckets in seconds (50 µs … 10 s): wide enough for memory and for a remote bucket. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** The operations the plugin times (the ones with hooks on both sides of the tiers). */
export type TimedOp = "put" | "get" | "delete" | "list" | "causalChain";

export interface MetricsOptions {
  /** Prefix of every metric name (default `dgent_`). */
  prefix?: string;
  /** Histogram buckets, in seconds, ascending (default `DEFAULT_BUCKETS`). */
  buckets?: number[];
  /**
   * The clock latencies are measured with, in milliseconds (default `performance.now`); only
   * differences count. A function, so it is set in code, not in a config file.
   */
  now?: () => number;
}

/** One labelled value of a snapshot. */
export interface CountRow {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Latency of one operation on one tier, from the histogram (quantiles interpolated in buckets). */
export interface LatencyRow {
  readonly op: string;
  readonly tier: string;
  readonly count: number;
  /** Seconds. */
  readonly sum: number;
  /** Seconds, estimated from the buckets as Prometheus' `histogram_quantile` does; `null` with no observations. */
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
}

export interface TierRow {
  readonly tier: string;
  readonly up: boolean;
  readonly degraded: boolean;
  readonly failures: number;
}

/** `handle.snapshot()`: the same numbers as the Prometheus text, as plain JSON. */
export interface MetricsSnapshot {
  readonly namespace: string;
  readonly operations: readonly CountRow[];
  readonly latency: readonly LatencyRow[];
  readonly bytes: { readonly in: number; readonly out: number; readonly stored: number };
  readonly datumsRead: readonly CountRow[];
  readonly errors: readonly CountRow[];
  readonly tiers: readonly TierRow[];
  readonly promotions: readonly CountRow[];
  readonly evictions: readonly CountRow[];
  readonly externalChanges: readonly CountRow[];
}

/** What `store.plugin(metrics)` resolves to. */
export interface MetricsHandle {
  /** This store's prom-client registry (not prom-client's global one): `await registry.metrics()` is Prometheus text. */
  readonly registry: Registry;
  readonly namespace: string;
  /** Every number as JSON, with p50/p95/p99 per operation and tier. */
  snapshot(): Promise<MetricsSnapshot>;
  /**
   * Counts an error the hooks cannot see (a call that rejected before or without reaching a tier:
   * validation, a plugin's veto), by operation and code. The server reports its failed requests here.
   */
  recordError(op: string, error: unknown): void;
}

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    prefix: { type: "string", pattern: "^[a-zA-Z_:][a-zA-Z0-9_:]*$", default: "dgent_" },
    buckets: { type: "array", items: { type: "number", exclusiveMinimum: 0 }, minItems: 1 },
    // `now` is a function: set in code only (no JSON value validates against it).
    now: { description: "() => number, in milliseconds", not: { type: ["string", "number", "boolean", "null", "array", "object"] } },
  },
};

/**
 * Stages (core/HOOKS.md bands): a latency starts at the last `before…` tap and stops at the first
 * `after…` tap, so it is the time the tiers took, never the plugins' own work around them.
 */
const FIRST = -1000;
const LAST = 1000;

/** The code of an error (`DGENT_…`), or `"UNKNOWN"`. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.length > 0 && code.length <= 64 ? code : "UNKNOWN";
}

/**
 * In-process metrics on the store's hooks, in a prom-client registry of the store's own:
 * operations per tier and outcome, latency histograms, bytes in and out, errors by code, each
 * tier's up/degraded state and failures, upgrader moves, evictions.
 */
export const metrics = definePlugin<MetricsOptions, MetricsHandle>({
  name: PLUGIN_NAME,
  description: "Prometheus metrics (prom-client, a registry per store): operations, latency histograms, bytes, errors by code, tier health, upgrader moves.",
  optionsSchema: OPTIONS_SCHEMA,
  apply(api, options) {
    return instrument(api, options);
  },
});

/** `metrics` with its options type-checked. */
export function metricsPlugin(options: MetricsOptions = {}): PluginUse<MetricsOptions> {
  return { plugin: metrics, options };
}

const attached = new WeakMap<Store, Promise<MetricsHandle>>();

/**
 * The metrics of a store: its metrics plugin's handle when it was composed with one, else the
 * same instrumentation tapped now on `store.hooks` (once per store; operations before this call
 * are not counted). For code that serves stores it did not compose, such as `dgent serve`.
 */
export function metricsOf(store: Store, options: MetricsOptions = {}): Promise<MetricsHandle> {
  let handle = attached.get(store);
  if (handle === undefined) {
    handle = (async () => {
      try {
        return (await store.plugin(metrics)) as MetricsHandle;
      } catch (error) {
        if ((error as { code?: unknown }).code !== "DGENT_UNKNOWN_PLUGIN") throw error;
      }
      const api: PluginApi = {
        hooks: store.hooks,
        name: PLUGIN_NAME,
        namespace: store.namespace,
        tiers: store.tiers.map((t) => ({ name: t.name, rank: t.rank })),
        warn: () => undefined,
      };
      return instrument(api, options);
    })();
    handle.catch(() => attached.delete(store));
    attached.set(store, handle);
  }
  return handle;
}

function instrument(api: PluginApi, options: MetricsOptions): MetricsHandle {
  const prefix = options.prefix ?? "dgent_";
  const buckets = options.buckets ? [...options.buckets].sort((a, b) => a - b) : [...DEFAULT_BUCKETS];
  const now = options.now ?? (() => performance.now());
  const namespace = api.namespace;
  const registry = new Registry();
  registry.setDefaultLabels({ namespace });
  const reg = [registry];

  // The counters a put or a read adds to on every operation count in plain numbers (tally.ts).
  const opTallies = new Tallies<"op" | "tier" | "outcome">();
  const byteTallies = new Tallies<"direction">();
  const readTallies = new Tallies<"op" | "source">();
  const durationTallies = new HistogramTallies<"op" | "tier">(buckets);
  const operations = new Counter({
    name: `${prefix}operations_total`,
    help: "Store operations that reached an answer, by operation, tier and outcome (put: stored; get: hit, miss or plugin; delete: deleted or absent; list, causalChain: ok).",
    labelNames: ["op", "tier", "outcome"],
    registers: reg,
    collect() {
      opTallies.flush(this);
    },
  });
  const duration = new Histogram({
    name: `${prefix}operation_duration_seconds`,
    help: "Time in the tiers per operation: from the last before-hook tap to the first after-hook tap (plugins' own work excluded).",
    labelNames: ["op", "tier"],
    buckets,
    registers: reg,
    collect() {
      durationTallies.flush(this);
    },
  });
  const bytes = new Counter({
    name: `${prefix}bytes_total`,
    help: "Content bytes: in = as callers put them, out = as handed to callers by get, getMany, list, query and causalChain, stored = as written to the tiers (after compression or encryption).",
    labelNames: ["direction"],
    registers: reg,
    collect() {
      byteTallies.flush(this);
    },
  });
  const datumsRead = new Counter({
    name: `${prefix}datums_read_total`,
    help: "Datums handed to callers, by operation and the tier (or plugin) that answered.",
    labelNames: ["op", "source"],
    registers: reg,
    collect() {
      readTallies.flush(this);
    },
  });
  const errors = new Counter({
    name: `${prefix}errors_total`,
    help: "Errors by operation and code: tier failures (op=tier) and errors reported with recordError.",
    labelNames: ["op", "code"],
    registers: reg,
  });
  const tierUp = new Gauge({ name: `${prefix}tier_up`, help: "1 while the tier answers, 0 after it failed until it is restored.", labelNames: ["tier"], registers: reg });
  const tierDegraded = new Gauge({
    name: `${prefix}tier_degraded`,
    help: "1 while this tier should take writes but is down, so writes land on a less durable tier.",
    labelNames: ["tier"],
    registers: reg,
  });
  const tierFailures = new Counter({ name: `${prefix}tier_failures_total`, help: "Tier failures (an operation or a probe), by tier and error code.", labelNames: ["tier", "code"], registers: reg });
  const promotions = new Counter({ name: `${prefix}promotions_total`, help: "Datums the upgrader moved up the lattice, by source and destination tier.", labelNames: ["from", "to"], registers: reg });
  const evictions = new Counter({ name: `${prefix}evictions_total`, help: "Datums a bounded tier dropped without a delete, by tier and reason.", labelNames: ["tier", "reason"], registers: reg });
  const external = new Counter({ name: `${prefix}external_changes_total`, help: "Changes other processes made, as reported by a tier (Postgres LISTEN/NOTIFY).", labelNames: ["tier", "op"], registers: reg });

  const failures = new Map<string, number>();
  const degradedTiers = new Set<string>();
  const downTiers = new Set<string>();
  for (const t of api.tiers) {
    tierUp.set({ tier: t.name }, 1);
    tierDegraded.set({ tier: t.name }, 0);
  }
  // Writes land on the most durable tier that is up (a configured `landing` is not visible to
  // plugins; deletes, lists and chains are labelled with this best guess, puts with the real tier).
  const landing = (): string => api.tiers.find((t) => !downTiers.has(t.name))?.name ?? "none";

  // prom-client hashes label objects on every call: children are cached per label tuple, in maps
  // nested by label (the label values are the same few strings each time, whose hashes V8 keeps;
  // a key joined per call would be a new string to hash on every operation).
  const cached = <V>(root: Map<string, Map<string, V>>, a: string, b: string, make: () => V): V => {
    let inner = root.get(a);
    if (inner === undefined) root.set(a, (inner = new Map()));
    let value = inner.get(b);
    if (value === undefined) inner.set(b, (value = make()));
    return value;
  };
  const opChildren = new Map<string, Map<string, Map<string, Tally>>>();
  const countOp = (op: string, tier: string, outcome: string): void => {
    let byTier = opChildren.get(op);
    if (byTier === undefined) opChildren.set(op, (byTier = new Map()));
    cached(byTier, tier, outcome, () => opTallies.child({ op, tier, outcome })).inc();
  };
  const durChildren = new Map<string, Map<string, Observer>>();
  const observe = (op: string, tier: string, started: number | undefined): void => {
    if (started === undefined) return;
    cached(durChildren, op, tier, () => durationTallies.child({ op, tier })).observe(Math.max(0, now() - started) / 1000);
  };
  const readChildren = new Map<string, Map<string, Tally>>();
  const bytesIn = byteTallies.child({ direction: "in" });
  const bytesOut = byteTallies.child({ direction: "out" });
  const bytesStored = byteTallies.child({ direction: "stored" });

  const { hooks } = api;
  const first = { name: PLUGIN_NAME, stage: FIRST };
  const last = { name: PLUGIN_NAME, stage: LAST };

  // put: keyed by the datum object itself — the last beforePut tap's result is what the tiers
  // store and what afterPut receives (also when a deferring plugin commits it later).
  const putStarts = new WeakMap<Datum, number>();
  hooks.beforePut.tap(last, (datum) => {
    putStarts.set(datum, now());
    return datum;
  });
  hooks.afterPut.tap(first, (datum, info) => {
    const started = putStarts.get(datum);
    putStarts.delete(datum);
    observe("put", info.tier, started);
    countOp("put", info.tier, "stored");
    bytesIn.inc(info.input.content.byteLength);
    bytesStored.inc(datum.content.byteLength);
  });

  // get, delete, list, causalChain: keyed by id (or list options); see Pending for the bounds.
  const gets = new Pending();
  hooks.beforeGet.tap(last, (id) => {
    gets.start(id, now());
    return undefined;
  });
  hooks.afterGet.tap(first, (id, datum, info) => {
    observe("get", info.source, gets.finish(id));
    countOp("get", info.source, datum === null ? "miss" : "hit");
  });

  const deletes = new Pending();
  hooks.beforeDelete.tap(last, (id) => void deletes.start(id, now()));
  hooks.afterDelete.tap(first, (id, existed) => {
    const tier = landing();
    observe("delete", tier, deletes.finish(id));
    countOp("delete", tier, existed ? "deleted" : "absent");
  });

  const lists = new Pending();
  const listKey = (o: ResolvedListOptions): string => `${o.prefix}\u0000${o.after}\u0000${o.limit}`;
  hooks.beforeList.tap(last, (o) => {
    lists.start(listKey(o), now());
    return o;
  });
  hooks.afterList.tap(first, (datums, o) => {
    const tier = landing();
    observe("list", tier, lists.finish(listKey(o)));
    countOp("list", tier, "ok");
    return datums;
  });

  // causalChain has no after-hook: the chain ends with the datum asked for, so its `read` is the end.
  const chains = new Pending();
  hooks.beforeCausalChain.tap(last, (id) => void chains.start(id, now()));

  hooks.read.tap(last, (datum, info) => {
    cached(readChildren, info.op, info.source, () => readTallies.child({ op: info.op, source: info.source })).inc();
    bytesOut.inc(datum.content.byteLength);
    if (info.op === "get" && info.source === "plugin") countOp("get", "plugin", "hit");
    else if (info.op === "causalChain" && chains.size > 0) {
      const started = chains.finish(datum.id);
      if (started !== undefined) {
        observe("causalChain", info.source, started);
        countOp("causalChain", info.source, "ok");
      }
    }
    return datum;
  });

  hooks.tierFailed.tap(first, (event) => {
    const code = errorCode(event.error);
    downTiers.add(event.tier);
    tierUp.set({ tier: event.tier }, 0);
    tierFailures.inc({ tier: event.tier, code });
    errors.inc({ op: "tier", code });
    failures.set(event.tier, (failures.get(event.tier) ?? 0) + 1);
  });
  hooks.degraded.tap(first, (event) => {
    degradedTiers.add(event.tier);
    downTiers.add(event.tier);
    tierUp.set({ tier: event.tier }, 0);
    tierDegraded.set({ tier: event.tier }, 1);
  });
  hooks.restored.tap(first, (event) => {
    degradedTiers.delete(event.tier);
    downTiers.delete(event.tier);
    tierUp.set({ tier: event.tier }, 1);
    tierDegraded.set({ tier: event.tier }, 0);
  });
  hooks.promoted.tap(first, (event) => void promotions.inc({ from: event.from, to: event.to }));
  hooks.evicted.tap(first, (_datum, info) => void evictions.inc({ tier: info.tier, reason: info.reason }));
  hooks.externalChange.tap(first, (event, info) => void external.inc({ tier: info.tier, op: event.op }));

  const recordError = (op: string, error: unknown): void => {
    errors.inc({ op: String(op).slice(0, 64), code: errorCode(error) });
  };

  const snapshot = async (): Promise<MetricsSnapshot> => {
    const rows = async (c: Counter): Promise<CountRow[]> =>
      (await c.get()).values.map((v) => ({ labels: stripNamespace(v.labels), value: v.value }));
    const byDirection = new Map((await bytes.get()).values.map((v) => [String(v.labels.direction), v.value]));
    return {
      namespace,
      operations: await rows(operations),
      latency: latencyRows((await duration.get()).values),
      bytes: { in: byDirection.get("in") ?? 0, out: byDirection.get("out") ?? 0, stored: byDirection.get("stored") ?? 0 },
      datumsRead: await rows(datumsRead),
      errors: await rows(errors),
      tiers: api.tiers.map((t) => ({
        tier: t.name,
        up: !downTiers.has(t.name),
        degraded: degradedTiers.has(t.name),
        failures: failures.get(t.name) ?? 0,
      })),
      promotions: await rows(promotions),
      evictions: await rows(evictions),
      externalChanges: await rows(external),
    };
  };

  return Object.freeze({ registry, namespace, snapshot, recordError });
}

function stripNamespace(labels: Readonly<Partial<Record<string, string | number>>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (k !== "namespace") out[k] = String(v);
  return out;
}

interface HistogramValue {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
  readonly metricName?: string;
}

/** Regroups prom-client's flat histogram values (`_bucket`, `_sum`, `_count`) into one row per op and tier. */
function latencyRows(values: readonly HistogramValue[]): LatencyRow[] {
  const groups = new Map<string, { op: string; tier: string; buckets: [number, number][]; sum: number; count: number }>();
  for (const v of values) {
    const op = String(v.labels.op);
    const tier = String(v.labels.tier);
    const key = `${op}\u0000${tier}`;
    let g = groups.get(key);
    if (!g) {
      g = { op, tier, buckets: [], sum: 0, count: 0 };
      groups.set(key, g);
    }
    const name = v.metricName ?? "";
    if (name.endsWith("_bucket")) g.buckets.push([v.labels.le === "+Inf" ? Infinity : Number(v.labels.le), v.value]);
    else if (name.endsWith("_sum")) g.sum = v.value;
    else if (name.endsWith("_count")) g.count = v.value;
  }
  return [...groups.values()].map((g) => ({
    op: g.op,
    tier: g.tier,
    count: g.count,
    sum: g.sum,
    p50: quantileFromBuckets(0.5, g.buckets),
    p95: quantileFromBuckets(0.95, g.buckets),
    p99: quantileFromBuckets(0.99, g.buckets),
  }));
}
