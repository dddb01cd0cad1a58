// A LangGraph-style checkpointer on dgent's public API, on the embedded default (SQLite under
// $XDG_DATA_HOME/dgent): each thread's checkpoints are datums chained by causal parent, the
// thread's head is a ref moved by compare-and-set in the same transaction as the checkpoint, and
// the checkpointer's `list(config, { filter, before, limit })` is one query with a cursor.
//
//   node examples/checkpoints.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { contentText, makeDatum, openDefaultStore } from "dgent";

const NAMESPACE = process.env.DGENT_EXAMPLE_NAMESPACE ?? `checkpoints-example-${process.pid}`;
const store = await openDefaultStore({ namespace: NAMESPACE });

const checkpointId = (thread, step) => `ckpt/${thread}/${String(step).padStart(6, "0")}`;

/** put(config, checkpoint, metadata): the checkpoint and the head move, all or nothing. */
async function putCheckpoint(thread, step, state, source, parentId) {
  const head = await store.refs.get(`thread/${thread}/head`);
  const datum = makeDatum({
    id: checkpointId(thread, step) + (parentId && head && head.target !== parentId ? "-fork" : ""),
    content: JSON.stringify(state),
    causalParent: parentId,
    metadata: { thread_id: thread, checkpoint_ns: "", source, step: String(step) },
  });
  await store.transaction((tx) => {
    tx.put(datum).setRef(`thread/${thread}/head`, datum.id, { expect: head ? { version: head.version } : { absent: true } });
  });
  return datum.id;
}

/** getTuple(config): the thread's latest checkpoint. */
async function latest(thread) {
  const head = await store.refs.get(`thread/${thread}/head`);
  return head ? store.get(head.target) : null;
}

/** list(config, { filter, before, limit }): newest first, strictly before `before`. */
async function listCheckpoints(thread, { filter = {}, before, limit } = {}) {
  const page = await store.query({
    prefix: `ckpt/${thread}/`,
    where: filter,
    ...(before ? { idRange: { lt: before } } : {}),
    ...(limit ? { limit } : {}),
  });
  return page.items;
}

// Three threads, twelve steps each: an input checkpoint, then the loop.
for (const thread of ["t1", "t2", "t3"]) {
  let parent = null;
  for (let step = 0; step < 12; step++) {
    parent = await putCheckpoint(thread, step, { messages: step + 1 }, step === 0 ? "input" : "loop", parent);
  }
}

const head = await latest("t2");
console.log(`thread t2 is at ${head.id} (step ${head.metadata.step}): ${contentText(head)}`);
assert.equal(head.id, checkpointId("t2", 11));

const before = await listCheckpoints("t2", { filter: { source: "loop" }, before: checkpointId("t2", 5), limit: 3 });
console.log(`t2, source=loop, before step 5, limit 3: ${before.map((d) => d.metadata.step).join(", ")}`);
assert.deepEqual(before.map((d) => d.metadata.step), ["4", "3", "2"]);

// Page a thread's whole history oldest first, four at a time, ids only.
const seen = [];
let cursor = null;
do {
  const page = await store.query({ prefix: "ckpt/t3/", order: "oldest", limit: 4, select: "ids", cursor });
  seen.push(...page.items);
  cursor = page.cursor;
} while (cursor);
console.log(`t3 paged oldest first: ${seen.length} checkpoints in ${Math.ceil(seen.length / 4)} pages`);
assert.equal(seen.length, 12);

// A fork: a second checkpoint from step 8 of t1 (a human edited the state). Both are children of step 8.
const fork = await putCheckpoint("t1", 9, { messages: 9, edited: true }, "update", checkpointId("t1", 8));
const branches = await store.children(checkpointId("t1", 8), { select: "ids", order: "oldest" });
console.log(`t1 step 8 has ${branches.items.length} children: ${branches.items.join(", ")}`);
assert.deepEqual(branches.items, [checkpointId("t1", 9), fork]);

// The last three steps of the fork's history, whatever its depth.
const tail = await store.causalChain(fork, { tail: 3 });
console.log(`the fork's last 3 steps: ${tail.map((d) => d.metadata.step).join(" → ")}`);
assert.deepEqual(tail.map((d) => d.metadata.step), ["7", "8", "9"]);

console.log(`checkpoints per thread: t1=${await store.count({ where: { thread_id: "t1" } })} t2=${await store.count({ where: { thread_id: "t2" } })}`);

// deleteThread(t2): every checkpoint in one transaction, then the head.
const deleted = await store.deleteMany({ where: { thread_id: "t2" } });
await store.refs.delete("thread/t2/head");
console.log(`deleted thread t2: ${deleted} checkpoints; t2 now has ${await store.count({ prefix: "ckpt/t2/" })}`);
assert.equal(deleted, 12);

await store.deleteMany({ all: true });
for (const ref of await store.refs.list("thread/")) await store.refs.delete(ref.name);
await store.close();
