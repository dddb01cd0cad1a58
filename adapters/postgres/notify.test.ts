/**
 * Change notifications (notify.ts): the change log written by the change's own statement, one
 * NOTIFY per burst after the commit, listeners that read the log by transaction horizon. A writer
 * killed between its commit and its NOTIFY does not lose the change; transactions that commit out
 * of order are each reported once; a burst of concurrent puts is reported in full.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChangeEvent } from "../../core/protocol.js";
import { makeDatum } from "../../core/datum.js";
import { createStore, type Store } from "../../core/store.js";
import { assertBuilt, dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { poolReport } from "./pool.js";
import { identifiers } from "./sql.js";
import { postgresAdapter } from "./index.js";
import { until } from "../../test/harness/until.js";

let server: PostgresServer;
let raw: pg.Client;
beforeAll(async () => {
  assertBuilt();
  server = await startPostgres();
  raw = new pg.Client(server.url);
  await raw.connect();
});
const schemas: string[] = [];
const schema = (label: string) => {
  const name = freshSchema(label);
  schemas.push(name);
  return name;
};
afterAll(async () => {
  await raw?.end();
  for (const name of schemas) if (server) await dropSchema(server, name);
  await server?.close();
});

/** A store on `namespace` that records the changes other processes make. */
async function listening(namespace: string): Promise<{ store: Store; seen: ChangeEvent[] }> {
  const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })] });
  const seen: ChangeEvent[] = [];
  store.hooks.externalChange.tap("test", (event) => {
    seen.push(event);
  });
  await store.open();
  return { store, seen };
}

/**
 * Another process that holds back its announcements (the test hook of the built notify.js, the
 * same module the built adapter uses), puts `id`, prints `committed` once the put returned, then
 * waits to be killed: it dies between its commit and its NOTIFY.
 */
const DIST = new URL("../../dist/adapters/postgres/", import.meta.url).href;
const DIES_BEFORE_NOTIFY = String.raw`
const cfg = JSON.parse(process.env.DGENT_NOTIFY_CHILD);
const { holdAnnouncementsForTests } = await import(cfg.dist + "notify.js");
const { postgresAdapter } = await import(cfg.dist + "index.js");
holdAnnouncementsForTests();
const a = postgresAdapter({ url: cfg.url, namespace: cfg.namespace, listen: false });
await a.open();
await a.put({ id: cfg.id, content: Buffer.from("x"), createdAt: 1, causalParent: null, metadata: {} });
process.stdout.write("committed\n");
setInterval(() => undefined, 1 << 30);
`;

