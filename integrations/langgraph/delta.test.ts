/**
 * A delta channel (LangGraph's `DeltaValue`: only each step's writes are stored, plus a snapshot
 * every N updates) on DgentSaver: the state read back is rebuilt from ancestor writes through
 * `getDeltaChannelHistory`, which DgentSaver answers from the causal chain a batch of ancestors
 * at a time — the same result as LangGraph's MemorySaver, in a handful of store calls.
 */
import { DeltaValue, END, MemorySaver, START, StateGraph, StateSchema } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createStore, type Store } from "../../core/store.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { DgentSaver } from "./index.js";

function counted(store: Store): { store: Store; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const proxy = new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function" || typeof key !== "string") return value;
      return (...args: unknown[]) => ((calls[key] = (calls[key] ?? 0) + 1), (value as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
  return { store: proxy, calls };
}

async function run(checkpointer: BaseCheckpointSaver, steps: number, snapshotFrequency: number) {
  const State = new StateSchema({
    n: z.number(),
    history: new DeltaValue(z.array(z.string()).default(() => []), {
      inputSchema: z.string(),
      reducer: (current: string[], writes: string[]) => [...current, ...writes],
      snapshotFrequency,
    }),
  });
  const graph = new StateGraph(State)
    .addNode("step", (s) => ({ n: s.n + 1, history: `s${s.n + 1}` }))
    .addEdge(START, "step")
    .addConditionalEdges("step", (s) => (s.n < steps ? "step" : END))
    .compile({ checkpointer });
  const config = { configurable: { thread_id: "delta" }, recursionLimit: 1000 };
  const out = await graph.invoke({ n: 0 }, config);
  const states = [];
  for await (const s of graph.getStateHistory(config)) states.push([s.metadata?.step, s.values]);
  const latest = await checkpointer.getTuple(config);
  const raw = await checkpointer.getDeltaChannelHistory({ config: latest!.config, channels: ["history", "n"] });
  // Task ids come from checkpoint ids, which are random: keep the channels and values.
  const history = Object.fromEntries(Object.entries(raw).map(([ch, h]) => [ch, { ...h, writes: h.writes.map(([, c, v]) => [c, v]) }]));
  return { out, states, history };
}

describe("a delta channel", () => {
  it.each([
    [23, 5],
    [40, 1000],
  ])("%i steps, a snapshot every %i updates: the same state, history and channel history as MemorySaver", async (steps, every) => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const dgent = await run(new DgentSaver({ store }), steps, every);
    const reference = await run(new MemorySaver(), steps, every);
    expect(dgent).toEqual(reference);
    expect(dgent.out.history).toEqual(Array.from({ length: steps }, (_, i) => `s${i + 1}`));
    // Without a snapshot in reach, the history is the writes all the way back.
    if (every > steps) expect(dgent.history.history?.writes.length).toBeGreaterThan(steps - 2);
    await store.close();
  });

  it("getDeltaChannelHistory reads ancestors in batches: a few store calls for a 60-step chain", async () => {
    const { store, calls } = counted(createStore({ tiers: [memoryAdapter()] }));
    const saver = new DgentSaver({ store });
    const { history } = await run(saver, 60, 1000);
    expect(history.history?.writes.map((w) => w[1])).toEqual(Array.from({ length: 60 }, (_, i) => `s${i + 1}`));
    for (const k of Object.keys(calls)) delete calls[k];
    const latest = await saver.getTuple({ configurable: { thread_id: "delta" } });
    for (const k of Object.keys(calls)) delete calls[k];
    await saver.getDeltaChannelHistory({ config: latest!.config, channels: ["history"] });
    // 62 ancestors in batches of 8, 16, 32, 64: per batch the chain and the writes (the values are in the checkpoints).
    expect(calls).toEqual({ get: 1, causalChain: 4, query: 4 });
  });
});
