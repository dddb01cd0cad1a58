import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { assertBuilt, dropSchema, freshSchema, runChild, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { text, until } from "../../test/plugins-support.js";
import { cache, cachePlugin } from "./index.js";

// A real server; the other process is test/fixtures/child-postgres.mjs (built package).
let server: PostgresServer;
const schemas: string[] = [];
beforeAll(async () => {
  assertBuilt();
  server = await startPostgres();
});
afterAll(async () => {
  for (const s of schemas) if (server) await dropSchema(server, s);
  await server?.close();
});

describe("cache over Postgres", () => {
  it("drops an entry when another process deletes the datum (externalChange over LISTEN/NOTIFY)", async () => {
    const namespace = freshSchema("cache_ext");
    schemas.push(namespace);
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })], plugins: [cachePlugin()] });
    const handle = await store.plugin(cache);
    // The other process puts "shared", we read it (cached), then it deletes it.
    const first = await runChild("change", { options: { url: server.url, namespace }, id: "shared" });
    expect(first.code, first.stderr).toBe(0);
    expect(text(await store.get("shared"))).toBe("content of shared");
    expect(handle.has("shared")).toBe(true);
    const second = await runChild("change", { options: { url: server.url, namespace }, id: "shared", delete: true });
    expect(second.code, second.stderr).toBe(0);
    await until("the delete notification", () => !handle.has("shared"));
    expect(await store.get("shared")).toBeNull();
    expect(handle.stats().invalidations).toBeGreaterThanOrEqual(1);
    // Our own writes are cached as usual.
    const mine = makeDatum({ content: "mine" });
    await store.put(mine);
    expect(handle.has(mine.id)).toBe(true);
    await store.close();
  });
});
