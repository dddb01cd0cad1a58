/**
 * Writers log changes only while someone listens (migration 9; the tags triggers write the log
 * since migration 10; notify.ts `#register`): no log rows without a listener; a listener that starts waits for the writes
 * already under way, so every change it must report was logged; rows of listeners that are gone
 * are deleted by the next one that starts; listeners of earlier versions, which never register,
 * are counted by the migration.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { makeDatum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { until } from "../../test/harness/until.js";
import { postgresAdapter } from "./index.js";
import { migrate, MIGRATIONS } from "./migrations.js";
import { resolveOptions } from "./profiles.js";
import { LISTENER_MARK, LISTENERS_RECHECK_MS, NotifyHub, type ChangeMessage } from "./notify.js";
import { identifiers, putStatement, statements, type Identifiers } from "./sql.js";

let server: PostgresServer;
let raw: pg.Client;
beforeAll(async () => {
  server = await startPostgres();
  raw = new pg.Client(server.url);
  await raw.connect();
});
const schemas: string[] = [];
afterAll(async () => {
  await raw?.end();
  for (const name of schemas) if (server) await dropSchema(server, name);
  await server?.close();
});

/**
 * A fresh table (the adapter made it, at the latest version) and the adapter's put as another
 * process of this version sends it: its sessions carry `dgent.origin` (profiles.ts).
 */
async function table(label: string): Promise<{ namespace: string; ids: Identifiers; put: (c: pg.ClientBase, id: string) => Promise<pg.QueryResult> }> {
  const namespace = freshSchema(label);
  schemas.push(namespace);
  const a = postgresAdapter({ url: server.url, namespace, listen: false });
  await a.open();
  await a.close();
  const ids = identifiers(namespace, "data");
  const stmt = statements(ids).put;
  const put = async (c: pg.ClientBase, id: string) => {
    await c.query("SET dgent.origin = 'elsewhere'");
    return c.query({ text: stmt.text, values: [id, Buffer.from(id), 1, null, "{}"] });
  };
  return { namespace, ids, put };
}

const count = async (relation: string): Promise<number> => Number((await raw.query<{ n: string }>(`SELECT count(*) AS n FROM ${relation}`)).rows[0]?.n);

