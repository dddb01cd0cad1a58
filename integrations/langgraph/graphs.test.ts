/**
 * Real graphs (`StateGraph` from @langchain/langgraph) on DgentSaver, driven as a user would:
 * parallel branches with a failing branch resumed from its sibling's pending writes, a subgraph
 * interrupted and resumed, time travel (updateState on an earlier checkpoint, then re-running from
 * there), a delta channel rebuilt from ancestor writes, and deleteThread leaving nothing behind.
 * Each on memory, SQLite and S3 (a tier without transactions). Every scenario returns a
 * transcript of what a user sees (values, next nodes, history, pending writes; no random ids),
 * and runs on LangGraph's own MemorySaver too: the transcripts must be equal, and the test also
 * checks the transcript's key facts, so a saver and the reference cannot both be wrong quietly.
 * The restart test is restart.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Annotation, BaseCheckpointSaver, Command, END, interrupt, MemorySaver, START, StateGraph } from "@langchain/langgraph";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStore, type Store } from "../../core/store.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { s3Adapter } from "../../adapters/s3/index.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import { DgentSaver } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-lg-graphs-"));
let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3();
  await s3.createBucket("graphs");
});
afterAll(async () => {
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const tiers: Record<string, () => Store> = {
  memory: () => createStore({ tiers: [memoryAdapter()] }),
  sqlite: () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `${randomBytes(6).toString("hex")}.db`) })] }),
  s3: () => createStore({ tiers: [s3Adapter({ ...s3.clientOptions, bucket: "graphs", namespace: `g-${randomBytes(6).toString("hex")}`, retryBaseDelayMs: 5 })] }),
};

const Log = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});

const thread = (id: string) => ({ configurable: { thread_id: id } });

/** What a user sees of a thread's history: per checkpoint, newest first, its step, source, next nodes and values. */
async function historyOf(graph: { getStateHistory(c: object): AsyncIterableIterator<{ metadata?: { step?: number; source?: string }; next: string[]; values: unknown }> }, config: object) {
  const out = [];
  for await (const s of graph.getStateHistory(config)) out.push([s.metadata?.step, s.metadata?.source, s.next, s.values]);
  return out;
}

/** Parallel branches, one failing once: the sibling's result is kept as a pending write and not recomputed. */
async function parallel(checkpointer: BaseCheckpointSaver) {
  const calls = { a: 0, b: 0, join: 0 };
  let failB = true;
  const graph = new StateGraph(Log)
    .addNode("a", () => (calls.a++, { log: ["a"] }))
    .addNode("b", () => {
      calls.b++;
      if (failB) throw new Error("b is down");
      return { log: ["b"] };
    })
    .addNode("join", () => (calls.join++, { log: ["join"] }))
    .addEdge(START, "a")
    .addEdge(START, "b")
    .addEdge("a", "join")
    .addEdge("b", "join")
    .addEdge("join", END)
    .compile({ checkpointer });
  const config = thread("parallel");
  const error = await graph.invoke({ log: ["start"] }, config).then(() => null, (e: Error) => e.message);
  const failed = await checkpointer.getTuple(config);
  const pending = (failed?.pendingWrites ?? []).map(([, channel, value]) => [channel, channel === "__error__" ? "error" : value]).sort();
  const stuck = await graph.getState(config);
  failB = false;
  const out = await graph.invoke(null, config);
  return { error, pending, stuck: [stuck.next, stuck.values], out, calls: { ...calls }, history: await historyOf(graph, config) };
}

/** A subgraph that interrupts inside; resumed with a Command. */
async function subgraph(checkpointer: BaseCheckpointSaver) {
  const Inner = Annotation.Root({ name: Annotation<string>, greeting: Annotation<string> });
  const inner = new StateGraph(Inner)
    .addNode("ask", () => ({ name: interrupt<string, string>("what is your name?") }))
    .addNode("greet", (s) => ({ greeting: `hello, ${s.name}` }))
    .addEdge(START, "ask")
    .addEdge("ask", "greet")
    .addEdge("greet", END)
    .compile();
  const Outer = Annotation.Root({ name: Annotation<string>, greeting: Annotation<string>, done: Annotation<boolean> });
  const outer = new StateGraph(Outer)
    .addNode("inner", inner)
    .addNode("after", () => ({ done: true }))
    .addEdge(START, "inner")
    .addEdge("inner", "after")
    .addEdge("after", END)
    .compile({ checkpointer });
  const config = thread("subgraph");
  const first = await outer.invoke({ name: "" }, config);
  const state = await outer.getState(config, { subgraphs: true });
  const sub = state.tasks[0]?.state as { config: { configurable: { checkpoint_ns: string } }; next: string[]; values: unknown } | undefined;
  const ns = sub?.config.configurable.checkpoint_ns ?? "";
  const inSub = [];
  for await (const t of checkpointer.list({ configurable: { thread_id: "subgraph", checkpoint_ns: ns } })) inSub.push([t.metadata?.step, t.config.configurable?.checkpoint_ns === ns]);
  const out = await outer.invoke(new Command({ resume: "Ada" }), config);
  return {
    interrupt: (first as { __interrupt__?: Array<{ value: unknown }> }).__interrupt__?.map((i) => i.value),
    next: state.next,
    sub: [ns.split(":")[0], sub?.next, sub?.values],
    inSub,
    out,
    history: await historyOf(outer, config),
  };
}

