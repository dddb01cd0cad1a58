import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { postgresAdapter } from "../adapters/postgres/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { createStore, makeDatum, type Datum, type Store } from "../core/index.js";
import { expectCode } from "../testing/index.js";
import { assertBuilt, freshSchema, startPostgres, type PostgresServer } from "./harness/postgres.js";
import { until } from "./harness/until.js";

// These tests stop and restart Postgres, so they always run a cluster of their own.
let server: PostgresServer;
const dir = mkdtempSync(join(tmpdir(), "dgent-lattice-"));
const root = new URL("..", import.meta.url).pathname;
beforeAll(async () => {
  assertBuilt();
  server = await startPostgres({ owned: true });
});
// A test that fails while the server is stopped must not take the next ones down with it.
afterEach(async () => {
  await server?.start();
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What Postgres itself holds for a namespace, read with a separate adapter. */
async function onPostgres(namespace: string): Promise<Map<string, Datum>> {
  const raw = postgresAdapter({ url: server.url, namespace, listen: false, notify: false });
  await raw.open();
  const out = new Map<string, Datum>();
  for await (const d of raw.scan()) out.set(d.id, d);
  await raw.close();
  return out;
}

function lattice(namespace: string, sqlitePath: string, extra: Partial<Parameters<typeof createStore>[0]> = {}): Store {
  return createStore({
    tiers: [postgresAdapter({ url: server.url, namespace, connectTimeoutMs: 15_000, probeTimeoutMs: 10_000 }), sqliteAdapter({ path: sqlitePath })],
    namespace,
    journalPath: `${sqlitePath}.pending-deletes.jsonl`,
    probeBackoffMs: { min: 50, max: 400 },
    ...extra,
  });
}

describe("the lattice on a real Postgres", () => {
  it("writes stream on while Postgres goes down and comes back: nothing lost or doubled, outage deletes honoured, data back on Postgres", async () => {
    const namespace = freshSchema("outage");
    const sqlitePath = join(dir, "outage.db");
    const store = lattice(namespace, sqlitePath);
    const events: string[] = [];
    store.hooks.degraded.tap("test", (e) => void events.push(`degraded ${e.tier}->${e.landing}`));
    store.hooks.restored.tap("test", (e) => void events.push(`restored ${e.tier}`));
    store.hooks.warning.tap("test", () => undefined);
    await store.open();
    const written: Datum[] = [];
    let parent: string | null = null;
    for (let i = 0; i < 200; i++) {
      if (i === 60) await server.stop();
      if (i === 140) await server.start();
      const d = makeDatum({ content: `step ${i}`, causalParent: parent, metadata: { i: String(i) } });
      expect(await store.put(d)).toBe(d.id); // the caller never sees the outage
      written.push(d);
      parent = d.id;
      if (i === 120) {
        expect((await store.backend()).landing).toBe("sqlite");
        // Only Postgres holds these: journaled, but nobody can tell now whether they existed.
        for (const victim of written.slice(0, 10)) await expectCode(store.delete(victim.id), "DGENT_DELETE_UNKNOWN");
        // These landed on SQLite: deleted there, journaled for Postgres.
        for (const victim of written.slice(100, 105)) expect(await store.delete(victim.id)).toBe(true);
      }
    }
    expect(events[0]).toBe(`degraded postgres-docker->sqlite`);
    await until("data back on Postgres", async () => {
      const r = await store.backend();
      return r.landing === "postgres-docker" && r.pendingPromotions === 0 && r.pendingDeletes === 0;
    });
    expect(events).toContain("restored postgres-docker");
    for (const victim of written.slice(0, 10)) expect(await store.delete(victim.id)).toBe(false); // the journal applied them
    const deleted = new Set([...written.slice(0, 10), ...written.slice(100, 105)].map((d) => d.id));
    const pg = await onPostgres(namespace);
    expect(pg.size).toBe(200 - deleted.size);
    for (const d of written) {
      if (deleted.has(d.id)) expect(pg.has(d.id), d.id).toBe(false);
      else expect(Buffer.from(pg.get(d.id)?.content ?? []).toString(), d.id).toBe(`step ${d.metadata.i}`);
    }
    const listed = await store.list({ limit: 1_000 });
    expect(listed).toHaveLength(185);
    expect(new Set(listed.map((d) => d.id)).size).toBe(185);
    const local = sqliteAdapter({ path: sqlitePath });
    await local.open();
    expect((await local.stats()).count).toBe(0);
    await local.close();
    await store.close();
  });

  it("a promotion killed with SIGKILL part way leaves every datum readable once, and a rerun finishes it", async () => {
    const namespace = freshSchema("promote");
    const sqlitePath = join(dir, "promote.db");
    const seed = sqliteAdapter({ path: sqlitePath });
    await seed.open();
    const datums = Array.from({ length: 20_000 }, (_, i) => makeDatum({ content: `memory ${i}`, createdAt: 1_000 + i }));
    await seed.putMany(datums);
    await seed.close();

    const script = `
      import { createStore } from "dgent";
      import { postgresAdapter } from "dgent/adapters/postgres";
      import { sqliteAdapter } from "dgent/adapters/sqlite";
      const [url, namespace, path] = process.argv.slice(1);
      const store = createStore({ tiers: [postgresAdapter({ url, namespace }), sqliteAdapter({ path })], namespace, upgrader: false });
      let moved = 0;
      store.hooks.promoted.tap("child", () => { if (++moved % 1000 === 0) process.stdout.write("moved " + moved + "\\n"); });
      await store.open();
      await store.upgrade();
      process.stdout.write("finished\\n");`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script, server.url, namespace, sqlitePath], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<string | number | null>((resolve) => child.on("exit", (code, signal) => resolve(signal ?? code)));
    for await (const line of createInterface({ input: child.stdout })) {
      if (line === "moved 2000") {
        child.kill("SIGKILL");
        break;
      }
      if (line === "finished") throw new Error("the promotion finished before it could be killed");
    }
    expect(await exited, stderr).toBe("SIGKILL");

    const store = lattice(namespace, sqlitePath, { upgrader: false });
    await store.open();
    const before = await store.backend();
    expect(before.pendingPromotions).toBeGreaterThan(0); // the move was really cut short
    expect(before.tiers[0]?.count).toBeGreaterThanOrEqual(2_000);
    for (const d of datums.filter((_, i) => i % 10 === 0)) expect((await store.get(d.id))?.createdAt, d.id).toBe(d.createdAt);
    const listed = await store.list({ limit: 100_000 });
    expect(listed).toHaveLength(20_000);
    const byId = new Map(listed.map((d) => [d.id, d.createdAt]));
    expect(byId.size).toBe(20_000);
    for (const d of datums) expect(byId.get(d.id), d.id).toBe(d.createdAt);
    const [result] = await store.upgrade();
    expect(result?.kept).toEqual([]);
    const after = await store.backend();
    expect(after.pendingPromotions).toBe(0);
    expect(after.tiers[0]?.count).toBe(20_000);
    await store.close();
  }, 300_000);

  it("dgent migrate: 100k datums from SQLite to Postgres, interrupted half way, resumed, verified", async () => {
    const namespace = freshSchema("migrate");
    const sqlitePath = join(dir, "big.db");
    const seed = sqliteAdapter({ path: sqlitePath });
    await seed.open();
    const t0 = Date.now();
    let parent: string | null = null;
    for (let b = 0; b < 100; b++) {
      const batch: Datum[] = [];
      for (let i = 0; i < 1_000; i++) {
        const d = makeDatum({ content: `datum ${b * 1_000 + i} `.repeat(8), causalParent: i % 10 === 0 ? null : parent, metadata: { batch: String(b) } });
        batch.push(d);
        parent = d.id;
      }
      await seed.putMany(batch);
    }
    await seed.close();
    const seeded = Date.now() - t0;

    const bin = join(root, "dist/cli/main.js");
    const checkpoint = join(dir, "migrate.checkpoint.json");
    const args = ["migrate", "--from", `sqlite://${sqlitePath}`, "--to", server.url, "--namespace", namespace, "--execute", "--batch", "2000", "--checkpoint", checkpoint];
    const first = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const firstExit = new Promise<string | number | null>((resolve) => first.on("exit", (code, signal) => resolve(signal ?? code)));
    for await (const line of createInterface({ input: first.stderr })) {
      if (/\((5\d|6\d)%\)/.test(line)) {
        first.kill("SIGKILL");
        break;
      }
    }
    expect(await firstExit).toBe("SIGKILL");
    const partial = (await server.query(`SELECT count(*)::int AS n FROM "${namespace}".data`)).rows[0] as { n: number };
    expect(partial.n).toBeGreaterThan(0);
    expect(partial.n).toBeLessThan(100_000);

    const second = spawnSync(process.execPath, [bin, ...args, "--json"], { encoding: "utf8" });
    expect(second.status, second.stderr).toBe(0);
    const report = JSON.parse(second.stdout) as { total: number; copied: number; resumedFrom: number; verified: boolean; sourceDigest: string; targetDigest: string; durationMs: number; maxRssBytes: number };
    expect(report.total).toBe(100_000);
    expect(report.resumedFrom).toBeGreaterThanOrEqual(40_000);
    expect(report.copied).toBe(100_000 - report.resumedFrom);
    expect(report.verified).toBe(true);
    expect(report.targetDigest).toBe(report.sourceDigest);
    const full = (await server.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM "${namespace}".data`)).rows[0] as { n: number; d: number };
    expect(full).toEqual({ n: 100_000, d: 100_000 });

    // Idempotent: a third run finds nothing to do and still verifies.
    const third = spawnSync(process.execPath, [bin, ...args, "--json"], { encoding: "utf8" });
    expect((JSON.parse(third.stdout) as { verified: boolean }).verified).toBe(true);
    process.stdout.write(
      `migration of 100k datums: seeding ${seeded} ms; resumed run ${report.durationMs} ms for ${report.copied} datums, max RSS ${(report.maxRssBytes / 2 ** 20).toFixed(0)} MiB\n`,
    );
  }, 300_000);
});

describe("which datums a tier can hold, and promotion that one datum cannot stop", () => {
  const hostile: ReadonlyArray<readonly [string, Record<string, string>]> = [
    ["a metadata value with U+0000", { k: "a\u0000b" }],
    ["a metadata key with U+0000", { "k\u0000": "v" }],
    ["a metadata value with a lone surrogate", { k: "\ud800x" }],
    ["a metadata key with a lone surrogate", { "\udfffk": "v" }],
  ];

  it("a datum Postgres cannot hold is refused at put on every tier, with the same code", async () => {
    const namespace = freshSchema("refuse");
    const sqlitePath = join(dir, "refuse.db");
    const stores = {
      memory: createStore({ tiers: [memoryAdapter()] }),
      sqlite: createStore({ tiers: [sqliteAdapter({ path: join(dir, "refuse-alone.db") })] }),
      postgres: createStore({ tiers: [postgresAdapter({ url: server.url, namespace })], namespace }),
      lattice: lattice(namespace, sqlitePath),
    };
    for (const [tier, store] of Object.entries(stores)) {
      for (const [what, metadata] of hostile) {
        const d = { id: `refused-${tier}`, content: new Uint8Array([1]), createdAt: 1, causalParent: null, metadata };
        const err = await expectCode(store.put(d), "DGENT_INVALID_METADATA");
        expect(err.message, `${tier}: ${what}`).toMatch(/U\+0000|surrogate/);
        await expectCode(store.putMany([d]), "DGENT_INVALID_METADATA");
        expect(await store.get(d.id), `${tier}: ${what}`).toBeNull();
      }
      await store.close();
    }
  });

  it("a datum the upper tier refuses stays below with a warning naming it; every other datum is promoted", async () => {
    const namespace = freshSchema("quarantine");
    const sqlitePath = join(dir, "quarantine.db");
    // A lower tier written before the store refused such datums (adapters trust their input).
    const seed = sqliteAdapter({ path: sqlitePath });
    await seed.open();
    const good = Array.from({ length: 1_000 }, (_, i) => makeDatum({ content: `kept going ${i}`, createdAt: 1_000 + i }));
    const bad = { id: "nul-in-metadata", content: new Uint8Array([7]), createdAt: 1_500, causalParent: null, metadata: { k: "a\u0000b" } };
    await seed.putMany([...good.slice(0, 500), bad, ...good.slice(500)]);
    await seed.close();
    const store = lattice(namespace, sqlitePath, { upgrader: false });
    const warnings: { message: string; details?: Readonly<Record<string, unknown>> }[] = [];
    store.hooks.warning.tap("test", (w) => void warnings.push(w));
    const [result] = await store.upgrade();
    expect(result).toMatchObject({ from: "sqlite", to: "postgres-docker", moved: 1_000, kept: [bad.id] });
    const warning = warnings.find((w) => w.message.includes(JSON.stringify(bad.id)));
    expect(warning?.message).toMatch(/refused/);
    expect(warning?.details).toMatchObject({ ids: [bad.id] });
    const pg = await onPostgres(namespace);
    expect(pg.size).toBe(1_000);
    for (const d of good) expect(pg.has(d.id), d.id).toBe(true);
    expect((await store.get(bad.id))?.metadata).toEqual(bad.metadata); // still readable where it is
    await store.close();
  }, 300_000);

  it("a new process promotes at open what an earlier one left below (no waiting for the age rule)", async () => {
    const namespace = freshSchema("leftover");
    const sqlitePath = join(dir, "leftover.db");
    // What a process that died during an outage leaves: fresh datums on the lower tier only.
    const seed = sqliteAdapter({ path: sqlitePath });
    await seed.open();
    const left = Array.from({ length: 2_000 }, (_, i) => makeDatum({ content: `left below ${i}` }));
    await seed.putMany(left);
    await seed.close();
    const store = lattice(namespace, sqlitePath); // the default policy: age one hour, loop every minute
    store.hooks.warning.tap("test", () => undefined);
    await store.open();
    await until("what was left below is on Postgres", async () => (await store.backend()).pendingPromotions === 0);
    const pg = await onPostgres(namespace);
    expect(pg.size).toBe(2_000);
    await store.close();
  });
});
