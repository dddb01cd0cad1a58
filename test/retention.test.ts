import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { jsonlAdapter } from "../adapters/jsonl/index.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { applyRetention, planRetention } from "../compose/retention.js";
import { createStoreFromConfig } from "../compose/config/compose.js";
import { makeDatum, type Datum } from "../core/datum.js";
import { dgentError } from "../core/errors.js";
import type { Adapter } from "../core/protocol.js";
import type { RetentionEvent, RetentionPolicy, RetentionReport } from "../core/retention.js";
import { createStore, type Store } from "../core/store.js";

// Retention (core/RETENTION.md). Ages come from an injected `now`, never from waiting.
const dir = mkdtempSync(join(tmpdir(), "dgent-retention-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 1);
/** Datums in the generated namespace (the checker sets 100 000). */
const N = Number(process.env.DGENT_RETENTION_DATUMS ?? 10_000);

/** A small deterministic generator (mulberry32), so a failure repeats. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PREFIXES = ["trace/", "session/", "pinned/", "notes/", "misc/"];
const KINDS = ["chat", "tool", "summary"];

/** `n` datums over 200 days before NOW: five id prefixes, a `kind` tag, some marked `keep`. */
function generate(n: number, seed = 7): Datum[] {
  const rnd = random(seed);
  return Array.from({ length: n }, (_, i) => {
    const prefix = PREFIXES[Math.floor(rnd() * PREFIXES.length)] as string;
    const metadata: Record<string, string> = { kind: KINDS[Math.floor(rnd() * KINDS.length)] as string };
    if (rnd() < 0.05) metadata.keep = "yes";
    return makeDatum({
      id: `${prefix}${String(i).padStart(7, "0")}`,
      content: "x".repeat(1 + Math.floor(rnd() * 300)),
      createdAt: NOW - Math.floor(rnd() * 200 * DAY),
      metadata,
    });
  });
}

/** The policies of the generated namespace: keep-forever listed last, to show it wins anyway. */
const POLICIES: RetentionPolicy[] = [
  { name: "traces", prefix: "trace/", deleteAfterMs: 90 * DAY },
  { name: "chat-sessions", prefix: "session/", where: { kind: "chat" }, deleteAfterMs: 30 * DAY },
  { name: "tool-output", where: { kind: { in: ["tool"] } }, deleteAfterMs: 14 * DAY },
  { name: "pinned", prefix: "pinned/", keepForever: true },
  { name: "marked", where: { keep: "yes" }, keepForever: true },
];

/** The rule written out plainly, independent of core/retention.ts: the policy that governs `d`. */
function governing(d: Datum): { name: string; remove: boolean } | null {
  if (d.id.startsWith("pinned/")) return { name: "pinned", remove: false };
  if (d.metadata.keep === "yes") return { name: "marked", remove: false };
  const age = NOW - d.createdAt;
  if (d.id.startsWith("trace/")) return { name: "traces", remove: age > 90 * DAY };
  if (d.id.startsWith("session/") && d.metadata.kind === "chat") return { name: "chat-sessions", remove: age > 30 * DAY };
  if (d.metadata.kind === "tool") return { name: "tool-output", remove: age > 14 * DAY };
  return null;
}

async function snapshot(store: Store): Promise<string> {
  const rows: string[] = [];
  for await (const d of store.scan()) rows.push(`${d.id}\u0000${d.createdAt}\u0000${JSON.stringify(d.metadata)}\u0000${createHash("sha256").update(d.content).digest("hex")}`);
  return createHash("sha256").update(rows.sort().join("\n")).digest("hex");
}

async function ids(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const d of store.scan()) out.push(d.id);
  return out.sort();
}

function events(store: Store): RetentionEvent[] {
  const seen: RetentionEvent[] = [];
  store.hooks.retained.tap("test", (e) => void seen.push(e));
  return seen;
}

/** The parts of a report that plan and apply must agree on. */
const counts = (r: RetentionReport) => ({
  policies: r.policies.map((p) => ({ name: p.name, matched: p.matched, delete: p.delete, move: p.move })),
  unmatched: r.unmatched,
  total: r.total,
});

describe(`retention on a generated namespace (${N} datums, SQLite)`, () => {
  const datums = generate(N);
  const expected = new Map<string, { count: number; bytes: number }>();
  const survivors: string[] = [];
  for (const d of datums) {
    const g = governing(d);
    if (g?.remove) {
      const e = expected.get(g.name) ?? { count: 0, bytes: 0 };
      e.count++;
      e.bytes += d.content.byteLength;
      expected.set(g.name, e);
    } else survivors.push(d.id);
  }
  survivors.sort();

  it("plan changes nothing and counts exactly what the rule says; apply does exactly what plan said; a second apply finds nothing", async () => {
    const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, "generated.db") })], retention: POLICIES });
    for (let i = 0; i < datums.length; i += 5_000) await store.putMany(datums.slice(i, i + 5_000));
    const before = await snapshot(store);

    const plan = await planRetention(store, null, { now: NOW });
    expect(await snapshot(store)).toBe(before); // a dry run changes nothing
    expect(plan.dryRun).toBe(true);
    for (const p of plan.policies) expect(p.delete, p.name).toEqual(expected.get(p.name) ?? { count: 0, bytes: 0 });
    expect(plan.total.delete.count).toBe(datums.length - survivors.length);
    expect(plan.total.delete.count).toBeGreaterThan(0);
    const matched = plan.policies.reduce((n, p) => n + p.matched.count, 0);
    expect(matched + plan.unmatched.count).toBe(datums.length); // each datum is governed by one policy at most
    // Keep-forever wins: datums of other policies' prefixes marked keep=yes are counted under "marked".
    expect(plan.policies.find((p) => p.name === "marked")?.matched.count).toBe(datums.filter((d) => !d.id.startsWith("pinned/") && d.metadata.keep === "yes").length);

    const seen = events(store);
    const applied = await applyRetention(store, null, { now: NOW, batchSize: 700 });
    expect(applied.dryRun).toBe(false);
    expect(counts(applied)).toEqual(counts(plan));
    expect(await ids(store)).toEqual(survivors);

    // Every deletion counted in backend() and seen by the hook, batch by batch.
    const report = await store.backend();
    expect(report.retention).toMatchObject({ deleted: plan.total.delete.count, deletedBytes: plan.total.delete.bytes, moved: 0 });
    expect(report.retention.lastAppliedAt).not.toBeNull();
    expect(seen.every((e) => e.action === "deleted" && e.ids.length <= 700)).toBe(true);
    expect(seen.reduce((n, e) => n + e.ids.length, 0)).toBe(plan.total.delete.count);
    expect(seen.reduce((n, e) => n + e.bytes, 0)).toBe(plan.total.delete.bytes);

    // Idempotent: nothing is due any more at the same time.
    const after = await snapshot(store);
    const again = await applyRetention(store, null, { now: NOW });
    expect(again.total.delete).toEqual({ count: 0, bytes: 0 });
    expect(await snapshot(store)).toBe(after);
    // Later, more is due; the plan at that time says how much, and apply agrees.
    const later = await store.planRetention({ now: NOW + 20 * DAY });
    expect(later.total.delete.count).toBeGreaterThan(0);
    expect(counts(await store.applyRetention({ now: NOW + 20 * DAY }))).toEqual(counts(later));
    await store.close();
  }, Math.max(60_000, N * 3)); // 100 000 datums are written, hashed four times, planned and applied

  it("the same policies on a memory tier with delete hooks tapped give the same result", async () => {
    const store = createStore({ tiers: [memoryAdapter()], retention: POLICIES });
    await store.putMany(datums.slice(0, 2_000));
    const deleted: string[] = [];
    store.hooks.afterDelete.tap("test", (id, existed) => void (existed && deleted.push(id)));
    const plan = await store.planRetention({ now: NOW });
    const applied = await store.applyRetention({ now: NOW });
    expect(counts(applied)).toEqual(counts(plan));
    expect(deleted.length).toBe(plan.total.delete.count);
    const first = new Set(datums.slice(0, 2_000).map((d) => d.id));
    expect(await ids(store)).toEqual(survivors.filter((id) => first.has(id)));
    await store.close();
  });
});

