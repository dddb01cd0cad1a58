import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { isDgentError, type DgentError } from "../../core/errors.js";
import { createStore } from "../../core/store.js";
import { sqliteAdapter } from "../sqlite/index.js";
import { startRedis, type RedisServer } from "../../test/harness/redis.js";
import { redisAdapter } from "./index.js";
import { until } from "../../test/harness/until.js";

// This file stops and restarts its own server (never the machine's Redis). With an append-only
// file, so what Redis acknowledged before the stop is still there after it.
let server: RedisServer;
let dir: string;
beforeAll(async () => {
  server = await startRedis({ persistence: true });
  dir = mkdtempSync(join(tmpdir(), "dgent-redis-faults-"));
});
afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function onRedis(namespace: string): Promise<Map<string, Datum>> {
  const raw = redisAdapter({ url: server.url, namespace, listen: false, notify: false });
  await raw.open();
  const out = new Map<string, Datum>();
  for await (const d of raw.scan()) out.set(d.id, d);
  await raw.close();
  return out;
}

describe("the lattice [redis, sqlite] through a Redis outage", () => {
  it("writes go on while Redis is stopped mid-write and restarted: they land on SQLite, then move back to Redis; nothing lost, doubled or left below", async () => {
    const namespace = `outage-${Date.now().toString(36)}`;
    const sqlitePath = join(dir, "outage.db");
    const store = createStore({
      tiers: [redisAdapter({ url: server.url, namespace, connectTimeoutMs: 15_000, probeTimeoutMs: 10_000 }), sqliteAdapter({ path: sqlitePath })],
      namespace,
      journalPath: `${sqlitePath}.pending-deletes.jsonl`,
      probeBackoffMs: { min: 50, max: 400 },
    });
    const events: string[] = [];
    store.hooks.degraded.tap("test", (e) => void events.push(`degraded ${e.tier}->${e.landing}`));
    store.hooks.restored.tap("test", (e) => void events.push(`restored ${e.tier}`));
    store.hooks.warning.tap("test", () => undefined);
    await store.open();
    expect((await store.backend()).landing).toBe("redis");

    const written: Datum[] = [];
    let parent: string | null = null;
    const next = (i: number) => {
      const d = makeDatum({ content: `step ${i}`, causalParent: parent, metadata: { i: String(i) } });
      parent = d.id;
      written.push(d);
      return d;
    };
    for (let i = 0; i < 60; i++) expect(await store.put(next(i))).toBe(written[i]?.id);
    // Twenty puts in flight while the server shuts down: each either reached Redis or is retried on SQLite.
    const inFlight = Array.from({ length: 20 }, (_, k) => next(60 + k)).map((d) => store.put(d));
    await server.stop();
    expect(await Promise.all(inFlight)).toEqual(written.slice(60, 80).map((d) => d.id));
    for (let i = 80; i < 140; i++) expect(await store.put(next(i))).toBe(written[i]?.id); // the caller never sees the outage
    const during = await store.backend();
    expect(during.landing).toBe("sqlite");
    expect(during.degraded).toBe(true);
    // Only Redis may hold these: journaled for it, and nobody can tell now whether they existed.
    for (const victim of written.slice(0, 5)) {
      const error = await store.delete(victim.id).then(() => null, (e: unknown) => e);
      expect(isDgentError(error) && (error as DgentError).code, String(error)).toBe("DGENT_DELETE_UNKNOWN");
    }
    // These landed on SQLite: deleted there at once.
    for (const victim of written.slice(100, 105)) expect(await store.delete(victim.id)).toBe(true);
    // A chain across both tiers reads whole while Redis is down? Only what is up: SQLite's part.
    expect((await store.causalChain(written[139]?.id as string)).length).toBeGreaterThan(0);

    await server.start();
    for (let i = 140; i < 160; i++) expect(await store.put(next(i))).toBe(written[i]?.id);
    await until("data back on Redis", async () => {
      const r = await store.backend();
      return r.landing === "redis" && r.pendingPromotions === 0 && r.pendingDeletes === 0;
    });
    expect(events[0]).toBe("degraded redis->sqlite");
    expect(events).toContain("restored redis");

    const deleted = new Set([...written.slice(0, 5), ...written.slice(100, 105)].map((d) => d.id));
    for (const victim of written.slice(0, 5)) expect(await store.delete(victim.id)).toBe(false); // the journal applied them
    const held = await onRedis(namespace);
    expect(held.size).toBe(written.length - deleted.size);
    for (const d of written) {
      if (deleted.has(d.id)) expect(held.has(d.id), d.id).toBe(false);
      else expect(Buffer.from(held.get(d.id)?.content ?? []).toString(), d.id).toBe(`step ${d.metadata.i}`);
    }
    const listed = await store.list({ limit: 1_000 });
    expect(listed).toHaveLength(written.length - deleted.size);
    // The chain runs through what was written before, during and after the outage.
    const chain = await store.causalChain(written[159]?.id as string);
    expect(chain.at(-1)?.id).toBe(written[159]?.id);
    expect(chain[0]?.id).toBe(written[105]?.id); // 104 was deleted: the chain ends there
    await store.close();

    const local = sqliteAdapter({ path: sqlitePath });
    await local.open();
    expect((await local.stats()).count).toBe(0); // nothing left below
    await local.close();
  });

  it("an adapter opened while the server is down fails with a retryable DGENT_UNAVAILABLE, and opens once it is back", async () => {
    await server.stop();
    const adapter = redisAdapter({ url: server.url, namespace: "late", connectTimeoutMs: 15_000 });
    try {
      const error = await adapter.open().then(() => null, (e: unknown) => e);
      expect(error).toMatchObject({ code: "DGENT_UNAVAILABLE", retryable: true, unit: "redis" });
      expect(await adapter.probe()).toBe(false);
    } finally {
      await server.start();
    }
    await adapter.open();
    expect(await adapter.probe()).toBe(true);
    await adapter.put({ id: "x", content: new Uint8Array([1]), createdAt: 1, causalParent: null, metadata: {} });
    expect((await adapter.get("x"))?.content).toEqual(Buffer.from([1]));
    await adapter.close();
  });
});
