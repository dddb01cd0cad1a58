import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { createStore, dgentError, makeDatum, UnavailableError, type Adapter, type Datum, type TierEvent } from "../core/index.js";
import { PendingDeletes } from "../core/pending-deletes.js";
import { expectCode } from "../testing/index.js";
import { runProcess } from "./harness/run.js";
import { until } from "./harness/until.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-router-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A promise the test opens by hand, counting who waits on it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const g = { waiting: 0, open, pass: async () => { g.waiting++; await opened; } };
  return g;
}

/**
 * A memory tier under another name and rank that can be switched off: while `down`, every call
 * fails with a retryable DGENT_UNAVAILABLE, as a server that went away does. Its data survives
 * the outage, as a server's would. Writes and deletes can be held at a gate, and a hook can run
 * when a scan has yielded its last datum, so a test can place another call exactly there.
 */
function switchable(name: string, rank: number, persistent = true) {
  const inner = memoryAdapter();
  let opened = false;
  const control = {
    down: false,
    calls: 0,
    /** Writes (put, putMany) wait here while set. */
    holdWrites: null as ReturnType<typeof gate> | null,
    /** Deletes (delete, deleteIds) wait here while set. */
    holdDeletes: null as ReturnType<typeof gate> | null,
    /** Runs once, after a scan has yielded its last datum and before it returns. */
    afterScan: null as (() => Promise<void>) | null,
    /** Calls by method name. */
    ops: new Map<string, number>(),
  };
  const guard = async <T>(op: string, fn: () => Promise<T>): Promise<T> => {
    control.calls++;
    control.ops.set(op, (control.ops.get(op) ?? 0) + 1);
    if (control.down) throw dgentError("DGENT_UNAVAILABLE", `${name} is down`, { unit: name });
    return fn();
  };
  const adapter: Adapter & { deleteIds(ids: readonly string[]): Promise<string[]> } = {
    name,
    rank,
    capabilities: { ...inner.capabilities, persistent },
    open: (c) =>
      guard("open", async () => {
        if (!opened) await inner.open(c);
        opened = true;
      }),
    close: async () => undefined,
    put: (d) => guard("put", async () => {
      await control.holdWrites?.pass();
      return inner.put(d);
    }),
    putMany: (ds) => guard("putMany", async () => {
      await control.holdWrites?.pass();
      return (inner.putMany as NonNullable<Adapter["putMany"]>)(ds);
    }),
    get: (id) => guard("get", () => inner.get(id)),
    delete: (id) => guard("delete", async () => {
      await control.holdDeletes?.pass();
      return inner.delete(id);
    }),
    deleteIds: (ids) => guard("deleteIds", async () => {
      await control.holdDeletes?.pass();
      const existed: string[] = [];
      for (const id of ids) if (await inner.delete(id)) existed.push(id);
      return existed;
    }),
    list: (o) => guard("list", () => inner.list(o)),
    scan: async function* () {
      yield* inner.scan?.() as AsyncIterable<Datum>;
      const hook = control.afterScan;
      control.afterScan = null;
      if (hook) await hook();
    },
    stats: () => guard("stats", () => (inner.stats as NonNullable<Adapter["stats"]>)()),
    probe: async () => !control.down,
  };
  return {
    adapter,
    control,
    count: async () => (opened ? ((await inner.stats?.())?.count ?? 0) : 0),
    has: async (id: string) => opened && (await inner.get(id)) !== null,
  };
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

  it("a tier whose re-probe is still opening it when the store closes is closed once that open returns", async () => {
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    top.control.down = true;
    const hold = gate();
    let closes = 0;
    const openTop = top.adapter.open;
    const held: Adapter = {
      ...top.adapter,
      open: async (c) => {
        if (!top.control.down) await hold.pass();
        return openTop(c);
      },
      close: async () => void closes++,
    };
    const store = createStore({ tiers: [local.adapter, held], upgrader: false, probeBackoffMs: { min: 10, max: 20 } });
    await store.open();
    top.control.down = false;
    await until("the re-probe opening top", () => hold.waiting > 0);
    await store.close();
    expect(closes).toBe(0); // the store's close() could not know the open would succeed
    hold.open();
    await until("top closed after its late open", () => closes === 1);
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
  it("a tier failing mid-stream: no write fails, deletes during the outage apply on return or say they cannot tell, nothing lost or doubled", async () => {
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
        // Deletes while top is down, all journaled for top. Of its own datums no tier that is
        // up can say whether they existed: DGENT_DELETE_UNKNOWN, never a wrong false. Those that
        // landed below are known: true (top may hold a copy too, as far as the router knows).
        for (const victim of written.slice(0, 10)) await expectCode(store.delete(victim.id), "DGENT_DELETE_UNKNOWN");
        for (const victim of written.slice(140, 145)) expect(await store.delete(victim.id)).toBe(true);
      }
    }
    expect(log.slice(0, 2)).toEqual(["failed top", "degraded top->local"]);
    expect((await store.backend()).pendingDeletes).toBe(15);
    expect(await local.count()).toBe(300 - 100 - 5);
    top.control.down = false;
    await until("everything back on top", async () => (await local.count()) === 0);
    for (const victim of written.slice(0, 10)) expect(await store.delete(victim.id)).toBe(false); // gone by now: the journal applied
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
    const below = switchable("below", 20);
    const d = makeDatum({ content: "doomed" });
    // On both tiers, as a datum caught between a promotion's copy and its remove is.
    for (const tier of [top, below]) {
      await tier.adapter.open();
      await tier.adapter.put(d);
    }
    top.control.down = true;
    const first = createStore({ tiers: [top.adapter, below.adapter], journalPath, upgrader: false, probeBackoffMs: { min: 60_000 } });
    events(first);
    await first.open();
    expect(await first.delete(d.id)).toBe(true); // it existed below: known
    expect((await first.backend()).pendingDeletes).toBe(1);
    await first.close();
    top.control.down = false;
    const second = createStore({ tiers: [top.adapter, below.adapter], journalPath, upgrader: false });
    await second.open();
    expect(await top.has(d.id)).toBe(false);
    expect((await second.backend()).pendingDeletes).toBe(0);
    await second.close();
    expect(readdirSync(dir).filter((f) => f.startsWith("journal.jsonl"))).toEqual([]); // nothing pending, no journal left
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

  it("the background loop never keeps the process alive", async () => {
    const script = `
      import { createStore } from "dgent";
      import { memoryAdapter } from "dgent/adapters/memory";
      import { sqliteAdapter } from "dgent/adapters/sqlite";
      const store = createStore({ tiers: [memoryAdapter(), sqliteAdapter({ path: process.argv[1] })], landing: "memory", upgrader: { intervalMs: 5 } });
      await store.open();
      console.log("open");`;
    const child = await runProcess(process.execPath, ["--input-type=module", "-e", script, join(dir, "alive.db")], { timeout: 300_000, cwd: new URL("..", import.meta.url).pathname });
    expect(child.stdout.trim()).toBe("open");
    expect(child.signal).toBeNull(); // exited on its own, not killed by the timeout
    expect(child.status).toBe(0);
  });
});

describe("outage recovery: journaled deletes, promotion and delete's answer", () => {
  it("a delete journaled while the returning tier is still being caught up applies before it takes writes, exactly once", async () => {
    const journalPath = join(dir, "catch-up.jsonl");
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    const options = { journalPath, upgrader: false as const, probeBackoffMs: { min: 10, max: 20 } };
    const store = createStore({ tiers: [top.adapter, local.adapter], ...options });
    events(store);
    await store.open();
    top.control.down = true;
    const a = makeDatum({ content: "a", idStrategy: "content" });
    const b = makeDatum({ content: "b", idStrategy: "content" });
    await store.put(a); // both land below while top is down
    await store.put(b);
    expect(await store.delete(a.id)).toBe(true); // journaled for top
    // Top answers again; its re-probe starts applying the journal and is held there.
    const held = gate();
    top.control.holdDeletes = held;
    top.control.down = false;
    await until("the re-probe applying the journal", () => held.waiting > 0);
    expect(await store.delete(b.id)).toBe(true); // top is not serving yet: journaled
    top.control.holdDeletes = null;
    held.open();
    await until("top serving again", async () => (await store.backend()).landing === "top");
    // The same content put again (content-addressed: the same id) is acknowledged and readable…
    expect(await store.put(b)).toBe(b.id);
    expect(await top.has(b.id)).toBe(true);
    await store.close();
    // …and a new process opening the store still finds it.
    const again = createStore({ tiers: [top.adapter, local.adapter], ...options });
    await again.open();
    expect((await again.get(b.id))?.id).toBe(b.id);
    expect(await again.get(a.id)).toBeNull();
    expect((await again.backend()).pendingDeletes).toBe(0);
    await again.close();
  });

  it("a delete between a promotion's read and its copy is not undone by the copy", async () => {
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    await local.adapter.open();
    const datums = Array.from({ length: 20 }, (_, i) => makeDatum({ content: `d${i}`, createdAt: 1_000 + i }));
    for (const d of datums) await local.adapter.put(d);
    const store = createStore({ tiers: [top.adapter, local.adapter], upgrader: false });
    await store.open();
    const victim = datums[7] as Datum;
    let answer: boolean | null = null;
    local.control.afterScan = async () => {
      answer = await store.delete(victim.id);
    };
    const [result] = await store.upgrade();
    expect(answer).toBe(true);
    expect(result?.moved).toBe(19);
    expect(await top.has(victim.id)).toBe(false);
    expect(await local.has(victim.id)).toBe(false);
    expect(await store.get(victim.id)).toBeNull();
    await store.close();
  });

  it("a delete while a promotion's copy is in flight is not undone by the copy", async () => {
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    await local.adapter.open();
    const datums = Array.from({ length: 20 }, (_, i) => makeDatum({ content: `c${i}`, createdAt: 1_000 + i }));
    for (const d of datums) await local.adapter.put(d);
    const store = createStore({ tiers: [top.adapter, local.adapter], upgrader: false });
    await store.open();
    const held = gate();
    top.control.holdWrites = held;
    const upgrading = store.upgrade();
    await until("the copy to top in flight", () => held.waiting > 0);
    const victim = datums[0] as Datum;
    const deleting = store.delete(victim.id);
    await new Promise((resolve) => setImmediate(resolve)); // let the delete go as far as it can
    top.control.holdWrites = null;
    held.open();
    expect(await deleting).toBe(true);
    await upgrading;
    expect(await top.has(victim.id)).toBe(false);
    expect(await local.has(victim.id)).toBe(false);
    expect(await store.get(victim.id)).toBeNull();
    expect((await store.list({ limit: 100 })).length).toBe(19);
    await store.close();
  });

  it("delete() of a datum held only by a tier that is down is a typed 'unknown' (journaled), never a wrong false", async () => {
    const journalPath = join(dir, "unknown.jsonl");
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    const store = createStore({ tiers: [top.adapter, local.adapter], journalPath, upgrader: false, probeBackoffMs: { min: 10, max: 20 } });
    events(store);
    await store.open();
    const onTop = makeDatum({ content: "only on top" });
    await store.put(onTop);
    top.control.down = true;
    const below = makeDatum({ content: "landed below" });
    await store.put(below);
    const err = await expectCode(store.delete(onTop.id), "DGENT_DELETE_UNKNOWN");
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as unknown as { retryable: boolean; details: { id: string; tiers: string[] } }).retryable).toBe(true);
    expect((err as unknown as { details: { id: string; tiers: string[] } }).details).toMatchObject({ id: onTop.id, tiers: ["top"] });
    // A datum an up tier holds: known to exist, deleted there and journaled for the tier that is down.
    expect(await store.delete(below.id)).toBe(true);
    expect((await store.backend()).pendingDeletes).toBe(2);
    await expectCode(store.delete(onTop.id), "DGENT_DELETE_UNKNOWN"); // asked again: still unknown, journaled once
    expect((await store.backend()).pendingDeletes).toBe(2);
    top.control.down = false;
    await until("top back", async () => (await store.backend()).landing === "top");
    expect(await top.has(onTop.id)).toBe(false); // the journaled delete applied
    expect(await store.delete(onTop.id)).toBe(false); // and the answer for this time is known
    expect(await store.get(below.id)).toBeNull();
    await store.close();
  });
});

