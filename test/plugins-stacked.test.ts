/**
 * The plugins together: the transparent ones (cache, synergy, reactive, compression) pass the
 * conformance kit unchanged, alone and stacked, on memory, a slow tier and SQLite; every plugin
 * alone and all seven stacked on memory and SQLite; and plugin order comes from stages, never from
 * the order plugins are listed in.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { makeDatum, type Datum } from "../core/datum.js";
import { createStoreHooks, tapOnlyView, type HookName } from "../core/hooks.js";
import type { Adapter } from "../core/protocol.js";
import { defaultRegistry } from "../compose/catalogue.js";
import { checkOptions, type PluginApi } from "../core/registry.js";
import { createStore, type Store } from "../core/store.js";
import { runConformance, type ConformanceTarget, type Target } from "../testing/index.js";
import { cache } from "../plugins/cache/index.js";
import { compression, ENCODING_KEY } from "../plugins/compression/index.js";
import { reactive, type Change } from "../plugins/reactive/index.js";
import { synergy, synergyBus, type SynergyEvent } from "../plugins/synergy/index.js";
import { writeBehind } from "../plugins/write-behind/index.js";
import * as fulltextModule from "../plugins/fulltext/index.js";
import * as recallModule from "../plugins/recall/index.js";
import * as cacheModule from "../plugins/cache/index.js";
import * as compressionModule from "../plugins/compression/index.js";
import * as encryptionModule from "../plugins/encryption/index.js";
import * as entropyModule from "../plugins/entropy/index.js";
import * as lensModule from "../plugins/lens/index.js";
import * as reactiveModule from "../plugins/reactive/index.js";
import * as synergyModule from "../plugins/synergy/index.js";
import * as writeBehindModule from "../plugins/write-behind/index.js";
import * as metricsModule from "../plugins/metrics/index.js";
import { expectDgent, ProbeTier, removeTempDirs, sqliteTier, text, until } from "./plugins-support.js";

afterAll(removeTempDirs);

const ALL = ["entropy", "lens", "compression", "cache", "reactive", "synergy", "write-behind"] as const;
type PluginName = (typeof ALL)[number];
interface Spec {
  readonly name: PluginName;
  readonly options?: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// The conformance kit through the transparent plugins.

const KIT_BUS = `kit-${process.pid}`;
const TRANSPARENT: Record<"cache" | "synergy" | "reactive" | "compression", Spec> = {
  cache: { name: "cache" },
  synergy: { name: "synergy", options: { bus: KIT_BUS } },
  reactive: { name: "reactive", options: { overflow: "drop-oldest" } },
  compression: { name: "compression", options: { threshold: 0 } },
};
/** What the kit's stores did through the plugins: proof that they were in the path. */
const activity = { synergyEvents: 0, reactiveEvents: 0, cacheHits: 0, compressed: 0, stores: 0 };
const handles: Array<() => void> = [];
synergyBus(KIT_BUS).on("*", () => void activity.synergyEvents++);

async function compose(tier: Adapter, specs: readonly Spec[]): Promise<Store> {
  const plugins = [];
  for (const s of specs) plugins.push({ plugin: await defaultRegistry.plugin(s.name), options: s.options });
  const store = createStore({ tiers: [tier], plugins });
  activity.stores++;
  const names = specs.map((s) => s.name);
  if (names.includes("reactive")) (await store.plugin(reactive)).subscribe(() => void activity.reactiveEvents++);
  if (names.includes("cache")) {
    const h = await store.plugin(cache);
    handles.push(() => void (activity.cacheHits += h.stats().hits));
  }
  if (names.includes("compression")) {
    const h = await store.plugin(compression);
    handles.push(() => void (activity.compressed += h.stats().compressed));
  }
  return store;
}

/** Memory has no reopen or child: run the suites that apply, so nothing is skipped. */
const MEMORY_SUITES = ["put", "delete", "list", "causalChain", "badInput", "lifecycle", "putMany", "scan", "queries"];
const fw = { describe, it, beforeAll, afterAll };

