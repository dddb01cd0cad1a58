import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { makeDatum, type Store } from "../../compose/index.js";
import { bootstrapServices, createServices, getService, injectService, resetServices } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-services-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Brain {
  readonly store: Store;
  capture(text: string): Promise<string>;
}

function brainOn(store: Store): Brain {
  return { store, capture: (text) => store.put(makeDatum({ content: text, metadata: { type: "crystal" } })) };
}

describe("a service registry", () => {
  it("creates a store from a config file once, even for concurrent callers, and a service on top of it; reset closes them newest first", async () => {
    const file = join(dir, "dgent.config.json");
    writeFileSync(file, JSON.stringify({ version: 1, namespace: "svc", tiers: [{ adapter: "sqlite", options: { path: join(dir, "brain.db") } }] }));
    const order: string[] = [];
    const services = createServices<{ memory: Store; brain: Brain }>()
      .defineStore("memory", file)
      .define("brain", async (s) => brainOn(await s.store("memory")), { dispose: () => void order.push("brain") });
    const [a, b] = await Promise.all([services.get("brain"), services.get("brain")]);
    expect(a).toBe(b);
    expect(await services.get("memory")).toBe(a.store);
    const id = await a.capture("hello");
    expect((await a.store.get(id))?.metadata).toEqual({ type: "crystal" });
    await services.reset();
    expect(order).toEqual(["brain"]);
    await expect(a.store.get(id)).rejects.toMatchObject({ code: "DGENT_CLOSED" });
    // After a reset the next get builds a fresh instance on the same file: the data is still there.
    const again = await services.get("brain");
    expect(again).not.toBe(a);
    expect((await again.store.get(id))?.id).toBe(id);
    await services.reset();
  });

  it("inject overrides a service until reset, and is never disposed", async () => {
    const services = createServices<{ clock: { now(): number } }>().define("clock", () => ({ now: () => Date.now() }));
    const fake = { now: () => 42 };
    services.inject("clock", fake);
    expect((await services.get("clock")).now()).toBe(42);
    await services.reset();
    expect((await services.get("clock")).now()).not.toBe(42);
  });

  it("unknown names, circles and duplicates are coded errors; a failed creation is retried", async () => {
    const services = createServices<{ a: number; b: number; flaky: number; c: number }>();
    services.define("a", async (s) => (await s.get("b")) + 1).define("b", async (s) => (await s.get("a")) + 1);
    await expect(services.get("c")).rejects.toMatchObject({ code: "DGENT_UNKNOWN_SERVICE", details: { name: "c", known: ["a", "b"] } });
    await expect(services.get("a")).rejects.toMatchObject({ code: "DGENT_SERVICE_CYCLE", details: { chain: ["a", "b", "a"] } });
    expect(() => services.define("a", () => 1)).toThrow(expect.objectContaining({ code: "DGENT_DUPLICATE_NAME" }));
    let tries = 0;
    services.define("flaky", () => {
      tries++;
      if (tries === 1) throw new Error("first time fails");
      return 7;
    });
    await expect(services.get("flaky")).rejects.toThrow("first time fails");
    expect(await services.get("flaky")).toBe(7);
  });
});

describe("the process-wide registry", () => {
  afterEach(() => resetServices({ forget: true }));

  it("bootstrap once, get anywhere, inject in a test, reset between tests", async () => {
    bootstrapServices<{ scratch: Store; greeting: string }>({
      stores: { scratch: { tiers: ["memory"] } },
      services: { greeting: () => "hello" },
    });
    const store = await getService<Store>("scratch");
    await store.put(makeDatum({ id: "x", content: "1" }));
    expect(await getService("greeting")).toBe("hello");
    injectService("greeting", "hi from a test");
    expect(await getService("greeting")).toBe("hi from a test");
  });

  it("starts empty after a reset with forget", async () => {
    await expect(getService("greeting")).rejects.toMatchObject({ code: "DGENT_UNKNOWN_SERVICE" });
  });
});