describe("precedence", () => {
  const old = NOW - 400 * DAY;
  const put = (store: Store, id: string, metadata: Record<string, string> = {}) => store.put(makeDatum({ id, content: id, createdAt: old, metadata }));

  it("keep forever wins wherever it is listed; otherwise the first matching policy governs", async () => {
    const store = createStore({
      tiers: [memoryAdapter()],
      retention: [
        { name: "short", prefix: "a/", deleteAfterMs: 10 * DAY },
        { name: "long", prefix: "a/", where: { kind: "log" }, deleteAfterMs: 1_000 * DAY },
        { name: "never", where: { pin: { exists: true } }, keepForever: true },
      ],
    });
    await put(store, "a/plain");
    await put(store, "a/log", { kind: "log" }); // "short" comes first: it governs, and the datum is due
    await put(store, "a/pinned", { pin: "1" }); // keep forever, though listed last
    await put(store, "b/other");
    const plan = await store.planRetention({ now: NOW });
    expect(plan.policies.map((p) => [p.name, p.matched.count, p.delete.count])).toEqual([
      ["short", 2, 2],
      ["long", 0, 0],
      ["never", 1, 0],
    ]);
    expect(plan.unmatched.count).toBe(1);
    await store.applyRetention({ now: NOW });
    expect(await ids(store)).toEqual(["a/pinned", "b/other"]);
    await store.close();
  });

  it("a datum put again with a new createdAt since the survey is judged by what is stored", async () => {
    const store = createStore({ tiers: [memoryAdapter()], retention: [{ prefix: "t/", deleteAfterMs: DAY }] });
    await put(store, "t/1");
    const plan = await store.planRetention({ now: NOW });
    expect(plan.total.delete.count).toBe(1);
    await store.delete("t/1");
    await store.put(makeDatum({ id: "t/1", content: "t/1", createdAt: NOW }));
    const applied = await store.applyRetention({ now: NOW });
    expect(applied.total.delete.count).toBe(0);
    expect(await store.get("t/1")).not.toBeNull();
    await store.close();
  });
});