/** Time travel: updateState on the checkpoint after the first step forks the thread; the fork runs on its own. */
async function timeTravel(checkpointer: BaseCheckpointSaver) {
  const Counter = Annotation.Root({
    n: Annotation<number>,
    trail: Annotation<number[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  });
  const graph = new StateGraph(Counter)
    .addNode("inc", (s) => ({ n: s.n + 1, trail: [s.n + 1] }))
    .addEdge(START, "inc")
    .addConditionalEdges("inc", (s) => (s.n < 3 ? "inc" : END))
    .compile({ checkpointer });
  const config = thread("travel");
  const first = await graph.invoke({ n: 0 }, config);
  const before = await historyOf(graph, config);
  const history = [];
  for await (const snapshot of graph.getStateHistory(config)) history.push(snapshot);
  const original = history[0]!;
  const afterFirst = history.find((s) => s.values.n === 1)!;
  // As if "inc" had produced n = -1: the conditional edge sends the fork round the loop again.
  const fork = await graph.updateState(afterFirst.config, { n: -1 });
  const forkParent = (await checkpointer.getTuple(fork))?.parentConfig?.configurable?.checkpoint_id === afterFirst.config.configurable?.checkpoint_id;
  const rerun = await graph.invoke(null, fork);
  return {
    first,
    rerun,
    forkParent,
    latest: (await graph.getState(config)).values,
    originalStill: (await graph.getState(original.config)).values,
    before,
    after: await historyOf(graph, config),
  };
}

describe.each(Object.keys(tiers))("real graphs on %s", (tier) => {
  const make = tiers[tier] as () => Store;

  async function both<T>(scenario: (c: BaseCheckpointSaver) => Promise<T>): Promise<{ dgent: T; reference: T; store: Store; saver: DgentSaver }> {
    const store = make();
    const saver = new DgentSaver({ store });
    const dgent = await scenario(saver);
    const reference = await scenario(new MemorySaver());
    expect(dgent).toEqual(reference);
    return { dgent, reference, store, saver };
  }

  it("parallel branches: a failed branch re-runs alone, its sibling's result comes from the pending writes", async () => {
    const { dgent, store } = await both(parallel);
    expect(dgent.error).toBe("b is down");
    // a's result is kept; b's failure is recorded as an error write.
    expect(dgent.pending.filter(([channel]) => channel === "log")).toEqual([["log", ["a"]]]);
    expect(dgent.pending.some(([channel]) => channel === "__error__")).toBe(true);
    expect(dgent.stuck).toEqual([["b"], { log: ["start", "a"] }]);
    expect(dgent.out).toEqual({ log: ["start", "a", "b", "join"] });
    expect(dgent.calls).toEqual({ a: 1, b: 2, join: 1 });
    await store.close();
  });

  it("a subgraph interrupted inside and resumed: its checkpoints live in their own namespace", async () => {
    const { dgent, store } = await both(subgraph);
    expect(dgent.interrupt).toEqual(["what is your name?"]);
    expect(dgent.next).toEqual(["inner"]);
    expect(dgent.sub.slice(0, 2)).toEqual(["inner", ["ask"]]);
    expect(dgent.inSub.length).toBeGreaterThan(0);
    expect(dgent.inSub.every(([, inNs]) => inNs)).toBe(true);
    expect(dgent.out).toEqual({ name: "Ada", greeting: "hello, Ada", done: true });
    // On dgent the subgraph's checkpoints are datums tagged with their namespace.
    const inner = await store.count({ where: { "lg.checkpoint": { prefix: '["inner:' } } });
    expect(inner).toBeGreaterThanOrEqual(dgent.inSub.length);
    expect(await store.count({ where: { "lg.checkpoint": JSON.stringify(["", "subgraph"]) } })).toBe(dgent.history.length);
    await store.close();
  });

  it("time travel: updateState on an earlier checkpoint forks, re-running it leaves the original branch as it was", async () => {
    const { dgent, store } = await both(timeTravel);
    expect(dgent.first).toEqual({ n: 3, trail: [1, 2, 3] });
    expect(dgent.forkParent).toBe(true);
    expect(dgent.rerun).toEqual({ n: 3, trail: [1, 0, 1, 2, 3] });
    expect(dgent.latest).toEqual(dgent.rerun);
    expect(dgent.originalStill).toEqual({ n: 3, trail: [1, 2, 3] });
    // The fork adds its checkpoints (the update, then four steps); the original ones are all still there, unchanged.
    expect(dgent.after.length).toBe(dgent.before.length + 5);
    expect(dgent.after.slice(-dgent.before.length)).toEqual(dgent.before);
    await store.close();
  });

  it("deleteThread leaves nothing of the thread (checkpoints, values, writes, refs) and nothing else is touched", async () => {
    const store = make();
    const saver = new DgentSaver({ store, latest: "ref" });
    const graph = new StateGraph(Log)
      .addNode("a", () => ({ log: ["a"] }))
      .addNode("b", () => ({ log: [interrupt<string, string>("go on?")] }))
      .addEdge(START, "a")
      .addEdge("a", "b")
      .addEdge("b", END)
      .compile({ checkpointer: saver });
    for (const id of ["gone", "gone/child", "kept"]) await graph.invoke({ log: [id] }, thread(id));
    await graph.invoke(new Command({ resume: "yes" }), thread("gone"));
    const prefix = saver.layout.thread("gone");
    expect(await store.count({ prefix })).toBeGreaterThan(0);
    expect((await store.refs.list(prefix)).length).toBe(1);

    await saver.deleteThread("gone");
    expect(await store.count({ prefix })).toBe(0);
    expect(await store.refs.list(prefix)).toEqual([]);
    expect(await saver.getTuple(thread("gone"))).toBeUndefined();
    // A thread whose id starts with the deleted one's, and any other thread, are untouched.
    expect((await graph.getState(thread("gone/child"))).values.log).toEqual(["gone/child", "a"]);
    expect((await graph.getState(thread("kept"))).next).toEqual(["b"]);
    await store.close();
  });
});