function memoryTarget(name: string, specs: readonly Spec[], tier: () => Adapter = () => memoryAdapter()): void {
  runConformance({ name, create: () => compose(tier(), specs) }, fw, { only: MEMORY_SUITES });
}

function sqliteTarget(name: string, specs: readonly Spec[]): void {
  const paths = new WeakMap<object, string>();
  const make = async (path: string) => {
    const store = await compose(sqliteAdapter({ path }), specs);
    paths.set(store, path);
    return store;
  };
  const pathOf = (t: Target) => paths.get(t) as string;
  const target: ConformanceTarget = {
    name,
    create: () => make(join(mkdtempSync(join(tmpdir(), "dgent-stacked-")), "kit.db")),
    reopen: (previous) => make(pathOf(previous)),
    destroy: (instance) => rmSync(dirname(pathOf(instance)), { recursive: true, force: true }),
    child: {
      module: new URL("./fixtures/child-plugins.mjs", import.meta.url),
      args: (instance) => ({ path: pathOf(instance), plugins: specs.map((s) => ({ name: s.name, options: s.options ?? {} })) as never }),
    },
  };
  runConformance(target, fw, { crashAfter: 100, processes: 3, perProcess: 60 });
}

describe("the transparent plugins pass the conformance kit unchanged", () => {
  beforeAll(() => {
    if (!existsSync(new URL("../dist/plugins/compression/index.js", import.meta.url))) {
      throw new Error("dist/plugins is missing: the kit's child processes import the built package; run `npx tsc -p tsconfig.json` first");
    }
  });
  for (const [name, spec] of Object.entries(TRANSPARENT)) memoryTarget(`${name} on memory`, [spec]);
  // Cache on a slow tier: every tier call waits a timer tick, the cache answers from memory.
  memoryTarget("cache on a slow tier", [TRANSPARENT.cache], () => Object.assign(new ProbeTier(memoryAdapter()), { delayMs: 1 }));
  memoryTarget("cache + synergy + reactive + compression on memory", Object.values(TRANSPARENT));
  for (const [name, spec] of Object.entries(TRANSPARENT)) sqliteTarget(`${name} on sqlite`, [spec]);
  sqliteTarget("cache + synergy + reactive + compression on sqlite", Object.values(TRANSPARENT));

  afterAll(() => {
    for (const read of handles) read();
    // The kit went through the plugins, not around them.
    expect(activity.stores).toBeGreaterThan(100);
    expect(activity.synergyEvents).toBeGreaterThan(100);
    expect(activity.reactiveEvents).toBeGreaterThan(100);
    expect(activity.cacheHits).toBeGreaterThan(100);
    // The kit's contents are mostly short strings gzip cannot shrink (stored as they are); the
    // 1 MiB and repetitive ones were stored compressed.
    expect(activity.compressed).toBeGreaterThan(5);
  });
});

// ---------------------------------------------------------------------------------------------
// Each plugin alone, and all seven stacked, on memory and SQLite.

const NOTE = { type: "object", properties: { text: { type: "string" } }, required: ["text"], additionalProperties: false } as const;
let busCounter = 0;
function specsFor(names: readonly PluginName[]): Spec[] {
  const options: Record<PluginName, Record<string, unknown>> = {
    entropy: { maxBytes: 50_000, measure: "content" },
    lens: { schemas: { note: NOTE } },
    compression: { threshold: 64 },
    cache: { maxEntries: 1000 },
    reactive: {},
    synergy: { bus: `scenario-${process.pid}-${busCounter++}` },
    "write-behind": { maxBatch: 4, intervalMs: 0 },
  };
  return names.map((name) => ({ name, options: options[name] }));
}

const note = (i: number, parent: string | null, createdAt: number): Datum =>
  makeDatum({
    id: `n/${String(i).padStart(3, "0")}`,
    content: JSON.stringify({ text: `step ${i}: ${"think about the next action; ".repeat(8)}` }),
    metadata: { type: "note", i: String(i) },
    causalParent: parent,
    createdAt,
  });