describe("the change log is written only while someone listens", () => {
  it("no listener: no log rows; from a store's first externalChange tap on every put is logged and heard; after it closes, none again", async () => {
    const { namespace, ids, put } = await table("nolisten");
    const writer = createStore({ tiers: [postgresAdapter({ url: server.url, namespace, listen: false })] });
    await writer.open();
    try {
      await writer.put(makeDatum({ id: "quiet-1", content: "a" }));
      await put(raw, "quiet-2");
      expect(await count(ids.changes)).toBe(0);
      expect(await count(ids.listeners)).toBe(0);

      const listener = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })] });
      const heard: string[] = [];
      listener.hooks.externalChange.tap("test", (event) => void heard.push(event.id));
      await listener.open();
      expect(await count(ids.listeners)).toBe(1);
      await writer.put(makeDatum({ id: "heard-1", content: "b" }));
      await put(raw, "heard-2");
      expect((await raw.query<{ id: string }>(`SELECT id FROM ${ids.changes} ORDER BY seq`)).rows.map((r) => r.id)).toEqual(["heard-1", "heard-2"]);
      await raw.query("SELECT pg_notify($1, 'elsewhere')", [ids.channel]);
      await until("heard-2", () => heard.includes("heard-2"));
      expect(heard).toEqual(["heard-2"]); // heard-1 is this process's own (the same origin): not reported back
      await listener.close();

      expect(await count(ids.listeners)).toBe(0);
      await writer.put(makeDatum({ id: "quiet-3", content: "c" }));
      await put(raw, "quiet-4");
      expect(await count(ids.changes)).toBe(2);
    } finally {
      await writer.close();
    }
  });

  it("with nobody registered, a put sends no NOTIFY (its writer asks the listeners table first)", async () => {
    const { namespace, ids } = await table("silent");
    const listener = new pg.Client(server.url);
    await listener.connect();
    const heard: string[] = [];
    listener.on("notification", (n) => void heard.push(n.payload ?? ""));
    const writer = postgresAdapter({ url: server.url, namespace, listen: false });
    await writer.open();
    try {
      // A bare LISTEN, not registered: nobody the writers know of.
      await listener.query(`LISTEN ${pg.escapeIdentifier(ids.channel)}`);
      await writer.put(makeDatum({ id: "unannounced", content: "x" }));
      await writer.delete("unannounced");
    } finally {
      await writer.close(); // waits for the announcements in flight
    }
    try {
      // Notifications arrive in commit order: once this one is heard, any NOTIFY of the writer's
      // (all committed before its close resolved) would have been heard before it.
      await raw.query("SELECT pg_notify($1, 'sentinel')", [ids.channel]);
      await until("the sentinel", () => heard.includes("sentinel"));
      expect(heard).toEqual(["sentinel"]);
      expect(await count(ids.changes)).toBe(0);
    } finally {
      await listener.end();
    }
  });

  it("the quiet put (sent while its writer believes nobody listens) inserts nothing while the listeners table has a row, and the datum with its tags when it has none", async () => {
    const { ids } = await table("quiet-sql");
    const quiet = statements(ids).putQuiet;
    const values = (id: string) => [id, Buffer.from(id), 1, null, '{"k": "v", "j": "w"}'];
    // Sent, as every statement of this version is, from a session that carries dgent.origin.
    await raw.query("SET dgent.origin = 'quiet-test'");
    await raw.query(`INSERT INTO ${ids.listeners} (pid, origin) VALUES (pg_backend_pid(), 'test')`);
    expect((await raw.query({ text: quiet.text, values: values("while-listened") })).rowCount).toBe(0);
    expect(await count(ids.table)).toBe(0);
    await raw.query(`DELETE FROM ${ids.listeners}`);
    // rowCount: the tag rows the insert wrote (two), so above 0 exactly when the datum went in.
    expect((await raw.query({ text: quiet.text, values: values("while-quiet") })).rowCount).toBe(2);
    expect((await raw.query(`SELECT key, value, id FROM ${ids.tags} ORDER BY key`)).rows).toEqual([
      { key: "j", value: "w", id: "while-quiet" },
      { key: "k", value: "v", id: "while-quiet" },
    ]);
    expect(await count(ids.changes)).toBe(0);
    // An id held already: nothing, as for put (the caller then sends put, which compares).
    expect((await raw.query({ text: quiet.text, values: values("while-quiet") })).rowCount).toBe(0);
    await raw.query("RESET dgent.origin");
  });

  it("a datum without tags takes the bare statements: quiet, it inserts only while nobody listens; loud, it logs while someone does; rowCount says whether it went in", async () => {
    const { ids } = await table("bare-sql");
    const sql = statements(ids);
    expect(putStatement(sql, "{}", true)).toBe(sql.putQuietBare);
    expect(putStatement(sql, "{}", false)).toBe(sql.putBare);
    expect(putStatement(sql, '{"k":"v"}', true)).toBe(sql.putQuiet);
    expect(putStatement(sql, '{"k":"v"}', false)).toBe(sql.put);
    const values = (id: string) => [id, Buffer.from(id), 1, null, "{}"];
    await raw.query("SET dgent.origin = 'bare-test'");
    await raw.query(`INSERT INTO ${ids.listeners} (pid, origin) VALUES (pg_backend_pid(), 'test')`);
    expect((await raw.query({ text: sql.putQuietBare.text, values: values("bare-listened") })).rowCount).toBe(0);
    expect(await count(ids.table)).toBe(0);
    expect((await raw.query({ text: sql.putBare.text, values: values("bare-loud") })).rowCount).toBe(1);
    expect((await raw.query(`SELECT id FROM ${ids.changes}`)).rows).toEqual([{ id: "bare-loud" }]);
    expect((await raw.query({ text: sql.putBare.text, values: values("bare-loud") })).rowCount).toBe(0);
    await raw.query(`DELETE FROM ${ids.listeners}`);
    expect((await raw.query({ text: sql.putQuietBare.text, values: values("bare-quiet") })).rowCount).toBe(1);
    expect((await raw.query({ text: sql.putQuietBare.text, values: values("bare-quiet") })).rowCount).toBe(0);
    expect(await count(ids.table)).toBe(2);
    expect(await count(ids.tags)).toBe(0);
    expect(await count(ids.changes)).toBe(1);
    await raw.query("RESET dgent.origin");
  });

  it("a writer that believes nobody listens finds a listener that registered since: its put is sent again and logged, once, with its tags once", async () => {
    const { namespace, ids } = await table("quiet-fallback");
    // The writer's clock stands still, so its answer "nobody listens" does not expire during the test.
    vi.useFakeTimers({ toFake: ["performance"] });
    const writer = postgresAdapter({ url: server.url, namespace, listen: false, notify: false });
    try {
      await writer.open();
      let n = 0;
      await until("a put sent for nobody", async () => {
        await writer.put(makeDatum({ id: `quiet-${n++}`, content: "q", metadata: { k: "v" } }));
        return Number((await writer.stats()).quietPuts) > 0;
      });
      expect(await count(ids.changes)).toBe(0);
      await raw.query(`INSERT INTO ${ids.listeners} (pid, origin) VALUES (pg_backend_pid(), 'test')`);
      await writer.put(makeDatum({ id: "after-listener", content: "x", metadata: { k: "v" } }));
      const stats = await writer.stats();
      expect(stats.quietFallbacks).toBe(1);
      expect((await raw.query(`SELECT op, id FROM ${ids.changes}`)).rows).toEqual([{ op: "put", id: "after-listener" }]);
      expect((await raw.query(`SELECT key, value FROM ${ids.tags} WHERE id = 'after-listener'`)).rows).toEqual([{ key: "k", value: "v" }]);
      // And the datum is there, once.
      expect((await writer.get("after-listener"))?.id).toBe("after-listener");
      // The same id put again (identical): no error, nothing more logged.
      await writer.put(makeDatum({ id: "after-listener", content: "x", metadata: { k: "v" } }));
      expect(await count(ids.changes)).toBe(1);
    } finally {
      vi.useRealTimers();
      await writer.close();
      await raw.query(`DELETE FROM ${ids.listeners}`);
    }
  });

  it("an answer older than the recheck interval still decides the put while the new one is asked; a listener found so is logged through the fallback, and a listener gone lets puts go quiet again", async () => {
    const { namespace, ids } = await table("quiet-stale");
    vi.useFakeTimers({ toFake: ["performance"] });
    const writer = postgresAdapter({ url: server.url, namespace, listen: false, notify: false });
    let n = 0;
    const put = () => writer.put(makeDatum({ id: `stale-${n++}`, content: "s", metadata: { k: "v" } }));
    const stats = async () => {
      const s = await writer.stats();
      return { quiet: Number(s.quietPuts), fallbacks: Number(s.quietFallbacks) };
    };
    try {
      await writer.open();
      await until("a put sent for nobody", async () => {
        await put();
        return (await stats()).quiet > 0;
      });
      await raw.query(`INSERT INTO ${ids.listeners} (pid, origin) VALUES (pg_backend_pid(), 'test')`);
      // The answer "nobody" expires: the next put still goes by it (quiet), finds the listener
      // and is sent again with its log step; the question asked meanwhile answers "someone".
      vi.advanceTimersByTime(LISTENERS_RECHECK_MS + 1);
      const before = await stats();
      await put();
      const after = await stats();
      expect(after.quiet).toBe(before.quiet + 1);
      expect(after.fallbacks).toBe(before.fallbacks + 1);
      expect((await raw.query(`SELECT id FROM ${ids.changes}`)).rows).toEqual([{ id: `stale-${n - 1}` }]);
      // Believing someone listens, puts are logged without trying quiet first.
      await put();
      expect(await stats()).toEqual(after);
      expect(await count(ids.changes)).toBe(2);
      // The listener leaves; once the answer expires and the new one says "nobody", puts are quiet again.
      await raw.query(`DELETE FROM ${ids.listeners}`);
      vi.advanceTimersByTime(LISTENERS_RECHECK_MS + 1);
      await until("puts quiet again", async () => {
        await put();
        return (await stats()).quiet > after.quiet;
      });
      expect((await stats()).fallbacks).toBe(after.fallbacks);
      expect(await count(ids.table)).toBe(n);
    } finally {
      vi.useRealTimers();
      await writer.close();
      await raw.query(`DELETE FROM ${ids.listeners}`);
    }
  });

  it("while someone listens, a write is logged once (by this version's statements or its delete trigger, or by an earlier version's own statement) and not for a session that is neither; tags are written once either way", async () => {
    const { ids } = await table("versions");
    await raw.query("RESET dgent.origin"); // earlier tests' put() set it on this session
    await raw.query(`INSERT INTO ${ids.listeners} (pid, origin) VALUES (pg_backend_pid(), 'test')`);
    const logged = async () =>
      (await raw.query<{ op: string; id: string; origin: string }>(`SELECT op, id, origin FROM ${ids.changes} ORDER BY seq`)).rows.map((r) => `${r.op} ${r.id} ${r.origin}`);
    const cols = "id, content, created_at, causal_parent, metadata";
    const values = (id: string) => [id, Buffer.from(id), 1, null, '{"k": "v"}'];
    // This version: a plain INSERT, from a session that carries dgent.origin.
    const current = new pg.Client({ connectionString: server.url, options: "-c dgent.origin=current" });
    await current.connect();
    try {
      await current.query({ text: statements(ids).put.text, values: values("new-put") });
      await current.query({ text: statements(ids).put.text, values: values("new-kept") });
      await current.query({ text: statements(ids).batch(2, true).text, values: [...values("new-many-1"), ...values("new-many-2")] });
      await current.query({ text: statements(ids).delete.text, values: ["new-put"] });
      // An earlier version's put: its statement writes the log row itself; its session has no dgent.origin.
      await raw.query({
        text: `WITH ins AS (INSERT INTO ${ids.table} AS t (${cols}) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING RETURNING t.id),
               log AS (INSERT INTO ${ids.changes} (xid, op, id, origin) SELECT pg_current_xact_id(), 'put', ins.id, $6::text FROM ins WHERE EXISTS (SELECT FROM ${ids.listeners}))
               SELECT FROM ins`,
        values: [...values("old-put"), "earlier"],
      });
      // A hand-written statement from a session that is neither: not logged, as before.
      await raw.query(`INSERT INTO ${ids.table} (${cols}) VALUES ('by-hand', 'x', 1, NULL, '{}')`);
      expect(await logged()).toEqual(["put new-put current", "put new-kept current", "put new-many-1 current", "put new-many-2 current", "delete new-put current", "put old-put earlier"]);
      // The tags were written once for each (by the statement itself for this version's sessions,
      // by the trigger for the others), and the deleted datum's removed.
      expect((await raw.query(`SELECT id FROM ${ids.tags} WHERE key = 'k' ORDER BY id`)).rows.map((r) => r.id)).toEqual(["new-kept", "new-many-1", "new-many-2", "old-put"]);
    } finally {
      await current.end();
    }
  });

  it("a put announces itself with a NOTIFY while someone is registered", async () => {
    const { namespace, ids } = await table("announce");
    const listener = new pg.Client(server.url);
    await listener.connect();
    const heard: string[] = [];
    listener.on("notification", (n) => void heard.push(n.channel));
    const writer = postgresAdapter({ url: server.url, namespace, listen: false });
    await writer.open();
    try {
      // Registered by hand (as a listener of another process would be), then LISTENing.
      await listener.query(`INSERT INTO ${ids.listeners} (pid, origin) VALUES (pg_backend_pid(), 'elsewhere')`);
      await listener.query(`LISTEN ${pg.escapeIdentifier(ids.channel)}`);
      await writer.put(makeDatum({ id: "announced", content: "x" }));
      await until("the put's NOTIFY", () => heard.includes(ids.channel));
      expect(await count(ids.changes)).toBe(1);
    } finally {
      await writer.close();
      await listener.end();
    }
  });

  it("a listener that starts while a write transaction is open waits for it to end, and reports none of it (no half of a transaction)", async () => {
    const { ids, put } = await table("inflight");
    const long = new pg.Client(server.url);
    await long.connect();
    const hub = new NotifyHub({ connectionString: server.url });
    const seen: ChangeMessage[] = [];
    try {
      await long.query("BEGIN");
      await put(long, "first"); // nobody listens yet: not logged
      let subscribed = false;
      const subscribing = hub.subscribe(ids, { change: (m) => seen.push(m), warning: () => undefined }).then((unsubscribe) => {
        subscribed = true;
        return unsubscribe;
      });
      // The barrier: the listener registered and polls for the open transaction.
      await until("the listener waiting for the open transaction", () => hub.waits > 0);
      expect(subscribed).toBe(false);
      expect(await count(ids.listeners)).toBe(1);
      await put(long, "second"); // a statement after the registration: logged
      await long.query("COMMIT");
      const unsubscribe = await subscribing;
      await put(raw, "after");
      await raw.query("SELECT pg_notify($1, 'elsewhere')", [ids.channel]);
      await until("after", () => seen.some((m) => m.id === "after"));
      // "first" and "second" committed before the listener's cursor: both count as seen. Had it
      // not waited, its cursor would have held the transaction as running, and reported "second"
      // without "first".
      expect(seen.map((m) => m.id)).toEqual(["after"]);
      await unsubscribe();
      expect(await count(ids.listeners)).toBe(0);
    } finally {
      await long.end().catch(() => undefined);
      await hub.close();
    }
  });

  it("writers racing a listener's start: every put begun after the subscribe resolved is reported, once", async () => {
    const { ids, put } = await table("race");
    const writers = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const c = new pg.Client(server.url);
        await c.connect();
        return c;
      }),
    );
    const hub = new NotifyHub({ connectionString: server.url });
    const seen: ChangeMessage[] = [];
    let resolved = false;
    // Begun after the subscribe resolved. (A put under way while the listener registered was
    // waited for, so it committed before the cursor, though its answer may reach us after the
    // subscribe resolved: the test of an open transaction above is the one for that wait.)
    const afterResolve = new Set<string>();
    const done = new Array<number>(writers.length).fill(0);
    let stop = false;
    const loops = writers.map(async (c, w) => {
      for (let n = 0; !stop; n++) {
        const id = `w${w}-${n}`;
        if (resolved) afterResolve.add(id);
        await put(c, id);
        done[w] = n + 1;
      }
    });
    try {
      await until("every writer under way", () => done.every((n) => n >= 20));
      const unsubscribe = await hub.subscribe(ids, { change: (m) => seen.push(m), warning: () => undefined });
      resolved = true;
      const at = done.slice();
      await until("20 more puts from every writer", () => done.every((n, w) => n >= (at[w] as number) + 20));
      stop = true;
      await Promise.all(loops);
      await raw.query("SELECT pg_notify($1, 'elsewhere')", [ids.channel]);
      await until("every put begun after the subscribe", () => {
        const ids = new Set(seen.map((m) => m.id));
        return [...afterResolve].every((id) => ids.has(id));
      });
      expect(afterResolve.size).toBeGreaterThanOrEqual(120);
      const reported = seen.map((m) => m.id);
      expect(new Set(reported).size).toBe(reported.length);
      await unsubscribe();
    } finally {
      stop = true;
      await Promise.all(loops).catch(() => undefined);
      await Promise.all(writers.map((c) => c.end()));
      await hub.close();
    }
  });

  it("the row of a listener whose backend is gone keeps writers logging until the next listener starts, which deletes it", async () => {
    const { ids, put } = await table("stale");
    const gone = new pg.Client(server.url);
    await gone.connect();
    const pid = (await gone.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid as number;
    await raw.query(`INSERT INTO ${ids.listeners} (pid, origin) VALUES ($1, 'killed')`, [pid]);
    await gone.end();
    await until("the backend gone", async () => (await raw.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).rowCount === 0);
    await put(raw, "logged");
    expect(await count(ids.changes)).toBe(1);

    const hub = new NotifyHub({ connectionString: server.url });
    const unsubscribe = await hub.subscribe(ids, { change: () => undefined, warning: () => undefined });
    const rows = (await raw.query<{ pid: number }>(`SELECT pid FROM ${ids.listeners}`)).rows.map((r) => r.pid);
    expect(rows).toHaveLength(1);
    expect(rows).not.toContain(pid);
    await unsubscribe();
    await hub.close();
    await put(raw, "not-logged");
    expect(await count(ids.changes)).toBe(1);
  });

  it("a read-only store with a tap opens, warns that it cannot register, and hears what writers log for a registered listener", async () => {
    const { namespace, ids, put } = await table("readonly");
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace, readonly: true })] });
    const warnings: string[] = [];
    store.hooks.warning.tap("test", (w) => void warnings.push(String(w.details?.reason)));
    const heard: string[] = [];
    store.hooks.externalChange.tap("test", (event) => void heard.push(event.id));
    await store.open();
    const hub = new NotifyHub({ connectionString: server.url });
    try {
      expect(warnings).toContain("listener-unregistered");
      expect(await count(ids.listeners)).toBe(0);
      const unsubscribe = await hub.subscribe(ids, { change: () => undefined, warning: () => undefined });
      await put(raw, "while-registered");
      await raw.query("SELECT pg_notify($1, 'elsewhere')", [ids.channel]);
      await until("while-registered", () => heard.includes("while-registered"));
      await unsubscribe();
    } finally {
      await hub.close();
      await store.close();
    }
  });

  it("a listener whose connection is lost while it registers again warns of the gap on the next one (its first row was gone: writers stopped logging)", async () => {
    const { ids, put } = await table("relost");
    const hub = new NotifyHub({ connectionString: server.url });
    const warnings: string[] = [];
    const unsubscribe = await hub.subscribe(ids, { change: () => undefined, warning: (_m, d) => void warnings.push(String(d?.reason)) });
    const long = new pg.Client(server.url);
    await long.connect();
    const gone = async (pid: number) => (await raw.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).rowCount === 0;
    try {
      const a = hub.listenerPid as number;
      expect(a).toBeTypeOf("number");
      // A is lost, and another listener's start deletes its row (done here by hand).
      await raw.query("SELECT pg_terminate_backend($1)", [a]);
      await until("A's backend gone", () => gone(a));
      await raw.query(`DELETE FROM ${ids.listeners} WHERE pid = $1`, [a]);
      await put(raw, "unlogged-while-away");
      // B connects, registers, and waits for this open write; then B is lost too.
      await long.query("BEGIN");
      await put(long, "held");
      const w0 = hub.waits;
      await until("B registered and waiting for the open write", () => hub.waits > w0);
      const b = hub.listenerPid as number;
      expect(b).not.toBe(a);
      await raw.query("SELECT pg_terminate_backend($1)", [b]);
      await long.query("COMMIT");
      // C: B's row is there, but B never covered the channel (it was lost before its cursor was set).
      await until("the gap warned of", () => warnings.includes("listener-reconnected"));
      expect(warnings.filter((w) => w === "listener-reconnected")).toHaveLength(1);
    } finally {
      await long.end().catch(() => undefined);
      await unsubscribe();
      await hub.close();
    }
  });

  it("the pool's sessions are READ COMMITTED even when the role's default is REPEATABLE READ (a write's snapshot then follows its table lock)", async () => {
    const { namespace } = await table("isolation");
    const role = `rr_${namespace}`.slice(0, 63);
    await raw.query(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN SUPERUSER PASSWORD 'rr-secret'`);
    await raw.query(`ALTER ROLE ${pg.escapeIdentifier(role)} SET default_transaction_isolation = 'repeatable read'`);
    const url = new URL(server.url);
    url.username = role;
    url.password = "rr-secret";
    const plain = new pg.Client(url.href);
    const ours = new pg.Client(resolveOptions({ url: url.href, namespace }).url);
    await plain.connect();
    await ours.connect();
    try {
      expect((await plain.query("SHOW transaction_isolation")).rows[0]).toEqual({ transaction_isolation: "repeatable read" });
      expect((await ours.query("SHOW transaction_isolation")).rows[0]).toEqual({ transaction_isolation: "read committed" });
    } finally {
      await plain.end();
      await ours.end();
      await raw.query(`DROP ROLE ${pg.escapeIdentifier(role)}`);
    }
  });

  it("migration 9 counts a listener of an earlier version (it never registers) until it disconnects; this version's own marked statements do not count", async () => {
    const namespace = freshSchema("bridge");
    schemas.push(namespace);
    const ids = identifiers(namespace, "data");
    const pool = new pg.Pool({ connectionString: server.url, max: 2 });
    const old = new pg.Client(server.url);
    const marked = new pg.Client(server.url);
    const reader = new pg.Client(server.url);
    await old.connect();
    await marked.connect();
    await reader.connect();
    try {
      await migrate(pool, ids, "data", namespace, "test", MIGRATIONS.filter((m) => m.version < 9));
      // An earlier version's listeners: one last sent LISTEN, one its cursor's snapshot read; this
      // version's listener: the same read, marked.
      await old.query(`LISTEN ${pg.escapeIdentifier(ids.channel)}`);
      await reader.query("SELECT pg_current_snapshot()::text AS snapshot");
      await marked.query(`${LISTENER_MARK} SELECT pg_current_snapshot()::text AS snapshot`);
      const readerPid = (await raw.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_current_snapshot()::text AS snapshot'")).rows[0]?.pid;
      expect(readerPid).toBeTypeOf("number");
      const oldPid = (await raw.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND query LIKE $1", [`%${ids.channel}%`])).rows[0]?.pid;
      expect(oldPid).toBeTypeOf("number");
      const result = await migrate(pool, ids, "data", namespace, "test");
      expect(result.applied).toEqual([9, 10]);
      const rows = (await raw.query<{ pid: number }>(`SELECT pid FROM ${ids.listeners}`)).rows.map((r) => r.pid);
      expect(rows).toContain(oldPid);
      expect(rows).toContain(readerPid);
      const markedPid = (await marked.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      expect(rows).not.toContain(markedPid);
      const put = statements(ids).put;
      await raw.query("SET dgent.origin = 'elsewhere'");
      await raw.query({ text: put.text, values: ["for-the-old-listener", Buffer.from("x"), 1, null, "{}"] });
      await raw.query("RESET dgent.origin");
      expect(await count(ids.changes)).toBe(1);
      await old.end();
      await until("the old listener's backend gone", async () => (await raw.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [oldPid])).rowCount === 0);
      const hub = new NotifyHub({ connectionString: server.url });
      const unsubscribe = await hub.subscribe(ids, { change: () => undefined, warning: () => undefined });
      expect((await raw.query<{ pid: number }>(`SELECT pid FROM ${ids.listeners}`)).rows.map((r) => r.pid)).not.toContain(oldPid);
      await unsubscribe();
      await hub.close();
    } finally {
      await old.end().catch(() => undefined);
      await marked.end();
      await reader.end();
      await pool.end();
    }
  });
});