describe("outage recovery: speed and visibility", () => {
  it("journaled deletes are applied in batches, promotion copies and removes in batches", async () => {
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    const store = createStore({ tiers: [top.adapter, local.adapter], journalPath: join(dir, "batches.jsonl"), upgrader: false, probeBackoffMs: { min: 10, max: 20 } });
    events(store);
    await store.open();
    top.control.down = true;
    const datums = Array.from({ length: 3_500 }, (_, i) => makeDatum({ content: `b${i}`, createdAt: 1_000 + i }));
    for (const d of datums) await store.put(d);
    for (const d of datums.slice(0, 2_500)) expect(await store.delete(d.id)).toBe(true); // journaled for top
    expect((await store.backend()).pendingDeletes).toBe(2_500);
    top.control.ops.clear();
    local.control.ops.clear();
    top.control.down = false;
    await until("top serving", async () => (await store.backend()).landing === "top");
    expect(top.control.ops.get("deleteIds")).toBe(3); // 2 500 journaled deletes: three calls
    expect(top.control.ops.get("delete")).toBeUndefined();
    await until("the 1 000 left below promoted (availability trigger)", async () => (await local.count()) === 0);
    expect(top.control.ops.get("putMany")).toBe(1); // 1 000 datums: one copy…
    expect(local.control.ops.get("deleteIds")).toBe(1); // …and one remove below
    expect(top.control.ops.get("put")).toBeUndefined();
    await store.close();
  });

  it("promotion meeting values that differ above: one warning listing every id, the rest moves", async () => {
    const low = switchable("low", 10);
    const high = switchable("high", 20);
    await low.adapter.open();
    await high.adapter.open();
    const clashing = ["c1", "c2", "c3"];
    for (const id of clashing) {
      await high.adapter.put(makeDatum({ id, content: `${id} above` }));
      await low.adapter.put(makeDatum({ id, content: `${id} put while high was down` }));
    }
    const plain = Array.from({ length: 50 }, (_, i) => makeDatum({ content: `p${i}` }));
    for (const d of plain) await low.adapter.put(d);
    const store = createStore({ tiers: [low.adapter, high.adapter], upgrader: false });
    const warnings: { message: string; details?: Readonly<Record<string, unknown>> }[] = [];
    store.hooks.warning.tap("test", (w) => void warnings.push(w));
    const [result] = await store.upgrade();
    expect(result).toMatchObject({ moved: 50 });
    expect([...(result?.kept ?? [])].sort()).toEqual(clashing);
    const about = warnings.filter((w) => clashing.some((id) => w.message.includes(JSON.stringify(id))));
    expect(about).toHaveLength(1);
    expect(about[0]?.message).toMatch(/3 datums differ on high/);
    expect([...((about[0]?.details?.ids as string[] | undefined) ?? [])].sort()).toEqual(clashing);
    expect(about[0]?.details).toMatchObject({ from: "low", to: "high", reason: "conflict" });
    await store.close();
  });

  it("the backend report shows the promotion's progress (needs Store.backend() to report upgrader.progress())", async () => {
    const top = switchable("top", 30);
    const local = switchable("local", 20);
    await local.adapter.open();
    for (let i = 0; i < 2_500; i++) await local.adapter.put(makeDatum({ content: `g${i}` }));
    const store = createStore({ tiers: [top.adapter, local.adapter], upgrader: false });
    await store.open();
    const first = gate();
    top.control.holdWrites = first;
    const upgrading = store.upgrade();
    await until("the first batch's copy in flight", () => first.waiting === 1);
    const second = gate();
    top.control.holdWrites = second;
    first.open();
    await until("the second batch's copy in flight", () => second.waiting === 1);
    type Report = { promotion: import("../core/upgrader.js").PromotionProgress | null };
    const during = (await store.backend()) as unknown as Report;
    expect(during.promotion).toMatchObject({ running: true, trigger: "explicit", from: "local", to: "top", moved: 1_000, total: 2_500, finishedAt: null });
    top.control.holdWrites = null;
    second.open();
    await upgrading;
    const after = (await store.backend()) as unknown as Report;
    expect(after.promotion).toMatchObject({ running: false, moved: 2_500, kept: 0, total: 2_500 });
    expect(after.promotion?.finishedAt).toBeGreaterThanOrEqual(after.promotion?.startedAt ?? Infinity);
    await store.close();
  });
});

