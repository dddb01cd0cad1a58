import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStoreFromConfig, defaultRegistry } from "../../compose/index.js";
import { createStore, dgentError, makeDatum, type Adapter } from "../../core/index.js";
import { cachePlugin } from "../cache/index.js";
import { compressionPlugin } from "../compression/index.js";
import { metrics, metricsOf, metricsPlugin, quantileFromBuckets, sampleValue, type MetricsSnapshot } from "./index.js";
import { Pending } from "./pending.js";
import { runConformance } from "../../testing/index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-metrics-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A clock that moves 1 ms each time it is read: every timed operation takes exactly 1 ms. */
function steppingClock() {
  let t = 0;
  return () => (t += 1);
}

function count(snap: MetricsSnapshot, labels: Record<string, string>, rows: "operations" | "errors" | "datumsRead" | "promotions" = "operations"): number {
  const row = snap[rows].find((r) => Object.entries(labels).every(([k, v]) => r.labels[k] === v) && Object.keys(r.labels).length === Object.keys(labels).length);
  return row?.value ?? 0;
}

const text = (content: string) => makeDatum({ content });


describe("metrics plugin", () => {
  it("counts each operation by tier and outcome, times it with the injected clock, and counts bytes", async () => {
    const store = createStore({ namespace: "m1", tiers: [memoryAdapter()], plugins: [metricsPlugin({ now: steppingClock() })] });
    const root = text("root");
    const child = makeDatum({ content: "child", causalParent: root.id });
    await store.put(root);
    await store.put(child);
    await store.putMany([text("a"), text("bb")]);
    expect((await store.get(root.id))?.id).toBe(root.id);
    expect(await store.get("missing")).toBeNull();
    expect(await store.list({ limit: 10 })).toHaveLength(4);
    expect((await store.causalChain(child.id)).map((d) => d.id)).toEqual([root.id, child.id]);
    expect(await store.delete(root.id)).toBe(true);
    expect(await store.delete(root.id)).toBe(false);

    const handle = await store.plugin(metrics);
    const snap = await handle.snapshot();
    expect(snap.namespace).toBe("m1");
    expect(count(snap, { op: "put", tier: "memory", outcome: "stored" })).toBe(4);
    expect(count(snap, { op: "get", tier: "memory", outcome: "hit" })).toBe(1);
    expect(count(snap, { op: "get", tier: "none", outcome: "miss" })).toBe(1);
    expect(count(snap, { op: "list", tier: "memory", outcome: "ok" })).toBe(1);
    expect(count(snap, { op: "causalChain", tier: "memory", outcome: "ok" })).toBe(1);
    expect(count(snap, { op: "delete", tier: "memory", outcome: "deleted" })).toBe(1);
    expect(count(snap, { op: "delete", tier: "memory", outcome: "absent" })).toBe(1);
    // Each clock read moves it 1 ms: a put takes 1 ms; putMany starts both before the batch is
    // stored and ends them one after the other, 2 ms each.
    const put = snap.latency.find((l) => l.op === "put" && l.tier === "memory");
    expect(put).toMatchObject({ count: 4 });
    expect(put?.sum).toBeCloseTo(0.006, 9);
    expect(put?.p50).toBeCloseTo(0.001, 9);
    expect(put?.p99).toBeGreaterThan(0.001);
    expect(put?.p99).toBeLessThanOrEqual(0.0025);
    expect(snap.latency.find((l) => l.op === "get" && l.tier === "none")).toMatchObject({ count: 1 });
    expect(snap.latency.find((l) => l.op === "get" && l.tier === "none")?.sum).toBeCloseTo(0.001, 9);
    expect(snap.latency.find((l) => l.op === "delete")?.sum).toBeCloseTo(0.002, 9);
    expect(snap.latency.find((l) => l.op === "causalChain")).toMatchObject({ count: 1 });
    expect(snap.latency.find((l) => l.op === "causalChain")?.sum).toBeCloseTo(0.001, 9);
    // in: 4+5+1+2; out: get "root" (4) + list (5+1+2+4) + chain (4+5).
    expect(snap.bytes).toEqual({ in: 12, out: 4 + 12 + 9, stored: 12 });
    expect(count(snap, { op: "list", source: "memory" }, "datumsRead")).toBe(4);
    expect(snap.tiers).toEqual([{ tier: "memory", up: true, degraded: false, failures: 0 }]);

    const prom = await handle.registry.metrics();
    const ns = { namespace: "m1" };
    expect(sampleValue(prom, "dgent_operations_total", { ...ns, op: "put", tier: "memory", outcome: "stored" })).toBe(4);
    expect(sampleValue(prom, "dgent_operation_duration_seconds_bucket", { ...ns, le: "0.001", op: "put", tier: "memory" })).toBe(2);
    expect(sampleValue(prom, "dgent_operation_duration_seconds_bucket", { ...ns, le: "0.0025", op: "put", tier: "memory" })).toBe(4);
    expect(sampleValue(prom, "dgent_operation_duration_seconds_bucket", { ...ns, le: "0.0005", op: "put", tier: "memory" })).toBe(0);
    expect(sampleValue(prom, "dgent_bytes_total", { ...ns, direction: "in" })).toBe(12);
    expect(sampleValue(prom, "dgent_tier_up", { ...ns, tier: "memory" })).toBe(1);
    await store.close();
    expect((await handle.snapshot()).operations.length).toBeGreaterThan(0); // readable after close
  });

  it("errors by code: reported ones and tier failures; a failed call leaves no start to pair with a later one", async () => {
    let failNext = false;
    const inner = memoryAdapter();
    const flaky: Adapter = {
      name: inner.name,
      rank: inner.rank,
      capabilities: inner.capabilities,
      open: (c) => inner.open(c),
      close: () => inner.close(),
      get: async (id) => {
        if (failNext) {
          failNext = false;
          throw dgentError("DGENT_BACKEND_ERROR", "disk on fire");
        }
        return inner.get(id);
      },
      put: (d) => inner.put(d),
      delete: (id) => inner.delete(id),
      list: (o) => inner.list(o),
    };
    let t = 0;
    const store = createStore({ namespace: "m2", tiers: [flaky], plugins: [metricsPlugin({ now: () => t })] });
    const d = text("x");
    await store.put(d);
    failNext = true;
    t = 100; // the failing call starts at 100 ms…
    await expect(store.get(d.id)).rejects.toMatchObject({ code: "DGENT_BACKEND_ERROR" });
    t = 500; // …the next one starts at 500 and ends at 501: 1 ms, not 401.
    const handle = await store.plugin(metrics);
    const pending = store.get(d.id);
    t = 501;
    expect((await pending)?.id).toBe(d.id);
    handle.recordError("get", dgentError("DGENT_BACKEND_ERROR", "disk on fire"));
    handle.recordError("put", new Error("no code"));
    const snap = await handle.snapshot();
    expect(count(snap, { op: "get", code: "DGENT_BACKEND_ERROR" }, "errors")).toBe(1);
    expect(count(snap, { op: "put", code: "UNKNOWN" }, "errors")).toBe(1);
    const get = snap.latency.find((l) => l.op === "get");
    expect(get?.count).toBe(1);
    expect(get?.sum).toBeLessThanOrEqual(0.001);
    await store.close();
  });

  it("a get answered by the cache is counted as a plugin hit; compression shows as stored < in bytes", async () => {
    const big = "agent trace line, repeated. ".repeat(200);
    const store = createStore({
      namespace: "m3",
      tiers: [memoryAdapter()],
      plugins: [cachePlugin({}), compressionPlugin({ threshold: 64 }), metricsPlugin({})],
    });
    const d = text(big);
    await store.put(d);
    expect(new TextDecoder().decode((await store.get(d.id))?.content)).toBe(big);
    const snap = await (await store.plugin(metrics)).snapshot();
    expect(count(snap, { op: "get", tier: "plugin", outcome: "hit" })).toBe(1);
    expect(snap.bytes.in).toBe(big.length);
    expect(snap.bytes.out).toBe(big.length);
    expect(snap.bytes.stored).toBeLessThan(big.length / 4);
    await store.close();
  });

  it("tier health: failure, degraded landing, restore and the upgrader's moves", async () => {
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    top.down = true;
    const store = createStore({ namespace: "m4", tiers: [local.adapter, top.adapter], probeBackoffMs: { min: 1, max: 5 }, plugins: [metrics] });
    let restored!: () => void;
    const wasRestored = new Promise<void>((resolve) => (restored = resolve));
    let promoted!: () => void;
    const wasPromoted = new Promise<void>((resolve) => (promoted = resolve));
    store.hooks.restored.tap("test", () => restored());
    store.hooks.promoted.tap("test", () => promoted());
    store.hooks.warning.tap("test", () => undefined); // degraded landing warns; expected here
    await store.open();
    const handle = await store.plugin(metrics);
    let snap = await handle.snapshot();
    expect(snap.tiers).toEqual([
      { tier: "top", up: false, degraded: true, failures: 1 },
      { tier: "local", up: true, degraded: false, failures: 0 },
    ]);
    expect(sampleValue(await handle.registry.metrics(), "dgent_tier_degraded", { tier: "top", namespace: "m4" })).toBe(1);
    await store.put(text("while top was down"));
    expect(count((await handle.snapshot()), { op: "put", tier: "local", outcome: "stored" })).toBe(1);
    top.down = false;
    await wasRestored;
    await wasPromoted;
    snap = await handle.snapshot();
    expect(snap.tiers[0]).toEqual({ tier: "top", up: true, degraded: false, failures: 1 });
    expect(count(snap, { op: "tier", code: "DGENT_UNAVAILABLE" }, "errors")).toBe(1);
    expect(count(snap, { from: "local", to: "top" }, "promotions")).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  it("on SQLite, composed by name from the catalogue, with a prefix and buckets of its own", async () => {
    const definition = await defaultRegistry.plugin("metrics");
    expect(definition).toBe(metrics);
    const store = createStore({
      namespace: "m5",
      tiers: [sqliteAdapter({ path: join(dir, "m5.db") })],
      plugins: [{ plugin: metrics, options: { prefix: "agent_", buckets: [0.5, 0.1] } }],
    });
    await store.put(text("persisted"));
    const prom = await (await store.plugin(metrics)).registry.metrics();
    expect(sampleValue(prom, "agent_operations_total", { op: "put", tier: "sqlite", outcome: "stored", namespace: "m5" })).toBe(1);
    expect(sampleValue(prom, "agent_operation_duration_seconds_count", { op: "put", tier: "sqlite", namespace: "m5" })).toBe(1);
    expect(sampleValue(prom, "agent_operation_duration_seconds_bucket", { le: "0.1", op: "put", tier: "sqlite", namespace: "m5" })).toBeDefined();
    expect(prom).not.toContain("dgent_");
    await store.close();
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [{ plugin: metrics, options: { prefix: "no spaces" } }] })).toThrow(/prefix/);
  });
});