describe("moving up a tier after N days", () => {
  it("on [sqlite, jsonl] with writes landing on jsonl: old datums move up, young ones and other policies' stay, plan and apply agree", async () => {
    const sqlite = sqliteAdapter({ path: join(dir, "move.db") });
    const jsonl = jsonlAdapter({ path: join(dir, "move.jsonl") });
    const store = createStore({
      tiers: [sqlite, jsonl],
      landing: "jsonl",
      upgrader: false,
      retention: [
        { name: "sessions", prefix: "s/", moveTo: "sqlite", moveAfterMs: 7 * DAY, deleteAfterMs: 60 * DAY },
        { name: "scratch", prefix: "x/", deleteAfterMs: 1 * DAY },
      ],
    });
    const rnd = random(3);
    const all = Array.from({ length: 3_000 }, (_, i) =>
      makeDatum({ id: `${i % 3 === 0 ? "x" : "s"}/${i}`, content: `v${i}`.repeat(1 + (i % 5)), createdAt: NOW - Math.floor(rnd() * 90 * DAY) }),
    );
    await store.putMany(all);
    const age = (d: Datum) => NOW - d.createdAt;
    const toMove = all.filter((d) => d.id.startsWith("s/") && age(d) > 7 * DAY && age(d) <= 60 * DAY);
    const toDelete = all.filter((d) => (d.id.startsWith("s/") && age(d) > 60 * DAY) || (d.id.startsWith("x/") && age(d) > DAY));
    const before = await snapshot(store);
    const plan = await store.planRetention({ now: NOW });
    expect(await snapshot(store)).toBe(before);
    const sessions = plan.policies[0];
    expect(sessions?.action).toBe("move+delete");
    expect(sessions?.move).toEqual({ count: toMove.length, bytes: toMove.reduce((n, d) => n + d.content.byteLength, 0), to: "sqlite" });
    expect(plan.total.delete.count).toBe(toDelete.length);

    const moved: RetentionEvent[] = [];
    store.hooks.retained.tap("test", (e) => void (e.action === "moved" && moved.push(e)));
    const applied = await store.applyRetention({ now: NOW });
    expect(counts(applied)).toEqual(counts(plan));
    expect(moved.every((e) => e.from === "jsonl" && e.to === "sqlite")).toBe(true);
    expect(moved.reduce((n, e) => n + e.ids.length, 0)).toBe(toMove.length);
    // Where each datum is now, read from the tiers themselves.
    for (const d of toMove) {
      expect(await sqlite.get(d.id)).not.toBeNull();
      expect(await jsonl.get(d.id)).toBeNull();
    }
    for (const d of toDelete) expect(await store.get(d.id)).toBeNull();
    const stay = all.filter((d) => !toMove.includes(d) && !toDelete.includes(d));
    for (const d of stay) expect(await jsonl.get(d.id)).not.toBeNull();
    expect((await store.backend()).retention).toMatchObject({ moved: toMove.length, deleted: toDelete.length });
    // Idempotent.
    const again = await store.applyRetention({ now: NOW });
    expect([again.total.delete.count, again.total.move.count]).toEqual([0, 0]);
    await store.close();
  });

  it("on [memory, sqlite]: a policy moves old datums from memory to sqlite", async () => {
    const sqlite = sqliteAdapter({ path: join(dir, "mem-move.db") });
    const store = createStore({ tiers: [memoryAdapter(), sqlite], landing: "memory", upgrader: false, retention: [{ prefix: "m/", moveTo: "sqlite", moveAfterMs: DAY }] });
    await store.put(makeDatum({ id: "m/old", content: "old", createdAt: NOW - 2 * DAY }));
    await store.put(makeDatum({ id: "m/new", content: "new", createdAt: NOW - 1_000 }));
    const plan = await store.planRetention({ now: NOW });
    expect(plan.total.move).toEqual({ count: 1, bytes: 3 });
    const applied = await store.applyRetention({ now: NOW });
    expect(applied.total.move).toEqual({ count: 1, bytes: 3 });
    expect(await sqlite.get("m/old")).not.toBeNull();
    expect(await sqlite.get("m/new")).toBeNull();
    await store.close();
  });
});

