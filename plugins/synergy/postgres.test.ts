import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { makeDatum } from "../../core/datum.js";
import type { WarningInfo } from "../../core/hooks.js";
import { createStore } from "../../core/store.js";
import { dropSchema, freshSchema, runChild, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { until } from "../../test/plugins-support.js";
import { PROCESS_ORIGIN, synergy, synergyBus, type StoredEvent, type SynergyEvent, synergyPlugin } from "./index.js";

// A real server (test/harness/postgres.ts); the child imports the built package (dist/).
const CHILD = new URL("./fixtures/child-bus.mjs", import.meta.url);
let server: PostgresServer;
const schemas: string[] = [];
beforeAll(async () => {
  if (!existsSync(new URL("../../dist/plugins/synergy/index.js", import.meta.url))) {
    throw new Error("dist/plugins/synergy is missing: the child process imports the built package; run `npx tsc -p tsconfig.json` first");
  }
  server = await startPostgres({ owned: true });
});
afterAll(async () => {
  for (const s of schemas) if (server) await dropSchema(server, s);
  await server?.close();
});

let n = 0;
const channel = () => `synergy_test_${process.pid}_${n++}`;
const busName = () => `pg-${process.pid}-${n++}`;

// Writes wait for their events to be published however slow the machine (an hour-long
// timeoutMs), so a write that returned has its NOTIFY committed: the tests' order is the writes'.
function bridged(bus: string, ch: string, extra: Record<string, unknown> = {}) {
  const store = createStore({
    tiers: [memoryAdapter()],
    namespace: bus,
    plugins: [synergyPlugin({ bus, timeoutMs: 3_600_000, postgres: { url: server.url, channel: ch }, ...extra })],
  });
  const warnings: WarningInfo[] = [];
  store.hooks.warning.tap("test", (w) => void warnings.push(w));
  return { store, warnings, bus: synergyBus(bus) };
}

interface Child {
  lines: string[];
  exited: Promise<number | null>;
  stderr(): string;
}
function child(args: Record<string, unknown>): Child {
  const p = spawn(process.execPath, [CHILD.pathname, JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let buffer = "";
  let err = "";
  p.stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    lines.push(...parts);
  });
  p.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  return { lines, exited: new Promise((r) => p.on("exit", (code) => r(code))), stderr: () => err };
}

describe("synergy across processes (Postgres LISTEN/NOTIFY)", () => {
  it("an event stored in another process reaches this process's listeners, marked remote", async () => {
    const ch = channel();
    const { store, bus } = bridged(busName(), ch);
    const handle = await store.plugin(synergy);
    expect(handle.crossProcess).toBe(true);
    const heard = bus.once("stored", (e) => e.id === "from-child");
    const c = child({ url: server.url, channel: ch, id: "from-child", metadata: { role: "planner" } });
    const event = await heard;
    expect(await c.exited, c.stderr()).toBe(0);
    expect(event).toMatchObject({ type: "stored", id: "from-child", metadata: { role: "planner" }, namespace: "child", remote: true });
    expect(event.origin).not.toBe(PROCESS_ORIGIN);
    expect(event.origin).toContain(`/`);
    expect(handle.stats().received).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  it("an event stored here reaches a listener in another process", async () => {
    const ch = channel();
    const { store } = bridged(busName(), ch);
    await store.open();
    const c = child({ url: server.url, channel: ch, id: "child-own", listen: true });
    await until("the child listening", () => c.lines.includes("ready"), 20_000);
    const d = makeDatum({ content: "from the parent", metadata: { step: "7" } });
    await store.put(d);
    await until("the child hearing it", () => c.lines.length >= 2, 20_000);
    const heard = JSON.parse(c.lines[1] as string) as StoredEvent;
    expect(heard).toMatchObject({ type: "stored", id: d.id, metadata: { step: "7" }, remote: true, origin: PROCESS_ORIGIN });
    expect(await c.exited, c.stderr()).toBe(0);
    expect((await store.plugin(synergy)).stats().published).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  it("two buses on one channel exchange events both ways, and nobody hears its own echo", async () => {
    const ch = channel();
    const a = bridged(busName(), ch);
    const b = bridged(busName(), ch);
    await a.store.open();
    await b.store.open();
    const onA: SynergyEvent[] = [];
    const onB: SynergyEvent[] = [];
    a.bus.on("*", (e) => void onA.push(e));
    b.bus.on("*", (e) => void onB.push(e));
    const da = makeDatum({ content: "a", id: "on-a" });
    const db = makeDatum({ content: "b", id: "on-b" });
    await a.store.put(da);
    await b.store.put(db);
    await a.store.delete(da.id);
    await until("remote events", () => onA.some((e) => e.remote) && onB.filter((e) => e.remote).length === 2);
    // End markers, one from each side, sent after everything above was heard (so committed):
    // Postgres delivers notifications in commit order, so once each side hears the other's
    // marker, any echo of its own events or any extra event would have arrived before it.
    await a.store.put(makeDatum({ content: "end", id: "end-a" }));
    await b.store.put(makeDatum({ content: "end", id: "end-b" }));
    const isEnd = (e: SynergyEvent) => "id" in e && e.id.startsWith("end-");
    await until("the end markers", () => onA.some((e) => e.remote && isEnd(e)) && onB.some((e) => e.remote && isEnd(e)));
    expect(onA.filter(isEnd).map((e) => `${"id" in e ? e.id : ""} ${e.remote ? "remote" : "local"}`).sort()).toEqual(["end-a local", "end-b remote"]);
    expect(onB.filter(isEnd).map((e) => `${"id" in e ? e.id : ""} ${e.remote ? "remote" : "local"}`).sort()).toEqual(["end-a remote", "end-b local"]);
    // Local and remote events interleave as the network decides; each side's own order is kept.
    const seen = (events: SynergyEvent[]) => events.filter((e) => !isEnd(e)).map((e) => `${e.type} ${"id" in e ? e.id : ""} ${e.remote ? "remote" : "local"}`);
    expect(seen(onA).sort()).toEqual(["deleted on-a local", "stored on-a local", "stored on-b remote"]);
    expect(seen(onB).sort()).toEqual(["deleted on-a remote", "stored on-a remote", "stored on-b local"]);
    expect(seen(onB).filter((e) => e.endsWith("remote"))).toEqual(["stored on-a remote", "deleted on-a remote"]);
    await a.store.close();
    await b.store.close();
  });

  it("metadata too big for a NOTIFY is cut, the event still goes", async () => {
    const ch = channel();
    const a = bridged(busName(), ch);
    const b = bridged(busName(), ch);
    await a.store.open();
    await b.store.open();
    const heard = b.bus.once("stored", (e) => e.remote);
    await a.store.put(makeDatum({ content: "x", id: "fat", metadata: { blob: "m".repeat(10_000) } }));
    const event = await heard;
    expect(event).toMatchObject({ id: "fat", metadata: {}, truncated: true });
    await a.store.close();
    await b.store.close();
  });

  it("an unreachable server is reported, never fails a write; the bus reconnects after a restart", async () => {
    // Unreachable: a port nothing listens on.
    const dead = createStore({
      tiers: [memoryAdapter()],
      plugins: [synergyPlugin({ bus: busName(), timeoutMs: 200, postgres: { url: "postgres://postgres:pw@127.0.0.1:1/postgres" } })],
    });
    const deadWarnings: WarningInfo[] = [];
    dead.hooks.warning.tap("test", (w) => void deadWarnings.push(w));
    const d = makeDatum({ content: "still written" });
    expect(await dead.put(d)).toBe(d.id);
    expect(await dead.get(d.id)).not.toBeNull();
    expect(deadWarnings.some((w) => w.message.includes("cannot reach Postgres"))).toBe(true);
    expect(deadWarnings.every((w) => !w.message.includes("pw@"))).toBe(true);
    await dead.close();

    // Restart: the listener reconnects, says events may have been missed, and works again.
    const ch = channel();
    const a = bridged(busName(), ch);
    const b = bridged(busName(), ch);
    await a.store.open();
    await b.store.open();
    await server.stop();
    await server.start();
    await until("reconnected", () => b.warnings.some((w) => w.details?.reason === "listener-reconnected"), 20_000);
    await until("a reconnected", () => a.warnings.some((w) => w.details?.reason === "listener-reconnected"), 20_000);
    const heard = b.bus.once("stored", (e) => e.remote && e.id === "after-restart");
    await a.store.put(makeDatum({ content: "x", id: "after-restart" }));
    expect((await heard).id).toBe("after-restart");
    await a.store.close();
    await b.store.close();
  });

  it("externalChanges: changes a Postgres tier saw another process make become remote events", async () => {
    const namespace = freshSchema("synergy_ext");
    schemas.push(namespace);
    const bus = busName();
    const store = createStore({
      tiers: [postgresAdapter({ url: server.url, namespace })],
      plugins: [synergyPlugin({ bus, externalChanges: true })],
    });
    await store.open();
    const events: SynergyEvent[] = [];
    synergyBus(bus).on("*", (e) => void events.push(e));
    const r = await runChild("change", { options: { url: server.url, namespace }, id: "ext-1", delete: true });
    expect(r.code, r.stderr).toBe(0);
    await until("two external events", () => events.length === 2);
    expect(events.map((e) => [e.type, "id" in e ? e.id : "", e.remote])).toEqual([
      ["stored", "ext-1", true],
      ["deleted", "ext-1", true],
    ]);
    await store.close();
  });
});
