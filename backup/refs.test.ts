import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../adapters/postgres/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { makeDatum, type Adapter } from "../core/index.js";
import { REFLOG_LIMIT } from "../core/refs.js";
import { freshSchema, startPostgres, type PostgresServer } from "../test/harness/postgres.js";
import { backup, restore } from "./index.js";

// Refs keep their versions and reflogs across a backup and a restore into a tier with refs.

const root = mkdtempSync(join(tmpdir(), "dgent-backup-refs-"));
let server: PostgresServer;
let n = 0;
const path = (label: string) => join(root, `${label}-${n++}`);

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

/** Calls go to the adapter itself (its private fields need it as `this`); `override` replaces some. */
function wrap(tier: Adapter, override: Partial<Record<keyof Adapter, unknown>>): Adapter {
  return new Proxy(tier, {
    get(t, key) {
      if (key in override) return override[key as keyof Adapter];
      const v = Reflect.get(t, key, t) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

async function source(): Promise<Adapter> {
  const tier = sqliteAdapter({ path: `${path("src")}.db` });
  await tier.open();
  await tier.putMany?.(["a", "b", "c"].map((id) => makeDatum({ id, content: `value ${id}`, createdAt: 1 })));
  // "head": 150 moves, more than a reflog keeps; "thread/1": created, moved, deleted, created again.
  for (let i = 0; i < 150; i++) await tier.setRef?.("head", i % 2 ? "a" : "b", undefined, { by: `writer-${i % 3}`, at: 1_000 + i });
  await tier.setRef?.("thread/1", "a", undefined, { by: "x", at: 5_000 });
  await tier.setRef?.("thread/1", "b", undefined, { by: "y", at: 5_001 });
  await tier.deleteRef?.("thread/1", undefined, { by: "z", at: 5_002 });
  await tier.setRef?.("thread/1", "c", undefined, { by: "x", at: 5_003 });
  await tier.setRef?.("once", "c", undefined, { by: "x", at: 6_000 });
  return tier;
}

const NAMES = ["head", "thread/1", "once"];

async function refsOf(tier: Adapter) {
  const out: Record<string, unknown> = {};
  for (const name of NAMES) out[name] = { ref: await tier.getRef?.(name), reflog: await tier.reflog?.(name, REFLOG_LIMIT) };
  return out;
}

describe("refs keep their versions and reflogs", () => {
  it("SQLite → SQLite and SQLite → Postgres: every ref's version, updatedAt and reflog as in the source", async () => {
    const src = await source();
    const want = await refsOf(src);
    expect((want.head as { ref: { version: number } }).ref.version).toBe(150);
    expect((want["thread/1"] as { ref: { version: number } }).ref.version).toBe(1);
    const repo = path("repo");
    await backup({ from: src, to: repo });
    const targets: Adapter[] = [sqliteAdapter({ path: `${path("dst")}.db` }), postgresAdapter({ url: server.url, namespace: freshSchema("refs") })];
    for (const target of targets) {
      await target.open();
      const dry = await restore({ from: repo, to: target, dryRun: true, checkpointPath: `${path("cp")}.json` });
      expect(dry).toMatchObject({ refs: 3, refsExact: 3 });
      const r = await restore({ from: repo, to: target, checkpointPath: `${path("cp")}.json` });
      expect(r).toMatchObject({ verified: true, refs: 3, refsExact: 3 });
      expect(await refsOf(target)).toEqual(want);
      // Again: nothing to do.
      expect(await restore({ from: repo, to: target, checkpointPath: `${path("cp")}.json` })).toMatchObject({ refs: 0, refsExact: 0 });
      expect(await refsOf(target)).toEqual(want);
      await target.close();
    }
    await src.close();
  });

  it("a replay interrupted part-way continues where it stopped on the next run", async () => {
    const src = await source();
    const want = await refsOf(src);
    const repo = path("repo");
    await backup({ from: src, to: repo });
    const target = sqliteAdapter({ path: `${path("dst")}.db` });
    await target.open();
    let moves = 0;
    const failing = wrap(target, {
      setRef: async (...args: Parameters<NonNullable<Adapter["setRef"]>>) => {
        // Fails after 30 of head's 100 replayed moves (its 50 filler moves go in transactions).
        if (++moves > 30) throw new Error("the process was killed");
        return target.setRef?.(...args);
      },
    });
    await expect(restore({ from: repo, to: failing, checkpointPath: `${path("cp")}.json` })).rejects.toThrow("killed");
    const part = await target.getRef?.("head");
    expect(part?.version).toBe(50 + 30);
    const r = await restore({ from: repo, to: target, checkpointPath: `${path("cp")}.json` });
    expect(r).toMatchObject({ verified: true, refsExact: 3 });
    expect(await refsOf(target)).toEqual(want);
    await target.close();
    await src.close();
  });

  it("without a recorded reflog (a tier without one, or an older archive), a ref is restored to its target only", async () => {
    const src = await source();
    const repo = path("repo");
    await backup({ from: wrap(src, { reflog: undefined }), to: repo });
    const target = sqliteAdapter({ path: `${path("dst")}.db` });
    await target.open();
    const r = await restore({ from: repo, to: target, checkpointPath: `${path("cp")}.json` });
    expect(r).toMatchObject({ verified: true, refs: 3, refsExact: 0 });
    const head = await target.getRef?.("head");
    expect(head).toMatchObject({ target: "a", version: 1 });
    expect((await target.reflog?.("head", 10))?.map((m) => m.by)).toEqual(["dgent restore"]);
    // A target that holds a ref elsewhere: it is moved there, its own history kept.
    await target.setRef?.("once", "a", undefined, { by: "someone", at: 7_000 });
    const again = await restore({ from: repo, to: target, checkpointPath: `${path("cp")}.json` });
    expect(again).toMatchObject({ refs: 1, refsExact: 0 });
    expect(await target.getRef?.("once")).toMatchObject({ target: "c", version: 3 });
    await target.close();
    await src.close();
  });
});
