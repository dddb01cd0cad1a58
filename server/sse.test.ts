import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { createStore, type Store } from "../core/store.js";
import { createServer, type DgentServer } from "./index.js";
import { numbered, putOverHttp, SseClient, type SseEvent } from "./test/sse-client.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const put = putOverHttp;

const data = (e: SseEvent) => JSON.parse(e.data) as { seq: number; op: string; key: string };
const changes = numbered;

describe("the change stream", () => {
  it("carries puts, deletes and ref moves in order, with increasing ids, filtered by prefix and tag", async () => {
    const store = createStore({ tiers: [memoryAdapter()], namespace: "live" });
    const server = await createServer(store, { auth: null });
    const url = await server.listen();
    try {
      const all = await SseClient.connect(`${url}/v1/ns/live/changes`);
      const threads = await SseClient.connect(`${url}/v1/ns/live/changes?prefix=thread/`);
      const users = await SseClient.connect(`${url}/v1/ns/live/changes?tag=role%3Duser`);
      await put(url, "live", "thread/1", { role: "user" });
      await put(url, "live", "note/1", { role: "user" });
      await put(url, "live", "thread/2", { role: "bot" });
      // A write from code in the same process is on the stream too.
      await store.delete("thread/1");
      const ref = await fetch(`${url}/v1/ns/live/refs/thread%2Fhead`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ target: "thread/2" }) });
      expect(ref.status).toBe(200);
      await all.until(() => changes(all).length === 5);
      expect(changes(all).map((e) => [e.id, e.event, data(e).key])).toEqual([
        ["1", "put", "thread/1"],
        ["2", "put", "note/1"],
        ["3", "put", "thread/2"],
        ["4", "delete", "thread/1"],
        ["5", "setRef", "thread/head"],
      ]);
      await threads.until(() => changes(threads).length === 4);
      expect(changes(threads).map((e) => e.id)).toEqual(["1", "3", "4", "5"]);
      // The delete carries the tags the datum had, so a tag filter sees it go.
      await users.until(() => changes(users).length === 3);
      expect(changes(users).map((e) => e.id)).toEqual(["1", "2", "4"]);
      expect(server.sseClients).toBe(3);
      for (const c of [all, threads, users]) c.close();
    } finally {
      await server.close();
      await store.close();
    }
  });

  it("resumes across a server restart with Last-Event-ID: no event lost, none repeated", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dgent-serve-sse-"));
    dirs.push(dir);
    const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, "data.db") })], namespace: "agent" });
    const openLog = () => createStore({ tiers: [sqliteAdapter({ path: join(dir, "changes.db") })], namespace: "changes" });
    let log = openLog();
    let server: DgentServer = await createServer(store, { auth: null, changeLog: log });
    let url = await server.listen();
    const first = await SseClient.connect(`${url}/v1/ns/agent/changes?after=0`);
    for (const id of ["a", "b", "c"]) await put(url, "agent", id);
    await first.until(() => changes(first).length === 3);
    const lastSeen = changes(first).at(-1)?.id as string;
    first.close();
    // Written while the client is away, then the server goes down.
    await put(url, "agent", "d");
    await put(url, "agent", "e");
    await server.close();
    await log.close();

    log = openLog();
    server = await createServer(store, { auth: null, changeLog: log });
    url = await server.listen();
    await put(url, "agent", "f"); // after the restart, before the client is back
    const again = await SseClient.connect(`${url}/v1/ns/agent/changes`, { "last-event-id": lastSeen });
    await again.until(() => changes(again).length === 3);
    await put(url, "agent", "g"); // live
    await again.until(() => changes(again).length === 4);
    const seen = [...changes(first), ...changes(again)];
    expect(seen.map((e) => [Number(e.id), data(e).key])).toEqual([
      [1, "a"],
      [2, "b"],
      [3, "c"],
      [4, "d"],
      [5, "e"],
      [6, "f"],
      [7, "g"],
    ]);
    again.close();
    await server.close();
    await log.close();
    await store.close();
  });

  it("sends heartbeats while nothing changes", async () => {
    const store = createStore({ tiers: [memoryAdapter()], namespace: "quiet" });
    const server = await createServer(store, { auth: null, heartbeatMs: 20 });
    const url = await server.listen();
    const c = await SseClient.connect(`${url}/v1/ns/quiet/changes`);
    await c.until(() => c.comments.filter((x) => x === "heartbeat").length >= 2);
    expect(c.events).toEqual([]);
    c.close();
    await server.close();
    await store.close();
  });

  it("drops a client that stops reading with a final dropped event, and its memory stays bounded", async () => {
    const store = createStore({ tiers: [memoryAdapter()], namespace: "flood" });
    const server = await createServer(store, { auth: null, maxQueue: 8 });
    const url = await server.listen();
    const slow = await SseClient.connect(`${url}/v1/ns/flood/changes`, {}, true);
    const big = "x".repeat(32 * 1024);
    // Lockstep: one put, then look; the socket buffers fill, then the queue, then the client is dropped.
    let n = 0;
    while (server.sseClients > 0 && n < 2000) await store.put({ id: `d/${n++}`, content: new Uint8Array(0), createdAt: 1, causalParent: null, metadata: { big } });
    expect(server.sseClients).toBe(0);
    expect(n).toBeLessThan(2000);
    slow.resume();
    await slow.until(() => slow.ended);
    const last = slow.events.at(-1) as SseEvent;
    expect(last.event).toBe("dropped");
    const body = JSON.parse(last.data) as { error: { code: string; details: { lastEventId: number } } };
    expect(body.error.code).toBe("DGENT_STREAM_OVERFLOW");
    const delivered = changes(slow).map((e) => Number(e.id));
    expect(delivered).toEqual(delivered.map((_, i) => i + 1));
    expect(body.error.details.lastEventId).toBe(delivered.length);
    // Resuming from there gives the rest, exactly.
    const resumed = await SseClient.connect(`${url}/v1/ns/flood/changes`, { "last-event-id": String(body.error.details.lastEventId) });
    await resumed.until(() => changes(resumed).length === n - delivered.length);
    expect(changes(resumed).map((e) => Number(e.id))).toEqual(Array.from({ length: n - delivered.length }, (_, i) => delivered.length + i + 1));
    resumed.close();
    await server.close();
    await store.close();
  });
});