describe("histogram quantiles and pending starts", () => {
  it("interpolates inside the bucket, as histogram_quantile does", () => {
    const b: [number, number][] = [[0.1, 50], [0.2, 100], [Infinity, 100]];
    expect(quantileFromBuckets(0.5, b)).toBeCloseTo(0.1);
    expect(quantileFromBuckets(0.75, b)).toBeCloseTo(0.15);
    expect(quantileFromBuckets(0.25, b)).toBeCloseTo(0.05);
    expect(quantileFromBuckets(0.99, [[0.1, 1], [Infinity, 10]])).toBe(0.1);
    expect(quantileFromBuckets(0.5, [[0.1, 0], [Infinity, 0]])).toBeNull();
  });

  it("pairs the newest start of a key and stays bounded", () => {
    const p = new Pending();
    p.start("a", 1);
    p.start("a", 2);
    expect(p.finish("a")).toBe(2);
    expect(p.finish("a")).toBe(1);
    expect(p.finish("a")).toBeUndefined();
    for (let i = 0; i < 100; i++) p.start("k", i);
    let n = 0;
    while (p.finish("k") !== undefined) n++;
    expect(n).toBe(32);
    for (let i = 0; i < 5000; i++) p.start(`id${i}`, i);
    expect(p.size).toBe(4096);
    expect(p.finish("id0")).toBeUndefined();
    expect(p.finish("id4999")).toBe(4999);
  });
});

