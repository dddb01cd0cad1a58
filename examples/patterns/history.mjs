// Bounded history (VolatileAgent-style): the last N states of a key with cheap rollback. In
// memory it is volatile, as in the seed; the same code on SQLite survives restarts.
//
//   node examples/patterns/history.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { createStore, memoryAdapter, openDefaultStore } from "dgent";
import { boundedHistory } from "dgent/patterns";

const volatile = createStore({ tiers: [memoryAdapter()] });
const draft = boundedHistory(volatile, { key: "draft", keep: 3, initial: { text: "" } });

for (const text of ["Dear", "Dear Ada", "Dear Ada, thanks", "Dear Ada, thanks for the notes"]) await draft.save({ text });
const kept = await draft.states();
console.log(`kept ${kept.length} of 4 saves: ${kept.map((e) => JSON.stringify(e.state.text)).join(", ")}`);
assert.deepEqual(kept.map((e) => e.state.text), ["Dear Ada", "Dear Ada, thanks", "Dear Ada, thanks for the notes"]);
assert.equal(await volatile.count({ prefix: "state/draft/" }), 3);

const back = await draft.rollback();
console.log(`rolled back one step: ${JSON.stringify(back.state.text)}`);
assert.deepEqual(await draft.load(), { text: "Dear Ada, thanks" });
await draft.save({ text: "Dear Ada, many thanks" });
console.log(`saved after the rollback: ${(await draft.states()).map((e) => JSON.stringify(e.state.text)).join(" → ")}`);
await volatile.close();

// On SQLite the history outlives the process, and update() is a safe read-modify-write.
const namespace = `history-example-${process.pid}`;
let store = await openDefaultStore({ namespace });
let settings = boundedHistory(store, { key: "settings", keep: 5, initial: { theme: "light", size: 12 } });
await settings.update((s) => ({ ...s, theme: "dark" }));
await settings.update((s) => ({ ...s, size: s.size + 2 }));
await store.close();
store = await openDefaultStore({ namespace });
settings = boundedHistory(store, { key: "settings", keep: 5, initial: { theme: "light", size: 12 } });
console.log(`after restart: ${JSON.stringify(await settings.load())}, ${(await settings.states()).length} states kept`);
assert.deepEqual(await settings.load(), { theme: "dark", size: 14 });
await settings.rollback({ to: (await settings.states())[0].id });
console.log(`rolled back to the first save: ${JSON.stringify(await settings.load())}`);
assert.deepEqual(await settings.load(), { theme: "dark", size: 12 });
await settings.clear();
await store.close();