describe("change notifications", () => {
  it("a writer killed (SIGKILL) after its commit and before its NOTIFY: another process still learns of the change", async () => {
    const namespace = schema("crash");
    const { store, seen } = await listening(namespace);
    try {
      const child = spawn(process.execPath, ["--input-type=module", "-e", DIES_BEFORE_NOTIFY], {
        env: { ...process.env, DGENT_NOTIFY_CHILD: JSON.stringify({ dist: DIST, url: server.url, namespace, id: "crashed" }) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
      const lines = createInterface({ input: child.stdout });
      const committed = await new Promise<boolean>((resolve) => {
        lines.on("line", (l) => l === "committed" && resolve(true));
        child.on("exit", () => resolve(false));
      });
      expect(committed, stderr).toBe(true);
      // It committed; it never sent a NOTIFY (held), and now it never will.
      child.kill("SIGKILL");
      expect(await exited).toBe("SIGKILL");
      const log = identifiers(namespace, "data").changes;
      expect((await raw.query(`SELECT op, id FROM ${log}`)).rows).toEqual([{ op: "put", id: "crashed" }]);
      // The listener reads the log by itself (its poll), with nobody announcing anything.
      await until("the crashed writer's change", () => seen.some((e) => e.id === "crashed"));
      expect(seen.map((e) => [e.op, e.id])).toEqual([["put", "crashed"]]);
    } finally {
      await store.close();
    }
  });

  it("transactions that commit out of order are each reported once, whichever commits first", async () => {
    const namespace = schema("order");
    const { store, seen } = await listening(namespace);
    const ids = identifiers(namespace, "data");
    const write = (c: pg.Client, id: string) =>
      c.query(`WITH ins AS (INSERT INTO ${ids.table} (id, content, created_at) VALUES ($1, '\\x00', 1) RETURNING id)
               INSERT INTO ${ids.changes} (xid, op, id, origin) SELECT pg_current_xact_id(), 'put', id, 'elsewhere' FROM ins`, [id]);
    const announce = () => raw.query("SELECT pg_notify($1, 'elsewhere')", [`dgent:${namespace}.data`]);
    const early = new pg.Client(server.url);
    await early.connect();
    try {
      // `late` takes its transaction id first, then `early` writes and commits first.
      await early.query("BEGIN");
      await write(early, "late");
      await write(raw, "early");
      await announce();
      await until("the early commit", () => seen.some((e) => e.id === "early"));
      await early.query("COMMIT");
      await announce();
      await until("the late commit", () => seen.some((e) => e.id === "late"));
      // More reads (an announcement, a marker) report nothing twice.
      await announce();
      await write(raw, "marker");
      await announce();
      await until("the marker", () => seen.some((e) => e.id === "marker"));
      expect(seen.map((e) => e.id)).toEqual(["early", "late", "marker"]);
      expect(seen.every((e) => e.origin === "elsewhere")).toBe(true);
    } finally {
      await early.end();
      await store.close();
    }
  });

  it("64 concurrent puts of another process are all reported, with few NOTIFYs", async () => {
    const namespace = schema("burst");
    const { store, seen } = await listening(namespace);
    const counter = new pg.Client(server.url);
    await counter.connect();
    let notifications = 0;
    counter.on("notification", () => notifications++);
    await counter.query(`LISTEN ${pg.escapeIdentifier(`dgent:${namespace}.data`)}`);
    // A writer of its own (not composed into a store: it announces, it does not listen). Its
    // changes count as another process's: the listener filters by origin, and this test puts
    // under a separate process's origin by running the puts in a child.
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        String.raw`
const cfg = JSON.parse(process.env.DGENT_NOTIFY_CHILD);
const { postgresAdapter } = await import(cfg.dist + "index.js");
const a = postgresAdapter({ url: cfg.url, namespace: cfg.namespace, listen: false, poolSize: 16 });
await a.open();
await Promise.all(Array.from({ length: 64 }, (_, i) => a.put({ id: "b/" + i, content: Buffer.from("x"), createdAt: i, causalParent: null, metadata: {} })));
await a.close();
process.stdout.write("done\n");
`,
      ],
      { env: { ...process.env, DGENT_NOTIFY_CHILD: JSON.stringify({ dist: DIST, url: server.url, namespace }) }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      expect([code, out.trim()], stderr).toEqual([0, "done"]);
      await until("all 64 puts", () => new Set(seen.map((e) => e.id)).size === 64);
      expect(seen).toHaveLength(64);
      await counter.query("SELECT 1"); // notifications committed before this reply have arrived
      // One NOTIFY per burst, not per put; the last put is always announced (close waits for it).
      expect(notifications).toBeGreaterThanOrEqual(1);
      expect(notifications).toBeLessThan(64);
    } finally {
      await counter.end();
      await store.close();
    }
  });

  it("a process that listens announces over its listening connection: no connection of its own for the NOTIFY", async () => {
    const namespace = schema("own");
    const applicationName = `dgent-test-${namespace}`.slice(0, 63);
    const channel = identifiers(namespace, "data").channel;
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace, applicationName })] });
    await store.open();
    const counter = new pg.Client(server.url);
    await counter.connect();
    let notifications = 0;
    counter.on("notification", () => notifications++);
    await counter.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    try {
      await store.put(makeDatum({ id: "own/1", content: "x", createdAt: 1 }));
      await until("the announcement", () => notifications >= 1);
      const pool = poolReport().find((p) => p.listening.includes(channel));
      const backends = await raw.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", [applicationName]);
      // The pool's connections and the listener, which sent the NOTIFY: nothing else.
      expect(pool).toBeDefined();
      expect(backends.rows[0]?.n).toBe((pool?.connections ?? 0) + 1);
    } finally {
      await counter.end();
      await store.close();
    }
  });
});
