/**
 * Change notifications (notify.ts): the change log written by the change's own statement, one
 * NOTIFY per burst after the commit, listeners that read the log by transaction horizon. A writer
 * killed between its commit and its NOTIFY does not lose the change; transactions that commit out
 * of order are each reported once; a burst of concurrent puts is reported in full.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { ChangeEvent } from "../../core/protocol.js";
import { makeDatum } from "../../core/datum.js";
import { createStore, type Store } from "../../core/store.js";
import { assertBuilt, dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { ANNOUNCE_DELAY_MS, holdAnnouncementsForTests, NotifyHub, pruneSql, RETENTION_MS, type ChangeMessage } from "./notify.js";
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

  it("a store listens only once its externalChange hook has a tap: none at open, a LISTEN from the first tap on, which hears what commits after it", async () => {
    const namespace = schema("lazy");
    // A URL of its own: its own pool and listener, found in poolReport() by the marker.
    const marker = `lazy-${namespace}`.slice(0, 60);
    const url = `${server.url}${server.url.includes("?") ? "&" : "?"}application_name=${marker}`;
    const store = createStore({ tiers: [postgresAdapter({ url, namespace })] });
    const ids = identifiers(namespace, "data");
    const theirs = async (id: string) => {
      await raw.query(
        `WITH ins AS (INSERT INTO ${ids.table} (id, content, created_at) VALUES ($1, '\\x00', 1) RETURNING id)
         INSERT INTO ${ids.changes} (xid, op, id, origin) SELECT pg_current_xact_id(), 'put', id, 'elsewhere' FROM ins`,
        [id],
      );
      await raw.query("SELECT pg_notify($1, 'elsewhere')", [ids.channel]);
    };
    const entry = () => poolReport().find((p) => p.url.includes(marker));
    await store.open();
    try {
      await store.put(makeDatum({ content: Buffer.from("mine") }));
      await theirs("unheard");
      expect(entry()?.listening).toEqual([]);
      const seen: string[] = [];
      store.hooks.externalChange.tap("late", (event) => void seen.push(event.id));
      await until("the LISTEN after the first tap", () => entry()?.listening.length === 1);
      expect(entry()?.listening).toEqual([ids.channel]);
      // The listener reports what commits once its LISTEN is in place, a moment after the tap:
      // another process writes until one is heard.
      let n = 0;
      await until("a change after the tap", async () => (await theirs(`heard/${n++}`), seen.length > 0), undefined, 50);
      await theirs("last");
      await until("the last change", () => seen.includes("last"));
      // Each reported once, in commit order; the change made before the tap is not among them.
      expect(seen.at(-1)).toBe("last");
      expect(seen.slice(0, -1).every((id) => id.startsWith("heard/"))).toBe(true);
      expect(new Set(seen).size).toBe(seen.length);
    } finally {
      await store.close();
    }
    expect(entry()).toBeUndefined();
  });

  /** A role allowed one connection (and to create `namespace`), and a URL that logs in as it. */
  async function oneConnectionRole(namespace: string): Promise<{ role: string; url: URL }> {
    const role = `dgent_${namespace}`.slice(0, 63);
    await raw.query(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN PASSWORD 'pw' CONNECTION LIMIT 1`);
    const db = new URL(server.url).pathname.slice(1) || "postgres";
    await raw.query(`GRANT CREATE ON DATABASE ${pg.escapeIdentifier(db)} TO ${pg.escapeIdentifier(role)}`);
    const url = new URL(server.url);
    url.username = role;
    url.password = "pw";
    return { role, url };
  }

  async function dropRole(namespace: string, role: string): Promise<void> {
    await raw.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(namespace)} CASCADE`);
    await raw.query(`DROP OWNED BY ${pg.escapeIdentifier(role)}`);
    await raw.query(`DROP ROLE ${pg.escapeIdentifier(role)}`);
  }

  it("a first tap whose LISTEN cannot connect: warned once, retried until it connects, then changes are heard; close stops the retries", async () => {
    // A role allowed one connection: the pool's. The listener's own connection is refused
    // ("too many connections for role") until the limit is raised.
    const namespace = schema("lazyretry");
    const { role, url } = await oneConnectionRole(namespace);
    const store = createStore({ tiers: [postgresAdapter({ url: url.href, namespace, poolSize: 1 })] });
    const warnings: string[] = [];
    store.hooks.warning.tap("test", (w) => void warnings.push(String(w.details?.reason)));
    const ids = identifiers(namespace, "data");
    try {
      await store.open();
      const seen: string[] = [];
      store.hooks.externalChange.tap("late", (event) => void seen.push(event.id));
      await until("the refused LISTEN's warning", () => warnings.includes("listen-failed"));
      await raw.query(`ALTER ROLE ${pg.escapeIdentifier(role)} CONNECTION LIMIT 5`);
      let n = 0;
      await until(
        "a change after the retried LISTEN",
        async () => {
          await raw.query(
            `WITH ins AS (INSERT INTO ${ids.table} (id, content, created_at) VALUES ($1, '\\x00', 1) RETURNING id)
             INSERT INTO ${ids.changes} (xid, op, id, origin) SELECT pg_current_xact_id(), 'put', id, 'elsewhere' FROM ins`,
            [`after/${n++}`],
          );
          await raw.query("SELECT pg_notify($1, 'elsewhere')", [ids.channel]);
          return seen.length > 0;
        },
        undefined,
        50,
      );
      expect(warnings.filter((w) => w === "listen-failed")).toHaveLength(1);
    } finally {
      await store.close();
      await dropRole(namespace, role);
    }
  });

  it("close() while a first tap's LISTEN waits to retry: the retries stop, no pool and no connection are left", async () => {
    const namespace = schema("lazyretryclose");
    const { role, url } = await oneConnectionRole(namespace);
    url.searchParams.set("application_name", `lrc-${namespace}`.slice(0, 60));
    const store = createStore({ tiers: [postgresAdapter({ url: url.href, namespace, poolSize: 1 })] });
    const warnings: string[] = [];
    store.hooks.warning.tap("test", (w) => void warnings.push(String(w.details?.reason)));
    try {
      await store.open();
      store.hooks.externalChange.tap("late", () => undefined);
      await until("the refused LISTEN's warning", () => warnings.includes("listen-failed"));
      // The retry loop is now waiting out its backoff (or trying again): close() ends it.
      await store.close();
      await raw.query(`ALTER ROLE ${pg.escapeIdentifier(role)} CONNECTION LIMIT 5`);
      expect(poolReport().find((p) => p.url.includes(`lrc-${namespace}`.slice(0, 60)))).toBeUndefined();
      const left = await raw.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1", [role]);
      expect(left.rows[0].n).toBe(0);
    } finally {
      await store.close();
      await dropRole(namespace, role);
    }
  });

  it("a store closed before its hook's first tap never listens, and a tap during close leaves nothing listening", async () => {
    const namespace = schema("lazyclose");
    const marker = `lazyc-${namespace}`.slice(0, 60);
    const url = `${server.url}${server.url.includes("?") ? "&" : "?"}application_name=${marker}`;
    const store = createStore({ tiers: [postgresAdapter({ url, namespace })] });
    await store.open();
    const closing = store.close();
    store.hooks.externalChange.tap("too late", () => undefined);
    await closing;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(poolReport().find((p) => p.url.includes(marker))).toBeUndefined();
    const left = await raw.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", [marker]);
    expect(left.rows[0].n).toBe(0);
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
    store.hooks.externalChange.tap("test", () => undefined); // a store listens once something hears it
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

  /** A hub of our own on a fresh table's log (the adapter made it), recording what it reports. */
  async function hubOn(label: string) {
    const namespace = schema(label);
    const a = postgresAdapter({ url: server.url, namespace, listen: false });
    await a.open();
    await a.close();
    const ids = identifiers(namespace, "data");
    const hub = new NotifyHub({ connectionString: server.url });
    const seen: ChangeMessage[] = [];
    const unsubscribe = await hub.subscribe(ids, { change: (m) => seen.push(m), warning: () => undefined });
    /** Another process's put of `id` on `c` (its own statement, as the adapter writes it). */
    const write = (c: pg.Client, id: string) =>
      c.query(`WITH ins AS (INSERT INTO ${ids.table} (id, content, created_at) VALUES ($1, '\\x00', 1) RETURNING id)
               INSERT INTO ${ids.changes} (xid, op, id, origin) SELECT pg_current_xact_id(), 'put', id, 'elsewhere' FROM ins`, [id]);
    const announce = () => raw.query("SELECT pg_notify($1, 'elsewhere')", [ids.channel]);
    return { hub, ids, seen, write, announce, close: async () => (await unsubscribe(), await hub.close()) };
  }

  it("a transaction left open elsewhere: each read returns only what committed since the last, and its change comes once when it commits", async () => {
    const { hub, seen, write, announce, close } = await hubOn("longtx");
    const long = new pg.Client(server.url);
    await long.connect();
    try {
      // A transaction with an id, open through every read below: the snapshot's xmin stays at it.
      await long.query("BEGIN");
      await write(long, "long");
      for (let i = 1; i <= 5; i++) {
        await write(raw, `c${i}`);
        await announce();
        await until(`c${i}`, () => seen.some((m) => m.id === `c${i}`));
      }
      // Every row was returned by one read only (a cursor at the xmin re-read all of them: 15 rows).
      expect(hub.rowsRead).toBe(5);
      await long.query("COMMIT");
      await announce();
      await until("the long transaction's change", () => seen.some((m) => m.id === "long"));
      await write(raw, "marker");
      await announce();
      await until("the marker", () => seen.some((m) => m.id === "marker"));
      expect(seen.map((m) => m.id)).toEqual(["c1", "c2", "c3", "c4", "c5", "long", "marker"]);
      expect(hub.rowsRead).toBe(7);
    } finally {
      await long.end();
      await close();
    }
  });

  it("the listening connection runs one statement at a time: a NOTIFY waits for the read in flight", async () => {
    const { hub, ids, seen, write, announce, close } = await hubOn("one");
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    const inFlight = new Map<unknown, number>();
    let most = 0;
    proto.query = function (this: unknown, ...args: unknown[]) {
      const result = original.apply(this, args);
      if (result instanceof Promise) {
        inFlight.set(this, (inFlight.get(this) ?? 0) + 1);
        most = Math.max(most, inFlight.get(this) as number);
        void result.finally(() => inFlight.set(this, (inFlight.get(this) as number) - 1)).catch(() => undefined);
      }
      return result;
    };
    const locker = new pg.Client(server.url);
    const counter = new pg.Client(server.url);
    await locker.connect();
    await counter.connect();
    let notifications = 0;
    counter.on("notification", () => notifications++);
    await counter.query(`LISTEN ${pg.escapeIdentifier(ids.channel)}`);
    try {
      await write(raw, "x");
      // The log is locked: the read that the announcement starts waits on the server.
      await locker.query("BEGIN");
      await locker.query(`LOCK TABLE ${ids.changes} IN ACCESS EXCLUSIVE MODE`);
      await announce();
      await until("the read waiting for the lock", async () => {
        const r = await raw.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pg_current_snapshot%'",
        );
        return (r.rows[0]?.n ?? 0) > 0;
      });
      // Our own announcement is due meanwhile (after ANNOUNCE_DELAY_MS); it must not be handed to
      // the connection while the read runs.
      hub.announce(ids.channel, ids.changes, async () => true);
      await new Promise((resolve) => setTimeout(resolve, ANNOUNCE_DELAY_MS * 40));
      expect(notifications).toBe(1); // only the test's own so far
      await locker.query("ROLLBACK");
      await until("the read", () => seen.some((m) => m.id === "x"));
      await until("our NOTIFY, after the read", () => notifications === 2);
      expect(most).toBe(1);
    } finally {
      proto.query = original;
      await locker.end();
      await counter.end();
      await close();
    }
  });

  /** A fresh table's log (the adapter made it) and a put of another process into it. */
  async function logOf(label: string) {
    const namespace = schema(label);
    const a = postgresAdapter({ url: server.url, namespace, listen: false });
    await a.open();
    await a.close();
    const ids = identifiers(namespace, "data");
    const write = (id: string) =>
      raw.query(`WITH ins AS (INSERT INTO ${ids.table} (id, content, created_at) VALUES ($1, '\\x00', 1) RETURNING id)
                 INSERT INTO ${ids.changes} (xid, op, id, origin) SELECT pg_current_xact_id(), 'put', id, 'elsewhere' FROM ins`, [id]);
    return { ids, write };
  }

  it("a first subscribe to another channel while the listener waits to reconnect: every channel is LISTENed again and read on, without a warning", async () => {
    const one = await logOf("relisten1");
    const two = await logOf("relisten2");
    const applicationName = `dgent-test-${one.ids.channel}`.slice(0, 63);
    const hub = new NotifyHub({ connectionString: server.url, application_name: applicationName });
    const seen: string[] = [];
    const warnings: string[] = [];
    const recorder = { change: (m: ChangeMessage) => seen.push(m.id), warning: (w: string) => warnings.push(w) };
    try {
      await hub.subscribe(one.ids, recorder);
      expect(await hub.listeningChannels()).toEqual([one.ids.channel]);
      await one.write("before");
      await until("the first change", () => seen.includes("before"));
      // The listener's connection dies; its reconnect waits for its backoff (100 ms first).
      const killed = await raw.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [applicationName]);
      expect(killed.rowCount).toBe(1);
      await until("the listener to notice", () => !hub.connected);
      // Meanwhile a first subscriber to another channel connects: the old channel comes back too.
      await hub.subscribe(two.ids, recorder);
      expect(await hub.listeningChannels()).toEqual([one.ids.channel, two.ids.channel].sort());
      await one.write("after");
      await raw.query("SELECT pg_notify($1, 'elsewhere')", [one.ids.channel]);
      await until("the change after the reconnect", () => seen.includes("after"));
      expect(seen).toEqual(["before", "after"]);
      // The pending retry found the connection made: still one listener, and no gap to warn of.
      expect(warnings).toEqual([]);
      expect(await hub.listeningChannels()).toEqual([one.ids.channel, two.ids.channel].sort());
    } finally {
      await hub.close();
    }
  });

  it("a read that fails with the lost connection while the reconnect asks for another: the catch-up runs on the new connection, without a poll", async () => {
    const one = await logOf("again1");
    const two = await logOf("again2");
    const applicationName = `dgent-test-${one.ids.channel}`.slice(0, 63);
    // No poll: only a NOTIFY or the reconnect starts a read (setInterval is the poll's timer only).
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const hub = new NotifyHub({ connectionString: server.url, application_name: applicationName });
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    let armed = false;
    let held = false;
    let fail = () => undefined as void;
    const gate = new Promise<void>((resolve) => (fail = resolve));
    // The next log read is held, then fails as a read on a dead connection does.
    proto.query = function (this: unknown, ...args: unknown[]) {
      const text = typeof args[0] === "object" && args[0] !== null ? (args[0] as { text?: string }).text : args[0];
      if (armed && typeof text === "string" && text.includes("LEFT JOIN LATERAL")) {
        armed = false;
        held = true;
        return gate.then(() => Promise.reject(new Error("Connection terminated unexpectedly")));
      }
      return original.apply(this, args);
    };
    const seen: string[] = [];
    const warnings: string[] = [];
    const recorder = { change: (m: ChangeMessage) => seen.push(m.id), warning: (w: string) => warnings.push(w) };
    try {
      await hub.subscribe(one.ids, recorder);
      armed = true;
      await raw.query("SELECT pg_notify($1, 'elsewhere')", [one.ids.channel]);
      await until("the read in flight", () => held);
      const killed = await raw.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [applicationName]);
      expect(killed.rowCount).toBe(1);
      await until("the listener to notice", () => !hub.connected);
      await one.write("while-away");
      // Reconnects (this subscribe or the retry) and asks for a read of the first channel while
      // the old one is still in flight.
      await hub.subscribe(two.ids, recorder);
      expect(hub.connected).toBe(true);
      fail();
      await until("the change made while away", () => seen.includes("while-away"), 30_000);
      expect(seen).toEqual(["while-away"]);
      expect(warnings).toEqual([]);
    } finally {
      fail();
      proto.query = original;
      await hub.close();
      vi.useRealTimers();
    }
  }, 60_000);

  it("an announcement made while close() lets the last ones finish is dropped: nothing is sent after close", async () => {
    const { ids } = await logOf("closing");
    const late = `${ids.channel}:late`;
    const hub = new NotifyHub({ connectionString: server.url });
    const counter = new pg.Client(server.url);
    await counter.connect();
    const heard: string[] = [];
    counter.on("notification", (n) => heard.push(n.channel));
    await counter.query(`LISTEN ${pg.escapeIdentifier(ids.channel)}`);
    await counter.query(`LISTEN ${pg.escapeIdentifier(late)}`);
    const release = holdAnnouncementsForTests();
    try {
      hub.announce(ids.channel, ids.changes, async () => true);
      const closing = hub.close(); // waits for that announcement, held
      hub.announce(late, ids.changes, async () => true);
      release();
      await closing;
      // A second close waits for any send still in flight (the late one, had it started).
      await hub.close();
      await counter.query("SELECT 1"); // notifications committed before this reply have arrived
      expect(heard).toEqual([ids.channel]);
    } finally {
      release();
      await counter.end();
    }
  });

  it("the prune deletes the rows older than the retention below the oldest kept transaction, by the xid index", async () => {
    const namespace = schema("prune");
    const a = postgresAdapter({ url: server.url, namespace, listen: false });
    await a.open();
    await a.close();
    const log = identifiers(namespace, "data").changes;
    const old = `now() - make_interval(secs => ${RETENTION_MS / 1000 + 60})`;
    // xid 10, 11: old. 12: recent. 13: old (a transaction that began long ago and took its id
    // late): kept, a recent row has a lower id. 14: recent.
    await raw.query(
      `INSERT INTO ${log} (xid, op, id, origin, at) VALUES
       ('10', 'put', 'a', 'o', ${old}), ('11', 'put', 'b', 'o', ${old}), ('12', 'put', 'c', 'o', now()),
       ('13', 'put', 'd', 'o', ${old}), ('14', 'put', 'e', 'o', now())`,
    );
    await raw.query(`ANALYZE ${log}`);
    // A range of the xid index, not a scan of the whole log (on 5 rows the planner would scan: forbid it).
    await raw.query("BEGIN");
    await raw.query("SET LOCAL enable_seqscan = off");
    const plan = (await raw.query<{ "QUERY PLAN": string }>(`EXPLAIN ${pruneSql(log)}`, [RETENTION_MS / 1000])).rows.map((r) => r["QUERY PLAN"]).join("\n");
    await raw.query("ROLLBACK");
    expect(plan, plan).not.toMatch(/Seq Scan/);
    expect(plan, plan).toMatch(/Index Cond: \(xid < /);
    expect((await raw.query(pruneSql(log), [RETENTION_MS / 1000])).rowCount).toBe(2);
    expect((await raw.query<{ id: string }>(`SELECT id FROM ${log} ORDER BY xid`)).rows.map((r) => r.id)).toEqual(["c", "d", "e"]);
    // Nothing recent left: every row older than the retention goes.
    await raw.query(`UPDATE ${log} SET at = ${old}`);
    expect((await raw.query(pruneSql(log), [RETENTION_MS / 1000])).rowCount).toBe(3);
  });
});