/** A memory tier under another name and rank that can be switched off (every call then fails as an outage). */
function switchable(name: string, rank: number): { adapter: Adapter; control: { down: boolean } } {
  const inner = memoryAdapter();
  const control = { down: false };
  const adapter = new Proxy(inner, {
    get(target, prop) {
      if (prop === "name") return name;
      if (prop === "rank") return rank;
      if (prop === "capabilities") return { ...target.capabilities, persistent: true };
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "close") return (value as () => unknown).bind(target);
      return (...args: unknown[]) => {
        if (control.down) return Promise.reject(dgentError("DGENT_UNAVAILABLE", `${name} is down`, { unit: name }));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { adapter, control };
}

describe("a tier that is down", () => {
  it("is named in the report; what the tiers that are up hold is deleted, and the deletes are journaled for it", async () => {
    const top = switchable("top", 30);
    const low = switchable("low", 20);
    const store = createStore({ tiers: [top.adapter, low.adapter], upgrader: false, probeBackoffMs: { min: 3_600_000, max: 3_600_000 }, retention: [{ prefix: "t/", deleteAfterMs: DAY }] });
    await store.open();
    const warnings: string[] = [];
    store.hooks.warning.tap("test", (w) => void warnings.push(w.message));
    await store.put(makeDatum({ id: "t/on-top", content: "a", createdAt: NOW - 5 * DAY }));
    top.control.down = true;
    await store.put(makeDatum({ id: "t/old", content: "bb", createdAt: NOW - 5 * DAY })); // lands on low
    await store.put(makeDatum({ id: "t/new", content: "c", createdAt: NOW }));
    const plan = await store.planRetention({ now: NOW });
    expect(plan.tiersDown).toEqual(["top"]);
    expect(plan.total.delete).toEqual({ count: 1, bytes: 2 }); // t/on-top is not seen while top is down
    const applied = await store.applyRetention({ now: NOW });
    expect(applied.total.delete).toEqual({ count: 1, bytes: 2 });
    expect(await low.adapter.get("t/old")).toBeNull();
    expect((await store.backend()).pendingDeletes).toBe(1); // t/old, journaled for top
    await store.close();
  });
});

describe("policies are checked", () => {
  const tiers = () => [memoryAdapter()];
  const cases: [string, RetentionPolicy[], string][] = [
    ["no action", [{ prefix: "a/" }], "retention[0]"],
    ["unknown tier", [{ moveTo: "postgres", moveAfterMs: 1 }], "retention[0].moveTo"],
    ["moveTo without age", [{ moveTo: "memory" }], "retention[0].moveAfterMs"],
    ["keep with delete", [{ keepForever: true, deleteAfterMs: 5 }], "retention[0].keepForever"],
    ["negative age", [{ deleteAfterMs: -1 }], "retention[0].deleteAfterMs"],
    ["bad where", [{ where: { role: { like: "x" } } as never, deleteAfterMs: 1 }], "retention[0].where.role.like"],
    ["duplicate name", [{ name: "a", deleteAfterMs: 1 }, { name: "a", deleteAfterMs: 2 }], "retention[1].name"],
    ["unknown key", [{ deleteAfter: 1 } as never], "retention[0].deleteAfter"],
    ["move after delete", [{ moveTo: "memory", moveAfterMs: 10, deleteAfterMs: 5 }], "retention[0].moveAfterMs"],
  ];
  for (const [label, retention, field] of cases) {
    it(label, () => {
      expect(() => createStore({ tiers: tiers(), retention })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS", details: expect.objectContaining({ field }) }));
    });
  }
  it("options of plan and apply", async () => {
    const store = createStore({ tiers: tiers() });
    await expect(store.planRetention({ now: Number.NaN })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS", details: { field: "now" } });
    await expect(store.applyRetention({ policies: [{ deleteAfterMs: 1 }], batchSize: 0 })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS", details: { field: "batchSize" } });
    // A store without policies plans nothing.
    expect((await store.planRetention()).policies).toEqual([]);
    await store.close();
  });
});

describe("config files", () => {
  it("the retention key: durations with units, checked against the listed tiers", async () => {
    const file = join(dir, "retention.yaml");
    writeFileSync(
      file,
      [
        "tiers:",
        "  - adapter: sqlite",
        `    options: { path: "${join(dir, "config.db")}" }`,
        "  - memory",
        "retention:",
        "  - { name: traces, prefix: trace/, deleteAfterMs: 90d }",
        "  - { name: sessions, where: { kind: chat }, moveTo: sqlite, moveAfterMs: 1d }",
        "  - { name: pinned, where: { pin: { exists: true } }, keepForever: true }",
        "",
      ].join("\n"),
    );
    const store = await createStoreFromConfig(file);
    expect(store.retentionPolicies.map((p) => [p.name, p.deleteAfterMs, p.moveTo, p.moveAfterMs, p.keepForever])).toEqual([
      ["traces", 90 * DAY, null, null, false],
      ["sessions", null, "sqlite", DAY, false],
      ["pinned", null, null, null, true],
    ]);
    await store.close();
    const bad = join(dir, "bad-retention.yaml");
    writeFileSync(bad, ["tiers: [memory]", "retention:", "  - prefix: a/", "    moveTo: sqlite", "    moveAfterMs: 1d", ""].join("\n"));
    await expect(createStoreFromConfig(bad)).rejects.toMatchObject({ code: "DGENT_CONFIG_INVALID", details: expect.objectContaining({ path: "retention[0].moveTo", line: 4 }) });
    const typo = join(dir, "typo-retention.yaml");
    writeFileSync(typo, ["tiers: [memory]", "retention:", "  - { prefix: a/, deleteAfter: 1d }", ""].join("\n"));
    await expect(createStoreFromConfig(typo)).rejects.toMatchObject({ code: "DGENT_CONFIG_INVALID", message: expect.stringMatching(/deleteAfterMs/) });
  });
});

describe("a crash in the middle of apply", () => {
  const ROOT = new URL("..", import.meta.url).pathname;
  /**
   * A child applies retention and stops dead at a barrier: inside the first `retained` batch (a
   * delete batch) or the first `promoted` datum (a move batch, between removing below and the rest
   * of the batch's events); it prints a line and blocks; the parent kills it with SIGKILL.
   */
  const CHILD = `
    import { createStore } from "dgent";
    import { sqliteAdapter } from "dgent/adapters/sqlite";
    import { jsonlAdapter } from "dgent/adapters/jsonl";
    import { writeSync } from "node:fs";
    const [db, log, hook, policies, now] = process.argv.slice(1);
    const store = createStore({ tiers: [sqliteAdapter({ path: db }), jsonlAdapter({ path: log })], landing: "jsonl", upgrader: false, retention: JSON.parse(policies) });
    store.hooks[hook].tap("barrier", () => {
      writeSync(1, "barrier\\n");
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // blocks until killed
    });
    await store.applyRetention({ now: Number(now), batchSize: 100 });
    writeSync(1, "finished\\n");`;

  async function runUntilBarrier(args: string[]): Promise<void> {
    const child = spawn(process.execPath, ["--input-type=module", "-e", CHILD, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => void (err += c.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("barrier")) resolve();
      });
      child.on("exit", () => reject(new Error(`the child exited before the barrier: ${out} ${err}`)));
    });
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
  }

  for (const hook of ["retained", "promoted"] as const) {
    it(`killed with SIGKILL at the first ${hook === "retained" ? "delete batch" : "moved datum"}: nothing that should be kept is lost, and a new apply finishes the work`, async () => {
      const db = join(dir, `crash-${hook}.db`);
      const log = join(dir, `crash-${hook}.jsonl`);
      const policies: RetentionPolicy[] = [
        { name: "sessions", prefix: "s/", moveTo: "sqlite", moveAfterMs: 7 * DAY, deleteAfterMs: 60 * DAY },
        { name: "keep", where: { pin: "1" }, keepForever: true },
      ];
      const rnd = random(11);
      const all = Array.from({ length: 2_000 }, (_, i) =>
        makeDatum({ id: `s/${i}`, content: `c${i}`, createdAt: NOW - Math.floor(rnd() * 90 * DAY), metadata: i % 10 === 0 ? { pin: "1" } : {} }),
      );
      const setup = createStore({ tiers: [sqliteAdapter({ path: db }), jsonlAdapter({ path: log })], landing: "jsonl", upgrader: false });
      await setup.putMany(all);
      await setup.close();
      const age = (d: Datum) => NOW - d.createdAt;
      const goes = new Set(all.filter((d) => d.metadata.pin !== "1" && age(d) > 60 * DAY).map((d) => d.id));
      const moves = new Set(all.filter((d) => d.metadata.pin !== "1" && age(d) > 7 * DAY && age(d) <= 60 * DAY).map((d) => d.id));

      await runUntilBarrier([db, log, hook, JSON.stringify(policies), String(NOW)]);

      const sqlite = sqliteAdapter({ path: db });
      const jsonl = jsonlAdapter({ path: log });
      const store = createStore({ tiers: [sqlite, jsonl], landing: "jsonl", upgrader: false, retention: policies });
      // Nothing that should be kept is lost, and nothing kept is altered.
      for (const d of all) {
        if (goes.has(d.id)) continue;
        const found = await store.get(d.id);
        expect(found !== null && Buffer.from(found.content).equals(d.content), d.id).toBe(true);
      }
      const plan = await store.planRetention({ now: NOW });
      const applied = await store.applyRetention({ now: NOW });
      expect(counts(applied)).toEqual(counts(plan));
      // The end state is the same as without the crash.
      expect(await ids(store)).toEqual(all.filter((d) => !goes.has(d.id)).map((d) => d.id).sort());
      for (const id of moves) {
        expect(await sqlite.get(id), id).not.toBeNull();
        expect(await jsonl.get(id), id).toBeNull();
      }
      for (const d of all) if (!goes.has(d.id) && !moves.has(d.id)) expect(await jsonl.get(d.id), d.id).not.toBeNull();
      await store.close();
    });
  }
});
