// The agent loop of patterns/README.md, as written there: conversation memory, a StateFunctor
// profile and an audit event stream on the embedded default (SQLite under $XDG_DATA_HOME/dgent).
//
//   node examples/patterns/agent-loop.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { openDefaultStore } from "dgent";
import { conversation, eventStream, liftLogic } from "dgent/patterns";

const store = await openDefaultStore({ namespace: `agent-loop-example-${process.pid}` });
const userId = "user-42";

const chat = conversation(store, { id: userId });
const profile = liftLogic(
  (message, s) => {
    const name = /my name is (\w+)/i.exec(message)?.[1] ?? s.name;
    return [name ? `Hello ${name}` : "Hello", { ...s, name, turns: s.turns + 1 }];
  },
  { store, key: `profile/${userId}`, initial: { name: null, plan: null, turns: 0 } },
);
const audit = eventStream(store, {
  name: `audit-${userId}`,
  initial: { toolCalls: 0 },
  reducer: (s) => ({ toolCalls: s.toolCalls + 1 }),
});

async function handle(message) {
  await chat.append("user", message);
  const greeting = await profile.invoke(message);
  const window = await chat.lastTurns(20);
  const reply = `${greeting} (${window.length} turns in view)`;
  await audit.append({ type: "tool", name: "model" });
  await chat.append("assistant", reply);
  return reply;
}

for (const message of ["hi", "my name is Ada", "what plans do you have?"]) console.log(`> ${message}\n< ${await handle(message)}`);

const turns = await chat.lastTurns(100);
console.log(`conversation: ${turns.length} turns; profile: ${JSON.stringify(await profile.state())}; audit: ${JSON.stringify(await audit.state())}`);
assert.equal(turns.length, 6);
assert.deepEqual(await profile.state(), { name: "Ada", plan: null, turns: 3 });
assert.deepEqual(await audit.state(), { toolCalls: 3 });
assert.match(turns.at(-1).content, /^Hello Ada \(5 turns in view\)$/);
await store.close();
