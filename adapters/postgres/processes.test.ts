import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChangeEvent } from "../../core/protocol.js";
import { createStore } from "../../core/store.js";
import { assertBuilt, dropSchema, freshSchema, runChild, runTogether, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { MIGRATIONS, ORIGIN, poolReport, postgresAdapter, POSTGRES_DOCKER } from "./index.js";

// Other processes import the built package (dist/) through test/fixtures/child-postgres.mjs.
let server: PostgresServer;
beforeAll(async () => {
  assertBuilt();
  server = await startPostgres();
});
const schemas: string[] = [];
const schema = (label: string) => {
  const name = freshSchema(label);
  schemas.push(name);
  return name;
};
afterAll(async () => {
  // Leave a shared server (DGENT_TEST_POSTGRES_URL) as we found it.
  for (const name of schemas) if (server) await dropSchema(server, name);
  await server?.close();
});

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("processes", () => {
  it("ten processes opening a fresh database at once migrate exactly once", async () => {
    const database = `fresh_${Date.now()}`;
    await server.query(`CREATE DATABASE ${database}`);
    const namespace = freshSchema("mig");
    const options = { url: server.urlFor(database), namespace };
    // Every child is started and waiting at a barrier before any of them opens.
    const results = await runTogether(Array.from({ length: 10 }, () => ({ task: "migrate", args: { options } })));
    results.forEach((r, i) => expect(r.code, `child ${i}: ${r.stderr}`).toBe(0));
    const reports = results.map((r) => JSON.parse(r.stdout) as { applied: number[]; version: number });
    const latest = MIGRATIONS.map((m) => m.version);
    expect(reports.every((r) => r.version === latest[latest.length - 1])).toBe(true);
    expect(reports.filter((r) => r.applied.length > 0).map((r) => r.applied)).toEqual([latest]);
    const rows = await server.query<{ version: number; by: number }>(
      `SELECT version, count(DISTINCT applied_by)::int AS by FROM "${namespace}".dgent_migrations GROUP BY version ORDER BY version`,
      [],
      database,
    );
    expect(rows.rows).toEqual(latest.map((version) => ({ version, by: 1 })));
    await server.query(`DROP DATABASE ${database}`);
  });

  it("four processes writing 500 datums each at once lose nothing and duplicate nothing", async () => {
    const namespace = schema("writers");
    const options = { url: server.url, namespace };
    const count = 500;
    const results = await Promise.all([0, 1, 2, 3].map((p) => runChild("write", { options, prefix: `w${p}/`, count })));
    results.forEach((r, i) => expect(r.code, `writer ${i}: ${r.stderr}`).toBe(0));
    expect(results.map((r) => r.stdout.trim())).toEqual(Array(4).fill(`done ${count}`));
    const totals = await server.query<{ n: number; distinct_ids: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct_ids FROM "${namespace}".data`,
    );
    expect(totals.rows[0]).toEqual({ n: 4 * count, distinct_ids: 4 * count });
    const a = postgresAdapter({ ...options, listen: false });
    await a.open();
    try {
      for (let p = 0; p < 4; p++) {
        const last = `w${p}/${String(count - 1).padStart(6, "0")}`;
        const chain = await a.causalChain(last, 10_000);
        expect(chain.map((d) => d.metadata.i)).toEqual(Array.from({ length: count }, (_, i) => String(i)));
        expect(Buffer.from(chain[0]?.content ?? []).toString()).toBe(`content of w${p}/000000`);
      }
    } finally {
      await a.close();
    }
  });

  it("LISTEN/NOTIFY: another process's put and delete reach the store's externalChange hook; our own do not", async () => {
    const namespace = schema("notify");
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })] });
    const seen: Array<{ event: ChangeEvent; tier: string }> = [];
    store.hooks.externalChange.tap("test", (event, info) => {
      seen.push({ event, tier: info.tier });
    });
    await store.open();
    try {
      // Our own write is not reported back to us.
      await store.put({ id: "mine", content: Buffer.from("x"), createdAt: 1, causalParent: null, metadata: {} });
      const r = await runChild("change", { options: { url: server.url, namespace }, id: "theirs", delete: true });
      expect(r.code, r.stderr).toBe(0);
      await until("two notifications", () => seen.length >= 2);
      await new Promise((res) => setTimeout(res, 200)); // anything else would have arrived by now
      expect(seen.map((s) => [s.event.op, s.event.id, s.tier])).toEqual([
        ["put", "theirs", POSTGRES_DOCKER],
        ["delete", "theirs", POSTGRES_DOCKER],
      ]);
      expect(seen[0]?.event.origin).toMatch(/\/\d+\//);
      expect(seen[0]?.event.origin).not.toBe(ORIGIN);
      // Another namespace's changes are not ours either.
      const other = await runChild("change", { options: { url: server.url, namespace: schema("elsewhere") }, id: "theirs" });
      expect(other.code, other.stderr).toBe(0);
      await new Promise((res) => setTimeout(res, 300));
      expect(seen).toHaveLength(2);
    } finally {
      await store.close();
    }
  });

  it("stores of one process share one listening connection; each hears other processes until it closes", async () => {
    const namespace = schema("shared-listener");
    const heard: Record<string, string[]> = { first: [], second: [] };
    const make = (name: string) => {
      const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })] });
      store.hooks.externalChange.tap("test", (event) => {
        heard[name]?.push(event.id);
      });
      return store;
    };
    const first = make("first");
    const second = make("second");
    await Promise.all([first.open(), second.open()]);
    const channel = `dgent:${namespace}.data`;
    const listening = () => poolReport().filter((p) => p.listening.includes(channel));
    expect(listening()).toHaveLength(1);
    expect((await runChild("change", { options: { url: server.url, namespace }, id: "one" })).code).toBe(0);
    await until("both stores to hear it", () => heard.first?.length === 1 && heard.second?.length === 1);
    await first.close();
    expect(listening()).toHaveLength(1);
    expect((await runChild("change", { options: { url: server.url, namespace }, id: "two" })).code).toBe(0);
    await until("the open store to hear it", () => heard.second?.length === 2);
    expect(heard.first).toEqual(["one"]);
    await second.close();
    expect(listening()).toHaveLength(0);
  });
});