async function scenario(tierKind: "memory" | "sqlite", names: readonly PluginName[]): Promise<void> {
  const inner = tierKind === "memory" ? memoryAdapter() : sqliteTier();
  const tier = new ProbeTier(inner);
  const specs = specsFor(names);
  const plugins = [];
  for (const s of specs) plugins.push({ plugin: await defaultRegistry.plugin(s.name), options: s.options });
  const store = createStore({ tiers: [tier], plugins });
  const has = (n: PluginName) => names.includes(n);
  await store.open();
  const changes: Change[] = [];
  if (has("reactive")) (await store.plugin(reactive)).subscribe((c) => void changes.push(c));
  const events: SynergyEvent[] = [];
  if (has("synergy")) (await store.plugin(synergy)).bus.on("*", (e) => void events.push(e));

  // 12 puts in one causal chain, then a putMany of 3.
  const ds: Datum[] = [];
  for (let i = 0; i < 12; i++) {
    const datum = note(i, ds[i - 1]?.id ?? null, 1000 + i);
    ds.push(datum);
    expect(await store.put(datum)).toBe(datum.id);
  }
  const batch = [12, 13, 14].map((i) => note(i, null, 1000 + i));
  expect(await store.putMany(batch)).toEqual(batch.map((b) => b.id));
  ds.push(...batch);
  if (has("write-behind")) {
    // Buffered: the tier has seen fewer writes than were acknowledged (batches of 4).
    expect((await store.plugin(writeBehind)).stats().buffered).toBeGreaterThan(0);
  }

  // Reads are transparent whatever the stack.
  for (const datum of ds) {
    const got = await store.get(datum.id);
    expect(text(got)).toBe(text(datum));
    expect(got?.metadata).toEqual(datum.metadata);
    expect(got?.causalParent).toBe(datum.causalParent);
  }
  expect((await store.list({ limit: 100 })).map((d) => d.id)).toEqual([...ds].reverse().map((d) => d.id));
  expect((await store.causalChain(ds[11]?.id as string)).map((d) => d.id)).toEqual(ds.slice(0, 12).map((d) => d.id));
  expect(await store.delete(ds[14]?.id as string)).toBe(true);
  expect(await store.get(ds[14]?.id as string)).toBeNull();
  expect((await store.list({ limit: 100 })).length).toBe(14);

  // Each plugin's effect.
  if (has("entropy")) {
    const big = makeDatum({ content: new Uint8Array(60_000), metadata: {} });
    await expectDgent(store.put(big), "DGENT_BUDGET_EXCEEDED");
    expect(await store.get(big.id)).toBeNull();
  }
  if (has("lens")) {
    const bad = makeDatum({ content: '{"text": 42}', metadata: { type: "note" } });
    await expectDgent(store.put(bad), "DGENT_LENS_INVALID");
    expect(await store.get(bad.id)).toBeNull();
  }
  if (has("cache")) {
    await store.get(ds[0]?.id as string);
    expect((await store.plugin(cache)).stats().hits).toBeGreaterThan(0);
  }
  if (has("write-behind")) await (await store.plugin(writeBehind)).flush();
  if (has("compression")) {
    const raw = await tier.inner.get(ds[0]?.id as string);
    expect(raw?.metadata[ENCODING_KEY]).toBe("gzip");
    expect(raw?.content.byteLength).toBeLessThan(ds[0]?.content.byteLength as number);
  }
  if (has("reactive")) {
    await until("all changes", () => changes.length === 16);
    expect(changes.map((c) => c.seq)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const first = changes.find((c) => c.id === ds[0]?.id);
    expect(text(first?.datum)).toBe(text(ds[0])); // the caller's bytes, not the stored form
    expect(changes.at(-1)).toMatchObject({ op: "delete", id: ds[14]?.id });
  }
  if (has("synergy")) {
    expect(events.filter((e) => e.type === "stored").length).toBe(15);
    expect(events.filter((e) => e.type === "deleted").length).toBe(1);
    const stored = events.find((e) => e.type === "stored" && e.id === ds[0]?.id);
    expect(stored?.type === "stored" && stored.metadata).toEqual(ds[0]?.metadata); // no compression key
  }
  await store.close();

  // What is on disk outlives the process: reopen with the read-side plugins only.
  if (tierKind === "sqlite") {
    const path = (inner as ReturnType<typeof sqliteTier>).path;
    const readers = has("compression") ? [{ plugin: compression }] : [];
    const reopened = createStore({ tiers: [sqliteAdapter({ path })], plugins: readers });
    const listed = await reopened.list({ limit: 100 });
    expect(listed.length).toBe(14);
    expect(text(listed.find((d) => d.id === ds[3]?.id))).toBe(text(ds[3]));
    await reopened.close();
  }
}

describe("each plugin alone and all seven stacked", () => {
  for (const tierKind of ["memory", "sqlite"] as const) {
    for (const name of ALL) it(`${name} alone on ${tierKind}`, () => scenario(tierKind, [name]));
    it(`all seven stacked on ${tierKind}`, () => scenario(tierKind, ALL));
  }
});

// ---------------------------------------------------------------------------------------------
// Order comes from stages.

/** Applies plugins in `order` to fresh hooks (as a store does) and returns each hook's taps as `name@stage`, in run order. */
async function tapOrder(order: readonly PluginName[]): Promise<Record<string, string[]>> {
  const hooks = createStoreHooks();
  for (const name of order) {
    const plugin = await defaultRegistry.plugin(name);
    const spec = specsFor([name])[0] as Spec;
    const api: PluginApi = { hooks: tapOnlyView(hooks, name), name, namespace: "order", tiers: [{ name: "memory", rank: 0 }], warn: () => undefined };
    await plugin.apply(api, checkOptions(plugin, spec.options) as never);
  }
  const out: Record<string, string[]> = {};
  for (const hook of ["beforePut", "deferPut", "beforeGet", "afterGet", "read", "afterPut", "afterDelete", "afterList", "close"] as HookName[]) {
    const taps = (hooks[hook] as unknown as { taps: Array<{ name: string; stage?: number }> }).taps;
    const stages = taps.map((t) => t.stage ?? 0);
    // Tapable runs taps in this array's order: it must be sorted by stage.
    expect(stages).toEqual([...stages].sort((a, b) => a - b));
    // Taps of one stage are independent observers (reactive and synergy at 0); list them by name.
    out[hook] = taps.map((t) => `${t.name}@${t.stage ?? 0}`).sort((a, b) => stageOf(a) - stageOf(b) || a.localeCompare(b));
  }
  return out;
}

const stageOf = (tap: string) => Number(tap.slice(tap.lastIndexOf("@") + 1));

describe("plugin order is decided by stages, not registration order", () => {
  it("every registration order gives the same taps in the same order", async () => {
    const reference = await tapOrder(ALL);
    expect(reference.beforePut).toEqual(["entropy@-200", "lens@-150", "compression@100", "cache@200"]);
    expect(reference.read).toEqual(["compression@-100", "lens@-50"]);
    expect(reference.beforeGet).toEqual(["write-behind@110", "cache@190"]);
    expect(reference.deferPut).toEqual(["write-behind@110"]);
    expect(reference.afterPut).toEqual(["reactive@0", "synergy@0", "cache@190"]);
    expect(reference.close).toEqual(["write-behind@-100", "reactive@100", "synergy@100"]);
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray([...ALL], { minLength: ALL.length }), async (order) => {
        expect(await tapOrder(order)).toEqual(reference);
      }),
      { numRuns: 40 },
    );
  });

  it("behaviour is the same whatever the order: guards before transforms, reads undone in mirror", async () => {
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray([...ALL], { minLength: ALL.length }), async (order) => {
        const tier = new ProbeTier();
        const specs = specsFor(order);
        const plugins = [];
        for (const s of specs) plugins.push({ plugin: await defaultRegistry.plugin(s.name), options: s.options });
        const store = createStore({ tiers: [tier], plugins });
        const feed = (await store.plugin(reactive)).changes();
        // Over budget AND not a valid note: the entropy guard (-200) always speaks first.
        const both = makeDatum({ content: "x".repeat(60_000), metadata: { type: "note" } });
        await expectDgent(store.put(both), "DGENT_BUDGET_EXCEEDED");
        // A valid, compressible note: validated (-150) before compression (+100) on the way in, and
        // after decompression (-100) on the way out (-50) — in any other order a step would see gzip bytes.
        const good = note(1, null, 5);
        await store.put(good);
        await (await store.plugin(writeBehind)).flush();
        expect((await tier.inner.get(good.id))?.metadata[ENCODING_KEY]).toBe("gzip");
        expect(text(await store.get(good.id))).toBe(text(good));
        expect(text((await feed.next()).value?.datum)).toBe(text(good));
        await store.close();
      }),
      { numRuns: 15 },
    );
  });
});

