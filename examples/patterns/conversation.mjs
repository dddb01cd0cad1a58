// Conversation memory: turns chained by causal parent, the current turn a ref, a regenerated
// reply a sibling branch, the prompt window from the chain's tail. On the embedded default
// (SQLite under $XDG_DATA_HOME/dgent).
//
//   node examples/patterns/conversation.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { openDefaultStore } from "dgent";
import { conversation } from "dgent/patterns";

const store = await openDefaultStore({ namespace: `conversation-example-${process.pid}` });
const chat = conversation(store, { id: "user-42" });

await chat.append("system", "You are terse.");
const q = await chat.append("user", "Name a colour.");
const blue = await chat.append("assistant", "Blue.");

// The user asks for another answer: a sibling of "Blue.", now the current branch.
const green = await chat.regenerate(blue.id, "Green.");
const branches = await chat.branches(q.id);
console.log(`replies to ${JSON.stringify(q.content)}: ${branches.map((t) => JSON.stringify(t.content)).join(", ")}`);
assert.deepEqual(branches.map((t) => t.id), [blue.id, green.id]);

await chat.append("user", "Why that one?");
await chat.append("assistant", "It is calm.");
const window = await chat.lastTurns(3);
console.log("prompt window (last 3 turns):");
for (const t of window) console.log(`  ${t.role}: ${t.content}`);
assert.deepEqual(window.map((t) => t.content), ["Green.", "Why that one?", "It is calm."]);

// Back to the first answer: appends continue from there.
await chat.checkout(blue.id);
const why = await chat.append("user", "Why blue?");
assert.equal(why.parent, blue.id);
console.log(`on the first branch: ${(await chat.path()).map((t) => t.content).join(" / ")}`);

// Two writers appending at once lose no turn.
const other = conversation(store, { id: "user-42" });
await Promise.all([chat.append("user", "one"), other.append("user", "two"), chat.append("user", "three")]);
const last = await chat.lastTurns(3);
console.log(`after three concurrent appends the branch ends with: ${last.map((t) => t.content).join(", ")}`);
assert.deepEqual(new Set(last.map((t) => t.content)), new Set(["one", "two", "three"]));

const { items } = await chat.turns({ limit: 100 });
console.log(`${items.length} turns in all branches`);
assert.equal(items.length, 10);
console.log(`cleared ${await chat.clear()} turns`);
await store.close();
