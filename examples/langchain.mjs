// LangChain.js on dgent: a chat message history and a key-value store in a SQLite file.
// No model is called: a RunnableLambda stands in for the chat model, and RunnableWithMessageHistory
// drives the history exactly as it would drive a real one.
//
//   node examples/langchain.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AIMessage, HumanMessage } from "@langchain/core/messages";
import { RunnableLambda, RunnableWithMessageHistory } from "@langchain/core/runnables";
import { DgentChatMessageHistory, DgentKVStore } from "dgent/integrations/langchain";

const dir = mkdtempSync(join(tmpdir(), "dgent-langchain-example-"));
const url = `sqlite://${join(dir, "chat.db")}`;

// 1. A chain with memory. getMessageHistory gets one history per session, as with any LangChain history.
const histories = new Map();
const getMessageHistory = (sessionId) => {
  if (!histories.has(sessionId)) histories.set(sessionId, new DgentChatMessageHistory({ sessionId, url }));
  return histories.get(sessionId);
};
const model = RunnableLambda.from((messages) => new AIMessage(`(${messages.length} messages in view) ${messages.at(-1).content.toUpperCase()}`));
const chain = new RunnableWithMessageHistory({ runnable: model, getMessageHistory });
const config = { configurable: { sessionId: "user-42" } };

const first = await chain.invoke([new HumanMessage("hello")], config);
const second = await chain.invoke([new HumanMessage("what did I say?")], config);
console.log(`turn 1: ${first.content}`);
console.log(`turn 2: ${second.content}`);
assert.equal(second.content, "(3 messages in view) WHAT DID I SAY?");

// 2. Two writers on two connections to the same file: each addMessages batch stays whole, nothing is lost.
const a = await DgentChatMessageHistory.fromUrl(url, { sessionId: "shared" });
const b = await DgentChatMessageHistory.fromUrl(url, { sessionId: "shared" });
await Promise.all([
  ...[1, 2, 3].map((i) => a.addMessages([new HumanMessage(`a${i} question`), new AIMessage(`a${i} answer`)])),
  ...[1, 2, 3].map((i) => b.addMessages([new HumanMessage(`b${i} question`), new AIMessage(`b${i} answer`)])),
]);
const shared = (await a.getMessages()).map((m) => m.content);
assert.equal(shared.length, 12);
for (let i = 0; i < 12; i += 2) assert.equal(shared[i].split(" ")[0], shared[i + 1].split(" ")[0]);
console.log(`two writers, 6 batches: ${shared.length} messages, every question followed by its answer`);
await a.close();
await b.close();

// 3. A restart: close everything, open the file again, the conversation is there.
for (const history of histories.values()) await history.close();
const reopened = new DgentChatMessageHistory({ sessionId: "user-42", url });
const restored = await reopened.getMessages();
console.log(`after restart: ${restored.map((m) => `${m.getType()}: ${m.content}`).join(" | ")}`);
assert.deepEqual(restored.map((m) => m.getType()), ["human", "ai", "human", "ai"]);
await reopened.clear();
assert.deepEqual(await reopened.getMessages(), []);
console.log("cleared user-42: 0 messages");
await reopened.close();

// 4. The key-value store (BaseStore<string, Uint8Array>), e.g. under a CacheBackedEmbeddings.
const kv = await DgentKVStore.fromUrl(url, { keyPrefix: "embeddings/" });
const vector = (xs) => new Uint8Array(new Float32Array(xs).buffer);
await kv.mset([["text-embedding:hello", vector([0.1, 0.2])], ["text-embedding:world", vector([0.3, 0.4])], ["other:x", vector([1])]]);
const [hello, missing] = await kv.mget(["text-embedding:hello", "text-embedding:nope"]);
assert.deepEqual([...new Float32Array(hello.buffer, hello.byteOffset, 2)].map((x) => x.toFixed(1)), ["0.1", "0.2"]);
assert.equal(missing, undefined);
const keys = [];
for await (const key of kv.yieldKeys("text-embedding:")) keys.push(key);
console.log(`keys under text-embedding: ${keys.sort().join(", ")}`);
assert.deepEqual(keys, ["text-embedding:hello", "text-embedding:world"]);
await kv.mdelete(keys);
assert.deepEqual(await kv.mget(keys), [undefined, undefined]);
await kv.close();

rmSync(dir, { recursive: true, force: true });
console.log("done");
