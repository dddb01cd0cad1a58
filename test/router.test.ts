import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { createStore, dgentError, makeDatum, type Adapter, type Datum, type TierEvent } from "../core/index.js";
import { expectCode } from "../testing/index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-router-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A memory tier under another name and rank that can be switched off: while `down`, every call
 * fails with a retryable DGENT_UNAVAILABLE, as a server that went away does. Its data survives
 * the outage, as a server's would.
 */
function switchable(name: string, rank: number, persistent = true) {
  const inner = memoryAdapter();
  let opened = false;
  const control = { down: false, calls: 0 };
  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    control.calls++;
    if (control.down) throw dgentError("DGENT_UNAVAILABLE", `${name} is down`, { unit: name });
    return op();
  };
  const adapter: Adapter = {
    name,
    rank,
    capabilities: { ...inner.capabilities, persistent },
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
    scan: () => inner.scan?.() as AsyncIterable<Datum>,
    stats: () => guard(() => (inner.stats as NonNullable<Adapter["stats"]>)()),
    probe: async () => !control.down,
  };
  return {
    adapter,
    control,
    count: async () => (opened ? ((await inner.stats?.())?.count ?? 0) : 0),
    has: async (id: string) => opened && (await inner.get(id)) !== null,
  };
}

async function until(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function events(store: ReturnType<typeof createStore>) {
  const log: string[] = [];
  store.hooks.tierFailed.tap("test", (e: TierEvent) => void log.push(`failed ${e.tier}`));
  store.hooks.degraded.tap("test", (e: TierEvent) => void log.push(`degraded ${e.tier}->${e.landing}`));
  store.hooks.restored.tap("test", (e: TierEvent) => void log.push(`restored ${e.tier}`));
  const warnings: string[] = [];
  store.hooks.warning.tap("test", (w) => void warnings.push(w.message));
  return { log, warnings };
}

describe("selection at open", () => {
  it("a preferred tier that is down at open: writes land one tier down, loudly, and move up when it returns", async () => {
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    top.control.down = true;
    const store = createStore({ tiers: [local.adapter, top.adapter], probeBackoffMs: { min: 10, max: 20 } });
    const { log } = events(store);
    await store.open();
    const report = await store.backend();
    expect(report).toMatchObject({ landing: "local", preferred: "top", degraded: true, volatile: false });
    expect(report.tiers.find((t) => t.name === "top")).toMatchObject({ up: false, error: "top is down" });
    expect(log).toContain("degraded top->local");
    const d = makeDatum({ content: "while top was down" });
    await store.put(d);
    expect(await local.has(d.id)).toBe(true);
    top.control.down = false;
    await until("promotion to top", async () => (await top.has(d.id)) && !(await local.has(d.id)));
    expect(log).toContain("restored top");
    expect((await store.backend()).landing).toBe("top");
    expect((await store.get(d.id))?.id).toBe(d.id);
    await store.close();
  });

  it("falling to a volatile tier is announced through the warning hook and backend()", async () => {
    const durable = switchable("durable", 20);
    durable.control.down = true;
    const store = createStore({ tiers: [durable.adapter, memoryAdapter()], probeBackoffMs: { min: 1_000, max: 1_000 } });
    const { warnings } = events(store);
    await store.open();
    expect(warnings.some((w) => /volatile tier "memory"/.test(w))).toBe(true);
    expect((await store.backend()).volatile).toBe(true);
    await store.close();
    expect(warnings.some((w) => /lost with this close/.test(w))).toBe(false); // nothing was stored
  });

  it("a permanent error at open is not degraded around", async () => {
    const bad: Adapter = { ...memoryAdapter(), name: "bad", rank: 30, open: async () => { throw dgentError("DGENT_NOT_A_DATABASE", "not ours"); } } as Adapter;
    const store = createStore({ tiers: [bad, memoryAdapter()] });
    await expectCode(store.open(), "DGENT_NOT_A_DATABASE");
  });
});

describe("degradation at run time", () => {
  it("a tier failing mid-stream: no write fails, deletes during the outage apply on return, nothing lost or doubled", async () => {
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    const store = createStore({ tiers: [top.adapter, local.adapter], probeBackoffMs: { min: 10, max: 40 } });
    const { log } = events(store);
    await store.open();
    const written: Datum[] = [];
    for (let i = 0; i < 300; i++) {
      if (i === 100) top.control.down = true;
      const d = makeDatum({ content: `n${i}`, createdAt: 1_000 + i });
      await store.put(d); // never throws
      written.push(d);
      if (i === 150) {
        // Deletes while top is down: some of its datums, and some that landed below.
        for (const victim of [...written.slice(0, 10), ...written.slice(140, 145)]) await store.delete(victim.id);
      }
    }
    expect(log.slice(0, 2)).toEqual(["failed top", "degraded top->local"]);
    // 15: top may hold any of them (the five that landed below too, as far as the router knows).
    expect((await store.backend()).pendingDeletes).toBe(15);
    expect(await local.count()).toBe(200 - 5);
    top.control.down = false;
    await until("everything back on top", async () => (await local.count()) === 0);
    const deleted = new Set([...written.slice(0, 10), ...written.slice(140, 145)].map((d) => d.id));
    for (const d of written) expect(await top.has(d.id), d.id).toBe(!deleted.has(d.id));
    const listed = await store.list({ limit: 1000 });
    expect(listed).toHaveLength(285);
    expect(new Set(listed.map((d) => d.id)).size).toBe(285);
    const report = await store.backend();
    expect(report).toMatchObject({ landing: "top", degraded: false, pendingDeletes: 0, pendingPromotions: 0 });
    await store.close();
  });

  it("reads consult every tier that may hold data while one is down", async () => {
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    const store = createStore({ tiers: [top.adapter, local.adapter], upgrader: false, probeBackoffMs: { min: 5_000, max: 5_000 } });
    await store.open();
    const before = makeDatum({ content: "on top", createdAt: 1 });
    await store.put(before);
    top.control.down = true;
    const during = makeDatum({ content: "below", createdAt: 2, causalParent: before.id });
    await store.put(during);
    expect((await store.get(during.id))?.id).toBe(during.id);
    expect((await store.list()).map((d) => d.id)).toEqual([during.id]);
    expect((await store.causalChain(during.id)).map((d) => d.id)).toEqual([during.id]);
    top.control.down = false;
    expect((await store.backend()).tiers[0]?.up).toBe(false); // still down until its probe succeeds
    await store.close();
  });

  it("deletes journaled during an outage survive a restart and apply when the tier is back", async () => {
    const journalPath = join(dir, "journal.jsonl");
    const top = switchable("top", 30);
    const d = makeDatum({ content: "doomed" });
    await top.adapter.open();
    await top.adapter.put(d);
    top.control.down = true;
    const first = createStore({ tiers: [top.adapter, memoryAdapter()], journalPath, upgrader: false, probeBackoffMs: { min: 60_000 } });
    events(first);
    await first.open();
    await first.delete(d.id);
    expect((await first.backend()).pendingDeletes).toBe(1);
    await first.close();
    top.control.down = false;
    const second = createStore({ tiers: [top.adapter, memoryAdapter()], journalPath, upgrader: false });
    await second.open();
    expect(await top.has(d.id)).toBe(false);
    expect((await second.backend()).pendingDeletes).toBe(0);
    await second.close();
  });

  it("permanent errors are not degraded around: a conflict on the landing tier reaches the caller", async () => {
    const top = switchable("top", 30);
    const store = createStore({ tiers: [top.adapter, memoryAdapter()] });
    const d = makeDatum({ content: "a" });
    await store.put(d);
    await expectCode(store.put({ ...d, content: new Uint8Array([1]) }), "DGENT_CONFLICT");
    expect((await store.backend()).landing).toBe("top");
    await store.close();
  });

  it("with every tier down a write fails with a retryable DGENT_UNAVAILABLE", async () => {
    const a = switchable("a", 30);
    const b = switchable("b", 20);
    const store = createStore({ tiers: [a.adapter, b.adapter], probeBackoffMs: { min: 60_000 } });
    events(store);
    await store.open();
    a.control.down = true;
    b.control.down = true;
    const err = await expectCode(store.put(makeDatum({ content: "x" })), "DGENT_UNAVAILABLE");
    expect((err as unknown as { retryable: boolean }).retryable).toBe(true);
    await store.close();
  });
});

describe("the upgrader's triggers", () => {
  it("size: a lower tier over its byte threshold moves up whole", async () => {
    const local = switchable("local", 10);
    const store = createStore({ tiers: [local.adapter, switchable("sql", 20).adapter], landing: "local", upgrader: { sizeBytes: 5_000, ageMs: 1e12 } });
    await store.open();
    for (let i = 0; i < 3; i++) await store.put(makeDatum({ content: new Uint8Array(1_000) }));
    expect(await store.upgradeTick()).toEqual([]);
    for (let i = 0; i < 3; i++) await store.put(makeDatum({ content: new Uint8Array(1_000) }));
    const [result] = await store.upgradeTick();
    expect(result).toMatchObject({ from: "local", to: "sql", moved: 6 });
    expect(await local.count()).toBe(0);
    await store.close();
  });

  it("age: datums older than the threshold move one tier up, newer ones stay", async () => {
    const low = switchable("low", 0);
    const mid = switchable("mid", 10);
    const high = switchable("high", 20);
    const store = createStore({ tiers: [low.adapter, mid.adapter, high.adapter], landing: "low", upgrader: { ageMs: 1_000 } });
    const promoted: string[] = [];
    store.hooks.promoted.tap("test", (e) => void promoted.push(`${e.from}->${e.to}`));
    const now = Date.now();
    const old = makeDatum({ content: "old", createdAt: now - 5_000 });
    const fresh = makeDatum({ content: "fresh", createdAt: now });
    await store.put(old);
    await store.put(fresh);
    await store.upgradeTick(now);
    expect(await mid.has(old.id)).toBe(true);
    expect(await low.has(fresh.id)).toBe(true);
    expect(promoted).toEqual(["low->mid"]);
    await store.upgradeTick(now);
    expect(await high.has(old.id)).toBe(true);
    expect((await store.list()).map((d) => d.id).sort()).toEqual([old.id, fresh.id].sort());
    await store.close();
  });

  it("explicit: upgrade() moves everything below the landing tier up to it, and a differing copy stays put", async () => {
    const low = switchable("low", 10);
    const high = switchable("high", 20);
    const shared = makeDatum({ content: "the high version", id: "shared" });
    await high.adapter.open();
    await high.adapter.put(shared);
    await low.adapter.open();
    await low.adapter.put({ ...shared, content: new TextEncoder().encode("the low version") });
    const mine = Array.from({ length: 1_200 }, (_, i) => makeDatum({ content: `d${i}` }));
    for (const d of mine) await low.adapter.put(d);
    const store = createStore({ tiers: [low.adapter, high.adapter], upgrader: false });
    const { warnings } = events(store);
    const [result] = await store.upgrade();
    expect(result).toMatchObject({ from: "low", to: "high", moved: 1_200, kept: ["shared"] });
    expect(warnings.some((w) => w.includes('"shared" differs on high'))).toBe(true);
    expect(await low.count()).toBe(1);
    expect(new TextDecoder().decode((await store.get("shared"))?.content)).toBe("the high version");
    await store.close();
  });

  it("the background loop never keeps the process alive", () => {
    const script = `
      import { createStore } from "dgent";
      import { memoryAdapter } from "dgent/adapters/memory";
      import { sqliteAdapter } from "dgent/adapters/sqlite";
      const store = createStore({ tiers: [memoryAdapter(), sqliteAdapter({ path: process.argv[1] })], landing: "memory", upgrader: { intervalMs: 5 } });
      await store.open();
      console.log("open");`;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script, join(dir, "alive.db")], { encoding: "utf8", timeout: 10_000, cwd: new URL("..", import.meta.url).pathname });
    expect(child.stdout.trim()).toBe("open");
    expect(child.signal).toBeNull(); // exited on its own, not killed by the timeout
    expect(child.status).toBe(0);
  });
});
