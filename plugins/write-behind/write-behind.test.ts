import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { makeDatum, type Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import type { WarningInfo } from "../../core/hooks.js";
import { createStore } from "../../core/store.js";
import { expectDgent, ProbeTier, removeTempDirs, sqliteTier, text, until } from "../../test/plugins-support.js";
import { runProcess } from "../../test/harness/run.js";
import { writeBehind, writeBehindPlugin, type WriteBehindOptions } from "./index.js";

afterAll(removeTempDirs);

const storeWith = (options: WriteBehindOptions = {}, tier = new ProbeTier()) => {
  const store = createStore({ tiers: [tier], plugins: [writeBehindPlugin({ intervalMs: 0, ...options })] });
  const warnings: WarningInfo[] = [];
  store.hooks.warning.tap("test", (w) => void warnings.push(w));
  return { tier, store, warnings };
};
const d = (id: string, content = id, extra: Partial<Datum> = {}) => makeDatum({ id, content, ...extra });
const writes = (tier: ProbeTier) => tier.calls.put + tier.calls.putMany;

describe("write-behind", () => {
  it("acknowledges puts from the buffer and writes them as one batch when maxBatch is reached", async () => {
    const { tier, store } = storeWith({ maxBatch: 10 });
    for (let i = 0; i < 9; i++) await store.put(d(`b${i}`));
    expect(writes(tier)).toBe(0);
    expect((await tier.inner.list({ prefix: "", after: -1, limit: 100 })).length).toBe(0);
    expect(text(await store.get("b3"))).toBe("b3"); // reads see buffered datums
    expect((await store.list()).length).toBe(9);
    await store.put(d("b9")); // fills the batch: this put waits for the flush
    expect(tier.calls.putMany).toBe(1);
    expect(tier.calls.put).toBe(0);
    expect((await tier.inner.list({ prefix: "", after: -1, limit: 100 })).length).toBe(10);
    expect((await store.plugin(writeBehind)).stats()).toMatchObject({ buffered: 0, flushes: 1, batches: 1, written: 10 });
  });

  it("flushes on an interval", async () => {
    const { tier, store } = storeWith({ maxBatch: 1000, intervalMs: 25 });
    for (let i = 0; i < 5; i++) await store.put(d(`i${i}`));
    expect(writes(tier)).toBe(0);
    await until("the interval flush", () => tier.calls.putMany === 1);
    expect((await tier.inner.list({ prefix: "", after: -1, limit: 100 })).length).toBe(5);
    await store.close();
  });

  it("flushes on close: everything acknowledged is on disk after close()", async () => {
    const sqlite = sqliteTier();
    const { store } = storeWith({ maxBatch: 1000 }, new ProbeTier(sqlite));
    for (let i = 0; i < 50; i++) await store.put(d(`c${i}`));
    await store.close();
    const reopened = createStore({ tiers: [sqliteAdapter({ path: sqlite.path })] });
    expect((await reopened.list({ limit: 1000 })).length).toBe(50);
    await reopened.close();
  });

  it("a different datum under a buffered id is DGENT_CONFLICT at once; an identical one is a no-op", async () => {
    const { tier, store } = storeWith({ maxBatch: 1000 });
    await store.put(d("x", "first", { metadata: { a: "1" } }));
    expect(await store.put(d("x", "first", { metadata: { a: "1" } }))).toBe("x");
    const err = await expectDgent(store.put(d("x", "second")), "DGENT_CONFLICT");
    expect(err.unit).toBe("write-behind");
    await expectDgent(store.putMany([d("y"), d("y", "other")]), "DGENT_CONFLICT");
    expect(await store.get("y")).toBeNull(); // the putMany buffered nothing
    await (await store.plugin(writeBehind)).flush();
    expect(text(await tier.inner.get("x"))).toBe("first");
  });

  it("checks the tiers when it acknowledges: a stored conflict fails at once, a stored identical datum is a no-op", async () => {
    const { tier, store } = storeWith({ maxBatch: 1000 });
    await store.open();
    await tier.inner.put(d("stored", "on the tier", { createdAt: 1 }));
    await expectDgent(store.put(d("stored", "different")), "DGENT_CONFLICT");
    expect(await store.put(d("stored", "on the tier", { createdAt: 99 }))).toBe("stored");
    expect((await store.get("stored"))?.createdAt).toBe(1); // as without the plugin: the first write stands
    expect((await store.plugin(writeBehind)).stats().buffered).toBe(0);
    expect(tier.calls.get).toBe(3); // one lookup per put, one get
  });

  it("a conflict that appears before the flush (another writer) drops that write, writes the rest, and surfaces at flush()", async () => {
    const { tier, store, warnings } = storeWith({ maxBatch: 1000 });
    await store.open();
    await store.put(d("a"));
    expect(await store.put(d("taken", "acknowledged, then refused"))).toBe("taken");
    await tier.inner.put(d("taken", "already stored")); // another process wins the id meanwhile
    await store.put(d("b"));
    const handle = await store.plugin(writeBehind);
    const err = await expectDgent(handle.flush(), "DGENT_CONFLICT");
    expect(err.details.id).toBe("taken");
    expect(text(await tier.inner.get("taken"))).toBe("already stored"); // the law held
    expect(text(await tier.inner.get("a"))).toBe("a");
    expect(text(await tier.inner.get("b"))).toBe("b");
    expect(handle.stats()).toMatchObject({ refused: 1, buffered: 0 });
    expect(warnings.some((w) => w.unit === "write-behind" && (w.details?.ids as string[]).includes("taken"))).toBe(true);
    await handle.flush(); // reported once
  });

  it("the put that fills a batch hears of its own refusal", async () => {
    const { tier, store } = storeWith({ maxBatch: 2 });
    await store.open();
    await store.put(d("other"));
    const lookup = tier.hold("get", "after"); // this put's lookup finds nothing, then waits
    const putting = store.put(d("mine", "clashes"));
    await lookup.reached;
    await tier.inner.put(d("mine", "stored first")); // another writer wins the id before the flush
    lookup.open();
    await expectDgent(putting, "DGENT_CONFLICT");
    expect(text(await store.get("other"))).toBe("other");
    expect(text(await store.get("mine"))).toBe("stored first");
  });

  it("refusals found in the background are thrown by close(), and the tiers are closed anyway", async () => {
    const sqlite = sqliteTier();
    const tier = new ProbeTier(sqlite);
    const { store } = storeWith({ maxBatch: 1000, intervalMs: 20 }, tier);
    await store.open();
    await store.put(d("dup", "buffered"));
    await tier.inner.put(d("dup", "on disk"));
    await store.put(d("fine"));
    const handle = await store.plugin(writeBehind);
    await until("the background flush to find the refusal", () => handle.stats().refused === 1);
    await expectDgent(store.close(), "DGENT_CONFLICT");
    await expectDgent(tier.inner.get("fine"), "DGENT_CLOSED"); // the tier was closed
    const reopened = createStore({ tiers: [sqliteAdapter({ path: sqlite.path })] });
    expect(text(await reopened.get("fine"))).toBe("fine");
    expect(text(await reopened.get("dup"))).toBe("on disk");
    await reopened.close();
  });

  it("checkOnPut: false acknowledges without reading; a putMany stays one unit, refused together at flush", async () => {
    const { tier, store } = storeWith({ maxBatch: 1000, checkOnPut: false });
    await store.open();
    await tier.inner.put(d("q2", "taken"));
    await store.putMany([d("q1"), d("q2", "clash"), d("q3")]);
    expect(tier.calls.get).toBe(0);
    await store.put(d("single"));
    const err = await expectDgent((await store.plugin(writeBehind)).flush(), "DGENT_CONFLICT");
    expect(err.details.id).toBe("q2");
    expect(await tier.inner.get("q1")).toBeNull(); // the batch was all or nothing
    expect(await tier.inner.get("q3")).toBeNull();
    expect(text(await tier.inner.get("single"))).toBe("single");
  });

  it("when the tier is down, datums stay buffered; beyond maxPending puts fail; when it returns, they are written", async () => {
    const { tier, store, warnings } = storeWith({ maxBatch: 3, maxPending: 6 });
    tier.failWrites = dgentError("DGENT_UNAVAILABLE", "tier is down");
    for (let i = 0; i < 6; i++) await store.put(d(`u${i}`)); // the 3rd and 6th put flush and fail quietly
    expect(warnings.some((w) => w.message.includes("stay buffered"))).toBe(true);
    const full = await expectDgent(store.put(d("u6")), "DGENT_UNAVAILABLE");
    expect(full.message).toContain("tier is down");
    const handle = await store.plugin(writeBehind);
    await expectDgent(handle.flush(), "DGENT_UNAVAILABLE");
    expect(handle.stats().buffered).toBe(6);
    expect(text(await store.get("u4"))).toBe("u4");
    tier.failWrites = null;
    await handle.flush();
    expect((await tier.inner.list({ prefix: "u", after: -1, limit: 100 })).map((x) => x.id).sort()).toEqual(["u0", "u1", "u2", "u3", "u4", "u5"]);
  });

  it("closing while the tier is down says how many acknowledged datums are lost", async () => {
    const { tier, store } = storeWith({ maxBatch: 1000 });
    await store.put(d("l1"));
    await store.put(d("l2"));
    tier.failWrites = dgentError("DGENT_UNAVAILABLE", "tier is down");
    const err = await expectDgent(store.close(), "DGENT_UNAVAILABLE");
    expect(err.details).toMatchObject({ lost: 2 });
    expect(err.message).toContain("lost");
  });

  it("delete and causalChain see buffered datums (they flush first)", async () => {
    const { tier, store } = storeWith({ maxBatch: 1000 });
    await store.put(d("p1", "parent", { createdAt: 1 }));
    await store.put(d("p2", "child", { createdAt: 2, causalParent: "p1" }));
    expect((await store.causalChain("p2")).map((x) => x.id)).toEqual(["p1", "p2"]);
    expect(tier.calls.putMany).toBe(1);
    await store.put(d("gone"));
    expect(await store.delete("gone")).toBe(true);
    expect(await store.get("gone")).toBeNull();
    expect(await tier.inner.get("gone")).toBeNull();
  });

  it("property: list with buffered datums returns what a store without the plugin returns", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ key: fc.constantFrom("a/", "b/", "a/x/"), n: fc.nat(40), t: fc.integer({ min: 1, max: 20 }) }), { maxLength: 40 }),
        fc.record({ prefix: fc.constantFrom("", "a/", "b/", "a/x/"), after: fc.integer({ min: -1, max: 20 }), limit: fc.integer({ min: 0, max: 15 }) }),
        fc.integer({ min: 1, max: 12 }),
        async (puts, query, maxBatch) => {
          const plain = createStore({ tiers: [memoryAdapter()] });
          const { store } = storeWith({ maxBatch });
          for (const p of puts) {
            const datum = d(`${p.key}${p.n}`, `${p.key}${p.n}`, { createdAt: p.t });
            const a = await plain.put(datum).catch((e: { code: string }) => e.code);
            const b = await store.put(datum).catch((e: { code: string }) => e.code);
            expect(b).toBe(a);
          }
          const ids = (xs: Datum[]) => xs.map((x) => `${x.id}@${x.createdAt}`);
          expect(ids(await store.list(query))).toEqual(ids(await plain.list(query)));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("an afterPut tap that fails at flush time is reported and thrown by flush(); the write is stored", async () => {
    const { tier, store, warnings } = storeWith({ maxBatch: 1000 });
    store.hooks.afterPut.tap("fragile", () => {
      throw new Error("observer broke");
    });
    await store.put(d("o1"));
    const handle = await store.plugin(writeBehind);
    await expect(handle.flush()).rejects.toMatchObject({ code: "DGENT_PLUGIN_FAILED", message: expect.stringContaining("observer broke") });
    expect(text(await tier.inner.get("o1"))).toBe("o1");
    expect(warnings.some((w) => w.message.includes("afterPut tap failed"))).toBe(true);
    expect(handle.stats()).toMatchObject({ buffered: 0, written: 1 });
  });

  it("checks its options with ajv", () => {
    for (const bad of [{ maxBatch: 0 }, { intervalMs: -1 }, { flushOnExit: "yes" }, { batch: 1 }]) {
      expect(() => createStore({ tiers: [memoryAdapter()], plugins: [writeBehindPlugin(bad as WriteBehindOptions)] })).toThrow(
        expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }),
      );
    }
  });
});