/** A memory tier under another name and rank that fails every call while `down`. */
function switchable(name: string, rank: number) {
  const inner = memoryAdapter();
  let opened = false;
  const state = { down: false };
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (state.down) throw dgentError("DGENT_UNAVAILABLE", `${name} is down`, { unit: name });
    return fn();
  };
  const adapter: Adapter = {
    name,
    rank,
    capabilities: { ...inner.capabilities, persistent: true },
    open: (c) =>
      guard(async () => {
        if (!opened) await inner.open(c);
        opened = true;
      }),
    close: async () => undefined,
    put: (d) => guard(() => inner.put(d)),
    get: (id) => guard(() => inner.get(id)),
    delete: (id) => guard(() => inner.delete(id)),
    list: (o) => guard(() => inner.list(o)),
    scan: () => (inner.scan as NonNullable<Adapter["scan"]>)(),
    stats: () => guard(() => (inner.stats as NonNullable<Adapter["stats"]>)()),
    probe: async () => !state.down,
  };
  return {
    adapter,
    get down() {
      return state.down;
    },
    set down(v: boolean) {
      state.down = v;
    },
  };
}

describe("transparent: the conformance kit through the metrics plugin", () => {
  runConformance(
    { name: "metrics on memory", create: () => createStore({ tiers: [memoryAdapter()], plugins: [metrics] }) },
    { describe, it, beforeAll, afterAll },
    { only: ["put", "delete", "list", "causalChain", "badInput", "lifecycle", "putMany", "scan", "queries"] },
  );
});

