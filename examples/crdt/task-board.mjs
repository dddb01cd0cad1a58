// A task board shared by agents, two ways. Claiming a task must have exactly one winner, so it is
// a ref moved by compare-and-set: the second claimant is told it lost. The board's tags — which
// skills each task needs — are edited by many agents at once and only need to converge, so they
// are an OR-Map of OR-Sets: concurrent edits all apply, a remove takes back what its agent had
// seen, and a concurrent add wins.
//
//   node examples/crdt/task-board.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStore, makeDatum, sqliteAdapter } from "dgent";
import { orMap } from "dgent/patterns";

const dir = mkdtempSync(join(tmpdir(), "dgent-task-board-"));
const path = join(dir, "board.db");
const agents = await Promise.all(
  ["planner", "coder", "reviewer"].map(async (name) => {
    const store = createStore({ tiers: [sqliteAdapter({ path })], actor: name });
    await store.open();
    return { name, store, tags: orMap(store, { name: "task-tags", values: "orset", replica: name }) };
  }),
);
const [planner, coder, reviewer] = agents;

// 1. Tags: every agent edits at once; all edits apply.
await planner.tags.add("task-1", "python");
await Promise.all([coder.tags.add("task-1", "tests"), reviewer.tags.add("task-1", "security"), planner.tags.add("task-2", "docs")]);
console.log(`tags: ${JSON.stringify(await coder.tags.value())}`);

// The reviewer removes "python" while the coder, who has not seen that, adds it again: add wins.
await reviewer.tags.value(); // the reviewer sees "python"
await Promise.all([reviewer.tags.remove("task-1", "python"), coder.tags.add("task-1", "python")]);
const tags = await planner.tags.value();
console.log(`after a concurrent remove and add: task-1 = ${tags["task-1"].join(", ")}`);
assert.deepEqual(tags["task-1"], ["python", "security", "tests"]);

// 2. Claims: one winner, by compare-and-set on a ref.
const claim = async (agent, task) => {
  const note = makeDatum({ content: `${agent.name} takes ${task}` });
  await agent.store.put(note);
  await agent.store.refs.set(`claims/${task}`, note.id, { expect: { absent: true } });
  return agent.name;
};
const results = await Promise.allSettled([claim(coder, "task-1"), claim(reviewer, "task-1")]);
const won = results.filter((r) => r.status === "fulfilled").map((r) => r.value);
const lost = results.find((r) => r.status === "rejected");
console.log(`claims on task-1: ${won.length} won (${won[0]}), 1 lost with ${lost.reason.code}`);
assert.equal(lost.reason.code, "DGENT_REF_CONFLICT");

for (const a of agents) await a.store.close();
rmSync(dir, { recursive: true, force: true });
