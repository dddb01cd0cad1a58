// A LangGraph agent whose checkpoints and long-term memory live in dgent's embedded default
// (SQLite under $XDG_DATA_HOME/dgent). A refund request stops for a human's approval; a new
// saver — as after a restart — resumes it; time travel replays the decision the other way; the
// customer's preference is remembered across threads; deleting a thread leaves nothing behind.
//
//   npm run build && node examples/langgraph.mjs
import assert from "node:assert/strict";
import { Annotation, Command, END, interrupt, START, StateGraph } from "@langchain/langgraph";
import { DgentSaver, DgentStore } from "dgent/integrations/langgraph";

const NAMESPACE = process.env.DGENT_EXAMPLE_NAMESPACE ?? "langgraph-example";
const run = Date.now().toString(36);

const State = Annotation.Root({
  customer: Annotation(),
  request: Annotation(),
  amount: Annotation(),
  decision: Annotation(),
  reply: Annotation(),
});

function buildGraph(checkpointer, store) {
  return new StateGraph(State)
    .addNode("triage", (s) => ({ amount: Number(/\d+/.exec(s.request)?.[0] ?? 0) }))
    .addNode("approve", (s) => ({ decision: interrupt({ question: `refund ${s.amount} EUR to ${s.customer}?` }) }))
    .addNode("answer", async (s, config) => {
      const prefs = await config.store.get([s.customer, "prefs"], "contact");
      const via = prefs?.value.channel ?? "email";
      return { reply: s.decision === "yes" ? `refunded ${s.amount} EUR; we told you by ${via}` : `no refund; we told you by ${via}` };
    })
    .addEdge(START, "triage")
    .addEdge("triage", "approve")
    .addEdge("approve", "answer")
    .addEdge("answer", END)
    .compile({ checkpointer, store });
}

const memories = new DgentStore({ namespace: NAMESPACE });
await memories.put(["ada", "prefs"], "contact", { channel: "sms" });

// 1. The agent runs until it needs a human.
const config = { configurable: { thread_id: `refund-${run}` } };
const first = new DgentSaver({ namespace: NAMESPACE });
const asked = await buildGraph(first, memories).invoke({ customer: "ada", request: "please refund 40 EUR" }, config);
assert.deepEqual(asked.__interrupt__.map((i) => i.value), [{ question: "refund 40 EUR to ada?" }]);
console.log(`the agent asks: ${asked.__interrupt__[0].value.question}`);
await first.end();

// 2. Another saver on the same file (a restarted process would do the same) resumes the thread.
const saver = new DgentSaver({ namespace: NAMESPACE });
const graph = buildGraph(saver, memories);
const done = await graph.invoke(new Command({ resume: "yes" }), config);
assert.equal(done.reply, "refunded 40 EUR; we told you by sms");
console.log(`after the approval, in a new saver: ${done.reply}`);

// 3. The thread's history, newest first: one checkpoint per step.
const history = [];
for await (const snapshot of graph.getStateHistory(config)) history.push(snapshot);
assert.deepEqual(history.map((s) => s.metadata.step), [3, 2, 1, 0, -1]);
console.log(`history: ${history.map((s) => `step ${s.metadata.step}${s.next.length ? ` → ${s.next.join(", ")}` : " (done)"}`).join("; ")}`);

// 4. Time travel: back to the checkpoint that waited for approval, decided the other way (as if
//    the approval step had answered "no"), then run on from there.
const waiting = history.find((s) => s.next[0] === "approve");
const fork = await graph.updateState(waiting.config, { decision: "no" }, "approve");
const denied = await graph.invoke(null, fork);
assert.equal(denied.reply, "no refund; we told you by sms");
assert.equal((await graph.getState(history[0].config)).values.reply, "refunded 40 EUR; we told you by sms");
assert.equal((await graph.getState(config)).values.reply, denied.reply);
console.log(`forked at step ${waiting.metadata.step} with "no": ${denied.reply} (the first branch is still there)`);

// 5. Checkpoints are datums: the saver's list filters on metadata in the store's query.
const steps = async (filter) => {
  const out = [];
  for await (const t of saver.list(config, { filter })) out.push(t.metadata.step);
  return out;
};
const byLoop = await steps({ source: "loop" });
const byUpdate = await steps({ source: "update" });
assert.deepEqual(byUpdate, [2]);
console.log(`checkpoints of the thread made by the loop: steps ${byLoop.join(", ")}; by updateState: step ${byUpdate.join(", ")}`);

// 6. Deleting the thread removes every checkpoint, value and write of it.
const store = await saver.store();
const prefix = saver.layout.thread(`refund-${run}`);
const before = await store.count({ prefix });
await saver.deleteThread(`refund-${run}`);
assert.equal(await store.count({ prefix }), 0);
assert.equal(await saver.getTuple(config), undefined);
console.log(`deleted the thread: ${before} datums before, 0 after; ada's preference is still ${(await memories.get(["ada", "prefs"], "contact")).value.channel}`);

await saver.end();
await memories.end();