describe("the journal of deletes", () => {
  it("each store writes its own segment; a live store's deletes are not taken by another; a closed one's are", async () => {
    const path = join(dir, "segments", "journal.jsonl");
    const a = new PendingDeletes(path);
    a.load();
    a.add("top", "x");
    a.add("top", "y");
    a.applied("top", ["x"]);
    const b = new PendingDeletes(path);
    b.load();
    expect(b.size).toBe(0); // a is alive: its deletes stay its own
    a.close(); // y still pending: the segment is released, not removed
    expect(b.adopt()).toBe(1);
    expect(b.for("top")).toEqual(["y"]);
    b.applied("top", ["y"]);
    b.close();
    expect(readdirSync(join(dir, "segments"))).toEqual([]);
  });

  it("adopts a journal of the single-file form and one whose owner is gone; a torn last line is ignored", async () => {
    const path = join(dir, "old", "journal.jsonl");
    mkdirSync(join(dir, "old"), { recursive: true });
    writeFileSync(path, ['{"tier":"top","id":"a"}', '{"tier":"top","id":"b"}', '{"tier":"top","id":"a","done":1}', '{"tier":"to'].join("\n"));
    const gone = { pid: 2 ** 22 + 1, host: hostname(), boot: "a boot before the last reboot", start: null, token: "feedface" };
    writeFileSync(`${path}.${gone.pid}.${gone.token}`, [JSON.stringify({ owner: gone }), '{"tier":"top","id":"c"}', '{"tier":"top","ids":["c"],"done":1}', '{"tier":"top","id":"d"}', ""].join("\n"));
    const p = new PendingDeletes(path);
    p.load();
    expect(p.for("top").sort()).toEqual(["b", "d"]);
    expect(readdirSync(join(dir, "old")).filter((f) => !f.startsWith(`journal.jsonl.${process.pid}.`))).toEqual([]);
    p.close(); // still pending: released for the next store
    const q = new PendingDeletes(path);
    q.load();
    expect(q.for("top").sort()).toEqual(["b", "d"]);
    q.applied("top", q.take("top", 10));
    q.close();
    expect(readdirSync(join(dir, "old"))).toEqual([]);
  });
});
