// An event stream: a bank account as events folded into its balance, with time travel,
// snapshots, an optimistic append that loses a race, and a subscriber — on the embedded default
// (SQLite under $XDG_DATA_HOME/dgent) with the change stream plugged in.
//
//   node examples/patterns/event-stream.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { openDefaultStore } from "dgent";
import { eventStream } from "dgent/patterns";
import { reactive } from "dgent/plugins/reactive";

const store = await openDefaultStore({ namespace: `event-stream-example-${process.pid}`, plugins: [reactive] });
const account = eventStream(store, {
  name: "account-42",
  initial: { balance: 0, moves: 0 },
  reducer: (s, e) => ({ balance: s.balance + (e.type === "deposit" ? e.amount : -e.amount), moves: s.moves + 1 }),
  snapshotEvery: 100,
});

const seen = [];
const stop = await account.subscribe((e) => void seen.push(`${e.seq}:${e.event.type}`));

const start = Date.UTC(2026, 0, 1);
for (let day = 0; day < 250; day++) await account.append({ type: day % 5 === 4 ? "withdraw" : "deposit", amount: 10 }, { at: start + day * 86_400_000 });
console.log(`after ${await account.version()} events: ${JSON.stringify(await account.state())}`);
console.log(`as of event 100: ${JSON.stringify(await account.stateAt({ seq: 100 }))}`);
const feb1 = await account.stateAt({ time: Date.UTC(2026, 1, 1) });
console.log(`as of 2026-02-01: ${JSON.stringify(feb1)}`);
assert.deepEqual(feb1, { balance: 32 * 10 - 2 * 6 * 10, moves: 32 });
assert.deepEqual(await account.state(), await account.foldAll());

// Two tellers read version 250 and both try to append: one wins, the other is told.
const results = await Promise.allSettled([
  account.append({ type: "withdraw", amount: 500 }, { expectedVersion: 250 }),
  account.append({ type: "withdraw", amount: 700 }, { expectedVersion: 250 }),
]);
const lost = results.find((r) => r.status === "rejected");
console.log(`optimistic appends: ${results.filter((r) => r.status === "fulfilled").length} won, 1 lost with ${lost.reason.code}`);
assert.equal(lost.reason.code, "DGENT_REF_CONFLICT");

// The subscriber saw every event once, in order (it runs as events land; wait for the last).
while (seen.length < 251) await new Promise((resolve) => setImmediate(resolve));
stop();
console.log(`the subscriber saw ${seen.length} events, the last ${seen.at(-1)}`);
assert.deepEqual(seen.map((s) => Number(s.split(":")[0])), Array.from({ length: 251 }, (_, i) => i + 1));

await store.deleteMany({ prefix: "stream/" });
await store.refs.delete("stream/account-42/head");
await store.close();
