// Typed content: JSON values in and out of a store without TextEncoder or JSON.parse, the codec
// recorded in each datum's metadata (`dgent.codec`) so any reader decodes it, a schema checked on
// write and on read, and the errors naming the datum and the codec — on the embedded default
// (SQLite under $XDG_DATA_HOME/dgent).
//
//   node examples/patterns/typed.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { makeDatum, openDefaultStore } from "dgent";
import { decodeDatum, json, text } from "dgent/patterns";

const store = await openDefaultStore({ namespace: `typed-example-${process.pid}` });

// A view over the store: values in, { id, value, datum } out.
const msgs = json(store, {
  prefix: "msg/",
  schema: {
    type: "object",
    properties: { role: { enum: ["user", "assistant"] }, text: { type: "string" } },
    required: ["role", "text"],
    additionalProperties: false,
  },
});
const q = await msgs.put({ role: "user", text: "What's the weather in Lisbon?" }, { metadata: { role: "user" } });
const a = await msgs.put({ role: "assistant", text: "Sunny, 24°C." }, { causalParent: q.id, metadata: { role: "assistant" } });
console.log(`stored ${q.id} with metadata ${JSON.stringify(q.datum.metadata)}`);
assert.equal(q.datum.metadata["dgent.codec"], "json");

const got = await msgs.get(a.id);
console.log(`read back: ${got.value.role}: ${got.value.text}`);
assert.deepEqual(got.value, { role: "assistant", text: "Sunny, 24°C." });

// Another codec's datums under the same prefix are not this view's.
await text(store, { prefix: "msg/" }).put("a plain note");
const users = await msgs.list({ where: { role: "user" } });
console.log(`user messages: ${users.map((t) => JSON.stringify(t.value.text)).join(", ")}`);
assert.equal(users.length, 1);
const chain = await msgs.causalChain(a.id);
console.log(`the answer's chain: ${chain.map((t) => t.value.role).join(" → ")}`);

// Any reader decodes by the recorded codec, without knowing the view.
for (const datum of await store.list({ prefix: "msg/" })) {
  const { codec, value } = decodeDatum(datum);
  console.log(`  ${codec.padEnd(4)} ${JSON.stringify(value)}`);
}

// A value that does not fit the schema is refused before anything is written…
await assert.rejects(msgs.put({ role: "robot", text: "beep" }), (e) => {
  console.log(`refused: [${e.code}] ${e.message}`);
  return e.code === "DGENT_LENS_INVALID" && e.details.codec === "json";
});
// …and so is a function (store data, not code): the path is named.
await assert.rejects(json(store).put({ text: "hi", onReply: () => {} }), (e) => {
  console.log(`refused: [${e.code}] ${e.message}`);
  return e.code === "DGENT_INVALID_CONTENT" && /\$\.onReply/.test(e.message);
});

// Bytes that do not decode: the error names the datum and the codec.
await store.put(makeDatum({ id: "msg/broken", content: "{oops", metadata: { "dgent.codec": "json" } }));
await assert.rejects(msgs.get("msg/broken"), (e) => {
  console.log(`read failed: [${e.code}] ${e.message.split(":")[0]}`);
  return e.code === "DGENT_INVALID_CONTENT" && e.details.id === "msg/broken" && e.details.codec === "json";
});

await store.deleteMany({ all: true });
await store.close();
