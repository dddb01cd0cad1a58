import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { assertBuilt, dropSchema, freshSchema, runChild, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { until } from "../../test/plugins-support.js";
import { reactive, reactivePlugin, type Change } from "./index.js";

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

describe("reactive over Postgres", () => {
  it("streams other processes' changes as external events, in order with our own", async () => {
    const namespace = freshSchema("reactive_ext");
    schemas.push(namespace);
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })], plugins: [reactivePlugin()] });
    const seen: Change[] = [];
    (await store.plugin(reactive)).subscribe((c) => void seen.push(c));
    const local = makeDatum({ content: "ours" });
    await store.put(local);
    const r = await runChild("change", { options: { url: server.url, namespace }, id: "theirs", delete: true });
    expect(r.code, r.stderr).toBe(0);
    await until("three changes", () => seen.length === 3);
    expect(seen.map((c) => [c.seq, c.op, c.id, c.source])).toEqual([
      [1, "put", local.id, "local"],
      [2, "put", "theirs", "external"],
      [3, "delete", "theirs", "external"],
    ]);
    expect(seen[1]?.tier).toBe("postgres-docker");
    expect(seen[1]?.origin).toMatch(/\//);
    await store.close();
  });

  it("external: false leaves other processes' changes out", async () => {
    const namespace = freshSchema("reactive_local");
    schemas.push(namespace);
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })], plugins: [reactivePlugin({ external: false })] });
    const seen: Change[] = [];
    (await store.plugin(reactive)).subscribe((c) => void seen.push(c));
    // The store itself hears the other process (the tier's externalChange hook): that is the
    // marker that the notification arrived and that the plugin had its chance to stream it.
    const reached: string[] = [];
    store.hooks.externalChange.tap("test", (event) => void reached.push(event.id));
    await store.open();
    const r = await runChild("change", { options: { url: server.url, namespace }, id: "ignored" });
    expect(r.code, r.stderr).toBe(0);
    await until("the notification reaching the store", () => reached.includes("ignored"));
    const local = makeDatum({ content: "after" });
    await store.put(local);
    await until("our change", () => seen.length >= 1);
    expect(seen.map((c) => c.id)).toEqual([local.id]);
    await store.close();
  });
});