describe("write-behind crash semantics (child processes on SQLite)", () => {
  const CHILD = new URL("./fixtures/child.mjs", import.meta.url).pathname;
  beforeAll(() => {
    if (!existsSync(new URL("../../dist/plugins/write-behind/index.js", import.meta.url))) {
      throw new Error("dist/plugins/write-behind is missing: the child imports the built package; run `npx tsc -p tsconfig.json` first");
    }
  });
  // The deadline is far below the children's hour-long flush interval (see the fixture), and far
  // above what their work takes on a loaded machine: a child still alive at it was kept alive.
  const run = (args: Record<string, unknown>) => runProcess(process.execPath, [CHILD, JSON.stringify(args)], { timeout: 300_000 });
  const countIn = async (path: string) => {
    const s = createStore({ tiers: [sqliteAdapter({ path })] });
    const n = (await s.list({ limit: 10_000 })).length;
    await s.close();
    return n;
  };

  it("the interval timer never keeps a process alive, and a natural exit flushes (beforeExit)", async () => {
    const { path } = sqliteTier();
    const r = await run({ path, count: 120, maxBatch: 1000, end: "natural" });
    expect(r.signal, "killed at the deadline: the interval timer kept the process alive").toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("acked 120");
    expect(await countIn(path)).toBe(120);
  });

  it("with flushOnExit: false, an exit without close loses what was buffered", async () => {
    const { path } = sqliteTier();
    const r = await run({ path, count: 120, maxBatch: 50, end: "natural", flushOnExit: false });
    expect(r.status, r.stderr).toBe(0);
    expect(await countIn(path)).toBe(100); // two full batches of 50 were flushed; 20 were lost
  });

  it("SIGKILL loses the buffered datums and nothing that was flushed", async () => {
    const { path } = sqliteTier();
    const r = await run({ path, count: 130, maxBatch: 50, end: "sigkill" });
    expect(r.signal).toBe("SIGKILL");
    expect(r.stdout).toContain("acked 130");
    expect(await countIn(path)).toBe(100);
  });
});