describe("stacked plugins at close", () => {
  it("the write buffer's last batch still reaches change consumers and bus listeners", async () => {
    const bus = `close-${process.pid}`;
    const store = createStore({
      tiers: [memoryAdapter()],
      plugins: [
        { plugin: await defaultRegistry.plugin("reactive") },
        { plugin: await defaultRegistry.plugin("synergy"), options: { bus } },
        { plugin: await defaultRegistry.plugin("write-behind"), options: { maxBatch: 100, intervalMs: 0 } },
      ],
    });
    const feed = (await store.plugin(reactive)).changes();
    const heard: string[] = [];
    synergyBus(bus).on("stored", (e) => void heard.push(e.id));
    const ds = [1, 2, 3].map((i) => makeDatum({ content: String(i) }));
    for (const datum of ds) await store.put(datum);
    expect(heard).toEqual([]); // buffered: nothing stored yet
    await store.close();
    const got: string[] = [];
    for await (const c of feed) got.push(c.id);
    expect(got).toEqual(ds.map((x) => x.id));
    expect(heard).toEqual(ds.map((x) => x.id));
  });
});

// ---------------------------------------------------------------------------------------------
// Registry and folders.

/** The search plugins: registered and documented like the rest; they do nothing until attached, so no stacking scenario. */
const SEARCH = ["recall", "fulltext"] as const;
/** Observers tested in their own folders (metrics runs the kit there). */
const OBSERVERS = ["metrics"] as const;

