/**
 * The StateFunctor, event streams, the bounded history and conversation memory on Postgres (a throwaway cluster
 * from test/harness/postgres.ts), with two stores — two connection pools, as two processes would
 * have — writing the same keys at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { createStore, type Store } from "../../compose/index.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { conversation } from "../conversation/index.js";
import { eventStream } from "../events/index.js";
import { boundedHistory } from "../history/index.js";
import { liftLogic } from "./index.js";

let server: PostgresServer;
let schema: string;
let stores: Store[];
beforeAll(async () => {
  server = await startPostgres();
  schema = freshSchema("patterns_state");
  stores = [0, 1].map(() => createStore({ tiers: [postgresAdapter({ url: server.url, namespace: schema })] }));
  for (const s of stores) await s.open();
});
afterAll(async () => {
  for (const s of stores ?? []) await s.close();
  if (server) {
    await dropSchema(server, schema);
    await server.close();
  }
});

describe("patterns on Postgres, two stores writing at once", () => {
  it("StateFunctor: 4 agents over 2 pools × 50 concurrent steps end at exactly 200, the chain 1…200", async () => {
    const agents = [0, 1, 2, 3].map((i) => liftLogic((_x: null, s: { count: number }) => [s.count + 1, { count: s.count + 1 }] as const, { store: stores[i % 2]!, key: "pg-counter", initial: { count: 0 } }));
    const outputs = await Promise.all(agents.flatMap((a) => Array.from({ length: 50 }, () => a.invoke(null))));
    expect(outputs.sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect((await agents[1]!.history()).map((e) => e.state.count)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(await stores[0]!.count({ prefix: "state/pg-counter/" })).toBe(200);
  });

  it("event streams: 4 stream objects over 2 pools × 30 concurrent appends of the same event all land, at positions 1…120", async () => {
    const streams = [0, 1, 2, 3].map((i) => eventStream(stores[i % 2]!, { name: "pg-ticks", reducer: (n: number) => n + 1, initial: 0, snapshotEvery: 16 }));
    const at = Date.now(); // one time for all: only the writer tag tells the events apart
    const seqs = await Promise.all(streams.flatMap((s) => Array.from({ length: 30 }, () => s.append({ type: "tick" }, { at }))));
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(await streams[1]!.version()).toBe(120);
    expect(await streams[2]!.state()).toBe(120);
    expect(await streams[3]!.foldAll(57)).toBe(57);
    await expect(streams[0]!.append({ type: "tick" }, { expectedVersion: 119 })).rejects.toMatchObject({ code: "DGENT_REF_CONFLICT" });
    expect(await stores[0]!.count({ prefix: "stream/pg-ticks/e/" })).toBe(120);
  });

  it("bounded history: concurrent updates keep the bound; rollback moves the head back", async () => {
    const hs = stores.map((store) => boundedHistory<{ n: number }>(store, { key: "pg-history", keep: 5, initial: { n: 0 } }));
    await Promise.all(hs.flatMap((h) => Array.from({ length: 15 }, () => h.update((s) => ({ n: s.n + 1 })))));
    expect((await hs[0]!.states()).map((e) => e.state.n)).toEqual([26, 27, 28, 29, 30]);
    expect(await stores[1]!.count({ prefix: "state/pg-history/" })).toBe(5);
    expect((await hs[1]!.rollback(2))?.state).toEqual({ n: 28 });
    expect(await hs[0]!.load()).toEqual({ n: 28 });
  });

  it("conversation: concurrent appends through two pools all land on one chain; regenerate branches", async () => {
    const chats = stores.map((store) => conversation(store, { id: "pg-chat" }));
    const made = await Promise.all(chats.flatMap((c, k) => Array.from({ length: 10 }, (_, i) => c.append("user", `${k}:${i}`))));
    const path = await chats[0]!.lastTurns(50);
    expect(new Set(path.map((t) => t.id))).toEqual(new Set(made.map((t) => t.id)));
    const last = path.at(-1)!;
    const again = await chats[1]!.regenerate(last.id, "again");
    expect((await chats[0]!.siblings(last.id)).map((t) => t.id)).toEqual([last.id, again.id]);
  });
});
