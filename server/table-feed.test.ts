/**
 * The change stream of a store whose one tier is SQLite: read from the file's change table,
 * written by the tier inside each writing transaction (adapters/sqlite/changes.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteAdapter, type ChangeTable, type SqliteAdapter } from "../adapters/sqlite/index.js";
import { isDgentError } from "../core/errors.js";
import { createStore, type Store } from "../core/store.js";
import { createServer } from "./index.js";
import { numbered, putOverHttp, SseClient, type SseEvent } from "./test/sse-client.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const file = () => {
  const dir = mkdtempSync(join(tmpdir(), "dgent-table-feed-"));
  dirs.push(dir);
  return join(dir, "data.db");
};

const put = putOverHttp;

interface Event {
  seq: number;
  op: string;
  key: string;
  metadata?: Record<string, string>;
  target?: string;
  version?: number;
  createdAt?: number;
  causalParent?: string | null;
}
const data = (e: SseEvent) => JSON.parse(e.data) as Event;
const changes = numbered;
const datum = (id: string, metadata: Record<string, string> = {}) => ({ id, content: Buffer.from(id), createdAt: 5, causalParent: null, metadata });

describe("the change stream of a SQLite store (the file's change table)", () => {
  it("carries puts, deletes and ref moves from HTTP, from code and from another connection, in order, with the tags of what was deleted", async () => {
    const path = file();
    const adapter = sqliteAdapter({ path });
    const store = createStore({ tiers: [adapter], namespace: "live" });
    const server = await createServer(store, { auth: null });
    const url = await server.listen();
    // Another connection to the same file (another process would do the same).
    const other: Store = createStore({ tiers: [sqliteAdapter({ path })], namespace: "live" });
    try {
      const all = await SseClient.connect(`${url}/v1/ns/live/changes`);
      const users = await SseClient.connect(`${url}/v1/ns/live/changes?tag=role%3Duser`);
      await put(url, "live", "thread/1", { role: "user" });
      await put(url, "live", "thread/2", { role: "bot" });
      await put(url, "live", "thread/2", { role: "bot" }); // the same datum again: nothing changed, no event
      await store.delete("thread/1");
      await store.delete("thread/1"); // gone already: no event
      const ref = await fetch(`${url}/v1/ns/live/refs/thread%2Fhead`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ target: "thread/2" }) });
      expect(ref.status).toBe(200);
      await other.put(datum("elsewhere/1", { role: "user" }));
      await all.until(() => changes(all).length === 5);
      expect(changes(all).map((e) => [e.id, e.event, data(e).key])).toEqual([
        ["1", "put", "thread/1"],
        ["2", "put", "thread/2"],
        ["3", "delete", "thread/1"],
        ["4", "setRef", "thread/head"],
        ["5", "put", "elsewhere/1"],
      ]);
      const [first, , deleted, moved, elsewhere] = changes(all).map(data);
      expect(first).toMatchObject({ seq: 1, metadata: { role: "user" }, createdAt: 1, causalParent: null });
      expect(deleted).toMatchObject({ metadata: { role: "user" } });
      expect(moved).toMatchObject({ target: "thread/2", version: 1 });
      expect(elsewhere).toMatchObject({ metadata: { role: "user" }, createdAt: 5 });
      // The delete carries the tags the datum had, so a tag filter sees it go.
      await users.until(() => changes(users).length === 3);
      expect(changes(users).map((e) => e.id)).toEqual(["1", "3", "5"]);
      for (const c of [all, users]) c.close();
      const info = (await (await fetch(`${url}/v1/ns/live/info`)).json()) as { lastEventId: number };
      expect(info.lastEventId).toBe(5);
    } finally {
      await server.close();
      await other.close();
      await store.close();
    }
  });

  it("logs inside the writing transaction: a transaction refused by its expectation leaves no event, a committed one leaves all of its own", async () => {
    const adapter: SqliteAdapter = sqliteAdapter({ path: file() });
    const store = createStore({ tiers: [adapter], namespace: "tx" });
    await store.open();
    const table = adapter.changeTable() as ChangeTable;
    expect(table.last()).toBe(0);
    await store.transaction([
      { op: "put", datum: datum("a") },
      { op: "put", datum: datum("b") },
      { op: "setRef", name: "head", target: "b", expect: { absent: true } },
    ]);
    expect(table.last()).toBe(3);
    const refused = await store
      .transaction([
        { op: "put", datum: datum("c") },
        { op: "setRef", name: "head", target: "c", expect: { version: 7 } },
      ])
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(isDgentError(refused) && refused.code).toBe("DGENT_REF_CONFLICT");
    expect(await store.get("c")).toBeNull();
    expect(table.last()).toBe(3);
    expect(table.since(0, 10, 10).map((r) => r.op)).toEqual(["put", "put", "setRef"]);
    await store.refs.delete("head");
    expect(table.since(3, 4, 1)).toEqual([{ seq: 4, op: "deleteRef", key: "head", at: expect.any(Number) }]);
    await store.close();
  });

  it("keeps the newest changeRetention events; numbers keep growing after pruning and across restarts; a resume from before the oldest gets a reset", async () => {
    const path = file();
    let store = createStore({ tiers: [sqliteAdapter({ path })], namespace: "kept" });
    let server = await createServer(store, { auth: null, changeRetention: 5 });
    let url = await server.listen();
    for (let i = 1; i <= 12; i++) await put(url, "kept", `d/${i}`);
    await server.close();
    await store.close();

    // On start the server prunes to its retention.
    store = createStore({ tiers: [sqliteAdapter({ path })], namespace: "kept" });
    server = await createServer(store, { auth: null, changeRetention: 5 });
    url = await server.listen();
    const resumed = await SseClient.connect(`${url}/v1/ns/kept/changes`, { "last-event-id": "9" });
    await put(url, "kept", "d/13");
    await resumed.until(() => changes(resumed).length === 4);
    expect(changes(resumed).map((e) => [Number(e.id), data(e).key])).toEqual([
      [10, "d/10"],
      [11, "d/11"],
      [12, "d/12"],
      [13, "d/13"],
    ]);
    const late = await SseClient.connect(`${url}/v1/ns/kept/changes`, { "last-event-id": "2" });
    await late.until(() => late.events.some((e) => e.event === "reset"));
    const reset = JSON.parse((late.events.find((e) => e.event === "reset") as SseEvent).data) as { error: { code: string; details: { oldest: number } } };
    expect(reset.error.code).toBe("DGENT_STREAM_OVERFLOW");
    expect(reset.error.details.oldest).toBe(8);
    for (const c of [resumed, late]) c.close();
    await server.close();
    // Delete everything kept: the next event still gets the next number.
    const adapter = sqliteAdapter({ path });
    await adapter.open();
    const table = adapter.changeTable() as ChangeTable;
    expect(table.prune(table.last() + 1)).toBe(5); // 8–12 go; the newest stays, to carry the numbering
    expect(table.oldest()).toBe(13);
    expect(table.last()).toBe(13);
    await adapter.put(datum("d/14"));
    expect(table.last()).toBe(14);
    await adapter.close();
    await store.close();
  });

  it("serves a read-only file: without a change table its stream is empty and nothing is created; with one (made by a writer) it replays it", async () => {
    const path = file();
    const writer = createStore({ tiers: [sqliteAdapter({ path })], namespace: "ro" });
    await writer.put(datum("a"));
    await writer.close();
    const objects = () => {
      const a = sqliteAdapter({ path, readonly: true });
      return a.open().then(async () => {
        const table = a.changeTable();
        await a.close();
        return table;
      });
    };
    expect(await objects()).toBeNull();

    let store = createStore({ tiers: [sqliteAdapter({ path, readonly: true })], namespace: "ro" });
    let server = await createServer(store, { auth: null });
    let url = await server.listen();
    const got = await fetch(`${url}/v1/ns/ro/datums/a`);
    expect(got.status).toBe(200);
    const info = (await (await fetch(`${url}/v1/ns/ro/info`)).json()) as { lastEventId: number };
    expect(info.lastEventId).toBe(0);
    await server.close();
    await store.close();
    expect(await objects()).toBeNull();

    // A writer's server creates the table; a read-only server then replays what it holds.
    store = createStore({ tiers: [sqliteAdapter({ path })], namespace: "ro" });
    server = await createServer(store, { auth: null });
    url = await server.listen();
    await put(url, "ro", "b");
    await server.close();
    await store.close();
    store = createStore({ tiers: [sqliteAdapter({ path, readonly: true })], namespace: "ro" });
    server = await createServer(store, { auth: null });
    url = await server.listen();
    const replay = await SseClient.connect(`${url}/v1/ns/ro/changes?after=0`);
    await replay.until(() => changes(replay).length === 1);
    expect(changes(replay).map((e) => [e.id, data(e).key])).toEqual([["1", "b"]]);
    replay.close();
    await server.close();
    await store.close();
  });
});