describe("bounded tiers", () => {
  it("counts what a bounded tier evicts, by tier and reason", async () => {
    const store = createStore({ namespace: "m7", tiers: [memoryAdapter({ maxDatums: 2 })], plugins: [metrics] });
    for (let i = 0; i < 5; i++) await store.put(makeDatum({ content: `n${i}`, createdAt: 1000 + i }));
    const handle = await store.plugin(metrics);
    expect((await handle.snapshot()).evictions).toEqual([{ labels: { tier: "memory", reason: "maxDatums" }, value: 3 }]);
    await store.close();
  });
});

describe("metricsOf(store)", () => {
  it("is the plugin's handle when the store has it, else the same measures tapped on store.hooks once", async () => {
    const withPlugin = createStore({ namespace: "m8", tiers: [memoryAdapter()], plugins: [metrics] });
    expect(await metricsOf(withPlugin)).toBe(await withPlugin.plugin(metrics));
    const bare = createStore({ namespace: "m9", tiers: [memoryAdapter()] });
    await bare.put(text("before: not counted"));
    const handle = await metricsOf(bare);
    expect(await metricsOf(bare)).toBe(handle);
    await bare.put(text("after"));
    expect(await bare.get("nope")).toBeNull();
    const snap = await handle.snapshot();
    expect(snap.namespace).toBe("m9");
    expect(count(snap, { op: "put", tier: "memory", outcome: "stored" })).toBe(1);
    expect(count(snap, { op: "get", tier: "none", outcome: "miss" })).toBe(1);
    await withPlugin.close();
    await bare.close();
  });
});

describe("from a config", () => {
  it("`plugins: [metrics]` composes it by name", async () => {
    const store = await createStoreFromConfig({ namespace: "m6", tiers: ["memory"], plugins: ["metrics"] });
    await store.put(text("configured"));
    const snap = await (await store.plugin(metrics)).snapshot();
    expect(count(snap, { op: "put", tier: "memory", outcome: "stored" })).toBe(1);
    await store.close();
  });
});
