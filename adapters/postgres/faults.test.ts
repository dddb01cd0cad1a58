import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isDgentError, type DgentError } from "../../core/errors.js";
import type { ChangeEvent } from "../../core/protocol.js";
import { createStore } from "../../core/store.js";
import { assertBuilt, freshSchema, runChild, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { postgresAdapter } from "./index.js";
import { NotifyHub, type ChangeMessage } from "./notify.js";
import { identifiers } from "./sql.js";
import { until } from "../../test/harness/until.js";

// This file stops and restarts its server, so it always runs its own cluster (never a shared URL).
let server: PostgresServer;
beforeAll(async () => {
  assertBuilt();
  server = await startPostgres({ owned: true });
});
afterAll(async () => {
  await server?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
describe("server restart", () => {
  it("mid-stream: writes fail with retryable DGENT_UNAVAILABLE, then recover; every acknowledged write is there", async () => {
    const namespace = freshSchema("restart");
    const adapter = postgresAdapter({ url: server.url, namespace, connectTimeoutMs: 15_000 });
    const store = createStore({ tiers: [adapter] });
    const warnings: string[] = [];
    const changes: ChangeEvent[] = [];
    store.hooks.warning.tap("test", (info) => {
      warnings.push(`${String(info.details?.reason)}: ${info.message}`);
    });
    store.hooks.externalChange.tap("test", (event) => {
      changes.push(event);
    });
    await store.open();

    const acked: string[] = [];
    const errors: unknown[] = [];
    let running = true;
    // Four writers, each retrying the same id after a failure (safe: a repeated identical put is a no-op).
    const writer = async (w: number) => {
      for (let i = 0; running; ) {
        const id = `w${w}/${String(i).padStart(6, "0")}`;
        try {
          await store.put({ id, content: Buffer.from(`payload ${id}`), createdAt: Date.now(), causalParent: null, metadata: { w: String(w) } });
          acked.push(id);
          i++;
        } catch (error) {
          errors.push(error);
          await sleep(25);
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);

    await until("200 acknowledged writes", () => acked.length >= 200);
    await server.stop(); // fast shutdown while puts are in flight
    await until("failures while the server is down", () => errors.length >= 8);
    expect(await adapter.probe()).toBe(false);
    const whileDown = acked.length;
    // Counted in attempts, not time: eight more puts fail, and none is acknowledged meanwhile.
    const failedBefore = errors.length;
    await until("eight more failures while the server is down", () => errors.length >= failedBefore + 8);
    expect(acked.length).toBe(whileDown); // nothing is acknowledged while the server is down

    await server.start();
    await until("200 more acknowledged writes after the restart", () => acked.length >= whileDown + 200);
    running = false;
    await Promise.all(writers);
    expect(await adapter.probe()).toBe(true);

    expect(errors.length).toBeGreaterThanOrEqual(8);
    for (const e of errors) {
      expect(isDgentError(e), String(e)).toBe(true);
      const err = e as DgentError;
      expect([err.code, err.retryable, err.unit], err.message).toEqual(["DGENT_UNAVAILABLE", true, "postgres-docker"]);
      expect(err.message).not.toContain(server.password);
    }

    // Every acknowledged write survived, exactly once, with its bytes.
    const listed = await store.list({ limit: 100_000 });
    const ids = new Set(listed.map((d) => d.id));
    expect(ids.size).toBe(listed.length);
    for (const id of acked) expect(ids.has(id), `acknowledged ${id} is missing`).toBe(true);
    for (const d of listed) expect(Buffer.from(d.content).toString()).toBe(`payload ${d.id}`);

    // The change listener came back by itself and says that it may have missed changes.
    await until("the listener to reconnect", () => warnings.some((w) => w.startsWith("listener-reconnected")));
    const r = await runChild("change", { options: { url: server.url, namespace }, id: "after-restart" });
    expect(r.code, r.stderr).toBe(0);
    await until("a change from another process after the restart", () => changes.some((c) => c.id === "after-restart"));
    await store.close();
  });

  it("an adapter opened while the server is down fails with DGENT_UNAVAILABLE and opens once it is back", async () => {
    await server.stop();
    const adapter = postgresAdapter({ url: server.url, namespace: freshSchema("late"), connectTimeoutMs: 15_000 });
    try {
      await expect(adapter.open()).rejects.toMatchObject({ code: "DGENT_UNAVAILABLE", retryable: true });
    } finally {
      await server.start();
    }
    await adapter.open();
    await adapter.put({ id: "x", content: new Uint8Array([1]), createdAt: 1, causalParent: null, metadata: {} });
    expect((await adapter.get("x"))?.content).toEqual(Buffer.from([1]));
    await adapter.close();
  });

  it("a crash, then a first subscribe to another channel before the listener's retry: the old channel is LISTENed again and warned of the gap once", async () => {
    const logs = [];
    for (const label of ["crash1", "crash2"]) {
      const namespace = freshSchema(label);
      const a = postgresAdapter({ url: server.url, namespace, listen: false });
      await a.open();
      await a.close();
      logs.push(identifiers(namespace, "data"));
    }
    const [one, two] = logs as [ReturnType<typeof identifiers>, ReturnType<typeof identifiers>];
    const applicationName = `dgent-test-${one.channel}`.slice(0, 63);
    const hub = new NotifyHub({ connectionString: server.url, application_name: applicationName });
    const seen: string[] = [];
    const warnings: unknown[] = [];
    const recorder = (name: string) => ({
      change: (m: ChangeMessage) => seen.push(`${name}:${m.id}`),
      warning: (_w: string, details?: Readonly<Record<string, unknown>>) => warnings.push(`${name}:${String(details?.reason)}`),
    });
    try {
      await hub.subscribe(one, recorder("one"));
      await server.crash(); // the UNLOGGED change log is empty after the recovery
      await until("the listener to notice", () => !hub.connected);
      await server.start();
      // Whichever connects first (this subscribe or the listener's retry), the first channel is
      // resumed on that connection before the subscribe returns: LISTEN again, and the warning.
      await hub.subscribe(two, recorder("two"));
      expect(warnings).toEqual(["one:listener-reconnected"]);
      expect(await hub.listeningChannels()).toEqual([one.channel, two.channel].sort());
      await server.query(
        `INSERT INTO ${one.changes} (xid, op, id, origin) VALUES (pg_current_xact_id(), 'put', 'after', 'elsewhere')`,
      );
      await server.query("SELECT pg_notify($1, 'elsewhere')", [one.channel]);
      await until("a change after the crash", () => seen.includes("one:after"));
      // Reported once: an ordinary reconnect later (no restart, nothing lost) warns of nothing.
      const killed = await server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [applicationName]);
      expect(killed.rowCount).toBe(1);
      await until("the listener to notice", () => !hub.connected);
      // `connected` turns true when the new connection is made, before its LISTENs have all been
      // sent: wait for both channels (a query between two of them would see only the first).
      await until("the listener's retry to LISTEN on both channels again", async () => hub.connected && (await hub.listeningChannels()).length === 2);
      expect(await hub.listeningChannels()).toEqual([one.channel, two.channel].sort());
      await server.query(
        `INSERT INTO ${one.changes} (xid, op, id, origin) VALUES (pg_current_xact_id(), 'put', 'later', 'elsewhere')`,
      );
      await until("a change after the second reconnect", () => seen.includes("one:later"));
      expect(warnings).toEqual(["one:listener-reconnected"]);
      expect(seen).toEqual(["one:after", "one:later"]);
    } finally {
      await hub.close();
    }
  }, 180_000);
});