/** Plugins that need keys to run: registered and documented like the rest; stacked with compression in their own tests. */
const KEYED = ["encryption"] as const;

const MODULES: Record<PluginName | (typeof SEARCH)[number] | (typeof OBSERVERS)[number] | (typeof KEYED)[number], { PLUGIN_NAME: string }> = {
  encryption: encryptionModule,
  recall: recallModule,
  fulltext: fulltextModule,
  cache: cacheModule,
  entropy: entropyModule,
  synergy: synergyModule,
  lens: lensModule,
  reactive: reactiveModule,
  compression: compressionModule,
  "write-behind": writeBehindModule,
  metrics: metricsModule,
};

describe("the plugins as a set", () => {
  const root = new URL("..", import.meta.url).pathname;
  it("each is registered by its folder name, loads, and checks its options with a JSON schema", async () => {
    const folders = readdirSync(join(root, "plugins"), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    expect(folders).toEqual([...ALL, ...SEARCH, ...OBSERVERS, ...KEYED].sort());
    for (const name of [...ALL, ...SEARCH, ...OBSERVERS, ...KEYED]) {
      expect(defaultRegistry.pluginNames()).toContain(name);
      const def = await defaultRegistry.plugin(name);
      expect(def.name).toBe(name);
      expect(def.optionsSchema).toMatchObject({ type: "object", additionalProperties: false });
      expect(MODULES[name].PLUGIN_NAME).toBe(name);
      const readme = readFileSync(join(root, "plugins", name, "README.md"), "utf8");
      expect(readme.startsWith(`# ${name}\n`)).toBe(true);
      expect(readme).toMatch(/## Options/);
      expect(readme).toMatch(/## Stages? it taps/);
      expect(readdirSync(join(root, "plugins", name)).some((f) => f.endsWith(".test.ts"))).toBe(true);
    }
    const index = readFileSync(join(root, "plugins", "README.md"), "utf8");
    for (const name of [...ALL, ...SEARCH, ...OBSERVERS]) expect(index).toContain(`[${name}](${name}/README.md)`);
    for (const name of [...ALL, ...SEARCH, ...KEYED]) expect(index).toContain(`[${name}](${name}/README.md)`);
  });
});
